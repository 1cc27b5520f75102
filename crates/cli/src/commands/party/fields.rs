//! The per-field tokens that `validate` and `fuzzy` compare through the protocol's grouped PSI
//! cardinality: for every compared field of a record (each field of the native schema, in its
//! order), the field's token multiset — q-grams of a name or an address, the one normalised
//! value of a date of birth or a sex — from [`FieldTokenizer`], which takes them from the very
//! normalisation and tokenisation steps the CLK encoder hashes. No filter is built for them and
//! none crosses the wire: the peer only ever sees them hashed to the group and blinded with a
//! fresh scalar of the session.

use std::path::Path;

use anyhow::bail;
use blindlink_encoding::{FieldTokenizer, LinkageSecret, Schema, SchemaDocument};
use blindlink_protocol::Mode;

/// Whether `mode` compares the records' field tokens.
#[must_use]
pub const fn uses_field_tokens(mode: Mode) -> bool {
    matches!(mode, Mode::Validate | Mode::Fuzzy)
}

/// The tokenizer of `schema` when `mode` compares field tokens, else `None`.
///
/// # Errors
/// The mode compares field tokens and `schema` (read from `schema_path`) is a clkhash schema,
/// which has no native fields to take tokens from.
pub fn field_tokenizer(
    mode: Mode,
    schema: &SchemaDocument,
    secret: &LinkageSecret,
    schema_path: &Path,
) -> anyhow::Result<Option<FieldTokenizer>> {
    if !uses_field_tokens(mode) {
        return Ok(None);
    }
    if matches!(schema.schema, Schema::Clkhash(_)) {
        bail!(
            "schema {}: mode {mode} compares the fields' tokens, which need a native schema \
             (this is a clkhash schema; clk-exchange can use it)",
            schema_path.display()
        );
    }
    Ok(Some(FieldTokenizer::new(schema, secret)?))
}

use blindlink_encoding::native::Layout;

/// Bit ranges of the fields of a `per-field` layout CLK, or `None` when the schema has another
/// layout or hardening (which mixes the fields' bits, so they cannot be cut apart).
#[must_use]
pub fn per_field_ranges(schema: &Schema) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    let Schema::Native(native) = schema else {
        return None;
    };
    if native.layout != Layout::PerField || !native.hardening.is_empty() {
        return None;
    }
    let mut start = 0;
    Some(
        native
            .fields
            .iter()
            .map(|f| {
                let range = start..start + f.own_bits;
                start = range.end;
                (f.column.clone(), range)
            })
            .collect(),
    )
}

