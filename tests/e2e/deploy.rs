//! The job-engine files of `deploy/` checked against the CLI: the Kubernetes manifests are
//! parsed (yaml-rust2) and their names, env, ports, volumes and command lines compared with
//! each other, with the party configs of their ConfigMap and with `blindlink`'s own argument
//! parser; the Slurm scripts' command lines are parsed by the CLI too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use blindlink_cli::Command;
use blindlink_party::{ConfigHost, LiteralAddresses, PartyCommand, PartyConfig, Shard, TlsFiles};
use clap::Parser as _;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every document of every manifest, by `kind/name`.
fn manifests() -> BTreeMap<String, Yaml> {
    let mut all = BTreeMap::new();
    for file in ["config.yaml", "registry.yaml", "insurer.yaml", "merge.yaml"] {
        let text = std::fs::read_to_string(deploy().join("k8s").join(file)).unwrap();
        for doc in YamlLoader::load_from_str(&text).unwrap() {
            let key = format!(
                "{}/{}",
                doc["kind"].as_str().unwrap(),
                doc["metadata"]["name"].as_str().unwrap()
            );
            assert!(all.insert(key.clone(), doc).is_none(), "{key} twice");
        }
    }
    all
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
    let mut argv: Vec<String> = list(&container["command"])
        .iter()
        .map(|a| text(a).to_owned())
        .collect();
    for arg in list(&container["args"]) {
        let mut arg = text(arg).to_owned();
        for (name, value) in values {
            arg = arg.replace(&format!("$({name})"), value);
        }
        assert!(!arg.contains("$("), "unreplaced variable in {arg}");
        argv.push(arg);
    }
    assert_eq!(argv[0], "blindlink");
    blindlink_cli::Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        .command
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
    let mounts = mounts(pod, all);
    let TlsFiles::Mutual { ca, cert, key } = &config.tls else {
        panic!("the manifests use mutual TLS");
    };
    let input = config.input.csv().expect("the manifests read a CSV");
    for path in [
        ca.as_path(),
        cert,
        key,
        &config.key_file,
        &config.schema,
        input,
        &config.output_dir,
    ] {
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
    // Unstaged (BLINDLINK_STAGE unset: the array is empty) and a cascade's stage 1.
    for (stage, expected) in [("", None), ("--stage 1 --previous merged-stage-0", Some(1))] {
        let commands = script_commands(
            "blindlink-shard.sbatch",
            &[
                ("--config", "registry.toml"),
                ("--shard", "3/4"),
                ("${STAGE[@]}", stage),
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
    let script = std::fs::read_to_string(deploy().join("slurm/blindlink-shard.sbatch")).unwrap();
    assert!(script.contains("I=$SLURM_ARRAY_TASK_ID"));
    assert!(script.contains("STAGE=(--stage \"$BLINDLINK_STAGE\")"));
    assert!(script.contains("STAGE+=(--previous \"$BLINDLINK_PREVIOUS\")"));
    let merge = std::fs::read_to_string(deploy().join("slurm/blindlink-merge.sbatch")).unwrap();
    assert!(merge.contains("$BLINDLINK_SHARD_ROOT/stage-$s/shard-$i-of-$BLINDLINK_SHARDS"));
    let submit = std::fs::read_to_string(deploy().join("slurm/submit.sh")).unwrap();
    assert!(submit.contains("--dependency=\"afterok:$array\""));
    // A cascade: stage K's array waits for the merge of stages 0 to K-1, which it reads.
    assert!(submit.contains("after=(--dependency=\"afterok:$merge\")"));
    assert!(submit.contains("export BLINDLINK_PREVIOUS=$MERGED-stage-$((k - 1))"));
}
