use super::*;
use crate::LinkageSecret;
use crate::bits::{get_bit, popcount, set_bit};

fn check_error(schema: &str, expected: &str) {
    let err = NativeSchema::parse(schema).unwrap_err().to_string();
    assert_eq!(err, expected, "schema:\n{schema}");
}

const HEAD: &str = "version = 1\n[filter]\nbits = 256\n";
const NAME: &str =
    "[[field]]\ncolumn = \"name\"\ntokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 10\n";

#[test]
fn schema_errors_name_their_location() {
    check_error(
        "version = 2\n[filter]\nbits = 8\n",
        "version: native schema version 2 is not supported (only 1)",
    );
    check_error(
        "version = 1\n[filter]\nbits = 0\n",
        "filter.bits: 0 is outside 1..=65536",
    );
    check_error(HEAD, "field: the schema has no [[field]]");
    check_error(
        "version = 1\n[filter]\nbits = 8\ncolour = 1\n",
        "line 4, column 1: unknown field `colour`, expected `bits` or `layout`",
    );
    check_error(
        "version = 1\n[filter\n",
        "line 2, column 8: unclosed table, expected `]`",
    );
    check_error(
        &format!(
            "{HEAD}[[field]]\ncolumn = \"a\"\nnormalise = [\"nfkc\", \"rot13\"]\ntokens = {{ kind = \"exact\" }}\nbits_per_token = 5\n"
        ),
        "field[0] 'a'.normalise: unknown normalisation step 'rot13'",
    );
    check_error(
        &format!(
            "{HEAD}[[field]]\ncolumn = \"a\"\ntokens = {{ kind = \"exact\" }}\nbits_per_token = 5\nbits_per_field = 9\n"
        ),
        "field[0] 'a': give exactly one of bits_per_token or bits_per_field",
    );
    check_error(
        &format!(
            "{HEAD}[[field]]\ncolumn = \"a\"\ntokens = {{ kind = \"ngram\", n = 0 }}\nbits_per_token = 5\n"
        ),
        "field[0] 'a'.tokens.n: 0 is outside 1..=16",
    );
    check_error(
        &format!(
            "{HEAD}[[field]]\ncolumn = \"a\"\ntokens = {{ kind = \"exact\" }}\nbits_per_token = 5\nmissing = \"ignore\"\n"
        ),
        "field[0] 'a'.missing: 'ignore' is not \"skip\", \"reject\" or { replace = \"...\" }",
    );
    check_error(
        &format!("{HEAD}{NAME}{NAME}"),
        "field[1] 'name'.column: column 'name' is used by two fields",
    );
    check_error(
        &format!("{HEAD}{NAME}[[harden]]\nstep = \"salt\"\ncolumn = \"name\"\n"),
        "harden[0]: the salt column 'name' is also a field: salt with a value that is not encoded",
    );
    check_error(
        &format!("{HEAD}{NAME}[[harden]]\nstep = \"blip\"\nepsilon = -1.0\n"),
        "harden[0]: epsilon must be a positive number, found -1",
    );
    check_error(
        &format!("{HEAD}{NAME}[[harden]]\nstep = \"xor-fold\"\ntimes = 6\n"),
        "harden[0]: folding 256 bits 6 times leaves fewer than 8 bits",
    );
    check_error(
        "version = 1\n[filter]\nbits = 100\nlayout = \"rbf\"\n[[field]]\ncolumn = \"a\"\ntokens = { kind = \"exact\" }\nbits_per_token = 5\nrbf_bits = 50\nrbf_sample = 60\n",
        "filter.bits: the rbf_sample of the fields add up to 60, not to filter.bits = 100",
    );
}

fn encoder(schema: &str, secret: &[u8]) -> NativeEncoder {
    let schema = NativeSchema::parse(schema).unwrap();
    NativeEncoder::new(
        &schema,
        &LinkageSecret::from_bytes(secret.to_vec()).unwrap(),
    )
    .unwrap()
}

