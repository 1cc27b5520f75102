//! Sharded sessions: a linkage too large for one pair of processes is split into `N`
//! independent sessions, shard `I` of `N` linking only the records whose match key falls in
//! bucket `I`. Both parties assign a record to a shard the same way, so a person's two records
//! always meet in the same shard pair, and the links of all shards together are exactly the
//! links of one unsharded session.
//!
//! **Assignment.** A record's shard is `h mod N`, where `h` is the keyed 64-bit hash
//! ([`PurposeHasher`], purpose `shard`: `HMAC-SHA3-256` under a key derived from the linkage
//! secret with the tag `blindlink/v1/shard`) of the record's match-key bytes for the first
//! cascade step (the ID in `validate`, the key in `cardinality`). The bias of `mod N` on a
//! 64-bit hash is below `N / 2^64`: negligible. A record with no key for that step can link
//! with nobody; it goes to shard 0, so that the input counts of all shards sum to the file's.
//! Rows withheld under `invalid_rows = "reject"` before their shard is known (field count,
//! invalid UTF-8, empty or repeated id) and era dates read leniently are counted in shard 0
//! only, for the same reason; a value the encoder or tokenizer rejects is counted in its own
//! row's shard when the builder drops other shards' rows as it reads.
//!
//! **What is shardable.** `cardinality`, `validate` and `exact` with one match key, and an
//! exact cascade (several keys) as one sharded *stage* per round ([`CascadeStage`]): a record
//! unmatched in round `k` must be re-sharded by round `k + 1`'s key, whose bucket differs.
//! Stage `K` runs round `K`'s key only, over the records that the merged outputs of stages
//! `0..K` left unlinked (`--previous`, read by the CLI; [`retain_carried`] keeps them), sharded
//! by the keyed hash of round `K`'s key under the per-round purpose `shard/K`
//! ([`ShardAssigner::for_round`]; round 0 keeps the purpose `shard`, so stage 0 assigns
//! exactly as an unstaged shard does). A stage computes its own key only, and its shard may
//! read only its own records from the file `blindlink split --stage K` wrote for it (the CLI
//! checks that file against `--previous`). `fuzzy` would shard by a coarse blocking key (a pair
//! whose blocking keys differ is never compared: recall is lost on exactly the pairs that
//! disagree on it): it shards only by a key named in `[shard] key`, one of its
//! `[[input.match_key]]`s, which the handshake commits to as `shard.key`; `clk-exchange`
//! compares all pairs and is refused.
//!
//! **Agreement.** The handshake commits to `I/N` as the parameter [`SHARD_PARAMETER`]
//! (`blindlink_protocol::SHARD_PARAMETER`), so two parties running different shards, or one
//! sharded and one not, end with a parameter mismatch naming both values. A stage also
//! commits to `stage = "K/M"` ([`STAGE_PARAMETER`], stage `K` of an `M`-key cascade), listed
//! first so that a mismatch names the stage before the key it implies.
//!
//! **Outputs.** Shard `I` of `N` writes into `<output dir>/shard-I-of-N/`
//! ([`Shard::dir_name`]), a stage's shard into `<output dir>/stage-K/shard-I-of-N/`;
//! [`check_output_entries`] refuses an output directory that already holds shards of another
//! `N` (overlapping shard outputs, which no merge could combine).

use std::fmt;

use blindlink_encoding::{LinkageSecret, PurposeHasher};
use blindlink_protocol::Mode;

pub use blindlink_protocol::{SHARD_PARAMETER, STAGE_PARAMETER};

use crate::records::PartyRecords;
use crate::{PartyConfig, PartyError};

/// The purpose the shard hash's key is derived for (`blindlink/v1/shard`).
pub const SHARD_PURPOSE: &str = "shard";

/// The largest shard count: far more shard pairs than any job engine runs at once, small
/// enough that a typo (`--shard 0/40000000`) is caught.
pub const MAX_SHARDS: u32 = 1 << 16;

