//! The job-engine files of `deploy/` checked against the CLI: the Kubernetes manifests are
//! parsed (yaml-rust2) and their names, env, ports, volumes and command lines compared with
//! each other, with the party configs of their ConfigMap and with `blindlink`'s own argument
//! parser; the Slurm scripts' command lines are parsed by the CLI too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use blindlink_cli::Command;
use blindlink_cli::commands::party::PartyArgs;
use blindlink_cli::commands::party::stage::stage_split_file_name;
use blindlink_cli::commands::split::shard_file_name;
use blindlink_party::{ConfigHost, LiteralAddresses, PartyCommand, PartyConfig, Shard, TlsFiles};
use clap::Parser as _;
use yaml_rust2::{Yaml, YamlLoader};

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The unstaged manifests of `deploy/k8s/`, by file name.
fn unstaged_files() -> BTreeMap<String, String> {
    [
        "config.yaml",
        "split.yaml",
        "registry.yaml",
        "insurer.yaml",
        "merge.yaml",
    ]
    .into_iter()
    .map(|file| {
        let text = std::fs::read_to_string(deploy().join("k8s").join(file)).unwrap();
        (file.to_owned(), text)
    })
    .collect()
}

/// Every document of every unstaged manifest, by `kind/name`.
fn manifests() -> BTreeMap<String, Yaml> {
    documents(&unstaged_files())
        .into_iter()
        .map(|(key, (_, doc))| (key, doc))
        .collect()
}

fn text(y: &Yaml) -> &str {
    y.as_str().unwrap_or_else(|| panic!("not a string: {y:?}"))
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().unwrap_or_else(|| panic!("not a list: {y:?}"))
}

/// The container's env as name -> (literal value or the field it is taken from).
fn env(container: &Yaml) -> BTreeMap<String, String> {
    list(&container["env"])
        .iter()
        .map(|e| {
            let value = e["value"].as_str().map_or_else(
                || text(&e["valueFrom"]["fieldRef"]["fieldPath"]).to_owned(),
                str::to_owned,
            );
            (text(&e["name"]).to_owned(), value)
        })
        .collect()
}

/// The container's command line with `$(VAR)` replaced from `values`, parsed by the CLI.
fn command_line(container: &Yaml, values: &[(&str, &str)]) -> Command {
    try_command_line(container, values).unwrap_or_else(|e| panic!("{e}"))
}

/// As [`command_line`], with the CLI's refusal (an unknown flag, a bad value) as the error.
fn try_command_line(container: &Yaml, values: &[(&str, &str)]) -> Result<Command, String> {
    let mut argv: Vec<String> = list(&container["command"])
        .iter()
        .map(|a| text(a).to_owned())
        .collect();
    for arg in list(&container["args"]) {
        let mut arg = text(arg).to_owned();
        for (name, value) in values {
            arg = arg.replace(&format!("$({name})"), value);
        }
        if arg.contains("$(") {
            return Err(format!("unreplaced variable in {arg}"));
        }
        argv.push(arg);
    }
    assert_eq!(argv[0], "blindlink");
    blindlink_cli::Cli::try_parse_from(&argv)
        .map(|cli| cli.command)
        .map_err(|e| {
            let message = e.to_string();
            format!("{argv:?}: {}", message.lines().next().unwrap_or_default())
        })
}

/// The mount path of each volume the container mounts, by volume, checked against the pod's
/// volumes and the objects they name.
fn mounts(pod: &Yaml, all: &BTreeMap<String, Yaml>) -> BTreeMap<String, String> {
    let container = &pod["containers"][0];
    let mut mounts = BTreeMap::new();
    for mount in list(&container["volumeMounts"]) {
        let name = text(&mount["name"]);
        let volume = list(&pod["volumes"])
            .iter()
            .find(|v| text(&v["name"]) == name)
            .unwrap_or_else(|| panic!("no volume {name}"));
        let object = if let Some(map) = volume["configMap"]["name"].as_str() {
            format!("ConfigMap/{map}")
        } else if let Some(secret) = volume["secret"]["secretName"].as_str() {
            format!("Secret/{secret}")
        } else {
            format!(
                "PersistentVolumeClaim/{}",
                text(&volume["persistentVolumeClaim"]["claimName"])
            )
        };
        assert!(all.contains_key(&object), "volume {name}: no {object}");
        mounts.insert(name.to_owned(), text(&mount["mountPath"]).to_owned());
    }
    mounts
}

/// Cluster DNS names (`registry-0.registry:7443`) do not resolve here: any `host:port` is
/// taken as that port on an unspecified address; names are checked as literal ones.
struct ClusterNames;

impl ConfigHost for ClusterNames {
    fn resolve(&self, text: &str) -> Result<std::net::SocketAddr, String> {
        let (_, port) = text.rsplit_once(':').ok_or("no port")?;
        let port: u16 = port.parse().map_err(|_| format!("bad port in {text}"))?;
        Ok(std::net::SocketAddr::from(([0, 0, 0, 0], port)))
    }

    fn check_party_name(&self, name: &str) -> Result<(), String> {
        LiteralAddresses.check_party_name(name)
    }
}

/// `config.yaml`'s party config `file`, parsed as the CLI would, for `command`.
fn party_config(all: &BTreeMap<String, Yaml>, file: &str, command: PartyCommand) -> PartyConfig {
    let configs = &all["ConfigMap/blindlink-config"]["data"];
    PartyConfig::parse(
        text(&configs[file]),
        Path::new("/etc/blindlink/config").join(file).as_path(),
        command,
        &ClusterNames,
    )
    .unwrap()
}

/// Every file the config names is under one of the pod's mounts, and the file the mount's
/// object provides exists in it (ConfigMap data or Secret keys).
fn check_files(config: &PartyConfig, pod: &Yaml, all: &BTreeMap<String, Yaml>) {
    let TlsFiles::Mutual { ca, cert, key } = &config.tls else {
        panic!("the manifests use mutual TLS");
    };
    let input = config.input.csv().expect("the manifests read a CSV");
    check_paths(
        &[
            ca.as_path(),
            cert,
            key,
            &config.key_file,
            &config.schema,
            input,
            &config.output_dir,
        ],
        pod,
        all,
    );
}

