//! The party configuration file (`registry.toml`, `insurer.toml`), read from disk: the format
//! and its checks are `blindlink_party::config`'s; this module reads the file, resolves
//! addresses with the system resolver and checks party names with the transport's rule.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

pub use blindlink_party::{EraDates, InvalidRows, KeyColumn, MatchKeySpec, PartyCommand, TlsFiles};

/// A validated party configuration with absolute paths (a [`blindlink_party::PartyConfig`]
/// read from its file).
#[derive(Debug, Clone, PartialEq)]
pub struct PartyConfig(pub blindlink_party::PartyConfig);

impl std::ops::Deref for PartyConfig {
    type Target = blindlink_party::PartyConfig;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for PartyConfig {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Addresses through the operating system's resolver, party names through the service's
/// certificate-name rule.
#[derive(Debug, Clone, Copy)]
struct SystemHost;

impl blindlink_party::ConfigHost for SystemHost {
    fn resolve(&self, text: &str) -> Result<SocketAddr, String> {
        use std::net::ToSocketAddrs;
        let mut addresses = text
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve '{text}': {e}"))?;
        addresses
            .next()
            .ok_or_else(|| format!("'{text}' resolves to no address"))
    }

    fn check_party_name(&self, name: &str) -> Result<(), String> {
        // The service prefixes its errors with their class; the config error names the key.
        blindlink_service::check_party_name(name).map_err(|e| {
            let text = e.to_string();
            text.split_once(": ")
                .map_or(text.as_str(), |(_, rest)| rest)
                .to_owned()
        })
    }
}

impl PartyConfig {
    /// Reads and checks the config at `path` for `command`.
    ///
    /// # Errors
    /// The file cannot be read, is not valid TOML, has an unknown or missing key, or a value
    /// that makes no sense; the message names the file and the key.
    pub fn load(path: &Path, command: PartyCommand) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Self::parse(&text, path, command)
    }

    /// Parses config `text` that came from `path` (used to resolve relative paths).
    ///
    /// # Errors
    /// As [`PartyConfig::load`].
    pub fn parse(text: &str, path: &Path, command: PartyCommand) -> anyhow::Result<Self> {
        Ok(Self(blindlink_party::PartyConfig::parse(
            text,
            path,
            command,
            &SystemHost,
        )?))
    }

    /// See [`blindlink_party::PartyConfig::confirm_transport`].
    ///
    /// # Errors
    /// The config and the flag disagree.
    pub fn confirm_transport(&self, insecure_loopback_flag: bool) -> anyhow::Result<()> {
        Ok(self.0.confirm_transport(insecure_loopback_flag)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The system resolver and the service's name rule behind the party crate's checks.
    #[test]
    fn addresses_and_names_go_through_the_system() {
        let text = "name = \"registry\"\nmode = \"exact\"\n[server]\nlisten = \"localhost:7443\"\n\
            allowed_peers = [\"insurer\"]\n[tls]\ninsecure_loopback = true\n[linkage]\n\
            schema = \"s.toml\"\nkey_file = \"k\"\n[input]\ncsv = \"c.csv\"\nid_column = \"id\"\n\
            [[input.match_key]]\nname = \"n\"\ncolumns = [{ column = \"n\" }]\n[output]\ndir = \"o\"\n";
        let path = Path::new("peers/registry.toml");
        let config = PartyConfig::parse(text, path, PartyCommand::Serve).unwrap();
        assert!(config.listen.is_some_and(|a| a.ip().is_loopback()));
        let check = |edit: (&str, &str), expected: &str| {
            let text = text.replacen(edit.0, edit.1, 1);
            let got = PartyConfig::parse(&text, path, PartyCommand::Serve)
                .map(|_| "ok".to_owned())
                .unwrap_or_else(|e| format!("{e:#}"));
            assert_eq!(got, expected);
        };
        check(
            ("\"insurer\"", "\"ca\""),
            "peers/registry.toml: server.allowed_peers: party name 'ca' is reserved for the CA's files",
        );
        check(
            ("localhost:7443", "127.0.0.1"),
            "peers/registry.toml: server.listen: cannot resolve '127.0.0.1': invalid socket address",
        );
    }
}
