//! Grouped PSI cardinality: many small groups in one batched exchange, and the querier learns
//! per group only how many tokens the two sides share.
//!
//! ```text
//! querier (a)                                      answerer (b)
//! GroupedQuerier::start ── GroupedQuery ─────────▶ GroupedAnswerer::start → GroupedAnswererReady
//!   per group: a·H(x), padded with random points     ::handle_query
//!   to the bucket's top, shuffled                     per group: b·(a·H(x)) sorted,
//! GroupedQuerierAwaitingReply ◀── GroupedReply ───── b·H(y) padded and shuffled
//!   ::handle_reply
//!   per group: |{b·a·H(x)} ∩ {a·(b·H(y))}|
//! ```
//!
//! `H(x)` is [`grouped_hash_to_group`] of the session id, the group's label, the token's
//! occurrence number within its group and the token, so a token repeated k times is k distinct
//! points and the count is the multiset intersection `Σ_t min(count_X(t), count_Y(t))`; no
//! point can be correlated across groups or sessions. Padding points are uniformly random
//! points, indistinguishable from blinded tokens without the secret, and match nothing (except
//! with negligible probability). The answerer sorts each group's doubly blinded points, so
//! their order is a function of the set alone and the querier cannot tell which of its tokens
//! matched.
//!
//! # Security
//! Semi-honest model, under DDH in ristretto255 with hash-to-group as a random oracle: the
//! querier learns per group `|X ∩ Y|` and the answerer's padded size; the answerer learns the
//! querier's padded sizes. Both learn the number of groups. A party may choose its tokens: a
//! querier that puts one guessed token in a group learns whether the answerer's group holds it
//! (a membership oracle, one guess per group); see `papers/psi.md`.

mod buckets;
mod wire;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use rand_core::CryptoRng;
use rayon::prelude::*;
use sha3::{Digest, Sha3_512};

pub use buckets::SizeBuckets;
use wire::GroupedPoints;
pub use wire::{GroupedLimits, GroupedQuery, GroupedReply};

use crate::error::PsiError;
use crate::group::{BATCH, SessionSecret, absorb, validate_points};
use crate::shuffle::random_permutation;

/// The domain tag of [`grouped_hash_to_group`].
pub const GROUPED_TAG: &[u8] = b"blindlink/v1/psi/grouped";

/// One group: both sides must list the groups in the same order with the same labels.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenGroup {
    /// Binds the group's points to what it compares (the protocol chooses a label naming the
    /// pair and the field, equal on both sides).
    pub label: Vec<u8>,
    /// The tokens, a multiset: order does not matter, repeats count.
    pub tokens: Vec<Vec<u8>>,
}

impl std::fmt::Debug for TokenGroup {
    // Tokens are personal data: only their number is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGroup")
            .field("label_len", &self.label.len())
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

/// Hashes one token of one group to ristretto255.
///
/// The SHA3-512 input is `L(tag) ‖ session ‖ L(label) ‖ u64le(occurrence) ‖ L(token)`, with
/// `L(s) = u64le(len s) ‖ s`, tag `blindlink/v1/psi/grouped` and the 16 session-id bytes as
/// they are; its 64 bytes go through the ristretto255 one-way map (RFC 9496). `occurrence` is
/// 0 for a token's first copy in its group, 1 for the second, ...
///
/// # Example
/// ```
/// use blindlink_psi::grouped_hash_to_group;
/// let s = [7; 16];
/// assert_ne!(grouped_hash_to_group(&s, b"f", 0, b"ab"), grouped_hash_to_group(&s, b"f", 1, b"ab"));
/// assert_ne!(grouped_hash_to_group(&s, b"f", 0, b"ab"), grouped_hash_to_group(&[8; 16], b"f", 0, b"ab"));
/// ```
pub fn grouped_hash_to_group(
    session: &[u8; 16],
    label: &[u8],
    occurrence: u64,
    token: &[u8],
) -> RistrettoPoint {
    let mut hash = Sha3_512::new();
    absorb(&mut hash, GROUPED_TAG);
    hash.update(session);
    absorb(&mut hash, label);
    hash.update(occurrence.to_le_bytes());
    absorb(&mut hash, token);
    RistrettoPoint::from_hash(hash)
}

/// What the querier learns about one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCount {
    /// `|X ∩ Y|` as multisets.
    pub shared: u32,
    /// This party's token count in the group (not padded).
    pub own_size: u32,
    /// The answerer's padded size: its count lies in [`SizeBuckets::bounds`] of it.
    pub peer_padded: u32,
}

