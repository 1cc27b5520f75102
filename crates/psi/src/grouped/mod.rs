//! Grouped PSI cardinality: many small groups in one batched exchange, and the querier learns
//! per group only how many tokens the two sides share.
//!
//! ```text
//! querier (a)                                      answerer (b)
//! GroupedQuerier::start ── GroupedQuery ─────────▶ GroupedAnswerer::start → GroupedAnswererReady
//!   per group: a·H(x), padded with random points     per group: tag(b·H(y)), padded with
//!   to the bucket's top, shuffled                    random tags, sorted; ::handle_query
//! GroupedQuerierAwaitingReply ◀── GroupedReply ───── per group: b·(a·H(x)) sorted, and the tags
//!   ::handle_reply
//!   per group: |{tag(a⁻¹·b·a·H(x))} ∩ {tag(b·H(y))}|
//! ```
//!
//! `H(x)` is [`grouped_hash_to_group`] of the session id, the group's label, the token's
//! occurrence number within its group and the token, so a token repeated k times is k distinct
//! points and the count is the multiset intersection `Σ_t min(count_X(t), count_Y(t))`; no
//! point can be correlated across groups or sessions. The querier's padding points are
//! uniformly random points, indistinguishable from blinded tokens without the secret; the
//! answerer's padding is uniformly random tags, indistinguishable from the tags of blinded
//! tokens the querier does not hold; neither matches anything (except with negligible
//! probability). An empty group is sent empty ([`SizeBuckets::padded`]`(0) = 0`). The
//! answerer sorts each group's doubly blinded points, so their order is a function of the set
//! alone and the querier cannot tell which of its tokens matched.
//!
//! The answerer sends its own blinded points as 8-byte tags ([`point_tag`], a truncated
//! SHA3-256), not as points: the querier only tests membership, so it unblinds its doubly
//! blinded points (`a⁻¹`) and compares tags. That is 8 bytes instead of 32 per answerer point
//! and saves the querier a decompression per point; the price is a false-positive rate of at
//! most `m · 2⁻⁶⁴` per querier point against a group of `m` tags (below 10⁻¹⁷ for m = 48), so
//! a count is exact for every practical purpose (it can only be too high, never too low).
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
use sha3::{Digest, Sha3_256, Sha3_512};

pub use buckets::SizeBuckets;
pub use wire::{GroupedLimits, GroupedQuery, GroupedReply};
use wire::{GroupedPoints, GroupedTags, ItemBytes, TAG_LEN, Tag};

use crate::error::PsiError;
use crate::group::{BATCH, SessionSecret, absorb};
use crate::shuffle::random_permutation;

/// The domain tag of [`grouped_hash_to_group`].
pub const GROUPED_TAG: &[u8] = b"blindlink/v1/psi/grouped";

/// The domain tag of [`point_tag`].
const POINT_TAG_DOMAIN: &[u8] = b"blindlink/v1/psi/grouped-tag";

/// The 8-byte tag of a point: the first 8 bytes of `SHA3-256(L(tag) ‖ enc(P))`, tag
/// `blindlink/v1/psi/grouped-tag`. The answerer sends the tags of its blinded points instead of
/// the points; the querier compares the tags of the points it unblinds.
///
/// # Example
/// ```
/// use blindlink_psi::{grouped_hash_to_group, point_tag};
/// let p = grouped_hash_to_group(&[0; 16], b"f", 0, b"ab").compress();
/// assert_eq!(point_tag(&p), point_tag(&p));
/// ```
pub fn point_tag(point: &CompressedRistretto) -> [u8; 8] {
    let mut hash = Sha3_256::new();
    absorb(&mut hash, POINT_TAG_DOMAIN);
    hash.update(point.as_bytes());
    let digest = hash.finalize();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&digest[..TAG_LEN]);
    tag
}

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
    GroupHasher::new(session, label).hash(occurrence, token)
}

