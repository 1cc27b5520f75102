//! Mutual PSI: both parties learn which of their own elements the other holds, and derive the
//! same link id for each shared element.
//!
//! ```text
//! initiator (a)                                   responder (b)
//! MutualInitiator::start ── BlindedSet ──────────▶ ResponderReady::handle_blinded_set
//!   {a·H(x)} shuffled                                {b·a·H(x)} in received order,
//! InitiatorAwaitingReply ◀── MutualReply ───────── {b·H(y)} shuffled
//!   ::handle_reply
//!   matches: b·a·H(x) ∈ {a·b·H(y)}
//!   ── ReblindedSet ──────────────────────────────▶ ResponderAwaitingReblinded::handle_reblinded_set
//!   {a·b·H(y)} in the responder's order              matches: a·b·H(y) ∈ {b·a·H(x)}
//! ```

use std::collections::HashMap;

use curve25519_dalek::ristretto::CompressedRistretto;
use rand_core::CryptoRng;
use rayon::prelude::*;

use crate::error::PsiError;
use crate::group::{LinkId, MatchKeyName, SessionSecret, validate_points};
use crate::shuffle::random_permutation;
use crate::wire::{BlindedSet, MutualReply, ReblindedSet};

/// Most elements a party's own set may have in one session (the wire limit is separate).
pub const MAX_SET_SIZE: usize = 1 << 26;

/// One of this party's elements that the other party also holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// Position of the element in this party's input.
    pub index: usize,
    /// The id both parties derive for this element.
    pub link_id: LinkId,
}

/// What one party learns from a mutual PSI session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutualOutcome {
    /// This party's matched elements, by input position (ascending). Equal inputs share one
    /// link id.
    pub matches: Vec<Match>,
    /// The size of the other party's set after removing duplicates.
    pub peer_set_size: usize,
}

/// A party's own elements, deduplicated so that the peer never sees equal blinded points
/// (which would reveal duplicates), with the way back to input positions.
/// A set of compressed points as a sorted vector: 32 bytes a point, where a hash set of them
/// takes about twice that, and membership by binary search.
#[derive(Debug)]
pub(crate) struct PointSet(Vec<[u8; 32]>);

impl PointSet {
    pub(crate) fn new(mut points: Vec<[u8; 32]>) -> Self {
        points.par_sort_unstable();
        points.dedup();
        points.shrink_to_fit();
        Self(points)
    }

    pub(crate) fn contains(&self, point: &[u8; 32]) -> bool {
        self.0.binary_search(point).is_ok()
    }

    /// Distinct points.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

///
/// Positions are `u32` ([`MAX_SET_SIZE`] is below 2³²): a session holds these for every
/// record of the party, so each byte here is a byte per record.
#[derive(Debug)]
pub(crate) struct OwnSet {
    /// Input position of the first occurrence of each distinct element.
    distinct_first: Vec<u32>,
    /// For each input position, its distinct element.
    distinct_of_input: Vec<u32>,
}

impl OwnSet {
    pub(crate) fn new<E: AsRef<[u8]>>(
        party: &'static str,
        elements: &[E],
    ) -> Result<Self, PsiError> {
        if elements.len() > MAX_SET_SIZE {
            return Err(PsiError::SetTooLarge {
                party,
                count: elements.len(),
                limit: MAX_SET_SIZE,
            });
        }
        let mut first_seen: HashMap<&[u8], u32> = HashMap::with_capacity(elements.len());
        let mut distinct_first = Vec::with_capacity(elements.len());
        let distinct_of_input = elements
            .iter()
            .enumerate()
            .map(|(index, element)| {
                *first_seen.entry(element.as_ref()).or_insert_with(|| {
                    distinct_first.push(index as u32);
                    (distinct_first.len() - 1) as u32
                })
            })
            .collect();
        drop(first_seen);
        distinct_first.shrink_to_fit();
        Ok(Self {
            distinct_first,
            distinct_of_input,
        })
    }

