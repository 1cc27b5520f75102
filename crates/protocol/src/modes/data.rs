//! [`PartyData`]: a party's records as columns. A record held as a struct of owned values (a
//! `String` id, a vector of optional key vectors, a CLK vector, a vector of token vectors)
//! costs ~150-190 bytes before its first key byte, in three or more heap allocations; a
//! session over 10⁸ records cannot afford that. Here every column is one byte buffer with an
//! end offset per value: an id and a 12-digit key cost their bytes plus 8 bytes each.

use super::config::{FieldTokens, PartyRecord};

/// Marks an absent value in [`ByteColumn::ends`] (its range is empty).
const ABSENT: u64 = 1 << 63;

/// Optional byte strings in one buffer: value `i` is `bytes[end(i - 1)..end(i)]`.
#[derive(Clone, PartialEq, Eq, Default)]
struct ByteColumn {
    bytes: Vec<u8>,
    /// The end of each value in `bytes`, with [`ABSENT`] set when the value is absent.
    ends: Vec<u64>,
}

impl ByteColumn {
    fn end(&self, i: usize) -> usize {
        (self.ends[i] & !ABSENT) as usize
    }

    fn push(&mut self, value: Option<&[u8]>) {
        match value {
            Some(v) => {
                self.bytes.extend_from_slice(v);
                self.ends.push(self.bytes.len() as u64);
            }
            None => self.ends.push(self.bytes.len() as u64 | ABSENT),
        }
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        if end & ABSENT != 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        self.bytes.get(start..end as usize)
    }

    fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// Records' compared-field tokens in one buffer: field `f` of record `i` is the token list
/// `bytes[end(i, f - 1)..end(i, f)]`, each token written as its length (LEB128) and its
/// bytes, so a 2-byte q-gram costs 3 bytes and no allocation (as a `Vec<Vec<u8>>` it costs
/// ~50). What a party's reader appends each row's tokens to, and [`PartyData`]'s field
/// column.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct FieldTokenColumn {
    /// Fields per record (the first record's count, unless set by
    /// [`FieldTokenColumn::new`]).
    per_record: usize,
    records: usize,
    bytes: Vec<u8>,
    /// The end of each (record, field) in `bytes`, record-major.
    ends: Vec<u64>,
    /// The first record whose number of fields differs from `per_record`, and its number.
    ragged: Option<(usize, usize)>,
}

impl std::fmt::Debug for FieldTokenColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are personal data: show the shape only.
        f.debug_struct("FieldTokenColumn")
            .field("records", &self.records)
            .field("per_record", &self.per_record)
            .finish_non_exhaustive()
    }
}

impl FieldTokenColumn {
    /// No records yet, each to have `per_record` fields.
    #[must_use]
    pub fn new(per_record: usize) -> Self {
        Self {
            per_record,
            ..Self::default()
        }
    }

    /// The number of records.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.records
    }

    /// Whether there are no records.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Fields per record.
    #[must_use]
    pub const fn per_record(&self) -> usize {
        self.per_record
    }

    /// Appends a record's fields (the first record of a column made with `default()` sets
    /// the number of fields per record; a record with more is cut, one with fewer padded
    /// with empty fields, and the first such record is remembered for the session's check).
    pub fn push(&mut self, fields: &[FieldTokens]) {
        if self.records == 0 && self.per_record == 0 {
            self.per_record = fields.len();
        }
        if fields.len() != self.per_record && self.ragged.is_none() {
            self.ragged = Some((self.records, fields.len()));
        }
        self.records += 1;
        for f in 0..self.per_record {
            for token in fields.get(f).map_or(&[][..], Vec::as_slice) {
                let mut len = token.len();
                loop {
                    let low = (len & 0x7f) as u8;
                    len >>= 7;
                    if len == 0 {
                        self.bytes.push(low);
                        break;
                    }
                    self.bytes.push(low | 0x80);
                }
                self.bytes.extend_from_slice(token);
            }
            self.ends.push(self.bytes.len() as u64);
        }
    }

    /// The tokens of field `field` of record `record` (none past the end).
    #[must_use]
    pub fn field(&self, record: usize, field: usize) -> FieldView<'_> {
        if field >= self.per_record || record >= self.records {
            return FieldView { rest: &[] };
        }
        let at = record * self.per_record + field;
        let end = self.ends.get(at).map_or(0, |&e| e as usize);
        let start = if at == 0 {
            0
        } else {
            self.ends.get(at - 1).map_or(0, |&e| e as usize)
        };
        FieldView {
            rest: self.bytes.get(start..end).unwrap_or_default(),
        }
    }

    /// The tokens of every field of record `i`, as owned values.
    #[must_use]
    pub fn record(&self, i: usize) -> Vec<FieldTokens> {
        (0..self.per_record)
            .map(|f| self.field(i, f).map(<[u8]>::to_vec).collect())
            .collect()
    }

    /// Keeps the records for which `keep(i)` is true, in order (a shard's, a cascade
    /// stage's).
    pub fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        let mut records = 0;
        let mut ragged = None;
        for i in 0..self.records {
            if !keep(i) {
                continue;
            }
            if let Some((r, count)) = self.ragged
                && r == i
            {
                ragged = Some((records, count));
            }
            for f in 0..self.per_record {
                let at = i * self.per_record + f;
                let start = if at == 0 {
                    0
                } else {
                    self.ends[at - 1] as usize
                };
                bytes.extend_from_slice(&self.bytes[start..self.ends[at] as usize]);
                ends.push(bytes.len() as u64);
            }
            records += 1;
        }
        self.bytes = bytes;
        self.ends = ends;
        self.records = records;
        self.ragged = ragged;
        self.shrink_to_fit();
    }

    /// Gives unused capacity back.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// The tokens of one compared field of one record, read from [`PartyData`] without a copy.
