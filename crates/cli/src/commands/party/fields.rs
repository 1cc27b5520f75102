//! Per-field filters cut out of a `per-field` layout CLK, for `validate`'s field-by-field
//! comparison of quasi-identifiers.

use blindlink_encoding::Schema;
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