fn encode(e: &NativeEncoder, values: &[&str]) -> Result<Vec<u8>, String> {
    let mut out = vec![0; e.bytes_per_clk()];
    e.encode(values, 0, &mut NativeScratch::default(), &mut out, None)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

const PEOPLE: &str = r#"
version = 1
[filter]
bits = 512
[[field]]
column = "surname"
normalise = ["nfkc", "itaiji", "katakana", "whitespace"]
tokens = { kind = "ngram", n = 2 }
bits_per_token = 15
[[field]]
column = "dob"
normalise = ["date"]
tokens = { kind = "ngram", n = 1, positional = true }
bits_per_field = 60
missing = "reject"
"#;

#[test]
fn normalisation_makes_variants_agree() {
    let e = encoder(PEOPLE, b"secret");
    let a = encode(&e, &["髙橋", "1985-04-03"]).unwrap();
    assert_eq!(encode(&e, &["高橋", "昭和60年4月3日"]).unwrap(), a);
    assert_ne!(encode(&e, &["高橋", "1985-04-04"]).unwrap(), a);
}

#[test]
fn keys_come_from_the_secret() {
    let a = encode(&encoder(PEOPLE, b"secret"), &["Smith", "1980-01-01"]).unwrap();
    let b = encode(&encoder(PEOPLE, b"other secret"), &["Smith", "1980-01-01"]).unwrap();
    assert_ne!(a, b);
    assert_eq!(
        a,
        encode(&encoder(PEOPLE, b"secret"), &["Smith", "1980-01-01"]).unwrap()
    );
}

#[test]
fn bad_values_name_the_field() {
    let e = encoder(PEOPLE, b"secret");
    let err = encode(&e, &["Smith", "1980-02-30"]).unwrap_err();
    assert!(err.starts_with("field 'dob': "), "{err}");
    assert_eq!(
        encode(&e, &["Smith", ""]).unwrap_err(),
        "field 'dob': missing value"
    );
    assert_eq!(
        encode(&e, &["Smith"]).unwrap_err(),
        "record has 1 values when 2 are expected"
    );
    // Missing surname is skipped: only the date's bits are set.
    assert!(encode(&e, &["", "1980-01-01"]).is_ok());
}

#[test]
fn per_field_layout_keeps_fields_in_their_region() {
    let schema = "version = 1\n[filter]\nbits = 96\nlayout = \"per-field\"\n\
        [[field]]\ncolumn = \"a\"\ntokens = { kind = \"exact\" }\nbits_per_token = 10\nbits = 64\n\
        [[field]]\ncolumn = \"b\"\ntokens = { kind = \"exact\" }\nbits_per_token = 10\nbits = 32\n";
    let e = encoder(schema, b"k");
    let only_a = encode(&e, &["x", ""]).unwrap();
    let only_b = encode(&e, &["", "y"]).unwrap();
    assert!(only_a[8..].iter().all(|b| *b == 0) && popcount(&only_a) > 0);
    assert!(only_b[..8].iter().all(|b| *b == 0) && popcount(&only_b) > 0);
}

#[test]
fn rbf_samples_each_field_its_share() {
    let schema = "version = 1\n[filter]\nbits = 100\nlayout = \"rbf\"\n\
        [[field]]\ncolumn = \"a\"\ntokens = { kind = \"exact\" }\nbits_per_token = 10\nrbf_bits = 50\nrbf_sample = 70\n\
        [[field]]\ncolumn = \"b\"\ntokens = { kind = \"exact\" }\nbits_per_token = 10\nrbf_bits = 40\nrbf_sample = 30\n";
    let e = encoder(schema, b"k");
    assert_eq!(e.rbf_map.len(), 100);
    assert_eq!(e.rbf_map.iter().filter(|&&s| s < 50).count(), 70);
    assert_eq!(
        e.rbf_map.iter().filter(|&&s| (50..90).contains(&s)).count(),
        30
    );
    // Every record bit is the field bit it samples.
    let mut scratch = NativeScratch::default();
    let mut out = vec![0; e.bytes_per_clk()];
    e.encode(&["x", "y"], 0, &mut scratch, &mut out, None)
        .unwrap();
    let mut work = vec![0u8; 90usize.div_ceil(8)];
    for (i, (column, value)) in [("a", "x"), ("b", "y")].iter().enumerate() {
        let _ = column;
        let mut p = Vec::new();
        e.hashers[i].positions(
            &[],
            value.as_bytes(),
            10,
            e.schema().fields[i].own_bits,
            &mut p,
        );
        for q in p {
            set_bit(&mut work, e.offsets[i] + q as usize);
        }
    }
    for (j, &s) in e.rbf_map.iter().enumerate() {
        assert_eq!(
            get_bit(&out, j),
            get_bit(&work, s as usize),
            "record bit {j}"
        );
    }
}

#[test]
fn salt_changes_the_encoding_per_record_value() {
    let schema = format!("{HEAD}{NAME}[[harden]]\nstep = \"salt\"\ncolumn = \"year\"\n");
    let e = encoder(&schema, b"k");
    let a1985 = encode(&e, &["tanaka", "1985"]).unwrap();
    assert_eq!(encode(&e, &["tanaka", " 1985 "]).unwrap(), a1985);
    assert_ne!(encode(&e, &["tanaka", "1986"]).unwrap(), a1985);
    assert_eq!(e.schema().columns(), ["name", "year"]);
}

#[test]
fn hardening_chain_lengths_and_balance() {
    let schema = format!(
        "{HEAD}{NAME}[[harden]]\nstep = \"xor-fold\"\n[[harden]]\nstep = \"balance\"\n[[harden]]\nstep = \"rule90\"\n[[harden]]\nstep = \"permute\"\n"
    );
    let e = encoder(&schema, b"k");
    assert_eq!(e.schema().output_bits(), 256);
    let balanced = format!("{HEAD}{NAME}[[harden]]\nstep = \"balance\"\n");
    let b = encoder(&balanced, b"k");
    for name in ["a", "tanaka", "a much longer name than usual"] {
        assert_eq!(encode(&e, &[name]).unwrap().len(), 32);
        assert_eq!(popcount(&encode(&b, &[name]).unwrap()), 256);
    }
}

#[test]
fn blip_is_deterministic_per_encoder_and_record_index() {
    let schema = format!("{HEAD}{NAME}[[harden]]\nstep = \"blip\"\nepsilon = 1.0\n");
    let e = encoder(&schema, b"k");
    let run = |e: &NativeEncoder, index: u64| {
        let mut out = vec![0; 32];
        e.encode(
            &["tanaka"],
            index,
            &mut NativeScratch::default(),
            &mut out,
            None,
        )
        .unwrap();
        out
    };
    // One encoder (one run, any thread): the same record index gives the same flips.
    assert_eq!(run(&e, 3), run(&e, 3));
    assert_ne!(run(&e, 3), run(&e, 4));
    // Another encoder with the same schema and secret (the peer, or the next run) draws a
    // fresh seed, so its flips differ: they are not regenerable from the linkage secret.
    let other = encoder(&schema, b"k");
    assert_ne!(run(&e, 3), run(&other, 3));
    // A caller-chosen seed reproduces the flips across encoders.
    let (a, b) = (
        e.clone().with_blip_seed([7; 32]),
        other.with_blip_seed([7; 32]),
    );
    assert_eq!(run(&a, 3), run(&b, 3));
    assert_ne!(run(&a, 3), run(&e, 3));
}

#[test]
fn blip_flips_follow_the_seed_not_the_secret() {
    // With seed [7; 32], record 0 and ε = 1 (p ≈ 0.269), the flip mask of an empty record
    // depends on the seed alone: a different linkage secret gives the same mask.
    let schema = format!("{HEAD}{NAME}[[harden]]\nstep = \"blip\"\nepsilon = 1.0\n");
    let mask = |secret: &[u8]| {
        let e = encoder(&schema, secret).with_blip_seed([7; 32]);
        let mut out = vec![0; 32];
        e.encode(&[""], 0, &mut NativeScratch::default(), &mut out, None)
            .unwrap();
        out
    };
    assert_eq!(mask(b"k"), mask(b"another secret"));
    let flipped = popcount(&mask(b"k"));
    assert!(
        (40..=100).contains(&flipped),
        "{flipped} of 256 bits flipped"
    );
}

proptest::proptest! {
    /// The per-thread caches never change a CLK: a warm scratch space gives the same bytes as
    /// a fresh one, in every layout and with salting.
    #[test]
    fn caches_are_transparent(names in proptest::collection::vec("[a-c高髙]{0,4}", 1..30), layout in 0..3usize) {
        let schema = match layout {
            0 => format!("{HEAD}{NAME}[[harden]]\nstep = \"salt\"\ncolumn = \"year\"\n"),
            1 => "version = 1\n[filter]\nbits = 100\nlayout = \"per-field\"\n[[field]]\ncolumn = \"name\"\nnormalise = [\"itaiji\"]\ntokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 7\nbits = 37\n[[field]]\ncolumn = \"year\"\ntokens = { kind = \"exact\" }\nbits_per_token = 5\nbits = 63\n".to_owned(),
            _ => "version = 1\n[filter]\nbits = 64\nlayout = \"rbf\"\n[[field]]\ncolumn = \"name\"\ntokens = { kind = \"ngram\", n = 2 }\nbits_per_token = 7\nrbf_bits = 37\nrbf_sample = 40\n[[field]]\ncolumn = \"year\"\ntokens = { kind = \"exact\" }\nbits_per_token = 5\nrbf_bits = 50\nrbf_sample = 24\n".to_owned(),
        };
        let e = encoder(&schema, b"k");
        let mut warm = NativeScratch::default();
        for (i, name) in names.iter().enumerate() {
            let year = if i % 2 == 0 { "1985" } else { "1990" };
            let mut a = vec![0; e.bytes_per_clk()];
            let mut b = vec![0; e.bytes_per_clk()];
            let (mut pa, mut pb) = (Vec::new(), Vec::new());
            e.encode(&[name, year], 0, &mut warm, &mut a, Some(&mut pa)).unwrap();
            e.encode(&[name, year], 0, &mut NativeScratch::default(), &mut b, Some(&mut pb)).unwrap();
            proptest::prop_assert_eq!(a, b);
            proptest::prop_assert_eq!(pa, pb);
        }
    }
}

#[test]
fn every_broken_field_is_reported() {
    let schema = format!(
        "{HEAD}[[field]]\ncolumn = \"a\"\ntokens = {{ kind = \"exact\" }}\n\
         [[field]]\ncolumn = \"b\"\ntokens = {{ kind = \"exact\" }}\nbits_per_token = 5\n\
         [[field]]\ncolumn = \"c\"\nnormalise = [\"nope\"]\ntokens = {{ kind = \"exact\" }}\nbits_per_token = 5\n"
    );
    check_error(
        &schema,
        "field[0] 'a': give exactly one of bits_per_token or bits_per_field; \
         field[2] 'c'.normalise: unknown normalisation step 'nope'",
    );
}

/// Pins native hashing: a change to key derivation, position mapping or bit order must be a
/// deliberate, versioned change (the domain tag says `blindlink/v1`).
#[test]
fn native_golden_vector() {
    use base64::Engine as _;
    let e = encoder(PEOPLE, b"blindlink golden vector secret");
    let clk = encode(&e, &["髙橋", "1985-04-03"]).unwrap();
    let hardened = encoder(
        &format!(
            "{HEAD}{NAME}[[harden]]\nstep = \"balance\"\n[[harden]]\nstep = \"xor-fold\"\n[[harden]]\nstep = \"rule90\"\n[[harden]]\nstep = \"permute\"\n"
        ),
        b"blindlink golden vector secret",
    );
    let hardened = encode(&hardened, &["tanaka"]).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        b64.encode(&clk),
        "AQAEiAAIRCqFACDkAIgIMlEihTAiAAgAIiAQVMBAgAAAIgoONgIIAgAIQKgCUAMAQAiZCQABkQwAABgAQgCKGA=="
    );
    assert_eq!(
        b64.encode(&hardened),
        "CjfDXTEGwFYxHXYBAj/OSWxg9Bx7cQEVgEDBwu0FT6w="
    );
}