/// Copies bits `range` of `clk` (MSB-first, as the encoder lays them out) into a byte-aligned
/// filter of `range.len()` bits.
#[must_use]
pub fn cut_bits(clk: &[u8], range: std::ops::Range<usize>) -> Vec<u8> {
    let len = range.len();
    let mut out = vec![0u8; len.div_ceil(8)];
    if range.start.is_multiple_of(8) {
        let from = range.start / 8;
        out.copy_from_slice(&clk[from..from + len.div_ceil(8)]);
        if !len.is_multiple_of(8) {
            let last = out.len() - 1;
            out[last] &= 0xff << (8 - len % 8);
        }
        return out;
    }
    for (j, i) in range.enumerate() {
        if clk[i >> 3] & (0x80 >> (i & 7)) != 0 {
            out[j >> 3] |= 0x80 >> (j & 7);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use blindlink_encoding::FieldTokenScratch;

    fn example(schema: &str) -> (SchemaDocument, std::path::PathBuf) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/peers")
            .join(schema);
        let text = std::fs::read_to_string(&path).unwrap();
        (SchemaDocument::parse(&text).unwrap(), path)
    }

    fn tokens(tokenizer: &FieldTokenizer, values: &[&str]) -> Vec<blindlink_encoding::FieldTokens> {
        let mut out = Vec::new();
        tokenizer
            .tokens(values, &mut FieldTokenScratch::default(), &mut out)
            .unwrap();
        out
    }

    /// The example schemas tokenise every compared field sensibly: bigrams of the names and
    /// the address, one token for the date of birth and the sex in `schema.toml` (validate)
    /// and one per digit position of the date in `clk-schema.toml` (fuzzy), and the notations
    /// a registry and an insurer write differently give the same tokens.
    #[test]
    fn example_schemas_tokenise_each_compared_field() {
        let secret = LinkageSecret::from_bytes(b"example".to_vec()).unwrap();
        let registry = [
            "ヤマダ タロウ",
            "山田 太郎",
            "1985-04-03",
            "M",
            "東京都 千代田区 丸の内1丁目2番3号",
        ];
        let insurer = [
            "ﾔﾏﾀﾞ ﾀﾛｳ",
            "山田　太郎",
            "S60.4.3",
            "男",
            "東京都千代田区丸の内1-2-3",
        ];
        for (schema, mode, counts) in [
            ("schema.toml", Mode::Validate, [7, 5, 1, 1, 13]),
            ("clk-schema.toml", Mode::Fuzzy, [7, 5, 10, 1, 13]),
        ] {
            let (doc, path) = example(schema);
            let tokenizer = field_tokenizer(mode, &doc, &secret, &path)
                .unwrap()
                .unwrap();
            assert_eq!(
                tokenizer.field_names(),
                ["name_kana", "name_kanji", "date_of_birth", "sex", "address"]
            );
            let a = tokens(&tokenizer, &registry);
            assert_eq!(a, tokens(&tokenizer, &insurer), "{schema}");
            assert_eq!(
                a.iter().map(Vec::len).collect::<Vec<_>>(),
                counts,
                "{schema}"
            );
            let missing = tokens(&tokenizer, &["", "", "", "", ""]);
            assert!(missing.iter().all(Vec::is_empty), "{schema}");
        }
    }

    #[test]
    fn only_validate_and_fuzzy_take_tokens_and_only_from_a_native_schema() {
        let secret = LinkageSecret::from_bytes(b"example".to_vec()).unwrap();
        let (doc, path) = example("schema.toml");
        for mode in [Mode::Cardinality, Mode::Exact, Mode::ClkExchange] {
            assert!(
                field_tokenizer(mode, &doc, &secret, &path)
                    .unwrap()
                    .is_none()
            );
        }
        let febrl = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/febrl4/schema-5field.json");
        let clkhash = SchemaDocument::parse(&std::fs::read_to_string(&febrl).unwrap()).unwrap();
        assert!(
            field_tokenizer(Mode::ClkExchange, &clkhash, &secret, &febrl)
                .unwrap()
                .is_none()
        );
        let err = field_tokenizer(Mode::Fuzzy, &clkhash, &secret, Path::new("s.json")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "schema s.json: mode fuzzy compares the fields' tokens, which need a native schema \
             (this is a clkhash schema; clk-exchange can use it)"
        );
    }

    fn check(clk: &[u8], range: std::ops::Range<usize>, expected: &[u8]) {
        assert_eq!(cut_bits(clk, range.clone()), expected, "range {range:?}");
    }

    #[test]
    fn cuts_aligned_and_unaligned_ranges() {
        let clk = [0b1010_1100, 0b0111_0001, 0xff];
        check(&clk, 0..8, &[0b1010_1100]);
        check(&clk, 8..16, &[0b0111_0001]);
        check(&clk, 0..4, &[0b1010_0000]);
        check(&clk, 4..12, &[0b1100_0111]);
        check(&clk, 6..9, &[0b0000_0000]);
        check(&clk, 9..20, &[0b1110_0011, 0b1110_0000]);
        check(&clk, 0..24, &clk);
    }

    #[test]
    fn ranges_follow_the_per_field_layout() {
        let doc = blindlink_encoding::SchemaDocument::parse(
            "version = 1\n[filter]\nbits = 160\nlayout = \"per-field\"\n\
             [[field]]\ncolumn = \"a\"\nbits = 100\ntokens = { kind = \"exact\" }\nbits_per_token = 5\n\
             [[field]]\ncolumn = \"b\"\nbits = 60\ntokens = { kind = \"exact\" }\nbits_per_token = 5\n",
        );
        let ranges = doc.map(|d| per_field_ranges(&d.schema));
        assert_eq!(
            ranges.map_err(|e| e.to_string()),
            Ok(Some(vec![
                ("a".to_owned(), 0..100),
                ("b".to_owned(), 100..160)
            ]))
        );
    }
}
