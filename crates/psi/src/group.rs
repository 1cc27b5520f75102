//! The group operations of the protocol: hashing elements to ristretto255, blinding with a
//! session secret, and deriving link ids. Everything here is batched and runs on the current
//! rayon pool.

use curve25519_dalek::Scalar;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::traits::Identity;
use rand_core::CryptoRng;
use rayon::prelude::*;
use sha3::{Digest, Sha3_256, Sha3_512};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::PsiError;

/// The protocol name and version that prefix every domain-separation tag.
pub const PROTOCOL_TAG: &[u8] = b"blindlink/v1/psi";

/// How many points one batch compression covers. Batch inversion amortises one field inversion
/// over the batch; past a few hundred points the saving is flat and only memory grows.
pub(crate) const BATCH: usize = 512;

/// The name of a match key (`my_number`, `kana_name+dob+sex`, ...), part of every hash-to-group
/// domain tag, so that the same bytes under two keys never collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchKeyName(String);

impl MatchKeyName {
    /// Longest accepted name, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates a match key name: 1 to 64 bytes of printable ASCII.
    ///
    /// # Errors
    /// [`PsiError::InvalidMatchKeyName`] when the name is empty, longer than 64 bytes or has a
    /// byte outside printable ASCII.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::MatchKeyName;
    /// assert!(MatchKeyName::new("my_number").is_ok());
    /// assert!(MatchKeyName::new("").is_err());
    /// ```
    pub fn new(name: &str) -> Result<Self, PsiError> {
        if name.is_empty() {
            return Err(PsiError::InvalidMatchKeyName { reason: "empty" });
        }
        if name.len() > Self::MAX_LEN {
            return Err(PsiError::InvalidMatchKeyName {
                reason: "longer than 64 bytes",
            });
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PsiError::InvalidMatchKeyName {
                reason: "not printable ascii without spaces",
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes one element to the group under a match key.
///
/// The SHA3-512 input is `len(tag) ‖ tag ‖ len(key) ‖ key ‖ len(element) ‖ element` with
/// 8-byte little-endian lengths and tag `blindlink/v1/psi/hash-to-group`; its 64 bytes go
/// through the ristretto255 one-way map (two Elligator maps added). The lengths make the
/// encoding injective, so no two (key, element) pairs share an input.
///
/// # Example
/// ```
/// use blindlink_psi::{MatchKeyName, hash_to_group};
/// let key = MatchKeyName::new("my_number").unwrap();
/// assert_eq!(hash_to_group(&key, b"123456789018"), hash_to_group(&key, b"123456789018"));
/// assert_ne!(hash_to_group(&key, b"123456789018"), hash_to_group(&key, b"123456789026"));
/// ```
pub fn hash_to_group(key: &MatchKeyName, element: &[u8]) -> RistrettoPoint {
    let mut hash = Sha3_512::new();
    absorb(&mut hash, b"blindlink/v1/psi/hash-to-group");
    absorb(&mut hash, key.0.as_bytes());
    absorb(&mut hash, element);
    RistrettoPoint::from_hash(hash)
}

pub(crate) fn absorb<D: Digest>(hash: &mut D, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

/// The pseudonymous id both parties derive for one shared element: SHA3-256 over a tag, the
/// match key name and the doubly-blinded point. It is unlinkable across sessions because the
/// blinding scalars are fresh per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub [u8; 32]);

impl LinkId {
    pub(crate) fn derive(key: &MatchKeyName, doubly_blinded: &CompressedRistretto) -> Self {
        let mut hash = Sha3_256::new();
        absorb(&mut hash, b"blindlink/v1/psi/link-id");
        absorb(&mut hash, key.0.as_bytes());
        hash.update(doubly_blinded.as_bytes());
        Self(hash.finalize().into())
    }

    /// Lowercase hex, for link files.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
        out
    }
}

/// A party's secret exponent for one session.
///
/// # Security
/// Drawn fresh per session from the caller's RNG, never serialised, zeroized on drop; `Debug`
/// prints nothing of it. The half scalar (`k / 2`) is kept so that batch double-and-compress
/// yields `k·P` directly.
pub(crate) struct SessionSecret {
    half: Scalar,
    half_inverse: Scalar,
}

impl SessionSecret {
    pub(crate) fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let two_inverse = Scalar::from(2u8).invert();
        loop {
            let mut secret = Scalar::random(rng);
            // Zero has probability 2^-252; rejecting it keeps every blinding a bijection.
            if bool::from(secret.ct_eq(&Scalar::ZERO)) {
                continue;
            }
            let mut inverse = secret.invert();
            let out = Self {
                half: secret * two_inverse,
                half_inverse: inverse * two_inverse,
            };
            secret.zeroize();
            inverse.zeroize();
            return out;
        }
    }

    /// Half the secret: `half · P` batch-doubled and compressed is `k · P`.
    pub(crate) fn half(&self) -> &Scalar {
        &self.half
    }

    /// `k · hash(e)` for every element, compressed, in input order.
    pub(crate) fn blind_elements<E: AsRef<[u8]> + Sync>(
        &self,
        key: &MatchKeyName,
        elements: &[E],
    ) -> Vec<CompressedRistretto> {
        let mut out = vec![CompressedRistretto::default(); elements.len()];
        out.par_chunks_mut(BATCH)
            .zip(elements.par_chunks(BATCH))
            .for_each(|(out, chunk)| {
                let halves: Vec<RistrettoPoint> = chunk
                    .iter()
                    .map(|e| hash_to_group(key, e.as_ref()) * self.half)
                    .collect();
                out.copy_from_slice(&RistrettoPoint::double_and_compress_batch(&halves));
            });
        out
    }

    /// `k · P` for every received point, compressed, in input order; each point is decoded and
    /// checked first.
    pub(crate) fn reblind(
        &self,
        message: &'static str,
        points: &[CompressedRistretto],
    ) -> Result<Vec<CompressedRistretto>, PsiError> {
        self.multiply_received(message, points, &self.half)
    }

    /// [`Self::reblind`] written over the received points themselves (a received message
    /// is then held once, not twice).
    pub(crate) fn reblind_in_place(
        &self,
        message: &'static str,
        points: &mut [CompressedRistretto],
    ) -> Result<(), PsiError> {
        let outcomes: Vec<Result<(), PsiError>> = points
            .par_chunks_mut(BATCH)
            .enumerate()
            .map(|(chunk_index, chunk)| {
                let halves = chunk
                    .iter()
                    .enumerate()
                    .map(
                        |(i, c)| Ok(decode_point(message, chunk_index * BATCH + i, c)? * self.half),
                    )
                    .collect::<Result<Vec<RistrettoPoint>, PsiError>>()?;
                chunk.copy_from_slice(&RistrettoPoint::double_and_compress_batch(&halves));
                Ok(())
            })
            .collect();
        outcomes.into_iter().collect::<Result<(), _>>()
    }

    /// `k⁻¹ · P` for every received point: removes this party's own blinding.
    pub(crate) fn unblind(
        &self,
        message: &'static str,
        points: &[CompressedRistretto],
    ) -> Result<Vec<CompressedRistretto>, PsiError> {
        self.multiply_received(message, points, &self.half_inverse)
    }

    fn multiply_received(
        &self,
        message: &'static str,
        points: &[CompressedRistretto],
        half: &Scalar,
    ) -> Result<Vec<CompressedRistretto>, PsiError> {
        // Written in place (no per-batch vectors joined afterwards: that held every point
        // twice); each batch's outcome is collected before the `?` so that the error reported
        // is the first bad index, whatever the thread schedule.
        let mut out = vec![CompressedRistretto::default(); points.len()];
        let outcomes: Vec<Result<(), PsiError>> = out
            .par_chunks_mut(BATCH)
            .zip(points.par_chunks(BATCH))
            .enumerate()
            .map(|(chunk_index, (out, chunk))| {
                let halves = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Ok(decode_point(message, chunk_index * BATCH + i, c)? * half))
                    .collect::<Result<Vec<RistrettoPoint>, PsiError>>()?;
                out.copy_from_slice(&RistrettoPoint::double_and_compress_batch(&halves));
                Ok(())
            })
            .collect();
        outcomes.into_iter().collect::<Result<(), _>>()?;
        Ok(out)
    }
}

impl Drop for SessionSecret {
    fn drop(&mut self) {
        self.half.zeroize();
        self.half_inverse.zeroize();
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(..)")
    }
}

/// Decodes one received point, rejecting invalid encodings and the identity.
pub(crate) fn decode_point(
    message: &'static str,
    index: usize,
    point: &CompressedRistretto,
) -> Result<RistrettoPoint, PsiError> {
    let decoded = point
        .decompress()
        .ok_or(PsiError::InvalidPoint { message, index })?;
    if decoded == RistrettoPoint::identity() {
        return Err(PsiError::IdentityPoint { message, index });
    }
    Ok(decoded)
}

/// Checks that every received point is a valid, non-identity encoding (in parallel). Used for
/// points that are only compared, never multiplied, so that hostile bytes are still refused.
pub(crate) fn validate_points(
    message: &'static str,
    points: &[CompressedRistretto],
) -> Result<(), PsiError> {
    match points
        .par_iter()
        .enumerate()
        .find_map_first(|(index, point)| decode_point(message, index, point).err())
    {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<const N: usize>(text: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    fn element(text: &str) -> Vec<u8> {
        if text == "-" {
            return Vec::new();
        }
        (0..text.len() / 2)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// Vectors computed independently with libsodium by `scripts/psi_vectors.py`.
    #[test]
    fn libsodium_vectors() {
        let vectors = include_str!("../tests/data/vectors.txt");
        let mut checked = 0;
        for line in vectors.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let key = MatchKeyName::new(fields[1]).unwrap();
            let point = hash_to_group(&key, &element(fields[2]));
            match fields[0] {
                "hash" => assert_eq!(
                    point.compress().to_bytes(),
                    bytes::<32>(fields[3]),
                    "{line}"
                ),
                "link" => {
                    let a = Scalar::from_canonical_bytes(bytes(fields[3])).unwrap();
                    let b = Scalar::from_canonical_bytes(bytes(fields[4])).unwrap();
                    let doubled = (point * a * b).compress();
                    assert_eq!(doubled.to_bytes(), bytes::<32>(fields[5]), "{line}");
                    let link = LinkId::derive(&key, &doubled);
                    assert_eq!(link.0, bytes::<32>(fields[6]), "{line}");
                    assert_eq!(link.to_hex(), fields[6]);
                }
                other => panic!("unknown vector kind {other}"),
            }
            checked += 1;
        }
        assert_eq!(checked, 10);
    }

    #[test]
    fn halved_secret_with_batch_doubling_equals_plain_multiplication() {
        use rand_chacha::ChaCha20Rng;
        use rand_core::SeedableRng;
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let secret = SessionSecret::random(&mut rng);
        let key = MatchKeyName::new("k").unwrap();
        let elements: Vec<[u8; 2]> = (0..1200u16).map(u16::to_le_bytes).collect();
        let batched = secret.blind_elements(&key, &elements);
        let full = secret.half + secret.half;
        for (element, got) in elements.iter().zip(&batched) {
            assert_eq!(*got, (hash_to_group(&key, element) * full).compress());
        }
        // Unblinding undoes blinding, across batch boundaries.
        let unblinded = secret.unblind("test", &batched).unwrap();
        for (element, got) in elements.iter().zip(&unblinded) {
            assert_eq!(*got, hash_to_group(&key, element).compress());
        }
    }
}