    pub(crate) fn distinct<'a, E: AsRef<[u8]>>(&self, elements: &'a [E]) -> Vec<&'a [u8]> {
        self.distinct_first
            .iter()
            .map(|&i| elements[i as usize].as_ref())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.distinct_first.len()
    }

    /// Expands the link ids of the matched distinct elements (ascending by distinct element)
    /// to per-input matches.
    /// The vector is made at its exact size (counted first): grown by doubling, it could take
    /// twice the 40 bytes a match at the session's end.
    fn matches(&self, matched: &[(u32, LinkId)]) -> Vec<Match> {
        let find = |d: u32| matched.binary_search_by_key(&d, |&(d, _)| d).ok();
        let count = self
            .distinct_of_input
            .iter()
            .filter(|&&d| find(d).is_some())
            .count();
        let mut out = Vec::with_capacity(count);
        out.extend(
            self.distinct_of_input
                .iter()
                .enumerate()
                .filter_map(|(index, &d)| {
                    Some(Match {
                        index,
                        link_id: matched[find(d)?].1,
                    })
                }),
        );
        out
    }
}

/// Blinds a deduplicated set and shuffles it: `sent[j]` is distinct element `permutation[j]`.
/// The elements are put in the sent order first and blinded there (blinding takes no
/// randomness, so the permutation is the one drawn after blinding would have been): the
/// points are made once, in place, not blinded and then copied in another order.
fn blind_and_shuffle<R: CryptoRng + ?Sized>(
    secret: &SessionSecret,
    key: &MatchKeyName,
    distinct: Vec<&[u8]>,
    rng: &mut R,
) -> (Vec<CompressedRistretto>, Vec<u32>) {
    // A set holds at most MAX_SET_SIZE elements (checked by `OwnSet::new`).
    let permutation: Vec<u32> = random_permutation(distinct.len(), rng)
        .into_iter()
        .map(|d| d as u32)
        .collect();
    let in_sent_order: Vec<&[u8]> = permutation.iter().map(|&d| distinct[d as usize]).collect();
    drop(distinct);
    let sent = secret.blind_elements(key, &in_sent_order);
    (sent, permutation)
}

/// Entry point of the initiating party.
#[derive(Debug)]
pub struct MutualInitiator;

impl MutualInitiator {
    /// Draws a fresh secret, blinds and shuffles the elements, and returns the first message.
    ///
    /// # Errors
    /// [`PsiError::SetTooLarge`] above [`MAX_SET_SIZE`] elements.
    ///
    /// # Security
    /// `rng` must be a cryptographic RNG: it draws the session secret and the shuffle.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::{MatchKeyName, MutualInitiator, MutualResponder};
    /// use rand_chacha::ChaCha20Rng;
    /// use rand_core::SeedableRng;
    ///
    /// let key = MatchKeyName::new("my_number").unwrap();
    /// let (mut rng_a, mut rng_b) = (ChaCha20Rng::from_seed([1; 32]), ChaCha20Rng::from_seed([2; 32]));
    /// let (initiator, request) = MutualInitiator::start(&key, &["a", "b", "c"], &mut rng_a).unwrap();
    /// let responder = MutualResponder::start(&key, &["c", "d", "a"], &mut rng_b).unwrap();
    /// let (responder, reply) = responder.handle_blinded_set(&request).unwrap();
    /// let (ours, reblinded) = initiator.handle_reply(&reply).unwrap();
    /// let theirs = responder.handle_reblinded_set(&reblinded).unwrap();
    /// let indices: Vec<usize> = ours.matches.iter().map(|m| m.index).collect();
    /// assert_eq!(indices, [0, 2]);
    /// assert_eq!(ours.matches[0].link_id, theirs.matches[1].link_id); // "a"
    /// ```
    pub fn start<E, R>(
        key: &MatchKeyName,
        elements: &[E],
        rng: &mut R,
    ) -> Result<(InitiatorAwaitingReply, BlindedSet), PsiError>
    where
        E: AsRef<[u8]> + Sync,
        R: CryptoRng + ?Sized,
    {
        let own = OwnSet::new("initiator", elements)?;
        let secret = SessionSecret::random(rng);
        let (points, permutation) = blind_and_shuffle(&secret, key, own.distinct(elements), rng);
        let state = InitiatorAwaitingReply {
            key: key.clone(),
            secret,
            own,
            permutation,
        };
        Ok((state, BlindedSet { points }))
    }
}

