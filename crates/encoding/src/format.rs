//! CLK files: anonlink's JSON (`{"clks": [base64, ...]}`) and blindlink's compact binary format.
//!
//! [`read_clks`] detects the format from the first bytes, so callers never say which one they
//! hold. Both readers treat their input as hostile: sizes are bounded before anything is
//! allocated, every CLK must have the same length, and trailing data is an error.
//!
//! The binary format is little-endian:
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 8 | magic `BLNKCLK\0` |
//! | 8 | 2 | format version (1) |
//! | 10 | 2 | reserved, zero |
//! | 12 | 4 | filter length in bits |
//! | 16 | 8 | number of CLKs |
//! | 24 | 32 | schema digest (SHA-256 of the schema file; zero when unknown) |
//! | 56 | count × ⌈bits/8⌉ | the CLKs, bit 0 being the most significant bit of byte 0 |

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::EncodingError;

/// The first eight bytes of a binary CLK file.
pub const BINARY_MAGIC: [u8; 8] = *b"BLNKCLK\0";
/// The binary format version this crate writes and reads.
pub const BINARY_VERSION: u16 = 1;
/// Length of the binary header in bytes.
pub const BINARY_HEADER_LEN: usize = 56;
/// The longest filter accepted from a file, in bits (128 KiB per CLK).
pub const MAX_FILTER_BITS: usize = 1 << 20;

/// A set of equally long CLKs stored contiguously, `bytes_per_clk()` bytes each.
#[derive(Clone, PartialEq, Eq)]
pub struct ClkSet {
    filter_bits: usize,
    bytes_per_clk: usize,
    count: usize,
    data: Vec<u8>,
    schema_digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for ClkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClkSet")
            .field("filter_bits", &self.filter_bits)
            .field("len", &self.count)
            .finish_non_exhaustive()
    }
}

impl ClkSet {
    /// An empty set of CLKs of `filter_bits` bits each.
    ///
    /// # Errors
    /// [`EncodingError::ClkFile`] when `filter_bits` is zero or above [`MAX_FILTER_BITS`].
    pub fn new(filter_bits: usize) -> Result<Self, EncodingError> {
        if filter_bits == 0 || filter_bits > MAX_FILTER_BITS {
            return Err(EncodingError::clk_file(format!(
                "filter length {filter_bits} bits is outside 1..={MAX_FILTER_BITS}"
            )));
        }
        Ok(Self {
            filter_bits,
            bytes_per_clk: filter_bits.div_ceil(8),
            count: 0,
            data: Vec::new(),
            schema_digest: None,
        })
    }

    /// Appends one CLK.
    ///
    /// # Errors
    /// [`EncodingError::ClkFile`] when `clk` is not `bytes_per_clk()` bytes long.
    pub fn push(&mut self, clk: &[u8]) -> Result<(), EncodingError> {
        if clk.len() != self.bytes_per_clk {
            return Err(EncodingError::clk_file(format!(
                "record {}: clk has {} bytes when {} are expected",
                self.count,
                clk.len(),
                self.bytes_per_clk
            )));
        }
        self.data.extend_from_slice(clk);
        self.count += 1;
        Ok(())
    }

    /// Records the digest of the schema that produced these CLKs (written to binary files).
    pub fn set_schema_digest(&mut self, digest: [u8; 32]) {
        self.schema_digest = Some(digest);
    }

    /// The schema digest read from a binary file or set by the encoder, if any.
    #[must_use]
    pub fn schema_digest(&self) -> Option<[u8; 32]> {
        self.schema_digest
    }

    /// Length of every CLK in bits.
    #[must_use]
    pub fn filter_bits(&self) -> usize {
        self.filter_bits
    }

    /// Number of CLKs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no CLKs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes per CLK: `ceil(filter_bits / 8)`.
    #[must_use]
    pub fn bytes_per_clk(&self) -> usize {
        self.bytes_per_clk
    }

    /// The `i`-th CLK.
    ///
    /// # Panics
    /// When `i >= len()`, like slice indexing.
    #[must_use]
    pub fn get(&self, i: usize) -> &[u8] {
        assert!(
            i < self.count,
            "clk index {i} out of range 0..{}",
            self.count
        );
        &self.data[i * self.bytes_per_clk..(i + 1) * self.bytes_per_clk]
    }

