//! Fuzzy mode's private blocking tokens: keyed MinHash over the set bits of a CLK.
//!
//! CLKs are sparse (a few hundred of 1024 bits set), so sampling bit positions (the matching
//! crate's bit-sampling LSH) mostly samples zeros: tokens then carry little information, nearly
//! every pair shares one and blocking blocks nothing. MinHash looks only at set bits: for a
//! keyed random order of the positions, the first set position of two CLKs is the same with
//! probability equal to their Jaccard similarity `J = D / (2 - D)` (Dice `D`). A band joins
//! `rows` such minima, so two CLKs share a band token with probability `J^rows`, and a pair
//! becomes a candidate when any of `bands` tokens agree: `1 - (1 - J^rows)^bands`. With the
//! default 12 × 10, Dice 0.95 (J 0.90) pairs share a token with probability 0.994, unrelated
//! persons (Dice about 0.3, J 0.18) with about 4e-7. In a universe of only 1024 positions with
//! a few hundred set, one minimum carries only a few bits (it is nearly always among the first
//! positions of the order), which is why a band joins many of them.
//!
//! The order of positions is a keyed pseudo-random value per position (HMAC-SHA-256 under the
//! blocking key), so a party without the key cannot link a token to bits.

use hmac::{KeyInit, Mac};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ProtocolError;

/// Most bands.
pub const MAX_MINHASH_BANDS: usize = 64;
/// Most minima per band.
pub const MAX_MINHASH_ROWS: usize = 16;

/// The secret key of fuzzy mode's blocking tokens; derive it with
/// [`super::derive_blocking_key`].
///
/// # Security
/// Zeroized on drop; its `Debug` shows no bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BlockingSecret([u8; 32]);

impl BlockingSecret {
    /// A key from 32 secret bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for BlockingSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockingSecret(..)")
    }
}

/// Checks a MinHash shape: 1 to [`MAX_MINHASH_BANDS`] bands of 1 to [`MAX_MINHASH_ROWS`] minima.
pub(crate) fn check_minhash(bands: usize, rows: usize) -> Result<(), ProtocolError> {
    if !(1..=MAX_MINHASH_BANDS).contains(&bands) || !(1..=MAX_MINHASH_ROWS).contains(&rows) {
        return Err(ProtocolError::Local {
            what: "fuzzy.lsh",
            reason: format!(
                "{bands} bands of {rows} minima, expected 1 to {MAX_MINHASH_BANDS} bands of 1 to {MAX_MINHASH_ROWS}"
            ),
        });
    }
    Ok(())
}

/// Keyed MinHash tokens for one filter length.
pub(crate) struct MinHashBlocker {
    bands: usize,
    rows: usize,
    /// `order[t][position]`: the keyed rank of a position in table `t = band * rows + row`.
    order: Vec<Vec<u32>>,
}

impl MinHashBlocker {
    pub(crate) fn new(
        key: &BlockingSecret,
        bands: usize,
        rows: usize,
        filter_bits: usize,
    ) -> Result<Self, ProtocolError> {
        check_minhash(bands, rows)?;
        let order = (0..bands * rows)
            .map(|table| {
                let mut values = Vec::with_capacity(filter_bits);
                let mut block = 0u32;
                while values.len() < filter_bits {
                    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key.0)
                        .unwrap_or_else(|_| unreachable!("hmac accepts keys of any length"));
                    mac.update(b"blindlink/v1/protocol/minhash");
                    mac.update(&(table as u32).to_be_bytes());
                    mac.update(&block.to_be_bytes());
                    let out = mac.finalize().into_bytes();
                    for word in out.chunks_exact(4) {
                        if values.len() < filter_bits {
                            values.push(u32::from_be_bytes([word[0], word[1], word[2], word[3]]));
                        }
                    }
                    block += 1;
                }
                values
            })
            .collect();
        Ok(Self { bands, rows, order })
    }

    /// The band tokens of one CLK: band number (4 bytes) then `rows` minima (4 bytes each),
    /// or none for an all-zero CLK.
    pub(crate) fn tokens(&self, clk: &[u8]) -> Vec<Vec<u8>> {
        let set: Vec<usize> = clk
            .iter()
            .enumerate()
            .flat_map(|(i, &byte)| {
                (0..8)
                    .filter(move |b| byte & (0x80 >> b) != 0)
                    .map(move |b| i * 8 + b)
            })
            .collect();
        if set.is_empty() {
            return Vec::new();
        }
        (0..self.bands)
            .map(|band| {
                let mut token = Vec::with_capacity(4 + 4 * self.rows);
                token.extend_from_slice(&(band as u32).to_be_bytes());
                for row in 0..self.rows {
                    let order = &self.order[band * self.rows + row];
                    let min = set
                        .iter()
                        .map(|&p| order.get(p).copied().unwrap_or(u32::MAX))
                        .min()
                        .unwrap_or(u32::MAX);
                    token.extend_from_slice(&min.to_be_bytes());
                }
                token
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_clks_share_tokens_and_different_ones_do_not() {
        let blocker = MinHashBlocker::new(&BlockingSecret::new([3; 32]), 4, 2, 64).unwrap();
        let a = [0xff, 0xff, 0, 0, 0, 0, 0, 0];
        let same = blocker.tokens(&a);
        assert_eq!(same, blocker.tokens(&a));
        assert_eq!(same.len(), 4);
        assert_eq!(same[2][..4], [0, 0, 0, 2]);
        let disjoint = blocker.tokens(&[0, 0, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(same.iter().zip(&disjoint).all(|(x, y)| x != y));
        assert!(blocker.tokens(&[0; 8]).is_empty());
        let other_key = MinHashBlocker::new(&BlockingSecret::new([4; 32]), 4, 2, 64).unwrap();
        assert_ne!(other_key.tokens(&a), same);
        assert_eq!(
            MinHashBlocker::new(&BlockingSecret::new([3; 32]), 0, 2, 64)
                .err()
                .unwrap()
                .to_string(),
            "invalid fuzzy.lsh: 0 bands of 2 minima, expected 1 to 64 bands of 1 to 16"
        );
    }
}