/// Shard `index` of `count` (`0 <= index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// `count` is 0 or over [`MAX_SHARDS`], or `index` is not below `count`; the message says
    /// which.
    pub fn new(index: u64, count: u64) -> Result<Self, String> {
        if count == 0 {
            return Err("the shard count is 0; it must be at least 1".to_owned());
        }
        if count > u64::from(MAX_SHARDS) {
            return Err(format!(
                "the shard count {count} is over the limit of {MAX_SHARDS}"
            ));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (shards are numbered \
                 0 to {})",
                count - 1
            ));
        }
        // Both fit: count <= MAX_SHARDS and index < count.
        Ok(Self {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            count: u32::try_from(count).unwrap_or(u32::MAX),
        })
    }

    /// Parses `I/N` (as `--shard` takes it).
    ///
    /// # Errors
    /// Not two decimal numbers separated by `/`, or as [`Shard::new`].
    ///
    /// # Example
    /// ```
    /// use blindlink_party::Shard;
    /// let shard = Shard::parse("2/4").unwrap();
    /// assert_eq!((shard.index(), shard.count()), (2, 4));
    /// assert_eq!(shard.dir_name(), "shard-2-of-4");
    /// assert_eq!(Shard::parse("4/4").unwrap_err(),
    ///     "shard index 4 is not below the shard count 4 (shards are numbered 0 to 3)");
    /// ```
    pub fn parse(text: &str) -> Result<Self, String> {
        let malformed = || format!("'{text}' is not a shard (expected I/N, e.g. 0/4)");
        let (index, count) = text.split_once('/').ok_or_else(malformed)?;
        let number = |s: &str| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            s.parse::<u64>().map_err(|_| malformed())
        };
        Self::new(number(index)?, number(count)?)
    }

    /// The shard's index, `0..count`.
    #[must_use]
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The number of shards.
    #[must_use]
    pub const fn count(self) -> u32 {
        self.count
    }

    /// The directory inside the output directory that this shard's outputs go to:
    /// `shard-I-of-N`.
    #[must_use]
    pub fn dir_name(self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// The shard a directory name (`shard-I-of-N`) denotes, if it is one.
    #[must_use]
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("shard-")?;
        let (index, count) = rest.split_once("-of-")?;
        Self::parse(&format!("{index}/{count}")).ok()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Assigns match keys to shards: `h mod N` of the keyed hash (see the module docs).
#[derive(Debug, Clone)]
pub struct ShardAssigner {
    hasher: PurposeHasher,
    count: u32,
}

impl ShardAssigner {
    /// The assigner of `count` shards under `secret`.
    #[must_use]
    pub fn new(secret: &LinkageSecret, count: u32) -> Self {
        Self {
            hasher: PurposeHasher::new(secret, SHARD_PURPOSE),
            count: count.max(1),
        }
    }

    /// The assigner of `count` shards of cascade round `round`: round 0 is [`ShardAssigner::new`]
    /// (purpose `shard`, key `HMAC-SHA3-256(secret, "blindlink/v1/shard" ‖ 0x00)`), round
    /// `k > 0` uses the purpose `shard/k` (`"blindlink/v1/shard/k" ‖ 0x00`), so a record's
    /// bucket in one round says nothing about its bucket in another.
    #[must_use]
    pub fn for_round(secret: &LinkageSecret, count: u32, round: u32) -> Self {
        if round == 0 {
            return Self::new(secret, count);
        }
        Self {
            hasher: PurposeHasher::new(secret, &format!("{SHARD_PURPOSE}/{round}")),
            count: count.max(1),
        }
    }

    /// The shard of the match-key bytes `key`, in `0..count`.
    #[must_use]
    pub fn shard_of(&self, key: &[u8]) -> u32 {
        // The remainder is below count, a u32.
        u32::try_from(self.hasher.hash_u64(key) % u64::from(self.count)).unwrap_or(0)
    }
}

/// Checks that `config`'s mode and cascade can be sharded (see the module docs).
///
/// # Errors
/// `fuzzy` without `[shard] key` (or `[shard] key` in another mode), `clk-exchange`, or an
/// exact cascade of several match keys without a stage; the message names the config file and
/// says why.
pub fn check_shardable(config: &PartyConfig, shard: Shard) -> Result<(), PartyError> {
    let shown = config.source.display().to_string();
    let refuse = |why: String| {
        Err(PartyError::Conflict(format!(
            "{shown}: cannot run shard {shard}: {why}"
        )))
    };
    if config.mode != Mode::Fuzzy && config.shard_key.is_some() {
        return refuse(format!(
            "shard.key is fuzzy's (a coarse blocking key); mode {} shards by its first match key",
            config.mode
        ));
    }
    match config.mode {
        Mode::Cardinality | Mode::Validate => Ok(()),
        Mode::Exact if config.match_keys.len() <= 1 || config.stage.is_some() => Ok(()),
        Mode::Exact => refuse(format!(
            "mode exact with a cascade of {} match keys is sharded one stage per key (records \
             unmatched by one key re-sharded by the next): run --stage 0, merge its shards, then \
             --stage 1 --previous <that merge's output directory>, and so on",
            config.match_keys.len()
        )),
        Mode::Fuzzy if config.shard_key.is_some() => Ok(()),
        Mode::Fuzzy => refuse(
            "mode fuzzy has no key that the two records of a person are sure to share; name a \
             coarse blocking key in [shard] key (an [[input.match_key]], e.g. the prefecture), \
             knowing that a true pair whose values of it differ is never compared"
                .to_owned(),
        ),
        Mode::ClkExchange => refuse("mode clk-exchange compares every pair".to_owned()),
    }
}

/// How many records a shard kept, of how many rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSelection {
    /// Records in the shard. Over the shards these sum to the unsharded run's records.
    pub kept: usize,
    /// The input's data rows, all shards' (the unsharded run's `rows_read`): the same in
    /// every shard. Not a count of records: a shard cannot know how many of other shards'
    /// rows their own encoder or tokenizer rejects, since it does not encode them.
    pub total: usize,
    /// The input's records (rows that passed the row checks) that are in other shards: 0 for
    /// a run on the file `blindlink split` wrote for this shard.
    pub elsewhere: usize,
}

