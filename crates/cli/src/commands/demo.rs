//! `blindlink demo`: the whole system in one process on synthetic data. It generates a
//! registry-insurer population (or two hospitals, for `fuzzy` and `clk-exchange`), a
//! development PKI, a linkage key and the two party configs of `examples/peers/`, starts the
//! responder and the initiator over loopback mutual TLS through the same code as `serve` and
//! `link`, and prints what was linked, which wrong-person links were flagged, how accurate that
//! was against the synthetic truth, what each side learned and how long each phase took.
//!
//! With `--out DIR` everything stays in DIR (data, certificates, key, configs, outputs), so the
//! same run can be repeated by hand with `blindlink serve` / `blindlink link`; without it a
//! temporary directory is used and removed. The key is derived from the seed, so a demo run is
//! reproducible; a real deployment uses `blindlink keygen`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindlink_matching::FlagQuality;
use blindlink_protocol::{LinkOutcome, LinkStatus, Mode};
use blindlink_service::{DevPki, Limits};
use blindlink_synth::{Locale, Scenario, SynthConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::Zeroizing;

use super::party::session::{self, CompletedSession, RunOptions};
use super::party::{PartyCommand, PartyConfig, load_party};

const SCHEMA: &str = include_str!("../../../../examples/peers/schema.toml");
const CLK_SCHEMA: &str = include_str!("../../../../examples/peers/clk-schema.toml");
const REGISTRY: &str = include_str!("../../../../examples/peers/registry.toml");
const INSURER: &str = include_str!("../../../../examples/peers/insurer.toml");
const HOSPITAL_A: &str = include_str!("../../../../examples/peers/hospital-a.toml");
const HOSPITAL_B: &str = include_str!("../../../../examples/peers/hospital-b.toml");

/// The modes as `--mode` values, parsed into the protocol's own [`Mode`].
fn mode_parser() -> impl clap::builder::TypedValueParser<Value = Mode> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Mode::ALL.map(Mode::name))
        .try_map(|name| name.parse::<Mode>())
}

/// Whether `mode` runs on the two-hospitals scenario (no shared identifier) rather than the
/// registry-insurer one.
fn hospitals(mode: Mode) -> bool {
    !mode.uses_match_keys()
}

/// Arguments of `blindlink demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Size of the synthetic population.
    #[arg(long, default_value_t = 10_000)]
    pub persons: u64,
    /// registry-insurer: share of persons who are insured; two-hospitals: share of persons in
    /// both hospitals.
    #[arg(long, default_value_t = 0.8)]
    pub overlap: f64,
    /// Seed of the data, the key and the sessions' randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The linkage mode: cardinality (only the number of shared My Numbers), exact (cascade:
    /// My Number, then kana name + date of birth + sex), validate (exact on the My Number, then
    /// every linked pair's quasi-identifiers compared), fuzzy (private blocking, then the
    /// candidate pairs' fields compared; two hospitals, no identifier), clk-exchange (all CLKs
    /// to the comparing side, the baseline; two hospitals).
    #[arg(long, default_value_t = Mode::Validate, value_parser = mode_parser())]
    pub mode: Mode,
    /// Keep the data, certificates, key, configs and outputs in this directory (must be
    /// empty or absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Show this many flagged and missed wrong-person links.
    #[arg(long, default_value_t = 5)]
    pub show: usize,
}