/// Every path is under one of the pod's mounts, and the file the mount's object provides
/// exists in it (ConfigMap data or Secret keys).
fn check_paths(paths: &[&Path], pod: &Yaml, all: &BTreeMap<String, Yaml>) {
    let mounts = mounts(pod, all);
    for &path in paths {
        let (volume, dir) = mounts
            .iter()
            .find(|(_, dir)| path.starts_with(dir.as_str()))
            .unwrap_or_else(|| panic!("{} is on no mounted volume", path.display()));
        let file = path.file_name().unwrap().to_str().unwrap();
        let source = list(&pod["volumes"])
            .iter()
            .find(|v| text(&v["name"]) == volume.as_str())
            .unwrap();
        let provided = if let Some(map) = source["configMap"]["name"].as_str() {
            Some(&all[&format!("ConfigMap/{map}")]["data"])
        } else {
            source["secret"]["secretName"]
                .as_str()
                .map(|s| &all[&format!("Secret/{s}")]["stringData"])
        };
        if let Some(provided) = provided {
            assert!(
                !provided[file].is_badvalue(),
                "{} under {dir}: volume {volume} has no {file}",
                path.display()
            );
        }
    }
}

/// The insurer's `[peer] address` in `config.yaml`'s `file` is a literal address: the CLI
/// resolves it whenever it reads the config, the split Job's `blindlink split` included, which
/// runs before any registry pod (and so its cluster DNS name) exists; every link pod gives its
/// server's name with `--peer-address`.
fn check_literal_peer_address(all: &BTreeMap<String, Yaml>, file: &str) -> Result<(), String> {
    let configs = &all["ConfigMap/blindlink-config"]["data"];
    PartyConfig::parse(
        text(&configs[file]),
        Path::new("/etc/blindlink/config").join(file).as_path(),
        PartyCommand::Link,
        &LiteralAddresses,
    )
    .map(|_| ())
    .map_err(|e| format!("config.yaml: {file}: {e}"))
}

/// The split Job `key` of `file`: `blindlink split` of the party config `config` (the file it
/// was parsed from, `config.source`) into `shards` files (`--shards`, the N of the pods that
/// read them) for `stage` (`None`: unstaged), with what it reads and writes on the pod's
/// mounts. Returns its `--previous` and the file shard I's run must read (`--input`), named
/// exactly as `split` names it, in its `--out` directory: `<stem>.shard-I-of-N.csv`, or with
/// `--previous` (stage K > 0) `<stem>.stage-K.shard-I-of-N.csv`.
fn split_job(
    docs: &BTreeMap<String, (String, Yaml)>,
    all: &BTreeMap<String, Yaml>,
    file: &str,
    key: &str,
    config: &PartyConfig,
    stage: Option<u64>,
    shards: i64,
) -> Result<(Option<PathBuf>, Vec<PathBuf>), String> {
    let (in_file, job) = docs.get(key).ok_or_else(|| format!("{file}: no {key}"))?;
    ensure!(in_file == file, "{key} is in {in_file}, not {file}");
    let pod = &job["spec"]["template"]["spec"];
    let Command::Split(split) = try_command_line(&pod["containers"][0], &[])? else {
        return Err(format!("{file}: {key} does not run split"));
    };
    let config_path = config.source.as_path();
    ensure!(
        split.config == config_path,
        "{file}: {key} splits the input of {}, not of {}",
        split.config.display(),
        config_path.display()
    );
    ensure!(
        i64::try_from(split.shards) == Ok(shards),
        "{file}: {key} splits into {} shards, and {shards} shards read them",
        split.shards
    );
    ensure!(
        split.stage == stage,
        "{file}: {key} splits for stage {:?}, and its shards run stage {stage:?}",
        split.stage
    );
    let input = config.input.csv().expect("the manifests read a CSV");
    check_paths(
        &[
            config_path,
            &config.schema,
            &config.key_file,
            input,
            &split.out,
        ],
        pod,
        all,
    );
    let stem = input.file_stem().unwrap().to_str().unwrap();
    let files = (0..shards)
        .map(|i| {
            let shard = Shard::parse(&format!("{i}/{shards}")).unwrap();
            let name = match (&split.previous, split.stage) {
                (Some(_), Some(k)) => stage_split_file_name(stem, u32::try_from(k).unwrap(), shard),
                _ => shard_file_name(
                    stem,
                    u32::try_from(i).unwrap(),
                    u32::try_from(shards).unwrap(),
                ),
            };
            split.out.join(name)
        })
        .collect();
    Ok((split.previous.clone(), files))
}

/// The party arguments of a `serve` or `link` command line.
fn party_of(command: Command) -> Option<PartyArgs> {
    match command {
        Command::Serve(args) => Some(args.party),
        Command::Link(args) => Some(args.party),
        _ => None,
    }
}

/// Shard I's run reads the file its party's split wrote for shard I, not the whole input.
fn check_reads_split_file(
    file: &str,
    who: &str,
    party: &PartyArgs,
    expected: &Path,
) -> Result<(), String> {
    ensure!(
        party.input.as_deref() == Some(expected),
        "{file}: {who} --shard {} reads {}, not its split file {}",
        party.shard.map(|s| s.to_string()).unwrap_or_default(),
        party
            .input
            .as_ref()
            .map_or_else(|| "the whole input".to_owned(), |p| p.display().to_string()),
        expected.display()
    );
    Ok(())
}