/// What the querier learns: one [`GroupCount`] per group, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupedOutcome {
    /// Per group, in the order given.
    pub groups: Vec<GroupCount>,
}

/// What the answerer learns: the querier's padded size of every group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupedAnswererOutcome {
    /// Per group, in the order given.
    pub peer_padded: Vec<u32>,
}

fn to_u32(n: usize) -> u32 {
    // Sizes are bounded by `GroupedLimits` before they get here.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Checks this party's own groups against the limits and returns their padded sizes.
fn padded_sizes(
    groups: &[TokenGroup],
    buckets: &SizeBuckets,
    limits: &GroupedLimits,
) -> Result<Vec<usize>, PsiError> {
    if groups.len() > limits.max_groups {
        return Err(PsiError::TooManyOwnGroups {
            count: groups.len(),
            limit: limits.max_groups,
        });
    }
    groups
        .iter()
        .enumerate()
        .map(|(group, g)| {
            let padded = buckets.padded(g.tokens.len());
            if padded > limits.max_group_size {
                return Err(PsiError::OwnGroupTooLarge {
                    group,
                    count: g.tokens.len(),
                    limit: limits.max_group_size,
                });
            }
            Ok(padded)
        })
        .collect()
}

/// One point to compute: a token of a group, or a padding point from 64 random bytes.
enum Work<'a> {
    Token {
        label: &'a [u8],
        occurrence: u64,
        token: &'a [u8],
    },
    Pad([u8; 64]),
}

/// Every group's tokens hashed and blinded, padded to `padded[i]` with random points, and
/// shuffled within the group; flat, with batch compression across groups.
fn blind_groups<R: CryptoRng + ?Sized>(
    secret: &SessionSecret,
    session: &[u8; 16],
    groups: &[TokenGroup],
    padded: &[usize],
    rng: &mut R,
) -> GroupedPoints {
    let total: usize = padded.iter().sum();
    let mut work = Vec::with_capacity(total);
    let mut occurrences: std::collections::HashMap<&[u8], u64> = Default::default();
    for (group, &size) in groups.iter().zip(padded) {
        occurrences.clear();
        for token in &group.tokens {
            let occurrence = occurrences.entry(token.as_slice()).or_insert(0);
            work.push(Work::Token {
                label: &group.label,
                occurrence: *occurrence,
                token,
            });
            *occurrence += 1;
        }
        for _ in group.tokens.len()..size {
            let mut bytes = [0u8; 64];
            rng.fill_bytes(&mut bytes);
            work.push(Work::Pad(bytes));
        }
    }
    let half = secret.half();
    let blinded: Vec<CompressedRistretto> = work
        .par_chunks(BATCH)
        .map(|chunk| {
            let halves: Vec<RistrettoPoint> = chunk
                .iter()
                .map(|w| match w {
                    Work::Token {
                        label,
                        occurrence,
                        token,
                    } => grouped_hash_to_group(session, label, *occurrence, token) * half,
                    // Doubled by the batch compression: still a uniformly random point.
                    Work::Pad(bytes) => RistrettoPoint::from_uniform_bytes(bytes),
                })
                .collect();
            RistrettoPoint::double_and_compress_batch(&halves)
        })
        .collect::<Vec<_>>()
        .concat();
    let mut points = GroupedPoints::from_sizes(blinded, padded);
    for i in 0..points.groups() {
        let start = points.offsets[i];
        let group = points.group(i).to_vec();
        for (j, &from) in random_permutation(group.len(), rng).iter().enumerate() {
            points.points[start + j] = group[from];
        }
    }
    points
}