/// Keeps in `records` only those of `shard` (by the first cascade step's key, through
/// `assigner`); records without that key, rows withheld and era dates read leniently stay in
/// shard 0 only, so that the input counts of all shards sum to the unsharded ones.
pub fn retain_shard(
    records: &mut PartyRecords,
    shard: Shard,
    assigner: &ShardAssigner,
) -> ShardSelection {
    let total = records.ids.len();
    let rows = usize::try_from(records.rows_read).unwrap_or(usize::MAX);
    let keep: Vec<bool> = match records.match_keys.first() {
        Some(step) => step
            .keys
            .iter()
            .map(|key| match key {
                Some(key) => assigner.shard_of(key) == shard.index,
                None => shard.index == 0,
            })
            .collect(),
        None => vec![shard.index == 0; total],
    };
    let pick = |i: usize| keep.get(i).copied().unwrap_or(false);
    let mut i = 0;
    records.ids.retain(|_| {
        i += 1;
        pick(i - 1)
    });
    for (step, column) in records.match_keys.iter_mut().enumerate() {
        let mut i = 0;
        column.keys.retain(|_| {
            i += 1;
            pick(i - 1)
        });
        column.keys.shrink_to_fit();
        column.keyless = column.keys.iter().filter(|k| k.is_none()).count() as u64;
        // The listed rows are all in shard 0 for the first step; for later steps the list may
        // name rows of other shards, so only the count is kept.
        if step > 0 || shard.index != 0 {
            column.keyless_examples.clear();
        }
    }
    if records.clk_bytes > 0 && records.clks.len() == total * records.clk_bytes {
        let width = records.clk_bytes;
        let mut kept = Vec::with_capacity(width * records.ids.len());
        for (i, clk) in records.clks.chunks_exact(width).enumerate() {
            if pick(i) {
                kept.extend_from_slice(clk);
            }
        }
        records.clks = kept;
    }
    if records.fields.len() == total {
        let mut i = 0;
        records.fields.retain(|_| {
            i += 1;
            pick(i - 1)
        });
    }
    records.ids.shrink_to_fit();
    records.fields.shrink_to_fit();
    let rejected = match &mut records.rejects {
        Some(rejects) if shard.index != 0 => {
            rejects.rows.clear();
            0
        }
        Some(rejects) => rejects.rows.len() as u64,
        None => 0,
    };
    records.rows_read = records.ids.len() as u64 + rejected;
    if shard.index != 0 {
        records.era_dates_read_leniently = 0;
    }
    ShardSelection {
        kept: records.ids.len(),
        total: rows,
        elsewhere: total - records.ids.len(),
    }
}