/// The unstaged manifests' split step: `split.yaml`'s Job per party splits the party's input
/// into the N files that the StatefulSet's pod I and the Indexed Job's index I read
/// (`--input`), each its own shard's.
fn check_unstaged_split(files: &BTreeMap<String, String>) -> Result<(), String> {
    let docs = documents(files);
    let all: BTreeMap<String, Yaml> = docs
        .iter()
        .map(|(k, (_, doc))| (k.clone(), doc.clone()))
        .collect();
    check_literal_peer_address(&all, "insurer.toml")?;
    let cases = [
        (
            "registry",
            "StatefulSet/registry",
            PartyCommand::Serve,
            "SHARD_INDEX",
        ),
        (
            "insurer",
            "Job/insurer-link",
            PartyCommand::Link,
            "JOB_COMPLETION_INDEX",
        ),
    ];
    for (party, runner, command, index_var) in cases {
        let (file, runner_doc) = docs.get(runner).ok_or_else(|| format!("no {runner}"))?;
        let spec = &runner_doc["spec"];
        let shards = spec["replicas"]
            .as_i64()
            .or_else(|| spec["completions"].as_i64())
            .unwrap();
        let config_file = format!("{party}.toml");
        let config = party_config(&all, &config_file, command);
        let split_key = format!("Job/{party}-split");
        let (previous, inputs) =
            split_job(&docs, &all, "split.yaml", &split_key, &config, None, shards)?;
        ensure!(
            previous.is_none(),
            "split.yaml: {split_key} reads --previous {previous:?}, and its shards are unstaged"
        );
        let pod = &spec["template"]["spec"];
        for (index, expected) in inputs.iter().enumerate() {
            let (i, n) = (index.to_string(), shards.to_string());
            let args = party_of(try_command_line(
                &pod["containers"][0],
                &[(index_var, &i), ("SHARD_COUNT", &n)],
            )?)
            .ok_or_else(|| format!("{file}: {runner} runs neither serve nor link"))?;
            check_reads_split_file(file, runner, &args, expected)?;
            check_paths(&[expected], pod, &all);
        }
    }
    Ok(())
}

#[test]
fn kubernetes_manifests_agree_with_the_cli_and_the_configs() {
    let all = manifests();
    let service = &all["Service/registry"];
    let statefulset = &all["StatefulSet/registry"];
    let job = &all["Job/insurer-link"];
    let merge = &all["Job/insurer-merge"];

    // The headless Service in front of the StatefulSet's pods.
    assert_eq!(text(&service["spec"]["clusterIP"]), "None");
    assert_eq!(
        text(&statefulset["spec"]["serviceName"]),
        text(&service["metadata"]["name"])
    );
    let pod_labels = &statefulset["spec"]["template"]["metadata"]["labels"];
    for (label, value) in service["spec"]["selector"].as_hash().unwrap() {
        assert_eq!(&pod_labels[text(label)], value, "selector {label:?}");
    }
    let service_port = &list(&service["spec"]["ports"])[0];
    let port = service_port["port"].as_i64().unwrap();

    // The responder: shard = pod index, listening on the Service's port.
    let registry_pod = &statefulset["spec"]["template"]["spec"];
    let server = &registry_pod["containers"][0];
    let server_env = env(server);
    assert_eq!(
        server_env["SHARD_INDEX"],
        "metadata.labels['apps.kubernetes.io/pod-index']"
    );
    let shards = statefulset["spec"]["replicas"].as_i64().unwrap();
    assert_eq!(server_env["SHARD_COUNT"], shards.to_string());
    let container_port = list(&server["ports"])
        .iter()
        .find(|p| p["name"] == service_port["targetPort"])
        .unwrap();
    assert_eq!(container_port["containerPort"].as_i64(), Some(port));
    assert_eq!(
        server["readinessProbe"]["tcpSocket"]["port"],
        service_port["targetPort"]
    );
    let registry = party_config(&all, "registry.toml", PartyCommand::Serve);
    assert_eq!(
        registry.listen.unwrap().port(),
        u16::try_from(port).unwrap()
    );
    check_files(&registry, registry_pod, &all);
    for index in 0..shards {
        let index = index.to_string();
        let count = shards.to_string();
        let Command::Serve(args) =
            command_line(server, &[("SHARD_INDEX", &index), ("SHARD_COUNT", &count)])
        else {
            panic!("the StatefulSet does not run serve");
        };
        assert_eq!(
            args.party.config,
            Path::new("/etc/blindlink/config/registry.toml")
        );
        assert_eq!(
            args.party.shard,
            Some(Shard::parse(&format!("{index}/{count}")).unwrap())
        );
        let listen: std::net::SocketAddr = args.listen.unwrap().parse().unwrap();
        assert_eq!(i64::from(listen.port()), port);
    }

    // The initiator: an Indexed Job, index I linking with pod I through the Service.
    assert_eq!(text(&job["spec"]["completionMode"]), "Indexed");
    assert_eq!(job["spec"]["completions"].as_i64(), Some(shards));
    assert_eq!(job["spec"]["parallelism"].as_i64(), Some(shards));
    let insurer_pod = &job["spec"]["template"]["spec"];
    let client = &insurer_pod["containers"][0];
    let client_env = env(client);
    assert_eq!(
        client_env["JOB_COMPLETION_INDEX"],
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    assert_eq!(client_env["SHARD_COUNT"], shards.to_string());
    let insurer = party_config(&all, "insurer.toml", PartyCommand::Link);
    let (_, peer_name) = insurer.peer.clone().unwrap();
    assert_eq!(peer_name, registry.name, "the registry's certificate name");
    assert!(registry.allowed_peers.contains(&insurer.name));
    check_files(&insurer, insurer_pod, &all);
    for index in 0..shards {
        let index = index.to_string();
        let count = shards.to_string();
        let Command::Link(args) = command_line(
            client,
            &[("JOB_COMPLETION_INDEX", &index), ("SHARD_COUNT", &count)],
        ) else {
            panic!("the Job does not run link");
        };
        assert_eq!(
            args.party.shard,
            Some(Shard::parse(&format!("{index}/{count}")).unwrap())
        );
        assert_eq!(
            args.peer_address.unwrap(),
            format!(
                "{}-{index}.{}:{port}",
                text(&statefulset["metadata"]["name"]),
                text(&service["metadata"]["name"])
            )
        );
    }

    // The merge takes every shard directory of the insurer's output directory.
    let Command::Merge(args) =
        command_line(&merge["spec"]["template"]["spec"]["containers"][0], &[])
    else {
        panic!("the merge Job does not run merge");
    };
    let expected: Vec<PathBuf> = (0..shards)
        .map(|i| insurer.output_dir.join(format!("shard-{i}-of-{shards}")))
        .collect();
    assert_eq!(args.shards, expected);
    assert_eq!(check_unstaged_split(&unstaged_files()), Ok(()));
}

#[test]
fn a_wrong_split_step_in_the_unstaged_manifests_fails_the_check() {
    let check = |file: &str, from: &str, to: &str, expected: &str| {
        let mut files = unstaged_files();
        let text = files.get_mut(file).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        *text = text.replacen(from, to, 1);
        let got = check_unstaged_split(&files)
            .err()
            .unwrap_or_else(|| panic!("{file}: {from} -> {to}: the check passed"));
        assert!(got.ends_with(expected), "{file}: {from} -> {to}: {got}");
    };
    // A pod reading another file than the one split writes for its shard.
    check(
        "registry.yaml",
        "/data/split/registry/registry.shard-",
        "/data/split/registry.shard-",
        "registry.yaml: StatefulSet/registry --shard 0/4 reads \
         /data/split/registry.shard-0-of-4.csv, not its split file \
         /data/split/registry/registry.shard-0-of-4.csv",
    );
    check(
        "insurer.yaml",
        "shard-$(JOB_COMPLETION_INDEX)-of-$(SHARD_COUNT).csv",
        "shard-$(JOB_COMPLETION_INDEX)-of-4.csv.gz",
        "insurer.yaml: Job/insurer-link --shard 0/4 reads \
         /data/split/insurer/insurer.shard-0-of-4.csv.gz, not its split file \
         /data/split/insurer/insurer.shard-0-of-4.csv",
    );
    // A pod reading the whole input.
    check(
        "insurer.yaml",
        "            - --input\n            - /data/split/insurer/insurer.shard-$(JOB_COMPLETION_INDEX)-of-$(SHARD_COUNT).csv\n",
        "",
        "insurer.yaml: Job/insurer-link --shard 0/4 reads the whole input, not its split file \
         /data/split/insurer/insurer.shard-0-of-4.csv",
    );
    // No split Job, or one that splits another config, into another N, or for a stage.
    check(
        "split.yaml",
        "name: registry-split",
        "name: registry-splitter",
        "split.yaml: no Job/registry-split",
    );
    check(
        "split.yaml",
        "/etc/blindlink/config/insurer.toml",
        "/etc/blindlink/config/registry.toml",
        "split.yaml: Job/insurer-split splits the input of /etc/blindlink/config/registry.toml, \
         not of /etc/blindlink/config/insurer.toml",
    );
    check(
        "split.yaml",
        "- \"4\"",
        "- \"3\"",
        "split.yaml: Job/registry-split splits into 3 shards, and 4 shards read them",
    );
    check(
        "split.yaml",
        "            - --out\n            - /data/split/registry\n",
        "            - --stage\n            - \"1\"\n            - --out\n            - /data/split/registry\n",
        "split.yaml: Job/registry-split splits for stage Some(1), and its shards run stage None",
    );
    // A cluster name in the insurer's config, which its split cannot resolve.
    check(
        "config.yaml",
        "address = \"127.0.0.1:7443\"",
        "address = \"registry-0.registry:7443\"",
        "config.yaml: insurer.toml: /etc/blindlink/config/insurer.toml: peer.address: cannot \
         resolve 'registry-0.registry:7443': invalid socket address",
    );
    check(
        "split.yaml",
        "- split\n",
        "- splits\n",
        "error: unrecognized subcommand 'splits'",
    );
}

/// The `exec "$BIN" ...` command lines of a Slurm script, continuation lines joined, with
/// each shell expansion replaced by the value its flag takes in `values`.
fn script_commands(file: &str, values: &[(&str, &str)]) -> Vec<Command> {
    let script = std::fs::read_to_string(deploy().join("slurm").join(file)).unwrap();
    let joined = script.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| l.trim().strip_prefix("exec \"$BIN\" "))
        .map(|line| {
            let mut argv = vec!["blindlink".to_owned()];
            let mut previous = String::new();
            for word in line.split_whitespace() {
                let word = word.trim_matches('"');
                // A bash array ("${STAGE[@]}") expands to the words its entry lists.
                if let Some((_, words)) = values
                    .iter()
                    .find(|(name, _)| name.starts_with("${") && *name == word)
                {
                    argv.extend(words.split_whitespace().map(str::to_owned));
                    previous = String::new();
                    continue;
                }
                let arg = if word.contains('$') {
                    values
                        .iter()
                        .find(|(flag, _)| {
                            *flag == previous || (*flag == "*" && previous.is_empty())
                        })
                        .map_or_else(
                            || panic!("{file}: no value for {word}"),
                            |(_, v)| (*v).to_owned(),
                        )
                } else {
                    word.to_owned()
                };
                previous = if word.starts_with("--") {
                    word.to_owned()
                } else {
                    String::new()
                };
                argv.push(arg);
            }
            blindlink_cli::Cli::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{file}: {argv:?}: {e}"))
                .command
        })
        .collect()
}