/// Moves a flat point error (`InvalidPoint` / `IdentityPoint` at a flat index) to the group
/// and the index within it, plus `offset(group)`.
fn locate_error(
    error: PsiError,
    points: &GroupedPoints,
    offset: impl Fn(usize) -> usize,
) -> PsiError {
    match error {
        PsiError::InvalidPoint { message, index } => {
            let (group, index) = points.locate(index);
            PsiError::InvalidGroupPoint {
                message,
                group,
                index: index + offset(group),
            }
        }
        PsiError::IdentityPoint { message, index } => {
            let (group, index) = points.locate(index);
            PsiError::IdentityGroupPoint {
                message,
                group,
                index: index + offset(group),
            }
        }
        other => other,
    }
}

/// Entry point of the querier (the comparing side).
#[derive(Debug)]
pub struct GroupedQuerier;

impl GroupedQuerier {
    /// Draws a fresh secret, blinds and pads every group, and returns the query.
    ///
    /// # Errors
    /// [`PsiError::TooManyOwnGroups`] and [`PsiError::OwnGroupTooLarge`] when the groups
    /// exceed `limits` (the padded size counts).
    ///
    /// # Security
    /// `rng` must be a cryptographic RNG: it draws the secret, the padding and the shuffle.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::{GroupedAnswerer, GroupedLimits, GroupedQuerier, SizeBuckets, TokenGroup};
    /// use rand_chacha::ChaCha20Rng;
    /// use rand_core::SeedableRng;
    /// let group = |tokens: &[&str]| TokenGroup {
    ///     label: b"pair 0 / name".to_vec(),
    ///     tokens: tokens.iter().map(|t| t.as_bytes().to_vec()).collect(),
    /// };
    /// let (buckets, limits, session) = (SizeBuckets::default(), GroupedLimits::default(), [9; 16]);
    /// let (mut rng_q, mut rng_a) = (ChaCha20Rng::from_seed([1; 32]), ChaCha20Rng::from_seed([2; 32]));
    /// let (querier, query) = GroupedQuerier::start(&session, &[group(&["ab", "bc", "cd", "ab"])],
    ///     &buckets, &limits, &mut rng_q).unwrap();
    /// let answerer = GroupedAnswerer::start(&session, &[group(&["ab", "bc", "ab", "ab", "xy"])],
    ///     &buckets, &limits, &mut rng_a).unwrap();
    /// let (reply, theirs) = answerer.handle_query(&query).unwrap();
    /// let ours = querier.handle_reply(&reply).unwrap();
    /// assert_eq!((ours.groups[0].shared, ours.groups[0].own_size, ours.groups[0].peer_padded), (3, 4, 6));
    /// assert_eq!(theirs.peer_padded, [4]);
    /// ```
    pub fn start<R: CryptoRng + ?Sized>(
        session: &[u8; 16],
        groups: &[TokenGroup],
        buckets: &SizeBuckets,
        limits: &GroupedLimits,
        rng: &mut R,
    ) -> Result<(GroupedQuerierAwaitingReply, GroupedQuery), PsiError> {
        let padded = padded_sizes(groups, buckets, limits)?;
        let secret = SessionSecret::random(rng);
        let points = blind_groups(&secret, session, groups, &padded, rng);
        let state = GroupedQuerierAwaitingReply {
            secret,
            buckets: buckets.clone(),
            limits: *limits,
            own_sizes: groups.iter().map(|g| g.tokens.len()).collect(),
            padded,
        };
        Ok((state, GroupedQuery { groups: points }))
    }
}

/// The querier after sending its [`GroupedQuery`], waiting for the [`GroupedReply`].
#[derive(Debug)]
pub struct GroupedQuerierAwaitingReply {
    secret: SessionSecret,
    buckets: SizeBuckets,
    limits: GroupedLimits,
    own_sizes: Vec<usize>,
    padded: Vec<usize>,
}