/// The initiator after sending its [`BlindedSet`], waiting for the [`MutualReply`].
#[derive(Debug)]
pub struct InitiatorAwaitingReply {
    key: MatchKeyName,
    secret: SessionSecret,
    own: OwnSet,
    permutation: Vec<u32>,
}

impl InitiatorAwaitingReply {
    /// Finds this party's matches and produces the last message for the responder.
    ///
    /// # Errors
    /// [`PsiError::CountMismatch`] when the reply does not answer every point sent,
    /// [`PsiError::InvalidPoint`] / [`PsiError::IdentityPoint`] for a bad point.
    pub fn handle_reply(
        self,
        reply: &MutualReply,
    ) -> Result<(MutualOutcome, ReblindedSet), PsiError> {
        const MESSAGE: &str = "mutual reply";
        if reply.initiator_doubled.len() != self.permutation.len() {
            return Err(PsiError::CountMismatch {
                message: MESSAGE,
                expected: self.permutation.len(),
                actual: reply.initiator_doubled.len(),
            });
        }
        let (validated, reblinded) = rayon::join(
            || validate_points(MESSAGE, &reply.initiator_doubled),
            || self.secret.reblind(MESSAGE, &reply.responder_blinded),
        );
        validated?;
        let reblinded =
            reblinded.map_err(|e| e.with_index_offset(reply.initiator_doubled.len()))?;
        let peer = PointSet::new(reblinded.iter().map(|p| p.0).collect());
        let matched = matched_distinct(
            &self.key,
            &reply.initiator_doubled,
            &self.permutation,
            |p| peer.contains(&p.0),
        );
        drop(peer);
        let outcome = MutualOutcome {
            matches: self.own.matches(&matched),
            peer_set_size: reply.responder_blinded.len(),
        };
        Ok((outcome, ReblindedSet { points: reblinded }))
    }
}

impl InitiatorAwaitingReply {
    /// [`Self::handle_reply`] taking the reply by value: the responder's points are
    /// reblinded where they are and become the [`ReblindedSet`] (the reply is not held
    /// twice, as received and as reblinded).
    ///
    /// # Errors
    /// As [`Self::handle_reply`], for the same messages.
    pub fn handle_reply_owned(
        self,
        reply: MutualReply,
    ) -> Result<(MutualOutcome, ReblindedSet), PsiError> {
        const MESSAGE: &str = "mutual reply";
        if reply.initiator_doubled.len() != self.permutation.len() {
            return Err(PsiError::CountMismatch {
                message: MESSAGE,
                expected: self.permutation.len(),
                actual: reply.initiator_doubled.len(),
            });
        }
        let MutualReply {
            initiator_doubled,
            mut responder_blinded,
        } = reply;
        let (validated, reblinded) = rayon::join(
            || validate_points(MESSAGE, &initiator_doubled),
            || {
                self.secret
                    .reblind_in_place(MESSAGE, &mut responder_blinded)
            },
        );
        validated?;
        reblinded.map_err(|e| e.with_index_offset(initiator_doubled.len()))?;
        // A sorted copy (direct comparisons): a sorted index of positions saves 28 bytes a
        // point but its indirect comparisons cost ~6 % more CPU at 1M (papers/scale.md §2).
        let peer = PointSet::new(responder_blinded.iter().map(|p| p.0).collect());
        let matched = matched_distinct(&self.key, &initiator_doubled, &self.permutation, |p| {
            peer.contains(&p.0)
        });
        drop(peer);
        drop(initiator_doubled);
        let outcome = MutualOutcome {
            matches: self.own.matches(&matched),
            peer_set_size: responder_blinded.len(),
        };
        Ok((
            outcome,
            ReblindedSet {
                points: responder_blinded,
            },
        ))
    }
}