#[test]
fn slurm_scripts_use_flags_the_cli_has() {
    // Unstaged (BLINDLINK_STAGE unset: the array is empty) and a cascade's stage 1, each
    // reading the whole input (no split: INPUT is empty) or its split file.
    let cases = [
        ("", None, None),
        ("--stage 1 --previous merged-stage-0", Some(1), None),
        ("", None, Some("split/registry.shard-3-of-4.csv")),
        (
            "--stage 1 --previous merged-stage-0",
            Some(1),
            Some("split/stage-1/registry.stage-1.shard-3-of-4.csv"),
        ),
    ];
    for (stage, expected, file) in cases {
        let input = file.map_or_else(String::new, |f| format!("--input {f}"));
        let commands = script_commands(
            "blindlink-shard.sbatch",
            &[
                ("--config", "registry.toml"),
                ("--shard", "3/4"),
                ("${STAGE[@]}", stage),
                ("${INPUT[@]}", &input),
                ("--listen", "0.0.0.0:7446"),
                ("--peer-address", "127.0.0.1:7446"),
            ],
        );
        let [Command::Serve(serve), Command::Link(link)] = &commands[..] else {
            panic!("expected serve then link: {commands:?}");
        };
        for party in [&serve.party, &link.party] {
            assert_eq!(party.shard, Shard::parse("3/4").ok());
            assert_eq!(party.stage, expected);
            assert_eq!(
                party.previous.as_deref(),
                expected.map(|_| Path::new("merged-stage-0"))
            );
            assert_eq!(party.input.as_deref(), file.map(Path::new));
        }
        assert_eq!(link.peer_address.as_deref(), Some("127.0.0.1:7446"));
    }
    let commands = script_commands(
        "blindlink-merge.sbatch",
        &[("--out", "merged"), ("*", "out/shard-0-of-1")],
    );
    let [Command::Merge(merge)] = &commands[..] else {
        panic!("expected merge: {commands:?}");
    };
    assert_eq!(merge.out, Path::new("merged"));
    // The split job, unstaged and for stage 1.
    for (stage, expected) in [("", None), ("--stage 1 --previous merged-stage-0", Some(1))] {
        let commands = script_commands(
            "blindlink-split.sbatch",
            &[
                ("--shards", "4"),
                ("--config", "registry.toml"),
                ("${STAGE[@]}", stage),
                ("--out", "split/stage-1"),
            ],
        );
        let [Command::Split(split)] = &commands[..] else {
            panic!("expected split: {commands:?}");
        };
        assert_eq!(split.shards, 4);
        assert_eq!(split.config, Path::new("registry.toml"));
        assert_eq!(split.stage, expected);
        assert_eq!(
            split.previous.as_deref(),
            expected.map(|_| Path::new("merged-stage-0"))
        );
    }
    let script = std::fs::read_to_string(deploy().join("slurm/blindlink-shard.sbatch")).unwrap();
    assert!(script.contains("I=$SLURM_ARRAY_TASK_ID"));
    // Task I reads its own stage's split file.
    assert!(script.contains("pattern=\"*.stage-$BLINDLINK_STAGE.shard-$I-of-$N.csv\""));
    assert!(script.contains("pattern=\"*.shard-$I-of-$N.csv\""));
    assert!(script.contains("INPUT=(--input \"${files[0]}\")"));
    assert!(script.contains("STAGE=(--stage \"$BLINDLINK_STAGE\")"));
    assert!(script.contains("STAGE+=(--previous \"$BLINDLINK_PREVIOUS\")"));
    let merge = std::fs::read_to_string(deploy().join("slurm/blindlink-merge.sbatch")).unwrap();
    assert!(merge.contains("$BLINDLINK_SHARD_ROOT/stage-$s/shard-$i-of-$BLINDLINK_SHARDS"));
    let submit = std::fs::read_to_string(deploy().join("slurm/submit.sh")).unwrap();
    assert!(submit.contains("--dependency=\"afterok:$array\""));
    // A cascade: stage K's array waits for the merge of stages 0 to K-1, which it reads.
    assert!(submit.contains("after=(--dependency=\"afterok:$merge\")"));
    assert!(submit.contains("export BLINDLINK_PREVIOUS=$MERGED-stage-$((k - 1))"));
    // The split waits for what the array would (the previous merge), the array for the split.
    assert!(submit.contains("split_dep=(--dependency=\"afterok:$split\")"));
    assert!(submit.contains("\"${after[@]}\" --export=ALL"));
    assert!(submit.contains("export BLINDLINK_SPLIT_DIR=$SPLIT_ROOT/stage-$k"));
}