impl GroupedQuerierAwaitingReply {
    /// Counts the shared tokens of every group.
    ///
    /// # Errors
    /// [`PsiError::GroupCountMismatch`] when the reply has another number of groups than the
    /// query, [`PsiError::GroupSizeMismatch`] when a group does not answer every point sent,
    /// [`PsiError::GroupSizeNotBucket`] / [`PsiError::GroupTooLarge`] for the answerer's
    /// padded size, [`PsiError::InvalidGroupPoint`] / [`PsiError::IdentityGroupPoint`] /
    /// [`PsiError::DuplicateGroupPoint`] naming the group and the index within it (the doubly
    /// blinded points first, then the answerer's).
    pub fn handle_reply(self, reply: &GroupedReply) -> Result<GroupedOutcome, PsiError> {
        const MESSAGE: &str = "grouped reply";
        if reply.len() != self.padded.len() {
            return Err(PsiError::GroupCountMismatch {
                message: MESSAGE,
                expected: self.padded.len(),
                actual: reply.len(),
            });
        }
        for (group, &sent) in self.padded.iter().enumerate() {
            let answered = reply.doubled.size(group);
            if answered != sent {
                return Err(PsiError::GroupSizeMismatch {
                    message: MESSAGE,
                    group,
                    expected: sent,
                    actual: answered,
                });
            }
        }
        check_peer_sizes(MESSAGE, &reply.answerer, &self.buckets, &self.limits)?;
        check_duplicates(MESSAGE, &reply.doubled, |_| 0)?;
        check_duplicates(MESSAGE, &reply.answerer, |g| reply.doubled.size(g))?;
        let (validated, reblinded) = rayon::join(
            || validate_points(MESSAGE, &reply.doubled.points),
            || self.secret.reblind(MESSAGE, &reply.answerer.points),
        );
        validated.map_err(|e| locate_error(e, &reply.doubled, |_| 0))?;
        let reblinded =
            reblinded.map_err(|e| locate_error(e, &reply.answerer, |g| reply.doubled.size(g)))?;
        let reblinded = GroupedPoints {
            points: reblinded,
            offsets: reply.answerer.offsets.clone(),
        };
        let groups = (0..self.padded.len())
            .map(|group| {
                let mut doubled = reply.doubled.group(group).to_vec();
                doubled.sort_unstable_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
                let shared = reblinded
                    .group(group)
                    .iter()
                    .filter(|p| {
                        doubled
                            .binary_search_by(|d| d.as_bytes().cmp(p.as_bytes()))
                            .is_ok()
                    })
                    .count();
                GroupCount {
                    shared: to_u32(shared),
                    own_size: to_u32(self.own_sizes[group]),
                    peer_padded: to_u32(reply.answerer.size(group)),
                }
            })
            .collect();
        Ok(GroupedOutcome { groups })
    }
}

/// A peer's padded sizes must be bucket tops within the limit (the decoder checked the limit
/// already for decoded messages; values built in memory are checked here too).
fn check_peer_sizes(
    message: &'static str,
    points: &GroupedPoints,
    buckets: &SizeBuckets,
    limits: &GroupedLimits,
) -> Result<(), PsiError> {
    for group in 0..points.groups() {
        let size = points.size(group);
        if size > limits.max_group_size {
            return Err(PsiError::GroupTooLarge {
                message,
                group,
                size: size as u64,
                limit: limits.max_group_size as u64,
            });
        }
        if !buckets.is_top(size) {
            return Err(PsiError::GroupSizeNotBucket {
                message,
                group,
                size,
            });
        }
    }
    Ok(())
}

/// Repeated points within a group (the decoder refuses them already; this covers messages
/// built in memory).
fn check_duplicates(
    message: &'static str,
    points: &GroupedPoints,
    offset: impl Fn(usize) -> usize,
) -> Result<(), PsiError> {
    let mut sorted: Vec<(&[u8; 32], usize)> = Vec::new();
    for group in 0..points.groups() {
        sorted.clear();
        sorted.extend(points.group(group).iter().map(|p| p.as_bytes()).zip(0..));
        sorted.sort_unstable();
        if let Some(w) = sorted
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .min_by_key(|w| w[1].1)
        {
            return Err(PsiError::DuplicateGroupPoint {
                message,
                group,
                index: w[1].1 + offset(group),
                first: w[0].1 + offset(group),
            });
        }
    }
    Ok(())
}

/// Entry point of the answerer.
#[derive(Debug)]
pub struct GroupedAnswerer;