/// [`grouped_hash_to_group`] for the tokens of one group: the SHA3-512 state after
/// `L(tag) ‖ session ‖ L(label)` is computed once and cloned per token, which saves one of
/// the three Keccak permutations a token takes with the protocol's 63-byte labels. The points
/// are the same (tested against the one-by-one function).
#[derive(Clone)]
struct GroupHasher(Sha3_512);

impl GroupHasher {
    fn new(session: &[u8; 16], label: &[u8]) -> Self {
        let mut hash = Sha3_512::new();
        absorb(&mut hash, GROUPED_TAG);
        hash.update(session);
        absorb(&mut hash, label);
        Self(hash)
    }

    fn hash(&self, occurrence: u64, token: &[u8]) -> RistrettoPoint {
        let mut hash = self.0.clone();
        hash.update(occurrence.to_le_bytes());
        absorb(&mut hash, token);
        RistrettoPoint::from_hash(hash)
    }
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

/// One point to compute: a token of a group (with the index of its group's hasher), or a
/// padding point from 64 random bytes.
enum Work<'a> {
    Token {
        group: usize,
        occurrence: u64,
        token: &'a [u8],
    },
    Pad([u8; 64]),
}

/// How [`blind_groups`] fills a group up to its padded size.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Padding {
    /// With uniformly random points, shuffled in among the tokens (the querier's points).
    Points,
    /// Not at all: only the tokens' points, in token order (the answerer's, whose padding is
    /// random tags; see [`pad_and_sort_tags`]).
    None,
}

/// Every group's tokens hashed and blinded, flat in group order, with batch compression
/// across groups; with [`Padding::Points`] each group is padded to `padded[i]` with random
/// points and shuffled.
fn blind_groups<R: CryptoRng + ?Sized>(
    secret: &SessionSecret,
    session: &[u8; 16],
    groups: &[TokenGroup],
    padded: &[usize],
    padding: Padding,
    rng: &mut R,
) -> GroupedPoints {
    let sizes: Vec<usize> = match padding {
        Padding::Points => padded.to_vec(),
        Padding::None => groups.iter().map(|g| g.tokens.len()).collect(),
    };
    let mut work = Vec::with_capacity(sizes.iter().sum());
    let hashers: Vec<GroupHasher> = groups
        .par_iter()
        .map(|g| GroupHasher::new(session, &g.label))
        .collect();
    let mut occurrences: std::collections::HashMap<&[u8], u64> = Default::default();
    for (index, (group, &size)) in groups.iter().zip(&sizes).enumerate() {
        occurrences.clear();
        for token in &group.tokens {
            let occurrence = occurrences.entry(token.as_slice()).or_insert(0);
            work.push(Work::Token {
                group: index,
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
                        group,
                        occurrence,
                        token,
                    } => hashers[*group].hash(*occurrence, token) * half,
                    // Doubled by the batch compression: still a uniformly random point.
                    Work::Pad(bytes) => RistrettoPoint::from_uniform_bytes(bytes),
                })
                .collect();
            RistrettoPoint::double_and_compress_batch(&halves)
        })
        .collect::<Vec<_>>()
        .concat();
    let mut points = GroupedPoints::from_sizes(blinded, &sizes);
    if padding == Padding::Points {
        for i in 0..points.groups() {
            let start = points.offsets[i];
            let group = points.group(i).to_vec();
            for (j, &from) in random_permutation(group.len(), rng).iter().enumerate() {
                points.items[start + j] = group[from];
            }
        }
    }
    points
}

