//! A party's records as values (built row by row by [`RecordsBuilder`](crate::RecordsBuilder)):
//! what its input gave (ids, each cascade step's keys, CLKs, the compared fields' normalised
//! values, rows withheld) and their conversion to the protocol's [`PartyData`].

use std::sync::Arc;

use blindlink_encoding::{FieldTokenScratch, FieldTokenizer, FieldTokens};
use blindlink_protocol::{
    FieldTokenColumn, FieldTokenSource, FieldValueTokenizer, Mode, ModeConfig, PartyData,
};
use rayon::prelude::*;

use crate::builder::RecordSource;
use crate::keys::Keyless;
use crate::report::REJECTS_FILE;

/// A row withheld under `invalid_rows = "reject"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// 1-based line in the CSV where the row starts (the header is line 1), or the row's
    /// number in a query's result (from 1).
    pub line: u64,
    /// The column at fault (empty when the whole row is: a wrong field count).
    pub field: String,
    /// Why.
    pub reason: String,
    /// The row as read (invalid UTF-8 replaced by U+FFFD).
    pub values: Vec<String>,
}

/// The rows withheld from a session, for `rejects.csv`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejects {
    /// The input file (or query), as shown in messages.
    pub file: String,
    /// The input's header row.
    pub header: Vec<String>,
    /// The rows, in file order.
    pub rows: Vec<RejectedRow>,
}

/// How many rows without a key a report lists by line, per step.
pub const LISTED_KEYLESS_ROWS: usize = 10;

/// A row that has no key for one cascade step, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeylessRow {
    /// 1-based line in the CSV (the header is line 1), or row number in a query's result.
    pub line: u64,
    /// The column whose value was missing or rejected.
    pub column: String,
    /// Why.
    pub reason: String,
}

/// What the rows gave for one cascade step.
#[derive(Debug, Clone, Default)]
pub struct MatchKeyColumn {
    /// The step's name.
    pub name: String,
    /// One key per record, `None` where the record has none.
    pub keys: Vec<Option<Vec<u8>>>,
    /// Rows without a key.
    pub keyless: u64,
    /// The first [`LISTED_KEYLESS_ROWS`] of them.
    pub keyless_examples: Vec<KeylessRow>,
}

impl MatchKeyColumn {
    /// An empty column for step `name`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Appends the next record's key, or counts (and lists the first few of) the rows without
    /// one, with their `line`.
    pub fn push(&mut self, key: Result<Vec<u8>, Keyless>, line: u64) {
        match key {
            // A copy of exactly the key's size, made here: the encoder's buffer has room for
            // long keys (a 12-digit number kept in a 64-byte allocation costs 48 bytes a
            // record for nothing), and it was allocated on a worker thread, whose allocator
            // arena would keep the record's memory apart from the rest of the run's.
            Ok(key) => self.keys.push(Some(key.as_slice().to_vec())),
            Err(Keyless { column, reason }) => {
                self.keys.push(None);
                self.keyless += 1;
                if self.keyless_examples.len() < LISTED_KEYLESS_ROWS {
                    self.keyless_examples.push(KeylessRow {
                        line,
                        column,
                        reason,
                    });
                }
            }
        }
    }
}

/// A party's records, ready for a session.
#[derive(Debug, Clone, Default)]
pub struct PartyRecords {
    /// Local record ids, in file order.
    pub ids: Vec<String>,
    /// One entry per cascade step.
    pub match_keys: Vec<MatchKeyColumn>,
    /// Concatenated CLKs, `clk_bytes` each, in file order (empty if no schema was given).
    pub clks: Vec<u8>,
    /// Bytes per CLK.
    pub clk_bytes: usize,
    /// Data rows in the file (kept and rejected).
    pub rows_read: u64,
    /// Under `invalid_rows = "reject"`: the rows withheld (possibly none); `None` under abort.
    pub rejects: Option<Rejects>,
    /// Era dates outside their era read as the Gregorian date they denote (`era_dates =
    /// "lenient"`).
    pub era_dates_read_leniently: u64,
    /// Each record's compared fields as normalised values, in the schema's field order
    /// (empty if not asked for), in one column: each field's text as its one entry, none when
    /// missing ([`FieldTokenColumn::push_values`]). [`PartyRecords::party_data`] tokenises them
    /// ([`FieldTokenizer::text_tokens`]) into exactly the tokens of the raw values.
    pub fields: FieldTokenColumn,
    /// Where the records were read from (names the rows in [`PartyRecords::notes`]).
    pub source: RecordSource,
    /// A sharded build ([`RecordsSpec::shard`](crate::RecordsSpec::shard)): how many records
    /// the shard kept, of all the file's rows that passed the row checks (a row of another
    /// shard is never tokenized or encoded, so one its own shard rejects is still counted in
    /// `total`); `None` when unsharded.
    pub shard: Option<crate::shard::ShardSelection>,
}