/// The files of the cascade's Kubernetes stages (`deploy/k8s/cascade/`), by name, with the
/// ConfigMap and secrets of `config.yaml`.
fn cascade_files() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    files.insert(
        "config.yaml".to_owned(),
        std::fs::read_to_string(deploy().join("k8s/config.yaml")).unwrap(),
    );
    for entry in std::fs::read_dir(deploy().join("k8s/cascade")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        files.insert(name, std::fs::read_to_string(&path).unwrap());
    }
    files
}

/// Every document of the `.yaml` files, by `kind/name`, and the file it is in.
fn documents(files: &BTreeMap<String, String>) -> BTreeMap<String, (String, Yaml)> {
    let mut all = BTreeMap::new();
    for (file, text) in files.iter().filter(|(f, _)| f.ends_with(".yaml")) {
        for doc in YamlLoader::load_from_str(text).unwrap() {
            let key = format!(
                "{}/{}",
                text_of(&doc["kind"]),
                text_of(&doc["metadata"]["name"])
            );
            assert!(
                all.insert(key.clone(), (file.clone(), doc)).is_none(),
                "{key} twice"
            );
        }
    }
    all
}

fn text_of(y: &Yaml) -> &str {
    text(y)
}

/// What a stage's object does, as the check follows the script: the stage it runs, the
/// output directory it writes into, and whether it is a server (drained by deletion).
struct Producer {
    stage: u32,
    root: PathBuf,
    server: bool,
}