/// The answerer's tags: per group the tags of its blinded tokens `own` (unpadded, as
/// [`blind_groups`] gives them with [`Padding::None`]) and uniformly random tags up to
/// `padded[i]`, sorted within the group.
///
/// A random tag stands in for the tag of a random padding point: both are 8 bytes the querier
/// cannot tell from the tag of a token it does not hold (a truncated SHA3-256 of a point it
/// cannot compute), and the random bytes cost nothing where a padding point cost two one-way
/// maps, a compression and a hash. When a group's tags repeat (probability about
/// `m² · 2⁻⁶⁴`) its random tags are drawn again, so that an honest reply holds no duplicate
/// (the querier refuses one); two tokens' tags that repeat (distinct points with equal tags,
/// as likely) are sent as they are.
fn pad_and_sort_tags<R: CryptoRng + ?Sized>(
    own: &GroupedPoints,
    padded: &[usize],
    rng: &mut R,
) -> GroupedTags {
    let token_tags: Vec<Tag> = own.items.par_iter().map(point_tag).collect();
    let mut items = Vec::with_capacity(padded.iter().sum());
    for (group, &size) in padded.iter().enumerate() {
        let start = items.len();
        let tokens = &token_tags[own.offsets[group]..own.offsets[group + 1]];
        let tokens_repeat = {
            let mut sorted = tokens.to_vec();
            sorted.sort_unstable();
            sorted.windows(2).any(|w| w[0] == w[1])
        };
        loop {
            items.truncate(start);
            items.extend_from_slice(tokens);
            for _ in tokens.len()..size {
                let mut tag = [0u8; TAG_LEN];
                rng.fill_bytes(&mut tag);
                items.push(tag);
            }
            // Sorted: a canonical order, independent of the tokens' order and of the padding.
            items[start..].sort_unstable();
            if tokens_repeat || !items[start..].windows(2).any(|w| w[0] == w[1]) {
                break;
            }
        }
    }
    GroupedTags::from_sizes(items, padded)
}

