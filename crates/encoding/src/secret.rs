//! The linkage secret shared out of band by the two organisations.

use zeroize::Zeroizing;

use crate::EncodingError;

/// The shortest linkage secret a key file may hold: 16 bytes (128 bits). Library callers may
/// wrap shorter secrets ([`LinkageSecret::from_bytes`] refuses only an empty one, so tests can
/// use short literals); the CLI refuses key files shorter than this, since everyone who can
/// guess the secret can run dictionary attacks on every CLK and match key made with it.
/// `blindlink keygen` writes 64 hex digits (32 random bytes).
pub const MIN_SECRET_BYTES: usize = 16;

/// The shared secret every keyed hash is derived from.
///
/// # Security
/// The bytes are zeroized on drop and never printed: `Debug` shows only the length. Everyone
/// holding the secret can run dictionary attacks on CLKs, so it must stay with the two data
/// custodians and never reach the party that compares CLKs.
///
/// # Example
/// ```
/// use blindlink_encoding::LinkageSecret;
/// let secret = LinkageSecret::from_bytes(b"correct horse battery staple".to_vec())?;
/// assert_eq!(format!("{secret:?}"), "LinkageSecret(28 bytes)");
/// # Ok::<(), blindlink_encoding::EncodingError>(())
/// ```
pub struct LinkageSecret(Zeroizing<Vec<u8>>);

impl LinkageSecret {
    /// Wraps the secret's bytes exactly as given (a key file is not trimmed: clkhash hashes the
    /// whole file too).
    ///
    /// # Errors
    /// [`EncodingError::Secret`] when the secret is empty.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, EncodingError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.is_empty() {
            return Err(EncodingError::Secret("the secret is empty".into()));
        }
        Ok(Self(bytes))
    }

    /// The secret's bytes, for key derivation inside this crate.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for LinkageSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkageSecret({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_secret_is_rejected() {
        let err = LinkageSecret::from_bytes(Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "linkage secret: the secret is empty");
    }
}
