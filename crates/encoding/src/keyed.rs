//! blindlink's native keyed hashing: HMAC-SHA3 with domain separation tags naming
//! `blindlink/v1`, per-field keys derived from the linkage secret, and a keyed deterministic
//! stream of random numbers for permutations and sampling (never for BLIP's noise: the peer
//! holds the key).

use hmac::{KeyInit, Mac, SimpleHmac};
use sha3::{Sha3_256, Sha3_512};
use zeroize::Zeroizing;

use crate::LinkageSecret;

/// Domain separation prefix of every native derivation.
pub const DOMAIN: &str = "blindlink/v1";

/// A 32-byte key derived from the linkage secret for one purpose.
pub(crate) struct DerivedKey(Zeroizing<[u8; 32]>);

impl DerivedKey {
    /// `HMAC-SHA3-256(secret, "blindlink/v1/" ‖ purpose ‖ 0x00 ‖ label)`.
    pub(crate) fn derive(secret: &LinkageSecret, purpose: &str, label: &[u8]) -> Self {
        let mut mac = <SimpleHmac<Sha3_256> as KeyInit>::new_from_slice(secret.expose())
            .unwrap_or_else(|_| unreachable_hmac());
        mac.update(DOMAIN.as_bytes());
        mac.update(b"/");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(label);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        Self(key)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// HMAC accepts keys of every length; this is never reached.
#[cold]
fn unreachable_hmac() -> SimpleHmac<Sha3_256> {
    <SimpleHmac<Sha3_256> as KeyInit>::new_from_slice(&[0]).unwrap_or_else(|_| unreachable_hmac())
}

/// Token hashing for one field: `HMAC-SHA3-512(field key, block ‖ token)` gives sixteen 32-bit
/// words per block; each word maps to a bit position by `(w · l) >> 32`. Every position of a
/// token comes from independent hash output (no double-hashing atoms).
#[derive(Clone)]
pub(crate) struct TokenHasher {
    state: SimpleHmac<Sha3_512>,
}

impl TokenHasher {
    pub(crate) fn new(key: &DerivedKey) -> Self {
        let state = <SimpleHmac<Sha3_512> as KeyInit>::new_from_slice(key.bytes())
            .unwrap_or_else(|_| unreachable_sha3_512());
        Self { state }
    }

    /// Appends `k` positions in `0..l` for `token` (with an optional per-record `salt`).
    pub(crate) fn positions(
        &self,
        salt: &[u8],
        token: &[u8],
        k: u32,
        l: usize,
        out: &mut Vec<u32>,
    ) {
        let mut remaining = k as usize;
        let mut block: u32 = 0;
        while remaining > 0 {
            let mut mac = self.state.clone();
            mac.update(&block.to_le_bytes());
            mac.update(&(salt.len() as u32).to_le_bytes());
            mac.update(salt);
            mac.update(token);
            let digest = mac.finalize().into_bytes();
            for word in digest.chunks_exact(4).take(remaining) {
                let w = u64::from(u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
                out.push(((w * l as u64) >> 32) as u32);
            }
            remaining = remaining.saturating_sub(16);
            block += 1;
        }
    }
}

#[cold]
fn unreachable_sha3_512() -> SimpleHmac<Sha3_512> {
    <SimpleHmac<Sha3_512> as KeyInit>::new_from_slice(&[0])
        .unwrap_or_else(|_| unreachable_sha3_512())
}

/// A deterministic keyed stream of random numbers: `HMAC-SHA3-256(key, nonce ‖ counter)`.
pub(crate) struct KeyedStream {
    state: SimpleHmac<Sha3_256>,
    counter: u64,
    buffer: [u8; 32],
    used: usize,
}

impl KeyedStream {
    pub(crate) fn new(key: &DerivedKey, nonce: u64) -> Self {
        let mut state = <SimpleHmac<Sha3_256> as KeyInit>::new_from_slice(key.bytes())
            .unwrap_or_else(|_| unreachable_hmac());
        state.update(&nonce.to_le_bytes());
        Self {
            state,
            counter: 0,
            buffer: [0; 32],
            used: 32,
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        if self.used == 32 {
            let mut mac = self.state.clone();
            mac.update(&self.counter.to_le_bytes());
            self.buffer.copy_from_slice(&mac.finalize().into_bytes());
            self.counter += 1;
            self.used = 0;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.buffer[self.used..self.used + 8]);
        self.used += 8;
        u64::from_le_bytes(word)
    }

    /// Uniform in `0..n` (`n > 0`), by rejection (Lemire's method), so without bias.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            let low = product as u64;
            if low >= n.wrapping_neg() % n {
                return (product >> 64) as u64;
            }
        }
    }

    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    pub(crate) fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// A keyed 64-bit hash for one purpose outside the encoder (which shard a record's match key
/// falls in, say): `HMAC-SHA3-256(k, bytes)`, its first 8 bytes read as a little-endian `u64`,
/// under `k = HMAC-SHA3-256(secret, "blindlink/v1/" ‖ purpose ‖ 0x00)`, the derivation every
/// other native key uses.
///
/// # Security
/// Keyed by the linkage secret: whoever holds the secret can compute it for any guessed value,
/// so what it selects (a shard) is visible to the other key holder. `Debug` shows no key.
///
/// # Example
/// ```
/// use blindlink_encoding::{LinkageSecret, PurposeHasher};
/// let secret = LinkageSecret::from_bytes(b"correct horse battery staple".to_vec())?;
/// let hasher = PurposeHasher::new(&secret, "shard");
/// assert_eq!(hasher.hash_u64(b"abc"), hasher.hash_u64(b"abc"));
/// assert_ne!(hasher.hash_u64(b"abc"), PurposeHasher::new(&secret, "other").hash_u64(b"abc"));
/// # Ok::<(), blindlink_encoding::EncodingError>(())
/// ```
#[derive(Clone)]
pub struct PurposeHasher {
    state: SimpleHmac<Sha3_256>,
}

impl PurposeHasher {
    /// The hasher of `purpose` under `secret`.
    #[must_use]
    pub fn new(secret: &LinkageSecret, purpose: &str) -> Self {
        let key = DerivedKey::derive(secret, purpose, b"");
        let state = <SimpleHmac<Sha3_256> as KeyInit>::new_from_slice(key.bytes())
            .unwrap_or_else(|_| unreachable_hmac());
        Self { state }
    }

    /// The keyed hash of `bytes`.
    #[must_use]
    pub fn hash_u64(&self, bytes: &[u8]) -> u64 {
        let mut mac = self.state.clone();
        mac.update(bytes);
        let digest = mac.finalize().into_bytes();
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(word)
    }
}

impl std::fmt::Debug for PurposeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PurposeHasher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> LinkageSecret {
        LinkageSecret::from_bytes(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn derivation_separates_purposes_and_secrets() {
        let a = DerivedKey::derive(&secret("s1"), "field", b"surname");
        let b = DerivedKey::derive(&secret("s1"), "field", b"given");
        let c = DerivedKey::derive(&secret("s2"), "field", b"surname");
        let d = DerivedKey::derive(&secret("s1"), "permute", b"surname");
        let again = DerivedKey::derive(&secret("s1"), "field", b"surname");
        assert_eq!(a.bytes(), again.bytes());
        for other in [&b, &c, &d] {
            assert_ne!(a.bytes(), other.bytes());
        }
    }

    #[test]
    fn positions_are_in_range_and_salt_changes_them() {
        let hasher = TokenHasher::new(&DerivedKey::derive(&secret("s"), "field", b"f"));
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        hasher.positions(b"", b"ab", 40, 1000, &mut a);
        hasher.positions(b"1985", b"ab", 40, 1000, &mut b);
        hasher.positions(b"", b"ab", 40, 1000, &mut c);
        assert_eq!(a.len(), 40);
        assert!(a.iter().all(|p| *p < 1000));
        assert_eq!(a, c);
        assert_ne!(a, b);
    }

    #[test]
    fn permutation_is_a_bijection() {
        let key = DerivedKey::derive(&secret("s"), "permute", b"");
        let p = KeyedStream::new(&key, 0).permutation(1000);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
        assert_ne!(p, (0..1000).collect::<Vec<u32>>());
        assert_ne!(p, KeyedStream::new(&key, 1).permutation(1000));
    }
}
