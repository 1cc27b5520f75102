//! Helpers shared by the end-to-end tests: the CLI in-process, and a directory laid out like
//! `examples/peers/` (data, certificates, key, schemas, both party configs) whose parties are
//! served and linked in-process over loopback with mutual TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use blindlink_cli::commands::party::session::{self, CompletedSession, PreparedParty, RunOptions};
use blindlink_cli::commands::party::{LoadedParty, PartyCommand, PartyConfig, load_party};
use blindlink_service::Limits;

/// The directory holding the committed test data sets.
#[allow(dead_code)]
pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Runs `blindlink ARGS...` in-process and returns its error message (with causes) if it failed.
#[allow(dead_code)]
pub(crate) fn blindlink(args: &[&str]) -> Result<(), String> {
    let argv = std::iter::once("blindlink").chain(args.iter().copied());
    blindlink_cli::run_from(argv).map_err(|e| format!("{e:#}"))
}

/// `examples/peers/` of the repository.
pub(crate) fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/peers")
}

/// A temporary directory laid out like `examples/peers/` after its README's set-up: synthetic
/// data, certificates (the two parties and `mallory`, same CA, on no allow-list), a linkage
/// key, both schemas and both party configs as shipped (the server serves one session).
pub(crate) struct PeerDir {
    dir: tempfile::TempDir,
    /// The serving party (`registry` or `hospital-a`).
    pub server: &'static str,
    /// The linking party (`insurer` or `hospital-b`).
    pub client: &'static str,
}

impl PeerDir {
    /// The registry and the insurer (`validate`, `registry-insurer` data of `persons`).
    pub(crate) fn registry_insurer(persons: u64) -> Self {
        Self::create("registry-insurer", persons, ("registry", "insurer"))
    }

    /// The two hospitals (`fuzzy`, `two-hospitals` data of `persons`).
    #[allow(dead_code)]
    pub(crate) fn two_hospitals(persons: u64) -> Self {
        Self::create("two-hospitals", persons, ("hospital-a", "hospital-b"))
    }

    fn create(
        scenario: &str,
        persons: u64,
        (server, client): (&'static str, &'static str),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
        let persons = persons.to_string();
        blindlink(&[
            "synth",
            "--scenario",
            scenario,
            "--persons",
            &persons,
            "--out",
            &path("data"),
        ])
        .unwrap();
        let names = format!("{server},{client},mallory");
        blindlink(&["certs", "--out", &path("certs"), "--names", &names]).unwrap();
        blindlink(&["keygen", "--out", &path("linkage.key")]).unwrap();
        for file in [
            "schema.toml",
            "clk-schema.toml",
            &format!("{server}.toml"),
            &format!("{client}.toml"),
        ] {
            std::fs::copy(examples().join(file), dir.path().join(file)).unwrap();
        }
        Self {
            dir,
            server,
            client,
        }
    }

    /// A path inside the directory.
    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A party's config file.
    pub(crate) fn config(&self, party: &str) -> PathBuf {
        self.path(&format!("{party}.toml"))
    }

    /// Rewrites a party's config.
    pub(crate) fn edit(&self, party: &str, change: impl FnOnce(String) -> String) {
        let path = self.config(party);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, change(text)).unwrap();
    }

    /// Replaces the first `from` in a party's config by `to`; the config must contain `from`.
    #[allow(dead_code)]
    pub(crate) fn replace(&self, party: &str, from: &str, to: &str) {
        self.edit(party, |text| {
            assert!(text.contains(from), "{party}.toml has no {from:?}");
            text.replacen(from, to, 1)
        });
    }

    /// Sets the `mode = ...` line of both parties' configs.
    #[allow(dead_code)]
    pub(crate) fn set_mode(&self, mode: &str) {
        for party in [self.server, self.client] {
            self.edit(party, |text| {
                let line = text
                    .lines()
                    .find(|l| l.starts_with("mode = "))
                    .unwrap()
                    .to_owned();
                text.replacen(&line, &format!("mode = \"{mode}\""), 1)
            });
        }
    }

    /// A party's config loaded and prepared, as `serve` / `link` do before connecting.
    pub(crate) fn load(&self, party: &str, command: PartyCommand) -> (LoadedParty, PreparedParty) {
        let party = load_party(PartyConfig::load(&self.config(party), command).unwrap()).unwrap();
        let prepared = session::prepare(&party).unwrap();
        (party, prepared)
    }

    /// `blindlink link --quiet` for the client, in-process, with causes.
    #[allow(dead_code)]
    pub(crate) fn link(&self) -> Result<(), String> {
        let config = self.config(self.client);
        blindlink(&["link", "--quiet", "--config", config.to_str().unwrap()])
    }

    /// Files in a party's output directory (recursively), as sorted relative paths.
    #[allow(dead_code)]
    pub(crate) fn outputs(&self, party: &str) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut files = Vec::new();
        let dir = self.path(&format!("out/{party}"));
        walk(&dir, &dir, &mut files);
        files.sort();
        files
    }
}

/// Run options for tests: a fixed seed, short timeouts, quiet.
pub(crate) fn quick() -> RunOptions {
    RunOptions {
        seed: Some(7),
        limits: Limits {
            idle_timeout: Duration::from_secs(5),
            session_deadline: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        quiet: true,
    }
}

/// Serves `server` on a fresh loopback port while `client` runs against that address, then
/// stops the server (a one-session server may have ended by itself); returns what `serve`
/// returned, errors as text with causes, and the client's result.
#[allow(dead_code)]
pub(crate) async fn serve_while<F, Fut, T>(
    server: &(LoadedParty, PreparedParty),
    client: F,
) -> (Result<Vec<CompletedSession>, String>, T)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = T>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = quick();
    let serving = session::serve(&server.0, &server.1, listener, &options, async {
        let _ = stopped.await;
    });
    let running = async {
        let result = client(address).await;
        // Lets the server report the last session before it is stopped.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop.send(());
        result
    };
    let (served, result) = tokio::join!(serving, running);
    (served.map_err(|e| format!("{e:#}")), result)
}

/// `session::link` for `client` against `address` with [`quick`], errors as text with causes.
#[allow(dead_code)]
pub(crate) async fn link_to(
    client: &(LoadedParty, PreparedParty),
    address: SocketAddr,
) -> Result<CompletedSession, String> {
    session::link(&client.0, &client.1, Some(address), &quick())
        .await
        .map_err(|e| format!("{e:#}"))
}