#[test]
fn comparison_levels_are_declared_per_field() {
    let with = |levels: &str| format!("{HEAD}{NAME}levels = {levels}\n");
    let schema = NativeSchema::parse(&with(
        "[{ label = \"exact\", min_dice = 1.0, m = 0.9, u = 0.1 }, \
         { label = \"other\", min_dice = 0.0, veto = true, m = 0.1, u = 0.9 }]",
    ))
    .unwrap();
    let levels = schema.fields[0].levels.as_ref().unwrap();
    assert_eq!(
        levels[1],
        DeclaredLevel {
            label: "other".into(),
            min_dice: 0.0,
            veto: true,
            m: Some(0.1),
            u: Some(0.9),
        }
    );
    assert_eq!(schema.fields[0].token_kind(), FieldTokenKind::Ngram);
    assert!(
        NativeSchema::parse(&format!("{HEAD}{NAME}"))
            .unwrap()
            .fields[0]
            .levels
            .is_none()
    );
    for (levels, expected) in [
        (
            "[]",
            "field[0] 'name'.levels: no level declared (leave levels out for the token kind's \
             defaults)",
        ),
        (
            "[{ label = \"a\", min_dice = 1.5 }, { label = \"b\", min_dice = 0.0 }]",
            "field[0] 'name'.levels: level 'a' has min_dice 1.5, expected a number in [0, 1]",
        ),
        (
            "[{ label = \"a\", min_dice = 1.0, m = 0.9 }, { label = \"b\", min_dice = 0.0 }]",
            "field[0] 'name'.levels: m is given on 1 of 2 levels: give it on every level or none",
        ),
        (
            "[{ label = \"\", min_dice = 1.0 }, { label = \"b\", min_dice = 0.0 }]",
            "field[0] 'name'.levels: level 0 has an empty label",
        ),
    ] {
        check_error(&with(levels), expected);
    }
}
