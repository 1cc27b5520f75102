//! `read_clks` on arbitrary bytes. When a file is accepted, writing the set back in the format
//! that was detected and reading it again gives the same set; the binary format is canonical
//! (the bytes written are the bytes read), and any accepted set survives the binary format.
#![no_main]

use blindlink_encoding::format::{BINARY_MAGIC, ClkFormat, read_clks, write_clks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(set) = read_clks(data) else {
        return;
    };
    assert!(!set.is_empty(), "read_clks accepted a file without clks");
    assert_eq!(set.as_bytes().len(), set.len() * set.bytes_per_clk());
    // An accepted binary file is at least a whole header, so it starts with the whole magic.
    let format = if data.starts_with(&BINARY_MAGIC) {
        ClkFormat::Binary
    } else {
        ClkFormat::Json
    };
    let written = write(&set, format);
    let again = read_clks(written.as_slice()).expect("a written clk file reads back");
    assert_eq!(again, set, "{format:?} round trip changed the set");
    assert_eq!(again.schema_digest(), set.schema_digest());
    if format == ClkFormat::Binary {
        assert_eq!(written, data, "the binary format is not canonical");
    }
    // Binary keeps everything (filter length, digest), whatever the source format.
    let binary = write(&set, ClkFormat::Binary);
    let from_binary = read_clks(binary.as_slice()).expect("a written binary file reads back");
    assert_eq!(from_binary, set, "binary round trip changed the set");
});

fn write(set: &blindlink_encoding::format::ClkSet, format: ClkFormat) -> Vec<u8> {
    let mut out = Vec::new();
    write_clks(set, format, &mut out).expect("writing to a vector cannot fail");
    out
}
