//! Byte encodings of the mode messages that are not PSI messages (those use the `blindlink-psi`
//! wire format). Big-endian counts, fixed-width items; every decoder checks each count against
//! what the receiving state expects, and rejects trailing bytes.
//!
//! | kind | body |
//! |---|---|
//! | `intersection_size` | `size: u64` |
//! | `field_clks` | `pairs: u32`, `fields: u16`, `field_bytes: u32`, `pairs × fields × field_bytes` |
//! | `candidate_clks` | `count: u32`, `clk_bytes: u32`, per record: `clk_bytes`, `n: u16`, `n × u32` ascending token indices |
//! | `all_clks` | `count: u32`, `clk_bytes: u32`, `count × clk_bytes` |
//! | `pair_scores` | `pairs: u32`, per pair: `score: u32` (millionths), `flagged: u8` |
//! | `link_ids` | `count: u32`, per link: `position: u32` (strictly ascending), `link id: 32 bytes`, `score: u32` (millionths) |

use crate::ProtocolError;
use crate::wire::{WireReader, WireWriter};

/// Scores travel as millionths, so both sides hold the very same value.
pub(crate) fn quantise(score: f64) -> u32 {
    (score.clamp(0.0, 1.0) * 1_000_000.0).round() as u32
}

pub(crate) fn dequantise(millionths: u32) -> f64 {
    f64::from(millionths) / 1_000_000.0
}

fn invalid(what: &'static str, reason: String) -> ProtocolError {
    ProtocolError::Invalid { what, reason }
}

fn expect_count(
    what: &'static str,
    field: &str,
    got: usize,
    expected: usize,
) -> Result<(), ProtocolError> {
    if got == expected {
        Ok(())
    } else {
        Err(invalid(
            what,
            format!("{field} is {got}, expected {expected}"),
        ))
    }
}

pub(crate) fn encode_intersection_size(size: u64) -> Vec<u8> {
    size.to_be_bytes().to_vec()
}

pub(crate) fn decode_intersection_size(bytes: &[u8]) -> Result<u64, ProtocolError> {
    let mut r = WireReader::new(bytes);
    let size = u64::from_be_bytes(r.array("intersection size")?);
    r.finish("intersection size")?;
    Ok(size)
}

/// Per-field filters of linked records: `filters[pair][field]`.
pub(crate) fn encode_field_clks(
    fields: usize,
    field_bytes: usize,
    filters: &[Vec<&[u8]>],
) -> Vec<u8> {
    let mut w = WireWriter::default();
    w.u32(filters.len() as u32);
    w.u16(fields as u16);
    w.u32(field_bytes as u32);
    for record in filters {
        for filter in record {
            w.raw(filter);
        }
    }
    w.bytes
}

/// Returns the flat filter bytes, `pairs × fields × field_bytes`.
pub(crate) fn decode_field_clks(
    bytes: &[u8],
    pairs: usize,
    fields: usize,
    field_bytes: usize,
) -> Result<Vec<u8>, ProtocolError> {
    const WHAT: &str = "field clks";
    let mut r = WireReader::new(bytes);
    expect_count(WHAT, "pair count", r.u32(WHAT)? as usize, pairs)?;
    expect_count(WHAT, "field count", usize::from(r.u16(WHAT)?), fields)?;
    expect_count(WHAT, "field length", r.u32(WHAT)? as usize, field_bytes)?;
    let flat = r.take(pairs * fields * field_bytes, WHAT)?.to_vec();
    r.finish(WHAT)?;
    Ok(flat)
}

pub(crate) fn encode_all_clks(clk_bytes: usize, clks: &[&[u8]]) -> Vec<u8> {
    let mut w = WireWriter::default();
    w.u32(clks.len() as u32);
    w.u32(clk_bytes as u32);
    for clk in clks {
        w.raw(clk);
    }
    w.bytes
}

/// Returns the flat CLK bytes (`count × clk_bytes`) and the count.
pub(crate) fn decode_all_clks(
    bytes: &[u8],
    clk_bytes: usize,
    max_count: usize,
) -> Result<(Vec<u8>, usize), ProtocolError> {
    const WHAT: &str = "all clks";
    let mut r = WireReader::new(bytes);
    let count = r.u32(WHAT)? as usize;
    if count > max_count {
        return Err(invalid(
            WHAT,
            format!("{count} clks, over the limit of {max_count}"),
        ));
    }
    expect_count(WHAT, "clk length", r.u32(WHAT)? as usize, clk_bytes)?;
    let flat = r.take(count * clk_bytes, WHAT)?.to_vec();
    r.finish(WHAT)?;
    Ok((flat, count))
}

pub(crate) fn encode_candidate_clks(clk_bytes: usize, records: &[(&[u8], &[u32])]) -> Vec<u8> {
    let mut w = WireWriter::default();
    w.u32(records.len() as u32);
    w.u32(clk_bytes as u32);
    for (clk, tokens) in records {
        w.raw(clk);
        w.u16(tokens.len() as u16);
        for &token in *tokens {
            w.u32(token);
        }
    }
    w.bytes
}

