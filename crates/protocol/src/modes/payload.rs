//! Byte encodings of the mode messages that are not PSI messages (those use the `blindlink-psi`
//! wire format). Big-endian counts, fixed-width items; every decoder checks each count against
//! what the receiving state expects, and rejects trailing bytes.
//!
//! | kind | body |
//! |---|---|
//! | `intersection_size` | `size: u64` |
//! | `candidate_tokens` | `count: u32`, per record: `n: u16` (1 to bands), `n × u32` ascending matched band-token indices |
//! | `pair_plan` (validate) | `links: u32`, per linked ID in link-id order: `holders: u16` (1 to 1024) |
//! | `pair_plan` (fuzzy) | `pairs: u32`, per pair: `position: u32` (the candidate position, ascending) |
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

/// Fuzzy: the matched band-token indices of each candidate record, in candidate order.
pub(crate) fn encode_candidate_tokens(records: &[Vec<u32>]) -> Vec<u8> {
    let mut w = WireWriter::default();
    w.u32(records.len() as u32);
    for tokens in records {
        w.u16(u16::try_from(tokens.len()).unwrap_or(u16::MAX));
        for &token in tokens {
            w.u32(token);
        }
    }
    w.bytes
}

/// Decodes candidate tokens: at most `max_count` records, each with 1 to `max_tokens`
/// strictly ascending indices below `token_count`.
pub(crate) fn decode_candidate_tokens(
    bytes: &[u8],
    max_count: usize,
    max_tokens: usize,
    token_count: usize,
) -> Result<Vec<Vec<u32>>, ProtocolError> {
    const WHAT: &str = "candidate tokens";
    let mut r = WireReader::new(bytes);
    let count = r.u32(WHAT)? as usize;
    if count > max_count {
        return Err(invalid(
            WHAT,
            format!("{count} records, over the limit of {max_count}"),
        ));
    }
    let mut records = Vec::with_capacity(count.min(bytes.len() / 6));
    for record in 0..count {
        let n = usize::from(r.u16(WHAT)?);
        if n == 0 || n > max_tokens {
            return Err(invalid(
                WHAT,
                format!("record {record} has {n} matched tokens, expected 1 to {max_tokens}"),
            ));
        }
        let mut list: Vec<u32> = Vec::with_capacity(n);
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
        records.push(list);
    }
    r.finish(WHAT)?;
    Ok(records)
}

/// Validate's pair plan: how many of the comparing side's records hold each linked ID, in
/// link-id order.
pub(crate) fn encode_holders(holders: &[u16]) -> Vec<u8> {
    let mut w = WireWriter::default();
    w.u32(holders.len() as u32);
    for &h in holders {
        w.u16(h);
    }
    w.bytes
}

pub(crate) fn decode_holders(
    bytes: &[u8],
    links: usize,
    max_holders: u16,
) -> Result<Vec<u16>, ProtocolError> {
    const WHAT: &str = "pair plan";
    let mut r = WireReader::new(bytes);
    expect_count(WHAT, "link count", r.u32(WHAT)? as usize, links)?;
    let mut holders = Vec::with_capacity(links);
    for link in 0..links {
        let h = r.u16(WHAT)?;
        if h == 0 || h > max_holders {
            return Err(invalid(
                WHAT,
                format!("link {link} has {h} holders, expected 1 to {max_holders}"),
            ));
        }
        holders.push(h);
    }
    r.finish(WHAT)?;
    Ok(holders)
}

/// Fuzzy's pair plan: the revealing side's candidate position of every compared pair,
/// ascending (a position repeats once per pair it is in).
pub(crate) fn encode_positions(positions: &[u32]) -> Vec<u8> {
    let mut w = WireWriter::default();
    w.u32(positions.len() as u32);
    for &p in positions {
        w.u32(p);
    }
    w.bytes
}

pub(crate) fn decode_positions(
    bytes: &[u8],
    candidates: usize,
    max_pairs: usize,
) -> Result<Vec<u32>, ProtocolError> {
    const WHAT: &str = "pair plan";
    let mut r = WireReader::new(bytes);
    let count = r.u32(WHAT)? as usize;
    if count > max_pairs {
        return Err(invalid(
            WHAT,
            format!("{count} pairs, over the limit of {max_pairs}"),
        ));
    }
    let mut positions: Vec<u32> = Vec::with_capacity(count.min(bytes.len() / 4));
    for pair in 0..count {
        let p = r.u32(WHAT)?;
        if p as usize >= candidates || positions.last().is_some_and(|&l| l > p) {
            return Err(invalid(
                WHAT,
                format!(
                    "pair {pair}: position {p} is not ascending below {candidates} (a pair with a record that was never a candidate)"
                ),
            ));
        }
        positions.push(p);
    }
    r.finish(WHAT)?;
    Ok(positions)
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