impl GroupedAnswerer {
    /// Draws a fresh secret and blinds, pads and shuffles every group, ready for the query
    /// (this work can happen before it arrives).
    ///
    /// # Errors
    /// As [`GroupedQuerier::start`].
    ///
    /// # Security
    /// `rng` must be a cryptographic RNG: it draws the secret, the padding and the shuffle.
    pub fn start<R: CryptoRng + ?Sized>(
        session: &[u8; 16],
        groups: &[TokenGroup],
        buckets: &SizeBuckets,
        limits: &GroupedLimits,
        rng: &mut R,
    ) -> Result<GroupedAnswererReady, PsiError> {
        let padded = padded_sizes(groups, buckets, limits)?;
        let secret = SessionSecret::random(rng);
        let own = blind_groups(&secret, session, groups, &padded, rng);
        Ok(GroupedAnswererReady {
            secret,
            buckets: buckets.clone(),
            limits: *limits,
            own,
        })
    }
}

/// The answerer with its own groups blinded, waiting for the [`GroupedQuery`].
#[derive(Debug)]
pub struct GroupedAnswererReady {
    secret: SessionSecret,
    buckets: SizeBuckets,
    limits: GroupedLimits,
    own: GroupedPoints,
}

impl GroupedAnswererReady {
    /// Blinds the querier's points again and answers with them (sorted within each group) and
    /// this party's own points.
    ///
    /// # Errors
    /// [`PsiError::GroupCountMismatch`] when the query has another number of groups than this
    /// party, [`PsiError::GroupSizeNotBucket`] / [`PsiError::GroupTooLarge`] for a padded
    /// size, [`PsiError::InvalidGroupPoint`] / [`PsiError::IdentityGroupPoint`] /
    /// [`PsiError::DuplicateGroupPoint`] naming the group and the index within it.
    pub fn handle_query(
        self,
        query: &GroupedQuery,
    ) -> Result<(GroupedReply, GroupedAnswererOutcome), PsiError> {
        const MESSAGE: &str = "grouped query";
        if query.len() != self.own.groups() {
            return Err(PsiError::GroupCountMismatch {
                message: MESSAGE,
                expected: self.own.groups(),
                actual: query.len(),
            });
        }
        check_peer_sizes(MESSAGE, &query.groups, &self.buckets, &self.limits)?;
        check_duplicates(MESSAGE, &query.groups, |_| 0)?;
        let doubled = self
            .secret
            .reblind(MESSAGE, &query.groups.points)
            .map_err(|e| locate_error(e, &query.groups, |_| 0))?;
        let mut doubled = GroupedPoints {
            points: doubled,
            offsets: query.groups.offsets.clone(),
        };
        for group in 0..doubled.groups() {
            let (start, end) = (doubled.offsets[group], doubled.offsets[group + 1]);
            doubled.points[start..end].sort_unstable_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
        }
        let outcome = GroupedAnswererOutcome {
            peer_padded: query.padded_sizes().into_iter().map(to_u32).collect(),
        };
        let reply = GroupedReply {
            doubled,
            answerer: self.own,
        };
        Ok((reply, outcome))
    }
}

/// Runs a whole grouped session with both parties in this process, passing the messages as
/// values (no encoding): for tests, benchmarks and `blindlink bench grouped-psi`.
///
/// # Errors
/// Whatever a step reports; with two honest parties, only the limits' errors and
/// [`PsiError::GroupCountMismatch`] when the two sides list different numbers of groups.
pub fn grouped_in_memory<R, S>(
    session: &[u8; 16],
    querier_groups: &[TokenGroup],
    answerer_groups: &[TokenGroup],
    buckets: &SizeBuckets,
    limits: &GroupedLimits,
    querier_rng: &mut R,
    answerer_rng: &mut S,
) -> Result<(GroupedOutcome, GroupedAnswererOutcome), PsiError>
where
    R: CryptoRng + ?Sized,
    S: CryptoRng + ?Sized,
{
    let (querier, query) =
        GroupedQuerier::start(session, querier_groups, buckets, limits, querier_rng)?;
    let answerer = GroupedAnswerer::start(session, answerer_groups, buckets, limits, answerer_rng)?;
    let (reply, answerer_outcome) = answerer.handle_query(&query)?;
    Ok((querier.handle_reply(&reply)?, answerer_outcome))
}