/// Checks the names of the entries of an output directory before shard `shard` writes its
/// `shard-I-of-N` directory into it: a shard directory of another count means another sharded
/// run's outputs are there, which no merge could combine with this one's.
///
/// # Errors
/// The first such entry, as "overlapping shard outputs: ...".
///
/// # Example
/// ```
/// use blindlink_party::{Shard, check_output_entries};
/// let shard = Shard::parse("1/3").unwrap();
/// assert!(check_output_entries(["shard-0-of-3", "notes.txt"], shard).is_ok());
/// assert_eq!(check_output_entries(["shard-0-of-4"], shard).unwrap_err(),
///     "overlapping shard outputs: shard-0-of-4 is a shard of a 4-way run, and this is shard 1/3; \
///     give each sharded run its own output directory");
/// ```
pub fn check_output_entries<'a>(
    names: impl IntoIterator<Item = &'a str>,
    shard: Shard,
) -> Result<(), String> {
    for name in names {
        if let Some(other) = Shard::from_dir_name(name)
            && other.count != shard.count
        {
            return Err(format!(
                "overlapping shard outputs: {name} is a shard of a {}-way run, and this is shard \
                 {shard}; give each sharded run its own output directory",
                other.count
            ));
        }
    }
    Ok(())
}

/// Stage `round` of an exact cascade of `rounds` match keys, run as its own sharded linkage
/// (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CascadeStage {
    round: u32,
    rounds: u32,
}

impl CascadeStage {
    /// Stage `round` of a cascade of `rounds` keys.
    ///
    /// # Errors
    /// `round` is not below `rounds`; the message says which stages there are.
    ///
    /// # Example
    /// ```
    /// use blindlink_party::CascadeStage;
    /// let stage = CascadeStage::new(1, 2).unwrap();
    /// assert_eq!((stage.to_string(), stage.dir_name()), ("1/2".to_owned(), "stage-1".to_owned()));
    /// assert_eq!(CascadeStage::new(2, 2).unwrap_err(),
    ///     "stage 2 is past the cascade's last stage 1 (stages are numbered 0 to 1, one per match key)");
    /// ```
    pub fn new(round: u64, rounds: usize) -> Result<Self, String> {
        let rounds = u32::try_from(rounds).unwrap_or(u32::MAX);
        if rounds == 0 {
            return Err("a cascade stage needs at least one match key".to_owned());
        }
        match u32::try_from(round) {
            Ok(round) if round < rounds => Ok(Self { round, rounds }),
            _ => Err(format!(
                "stage {round} is past the cascade's last stage {last} (stages are numbered 0 to \
                 {last}, one per match key)",
                last = rounds - 1
            )),
        }
    }

    /// The stage's round: the index of the match key it runs.
    #[must_use]
    pub const fn round(self) -> u32 {
        self.round
    }

    /// The number of stages (the cascade's match keys).
    #[must_use]
    pub const fn rounds(self) -> u32 {
        self.rounds
    }

    /// The directory inside the output directory that this stage's shards go to: `stage-K`.
    #[must_use]
    pub fn dir_name(self) -> String {
        format!("stage-{}", self.round)
    }

    /// The round a directory name (`stage-K`) denotes, if it is one.
    #[must_use]
    pub fn round_of_dir_name(name: &str) -> Option<u32> {
        let digits = name.strip_prefix("stage-")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

impl fmt::Display for CascadeStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.round, self.rounds)
    }
}

/// Checks `config`'s cascade stage against the rest of it: a stage needs a shard and mode
/// `exact`; stage `K > 0` needs the previous stages' merged output and stage 0 takes none.
///
/// # Errors
/// The first of those that does not hold; the message names the config file.
pub fn check_stage(config: &PartyConfig) -> Result<(), PartyError> {
    let shown = config.source.display().to_string();
    let refuse = |why: String| Err(PartyError::Conflict(format!("{shown}: {why}")));
    let Some(stage) = config.stage else {
        if config.previous.is_some() {
            return refuse(
                "a previous stage's output (--previous or [shard] previous) is given, but no \
                 stage (--stage K or [shard] stage) to run after it"
                    .to_owned(),
            );
        }
        return Ok(());
    };
    let round = stage.round();
    if config.mode != Mode::Exact {
        return refuse(format!(
            "stage {round}: only mode exact runs a cascade in stages (mode is {})",
            config.mode
        ));
    }
    if config.shard.is_none() {
        return refuse(format!(
            "stage {round} needs a shard (--shard I/N or [shard] index/count; --shard 0/1 runs \
             the stage as one shard)"
        ));
    }
    match (round, &config.previous) {
        (0, Some(previous)) => refuse(format!(
            "stage 0 is the cascade's first stage and takes no previous output, but {} is given",
            previous.display()
        )),
        (0, None) | (_, Some(_)) => Ok(()),
        (_, None) => refuse(format!(
            "stage {round} needs the merged output of stage{} (--previous DIR or [shard] \
             previous)",
            if round == 1 {
                " 0".to_owned()
            } else {
                format!("s 0 to {}", round - 1)
            }
        )),
    }
}