#[derive(Debug, Clone, Copy)]
pub struct FieldView<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for FieldView<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let (&byte, rest) = self.rest.split_first()?;
            self.rest = rest;
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let (token, rest) = self.rest.split_at_checked(len)?;
        self.rest = rest;
        Some(token)
    }
}

/// The first record whose number of keys or compared fields differs from the first
/// record's: [`PartyData`] holds as many key and field columns as its first record has, and
/// a session checks the rest against its mode ([`new_driver`](super::new_driver)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ragged {
    /// (record, its number of keys).
    pub(crate) keys: Option<(usize, usize)>,
    /// (record, its number of compared fields).
    pub(crate) fields: Option<(usize, usize)>,
}

/// This party's records, in input order (the rows of the outcome follow it), as columns: the
/// local ids, each match key of the cascade, the record-level CLKs and the compared fields'
/// tokens, each in one buffer with an offset per record. A mode's data carries only the
/// columns it uses (no CLKs in `exact`, no field tokens outside `validate` and `fuzzy`).
///
/// Build it with [`PartyData::with_columns`] and [`PartyData::push`] (how `blindlink-party`
/// builds it from the rows it read), or from [`PartyRecord`]s with
/// [`PartyData::from_records`] or `collect()`.
///
/// # Example
/// ```
/// use blindlink_protocol::{PartyData, PartyRecord};
/// let data = PartyData::from_records(vec![
///     PartyRecord { id: "a1".into(), keys: vec![Some(b"123".to_vec()), None],
///         ..PartyRecord::default() },
/// ]);
/// assert_eq!((data.len(), data.id(0), data.key(0, 0), data.key(0, 1)),
///     (1, "a1", Some(&b"123"[..]), None));
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PartyData {
    ids: ByteColumn,
    keys: Vec<ByteColumn>,
    clks: ByteColumn,
    fields: FieldTokenColumn,
    /// The first record with another number of keys than the columns, and its number.
    ragged_keys: Option<(usize, usize)>,
}

impl std::fmt::Debug for PartyData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys, CLKs and tokens are personal data: show the shape only.
        f.debug_struct("PartyData")
            .field("records", &self.len())
            .field("keys", &self.keys.len())
            .field("fields", &self.fields.per_record)
            .finish_non_exhaustive()
    }
}

impl PartyData {
    /// No records yet, with `keys` match-key columns and `fields` compared fields per record.
    #[must_use]
    pub fn with_columns(keys: usize, fields: usize) -> Self {
        Self {
            keys: vec![ByteColumn::default(); keys],
            fields: FieldTokenColumn::new(fields),
            ..Self::default()
        }
    }

    /// The records, in order.
    #[must_use]
    pub fn from_records(records: Vec<PartyRecord>) -> Self {
        records.into_iter().collect()
    }