    /// All CLKs, contiguous, CLK `i` at `i * bytes_per_clk()`.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Iterates over the CLKs in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.data.chunks_exact(self.bytes_per_clk)
    }
}

/// The two CLK file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClkFormat {
    /// anonlink's `{"clks": [base64, ...]}`.
    Json,
    /// blindlink's binary format with a header (see the module documentation).
    Binary,
}

/// Reads a CLK file in either format, detected from its first bytes.
///
/// JSON CLKs must be standard padded base64 of equal length; their filter length is taken to be
/// 8 × their byte length, as anonlink does.
///
/// # Errors
/// [`EncodingError::ClkFile`] for an unreadable, empty or malformed file: bad magic or version,
/// a CLK whose base64 is malformed (naming the record index), CLKs of mixed lengths, no CLKs
/// at all, truncated or trailing data.
///
/// # Example
/// ```
/// use blindlink_encoding::format::read_clks;
/// let clks = read_clks(&br#"{"clks": ["8A==", "Dw=="]}"#[..])?;
/// assert_eq!((clks.len(), clks.filter_bits()), (2, 8));
/// assert_eq!(clks.get(1), &[0x0f]);
/// # Ok::<(), blindlink_encoding::EncodingError>(())
/// ```
pub fn read_clks(input: impl Read) -> Result<ClkSet, EncodingError> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let first = reader
        .fill_buf()
        .map_err(|e| EncodingError::clk_file(format!("cannot read: {e}")))?;
    if first.is_empty() {
        return Err(EncodingError::clk_file("the file is empty"));
    }
    if first.starts_with(&BINARY_MAGIC[..first.len().min(BINARY_MAGIC.len())])
        && first[0] == BINARY_MAGIC[0]
    {
        read_binary(reader)
    } else {
        read_json(reader)
    }
}

fn io_error(e: &std::io::Error) -> EncodingError {
    EncodingError::clk_file(format!("cannot read: {e}"))
}

fn read_binary(mut reader: impl Read) -> Result<ClkSet, EncodingError> {
    let mut header = [0u8; BINARY_HEADER_LEN];
    reader.read_exact(&mut header).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            EncodingError::clk_file("binary header is truncated")
        } else {
            io_error(&e)
        }
    })?;
    if header[..8] != BINARY_MAGIC {
        return Err(EncodingError::clk_file(
            "not a blindlink binary clk file (bad magic)",
        ));
    }
    let version = u16::from_le_bytes([header[8], header[9]]);
    if version != BINARY_VERSION {
        return Err(EncodingError::clk_file(format!(
            "binary format version {version} is not supported (expected {BINARY_VERSION})"
        )));
    }
    if header[10..12] != [0, 0] {
        return Err(EncodingError::clk_file(
            "reserved header bytes are not zero",
        ));
    }
    let filter_bits = u32::from_le_bytes(header[12..16].try_into().unwrap_or_default()) as usize;
    let count = u64::from_le_bytes(header[16..24].try_into().unwrap_or_default());
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&header[24..56]);
    let mut set = ClkSet::new(filter_bits)?;
    if digest != [0u8; 32] {
        set.set_schema_digest(digest);
    }
    if count == 0 {
        return Err(EncodingError::clk_file("the file holds no clks"));
    }
    let expected = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(set.bytes_per_clk))
        .ok_or_else(|| EncodingError::clk_file(format!("clk count {count} is too large")))?;
    // Never trust the header for an allocation: grow with the data actually present.
    let mut data = Vec::with_capacity(expected.min(1 << 24));
    let read = reader
        .by_ref()
        .take(expected as u64)
        .read_to_end(&mut data)
        .map_err(|e| io_error(&e))?;
    if read != expected {
        return Err(EncodingError::clk_file(format!(
            "truncated: the header announces {count} clks ({expected} bytes) but {read} bytes follow"
        )));
    }
    let mut probe = [0u8; 1];
    if reader.read(&mut probe).map_err(|e| io_error(&e))? != 0 {
        return Err(EncodingError::clk_file("trailing data after the last clk"));
    }
    set.data = data;
    set.count = count as usize;
    Ok(set)
}