/// The distinct own elements whose doubly-blinded point (at its position in the list this
/// party sent) is in the peer's set, with their link ids, ascending by distinct element;
/// hashing runs in parallel. Only the matches are held (36 bytes each), not a slot per
/// element.
fn matched_distinct(
    key: &MatchKeyName,
    doubled: &[CompressedRistretto],
    permutation: &[u32],
    in_peer_set: impl Fn(&CompressedRistretto) -> bool + Sync,
) -> Vec<(u32, LinkId)> {
    let mut matched: Vec<(u32, LinkId)> = doubled
        .par_iter()
        .zip(permutation)
        .filter_map(|(point, &d)| in_peer_set(point).then(|| (d, LinkId::derive(key, point))))
        .collect();
    matched.par_sort_unstable_by_key(|&(d, _)| d);
    matched
}

/// Entry point of the responding party.
#[derive(Debug)]
pub struct MutualResponder;

impl MutualResponder {
    /// Draws a fresh secret and blinds and shuffles the elements, ready for the initiator's
    /// first message (this work can happen before it arrives).
    ///
    /// # Errors
    /// [`PsiError::SetTooLarge`] above [`MAX_SET_SIZE`] elements.
    ///
    /// # Security
    /// `rng` must be a cryptographic RNG: it draws the session secret and the shuffle.
    pub fn start<E, R>(
        key: &MatchKeyName,
        elements: &[E],
        rng: &mut R,
    ) -> Result<ResponderReady, PsiError>
    where
        E: AsRef<[u8]> + Sync,
        R: CryptoRng + ?Sized,
    {
        let own = OwnSet::new("responder", elements)?;
        let secret = SessionSecret::random(rng);
        let (blinded, permutation) = blind_and_shuffle(&secret, key, own.distinct(elements), rng);
        Ok(ResponderReady {
            key: key.clone(),
            secret,
            own,
            permutation,
            blinded,
        })
    }
}

/// The responder with its own set blinded, waiting for the initiator's [`BlindedSet`].
#[derive(Debug)]
pub struct ResponderReady {
    key: MatchKeyName,
    secret: SessionSecret,
    own: OwnSet,
    permutation: Vec<u32>,
    blinded: Vec<CompressedRistretto>,
}

impl ResponderReady {
    /// Blinds the initiator's points again and answers with them and this party's own set.
    ///
    /// # Errors
    /// [`PsiError::InvalidPoint`] / [`PsiError::IdentityPoint`] for a bad point.
    pub fn handle_blinded_set(
        self,
        request: &BlindedSet,
    ) -> Result<(ResponderAwaitingReblinded, MutualReply), PsiError> {
        let initiator_doubled = self.secret.reblind("blinded set", &request.points)?;
        Ok(self.reply_with(initiator_doubled))
    }
}

impl ResponderReady {
    /// The reply once the initiator's points are blinded again, and the state that waits for
    /// their answer (shared by the steps by reference and by value).
    fn reply_with(
        self,
        initiator_doubled: Vec<CompressedRistretto>,
    ) -> (ResponderAwaitingReblinded, MutualReply) {
        let peer = PointSet::new(initiator_doubled.iter().map(|p| p.0).collect());
        let state = ResponderAwaitingReblinded {
            key: self.key,
            own: self.own,
            permutation: self.permutation,
            peer,
            _secret: self.secret,
        };
        let reply = MutualReply {
            initiator_doubled,
            responder_blinded: self.blinded,
        };
        (state, reply)
    }

    /// [`Self::handle_blinded_set`] taking the message by value: its points are blinded
    /// again where they are and become the reply's first list (the message is not held
    /// twice, as received and as reblinded).
    ///
    /// # Errors
    /// As [`Self::handle_blinded_set`].
    pub fn handle_blinded_set_owned(
        self,
        request: BlindedSet,
    ) -> Result<(ResponderAwaitingReblinded, MutualReply), PsiError> {
        let mut initiator_doubled = request.points;
        self.secret
            .reblind_in_place("blinded set", &mut initiator_doubled)?;
        Ok(self.reply_with(initiator_doubled))
    }
}

/// The responder after its [`MutualReply`], waiting for the [`ReblindedSet`].
#[derive(Debug)]
pub struct ResponderAwaitingReblinded {
    key: MatchKeyName,
    own: OwnSet,
    permutation: Vec<u32>,
    peer: PointSet,
    // Kept only so that it is zeroized when the session ends, not earlier or later.
    _secret: SessionSecret,
}

