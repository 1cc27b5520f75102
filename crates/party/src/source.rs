//! Where a party's records come from: `[input] csv = "..."` or a PostgreSQL query,
//!
//! ```toml
//! [input]
//! postgres = { url = "postgresql://registry@db.example:5432/registry?sslmode=require",
//!              table = "residents",            # or: query = "SELECT ... FROM ..."
//!              password_env = "REGISTRY_DB_PASSWORD",   # or: password_file = "db.password"
//!              ca = "certs/db-ca.pem" }        # the CA of the server's certificate (TLS)
//! ```
//!
//! The password never sits in the config: a URL with one (`user:secret@host`, `?password=`)
//! is refused. Whether the connection uses TLS is the URL's `sslmode` (`require`: TLS or no
//! connection, verified against `ca`). Reading the rows (the driver, the network) is the
//! front end's work; this crate only says what to read.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::PartyError;

/// `[input] postgres = { ... }` as written (or `blindlink encode`'s options), before
/// [`PostgresSpec::check`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// `url`: `postgresql://user@host:port/database[?sslmode=...]`, without a password.
    pub url: String,
    /// `query`: a `SELECT` (one of `query` and `table`).
    pub query: Option<String>,
    /// `table`: a table (or `schema.table`) read whole.
    pub table: Option<String>,
    /// `password_env`: the environment variable holding the password.
    pub password_env: Option<String>,
    /// `password_file`: the file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// `ca`: the PEM file of the CA of the server's certificate (needed by `sslmode=require`).
    pub ca: Option<PathBuf>,
}

impl PostgresSpec {
    /// The input these settings describe; `file` names their origin in errors (a config
    /// file, a command), `resolve` makes relative paths relative to it.
    ///
    /// # Errors
    /// Not a `postgresql://` URL, a password in the URL, an unsupported `sslmode`, neither or
    /// both of `query` and `table`, both password sources, TLS without `ca`: `file: key:
    /// reason`, keys named as in `[input] postgres`.
    pub fn check(
        self,
        file: &str,
        resolve: impl Fn(&Path) -> PathBuf,
    ) -> Result<PostgresInput, PartyError> {
        postgres_input(file, self, resolve)
    }
}

/// Where the database password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password (the server trusts the connection, or uses a client certificate).
    None,
    /// The environment variable of that name.
    Env(String),
    /// The first line of that file.
    File(PathBuf),
}

/// A PostgreSQL query whose rows are a party's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresInput {
    /// The connection URL (`postgresql://user@host:port/db?sslmode=require`), without password.
    pub url: String,
    /// The query (for `table = "t"`: `SELECT * FROM "t"`).
    pub query: String,
    /// The table, when the config named one instead of a query.
    pub table: Option<String>,
    /// Where the password comes from.
    pub password: PasswordSource,
    /// The PEM file of the CA that signed the server's certificate (TLS).
    pub ca: Option<PathBuf>,
}

impl PostgresInput {
    /// How messages name the rows' origin: `postgres table "t"` or `postgres query "..."`.
    #[must_use]
    pub fn shown(&self) -> String {
        match &self.table {
            Some(table) => format!("postgres table \"{table}\""),
            None => format!("postgres query \"{}\"", self.query),
        }
    }

    /// Whether the URL asks for TLS (`sslmode=require`).
    #[must_use]
    pub fn requires_tls(&self) -> bool {
        url_options(&self.url).any(|(k, v)| k == "sslmode" && v == "require")
    }
}

/// A party's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// `[input] csv`: a CSV file (resolved against the config's directory).
    Csv(PathBuf),
    /// `[input] postgres`: a PostgreSQL query.
    Postgres(PostgresInput),
}

impl InputSource {
    /// The CSV file, if the input is one.
    #[must_use]
    pub fn csv(&self) -> Option<&Path> {
        match self {
            Self::Csv(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }
}

impl fmt::Display for InputSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Csv(path) => write!(f, "{}", path.display()),
            Self::Postgres(input) => f.write_str(&input.shown()),
        }
    }
}