/// Checks the cascade's stage manifests against the CLI and the configs, and follows
/// `cascade.sh` stage by stage: an object is applied only once what it reads exists (stage
/// K's `--previous` is a completed merge of stages 0 to K-1; a merge's shards were written
/// by completed links and drained servers), and every name it waits for or deletes exists.
fn check_cascade(files: &BTreeMap<String, String>) -> Result<(), String> {
    let docs = documents(files);
    let all: BTreeMap<String, Yaml> = docs
        .iter()
        .map(|(k, (_, doc))| (k.clone(), doc.clone()))
        .collect();
    let registry = party_config(&all, "registry-cascade.toml", PartyCommand::Serve);
    let insurer = party_config(&all, "insurer-cascade.toml", PartyCommand::Link);
    let keys = registry.match_keys.len();
    ensure!(
        keys == insurer.match_keys.len() && keys > 1,
        "the cascade configs list {keys} and {} keys",
        insurer.match_keys.len()
    );
    let (_, peer_name) = insurer.peer.clone().unwrap();
    ensure!(peer_name == registry.name, "peer name {peer_name}");
    check_literal_peer_address(&all, "insurer-cascade.toml")?;

    // Each stage's objects, checked on their own; what they read and write, for the script.
    let mut producers: BTreeMap<String, Producer> = BTreeMap::new();
    // What reads a previous stage's merge: its --previous, stage and party.
    let mut reads: BTreeMap<String, (PathBuf, u32, &str)> = BTreeMap::new();
    // What reads a split's files: the split Job, which must be Complete first.
    let mut needs: BTreeMap<String, String> = BTreeMap::new();
    let mut merges: BTreeMap<String, (PathBuf, PathBuf, u32)> = BTreeMap::new();
    for k in 0..keys {
        let stage = u32::try_from(k).unwrap();
        let file = format!("stage-{k}.yaml");
        let get = |key: &str| -> Result<&Yaml, String> {
            docs.get(key)
                .filter(|(f, _)| *f == file)
                .map(|(_, doc)| doc)
                .ok_or_else(|| format!("{file}: no {key}"))
        };
        let service = get(&format!("Service/registry-stage-{k}"))?;
        let statefulset = get(&format!("StatefulSet/registry-stage-{k}"))?;
        let job = get(&format!("Job/insurer-link-stage-{k}"))?;
        ensure!(
            text(&service["spec"]["clusterIP"]) == "None",
            "{file}: not headless"
        );
        ensure!(
            statefulset["spec"]["serviceName"] == service["metadata"]["name"],
            "{file}: the StatefulSet's serviceName is not its Service"
        );
        let pod_labels = &statefulset["spec"]["template"]["metadata"]["labels"];
        for (label, value) in service["spec"]["selector"].as_hash().unwrap() {
            ensure!(
                &pod_labels[text(label)] == value,
                "{file}: selector {label:?}"
            );
        }
        for (label, value) in statefulset["spec"]["selector"]["matchLabels"]
            .as_hash()
            .unwrap()
        {
            ensure!(
                &pod_labels[text(label)] == value,
                "{file}: matchLabels {label:?}"
            );
        }
        let service_port = &list(&service["spec"]["ports"])[0];
        let port = service_port["port"].as_i64().unwrap();
        let shards = statefulset["spec"]["replicas"].as_i64().unwrap();
        let server_pod = &statefulset["spec"]["template"]["spec"];
        let server = &server_pod["containers"][0];
        let server_env = env(server);
        ensure!(
            server_env["SHARD_INDEX"] == "metadata.labels['apps.kubernetes.io/pod-index']",
            "{file}: SHARD_INDEX"
        );
        ensure!(
            server_env["SHARD_COUNT"] == shards.to_string(),
            "{file}: SHARD_COUNT {} and replicas {shards}",
            server_env["SHARD_COUNT"]
        );
        let container_port = list(&server["ports"])
            .iter()
            .find(|p| p["name"] == service_port["targetPort"])
            .ok_or_else(|| format!("{file}: no container port {:?}", service_port["targetPort"]))?;
        ensure!(
            container_port["containerPort"].as_i64() == Some(port),
            "{file}: container port"
        );
        ensure!(
            registry.listen.unwrap().port() == u16::try_from(port).unwrap(),
            "{file}: the config listens on another port"
        );
        check_files(&registry, server_pod, &all);
        ensure!(
            text(&job["spec"]["completionMode"]) == "Indexed"
                && job["spec"]["completions"].as_i64() == Some(shards)
                && job["spec"]["parallelism"].as_i64() == Some(shards),
            "{file}: the Job is not Indexed with {shards} completions"
        );
        let client_pod = &job["spec"]["template"]["spec"];
        let client = &client_pod["containers"][0];
        let client_env = env(client);
        ensure!(
            client_env["JOB_COMPLETION_INDEX"]
                == "metadata.annotations['batch.kubernetes.io/job-completion-index']",
            "{file}: JOB_COMPLETION_INDEX"
        );
        ensure!(
            client_env["SHARD_COUNT"] == shards.to_string(),
            "{file}: the Job's SHARD_COUNT"
        );
        check_files(&insurer, client_pod, &all);
        // Each party's split of this stage, whose files its pods read.
        let split_file = format!("split-stage-{k}.yaml");
        let mut splits = BTreeMap::new();
        for (party, config) in [("registry", &registry), ("insurer", &insurer)] {
            let key = format!("Job/{party}-split-stage-{k}");
            let (split_previous, inputs) = split_job(
                &docs,
                &all,
                &split_file,
                &key,
                config,
                Some(k as u64),
                shards,
            )?;
            ensure!(
                split_previous.is_some() == (k > 0),
                "{split_file}: {key}: --previous {split_previous:?} at stage {k}"
            );
            if let Some(dir) = split_previous {
                reads.insert(key.clone(), (dir, stage, party));
            }
            splits.insert(party, (key, inputs));
        }
        let mut previous = BTreeMap::new();
        for index in 0..shards {
            let (i, n) = (index.to_string(), shards.to_string());
            let shard = Shard::parse(&format!("{i}/{n}")).ok();
            let Command::Serve(serve) =
                try_command_line(server, &[("SHARD_INDEX", &i), ("SHARD_COUNT", &n)])?
            else {
                return Err(format!("{file}: the StatefulSet does not run serve"));
            };
            let Command::Link(link) =
                try_command_line(client, &[("JOB_COMPLETION_INDEX", &i), ("SHARD_COUNT", &n)])?
            else {
                return Err(format!("{file}: the Job does not run link"));
            };
            ensure!(
                serve.party.config == Path::new("/etc/blindlink/config/registry-cascade.toml")
                    && link.party.config == Path::new("/etc/blindlink/config/insurer-cascade.toml"),
                "{file}: not the cascade's configs"
            );
            for (who, party) in [("serve", &serve.party), ("link", &link.party)] {
                ensure!(
                    party.shard == shard,
                    "{file}: {who} runs shard {:?}",
                    party.shard
                );
                ensure!(
                    party.stage == Some(k as u64),
                    "{file}: {who} runs stage {:?}",
                    party.stage
                );
                ensure!(
                    party.previous.is_some() == (k > 0),
                    "{file}: {who}: --previous {:?} at stage {k}",
                    party.previous
                );
            }
            for (who, party, name, pod) in [
                ("serve", &serve.party, "registry", server_pod),
                ("link", &link.party, "insurer", client_pod),
            ] {
                let expected = &splits[name].1[usize::try_from(index).unwrap()];
                check_reads_split_file(&file, who, party, expected)?;
                check_paths(&[expected], pod, &all);
            }
            let listen: std::net::SocketAddr = serve.listen.unwrap().parse().unwrap();
            ensure!(i64::from(listen.port()) == port, "{file}: --listen");
            let expected = format!(
                "{}-{i}.{}:{port}",
                text(&statefulset["metadata"]["name"]),
                text(&service["metadata"]["name"])
            );
            ensure!(
                link.peer_address.as_deref() == Some(expected.as_str()),
                "{file}: shard {i} links with {:?}, not its server {expected}",
                link.peer_address
            );
            previous.insert("registry", serve.party.previous.clone());
            previous.insert("insurer", link.party.previous.clone());
        }
        let statefulset_key = format!("StatefulSet/registry-stage-{k}");
        let job_key = format!("Job/insurer-link-stage-{k}");
        for (key, config, party) in [
            (&statefulset_key, &registry, "registry"),
            (&job_key, &insurer, "insurer"),
        ] {
            producers.insert(
                key.clone(),
                Producer {
                    stage,
                    root: config.output_dir.clone(),
                    server: key.starts_with("StatefulSet/"),
                },
            );
            if let Some(Some(dir)) = previous.get(party) {
                reads.insert(key.clone(), (dir.clone(), stage, party));
            }
            needs.insert(key.clone(), splits[party].0.clone());
        }

        // The merges of stages 0 to K, one per party, from the party's shard root.
        let file = format!("merge-stage-{k}.yaml");
        for (party, config) in [("registry", &registry), ("insurer", &insurer)] {
            let key = format!("Job/{party}-merge-stage-{k}");
            let (in_file, job) = docs.get(&key).ok_or_else(|| format!("{file}: no {key}"))?;
            ensure!(*in_file == file, "{key} is in {in_file}, not {file}");
            let pod = &job["spec"]["template"]["spec"];
            let Command::Merge(merge) = try_command_line(&pod["containers"][0], &[])? else {
                return Err(format!("{file}: {key} does not run merge"));
            };
            ensure!(
                merge.shards == [config.output_dir.clone()],
                "{file}: {key} merges {:?}, not the party's output directory {}",
                merge.shards,
                config.output_dir.display()
            );
            ensure!(
                merge.last_stage == Some(stage),
                "{file}: {key} merges up to stage {:?}",
                merge.last_stage
            );
            let data = mounts(pod, &all);
            for path in [&merge.out, &config.output_dir] {
                ensure!(
                    data.values().any(|dir| path.starts_with(dir)),
                    "{file}: {key}: {} is on no mounted volume",
                    path.display()
                );
            }
            merges.insert(key, (merge.out.clone(), config.output_dir.clone(), stage));
        }
    }
    // Stage K + 1 reads the merges of stage K, each party its own.
    for (key, (dir, stage, party)) in &reads {
        let source = format!("Job/{party}-merge-stage-{}", stage - 1);
        ensure!(
            merges.get(&source).is_some_and(|(out, _, _)| out == dir),
            "{key} reads --previous {}, which {source} does not write",
            dir.display()
        );
    }

    // The script, stage by stage.
    let script = &files["cascade.sh"];
    ensure!(
        script.contains(&format!("STAGES=${{1:-{keys}}}")),
        "cascade.sh: the default number of stages is not the configs' {keys} keys"
    );
    let joined = script.replace("\\\n", " ");
    let body: Vec<&str> = joined
        .lines()
        .skip_while(|l| !l.starts_with("for ((k = 0; k < STAGES; k++)); do"))
        .skip(1)
        .take_while(|l| *l != "done")
        .map(str::trim)
        .collect();
    ensure!(!body.is_empty(), "cascade.sh: no loop over the stages");
    let quoted = |line: &str, k: usize| -> Vec<String> {
        line.split('"')
            .skip(1)
            .step_by(2)
            .map(|w| w.replace("$k", &k.to_string()))
            .collect()
    };
    let (mut applied, mut completed, mut deleted) =
        (BTreeMap::new(), Vec::<String>::new(), Vec::<String>::new());
    for k in 0..keys {
        for line in &body {
            if line.contains(" apply -f ") {
                let file = quoted(line, k)[0].replace("$HERE/", "");
                let objects: Vec<&String> = docs
                    .iter()
                    .filter(|(_, (f, _))| *f == file)
                    .map(|(key, _)| key)
                    .collect();
                ensure!(
                    !objects.is_empty(),
                    "cascade.sh applies {file}, which holds nothing"
                );
                for key in objects {
                    if let Some(split) = needs.get(key) {
                        ensure!(
                            completed.contains(split),
                            "cascade.sh applies {key} before {split} completed"
                        );
                    }
                    if let Some((dir, _, _)) = reads.get(key) {
                        let ready = merges
                            .iter()
                            .any(|(job, (out, _, _))| out == dir && completed.contains(job));
                        ensure!(
                            ready,
                            "cascade.sh applies {key} before the merge it reads ({}) completed",
                            dir.display()
                        );
                    }
                    if let Some((_, root, last)) = merges.get(key) {
                        for (producer, p) in &producers {
                            if p.root != *root || p.stage > *last {
                                continue;
                            }
                            let done = if p.server {
                                deleted.contains(producer)
                            } else {
                                completed.contains(producer)
                            };
                            ensure!(
                                done,
                                "cascade.sh applies {key} before {producer} {}",
                                if p.server { "drained" } else { "completed" }
                            );
                        }
                    }
                    applied.insert(key.clone(), k);
                }
            } else if line.starts_with("wait_jobs ") {
                for job in quoted(line, k) {
                    let key = format!("Job/{job}");
                    ensure!(
                        applied.contains_key(&key),
                        "cascade.sh waits for {key}, which it has not applied"
                    );
                    completed.push(key);
                }
            } else if line.contains(" delete ") {
                for object in quoted(line, k).iter().filter(|w| w.contains('/')) {
                    let (kind, name) = object.split_once('/').unwrap();
                    let kind = match kind {
                        "statefulset" => "StatefulSet",
                        "service" => "Service",
                        other => return Err(format!("cascade.sh deletes a {other}")),
                    };
                    let key = format!("{kind}/{name}");
                    ensure!(
                        applied.contains_key(&key),
                        "cascade.sh deletes {key}, which it has not applied"
                    );
                    // A server is drained once its clients are done.
                    if let Some(p) = producers.get(&key) {
                        let link = format!("Job/insurer-link-stage-{}", p.stage);
                        ensure!(
                            completed.contains(&link),
                            "cascade.sh deletes {key} before {link} completed"
                        );
                    }
                    deleted.push(key);
                }
            }
        }
    }
    for key in merges.keys() {
        ensure!(completed.contains(key), "cascade.sh never waits for {key}");
    }
    Ok(())
}