/// Candidate CLKs: flat CLK bytes and, per record, its matched token indices.
pub(crate) struct CandidateClks {
    pub(crate) clks: Vec<u8>,
    pub(crate) tokens: Vec<Vec<u32>>,
}

pub(crate) fn decode_candidate_clks(
    bytes: &[u8],
    clk_bytes: usize,
    max_count: usize,
    token_count: usize,
) -> Result<CandidateClks, ProtocolError> {
    const WHAT: &str = "candidate clks";
    let mut r = WireReader::new(bytes);
    let count = r.u32(WHAT)? as usize;
    if count > max_count {
        return Err(invalid(
            WHAT,
            format!("{count} records, over the limit of {max_count}"),
        ));
    }
    expect_count(WHAT, "clk length", r.u32(WHAT)? as usize, clk_bytes)?;
    let mut clks = Vec::with_capacity(count.min(bytes.len() / clk_bytes.max(1)) * clk_bytes);
    let mut tokens = Vec::with_capacity(count.min(bytes.len()));
    for record in 0..count {
        clks.extend_from_slice(r.take(clk_bytes, WHAT)?);
        let n = usize::from(r.u16(WHAT)?);
        if n == 0 {
            return Err(invalid(
                WHAT,
                format!("record {record} has no matched token"),
            ));
        }
        let mut list = Vec::with_capacity(n);
        for _ in 0..n {
            let token = r.u32(WHAT)?;
            if token as usize >= token_count || list.last().is_some_and(|&l| l >= token) {
                return Err(invalid(
                    WHAT,
                    format!(
                        "record {record}: token index {token} is not ascending below {token_count}"
                    ),
                ));
            }
            list.push(token);
        }
        tokens.push(list);
    }
    r.finish(WHAT)?;
    Ok(CandidateClks { clks, tokens })
}

pub(crate) fn encode_pair_scores(scores: &[(u32, bool)]) -> Vec<u8> {
    let mut w = WireWriter::default();
    w.u32(scores.len() as u32);
    for &(score, flagged) in scores {
        w.u32(score);
        w.u8(u8::from(flagged));
    }
    w.bytes
}

pub(crate) fn decode_pair_scores(
    bytes: &[u8],
    pairs: usize,
) -> Result<Vec<(u32, bool)>, ProtocolError> {
    const WHAT: &str = "pair scores";
    let mut r = WireReader::new(bytes);
    expect_count(WHAT, "pair count", r.u32(WHAT)? as usize, pairs)?;
    let mut scores = Vec::with_capacity(pairs);
    for pair in 0..pairs {
        let score = r.u32(WHAT)?;
        if score > 1_000_000 {
            return Err(invalid(
                WHAT,
                format!("pair {pair}: score {score} is over 1000000"),
            ));
        }
        let flagged = match r.u8(WHAT)? {
            0 => false,
            1 => true,
            other => {
                return Err(invalid(
                    WHAT,
                    format!("pair {pair}: flag {other}, expected 0 or 1"),
                ));
            }
        };
        scores.push((score, flagged));
    }
    r.finish(WHAT)?;
    Ok(scores)
}

/// One accepted pair: the position of the revealing side's record in what it sent, the link
/// id and the score in millionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentLink {
    pub(crate) position: u32,
    pub(crate) link_id: [u8; 32],
    pub(crate) score: u32,
}

pub(crate) fn encode_link_ids(links: &[SentLink]) -> Vec<u8> {
    let mut w = WireWriter::default();
    w.u32(links.len() as u32);
    for link in links {
        w.u32(link.position);
        w.raw(&link.link_id);
        w.u32(link.score);
    }
    w.bytes
}

pub(crate) fn decode_link_ids(
    bytes: &[u8],
    positions: usize,
) -> Result<Vec<SentLink>, ProtocolError> {
    const WHAT: &str = "link ids";
    let mut r = WireReader::new(bytes);
    let count = r.u32(WHAT)? as usize;
    if count > positions {
        return Err(invalid(
            WHAT,
            format!("{count} links for {positions} revealed records"),
        ));
    }
    let mut links: Vec<SentLink> = Vec::with_capacity(count);
    for _ in 0..count {
        let position = r.u32(WHAT)?;
        let link_id = r.array::<32>(WHAT)?;
        let score = r.u32(WHAT)?;
        if position as usize >= positions || links.last().is_some_and(|l| l.position >= position) {
            return Err(invalid(
                WHAT,
                format!("position {position} is not ascending below {positions}"),
            ));
        }
        if score > 1_000_000 {
            return Err(invalid(
                WHAT,
                format!("position {position}: score {score} is over 1000000"),
            ));
        }
        links.push(SentLink {
            position,
            link_id,
            score,
        });
    }
    r.finish(WHAT)?;
    Ok(links)
}
