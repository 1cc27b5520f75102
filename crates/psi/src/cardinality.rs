//! Cardinality-only PSI: the initiator learns how many elements the two sets share, and
//! nothing about which.
//!
//! ```text
//! initiator (a)                                   responder (b)
//! CardinalityInitiator::start ── BlindedSet ─────▶ CardinalityResponder::handle_blinded_set
//!   {a·H(x)} shuffled                                {b·a·H(x)} sorted,
//! CardinalityInitiatorAwaitingReply ◀── CardinalityReply ── {b·H(y)} sorted or as a Bloom filter
//!   ::handle_reply: count of a⁻¹·(b·a·H(x)) = b·H(x) in the responder's set
//! ```
//!
//! The responder sorts the doubly-blinded points, so their order is independent of the order
//! it received them in: the initiator cannot tell which of its elements matched. The responder
//! learns only the initiator's set size.

use std::collections::HashSet;

use curve25519_dalek::ristretto::CompressedRistretto;
use rand_core::CryptoRng;

use crate::bloom::{BloomSet, BloomSizing, FalsePositiveRate};
use crate::error::PsiError;
use crate::group::{MatchKeyName, SessionSecret, validate_points};
use crate::mutual::OwnSet;
use crate::shuffle::random_permutation;
use crate::wire::{BlindedSet, CardinalityReply, ResponderSet};

/// How the responder sends its set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SetEncoding {
    /// Every blinded point (exact, the default).
    Raw,
    /// A Bloom filter sized for this false-positive rate over the whole query.
    Bloom(FalsePositiveRate),
}

/// What the initiator learns.
#[derive(Debug, Clone, PartialEq)]
pub struct CardinalityOutcome {
    /// The number of shared distinct elements (with a Bloom filter: possibly overcounted by
    /// false positives, never undercounted).
    pub intersection_size: usize,
    /// The responder's distinct set size (raw), or `None` when it sent a Bloom filter.
    pub peer_set_size: Option<usize>,
    /// Expected number of false positives in `intersection_size`: zero for a raw set, the
    /// per-test rate estimated from the filter's fill times the number of tests otherwise.
    pub expected_false_positives: f64,
}

/// Entry point of the initiating party.
#[derive(Debug)]
pub struct CardinalityInitiator;

impl CardinalityInitiator {
    /// Draws a fresh secret, blinds and shuffles the distinct elements, and returns the first
    /// message.
    ///
    /// # Errors
    /// [`PsiError::SetTooLarge`] above [`crate::MAX_SET_SIZE`] elements.
    ///
    /// # Security
    /// `rng` must be a cryptographic RNG.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::{CardinalityInitiator, CardinalityResponder, MatchKeyName, SetEncoding};
    /// use rand_chacha::ChaCha20Rng;
    /// use rand_core::SeedableRng;
    ///
    /// let key = MatchKeyName::new("my_number").unwrap();
    /// let (mut rng_a, mut rng_b) = (ChaCha20Rng::from_seed([1; 32]), ChaCha20Rng::from_seed([2; 32]));
    /// let (initiator, request) = CardinalityInitiator::start(&key, &["a", "b", "c"], &mut rng_a).unwrap();
    /// let responder = CardinalityResponder::new(&key, &["c", "d", "a"], SetEncoding::Raw).unwrap();
    /// let reply = responder.handle_blinded_set(&request, &mut rng_b).unwrap();
    /// assert_eq!(initiator.handle_reply(&reply).unwrap().intersection_size, 2);
    /// ```
    pub fn start<E, R>(
        key: &MatchKeyName,
        elements: &[E],
        rng: &mut R,
    ) -> Result<(CardinalityInitiatorAwaitingReply, BlindedSet), PsiError>
    where
        E: AsRef<[u8]> + Sync,
        R: CryptoRng + ?Sized,
    {
        let own = OwnSet::new("initiator", elements)?;
        let secret = SessionSecret::random(rng);
        let blinded = secret.blind_elements(key, &own.distinct(elements));
        let points = random_permutation(blinded.len(), rng)
            .into_iter()
            .map(|i| blinded[i])
            .collect();
        let state = CardinalityInitiatorAwaitingReply {
            secret,
            sent: own.len(),
        };
        Ok((state, BlindedSet { points }))
    }
}

