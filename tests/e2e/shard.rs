//! Sharded sessions end to end: `blindlink serve` and `link --shard I/N` over loopback mutual
//! TLS, `blindlink merge`, and the refusals (peers on different shards, overlapping shard
//! outputs, a merge of an incomplete or mixed set of shards).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use blindlink_protocol::{Disclosure, DisclosureLedger};

use crate::support::{PeerDir, blindlink};

/// A loopback port nothing listens on (released before use: the tests bind it right away).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The peers on a fresh port, in `mode`, exact with its first match key only.
fn peers(mode: &str) -> PeerDir {
    let dir = PeerDir::registry_insurer(300);
    dir.set_mode(mode);
    let port = free_port().to_string();
    for party in [dir.server, dir.client] {
        dir.edit(party, |text| {
            let text = text.replace("127.0.0.1:7443", &format!("127.0.0.1:{port}"));
            // The cascade's second key: a sharded exact session uses one key.
            let start = text
                .find("[[input.match_key]]\nname = \"kana+dob+sex\"")
                .unwrap();
            let end = text.find("[output]").unwrap();
            format!("{}{}", &text[..start], &text[end..])
        });
    }
    dir
}

/// `serve` in a thread and `link` here, with the extra arguments of each; both results.
fn session(
    dir: &PeerDir,
    serve: &[&str],
    link: &[&str],
) -> (Result<(), String>, Result<(), String>) {
    let config = |party: &str| dir.config(party).to_str().unwrap().to_owned();
    let mut serve_args: Vec<String> = ["serve", "--quiet", "--config", &config(dir.server)]
        .map(str::to_owned)
        .to_vec();
    serve_args.extend(serve.iter().map(|s| (*s).to_owned()));
    let server = std::thread::spawn(move || {
        let args: Vec<&str> = serve_args.iter().map(String::as_str).collect();
        blindlink(&args)
    });
    let text = std::fs::read_to_string(dir.config(dir.server)).unwrap();
    let listen = text
        .lines()
        .find_map(|l| l.strip_prefix("listen = \""))
        .and_then(|l| l.split('"').next())
        .unwrap()
        .to_owned();
    // Waits until the server has read its input and listens.
    let started = Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            !server.is_finished(),
            "serve ended early: {:?}",
            server.join()
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut link_args = vec!["link", "--quiet", "--config"];
    let client = config(dir.client);
    link_args.push(&client);
    link_args.extend_from_slice(link);
    let linked = blindlink(&link_args);
    (server.join().unwrap(), linked)
}