/// Keeps in `records` only the match key of `stage` (a stage runs that key only: the mode's
/// keys and the handshake's `mode.keys` are its own, while the schema descriptor still lists
/// the whole cascade's `key:` entries, so that both sides agree on the cascade); records
/// already cut to one key are left as they are.
pub fn keep_stage_key(records: &mut PartyRecords, stage: CascadeStage) {
    keep_key_column(records, stage.round() as usize);
}

/// Keeps in `records` only the match-key column `index` (the stage's key, or fuzzy's
/// `[shard] key`), which [`retain_shard`] then shards by; records with one column are left.
pub fn keep_key_column(records: &mut PartyRecords, index: usize) {
    if records.match_keys.len() > 1 && index < records.match_keys.len() {
        let column = records.match_keys.swap_remove(index);
        records.match_keys = vec![column];
    }
}

/// Keeps in `records` only those with `carried[i]` (the records the previous stages left
/// unlinked); returns how many. Rows withheld and era dates stay as they are (a stage's
/// shard 0 counts them, as in [`retain_shard`]); the rows listed without a key are dropped
/// from the report when records are (they may name records of the dropped ones).
pub fn retain_carried(records: &mut PartyRecords, carried: &[bool]) -> usize {
    let total = records.ids.len();
    let keep: Vec<bool> = (0..total)
        .map(|i| carried.get(i).copied().unwrap_or(false))
        .collect();
    let dropped = keep.iter().any(|k| !k);
    retain_vec(&mut records.ids, &keep);
    for column in &mut records.match_keys {
        retain_vec(&mut column.keys, &keep);
        column.keyless = column.keys.iter().filter(|k| k.is_none()).count() as u64;
        if dropped {
            column.keyless_examples.clear();
        }
    }
    if records.clk_bytes > 0 && records.clks.len() == total * records.clk_bytes {
        let width = records.clk_bytes;
        let mut kept = Vec::with_capacity(width * records.ids.len());
        for (clk, _) in records
            .clks
            .chunks_exact(width)
            .zip(&keep)
            .filter(|(_, k)| **k)
        {
            kept.extend_from_slice(clk);
        }
        records.clks = kept;
    }
    if records.fields.len() == total {
        records
            .fields
            .retain(|i| keep.get(i).copied().unwrap_or(false));
    }
    records.ids.len()
}