/// Moves a flat point error (`InvalidPoint` / `IdentityPoint` at a flat index) to the group
/// and the index within it, plus `offset(group)`.
fn locate_error<T>(
    error: PsiError,
    points: &wire::Grouped<T>,
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
        let points = blind_groups(&secret, session, groups, &padded, Padding::Points, rng);
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
        // a⁻¹·(b·a·H(x)) = b·H(x), whose tag is compared with the answerer's tags of b·H(y).
        let unblinded = self
            .secret
            .unblind(MESSAGE, &reply.doubled.items)
            .map_err(|e| locate_error(e, &reply.doubled, |_| 0))?;
        let tags: Vec<Tag> = unblinded.par_iter().map(point_tag).collect();
        let tags = GroupedTags {
            items: tags,
            offsets: reply.doubled.offsets.clone(),
        };
        let groups = (0..self.padded.len())
            .map(|group| {
                let mut theirs = reply.answerer.group(group).to_vec();
                theirs.sort_unstable();
                let shared = tags
                    .group(group)
                    .iter()
                    .filter(|tag| theirs.binary_search(tag).is_ok())
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
fn check_peer_sizes<T>(
    message: &'static str,
    points: &wire::Grouped<T>,
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
fn check_duplicates<T: ItemBytes>(
    message: &'static str,
    points: &wire::Grouped<T>,
    offset: impl Fn(usize) -> usize,
) -> Result<(), PsiError> {
    let mut sorted: Vec<(&[u8], usize)> = Vec::new();
    for group in 0..points.groups() {
        sorted.clear();
        sorted.extend(
            points
                .group(group)
                .iter()
                .map(ItemBytes::item_bytes)
                .zip(0..),
        );
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
    /// Draws a fresh secret, blinds every group's tokens, tags them and pads each group with
    /// random tags, ready for the query (this work can happen before it arrives).
    ///
    /// # Errors
    /// As [`GroupedQuerier::start`].
    ///
    /// # Security
    /// `rng` must be a cryptographic RNG: it draws the secret and the padding tags.
    pub fn start<R: CryptoRng + ?Sized>(
        session: &[u8; 16],
        groups: &[TokenGroup],
        buckets: &SizeBuckets,
        limits: &GroupedLimits,
        rng: &mut R,
    ) -> Result<GroupedAnswererReady, PsiError> {
        let padded = padded_sizes(groups, buckets, limits)?;
        let secret = SessionSecret::random(rng);
        let own = blind_groups(&secret, session, groups, &padded, Padding::None, rng);
        let tags = pad_and_sort_tags(&own, &padded, rng);
        Ok(GroupedAnswererReady {
            secret,
            buckets: buckets.clone(),
            limits: *limits,
            own: tags,
        })
    }
}

/// The answerer with its own groups blinded, waiting for the [`GroupedQuery`].
#[derive(Debug)]
pub struct GroupedAnswererReady {
    secret: SessionSecret,
    buckets: SizeBuckets,
    limits: GroupedLimits,
    own: GroupedTags,
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
            .reblind(MESSAGE, &query.groups.items)
            .map_err(|e| locate_error(e, &query.groups, |_| 0))?;
        let mut doubled = GroupedPoints {
            items: doubled,
            offsets: query.groups.offsets.clone(),
        };
        for group in 0..doubled.groups() {
            let (start, end) = (doubled.offsets[group], doubled.offsets[group + 1]);
            doubled.items[start..end].sort_unstable_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Up to 8 groups of up to 12 tokens from a 4-letter alphabet (repeats are frequent), with
    /// labels of 0 to 100 bytes, so the cached hash prefix ends inside and past a Keccak block.
    fn groups() -> impl Strategy<Value = Vec<TokenGroup>> {
        prop::collection::vec(
            (
                prop::collection::vec(any::<u8>(), 0..100),
                prop::collection::vec(prop::collection::vec(0u8..4, 0..3), 0..12),
            )
                .prop_map(|(label, tokens)| TokenGroup { label, tokens }),
            0..8,
        )
    }

    /// The one-by-one reference: `k · H(session, label, occurrence, token)` for every token in
    /// order, the occurrence counted per group.
    fn one_by_one(
        secret: &SessionSecret,
        session: &[u8; 16],
        groups: &[TokenGroup],
    ) -> Vec<Vec<CompressedRistretto>> {
        let full = secret.half() + secret.half();
        groups
            .iter()
            .map(|g| {
                let mut seen: Vec<&[u8]> = Vec::new();
                g.tokens
                    .iter()
                    .map(|t| {
                        let occurrence = seen.iter().filter(|s| **s == t.as_slice()).count() as u64;
                        seen.push(t);
                        (grouped_hash_to_group(session, &g.label, occurrence, t) * full).compress()
                    })
                    .collect()
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// The batched path (cached hash prefix per group, batch compression across groups,
        /// padding) gives exactly the one-by-one points: unpadded in token order, padded as
        /// the same points plus distinct padding, in some order.
        #[test]
        fn batched_blinding_equals_one_by_one(groups in groups(), seed in any::<u64>()) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let secret = SessionSecret::random(&mut rng);
            let session = [3; 16];
            let buckets = SizeBuckets::default();
            let padded: Vec<usize> = groups.iter().map(|g| buckets.padded(g.tokens.len())).collect();
            let expected = one_by_one(&secret, &session, &groups);

            let plain = blind_groups(&secret, &session, &groups, &padded, Padding::None, &mut rng);
            for (i, want) in expected.iter().enumerate() {
                prop_assert_eq!(plain.group(i), want.as_slice());
            }

            let points = blind_groups(&secret, &session, &groups, &padded, Padding::Points, &mut rng);
            for (i, want) in expected.iter().enumerate() {
                prop_assert_eq!(points.size(i), padded[i]);
                let mut got: Vec<[u8; 32]> = points.group(i).iter().map(|p| p.to_bytes()).collect();
                let mut tokens: Vec<[u8; 32]> = want.iter().map(|p| p.to_bytes()).collect();
                got.sort_unstable();
                tokens.sort_unstable();
                let mut rest = got.clone();
                for t in &tokens {
                    let at = rest.iter().position(|p| p == t);
                    prop_assert!(at.is_some(), "a token's point is missing from group {}", i);
                    rest.remove(at.unwrap_or_default());
                }
                got.dedup();
                prop_assert_eq!(got.len(), padded[i], "points within a group are distinct");
            }

            let tags = pad_and_sort_tags(&plain, &padded, &mut rng);
            for (i, want) in expected.iter().enumerate() {
                let group = tags.group(i);
                prop_assert_eq!(group.len(), padded[i]);
                prop_assert!(group.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
                for p in want {
                    prop_assert!(group.binary_search(&point_tag(p)).is_ok());
                }
            }
        }
    }
}