/// The `key=value` options after `?` in `url`.
fn url_options(url: &str) -> impl Iterator<Item = (&str, &str)> {
    url.split_once('?')
        .map_or("", |(_, options)| options)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
}

/// The input of config `file` from `[input] csv` and `postgres`, relative paths made relative
/// to the config's directory by `resolve`.
pub(crate) fn input_source(
    file: &str,
    csv: Option<&Path>,
    postgres: Option<PostgresSpec>,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<InputSource, PartyError> {
    let bad = |key: &str, reason: &str| PartyError::config(file, key, reason);
    match (csv, postgres) {
        (Some(csv), None) => Ok(InputSource::Csv(resolve(csv))),
        (None, Some(raw)) => Ok(InputSource::Postgres(raw.check(file, resolve)?)),
        (Some(_), Some(_)) => Err(bad("input", "has both csv and postgres; give one")),
        (None, None) => Err(bad("input", "needs csv or postgres")),
    }
}

fn postgres_input(
    file: &str,
    raw: PostgresSpec,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<PostgresInput, PartyError> {
    let bad = |key: &str, reason: &str| PartyError::config(file, key, reason);
    let url = raw.url.trim();
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    else {
        return Err(bad(
            "input.postgres.url",
            "is not a postgresql:// url (postgresql://user@host:port/database)",
        ));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let in_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    if in_userinfo || url_options(url).any(|(k, _)| k == "password") {
        return Err(bad(
            "input.postgres.url",
            "contains a password; a config must not hold one: give the password with \
             input.postgres.password_env or password_file",
        ));
    }
    if let Some((_, mode)) = url_options(url).find(|(k, _)| *k == "sslmode")
        && !matches!(mode, "disable" | "prefer" | "require")
    {
        return Err(bad(
            "input.postgres.url",
            &format!("sslmode={mode} is not supported (disable, prefer or require)"),
        ));
    }
    let (query, table) = match (raw.query, raw.table) {
        (Some(query), None) if !query.trim().is_empty() => {
            (query.trim().trim_end_matches(';').trim().to_owned(), None)
        }
        (None, Some(table)) if !table.trim().is_empty() => {
            let quoted: Vec<String> = table
                .trim()
                .split('.')
                .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
                .collect();
            (
                format!("SELECT * FROM {}", quoted.join(".")),
                Some(table.trim().to_owned()),
            )
        }
        (Some(_), Some(_)) => {
            return Err(bad("input.postgres", "has both query and table; give one"));
        }
        _ => {
            return Err(bad(
                "input.postgres",
                "needs a query or a table (query = \"SELECT ...\" or table = \"name\")",
            ));
        }
    };
    let password = match (raw.password_env, raw.password_file) {
        (None, None) => PasswordSource::None,
        (Some(name), None) if !name.is_empty() => PasswordSource::Env(name),
        (None, Some(path)) => PasswordSource::File(resolve(&path)),
        (Some(_), Some(_)) => {
            return Err(bad(
                "input.postgres",
                "has both password_env and password_file; give one",
            ));
        }
        (Some(_), None) => return Err(bad("input.postgres.password_env", "is empty")),
    };
    let input = PostgresInput {
        url: url.to_owned(),
        query,
        table,
        password,
        ca: raw.ca.as_deref().map(resolve),
    };
    if input.requires_tls() && input.ca.is_none() {
        return Err(bad(
            "input.postgres.ca",
            "is needed when the url asks for TLS (sslmode=require): the PEM file of the CA \
             that signed the database server's certificate",
        ));
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `[input]` with `csv` (if any) and `postgres` (TOML inline table, if any): the
    /// query and password source, or the error.
    fn check(csv: Option<&str>, postgres: Option<&str>, expected: &str) -> Option<String> {
        let raw = postgres.map(|text| {
            toml::from_str::<toml::Table>(&format!("p = {text}")).unwrap()["p"]
                .clone()
                .try_into::<PostgresSpec>()
                .unwrap()
        });
        let got = match input_source("party.toml", csv.map(Path::new), raw, |p: &Path| {
            Path::new("dir").join(p)
        }) {
            Ok(InputSource::Csv(path)) => format!("csv {}", path.display()),
            Ok(InputSource::Postgres(p)) => {
                format!(
                    "{} | {} | {:?} | tls {}",
                    p.shown(),
                    p.query,
                    p.password,
                    p.requires_tls()
                )
            }
            Err(e) => e.to_string(),
        };
        (got != expected).then(|| format!("{postgres:?}: got '{got}', expected '{expected}'"))
    }

    #[test]
    fn postgres_input_is_checked_and_a_password_never_comes_from_the_config() {
        let url = "url = \"postgresql://registry@127.0.0.1:5432/db\"";
        let wrong: Vec<String> = [
            check(Some("in.csv"), None, "csv dir/in.csv"),
            check(
                None,
                Some(&format!(
                    "{{ {url}, table = \"people\", password_env = \"PW\" }}"
                )),
                "postgres table \"people\" | SELECT * FROM \"people\" | Env(\"PW\") | tls false",
            ),
            check(
                None,
                Some(&format!("{{ {url}, table = \"a.b\\\"c\" }}")),
                "postgres table \"a.b\"c\" | SELECT * FROM \"a\".\"b\"\"c\" | None | tls false",
            ),
            check(
                None,
                Some(
                    "{ url = \"postgres://u@h/db?sslmode=require\", query = \"SELECT 1;\", \
                      password_file = \"pw\", ca = \"ca.pem\" }",
                ),
                "postgres query \"SELECT 1\" | SELECT 1 | File(\"dir/pw\") | tls true",
            ),
            check(
                None,
                Some("{ url = \"postgresql://u:hunter2@h/db\", table = \"t\" }"),
                "party.toml: input.postgres.url: contains a password; a config must not hold \
                 one: give the password with input.postgres.password_env or password_file",
            ),
            check(
                None,
                Some("{ url = \"postgresql://u@h/db?password=x\", table = \"t\" }"),
                "party.toml: input.postgres.url: contains a password; a config must not hold \
                 one: give the password with input.postgres.password_env or password_file",
            ),
            check(
                None,
                Some("{ url = \"postgresql://u@h/db?sslmode=require\", table = \"t\" }"),
                "party.toml: input.postgres.ca: is needed when the url asks for TLS \
                 (sslmode=require): the PEM file of the CA that signed the database server's \
                 certificate",
            ),
            check(
                None,
                Some("{ url = \"postgresql://u@h/db?sslmode=verify-full\", table = \"t\" }"),
                "party.toml: input.postgres.url: sslmode=verify-full is not supported (disable, \
                 prefer or require)",
            ),
            check(
                None,
                Some("{ url = \"mysql://u@h/db\", table = \"t\" }"),
                "party.toml: input.postgres.url: is not a postgresql:// url \
                 (postgresql://user@host:port/database)",
            ),
            check(
                None,
                Some(&format!("{{ {url} }}")),
                "party.toml: input.postgres: needs a query or a table (query = \"SELECT ...\" \
                 or table = \"name\")",
            ),
            check(
                None,
                Some(&format!("{{ {url}, table = \"t\", query = \"SELECT 1\" }}")),
                "party.toml: input.postgres: has both query and table; give one",
            ),
            check(
                None,
                Some(&format!(
                    "{{ {url}, table = \"t\", password_env = \"A\", password_file = \"b\" }}"
                )),
                "party.toml: input.postgres: has both password_env and password_file; give one",
            ),
            check(
                Some("in.csv"),
                Some(&format!("{{ {url}, table = \"t\" }}")),
                "party.toml: input: has both csv and postgres; give one",
            ),
            check(None, None, "party.toml: input: needs csv or postgres"),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