fn read_json(reader: impl Read) -> Result<ClkSet, EncodingError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    let file: JsonClkFile = serde::Deserialize::deserialize(&mut de).map_err(|e| {
        // Errors raised by our visitor carry their own text; serde_json appends the position.
        EncodingError::clk_file(format!("not an anonlink json clk file: {e}"))
    })?;
    de.end().map_err(|e| {
        EncodingError::clk_file(format!("trailing data after the json object: {e}"))
    })?;
    file.0
        .ok_or_else(|| EncodingError::clk_file("no \"clks\" array in the json object"))
}

/// The JSON document, decoded CLK by CLK into one contiguous buffer.
struct JsonClkFile(Option<ClkSet>);

impl<'de> serde::Deserialize<'de> for JsonClkFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
            type Value = JsonClkFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object with a \"clks\" array of base64 strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut clks = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "clks" {
                        if clks.is_some() {
                            return Err(serde::de::Error::custom("duplicate \"clks\" key"));
                        }
                        clks = Some(map.next_value::<ClkArray>()?.0);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(JsonClkFile(clks))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ClkArray(ClkSet);

impl<'de> serde::Deserialize<'de> for ClkArray {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArrayVisitor;
        impl<'de> serde::de::Visitor<'de> for ArrayVisitor {
            type Value = ClkArray;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of base64 strings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error as _;
                let mut set: Option<ClkSet> = None;
                let mut scratch = Vec::new();
                let mut index = 0usize;
                while let Some(text) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    scratch.clear();
                    BASE64
                        .decode_vec(text.as_bytes(), &mut scratch)
                        .map_err(|e| {
                            A::Error::custom(format!("record {index}: malformed base64 ({e})"))
                        })?;
                    let set = match &mut set {
                        Some(set) => set,
                        None => {
                            let bits = scratch.len().saturating_mul(8);
                            set.insert(ClkSet::new(bits).map_err(|_| {
                                A::Error::custom(format!(
                                    "record {index}: clk length {} bytes is outside 1..={}",
                                    scratch.len(),
                                    MAX_FILTER_BITS / 8
                                ))
                            })?)
                        }
                    };
                    if scratch.len() != set.bytes_per_clk {
                        return Err(A::Error::custom(format!(
                            "record {index}: clk has {} bytes when record 0 has {} (mixed lengths)",
                            scratch.len(),
                            set.bytes_per_clk
                        )));
                    }
                    set.data.extend_from_slice(&scratch);
                    set.count += 1;
                    index += 1;
                }
                set.map(ClkArray)
                    .ok_or_else(|| A::Error::custom("the \"clks\" array is empty"))
            }
        }
        deserializer.deserialize_seq(ArrayVisitor)
    }
}

/// Writes `clks` in the given format.
///
/// # Errors
/// The writer's I/O error.
pub fn write_clks(clks: &ClkSet, format: ClkFormat, out: impl Write) -> std::io::Result<()> {
    match format {
        ClkFormat::Json => write_json(clks, out),
        ClkFormat::Binary => write_binary(clks, out),
    }
}

/// Writes anonlink's JSON: `{"clks": ["base64", ...]}`, one CLK per line.
///
/// # Errors
/// The writer's I/O error.
pub fn write_json(clks: &ClkSet, mut out: impl Write) -> std::io::Result<()> {
    out.write_all(JSON_OPENING)?;
    write_json_items(
        &mut out,
        &clks.data,
        clks.bytes_per_clk,
        0,
        &mut String::new(),
    )?;
    out.write_all(JSON_CLOSING)
}

/// Writes the binary format described in the module documentation.
///
/// # Errors
/// The writer's I/O error.
pub fn write_binary(clks: &ClkSet, mut out: impl Write) -> std::io::Result<()> {
    out.write_all(&binary_header(
        clks.filter_bits,
        clks.count as u64,
        clks.schema_digest,
    ))?;
    out.write_all(&clks.data)
}

const JSON_OPENING: &[u8] = b"{\"clks\": [";
const JSON_CLOSING: &[u8] = b"\n]}\n";