    /// Reserves room for `records` more records (their offsets; the bytes grow as pushed).
    pub fn reserve(&mut self, records: usize) {
        self.ids.ends.reserve(records);
        for column in &mut self.keys {
            column.ends.reserve(records);
        }
        self.fields
            .ends
            .reserve(records.saturating_mul(self.fields.per_record));
    }

    /// Appends a record: its id, its keys (in cascade order; a missing key is `None`, costs
    /// no allocation and is never matched), its CLK and its compared fields' tokens. Keys
    /// and fields beyond [`PartyData::with_columns`]'s counts are dropped, missing ones are
    /// absent (or empty), and the first record whose count differs is remembered for the
    /// session's check, which refuses the data if the mode uses that column.
    pub fn push<'k>(
        &mut self,
        id: &str,
        keys: impl IntoIterator<Item = Option<&'k [u8]>>,
        clk: Option<&[u8]>,
        fields: &[FieldTokens],
    ) {
        let record = self.len();
        self.ids.push(Some(id.as_bytes()));
        let mut count = 0;
        for key in keys {
            if let Some(column) = self.keys.get_mut(count) {
                column.push(key);
            }
            count += 1;
        }
        for column in self.keys.iter_mut().skip(count) {
            column.push(None);
        }
        if count != self.keys.len() && self.ragged_keys.is_none() {
            self.ragged_keys = Some((record, count));
        }
        self.clks.push(clk);
        self.fields.push(fields);
    }

    /// Gives unused capacity back (after the last [`PartyData::push`]).
    pub fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        for column in &mut self.keys {
            column.shrink_to_fit();
        }
        self.clks.shrink_to_fit();
        self.fields.shrink_to_fit();
    }

    /// The number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.ends.len()
    }

    /// Whether there are no records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.ends.is_empty()
    }

    /// The number of match-key columns.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The number of compared fields per record.
    #[must_use]
    pub fn field_count(&self) -> usize {
        self.fields.per_record
    }

    /// The local id of record `i` (empty past the end).
    #[must_use]
    pub fn id(&self, i: usize) -> &str {
        self.ids
            .get(i)
            .and_then(|id| std::str::from_utf8(id).ok())
            .unwrap_or_default()
    }

    /// Match key `k` of record `i`, if it has one.
    #[must_use]
    pub fn key(&self, i: usize, k: usize) -> Option<&[u8]> {
        self.keys.get(k)?.get(i)
    }

    /// The CLK of record `i`, if it has one.
    #[must_use]
    pub fn clk(&self, i: usize) -> Option<&[u8]> {
        self.clks.get(i)
    }

    /// The tokens of compared field `f` of record `i` (none past the end).
    #[must_use]
    pub fn field(&self, i: usize, f: usize) -> FieldView<'_> {
        if f >= self.fields.per_record || i >= self.len() {
            return FieldView { rest: &[] };
        }
        self.fields.field(i, f)
    }

    /// The tokens of every compared field of record `i`, as owned values.
    #[must_use]
    pub fn fields(&self, i: usize) -> Vec<FieldTokens> {
        (0..self.fields.per_record)
            .map(|f| self.field(i, f).map(<[u8]>::to_vec).collect())
            .collect()
    }

    /// Record `i` as an owned [`PartyRecord`] (`None` past the end).
    #[must_use]
    pub fn record(&self, i: usize) -> Option<PartyRecord> {
        (i < self.len()).then(|| self.owned(i))
    }

    fn owned(&self, i: usize) -> PartyRecord {
        PartyRecord {
            id: self.id(i).to_owned(),
            keys: (0..self.keys.len())
                .map(|k| self.key(i, k).map(<[u8]>::to_vec))
                .collect(),
            clk: self.clk(i).map(<[u8]>::to_vec),
            fields: self.fields(i),
        }
    }

    /// Every record as an owned [`PartyRecord`], in order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = PartyRecord> + '_ {
        (0..self.len()).map(|i| self.owned(i))
    }

    /// Sets the compared fields' tokens of every record, read apart from the rest (as a
    /// party's reader does): a column of another length than the records is refused by the
    /// session's check of a mode that compares fields.
    #[must_use]
    pub fn with_fields(mut self, fields: FieldTokenColumn) -> Self {
        self.fields = fields;
        self
    }

    pub(crate) fn ragged(&self) -> Ragged {
        let fields = if self.fields.len() == self.len() {
            self.fields.ragged
        } else {
            Some((self.fields.len().min(self.len().saturating_sub(1)), 0))
        };
        Ragged {
            keys: self.ragged_keys,
            fields,
        }
    }
}