/// Runs the demo.
///
/// # Errors
/// A non-empty `--out` directory, a failed write, or a failed session.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let temp;
    let dir = match &args.out {
        Some(dir) => {
            if dir.exists()
                && std::fs::read_dir(dir)
                    .with_context(|| format!("cannot read {}", dir.display()))?
                    .next()
                    .is_some()
            {
                bail!(
                    "{} is not empty; give a new or empty directory to --out",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("blindlink-demo-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let hospitals = hospitals(args.mode);
    let (server_name, client_name) = if hospitals {
        ("hospital-a", "hospital-b")
    } else {
        ("registry", "insurer")
    };

    step(
        1,
        &format!(
            "synthesising a {} population of {} persons (seed {})",
            if hospitals {
                "two-hospitals"
            } else {
                "registry-insurer"
            },
            args.persons,
            args.seed
        ),
    );
    let phase = Instant::now();
    let data_dir = dir.join("data");
    let scenario = if hospitals {
        Scenario::TwoHospitals
    } else {
        Scenario::RegistryInsurer
    };
    let population = SynthConfig::new(
        scenario,
        Locale::Japanese,
        args.persons,
        args.overlap,
        args.seed,
    );
    super::synth::generate(&population, &data_dir)?;
    let synth_time = phase.elapsed();

    step(
        2,
        &format!(
            "writing a development CA, certificates for {server_name} and {client_name}, a \
             linkage key and both configs to {}",
            dir.display()
        ),
    );
    write_party_files(&dir, args.mode, args.seed, server_name, client_name)?;
    let server_config = PartyConfig::load(
        &dir.join(format!("{server_name}.toml")),
        PartyCommand::Serve,
    )?;
    let client_config =
        PartyConfig::load(&dir.join(format!("{client_name}.toml")), PartyCommand::Link)?;

    step(3, "normalising and encoding both parties' records");
    let phase = Instant::now();
    let server = load_party(server_config)?;
    let client = load_party(client_config)?;
    let server_prepared = session::prepare(&server)?;
    let client_prepared = session::prepare(&client)?;
    let encode_time = phase.elapsed();
    eprintln!(
        "      {server_name}: {} records, {client_name}: {} records",
        server.records.ids.len(),
        client.records.ids.len()
    );

    step(
        4,
        &format!(
            "linking over loopback mutual TLS in {} mode ({client_name} connects to \
             {server_name})",
            args.mode
        ),
    );
    let phase = Instant::now();
    let options = |seed: u64| RunOptions {
        seed: Some(seed),
        limits: Limits::default(),
        quiet: true,
    };
    let (server_done, client_done) = super::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on a loopback port")?;
        let address = listener.local_addr()?;
        let server_options = options(args.seed.wrapping_mul(2));
        let client_options = options(args.seed.wrapping_mul(2).wrapping_add(1));
        // The server stops after its one session; if the link fails instead, the server's
        // session failed or never completed, and it would wait for another client forever:
        // the failed link stops it (a dropped sender is no stop).
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let serving = session::serve(
            &server,
            &server_prepared,
            listener,
            &server_options,
            shutdown,
        );
        let linking = async {
            let linked =
                session::link(&client, &client_prepared, Some(address), &client_options).await;
            if linked.is_err() {
                let _ = stop.send(());
            }
            linked
        };
        let (served, linked) = tokio::join!(serving, linking);
        let linked = linked?;
        let mut served = served?;
        let served = served
            .pop()
            .context("the server ended without a completed session")?;
        anyhow::Ok((served, linked))
    })?;
    let link_time = phase.elapsed();

    let truth = std::fs::read_to_string(data_dir.join("truth.csv"))
        .context("cannot read the synthetic truth")?;
    let text = if hospitals {
        hospital_summary(&server_done, &client_done, &truth)?
    } else {
        registry_summary(&server_done, &client_done, &truth, args.show)?
    };
    println!();
    print!("{text}");
    println!();
    for done in [&server_done, &client_done] {
        if args.out.is_some() {
            println!("--- {} ({}) ---", done.party, done.output_dir.display());
        } else {
            println!("--- {} ---", done.party);
        }
        print!(
            "{}",
            blindlink_party::report_text(&done.party, &done.outcome, &done.ledger, &[])
        );
    }
    println!();
    println!(
        "timings: synth {}, encode {} (both parties), link {} (session {}), total {}",
        seconds(synth_time),
        seconds(encode_time),
        seconds(link_time),
        seconds(client_done.elapsed),
        seconds(started.elapsed())
    );
    if args.out.is_some() {
        println!(
            "everything is in {}: rerun with `blindlink serve --config {}` and `blindlink link \
             --config {}`",
            dir.display(),
            dir.join(format!("{server_name}.toml")).display(),
            dir.join(format!("{client_name}.toml")).display()
        );
    }
    Ok(())
}

fn step(n: u32, what: &str) {
    eprintln!("[{n}/4] {what}");
}

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Writes `ca.pem`, the party certificates, the key, the schema and the two configs.
fn write_party_files(
    dir: &Path,
    mode: Mode,
    seed: u64,
    server_name: &str,
    client_name: &str,
) -> anyhow::Result<()> {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs)
        .with_context(|| format!("cannot create {}", certs.display()))?;
    let pki = DevPki::generate(&[server_name, client_name]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write(certs.join("ca.pem"), pki.ca_pem.as_bytes())?;
    for party in &pki.parties {
        write(
            certs.join(format!("{}.pem", party.name)),
            party.cert_pem.as_bytes(),
        )?;
        super::keygen::write_new_private_file(
            &certs.join(format!("{}.key", party.name)),
            party.key_pem.as_bytes(),
            "a private key",
        )?;
    }
    // A demo key derived from the seed, so that a run is reproducible.
    let mut key = Zeroizing::new([0u8; 32]);
    ChaCha20Rng::seed_from_u64(seed ^ 0x006b_6579).fill_bytes(key.as_mut());
    let key_hex = Zeroizing::new(hex::encode(key.as_ref()));
    super::keygen::write_new_private_file(
        &dir.join("linkage.key"),
        key_hex.as_bytes(),
        "a linkage key",
    )?;
    write(dir.join("schema.toml"), SCHEMA.as_bytes())?;
    write(dir.join("clk-schema.toml"), CLK_SCHEMA.as_bytes())?;
    let (server_text, client_text) = if hospitals(mode) {
        (HOSPITAL_A, HOSPITAL_B)
    } else {
        (REGISTRY, INSURER)
    };
    let mode_line = |text: &str| -> anyhow::Result<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with("mode = "))
            .context("an example config has no mode line")?;
        let text = text.replacen(line, &format!("mode = \"{mode}\""), 1);
        if mode != Mode::ClkExchange {
            return Ok(text);
        }
        // Asking the demo for the baseline is the opt-in: both sides accept that the comparing
        // side can decode the CLKs it receives (the report says so again).
        let opt_in = "# reveal_decodable_encodings = true";
        if !text.contains(opt_in) {
            bail!("an example config has no '{opt_in}' line");
        }
        Ok(text.replacen(opt_in, "reveal_decodable_encodings = true", 1))
    };
    write(
        dir.join(format!("{server_name}.toml")),
        mode_line(server_text)?.as_bytes(),
    )?;
    write(
        dir.join(format!("{client_name}.toml")),
        mode_line(client_text)?.as_bytes(),
    )?;
    Ok(())
}