/// Writes the contiguous CLKs in `data` as JSON array items, after `written` earlier items.
fn write_json_items(
    out: &mut impl Write,
    data: &[u8],
    bytes_per_clk: usize,
    written: u64,
    text: &mut String,
) -> std::io::Result<()> {
    for (i, clk) in data.chunks_exact(bytes_per_clk).enumerate() {
        text.clear();
        text.push_str(if written == 0 && i == 0 {
            "\n\""
        } else {
            ",\n\""
        });
        BASE64.encode_string(clk, text);
        text.push('"');
        out.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// The binary format's header.
fn binary_header(
    filter_bits: usize,
    count: u64,
    schema_digest: Option<[u8; 32]>,
) -> [u8; BINARY_HEADER_LEN] {
    let mut header = [0u8; BINARY_HEADER_LEN];
    header[..8].copy_from_slice(&BINARY_MAGIC);
    header[8..10].copy_from_slice(&BINARY_VERSION.to_le_bytes());
    let bits = u32::try_from(filter_bits).unwrap_or(u32::MAX);
    header[12..16].copy_from_slice(&bits.to_le_bytes());
    header[16..24].copy_from_slice(&count.to_le_bytes());
    header[24..56].copy_from_slice(&schema_digest.unwrap_or_default());
    header
}

/// Writes CLKs as they are produced, in either format, without holding them in memory: the
/// streaming counterpart of [`write_clks`], giving byte-identical files.
///
/// The binary header carries the number of CLKs, which is known only at the end, so
/// [`ClkWriter::finish`] seeks back to fill it in; the output must therefore be seekable (a
/// file, or a `Cursor`).
///
/// # Example
/// ```
/// use blindlink_encoding::format::{ClkFormat, ClkWriter, read_clks};
/// let out = std::io::Cursor::new(Vec::new());
/// let mut writer = ClkWriter::new(out, ClkFormat::Binary, 8, None)?;
/// writer.write(&[0xf0, 0x0f])?; // two 8-bit CLKs
/// writer.write(&[0xff])?;
/// let bytes = writer.finish()?.into_inner();
/// let clks = read_clks(&bytes[..])?;
/// assert_eq!((clks.len(), clks.get(2)), (3, &[0xff][..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ClkWriter<W: Write + Seek> {
    out: W,
    format: ClkFormat,
    filter_bits: usize,
    bytes_per_clk: usize,
    schema_digest: Option<[u8; 32]>,
    /// Where the file starts in `out` (the binary header is rewritten there).
    start: u64,
    count: u64,
    text: String,
}

impl<W: Write + Seek> ClkWriter<W> {
    /// Starts a file of `filter_bits`-bit CLKs in `out`: the JSON opening, or the binary
    /// header with a count of zero until [`finish`](Self::finish).
    ///
    /// # Errors
    /// `InvalidInput` when `filter_bits` is zero or above [`MAX_FILTER_BITS`]; the writer's
    /// I/O error.
    pub fn new(
        mut out: W,
        format: ClkFormat,
        filter_bits: usize,
        schema_digest: Option<[u8; 32]>,
    ) -> std::io::Result<Self> {
        let bytes_per_clk = ClkSet::new(filter_bits)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?
            .bytes_per_clk;
        let start = out.stream_position()?;
        match format {
            ClkFormat::Json => out.write_all(JSON_OPENING)?,
            ClkFormat::Binary => out.write_all(&binary_header(filter_bits, 0, schema_digest))?,
        }
        Ok(Self {
            out,
            format,
            filter_bits,
            bytes_per_clk,
            schema_digest,
            start,
            count: 0,
            text: String::new(),
        })
    }

    /// Appends the CLKs stored contiguously in `clks`.
    ///
    /// # Errors
    /// `InvalidInput` when `clks` is not a whole number of CLKs; the writer's I/O error.
    pub fn write(&mut self, clks: &[u8]) -> std::io::Result<()> {
        if !clks.len().is_multiple_of(self.bytes_per_clk) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} bytes are not a whole number of {}-byte CLKs",
                    clks.len(),
                    self.bytes_per_clk
                ),
            ));
        }
        match self.format {
            ClkFormat::Json => write_json_items(
                &mut self.out,
                clks,
                self.bytes_per_clk,
                self.count,
                &mut self.text,
            )?,
            ClkFormat::Binary => self.out.write_all(clks)?,
        }
        self.count += (clks.len() / self.bytes_per_clk) as u64;
        Ok(())
    }

    /// The number of CLKs written so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no CLK has been written yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Completes the file (the JSON closing, or the binary header's count) and returns the
    /// writer, positioned at the end of the file.
    /// A file with no CLKs is complete and well-formed, although [`read_clks`] refuses it.
    ///
    /// # Errors
    /// The writer's I/O error.
    pub fn finish(mut self) -> std::io::Result<W> {
        match self.format {
            ClkFormat::Json => self.out.write_all(JSON_CLOSING)?,
            ClkFormat::Binary => {
                let end = self.out.stream_position()?;
                self.out.seek(SeekFrom::Start(self.start))?;
                let header = binary_header(self.filter_bits, self.count, self.schema_digest);
                self.out.write_all(&header)?;
                self.out.seek(SeekFrom::Start(end))?;
            }
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(bits: usize, clks: &[&[u8]]) -> ClkSet {
        let mut s = ClkSet::new(bits).unwrap();
        for c in clks {
            s.push(c).unwrap();
        }
        s
    }

    /// Reads `input`; `expected` is `Ok((bits, count))` or the exact error text.
    fn check(input: &[u8], expected: Result<(usize, usize), &str>) {
        let got = read_clks(input)
            .map(|s| (s.filter_bits(), s.len()))
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map_err(str::to_owned),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn json_cases() {
        check(br#"{"clks": ["8A==", "Dw=="]}"#, Ok((8, 2)));
        check(b"  \n{\"clks\":[\"AAAA\"], \"other\": 1}\n", Ok((24, 1)));
        check(b"", Err("clk file: the file is empty"));
        check(
            br#"{"clks": []}"#,
            Err(
                "clk file: not an anonlink json clk file: the \"clks\" array is empty at line 1 column 11",
            ),
        );
        check(
            br#"{"x": []}"#,
            Err("clk file: no \"clks\" array in the json object"),
        );
        check(
            br#"{"clks": ["8A==", "8A=!"]}"#,
            Err(
                "clk file: not an anonlink json clk file: record 1: malformed base64 (Invalid symbol 61, offset 2.) at line 1 column 25",
            ),
        );
        check(
            br#"{"clks": ["8A==", "AAAA"]}"#,
            Err(
                "clk file: not an anonlink json clk file: record 1: clk has 3 bytes when record 0 has 1 (mixed lengths) at line 1 column 25",
            ),
        );
        check(
            br#"{"clks": ["8A=="]} x"#,
            Err(
                "clk file: trailing data after the json object: trailing characters at line 1 column 20",
            ),
        );
        check(
            br#"{"clks": [""]}"#,
            Err(
                "clk file: not an anonlink json clk file: record 0: clk length 0 bytes is outside 1..=131072 at line 1 column 13",
            ),
        );
        check(
            b"garbage",
            Err("clk file: not an anonlink json clk file: expected value at line 1 column 1"),
        );
    }

    #[test]
    fn binary_round_trip_and_cases() {
        let mut clks = set(12, &[&[0xff, 0xf0], &[0x01, 0x00]]);
        clks.set_schema_digest([7; 32]);
        let mut bytes = Vec::new();
        write_binary(&clks, &mut bytes).unwrap();
        assert_eq!(bytes.len(), BINARY_HEADER_LEN + 4);
        assert_eq!(read_clks(&bytes[..]).unwrap(), clks);
        check(
            &bytes[..BINARY_HEADER_LEN + 3],
            Err("clk file: truncated: the header announces 2 clks (4 bytes) but 3 bytes follow"),
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        check(&trailing, Err("clk file: trailing data after the last clk"));
        check(&bytes[..20], Err("clk file: binary header is truncated"));
        let mut version = bytes.clone();
        version[8] = 2;
        check(
            &version,
            Err("clk file: binary format version 2 is not supported (expected 1)"),
        );
        let mut huge = bytes.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        check(
            &huge,
            Err("clk file: clk count 18446744073709551615 is too large"),
        );
        let mut zero_bits = bytes.clone();
        zero_bits[12..16].copy_from_slice(&0u32.to_le_bytes());
        check(
            &zero_bits,
            Err("clk file: filter length 0 bits is outside 1..=1048576"),
        );
    }

    #[test]
    fn json_round_trip() {
        let clks = set(16, &[&[0xde, 0xad], &[0xbe, 0xef], &[0, 0]]);
        let mut text = Vec::new();
        write_json(&clks, &mut text).unwrap();
        let back = read_clks(&text[..]).unwrap();
        assert_eq!(back.as_bytes(), clks.as_bytes());
        assert_eq!(back.get(1), &[0xbe, 0xef]);
        assert_eq!(back.bytes_per_clk(), 2);
    }

    #[test]
    fn streamed_files_have_exact_bytes_and_reject_partial_clks() {
        let mut json =
            ClkWriter::new(std::io::Cursor::new(Vec::new()), ClkFormat::Json, 12, None).unwrap();
        json.write(&[0xde, 0xa0, 0xbe, 0xe0]).unwrap();
        let error = json.write(&[1, 2, 3]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "3 bytes are not a whole number of 2-byte CLKs"
        );
        assert_eq!(json.len(), 2);
        let text = json.finish().unwrap().into_inner();
        assert_eq!(text, b"{\"clks\": [\n\"3qA=\",\n\"vuA=\"\n]}\n");
        let error = ClkWriter::new(std::io::Cursor::new(Vec::new()), ClkFormat::Binary, 0, None)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "clk file: filter length 0 bits is outside 1..=1048576"
        );
    }

    /// The binary header is rewritten where the file started, not at offset 0 of the writer.
    #[test]
    fn streamed_binary_file_may_start_inside_a_writer() {
        let mut out = std::io::Cursor::new(b"prefix".to_vec());
        out.seek(SeekFrom::End(0)).unwrap();
        let mut writer = ClkWriter::new(out, ClkFormat::Binary, 8, Some([7; 32])).unwrap();
        writer.write(&[1, 2]).unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        assert_eq!(&bytes[..6], b"prefix");
        let mut clks = set(8, &[&[1], &[2]]);
        clks.set_schema_digest([7; 32]);
        let mut expected = Vec::new();
        write_binary(&clks, &mut expected).unwrap();
        assert_eq!(&bytes[6..], &expected[..]);
    }

    proptest::proptest! {
        /// Streaming in arbitrary pieces writes exactly what writing the whole set writes.
        #[test]
        fn streaming_equals_writing_the_whole_set(
            bits in 1usize..40,
            count in 0usize..20,
            seed in proptest::prelude::any::<u8>(),
            pieces in proptest::collection::vec(0usize..5, 0..20),
            binary in proptest::prelude::any::<bool>(),
        ) {
            let bytes = bits.div_ceil(8);
            let data: Vec<u8> = (0..count * bytes).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let mut clks = ClkSet::new(bits).unwrap();
            for clk in data.chunks_exact(bytes) {
                clks.push(clk).unwrap();
            }
            clks.set_schema_digest([seed; 32]);
            let format = if binary { ClkFormat::Binary } else { ClkFormat::Json };
            let mut whole = Vec::new();
            write_clks(&clks, format, &mut whole).unwrap();
            let mut writer = ClkWriter::new(
                std::io::Cursor::new(Vec::new()), format, bits, Some([seed; 32]),
            ).unwrap();
            let mut rest = &data[..];
            for piece in pieces.iter().chain(std::iter::once(&count)) {
                let (now, later) = rest.split_at((piece * bytes).min(rest.len()));
                writer.write(now).unwrap();
                rest = later;
            }
            proptest::prop_assert_eq!(writer.len(), count as u64);
            proptest::prop_assert_eq!(writer.finish().unwrap().into_inner(), whole);
        }

        #[test]
        fn binary_reader_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut input = BINARY_MAGIC.to_vec();
            input.extend_from_slice(&bytes);
            let _ = read_clks(&input[..]);
            let _ = read_clks(&bytes[..]);
        }
    }
}