impl FromIterator<PartyRecord> for PartyData {
    /// The records in order, with as many key and field columns as the first has.
    fn from_iter<I: IntoIterator<Item = PartyRecord>>(records: I) -> Self {
        let mut records = records.into_iter().peekable();
        let (keys, fields) = records
            .peek()
            .map_or((0, 0), |r| (r.keys.len(), r.fields.len()));
        let mut data = Self::with_columns(keys, fields);
        data.reserve(records.size_hint().0);
        for r in records {
            data.push(
                &r.id,
                r.keys.iter().map(Option::as_deref),
                r.clk.as_deref(),
                &r.fields,
            );
        }
        data.shrink_to_fit();
        data
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn record() -> impl Strategy<Value = PartyRecord> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        (
            "[a-zé0-9]{0,12}",
            proptest::collection::vec(proptest::option::of(bytes()), 2),
            proptest::option::of(bytes()),
            proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..6),
                3,
            ),
        )
            .prop_map(|(id, keys, clk, fields)| PartyRecord {
                id,
                keys,
                clk,
                fields,
            })
    }

    proptest! {
        /// The columns give back exactly the records they were built from, absent keys and
        /// CLKs absent (not empty), and empty keys, tokens and fields as empty.
        #[test]
        fn columns_round_trip_their_records(
            records in proptest::collection::vec(record(), 0..30),
        ) {
            let data = PartyData::from_records(records.clone());
            prop_assert_eq!(data.len(), records.len());
            prop_assert_eq!(data.records().collect::<Vec<_>>(), records.clone());
            for (i, r) in records.iter().enumerate() {
                prop_assert_eq!(data.id(i), r.id.as_str());
                for (k, key) in r.keys.iter().enumerate() {
                    prop_assert_eq!(data.key(i, k), key.as_deref());
                }
                prop_assert_eq!(data.clk(i), r.clk.as_deref());
            }
            prop_assert_eq!(data.ragged(), Ragged::default());
        }
    }

    /// A record as read back: its id, its keys, and the data's ragged records.
    type ReadBack<'a> = (&'a str, Vec<Option<&'a [u8]>>, Ragged);

    fn check(records: Vec<PartyRecord>, expected: &[ReadBack<'_>]) {
        let data = PartyData::from_records(records);
        let got: Vec<ReadBack<'_>> = (0..data.len())
            .map(|i| {
                let keys = (0..data.key_count()).map(|k| data.key(i, k)).collect();
                (data.id(i), keys, data.ragged())
            })
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn absent_keys_stay_absent_and_ragged_records_are_remembered() {
        let keyed = |id: &str, keys: Vec<Option<&[u8]>>| PartyRecord {
            id: id.into(),
            keys: keys.into_iter().map(|k| k.map(<[u8]>::to_vec)).collect(),
            ..PartyRecord::default()
        };
        let even = Ragged::default();
        check(
            vec![
                keyed("a", vec![None, Some(b"")]),
                keyed("b", vec![Some(b"1"), None]),
            ],
            &[
                ("a", vec![None, Some(b"")], even),
                ("b", vec![Some(b"1"), None], even),
            ],
        );
        let ragged = Ragged {
            keys: Some((1, 1)),
            fields: None,
        };
        check(
            vec![
                keyed("a", vec![Some(b"1"), Some(b"2")]),
                keyed("b", vec![Some(b"3")]),
                keyed("c", vec![]),
            ],
            &[
                ("a", vec![Some(b"1"), Some(b"2")], ragged),
                ("b", vec![Some(b"3"), None], ragged),
                ("c", vec![None, None], ragged),
            ],
        );
    }

    #[test]
    fn a_field_reads_its_tokens_without_a_copy() {
        let long = vec![7u8; 300];
        let data = PartyData::from_records(vec![PartyRecord {
            id: "x".into(),
            fields: vec![vec![b"ab".to_vec(), Vec::new(), long.clone()], Vec::new()],
            ..PartyRecord::default()
        }]);
        let first: Vec<&[u8]> = data.field(0, 0).collect();
        assert_eq!(first, [&b"ab"[..], &[][..], &long[..]]);
        assert_eq!(data.field(0, 1).count(), 0);
        assert_eq!(data.field(0, 2).count(), 0);
        assert_eq!(data.field(1, 0).count(), 0);
    }
}