#[test]
fn kubernetes_cascade_stages_agree_with_the_cli_and_run_in_order() {
    assert_eq!(check_cascade(&cascade_files()), Ok(()));
}

#[test]
fn a_wrong_flag_or_order_in_the_cascade_fails_the_check() {
    let check = |file: &str, from: &str, to: &str, expected: &str| {
        let mut files = cascade_files();
        let text = files.get_mut(file).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        *text = text.replacen(from, to, 1);
        let got = check_cascade(&files)
            .err()
            .unwrap_or_else(|| panic!("{file}: {from} -> {to}: the check passed"));
        assert!(got.ends_with(expected), "{file}: {from} -> {to}: {got}");
    };
    check(
        "stage-1.yaml",
        "- --previous",
        "- --previos",
        "error: unexpected argument '--previos' found",
    );
    check(
        "stage-1.yaml",
        "- \"1\"",
        "- \"0\"",
        "stage-1.yaml: serve runs stage Some(0)",
    );
    check(
        "stage-1.yaml",
        "registry-cascade-merged-stage-0",
        "registry-cascade-merged",
        "StatefulSet/registry-stage-1 reads --previous /data/out/registry-cascade-merged, \
         which Job/registry-merge-stage-0 does not write",
    );
    check(
        "merge-stage-0.yaml",
        "- --last-stage",
        "- --last-stages",
        "error: unexpected argument '--last-stages' found",
    );
    check(
        "cascade.sh",
        "  wait_jobs \"insurer-link-stage-$k\"\n",
        "",
        "cascade.sh deletes StatefulSet/registry-stage-0 before Job/insurer-link-stage-0 \
         completed",
    );
    check(
        "cascade.sh",
        "  wait_jobs \"registry-merge-stage-$k\" \"insurer-merge-stage-$k\"\n",
        "",
        "cascade.sh applies Job/insurer-split-stage-1 before the merge it reads \
         (/data/out/insurer-cascade-merged-stage-0) completed",
    );
}