impl PartyRecords {
    /// The CLK of record `i`.
    ///
    /// # Panics
    /// `i` is not a record index or no CLKs were encoded.
    #[must_use]
    pub fn clk(&self, i: usize) -> &[u8] {
        &self.clks[i * self.clk_bytes..(i + 1) * self.clk_bytes]
    }

    /// The records as `config`'s mode takes them: the keys of the steps it uses, the CLK if it
    /// uses CLKs, the compared fields if it compares fields (through `tokenizer`, the one the
    /// fields were read with: `validate` keeps the values and tokenises a record when it is
    /// compared, `fuzzy`, which blocks on every record's tokens, tokenises them all here).
    /// Built once per party and shared by its sessions.
    ///
    /// # Errors
    /// The mode compares fields and a value does not tokenise (a value the reader kept
    /// always does), or no tokenizer was given.
    pub fn party_data(
        &self,
        config: &ModeConfig,
        tokenizer: Option<&FieldTokenizer>,
    ) -> Result<PartyData, String> {
        let key_count = config.keys().len();
        let uses_clks = config.filter_bits().is_some() && self.clk_bytes > 0;
        let uses_fields = uses_field_tokens(config.mode()) && self.fields.len() == self.ids.len();
        let steps = &self.match_keys[..key_count.min(self.match_keys.len())];
        // Straight into the columns: no record is ever an owned struct of its own.
        let mut data = PartyData::with_columns(key_count, 0);
        data.reserve(self.ids.len());
        for (i, id) in self.ids.iter().enumerate() {
            data.push(
                id,
                steps
                    .iter()
                    .map(|k| k.keys[i].as_deref())
                    .chain(std::iter::repeat(None))
                    .take(key_count),
                uses_clks.then(|| self.clk(i)),
                &[],
            );
        }
        data.shrink_to_fit();
        if uses_fields {
            let Some(tokenizer) = tokenizer else {
                return Err(format!(
                    "mode {} compares fields but no tokenizer was given",
                    config.mode()
                ));
            };
            data = if config.mode() == Mode::Validate {
                // Shares the column's blocks: `release_columns` leaves the protocol's the
                // only copy.
                data.with_field_values(
                    self.fields.clone(),
                    Arc::new(SchemaFieldTokens(tokenizer.clone())),
                )
            } else {
                data.with_fields(tokenised(&self.fields, tokenizer)?)
            };
        }
        Ok(data)
    }

    /// Frees the ids, keys, CLKs and field tokens once [`PartyRecords::party_data`] (through
    /// [`prepare`](crate::prepare())) has given them to the protocol, which holds its own copy
    /// for the whole run: what a party writes after a session needs only the counts and the
    /// rows withheld, which stay. `ids.len()` is 0 afterwards.
    pub fn release_columns(&mut self) {
        self.ids = Vec::new();
        for column in &mut self.match_keys {
            column.keys = Vec::new();
        }
        self.clks = Vec::new();
        self.fields = FieldTokenColumn::default();
    }

    /// Lines for `report.txt` about the input: rows without a key per step (the first ones
    /// by where they are in [`PartyRecords::source`]), rows withheld and era dates read
    /// leniently. Local facts only: none of it reaches the peer.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for key in &self.match_keys {
            if key.keyless > 0 {
                notes.push(format!(
                    "input: {} of {} records have no '{}' key (missing or rejected value); first ones:",
                    key.keyless,
                    self.ids.len(),
                    key.name
                ));
                for row in &key.keyless_examples {
                    notes.push(format!(
                        "  {}: {}: {}",
                        self.source.at(row.line, "", ""),
                        row.column,
                        row.reason
                    ));
                }
            }
        }
        if let Some(rejects) = &self.rejects {
            notes.push(format!(
                "input: {} of {} rows rejected and withheld from the session (invalid_rows = \
                 \"reject\"), listed in {REJECTS_FILE}",
                rejects.rows.len(),
                self.rows_read,
            ));
        }
        if self.era_dates_read_leniently > 0 {
            notes.push(format!(
                "input: {} era dates outside their era read as the gregorian date they denote \
                 (era_dates = \"lenient\")",
                self.era_dates_read_leniently
            ));
        }
        notes
    }
}

