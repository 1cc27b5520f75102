//! The crate's one error type.

/// What went wrong with a party's config, input or preparation. Every message names where:
/// the config file and key (and line for TOML errors), or the input file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartyError {
    /// The config is not valid TOML or misses a key: `file:line: message`.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The config file as shown.
        file: String,
        /// 1-based line of the offending key.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A config value makes no sense: `file: key: reason` (or `file: reason` without a key).
    #[error("{file}: {}{reason}", key.as_deref().map(|k| format!("{k}: ")).unwrap_or_default())]
    Config {
        /// The config file as shown.
        file: String,
        /// The offending key (`linkage.fuzzy_bands`, `input.match_key[0].name`).
        key: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The config and the command line disagree (the message names both).
    #[error("{0}")]
    Conflict(String),
    /// The disclosure ledger cannot be serialised.
    #[error("cannot serialise the ledger: {0}")]
    Ledger(String),
    /// The input's header or a row does not fit the config or schema: `context: reason`.
    #[error("{context}: {reason}")]
    Input {
        /// Where: `file:line`.
        context: String,
        /// What is wrong.
        reason: String,
    },
}

impl PartyError {
    pub(crate) fn config(file: &str, key: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            file: file.to_owned(),
            key: Some(key.to_owned()),
            reason: reason.into(),
        }
    }

    pub(crate) fn whole(file: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            file: file.to_owned(),
            key: None,
            reason: reason.into(),
        }
    }
}
