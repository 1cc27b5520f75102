use super::*;
use crate::bits::set_bit;
use crate::native::{NativeEncoder, NativeScratch};

const SECRET: &[u8] = b"field token test secret";

/// Surname bigrams (bits per token), a positional date (bits per field, so a token's bit count
/// depends on its index), sex with a replacement for missing values, a kana name that rejects
/// missing values: every weight and missing policy.
const PEOPLE: &str = r#"
version = 1
[filter]
bits = 512
[[field]]
column = "surname"
normalise = ["nfkc", "itaiji", "whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 15
[[field]]
column = "dob"
normalise = ["date"]
tokens = { kind = "ngram", n = 1, positional = true }
bits_per_field = 67
[[field]]
column = "sex"
normalise = ["sex"]
tokens = { kind = "exact" }
bits_per_token = 20
missing = { replace = "unknown" }
missing_values = ["", "?"]
"#;

fn secret() -> LinkageSecret {
    LinkageSecret::from_bytes(SECRET.to_vec()).unwrap()
}

fn tokenizer(schema: &str) -> FieldTokenizer {
    FieldTokenizer::new(&SchemaDocument::parse(schema).unwrap(), &secret()).unwrap()
}

/// The plain tokens of each field, before any hashing.
fn plain(t: &FieldTokenizer, values: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let mut out = vec![Vec::new(); t.fields.len()];
    let (mut a, mut b, mut c, mut d) = (String::new(), String::new(), Vec::new(), String::new());
    t.plain_tokens(values, &mut a, &mut b, &mut c, &mut d, |i, token| {
        out[i].push(token.to_owned());
    })
    .map_err(|e| e.to_string())?;
    Ok(out)
}

fn keyed(t: &FieldTokenizer, values: &[&str]) -> Result<Vec<FieldTokens>, String> {
    let mut out = Vec::new();
    t.tokens(values, &mut FieldTokenScratch::default(), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn check_plain(values: &[&str], expected: &[&[&str]]) {
    let got = plain(&tokenizer(PEOPLE), values).unwrap();
    assert_eq!(got, expected, "values {values:?}");
}

#[test]
fn tokens_follow_normalisation_and_tokenisation() {
    check_plain(
        &["髙橋", "昭和60年4月3日", "F"],
        &[
            &[" 高", "高橋", "橋 "],
            &[
                "1 1", "2 9", "3 8", "4 5", "5 -", "6 0", "7 4", "8 -", "9 0", "10 3",
            ],
            &["2"],
        ],
    );
    // Missing: a skipped field has no token, a replaced one the replacement's tokens.
    check_plain(&[" ", "", "?"], &[&[], &[], &["unknown"]]);
}

#[test]
fn multiplicities_are_kept() {
    let t = tokenizer(PEOPLE);
    let plain = plain(&t, &["ababab", "", "M"]).unwrap();
    assert_eq!(
        plain[0],
        [" a", "ab", "ba", "ab", "ba", "ab", "b "].map(str::to_owned)
    );
    let keyed = keyed(&t, &["ababab", "", "M"]).unwrap();
    assert_eq!(keyed[0].len(), 7);
    let ab = &keyed[0][1];
    assert_eq!(keyed[0].iter().filter(|k| *k == ab).count(), 3);
    assert_eq!(keyed[0].iter().filter(|k| **k == keyed[0][2]).count(), 2);
}

#[test]
fn keyed_tokens_are_hmac_of_the_plain_tokens_under_a_field_token_key() {
    let t = tokenizer(PEOPLE);
    let values = ["髙橋", "1985-04-03", "F"];
    let plain = plain(&t, &values).unwrap();
    let keyed = keyed(&t, &values).unwrap();
    for (i, column) in ["surname", "dob", "sex"].iter().enumerate() {
        let key = DerivedKey::derive(&secret(), "field-token", column.as_bytes());
        let expected: Vec<Vec<u8>> = plain[i]
            .iter()
            .map(|token| {
                let mut mac =
                    <SimpleHmac<Sha3_256> as KeyInit>::new_from_slice(key.bytes()).unwrap();
                mac.update(token.as_bytes());
                mac.finalize().into_bytes()[..FIELD_TOKEN_BYTES].to_vec()
            })
            .collect();
        assert_eq!(keyed[i], expected, "field {column}");
    }
    // Pinned, so that a change of derivation is deliberate; computed independently with
    // Python's hmac: k = HMAC-SHA3-256(secret, b"blindlink/v1/field-token\0sex"),
    // HMAC-SHA3-256(k, b"2")[:16] (sex "F" normalises to ISO 5218 "2").
    assert_eq!(hex(&keyed[2][0]), "ad469571d9ab5c96f46be03bea2c3727");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn keyed_tokens_depend_on_the_secret_and_the_field() {
    let schema = "version = 1\n[filter]\nbits = 64\n\
        [[field]]\ncolumn = \"a\"\ntokens = { kind = \"exact\" }\nbits_per_token = 4\n\
        [[field]]\ncolumn = \"b\"\ntokens = { kind = \"exact\" }\nbits_per_token = 4\n";
    let doc = SchemaDocument::parse(schema).unwrap();
    let t = FieldTokenizer::new(&doc, &secret()).unwrap();
    let same = keyed(&t, &["x", "x"]).unwrap();
    assert_ne!(same[0], same[1], "the same value in two fields");
    let other =
        FieldTokenizer::new(&doc, &LinkageSecret::from_bytes(b"other".to_vec()).unwrap()).unwrap();
    assert_ne!(keyed(&other, &["x", "x"]).unwrap(), same);
    assert_eq!(keyed(&t, &["x", "x"]).unwrap(), same);
}

/// Sets, for every plain token, the bits the encoder's keyed hash gives it, in the field's
/// region: the Bloom filter rebuilt from the tokens alone.
fn clk_from_tokens(encoder: &NativeEncoder, tokens: &[Vec<String>]) -> Vec<u8> {
    let schema = encoder.schema();
    let work_bits: usize = match schema.layout {
        crate::native::Layout::Clk => schema.bits,
        _ => schema.fields.iter().map(|f| f.own_bits).sum(),
    };
    let mut work = vec![0u8; work_bits.div_ceil(8)];
    for (i, (field, tokens)) in schema.fields.iter().zip(tokens).enumerate() {
        for (t, token) in tokens.iter().enumerate() {
            let k = field.weight.k(t, tokens.len());
            let mut positions = Vec::new();
            encoder.hashers[i].positions(&[], token.as_bytes(), k, field.own_bits, &mut positions);
            for p in positions {
                set_bit(&mut work, encoder.offsets[i] + p as usize);
            }
        }
    }
    work
}

fn encode(encoder: &NativeEncoder, values: &[&str], scratch: &mut NativeScratch) -> Vec<u8> {
    let mut out = vec![0; encoder.bytes_per_clk()];
    encoder.encode(values, 0, scratch, &mut out, None).unwrap();
    out
}

const PER_FIELD: &str = r#"
version = 1
[filter]
bits = 300
layout = "per-field"
[[field]]
column = "surname"
normalise = ["nfkc", "katakana", "strip-whitespace"]
tokens = { kind = "ngram", n = 3 }
bits_per_token = 9
bits = 101
[[field]]
column = "dob"
normalise = ["date"]
tokens = { kind = "ngram", n = 1, positional = true }
bits_per_field = 50
bits = 99
[[field]]
column = "sex"
normalise = ["sex"]
tokens = { kind = "exact" }
bits_per_token = 20
bits = 100
missing = { replace = "unknown" }
"#;

#[test]
fn the_tokens_reproduce_the_clk() {
    for schema in [PEOPLE, PER_FIELD] {
        let native = NativeSchema::parse(schema).unwrap();
        let encoder = NativeEncoder::new(&native, &secret()).unwrap();
        let t = FieldTokenizer::from_native(&native, &secret());
        let mut scratch = NativeScratch::default();
        for values in [
            ["髙橋", "昭和60年4月3日", "F"],
            ["たなか　はなこ", "2001/12/31", ""],
            ["", "", "男"],
            ["aaaa", "1999-09-09", "2"],
        ] {
            let tokens = plain(&t, &values).unwrap();
            assert_eq!(
                clk_from_tokens(&encoder, &tokens),
                encode(&encoder, &values, &mut scratch),
                "schema layout {:?}, values {values:?}",
                native.layout
            );
        }
    }
}

#[test]
fn bad_records_give_the_encoders_errors() {
    let t = tokenizer(PER_FIELD);
    let native = NativeSchema::parse(PER_FIELD).unwrap();
    let encoder = NativeEncoder::new(&native, &secret()).unwrap();
    for values in [
        &["x", "1985-02-30", "F"][..],
        &["x", "1985-01-01"][..],
        &["x", "2000-01-01", "cat"][..],
    ] {
        let mut out = vec![0; encoder.bytes_per_clk()];
        let expected = encoder
            .encode(values, 0, &mut NativeScratch::default(), &mut out, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            keyed(&t, values).unwrap_err(),
            expected,
            "values {values:?}"
        );
    }
    assert_eq!(
        keyed(&t, &["x", "1985-01-01"]).unwrap_err(),
        "record has 2 values when 3 are expected"
    );
    let reject = "version = 1\n[filter]\nbits = 64\n[[field]]\ncolumn = \"a\"\n\
        normalise = [\"strip-whitespace\"]\ntokens = { kind = \"exact\" }\nbits_per_token = 4\n\
        missing = \"reject\"\n";
    assert_eq!(
        keyed(&tokenizer(reject), &[""]).unwrap_err(),
        "field 'a': missing value"
    );
}

#[test]
fn clkhash_schemas_are_refused() {
    let doc = SchemaDocument::parse(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/febrl4/schema-5field.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        FieldTokenizer::new(&doc, &secret())
            .unwrap_err()
            .to_string(),
        "(document): field tokens need a native schema, and this is a clkhash schema"
    );
}

#[test]
fn salt_columns_are_taken_and_ignored() {
    let schema = "version = 1\n[filter]\nbits = 64\n[[field]]\ncolumn = \"a\"\n\
        tokens = { kind = \"exact\" }\nbits_per_token = 4\n[[harden]]\nstep = \"salt\"\ncolumn = \"year\"\n";
    let t = tokenizer(schema);
    assert_eq!(
        keyed(&t, &["x", "1985"]).unwrap(),
        keyed(&t, &["x", "1990"]).unwrap()
    );
    assert_eq!(
        keyed(&t, &["x"]).unwrap_err(),
        "record has 1 values when 2 are expected"
    );
    assert_eq!(t.field_names(), ["a"]);
    assert_eq!(format!("{t:?}"), "FieldTokenizer { fields: [\"a\"], .. }");
}

proptest::proptest! {
    /// A warm scratch (its digest caches filled by earlier records) gives the tokens a fresh
    /// one gives, and the plain tokens always rebuild the CLK.
    #[test]
    fn caches_are_transparent_and_tokens_rebuild_clks(
        names in proptest::collection::vec("[a-cア-ウ高髙 ]{0,6}", 1..30),
    ) {
        let native = NativeSchema::parse(PER_FIELD).unwrap();
        let encoder = NativeEncoder::new(&native, &secret()).unwrap();
        let t = FieldTokenizer::from_native(&native, &secret());
        let mut warm = FieldTokenScratch::default();
        let mut scratch = NativeScratch::default();
        for (i, name) in names.iter().enumerate() {
            let values = [name.as_str(), if i % 2 == 0 { "1985-04-03" } else { "" }, "F"];
            let mut a = Vec::new();
            t.tokens(&values, &mut warm, &mut a).unwrap();
            proptest::prop_assert_eq!(&a, &keyed(&t, &values).unwrap());
            let tokens = plain(&t, &values).unwrap();
            proptest::prop_assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(),
                tokens.iter().map(Vec::len).collect::<Vec<_>>());
            proptest::prop_assert_eq!(clk_from_tokens(&encoder, &tokens), encode(&encoder, &values, &mut scratch));
        }
    }
}

/// Field by field through [`FieldTokenizer::texts`] and [`FieldTokenizer::text_tokens`], as a
/// party that keeps the normalised texts and tokenises a record when it is compared.
fn keyed_from_texts(t: &FieldTokenizer, values: &[&str]) -> Result<Vec<FieldTokens>, String> {
    let mut texts = Vec::new();
    let mut scratch = FieldTokenScratch::default();
    t.texts(values, &mut scratch, |f, text| {
        texts.push((f, text.to_owned()))
    })
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (f, text) in texts {
        assert_eq!(f, out.len());
        let mut tokens = vec![b"stale".to_vec()];
        t.text_tokens(f, &text, &mut scratch, &mut tokens)
            .map_err(|e| e.to_string())?;
        out.push(tokens);
    }
    Ok(out)
}

#[test]
fn texts_then_their_tokens_are_the_tokens_and_fail_as_they_do() {
    for (schema, values) in [
        (PEOPLE, &["  髙橋 ", "1985-04-03", "?"][..]),
        (PEOPLE, &["", "", "F"][..]),
        (PER_FIELD, &["x", "1985-02-30", "F"][..]),
        (PER_FIELD, &["x", "1985-01-01"][..]),
        (PER_FIELD, &["x", "2000-01-01", "cat"][..]),
    ] {
        let t = tokenizer(schema);
        assert_eq!(
            keyed_from_texts(&t, values),
            keyed(&t, values),
            "values {values:?}"
        );
    }
    let t = tokenizer(PEOPLE);
    let mut out = vec![b"stale".to_vec()];
    t.text_tokens(3, "x", &mut FieldTokenScratch::default(), &mut out)
        .unwrap();
    assert_eq!(out, Vec::<Vec<u8>>::new(), "no field 3");
}

proptest::proptest! {
    /// Kept as normalised texts and tokenised later, a record's fields are exactly the tokens
    /// made from its raw values, for random Latin, kana and kanji names (itaiji, full-width
    /// and space variants), dates and sexes.
    #[test]
    fn texts_then_tokens_equal_the_tokens(
        records in proptest::collection::vec((
            "[a-zA-Zａ-ｚアイウｱｲｳーｰ高髙橋嶋島齋斎 　]{0,12}",
            "(19[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))|[0-9/.年月日 ]{0,10}",
            "[MFmf男女? ]{0,2}",
        ), 1..20),
    ) {
        for schema in [PEOPLE, PER_FIELD] {
            let t = tokenizer(schema);
            for (name, dob, sex) in &records {
                let values = [name.as_str(), dob.as_str(), sex.as_str()];
                proptest::prop_assert_eq!(keyed_from_texts(&t, &values), keyed(&t, &values));
            }
        }
    }
}

proptest::proptest! {
    /// The same with the schema of `examples/peers` (kana and kanji names, date of birth,
    /// sex, address), as `validate` reads the synthetic registry.
    #[test]
    fn texts_then_tokens_equal_the_tokens_of_the_example_schema(
        records in proptest::collection::vec((
            "[ァ-ヶｦ-ﾟぁ-ゖー 　]{0,10}",
            "[高髙橋嶋島齋斎渡邊辺邉一-龯 　]{0,6}",
            "(19[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))|(昭和|平成|令和)?[0-9０-９]{0,2}年?[0-9]{0,2}月?[0-9]{0,2}日?",
            "[MFmf男女12? ]{0,2}",
            "[東京都千葉県印西市1-9０-９丁目番号ー\\- 　]{0,30}",
        ), 1..10),
    ) {
        let schema = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/peers/schema.toml"
        ))
        .unwrap();
        let t = tokenizer(&schema);
        for (kana, kanji, dob, sex, address) in &records {
            let values = [kana.as_str(), kanji.as_str(), dob.as_str(), sex.as_str(), address.as_str()];
            proptest::prop_assert_eq!(keyed_from_texts(&t, &values), keyed(&t, &values));
        }
    }
}