/// Records of tokens made at once by [`tokenised`] (a batch of their tokens in memory).
const TOKENISE_BATCH: usize = 4096;

/// The tokens of every record's kept values (`values`, as [`PartyRecords::fields`] holds
/// them), in order, in parallel batches.
fn tokenised(
    values: &FieldTokenColumn,
    tokenizer: &FieldTokenizer,
) -> Result<FieldTokenColumn, String> {
    let per_record = values.per_record();
    let mut out = FieldTokenColumn::new(per_record);
    out.reserve(values.len());
    for start in (0..values.len()).step_by(TOKENISE_BATCH) {
        let end = (start + TOKENISE_BATCH).min(values.len());
        let batch: Vec<Vec<FieldTokens>> = (start..end)
            .into_par_iter()
            .map_init(FieldTokenScratch::default, |scratch, i| {
                let mut tokens = SchemaTokenizer {
                    tokenizer,
                    scratch: std::mem::take(scratch),
                };
                let record = (0..per_record)
                    .map(|f| {
                        let mut out = Vec::new();
                        if let Some(value) = values.field(i, f).next() {
                            tokens
                                .tokens(f, value, &mut out)
                                .map_err(|e| format!("record {}, field {}: {e}", i + 1, f + 1))?;
                        }
                        Ok(out)
                    })
                    .collect::<Result<Vec<_>, String>>();
                *scratch = tokens.scratch;
                record
            })
            .collect::<Result<_, String>>()?;
        for record in &batch {
            out.push(record);
        }
    }
    out.shrink_to_fit();
    Ok(out)
}

/// A party's [`FieldTokenizer`] as the protocol's [`FieldTokenSource`].
struct SchemaFieldTokens(FieldTokenizer);

impl FieldTokenSource for SchemaFieldTokens {
    fn tokenizer(&self) -> Box<dyn FieldValueTokenizer + '_> {
        Box::new(SchemaTokenizer {
            tokenizer: &self.0,
            scratch: FieldTokenScratch::default(),
        })
    }
}

/// One thread's [`SchemaFieldTokens`], with its digest caches.
struct SchemaTokenizer<'a> {
    tokenizer: &'a FieldTokenizer,
    scratch: FieldTokenScratch,
}

impl FieldValueTokenizer for SchemaTokenizer<'_> {
    fn tokens(&mut self, field: usize, value: &[u8], out: &mut FieldTokens) -> Result<(), String> {
        let text = std::str::from_utf8(value).map_err(|_| "the value is not utf-8".to_owned())?;
        self.tokenizer
            .text_tokens(field, text, &mut self.scratch, out)
            .map_err(|e| e.to_string())
    }
}

/// Whether `mode` compares the records' field tokens (`validate`, `fuzzy`).
#[must_use]
pub const fn uses_field_tokens(mode: Mode) -> bool {
    matches!(mode, Mode::Validate | Mode::Fuzzy)
}

/// Whether `mode` needs each record's CLK (`fuzzy` blocks on it locally, `clk-exchange`
/// sends it).
#[must_use]
pub const fn uses_clks(mode: Mode) -> bool {
    matches!(mode, Mode::Fuzzy | Mode::ClkExchange)
}

#[cfg(test)]
mod tests {
    use blindlink_encoding::{LinkageSecret, SchemaDocument};

    use super::*;