fn retain_vec<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        keep.get(i - 1).copied().unwrap_or(false)
    });
    v.shrink_to_fit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{MatchKeyColumn, RejectedRow, Rejects};

    fn check(text: &str, expected: Result<(u32, u32), &str>) {
        let got = Shard::parse(text).map(|s| (s.index(), s.count()));
        assert_eq!(got, expected.map_err(str::to_owned), "{text}");
    }

    #[test]
    fn parses_shards_and_names_what_is_wrong() {
        check("0/1", Ok((0, 1)));
        check("3/4", Ok((3, 4)));
        check("65535/65536", Ok((65535, 65536)));
        check(
            "4/4",
            Err("shard index 4 is not below the shard count 4 (shards are numbered 0 to 3)"),
        );
        check("0/0", Err("the shard count is 0; it must be at least 1"));
        check(
            "0/65537",
            Err("the shard count 65537 is over the limit of 65536"),
        );
        for bad in [
            "",
            "1",
            "1/",
            "/4",
            "a/4",
            "-1/4",
            "1/4/5",
            " 1/4",
            "+1/4",
            "1/99999999999999999999",
        ] {
            check(
                bad,
                Err(&format!("'{bad}' is not a shard (expected I/N, e.g. 0/4)")),
            );
        }
    }

    #[test]
    fn directory_names_round_trip() {
        let shard = Shard::parse("2/5").unwrap();
        assert_eq!(shard.to_string(), "2/5");
        assert_eq!(Shard::from_dir_name(&shard.dir_name()), Some(shard));
        for other in ["shard-5-of-5", "shard-1-of-", "links.csv", "shard-a-of-2"] {
            assert_eq!(Shard::from_dir_name(other), None, "{other}");
        }
    }

    fn secret() -> LinkageSecret {
        LinkageSecret::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    #[test]
    fn shard_hash_matches_the_reference() {
        // Python: k = hmac(secret, b"blindlink/v1/shard\0", sha3_256);
        // int.from_bytes(hmac(k, key, sha3_256).digest()[:8], "little")
        let hasher = PurposeHasher::new(&secret(), SHARD_PURPOSE);
        assert_eq!(hasher.hash_u64(b""), 13_984_490_599_020_611_450);
        assert_eq!(hasher.hash_u64(b"abc"), 264_330_037_130_579_568);
        assert_eq!(
            hasher.hash_u64(b"\x0c\x00\x00\x00123456789018"),
            17_301_552_069_384_056_398
        );
        let assigner = ShardAssigner::new(&secret(), 7);
        assert_eq!(
            assigner.shard_of(b"abc"),
            (264_330_037_130_579_568_u64 % 7) as u32
        );
    }

    #[test]
    fn later_rounds_hash_under_their_own_tag() {
        // Python: k = hmac(secret, b"blindlink/v1/shard/1\0", sha3_256); as above.
        let hasher = PurposeHasher::new(&secret(), "shard/1");
        assert_eq!(hasher.hash_u64(b""), 6_186_092_643_137_633_356);
        assert_eq!(hasher.hash_u64(b"abc"), 17_953_286_876_444_229_114);
        for count in [2, 3, 7] {
            let round_1 = ShardAssigner::for_round(&secret(), count, 1);
            assert_eq!(
                round_1.shard_of(b"abc"),
                (17_953_286_876_444_229_114_u64 % u64::from(count)) as u32
            );
            // Round 0 is the unstaged assignment, so existing shard outputs stay valid.
            let round_0 = ShardAssigner::for_round(&secret(), count, 0);
            let unstaged = ShardAssigner::new(&secret(), count);
            for i in 0..100u32 {
                let key = i.to_le_bytes();
                assert_eq!(round_0.shard_of(&key), unstaged.shard_of(&key));
            }
        }
    }

    #[test]
    fn stages_are_numbered_below_the_cascade_length() {
        let check = |round: u64, rounds: usize, expected: Result<&str, &str>| {
            let got = CascadeStage::new(round, rounds).map(|s| s.to_string());
            assert_eq!(got, expected.map(str::to_owned).map_err(str::to_owned));
        };
        check(0, 1, Ok("0/1"));
        check(1, 3, Ok("1/3"));
        check(
            3,
            3,
            Err(
                "stage 3 is past the cascade's last stage 2 (stages are numbered 0 to 2, one per \
                 match key)",
            ),
        );
        check(
            u64::MAX,
            2,
            Err(&format!(
                "stage {} is past the cascade's last stage 1 (stages are numbered 0 to 1, one \
                 per match key)",
                u64::MAX
            )),
        );
        check(0, 0, Err("a cascade stage needs at least one match key"));
        for (name, round) in [
            ("stage-0", Some(0)),
            ("stage-12", Some(12)),
            ("stage-", None),
            ("stage-+1", None),
            ("stage-1a", None),
            ("shard-0-of-2", None),
        ] {
            assert_eq!(CascadeStage::round_of_dir_name(name), round, "{name}");
        }
    }

    #[test]
    fn carried_records_keep_their_keys_clks_and_counts() {
        let mut r = records();
        let carried: Vec<bool> = (0..100u32).map(|i| !i.is_multiple_of(3)).collect();
        assert_eq!(retain_carried(&mut r, &carried), 66);
        let expected: Vec<String> = (0..100)
            .filter(|i: &u32| !i.is_multiple_of(3))
            .map(|i| format!("r{i}"))
            .collect();
        assert_eq!(r.ids, expected);
        for (i, id) in r.ids.iter().enumerate() {
            let n: u64 = id[1..].parse().unwrap();
            assert_eq!(r.clk(i), [n as u8, n as u8]);
            let key = (!n.is_multiple_of(10)).then(|| n.to_le_bytes().to_vec());
            assert_eq!(r.match_keys[0].keys[i], key);
        }
        // Keyless: 10, 20, ..., 90 minus the multiples of 3 (30, 60, 90) and 0.
        assert_eq!(r.match_keys[0].keyless, 6);
        assert!(r.match_keys[0].keyless_examples.is_empty());
        // Rows read, rejected and era dates are the input's: shard 0 of the stage counts them.
        assert_eq!(
            (
                r.rows_read,
                r.rejects.as_ref().unwrap().rows.len(),
                r.era_dates_read_leniently
            ),
            (103, 3, 5)
        );
        let mut all = records();
        assert_eq!(retain_carried(&mut all, &[true; 100]), 100);
        assert_eq!(all.match_keys[0].keyless_examples.len(), 10);
    }

    #[test]
    fn shards_are_balanced() {
        let assigner = ShardAssigner::new(&secret(), 4);
        let mut counts = [0u32; 4];
        for i in 0..40_000u32 {
            counts[assigner.shard_of(&i.to_le_bytes()) as usize] += 1;
        }
        // Binomial(40000, 1/4): sd ~87; 5 sd either side.
        for c in counts {
            assert!((9_565..=10_435).contains(&c), "{counts:?}");
        }
    }

    fn records() -> PartyRecords {
        let mut step = MatchKeyColumn::new("id");
        let mut second = MatchKeyColumn::new("name");
        let keyless = || {
            Err(crate::Keyless {
                column: "id".into(),
                reason: "missing".into(),
            })
        };
        for i in 0..100u64 {
            if i % 10 == 0 {
                step.push(keyless(), i + 2);
            } else {
                step.push(Ok(i.to_le_bytes().to_vec()), i + 2);
            }
            second.push(Ok(vec![1]), i + 2);
        }
        PartyRecords {
            ids: (0..100).map(|i| format!("r{i}")).collect(),
            match_keys: vec![step, second],
            clks: (0..100u8).flat_map(|i| [i, i]).collect(),
            clk_bytes: 2,
            rows_read: 103,
            rejects: Some(Rejects {
                file: "in.csv".into(),
                header: vec!["id".into()],
                rows: vec![
                    RejectedRow {
                        line: 9,
                        field: "id".into(),
                        reason: "bad".into(),
                        values: vec![],
                    };
                    3
                ],
            }),
            era_dates_read_leniently: 5,
            fields: Default::default(),
            source: crate::RecordSource::Csv("in.csv".into()),
            shard: None,
        }
    }

    #[test]
    fn shards_partition_the_records_and_their_counts() {
        let assigner = ShardAssigner::new(&secret(), 3);
        let mut ids = Vec::new();
        let (mut rows_read, mut keyless, mut rejected, mut era) = (0, 0, 0, 0);
        for index in 0..3 {
            let mut r = records();
            let shard = Shard::new(index, 3).unwrap();
            let selection = retain_shard(&mut r, shard, &assigner);
            assert_eq!(selection.total, 103);
            assert_eq!(selection.kept, r.ids.len());
            assert_eq!(r.match_keys[0].keys.len(), r.ids.len());
            assert_eq!(r.match_keys[1].keys.len(), r.ids.len());
            assert_eq!(r.clks.len(), 2 * r.ids.len());
            for (i, id) in r.ids.iter().enumerate() {
                let n: u8 = id[1..].parse().unwrap();
                assert_eq!(r.clk(i), [n, n]);
                match &r.match_keys[0].keys[i] {
                    Some(key) => assert_eq!(assigner.shard_of(key), shard.index()),
                    None => assert_eq!(shard.index(), 0),
                }
            }
            ids.extend(r.ids.clone());
            rows_read += r.rows_read;
            keyless += r.match_keys[0].keyless;
            rejected += r.rejects.as_ref().unwrap().rows.len();
            era += r.era_dates_read_leniently;
        }
        ids.sort();
        let mut all = records().ids;
        all.sort();
        assert_eq!(ids, all);
        assert_eq!((rows_read, keyless, rejected, era), (103, 10, 3, 5));
    }

    #[test]
    fn output_entries_of_another_count_overlap() {
        let shard = Shard::parse("0/2").unwrap();
        assert_eq!(
            check_output_entries(["shard-1-of-2", "shard-1-of-3"], shard),
            Err(
                "overlapping shard outputs: shard-1-of-3 is a shard of a 3-way run, and this is \
                 shard 0/2; give each sharded run its own output directory"
                    .to_owned()
            )
        );
        assert_eq!(check_output_entries(["shard-1-of-2", "x"], shard), Ok(()));
    }
}