/// `links.csv` of `dir` as header-keyed rows.
fn links(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(dir.join("links.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// What a run linked, independent of its random link ids: each party's rows without the
/// link id, and the pairs (registry id, insurer id) that share a link id.
fn linkage(registry: &Path, insurer: &Path) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let (a, b) = (links(registry), links(insurer));
    let mut rows = BTreeSet::new();
    for (party, table) in [("registry", &a), ("insurer", &b)] {
        for row in table {
            let mut row = row.clone();
            row.remove("link_id");
            // validate fits its Fellegi–Sunter model per session, so each shard estimates m, u
            // and the prior from its own third of the pairs: the probabilities and weights
            // differ in the last digits (papers/scale.md); the links and their statuses (the
            // flags) must not.
            if row.get("mode").map(String::as_str) == Some("validate") {
                for column in ["score", "match_probability", "match_weight"] {
                    row.remove(column);
                }
            }
            rows.insert(format!("{party} {row:?}"));
        }
    }
    let by_link: BTreeMap<&str, &str> = b
        .iter()
        .filter(|r| !r["link_id"].is_empty())
        .map(|r| (r["link_id"].as_str(), r["local_record_id"].as_str()))
        .collect();
    let pairs = a
        .iter()
        .filter(|r| !r["link_id"].is_empty())
        .map(|r| {
            (
                r["local_record_id"].clone(),
                by_link[r["link_id"].as_str()].to_owned(),
            )
        })
        .collect();
    (rows, pairs)
}

/// The ledger's counting disclosures (summed per party, kind and key), its number of per-pair
/// disclosures, and its `input` counts.
fn ledger_counts(dir: &Path) -> (BTreeMap<String, u64>, usize, serde_json::Value) {
    let text = std::fs::read_to_string(dir.join("ledger.json")).unwrap();
    let ledger = DisclosureLedger::from_json(&text).unwrap();
    let mut counts = BTreeMap::new();
    let mut pairs = 0;
    for entry in ledger.disclosures() {
        let (name, n) = match &entry.disclosure {
            Disclosure::Schema { fields } => ("schema".to_owned(), *fields),
            Disclosure::SetSize { key, size } => (format!("set_size {key}"), *size),
            Disclosure::IntersectionSize { key, size } => (format!("intersection {key}"), *size),
            Disclosure::MatchedRecords { key, count } => (format!("matched {key}"), *count),
            Disclosure::AgreementScores { pairs } => ("agreement_scores".to_owned(), *pairs),
            other => {
                assert!(matches!(
                    other,
                    Disclosure::SharedTokenCounts { .. } | Disclosure::PaddedTokenCounts { .. }
                ));
                pairs += 1;
                continue;
            }
        };
        *counts
            .entry(format!("{:?} {name}", entry.learned_by))
            .or_default() += n;
    }
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    (counts, pairs, value["input"].clone())
}

fn merge(dir: &PeerDir, party: &str, shards: u32) -> Result<(), String> {
    let out = dir.path(&format!("merged/{party}"));
    let shard_dirs: Vec<String> = (0..shards)
        .map(|i| {
            dir.path(&format!("sharded/{party}/shard-{i}-of-{shards}"))
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut args = vec!["merge", "--quiet", "--out", out.to_str().unwrap()];
    args.extend(shard_dirs.iter().map(String::as_str));
    blindlink(&args)
}

/// Runs `dir`'s peers unsharded (outputs under `out/`), then points both configs' outputs at
/// `sharded/` for the sharded runs that follow.
fn run_unsharded_then_write_to_sharded(dir: &PeerDir) {
    let (served, linked) = session(dir, &[], &[]);
    served.unwrap();
    linked.unwrap();
    for party in [dir.server, dir.client] {
        dir.replace(
            party,
            &format!("dir = \"out/{party}\""),
            &format!("dir = \"sharded/{party}\""),
        );
    }
}

#[test]
fn three_shards_merge_to_the_unsharded_links_and_ledgers() {
    for mode in ["exact", "validate"] {
        let dir = peers(mode);
        run_unsharded_then_write_to_sharded(&dir);
        for i in 0..3 {
            let shard = format!("{i}/3");
            let (served, linked) = session(&dir, &["--shard", &shard], &["--shard", &shard]);
            served.unwrap();
            linked.unwrap();
        }
        for party in [dir.server, dir.client] {
            merge(&dir, party, 3).unwrap();
        }
        let unsharded = linkage(&dir.path("out/registry"), &dir.path("out/insurer"));
        let merged = linkage(&dir.path("merged/registry"), &dir.path("merged/insurer"));
        assert!(
            unsharded.1.len() > 100,
            "{mode}: {} pairs",
            unsharded.1.len()
        );
        assert_eq!(merged, unsharded, "{mode}");
        // Every shard held some of the records.
        for i in 0..3 {
            let shard = dir.path(&format!("sharded/registry/shard-{i}-of-3"));
            assert!(links(&shard).len() > 50, "{mode}: shard {i}");
        }
        for party in [dir.server, dir.client] {
            let whole = ledger_counts(&dir.path(&format!("out/{party}")));
            let sum = ledger_counts(&dir.path(&format!("merged/{party}")));
            assert_eq!(sum, whole, "{mode} {party}");
            let report =
                std::fs::read_to_string(dir.path(&format!("merged/{party}/report.txt"))).unwrap();
            assert!(
                report.starts_with(&format!("blindlink {mode} 3-way sharded run ")),
                "{report}"
            );
            let unsharded_report =
                std::fs::read_to_string(dir.path(&format!("out/{party}/report.txt"))).unwrap();
            // The counts line is the unsharded one.
            assert_eq!(
                report.lines().nth(2),
                unsharded_report.lines().nth(2),
                "{report}"
            );
        }
        // A merge of two of the three shards, or of shards of two modes, is refused.
        let out = dir.path("merged/partial");
        let shard = |i: u32| {
            dir.path(&format!("sharded/registry/shard-{i}-of-3"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            blindlink(&[
                "merge",
                "--out",
                out.to_str().unwrap(),
                &shard(0),
                &shard(2)
            ]),
            Err("shard 1/3 of the 3-way run is missing; merge every shard".to_owned())
        );
        assert_eq!(
            blindlink(&[
                "merge",
                "--out",
                out.to_str().unwrap(),
                &shard(0),
                &shard(0)
            ]),
            Err(format!(
                "shard 0/3 is given twice ({} and {})",
                shard(0),
                shard(0)
            ))
        );
        let insurer_shard = |i: u32| {
            dir.path(&format!("sharded/insurer/shard-{i}-of-3"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            blindlink(&[
                "merge",
                "--out",
                out.to_str().unwrap(),
                &shard(0),
                &insurer_shard(1),
                &insurer_shard(2)
            ]),
            Err(format!(
                "mixed runs: {} has role responder and {} has role initiator; merge the shards \
                 of one sharded linkage",
                shard(0),
                insurer_shard(1)
            ))
        );
        assert!(!out.exists());
        // A server of several sessions writes each into a directory inside its shard's.
        let nested: Vec<String> = (0..3)
            .map(|i| {
                let to = dir.path(&format!("served/shard-{i}-of-3/insurer-session"));
                std::fs::create_dir_all(&to).unwrap();
                for file in ["links.csv", "ledger.json", "report.txt"] {
                    std::fs::copy(Path::new(&shard(i)).join(file), to.join(file)).unwrap();
                }
                to.to_str().unwrap().to_owned()
            })
            .collect();
        let again = dir.path("merged/nested");
        let mut args = vec!["merge", "--quiet", "--out", again.to_str().unwrap()];
        args.extend(nested.iter().map(String::as_str));
        blindlink(&args).unwrap();
        assert_eq!(
            std::fs::read(again.join("links.csv")).unwrap(),
            std::fs::read(dir.path("merged/registry/links.csv")).unwrap()
        );
    }
}

/// Sets `[shard]` in `party`'s config (`None`: removes it).
fn set_shard(dir: &PeerDir, party: &str, shard: Option<(u32, u32)>) {
    dir.edit(party, |text| {
        let text = match text.find("\n[shard]") {
            Some(at) => text[..at + 1].to_owned(),
            None => text,
        };
        match shard {
            Some((index, count)) => format!("{text}\n[shard]\nindex = {index}\ncount = {count}\n"),
            None => text,
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_different_shards_or_overlapping_outputs_are_refused() {
    use blindlink_cli::commands::party::PartyCommand::{Link, Serve};

    use crate::support::{link_to, serve_while};

    let dir = peers("exact");
    for (server, client, server_error, client_error) in [
        (
            Some((0, 3)),
            Some((1, 3)),
            "parameter digest differs: parameter 'shard' is '0/3' on this side and '1/3' on the peer",
            "parameter digest differs: parameter 'shard' is '1/3' on this side and '0/3' on the peer",
        ),
        (
            None,
            Some((1, 3)),
            "parameter digest differs: peer sets parameter 'shard' that this side does not",
            "parameter digest differs: this side sets parameter 'shard' that the peer does not",
        ),
    ] {
        set_shard(&dir, dir.server, server);
        set_shard(&dir, dir.client, client);
        let registry = dir.load(dir.server, Serve);
        let insurer = dir.load(dir.client, Link);
        let (served, linked) = serve_while(&registry, |address| link_to(&insurer, address)).await;
        let linked = linked.unwrap_err();
        assert!(linked.ends_with(client_error), "{linked}");
        let served = served.unwrap_err();
        assert!(served.ends_with(server_error), "{served}");
    }
    set_shard(&dir, dir.server, None);
    set_shard(&dir, dir.client, None);
    assert_eq!(dir.outputs("registry"), Vec::<String>::new());
    assert_eq!(dir.outputs("insurer"), Vec::<String>::new());

    // Another shard count's outputs in the output directory: refused before any connection.
    std::fs::create_dir_all(dir.path("out/insurer/shard-0-of-2")).unwrap();
    let config = dir.config("insurer");
    let config = config.to_str().unwrap();
    assert_eq!(
        blindlink(&["link", "--quiet", "--config", config, "--shard", "1/3"]),
        Err(format!(
            "{config}: output.dir: overlapping shard outputs: shard-0-of-2 is a shard of a 2-way \
             run, and this is shard 1/3; give each sharded run its own output directory"
        ))
    );
    for (shard, expected) in [
        (
            "3/3",
            "shard index 3 is not below the shard count 3 (shards are numbered 0 to 2)",
        ),
        ("0/0", "the shard count is 0; it must be at least 1"),
        ("1-3", "'1-3' is not a shard (expected I/N, e.g. 0/4)"),
    ] {
        let err = blindlink(&["link", "--config", config, "--shard", shard]).unwrap_err();
        assert!(
            err.contains(&format!(
                "invalid value '{shard}' for '--shard <I/N>': {expected}"
            )),
            "{err}"
        );
    }
    // A cascade of two keys cannot be sharded by one: it runs in stages.
    let full = PeerDir::registry_insurer(20);
    full.set_mode("exact");
    let config = full.config("insurer");
    let config = config.to_str().unwrap();
    assert_eq!(
        blindlink(&["link", "--config", config, "--shard", "0/2"]),
        Err(format!(
            "{config}: cannot run shard 0/2: mode exact with a cascade of 2 match keys is sharded \
             one stage per key (records unmatched by one key re-sharded by the next): run --stage \
             0, merge its shards, then --stage 1 --previous <that merge's output directory>, and \
             so on"
        ))
    );
    // The stage's own refusals, before any input is read.
    let previous = full.path("merged-0");
    let previous = previous.to_str().unwrap();
    for (args, expected) in [
        (
            vec!["--shard", "0/2", "--stage", "2"],
            format!(
                "{config}: --stage 2: stage 2 is past the cascade's last stage 1 (stages are \
                 numbered 0 to 1, one per match key)"
            ),
        ),
        (
            vec!["--shard", "0/2", "--stage", "1"],
            format!(
                "{config}: stage 1 needs the merged output of stage 0 (--previous DIR or [shard] \
                 previous)"
            ),
        ),
        (
            vec!["--stage", "0"],
            format!(
                "{config}: stage 0 needs a shard (--shard I/N or [shard] index/count; --shard 0/1 \
                 runs the stage as one shard)"
            ),
        ),
        (
            vec!["--shard", "0/2", "--stage", "0", "--previous", previous],
            format!(
                "{config}: stage 0 is the cascade's first stage and takes no previous output, but \
                 {previous} is given"
            ),
        ),
        (
            vec!["--shard", "0/2", "--previous", previous],
            format!(
                "{config}: a previous stage's output (--previous or [shard] previous) is given, but \
                 no stage (--stage K or [shard] stage) to run after it"
            ),
        ),
    ] {
        let mut argv = vec!["link", "--quiet", "--config", config];
        argv.extend(args.iter().copied());
        assert_eq!(blindlink(&argv), Err(expected), "{args:?}");
    }
    full.set_mode("validate");
    assert_eq!(
        blindlink(&["link", "--config", config, "--shard", "0/2", "--stage", "0"]),
        Err(format!(
            "{config}: stage 0: only mode exact runs a cascade in stages (mode is validate)"
        ))
    );
    // fuzzy shards only by a coarse blocking key named in [shard] key, and only fuzzy does.
    full.set_mode("fuzzy");
    assert_eq!(
        blindlink(&["link", "--config", config, "--shard", "0/2"]),
        Err(format!(
            "{config}: cannot run shard 0/2: mode fuzzy has no key that the two records of a \
             person are sure to share; name a coarse blocking key in [shard] key (an \
             [[input.match_key]], e.g. the prefecture), knowing that a true pair whose values of \
             it differ is never compared"
        ))
    );
    full.set_mode("validate");
    full.edit("insurer", |text| {
        format!("{text}\n[shard]\nindex = 0\ncount = 2\nkey = \"kana+dob+sex\"\n")
    });
    assert_eq!(
        blindlink(&["link", "--config", config]),
        Err(format!(
            "{config}: cannot run shard 0/2: shard.key is fuzzy's (a coarse blocking key); mode \
             validate shards by its first match key"
        ))
    );
}

/// fuzzy sharded by the prefecture (a coarse blocking key, listed as a match key): two shards
/// merged link nearly what the unsharded run links; what they miss are pairs whose prefectures
/// differ and fall in different shards (papers/scale.md §4 measures it at 20,000 persons).
#[test]
fn fuzzy_sharded_by_a_coarse_blocking_key() {
    let dir = PeerDir::registry_insurer(300);
    dir.set_mode("fuzzy");
    let port = free_port().to_string();
    for party in [dir.server, dir.client] {
        dir.edit(party, |text| {
            text.replace("127.0.0.1:7443", &format!("127.0.0.1:{port}"))
                .replacen(
                    "[output]",
                    "[[input.match_key]]\nname = \"prefecture\"\ncolumns = [{ column = \
                     \"prefecture\", normalise = [\"nfkc\", \"strip-whitespace\"] }]\n\n\
                     [output]",
                    1,
                )
        });
    }
    let (served, linked) = session(&dir, &[], &[]);
    served.unwrap();
    linked.unwrap();
    for party in [dir.server, dir.client] {
        dir.edit(party, |text| {
            format!(
                "{}\n[shard]\nindex = 0\ncount = 2\nkey = \"prefecture\"\n",
                text.replace(
                    &format!("dir = \"out/{party}\""),
                    &format!("dir = \"sharded/{party}\"")
                )
            )
        });
    }
    for i in 0..2 {
        let shard = format!("{i}/2");
        let (served, linked) = session(&dir, &["--shard", &shard], &["--shard", &shard]);
        served.unwrap();
        linked.unwrap();
    }
    for party in [dir.server, dir.client] {
        merge(&dir, party, 2).unwrap();
    }
    let (_, unsharded) = linkage(&dir.path("out/registry"), &dir.path("out/insurer"));
    let (_, merged) = linkage(&dir.path("merged/registry"), &dir.path("merged/insurer"));
    let common = merged.intersection(&unsharded).count();
    assert!(unsharded.len() > 100, "{} pairs", unsharded.len());
    assert!(
        common * 100 >= unsharded.len() * 95,
        "{common} of {} unsharded pairs",
        unsharded.len()
    );
    // Every record is in exactly one shard.
    let rows: usize = (0..2)
        .map(|i| links(&dir.path(&format!("sharded/registry/shard-{i}-of-2"))).len())
        .sum();
    assert_eq!(rows, links(&dir.path("out/registry")).len());

    // Split by the shard key, each shard reading its own file through --input: the same
    // links and ledger counts as the shard's run on the whole input.
    for party in [dir.server, dir.client] {
        let config = dir.config(party);
        let out = dir.path("split");
        blindlink(&[
            "split",
            "--quiet",
            "--shards",
            "2",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .unwrap();
        dir.replace(
            party,
            &format!("dir = \"sharded/{party}\""),
            &format!("dir = \"from-split/{party}\""),
        );
    }
    for i in 0..2 {
        let shard = format!("{i}/2");
        let input = |party: &str| {
            dir.path(&format!("split/{party}.shard-{i}-of-2.csv"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let (registry, insurer) = (input(dir.server), input(dir.client));
        let (served, linked) = session(
            &dir,
            &["--shard", &shard, "--input", &registry],
            &["--shard", &shard, "--input", &insurer],
        );
        served.unwrap();
        linked.unwrap();
        let shard_dir =
            |root: &str, party: &str| dir.path(&format!("{root}/{party}/shard-{i}-of-2"));
        assert_eq!(
            linkage(
                &shard_dir("from-split", "registry"),
                &shard_dir("from-split", "insurer")
            ),
            linkage(
                &shard_dir("sharded", "registry"),
                &shard_dir("sharded", "insurer")
            ),
            "shard {i}"
        );
        // The ledgers disclose the same (set sizes, candidate pairs' token counts, the latter
        // as a multiset without the candidate numbers each session gives) and count the same
        // input.
        let ledger = |dir: &Path| {
            let text = std::fs::read_to_string(dir.join("ledger.json")).unwrap();
            let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut disclosures: Vec<String> = value["disclosures"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .map(|d| {
                    d.as_object_mut().unwrap().remove("pair");
                    d.to_string()
                })
                .collect();
            disclosures.sort();
            (disclosures, value["input"].clone())
        };
        for party in [dir.server, dir.client] {
            assert_eq!(
                ledger(&shard_dir("from-split", party)),
                ledger(&shard_dir("sharded", party)),
                "{party} shard {i}"
            );
        }
    }
}

/// The example's peers on a fresh port, exact, with their whole cascade (my_number, then
/// kana+dob+sex).
fn cascade_peers() -> PeerDir {
    let dir = PeerDir::registry_insurer(300);
    dir.set_mode("exact");
    let port = free_port().to_string();
    for party in [dir.server, dir.client] {
        dir.replace(party, "127.0.0.1:7443", &format!("127.0.0.1:{port}"));
    }
    dir
}

/// `blindlink merge --quiet --out OUT DIRS...` with paths relative to `dir`.
fn merge_dirs(dir: &PeerDir, out: &str, shards: &[String]) -> Result<(), String> {
    let out = dir.path(out);
    let shards: Vec<String> = shards
        .iter()
        .map(|s| dir.path(s).to_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["merge", "--quiet", "--out", out.to_str().unwrap()];
    args.extend(shards.iter().map(String::as_str));
    blindlink(&args)
}

/// The shard directories of `stage` of `party`'s `N`-way cascade run under `sharded/`.
fn stage_dirs(party: &str, stage: u32, count: u32) -> Vec<String> {
    (0..count)
        .map(|i| format!("sharded/{party}/stage-{stage}/shard-{i}-of-{count}"))
        .collect()
}

#[test]
fn a_two_key_cascade_in_two_sharded_stages_merges_to_the_unsharded_cascade() {
    let dir = cascade_peers();
    run_unsharded_then_write_to_sharded(&dir);
    let run_stage = |stage: u32, previous: bool| {
        for i in 0..3 {
            let shard = format!("{i}/3");
            let stage = stage.to_string();
            let paths: Vec<String> = [dir.server, dir.client]
                .map(|p| {
                    dir.path(&format!("merged-0/{p}"))
                        .to_str()
                        .unwrap()
                        .to_owned()
                })
                .to_vec();
            let mut serve = vec!["--shard", shard.as_str(), "--stage", stage.as_str()];
            let mut link = serve.clone();
            if previous {
                serve.extend(["--previous", paths[0].as_str()]);
                link.extend(["--previous", paths[1].as_str()]);
            }
            let (served, linked) = session(&dir, &serve, &link);
            served.unwrap();
            linked.unwrap();
        }
    };
    run_stage(0, false);
    for party in [dir.server, dir.client] {
        merge_dirs(&dir, &format!("merged-0/{party}"), &stage_dirs(party, 0, 3)).unwrap();
    }
    run_stage(1, true);
    for party in [dir.server, dir.client] {
        let mut all = stage_dirs(party, 0, 3);
        all.extend(stage_dirs(party, 1, 3));
        merge_dirs(&dir, &format!("merged/{party}"), &all).unwrap();
    }
    let unsharded = linkage(&dir.path("out/registry"), &dir.path("out/insurer"));
    let merged = linkage(&dir.path("merged/registry"), &dir.path("merged/insurer"));
    assert!(unsharded.1.len() > 100, "{} pairs", unsharded.1.len());
    assert_eq!(merged, unsharded);
    // The second key linked some records, and stage 1 held only the records stage 0 left.
    let by_key = |party: &str, key: &str| {
        links(&dir.path(&format!("merged/{party}")))
            .iter()
            .filter(|r| r["key"] == key)
            .count()
    };
    assert!(by_key("insurer", "kana+dob+sex") > 0);
    assert!(by_key("insurer", "my_number") > 0);
    let stage_rows: usize = (0..3)
        .map(|i| links(&dir.path(&stage_dirs("insurer", 1, 3)[i])).len())
        .sum();
    let merged_0 = links(&dir.path("merged-0/insurer"));
    assert_eq!(
        stage_rows,
        merged_0.iter().filter(|r| r["status"] != "linked").count()
    );
    for party in [dir.server, dir.client] {
        let whole = ledger_counts(&dir.path(&format!("out/{party}")));
        let sum = ledger_counts(&dir.path(&format!("merged/{party}")));
        assert_eq!(sum, whole, "{party}");
        let text =
            std::fs::read_to_string(dir.path(&format!("merged/{party}/ledger.json"))).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let stages: Vec<(u64, &str, usize)> = value["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["stage"].as_u64().unwrap(),
                    s["key"].as_str().unwrap(),
                    s["shards"].as_array().unwrap().len(),
                )
            })
            .collect();
        assert_eq!(stages, [(0, "my_number", 3), (1, "kana+dob+sex", 3)]);
        let report =
            std::fs::read_to_string(dir.path(&format!("merged/{party}/report.txt"))).unwrap();
        assert!(
            report.starts_with("blindlink exact 2-stage sharded cascade "),
            "{report}"
        );
        let unsharded_report =
            std::fs::read_to_string(dir.path(&format!("out/{party}/report.txt"))).unwrap();
        assert_eq!(report.lines().nth(2), unsharded_report.lines().nth(2));
    }

    // A stage run against the wrong previous output is refused before it connects.
    let insurer = dir.config("insurer");
    let insurer = insurer.to_str().unwrap();
    let stage_1 = |previous: &str| {
        let previous = dir.path(previous).to_str().unwrap().to_owned();
        blindlink(&[
            "link",
            "--quiet",
            "--config",
            insurer,
            "--shard",
            "0/3",
            "--stage",
            "1",
            "--previous",
            &previous,
        ])
        .map_err(|e| e.replace(&previous, "PREVIOUS"))
    };
    for (previous, expected) in [
        (
            "out/insurer",
            "--previous PREVIOUS: is not the merged output of cascade stages (its ledger.json \
             lists no stages; give the directory blindlink merge wrote from the \
             stage-K/shard-I-of-N directories)",
        ),
        (
            "merged-0/registry",
            "--previous PREVIOUS: holds the outputs of the responder, and this party is the \
             initiator",
        ),
        (
            "merged/insurer",
            "--previous PREVIOUS: holds the merged output of stage 0, 1, and stage 1 needs stage \
             0's",
        ),
        (
            "nowhere",
            "--previous PREVIOUS: cannot read PREVIOUS/ledger.json: No such file or directory \
             (os error 2)",
        ),
    ] {
        assert_eq!(
            stage_1(previous),
            Err(format!("{insurer}: {expected}")),
            "{previous}"
        );
    }
    // Another input: the previous output of a run over one row less.
    let tampered = dir.path("tampered-0/insurer");
    std::fs::create_dir_all(&tampered).unwrap();
    let ledger = std::fs::read_to_string(dir.path("merged-0/insurer/ledger.json")).unwrap();
    let rows_read = merged_0.len();
    std::fs::write(
        tampered.join("ledger.json"),
        ledger.replace(
            &format!("\"rows_read\": {rows_read}"),
            &format!("\"rows_read\": {}", rows_read - 1),
        ),
    )
    .unwrap();
    assert_eq!(
        stage_1("tampered-0/insurer"),
        Err(format!(
            "{insurer}: --previous PREVIOUS: was made from an input of {} rows (0 rejected), and \
             this input has {rows_read} rows (0 rejected)",
            rows_read - 1
        ))
    );
    std::fs::write(tampered.join("ledger.json"), &ledger).unwrap();
    let text = std::fs::read_to_string(dir.path("merged-0/insurer/links.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.pop().unwrap().to_owned();
    let first_id = merged_0[0]["local_record_id"].clone();
    let foreign = last.replacen(&merged_0[rows_read - 1]["local_record_id"], "X-999", 1);
    lines.push(&foreign);
    std::fs::write(tampered.join("links.csv"), lines.join("\n") + "\n").unwrap();
    let missing = merged_0[rows_read - 1]["local_record_id"].clone();
    assert_eq!(
        stage_1("tampered-0/insurer"),
        Err(format!(
            "{insurer}: --previous PREVIOUS: record '{missing}' of this input is not in \
             PREVIOUS/links.csv: it is the output of another input"
        ))
    );
    let _ = first_id;

    // The merge refuses a stage without the stages before it, stages mixed with plain
    // shards, and a stage that holds a record an earlier stage linked.
    assert_eq!(
        merge_dirs(&dir, "merged/bad", &stage_dirs("insurer", 1, 3)),
        Err("stage 0 of the cascade is missing; merge every shard of stages 0 to 1".to_owned())
    );
    let mut mixed = stage_dirs("insurer", 0, 3);
    std::fs::create_dir_all(dir.path("plain/shard-0-of-3")).unwrap();
    for file in ["links.csv", "ledger.json", "report.txt"] {
        std::fs::copy(
            dir.path(&stage_dirs("insurer", 0, 3)[0]).join(file),
            dir.path("plain/shard-0-of-3").join(file),
        )
        .unwrap();
    }
    mixed.push("plain/shard-0-of-3".to_owned());
    assert_eq!(
        merge_dirs(&dir, "merged/bad", &mixed),
        Err(format!(
            "mixed runs: {} is a shard of cascade stage 0 and {} is a shard of no stage; merge \
             the shards of one sharded linkage",
            dir.path(&stage_dirs("insurer", 0, 3)[0]).display(),
            dir.path("plain/shard-0-of-3").display()
        ))
    );
    let linked_in_0 =
        merged_0.iter().find(|r| r["status"] == "linked").unwrap()["local_record_id"].clone();
    let mut wrong = stage_dirs("insurer", 0, 3);
    for i in 0..3 {
        let from = dir.path(&stage_dirs("insurer", 1, 3)[i as usize]);
        let to = format!("wrong/stage-1/shard-{i}-of-3");
        std::fs::create_dir_all(dir.path(&to)).unwrap();
        for file in ["links.csv", "ledger.json", "report.txt"] {
            std::fs::copy(from.join(file), dir.path(&to).join(file)).unwrap();
        }
        if i == 2 {
            let path = dir.path(&to).join("links.csv");
            let mut text = std::fs::read_to_string(&path).unwrap();
            text.push_str(&format!("{linked_in_0},,exact,,unmatched,,,\n"));
            std::fs::write(&path, text).unwrap();
        }
        wrong.push(to);
    }
    let err = merge_dirs(&dir, "merged/bad", &wrong).unwrap_err();
    assert!(
        err.starts_with("mixed runs: ")
            && err.ends_with(&format!(
                "record '{linked_in_0}' was linked by stage 0, so stage 1 ran against another \
                 previous output (--previous must be the merge of stages 0 to 0 of this run)"
            )),
        "{err}"
    );
    assert!(!dir.path("merged/bad").exists());

    // Peers on different stages: the handshake names both.
    for (party, stage) in [(dir.server, 0), (dir.client, 1)] {
        let previous = dir.path(&format!("merged-0/{party}"));
        dir.edit(party, |text| {
            let section = if stage == 0 {
                "[shard]\nindex = 0\ncount = 3\nstage = 0\n".to_owned()
            } else {
                format!(
                    "[shard]\nindex = 0\ncount = 3\nstage = 1\nprevious = \"{}\"\n",
                    previous.display()
                )
            };
            format!("{text}\n{section}")
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use blindlink_cli::commands::party::PartyCommand::{Link, Serve};

        use crate::support::{link_to, serve_while};
        let registry = dir.load(dir.server, Serve);
        let insurer = dir.load(dir.client, Link);
        let (served, linked) = serve_while(&registry, |address| link_to(&insurer, address)).await;
        let linked = linked.unwrap_err();
        assert!(
            linked.ends_with(
                "parameter digest differs: parameter 'stage' is '1/2' on this side and '0/2' on \
                 the peer"
            ),
            "{linked}"
        );
        let served = served.unwrap_err();
        assert!(
            served.ends_with(
                "parameter digest differs: parameter 'stage' is '0/2' on this side and '1/2' on \
                 the peer"
            ),
            "{served}"
        );
    });

    // Overlapping outputs: stage 1 of another shard count in the stage's directory.
    assert_eq!(
        blindlink(&[
            "link", "--quiet", "--config", insurer, "--shard", "0/2", "--stage", "1",
        ]),
        Err(format!(
            "{insurer}: output.dir: overlapping shard outputs: shard-0-of-3 is a shard of a 3-way \
             run, and this is shard 0/2; give each sharded run its own output directory"
        ))
    );
}

/// `blindlink merge --quiet --out OUT [--last-stage K] ROOT` with paths relative to `dir`.
fn merge_root(
    dir: &PeerDir,
    out: &str,
    last_stage: Option<u32>,
    roots: &[&str],
) -> Result<(), String> {
    let out = dir.path(out);
    let roots: Vec<String> = roots
        .iter()
        .map(|r| dir.path(r).to_str().unwrap().to_owned())
        .collect();
    let last = last_stage.map(|k| k.to_string());
    let mut args = vec!["merge", "--quiet", "--out", out.to_str().unwrap()];
    if let Some(last) = &last {
        args.extend(["--last-stage", last.as_str()]);
    }
    args.extend(roots.iter().map(String::as_str));
    blindlink(&args)
}

/// Points `party`'s `[input] csv` at `file` (relative to the config).
fn set_csv(dir: &PeerDir, party: &str, file: &str) {
    dir.edit(party, |text| {
        let start = text.find("csv = \"").unwrap();
        let end = start + text[start..].find('\n').unwrap();
        format!("{}csv = \"{file}\"{}", &text[..start], &text[end..])
    });
}

#[test]
fn a_stage_split_gives_each_shard_its_own_records_and_shard_roots_merge() {
    let dir = cascade_peers();
    run_unsharded_then_write_to_sharded(&dir);
    // Stage 0 in 2 shards from the whole input, merged from the parties' shard roots.
    for i in 0..2 {
        let shard = format!("{i}/2");
        let args = ["--shard", shard.as_str(), "--stage", "0"];
        let (served, linked) = session(&dir, &args, &args);
        served.unwrap();
        linked.unwrap();
    }
    for party in [dir.server, dir.client] {
        let root = format!("sharded/{party}");
        merge_root(&dir, &format!("merged-0/{party}"), Some(0), &[&root]).unwrap();
        // The same files as the merge of the shards named one by one.
        merge_dirs(&dir, &format!("listed-0/{party}"), &stage_dirs(party, 0, 2)).unwrap();
        for file in ["links.csv", "ledger.json", "report.txt"] {
            let read = |d: &str| std::fs::read(dir.path(&format!("{d}/{party}/{file}"))).unwrap();
            assert_eq!(read("merged-0"), read("listed-0"), "{party} {file}");
        }
    }

    // Stage 1 split: each shard's file holds the records stage 0 left unlinked in its bucket.
    let split = |party: &str, shards: &str| {
        let config = dir.config(party);
        let previous = dir.path(&format!("merged-0/{party}"));
        let out = dir.path("split");
        blindlink(&[
            "split",
            "--quiet",
            "--shards",
            shards,
            "--stage",
            "1",
            "--previous",
            previous.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    for party in [dir.server, dir.client] {
        split(party, "2").unwrap();
        let carried = links(&dir.path(&format!("merged-0/{party}")))
            .iter()
            .filter(|r| r["status"] != "linked")
            .count();
        let in_files: usize = (0..2)
            .map(|i| {
                let file = dir.path(&format!("split/{party}.stage-1.shard-{i}-of-2.csv"));
                std::fs::read_to_string(file).unwrap().lines().count() - 1
            })
            .sum();
        assert_eq!(in_files, carried, "{party}");
    }
    for i in 0..2 {
        for party in [dir.server, dir.client] {
            set_csv(
                &dir,
                party,
                &format!("split/{party}.stage-1.shard-{i}-of-2.csv"),
            );
        }
        let shard = format!("{i}/2");
        let previous = |party: &str| {
            dir.path(&format!("merged-0/{party}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let (registry, insurer) = (previous(dir.server), previous(dir.client));
        let serve = [
            "--shard",
            shard.as_str(),
            "--stage",
            "1",
            "--previous",
            registry.as_str(),
        ];
        let link = [
            "--shard",
            shard.as_str(),
            "--stage",
            "1",
            "--previous",
            insurer.as_str(),
        ];
        let (served, linked) = session(&dir, &serve, &link);
        served.unwrap();
        linked.unwrap();
    }
    for party in [dir.server, dir.client] {
        let root = format!("sharded/{party}");
        merge_root(&dir, &format!("merged/{party}"), None, &[&root]).unwrap();
    }
    let unsharded = linkage(&dir.path("out/registry"), &dir.path("out/insurer"));
    let merged = linkage(&dir.path("merged/registry"), &dir.path("merged/insurer"));
    assert!(unsharded.1.len() > 100, "{} pairs", unsharded.1.len());
    assert_eq!(merged, unsharded);
    let by_second_key = links(&dir.path("merged/insurer"))
        .iter()
        .filter(|r| r["key"] == "kana+dob+sex")
        .count();
    assert!(by_second_key > 0);

    // A shard run on another shard's file, or on a file of another stage's split, is refused.
    let insurer = dir.config("insurer");
    let insurer = insurer.to_str().unwrap().to_owned();
    let previous = dir.path("merged-0/insurer").to_str().unwrap().to_owned();
    let stage_1 = |shard: &str| {
        blindlink(&[
            "link",
            "--quiet",
            "--config",
            &insurer,
            "--shard",
            shard,
            "--stage",
            "1",
            "--previous",
            &previous,
        ])
    };
    let file = dir.path("split/insurer.stage-1.shard-1-of-2.csv");
    assert_eq!(
        stage_1("0/2"),
        Err(format!(
            "{insurer}: [input] csv {} is the split of stage 1 for shard 1/2, and this run is \
             stage 1 shard 0/2",
            file.display()
        ))
    );
    // A file named as shard 0's that holds shard 1's records.
    std::fs::copy(&file, dir.path("split/insurer.stage-1.shard-0-of-2.csv")).unwrap();
    set_csv(&dir, "insurer", "split/insurer.stage-1.shard-0-of-2.csv");
    let err = stage_1("0/2").unwrap_err();
    assert!(
        err.starts_with(&format!("{insurer}: record '"))
            && err.ends_with(
                "is in shard 1 of stage 1, not in shard 0: the file is not this shard's split"
            ),
        "{err}"
    );
    // A split file with a record stage 0 linked.
    let linked_row = {
        let text = std::fs::read_to_string(dir.path("data/insurer.csv")).unwrap();
        let linked_id = links(&dir.path("merged-0/insurer"))
            .into_iter()
            .find(|r| r["status"] == "linked")
            .unwrap()["local_record_id"]
            .clone();
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("{linked_id},")))
            .unwrap()
            .to_owned();
        (linked_id, row)
    };
    let bad = dir.path("split/insurer.stage-1.shard-0-of-2.csv");
    let header = std::fs::read_to_string(dir.path("data/insurer.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    std::fs::write(&bad, format!("{header}\n{}\n", linked_row.1)).unwrap();
    assert_eq!(
        stage_1("0/2"),
        Err(format!(
            "{insurer}: --previous {previous}: record '{}' of {} was linked by an earlier stage: \
             the file is not the split of this previous output (blindlink split --stage 1 \
             --previous makes it)",
            linked_row.0,
            bad.display()
        ))
    );

    // A split whose shard would get no record is refused, and writes nothing.
    std::fs::remove_dir_all(dir.path("split")).unwrap();
    for party in [dir.server, dir.client] {
        set_csv(&dir, party, &format!("data/{party}.csv"));
    }
    let err = split(dir.client, "64").unwrap_err();
    assert!(
        err.contains(": stage 1: no record of the ")
            && err.contains("carried into the stage falls in shard ")
            && err.ends_with(
                "a stage's split gives every shard at least one record: split this stage into \
                 fewer shards (each stage may have its own count) or run its shards on the \
                 whole input"
            ),
        "{err}"
    );
    assert!(
        !dir.path("split").exists()
            || std::fs::read_dir(dir.path("split"))
                .unwrap()
                .next()
                .is_none()
    );

    // On the whole input, a stage's shard that no record was carried into is a session over
    // an empty set: it links nothing, writes its outputs, and the merge counts it.
    let empty = (0..64)
        .find(|&i| {
            let mut config = blindlink_cli::commands::party::PartyConfig::load(
                &dir.config(dir.client),
                blindlink_cli::commands::party::PartyCommand::Link,
            )
            .unwrap();
            config.shard = Some(blindlink_party::Shard::new(i, 64).unwrap());
            config.stage = Some(blindlink_party::CascadeStage::new(1, 2).unwrap());
            config.previous = Some(dir.path("merged-0/insurer"));
            blindlink_cli::commands::party::load_party(config)
                .unwrap()
                .records
                .ids
                .is_empty()
        })
        .unwrap();
    for party in [dir.server, dir.client] {
        dir.replace(
            party,
            &format!("dir = \"sharded/{party}\""),
            &format!("dir = \"wide/{party}\""),
        );
    }
    let shard = format!("{empty}/64");
    let registry_previous = dir.path("merged-0/registry").to_str().unwrap().to_owned();
    let serve = [
        "--shard",
        shard.as_str(),
        "--stage",
        "1",
        "--previous",
        registry_previous.as_str(),
    ];
    let link = [
        "--shard",
        shard.as_str(),
        "--stage",
        "1",
        "--previous",
        previous.as_str(),
    ];
    let (served, linked) = session(&dir, &serve, &link);
    served.unwrap();
    linked.unwrap();
    let out = format!("wide/insurer/stage-1/shard-{empty}-of-64");
    assert!(links(&dir.path(&out)).is_empty());
    let report = std::fs::read_to_string(dir.path(&out).join("report.txt")).unwrap();
    assert_eq!(report.lines().nth(1), Some("records: 0"), "{report}");
    assert!(
        links(&dir.path(&format!("wide/registry/stage-1/shard-{empty}-of-64")))
            .iter()
            .all(|r| r["status"] == "unmatched")
    );

    // Shard roots that are not: nothing in them, a shard without outputs, two sessions.
    std::fs::create_dir_all(dir.path("nothing")).unwrap();
    assert_eq!(
        merge_root(&dir, "m/x", None, &["nothing"]),
        Err(format!(
            "{} is neither a shard's output directory nor a shard root: it holds no \
             shard-I-of-N or stage-K directory",
            dir.path("nothing").display()
        ))
    );
    let two = dir.path("two/stage-0/shard-0-of-1");
    for session in ["insurer-a", "insurer-b"] {
        std::fs::create_dir_all(two.join(session)).unwrap();
        std::fs::write(two.join(session).join("ledger.json"), "{}").unwrap();
    }
    assert_eq!(
        merge_root(&dir, "m/x", Some(0), &["two"]),
        Err(format!(
            "{} holds the outputs of 2 sessions (insurer-a, insurer-b); give the directory of \
             this run's",
            two.display()
        ))
    );
    std::fs::create_dir_all(dir.path("none/shard-0-of-1")).unwrap();
    assert_eq!(
        merge_root(&dir, "m/x", None, &["none"]),
        Err(format!(
            "{} holds no outputs (no ledger.json, nor a session's directory with one): its \
             shard has not completed",
            dir.path("none/shard-0-of-1").display()
        ))
    );
    assert_eq!(
        merge_dirs(&dir, "m/x", &stage_dirs("insurer", 0, 2)).map(|()| "merged"),
        Ok("merged")
    );
    let listed: Vec<String> = stage_dirs("insurer", 0, 2)
        .iter()
        .map(|d| dir.path(d).to_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["merge", "--quiet", "--out", "m/y", "--last-stage", "0"];
    args.extend(listed.iter().map(String::as_str));
    assert_eq!(
        blindlink(&args),
        Err(
            "--last-stage selects the stages of a shard root (a party's output directory); the \
             directories given are shards' outputs: give the stages' shards to merge instead"
                .to_owned()
        )
    );
}
