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
//! Rows withheld under `invalid_rows = "reject"` and era dates read leniently are counted in
//! shard 0 only, for the same reason.
//!
//! **What is shardable.** `cardinality`, `validate` and `exact` with one match key. An exact
//! cascade (several keys) is one sharded stage per round, since a record unmatched in round
//! `k` must be re-sharded by round `k + 1`'s key; that needs the previous stage's links as an
//! input and is refused for now ([`check_shardable`]). `fuzzy` would shard by a coarse
//! blocking key (a pair whose blocking keys differ is never compared: recall is lost on
//! exactly the pairs that disagree on it), and `clk-exchange` compares all pairs; both are
//! refused.
//!
//! **Agreement.** The handshake commits to `I/N` as the parameter [`SHARD_PARAMETER`]
//! (`blindlink_protocol::SHARD_PARAMETER`), so two parties running different shards, or one
//! sharded and one not, end with a parameter mismatch naming both values.
//!
//! **Outputs.** Shard `I` of `N` writes into `<output dir>/shard-I-of-N/`
//! ([`Shard::dir_name`]); [`check_output_entries`] refuses an output directory that already
//! holds shards of another `N` (overlapping shard outputs, which no merge could combine).

use std::fmt;

use blindlink_encoding::{LinkageSecret, PurposeHasher};
use blindlink_protocol::Mode;

pub use blindlink_protocol::SHARD_PARAMETER;

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
/// `fuzzy`, `clk-exchange`, or an exact cascade of several match keys; the message names the
/// config file and says why.
pub fn check_shardable(config: &PartyConfig, shard: Shard) -> Result<(), PartyError> {
    let shown = config.source.display().to_string();
    let refuse = |why: String| {
        Err(PartyError::Conflict(format!(
            "{shown}: cannot run shard {shard}: {why}"
        )))
    };
    match config.mode {
        Mode::Cardinality | Mode::Validate => Ok(()),
        Mode::Exact if config.match_keys.len() <= 1 => Ok(()),
        Mode::Exact => refuse(format!(
            "mode exact with a cascade of {} match keys is sharded one stage per key (records \
             unmatched by one key re-sharded by the next), which is not implemented yet; run \
             one match key per sharded session",
            config.match_keys.len()
        )),
        Mode::Fuzzy => refuse(
            "mode fuzzy cannot be sharded by a match key (records that should link have \
             different keys); shard it by a coarse blocking key outside blindlink"
                .to_owned(),
        ),
        Mode::ClkExchange => refuse("mode clk-exchange compares every pair".to_owned()),
    }
}

/// How many records a shard kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSelection {
    /// Records in the shard.
    pub kept: usize,
    /// Records read (all shards).
    pub total: usize,
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
        total,
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
            fields: Vec::new(),
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
            assert_eq!(selection.total, 100);
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