#[test]
fn a_wrong_split_step_in_the_cascade_fails_the_check() {
    let check = |file: &str, from: &str, to: &str, expected: &str| {
        let mut files = cascade_files();
        let text = files.get_mut(file).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        *text = text.replacen(from, to, 1);
        let got = check_cascade(&files)
            .err()
            .unwrap_or_else(|| panic!("{file}: {from} -> {to}: the check passed"));
        assert!(got.ends_with(expected), "{file}: {from} -> {to}: {got}");
    };
    // A pod reading another file than the one its split writes for its stage and shard.
    check(
        "stage-1.yaml",
        "registry.stage-1.shard-",
        "registry.shard-",
        "stage-1.yaml: serve --shard 0/4 reads \
         /data/split/registry-cascade/stage-1/registry.shard-0-of-4.csv, not its split file \
         /data/split/registry-cascade/stage-1/registry.stage-1.shard-0-of-4.csv",
    );
    check(
        "stage-0.yaml",
        "/data/split/insurer-cascade/stage-0/",
        "/data/split/insurer-cascade/stage-1/",
        "stage-0.yaml: link --shard 0/4 reads \
         /data/split/insurer-cascade/stage-1/insurer.shard-0-of-4.csv, not its split file \
         /data/split/insurer-cascade/stage-0/insurer.shard-0-of-4.csv",
    );
    // A pod reading the whole input.
    check(
        "stage-0.yaml",
        "            - --input\n            - /data/split/insurer-cascade/",
        "            - /data/split/insurer-cascade/",
        "error: unexpected argument '/data/split/insurer-cascade/stage-0/insurer.shard-0-of-4.csv' \
         found",
    );
    check(
        "stage-1.yaml",
        "            - --input\n            - /data/split/registry-cascade/stage-1/\
         registry.stage-1.shard-$(SHARD_INDEX)-of-$(SHARD_COUNT).csv\n",
        "",
        "stage-1.yaml: serve --shard 0/4 reads the whole input, not its split file \
         /data/split/registry-cascade/stage-1/registry.stage-1.shard-0-of-4.csv",
    );
    // No split Job for a party and stage.
    check(
        "split-stage-1.yaml",
        "kind: Job",
        "kind: CronJob",
        "split-stage-1.yaml: no Job/registry-split-stage-1",
    );
    check(
        "split-stage-0.yaml",
        "name: insurer-split-stage-0",
        "name: insurer-split",
        "split-stage-0.yaml: no Job/insurer-split-stage-0",
    );
    // A split for another stage, without the previous merge or with the other party's.
    check(
        "split-stage-1.yaml",
        "- \"1\"",
        "- \"0\"",
        "split-stage-1.yaml: Job/registry-split-stage-1 splits for stage Some(0), and its shards \
         run stage Some(1)",
    );
    check(
        "split-stage-1.yaml",
        "            - --previous\n            - /data/out/registry-cascade-merged-stage-0\n",
        "",
        "split-stage-1.yaml: Job/registry-split-stage-1: --previous None at stage 1",
    );
    check(
        "split-stage-1.yaml",
        "/data/out/insurer-cascade-merged-stage-0",
        "/data/out/registry-cascade-merged-stage-0",
        "Job/insurer-split-stage-1 reads --previous /data/out/registry-cascade-merged-stage-0, \
         which Job/insurer-merge-stage-0 does not write",
    );
    check(
        "split-stage-0.yaml",
        "- \"4\"",
        "- \"2\"",
        "split-stage-0.yaml: Job/registry-split-stage-0 splits into 2 shards, and 4 shards read \
         them",
    );
    check(
        "config.yaml",
        "registry-stage-K:7443).\n    address = \"127.0.0.1:7443\"",
        "registry-stage-K:7443).\n    address = \"registry-stage-0-0.registry-stage-0:7443\"",
        "config.yaml: insurer-cascade.toml: /etc/blindlink/config/insurer-cascade.toml: \
         peer.address: cannot resolve 'registry-stage-0-0.registry-stage-0:7443': invalid socket \
         address",
    );
    // The script starting a stage's pods before its splits are Complete, or not applying them.
    check(
        "cascade.sh",
        "  wait_jobs \"registry-split-stage-$k\" \"insurer-split-stage-$k\"\n",
        "",
        "cascade.sh applies Job/insurer-link-stage-0 before Job/insurer-split-stage-0 completed",
    );
    check(
        "cascade.sh",
        "  $KUBECTL apply -f \"$HERE/split-stage-$k.yaml\"\n",
        "",
        "cascade.sh waits for Job/registry-split-stage-0, which it has not applied",
    );
}