/// The initiator waiting for the [`CardinalityReply`].
#[derive(Debug)]
pub struct CardinalityInitiatorAwaitingReply {
    secret: SessionSecret,
    sent: usize,
}

impl CardinalityInitiatorAwaitingReply {
    /// Counts the shared elements.
    ///
    /// # Errors
    /// [`PsiError::CountMismatch`] when the reply does not answer every point sent,
    /// [`PsiError::InvalidPoint`] / [`PsiError::IdentityPoint`] for a bad point.
    pub fn handle_reply(self, reply: &CardinalityReply) -> Result<CardinalityOutcome, PsiError> {
        const MESSAGE: &str = "cardinality reply";
        if reply.initiator_doubled.len() != self.sent {
            return Err(PsiError::CountMismatch {
                message: MESSAGE,
                expected: self.sent,
                actual: reply.initiator_doubled.len(),
            });
        }
        let unblinded = self.secret.unblind(MESSAGE, &reply.initiator_doubled)?;
        match &reply.responder_set {
            ResponderSet::Raw(points) => {
                validate_points(MESSAGE, points)
                    .map_err(|e| e.with_index_offset(unblinded.len()))?;
                let peer: HashSet<&CompressedRistretto> = points.iter().collect();
                Ok(CardinalityOutcome {
                    intersection_size: unblinded.iter().filter(|p| peer.contains(p)).count(),
                    peer_set_size: Some(peer.len()),
                    expected_false_positives: 0.0,
                })
            }
            ResponderSet::Bloom(bloom) => Ok(CardinalityOutcome {
                intersection_size: unblinded.iter().filter(|p| bloom.contains(p)).count(),
                peer_set_size: None,
                expected_false_positives: bloom.per_test_rate() * unblinded.len() as f64,
            }),
        }
    }
}

/// The responding party of cardinality-only PSI, with its distinct elements.
///
/// # Security
/// Holds the raw elements (personal data) until it answers; `Debug` prints only their count.
pub struct CardinalityResponder {
    key: MatchKeyName,
    distinct: Vec<Vec<u8>>,
    encoding: SetEncoding,
}

impl std::fmt::Debug for CardinalityResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardinalityResponder")
            .field("key", &self.key)
            .field("elements", &self.distinct.len())
            .field("encoding", &self.encoding)
            .finish()
    }
}

impl CardinalityResponder {
    /// Prepares the responder's set.
    ///
    /// # Errors
    /// [`PsiError::SetTooLarge`] above [`crate::MAX_SET_SIZE`] elements.
    pub fn new<E: AsRef<[u8]> + Sync>(
        key: &MatchKeyName,
        elements: &[E],
        encoding: SetEncoding,
    ) -> Result<Self, PsiError> {
        let own = OwnSet::new("responder", elements)?;
        let distinct = own
            .distinct(elements)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Self {
            key: key.clone(),
            distinct,
            encoding,
        })
    }

    /// Draws a fresh secret, answers the initiator's [`BlindedSet`] and ends the session: the
    /// responder learns nothing but the initiator's set size.
    ///
    /// # Errors
    /// [`PsiError::InvalidPoint`] / [`PsiError::IdentityPoint`] for a bad point.
    ///
    /// # Security
    /// `rng` must be a cryptographic RNG: it draws the secret and the Bloom-filter seed.
    pub fn handle_blinded_set<R: CryptoRng + ?Sized>(
        self,
        request: &BlindedSet,
        rng: &mut R,
    ) -> Result<CardinalityReply, PsiError> {
        let secret = SessionSecret::random(rng);
        let (doubled, own) = rayon::join(
            || secret.reblind("blinded set", &request.points),
            || secret.blind_elements(&self.key, &self.distinct),
        );
        let mut initiator_doubled = doubled?;
        initiator_doubled.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let responder_set = match self.encoding {
            SetEncoding::Raw => {
                let mut own = own;
                own.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                ResponderSet::Raw(own)
            }
            SetEncoding::Bloom(rate) => {
                let sizing = BloomSizing::new(rate, own.len(), request.points.len());
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                ResponderSet::Bloom(BloomSet::build(&sizing, &own, &seed)?)
            }
        };
        Ok(CardinalityReply {
            initiator_doubled,
            responder_set,
        })
    }
}