/// Joins the two sides' rows on their link ids: local id pairs with the client's status and
/// score.
fn pairs(
    server: &LinkOutcome,
    client: &LinkOutcome,
) -> Vec<(String, String, LinkStatus, Option<f64>)> {
    let server_ids: HashMap<&str, &str> = server
        .rows
        .iter()
        .filter_map(|r| Some((r.link_id.as_deref()?, r.local_id.as_str())))
        .collect();
    client
        .rows
        .iter()
        .filter_map(|r| {
            let link = r.link_id.as_deref()?;
            let other = server_ids.get(link)?;
            Some((r.local_id.clone(), (*other).to_owned(), r.status, r.score))
        })
        .collect()
}

fn ratio(part: u64, whole: u64) -> String {
    if whole == 0 {
        "n/a".to_owned()
    } else {
        format!("{:.4} ({part}/{whole})", part as f64 / whole as f64)
    }
}

/// The registry-insurer scoreboard: links against truth, wrong-person detection.
fn registry_summary(
    server: &CompletedSession,
    client: &CompletedSession,
    truth_csv: &str,
    show: usize,
) -> anyhow::Result<String> {
    // insurer record -> (true registry record, outcome)
    let mut truth: HashMap<String, (String, String)> = HashMap::new();
    let mut reader = csv::Reader::from_reader(truth_csv.as_bytes());
    for row in reader.records() {
        let row = row.context("truth.csv")?;
        truth.insert(
            row.get(0).unwrap_or("").to_owned(),
            (
                row.get(2).unwrap_or("").to_owned(),
                row.get(3).unwrap_or("").to_owned(),
            ),
        );
    }
    let mut text = String::new();
    let outcome = &client.outcome;
    if outcome.rows.is_empty() {
        let true_count = truth
            .values()
            .filter(|(registry, outcome)| !registry.is_empty() && outcome != "keying-error")
            .count();
        let _ = writeln!(
            text,
            "cardinality: each side learned the intersection size {:?} and the other side's \
             number of distinct keys (the ledgers above) (insurer records holding a registered, valid number: {true_count}; wrong-person \
             numbers count as shared)",
            outcome.learned.intersection_sizes
        );
        return Ok(text);
    }
    let pairs = pairs(&server.outcome, outcome);
    let registered = truth.values().filter(|(r, _)| !r.is_empty()).count() as u64;
    let (mut linked, mut linked_right) = (0u64, 0u64);
    let mut judged = Vec::with_capacity(pairs.len());
    let mut flagged_examples = Vec::new();
    let mut false_flags = Vec::new();
    let mut missed = Vec::new();
    for (insurer, registry, status, score) in &pairs {
        let (true_registry, planted) = truth
            .get(insurer)
            .cloned()
            .unwrap_or_else(|| (String::new(), "unknown".to_owned()));
        let right = *registry == true_registry;
        let flagged = *status == LinkStatus::SuspectedWrongPerson;
        if *status == LinkStatus::Linked {
            linked += 1;
            linked_right += u64::from(right);
        }
        judged.push((right, flagged));
        match (right, flagged) {
            (true, true) => false_flags.push((insurer, registry, planted, *score)),
            (false, true) => flagged_examples.push((insurer, registry, planted, *score)),
            (false, false) => missed.push((insurer, registry, planted, *score)),
            (true, false) => {}
        }
    }
    let flags = FlagQuality::measure(judged);
    let planted: Vec<&String> = truth
        .iter()
        .filter(|(_, (_, o))| o.starts_with("wrong-person"))
        .map(|(id, _)| id)
        .collect();
    let status_of: HashMap<&str, LinkStatus> = outcome
        .rows
        .iter()
        .map(|r| (r.local_id.as_str(), r.status))
        .collect();
    let mut planted_by_status: HashMap<LinkStatus, u64> = HashMap::new();
    for id in &planted {
        if let Some(status) = status_of.get(id.as_str()) {
            *planted_by_status.entry(*status).or_default() += 1;
        }
    }
    let _ = writeln!(
        text,
        "insurer records: {} — {}",
        outcome.rows.len(),
        blindlink_party::counts_line(&outcome.counts)
    );
    let _ = writeln!(
        text,
        "links (status linked) against the truth: precision {}, recall {}",
        ratio(linked_right, linked),
        ratio(linked_right, registered)
    );
    if outcome.mode == Mode::Validate {
        let _ = writeln!(
            text,
            "pairs linked on the My Number: {} wrong person, {} right person",
            flags.wrong, flags.right
        );
        let _ = writeln!(
            text,
            "wrong-person pairs flagged: {}; right-person pairs flagged (false flags): {}",
            ratio(flags.wrong_flagged, flags.wrong),
            ratio(flags.right_flagged, flags.right)
        );
        let get = |s| planted_by_status.get(&s).copied().unwrap_or(0);
        let _ = writeln!(
            text,
            "planted wrong-person numbers: {} — flagged {}, held back as ambiguous {}, linked \
             (missed) {}, unmatched {}",
            planted.len(),
            get(LinkStatus::SuspectedWrongPerson),
            get(LinkStatus::Ambiguous),
            get(LinkStatus::Linked),
            get(LinkStatus::Unmatched)
        );
        for (title, list) in [
            ("flagged wrong-person links", &flagged_examples),
            ("missed wrong-person links", &missed),
            ("right-person links flagged", &false_flags),
        ] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(text, "{title} (first {}):", show.min(list.len()));
            for (insurer, registry, planted, score) in list.iter().take(show) {
                let _ = writeln!(
                    text,
                    "  {insurer} -> {registry}  score {}  truth: {planted}",
                    score.map_or_else(|| "-".to_owned(), |s| format!("{s:.3}"))
                );
            }
        }
    }
    Ok(text)
}

/// The two-hospitals scoreboard: linked pairs against the true pairs.
fn hospital_summary(
    server: &CompletedSession,
    client: &CompletedSession,
    truth_csv: &str,
) -> anyhow::Result<String> {
    let mut truth: HashMap<String, String> = HashMap::new();
    let mut reader = csv::Reader::from_reader(truth_csv.as_bytes());
    for row in reader.records() {
        let row = row.context("truth.csv")?;
        // server is hospital A, client hospital B: key by B.
        truth.insert(
            row.get(1).unwrap_or("").to_owned(),
            row.get(0).unwrap_or("").to_owned(),
        );
    }
    let pairs = pairs(&server.outcome, &client.outcome);
    let linked: Vec<_> = pairs.iter().filter(|p| p.2 == LinkStatus::Linked).collect();
    let right = linked
        .iter()
        .filter(|(b, a, _, _)| truth.get(b) == Some(a))
        .count() as u64;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "linked pairs: {} of {} true pairs; precision {}, recall {}",
        linked.len(),
        truth.len(),
        ratio(right, linked.len() as u64),
        ratio(right, truth.len() as u64)
    );
    Ok(text)
}