impl ResponderAwaitingReblinded {
    /// Finds this party's matches.
    ///
    /// # Errors
    /// [`PsiError::CountMismatch`] when the message does not answer every point sent,
    /// [`PsiError::InvalidPoint`] / [`PsiError::IdentityPoint`] for a bad point.
    pub fn handle_reblinded_set(self, message: &ReblindedSet) -> Result<MutualOutcome, PsiError> {
        const MESSAGE: &str = "reblinded set";
        if message.points.len() != self.permutation.len() {
            return Err(PsiError::CountMismatch {
                message: MESSAGE,
                expected: self.permutation.len(),
                actual: message.points.len(),
            });
        }
        validate_points(MESSAGE, &message.points)?;
        let matched = matched_distinct(&self.key, &message.points, &self.permutation, |p| {
            self.peer.contains(&p.0)
        });
        Ok(MutualOutcome {
            matches: self.own.matches(&matched),
            peer_set_size: self.peer.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    /// The owned steps (reblinding in place, a sorted index) give the same outcomes and the
    /// same messages as the steps by reference, and the same errors for hostile points.
    #[test]
    fn owned_steps_match_the_steps_by_reference() {
        let key = MatchKeyName::new("k").unwrap();
        // Over one blinding batch (512) on each side, duplicates included; small enough for
        // .ci/curve-fallback.sh, which runs this test under qemu.
        let ours: Vec<String> = (0..600).map(|i| format!("e{}", i % 560)).collect();
        let theirs: Vec<String> = (280..800).map(|i| format!("e{i}")).collect();
        let start = || {
            let (initiator, request) =
                MutualInitiator::start(&key, &ours, &mut ChaCha20Rng::from_seed([1; 32])).unwrap();
            let responder =
                MutualResponder::start(&key, &theirs, &mut ChaCha20Rng::from_seed([2; 32]))
                    .unwrap();
            (initiator, request, responder)
        };
        let (initiator, request, responder) = start();
        let (responder, reply) = responder.handle_blinded_set(&request).unwrap();
        let (outcome, reblinded) = initiator.handle_reply(&reply).unwrap();
        let theirs_outcome = responder.handle_reblinded_set(&reblinded).unwrap();

        let (initiator, request_again, responder) = start();
        assert_eq!(request_again, request);
        let (responder, reply_owned) = responder.handle_blinded_set_owned(request_again).unwrap();
        assert_eq!(reply_owned, reply);
        let (outcome_owned, reblinded_owned) = initiator.handle_reply_owned(reply_owned).unwrap();
        assert_eq!(outcome_owned, outcome);
        assert_eq!(reblinded_owned, reblinded);
        assert_eq!(
            responder.handle_reblinded_set(&reblinded_owned).unwrap(),
            theirs_outcome
        );
        assert_eq!(outcome.matches.len(), 280);

        // Hostile points: the same error, with the same index, both ways.
        let invalid = CompressedRistretto([0xff; 32]);
        for (list, at) in [(0, 5), (1, 0), (1, 519)] {
            let mut hostile = reply.clone();
            match list {
                0 => hostile.initiator_doubled[at] = invalid,
                _ => hostile.responder_blinded[at] = invalid,
            }
            let (initiator, _, _) = start();
            let by_reference = initiator.handle_reply(&hostile).unwrap_err();
            let (initiator, _, _) = start();
            assert_eq!(
                initiator.handle_reply_owned(hostile).unwrap_err(),
                by_reference
            );
        }
        let mut hostile = request.clone();
        hostile.points[7] = invalid;
        let (_, _, responder) = start();
        let by_reference = responder.handle_blinded_set(&hostile).unwrap_err();
        let (_, _, responder) = start();
        assert_eq!(
            responder.handle_blinded_set_owned(hostile).unwrap_err(),
            by_reference
        );
        assert_eq!(
            by_reference.to_string(),
            "blinded set has an invalid point encoding at index 7"
        );
    }
}