    /// Names with itaiji, half- and full-width kana and spaces, dates in several notations
    /// (some invalid for the numeric check, none rejected), sexes and addresses.
    const SCHEMA: &str = "version = 1\n[filter]\nbits = 64\n\
        [[field]]\ncolumn = \"kana\"\nnormalise = [\"nfkc\", \"halfwidth-kana\", \"katakana\", \
        \"long-vowel-fold\", \"strip-whitespace\"]\ntokens = { kind = \"ngram\", n = 2 }\n\
        bits_per_token = 4\n\
        [[field]]\ncolumn = \"kanji\"\nnormalise = [\"nfkc\", \"itaiji\", \"strip-whitespace\"]\n\
        tokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 4\n\
        [[field]]\ncolumn = \"dob\"\nnormalise = [\"date\"]\ntokens = { kind = \"exact\" }\n\
        bits_per_token = 4\n\
        [[field]]\ncolumn = \"sex\"\nnormalise = [\"sex\"]\ntokens = { kind = \"exact\" }\n\
        bits_per_token = 4\n\
        [[field]]\ncolumn = \"address\"\nnormalise = [\"nfkc\", \"itaiji\", \"jp-address\", \
        \"strip-whitespace\"]\ntokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 4\n";

    /// A deterministic stream of random values (xorshift), so the test needs no proptest.
    struct Values(u64);

    impl Values {
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            from[(self.0 % from.len() as u64) as usize]
        }

        fn text(&mut self, parts: &[&str], max: usize) -> String {
            let len = self
                .pick(&["0", "1", "2", "3", "5", "8"])
                .parse::<usize>()
                .unwrap_or(0);
            (0..len.min(max)).map(|_| self.pick(parts)).collect()
        }
    }

    /// Kept as normalised values (as the reader keeps them) and tokenised later, through
    /// `validate`'s path (a [`SchemaFieldTokens`] behind the data) and `fuzzy`'s
    /// ([`tokenised`]), every record's fields are exactly the tokens of its raw values.
    #[test]
    fn kept_values_tokenise_to_the_tokens_of_the_raw_values() {
        let doc = SchemaDocument::parse(SCHEMA).unwrap();
        let t =
            FieldTokenizer::new(&doc, &LinkageSecret::from_bytes(b"k".to_vec()).unwrap()).unwrap();
        let mut random = Values(0x9e37_79b9_7f4a_7c15);
        let kana = [
            "ア", "ｱ", "ｶﾞ", "が", "ー", "ｰ", "ン", "　", " ", "キョ", "ヴ",
        ];
        let kanji = [
            "高", "髙", "橋", "嶋", "島", "齋", "斎", "邊", "辺", " ", "　", "太郎",
        ];
        let dob = [
            "1985-04-03",
            "昭和60年4月3日",
            "1985/4/3",
            "",
            "2000-02-29",
            "19850403",
            "H1.1.8",
        ];
        let sex = ["M", "F", "男", "女", "", "1", "2"];
        let address = [
            "東京都",
            "千代田区",
            "1丁目",
            "２番",
            "3号",
            "-",
            "ー",
            " ",
            "八百屋町",
        ];
        let mut values = FieldTokenColumn::new(5);
        let mut expected = Vec::new();
        let mut scratch = FieldTokenScratch::default();
        while expected.len() < 5_000 {
            let row = [
                random.text(&kana, 8),
                random.text(&kanji, 4),
                random.pick(&dob).to_owned(),
                random.pick(&sex).to_owned(),
                random.text(&address, 8),
            ];
            let row: Vec<&str> = row.iter().map(String::as_str).collect();
            let mut tokens = Vec::new();
            if t.tokens(&row, &mut scratch, &mut tokens).is_err() {
                continue;
            }
            let mut texts = Vec::new();
            t.texts(&row, &mut scratch, |_, text| {
                texts.push(text.as_bytes().to_vec())
            })
            .unwrap();
            values.push_values(texts.iter().map(Vec::as_slice));
            expected.push(tokens);
        }
        assert!(
            expected.iter().any(|r| r.iter().any(Vec::is_empty)),
            "some missing"
        );
        let mut ids = PartyData::with_columns(0, 0);
        for i in 0..expected.len() {
            ids.push(&i.to_string(), [], None, &[]);
        }
        let kept = ids
            .clone()
            .with_field_values(values.clone(), Arc::new(SchemaFieldTokens(t.clone())));
        let all = ids.with_fields(tokenised(&values, &t).unwrap());
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(&kept.fields(i), want, "validate's path, record {i}");
            assert_eq!(&all.fields(i), want, "fuzzy's path, record {i}");
        }
    }
}
