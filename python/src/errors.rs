//! The exception classes and the one place an `anyhow` error becomes one.

use pyo3::prelude::*;

pyo3::create_exception!(
    blindlink,
    BlindlinkError,
    pyo3::exceptions::PyException,
    "Base class of every error blindlink raises; the message is the CLI's."
);
pyo3::create_exception!(
    blindlink,
    ConfigError,
    BlindlinkError,
    "A bad party config, schema or linkage secret."
);
pyo3::create_exception!(
    blindlink,
    InputError,
    BlindlinkError,
    "Bad input: a record, a CSV or CLK file, an argument."
);
pyo3::create_exception!(
    blindlink,
    ProtocolError,
    BlindlinkError,
    "A linkage session failed: no connection, the peer refused, the protocol broke off."
);

/// What an error is about, which picks its exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Config,
    Input,
    Protocol,
}

/// The exception for `error`: its whole chain as the CLI prints it (`{:#}`, without the
/// CLI's `error: ` prefix).
pub(crate) fn to_py(kind: Kind, error: &anyhow::Error) -> PyErr {
    let message = format!("{error:#}");
    match kind {
        Kind::Config => ConfigError::new_err(message),
        Kind::Input => InputError::new_err(message),
        Kind::Protocol => ProtocolError::new_err(message),
    }
}

/// `result`'s error as the exception of `kind`.
pub(crate) trait OrRaise<T> {
    fn or_raise(self, kind: Kind) -> PyResult<T>;
}

impl<T, E: Into<anyhow::Error>> OrRaise<T> for Result<T, E> {
    fn or_raise(self, kind: Kind) -> PyResult<T> {
        self.map_err(|e| to_py(kind, &e.into()))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("BlindlinkError", py.get_type::<BlindlinkError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("ProtocolError", py.get_type::<ProtocolError>())?;
    Ok(())
}
