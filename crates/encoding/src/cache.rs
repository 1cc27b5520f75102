//! A per-thread cache of token → bit positions.
//!
//! Name, place and date tokens repeat endlessly (a few thousand distinct bigrams cover a
//! country's surnames), so the keyed hash of each distinct token is computed once per worker
//! and its positions replayed afterwards. The cache is keyed by the token's bytes; it only
//! memoises the keyed hash and never decides a position itself. Memory is bounded: the cache
//! is emptied when it holds [`MAX_POSITIONS`] positions.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Positions held before the cache is emptied (4 MiB of `u32`).
pub(crate) const MAX_POSITIONS: usize = 1 << 20;

/// FxHash-style multiplicative hasher: the cache's keys are short and not attacker-chosen
/// in a way that matters (a slow lookup only slows the encoder down).
#[derive(Default, Clone, Copy)]
pub(crate) struct TokenHasher(u64);

impl Hasher for TokenHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let mut tail = 0u64;
        for (i, b) in chunks.remainder().iter().enumerate() {
            tail |= u64::from(*b) << (8 * i);
        }
        self.0 = (self.0.rotate_left(5) ^ tail ^ bytes.len() as u64).wrapping_mul(K);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Token bytes (with the number of bits appended) → a range of `positions`.
#[derive(Default)]
pub(crate) struct PositionCache {
    map: HashMap<Box<[u8]>, (u32, u32), BuildHasherDefault<TokenHasher>>,
    positions: Vec<u32>,
    key: Vec<u8>,
}

impl PositionCache {
    /// The positions of `token` with `k` bits, computing them with `compute` on a miss.
    #[inline]
    pub(crate) fn get_or_insert(
        &mut self,
        token: &[u8],
        k: u32,
        compute: impl FnOnce(&mut Vec<u32>),
    ) -> &[u32] {
        self.key.clear();
        self.key.extend_from_slice(token);
        self.key.extend_from_slice(&k.to_le_bytes());
        if let Some(&(start, len)) = self.map.get(self.key.as_slice()) {
            return &self.positions[start as usize..(start + len) as usize];
        }
        if self.positions.len() >= MAX_POSITIONS {
            self.map.clear();
            self.positions.clear();
        }
        let start = self.positions.len();
        compute(&mut self.positions);
        let len = self.positions.len() - start;
        self.map.insert(
            self.key.clone().into_boxed_slice(),
            (start as u32, len as u32),
        );
        &self.positions[start..]
    }
}

/// The token-insertion loop of both encoders: sets, in `filter`, the positions of each token of
/// one field (`tokens` split at `ends`), token `t` of `n` taking `weight(t, n)` positions from
/// `hash(token, k, out)`, memoised in `cache`. A non-empty `salt` is part of the cache key (the
/// caller's `hash` mixes it into the positions), so salted tokens never collide.
pub(crate) fn insert_tokens(
    tokens: &[u8],
    ends: &[usize],
    salt: &[u8],
    cache: &mut PositionCache,
    filter: &mut [u8],
    weight: impl Fn(usize, usize) -> u32,
    hash: impl Fn(&[u8], u32, &mut Vec<u32>),
) {
    let count = ends.len();
    let mut start = 0;
    let mut salted_key = Vec::new();
    for (t, &end) in ends.iter().enumerate() {
        let bytes = &tokens[start..end];
        start = end;
        let k = weight(t, count);
        let key = if salt.is_empty() {
            bytes
        } else {
            salted_key.clear();
            salted_key.extend_from_slice(&(salt.len() as u32).to_le_bytes());
            salted_key.extend_from_slice(salt);
            salted_key.extend_from_slice(bytes);
            salted_key.as_slice()
        };
        for &p in cache.get_or_insert(key, k, |p| hash(bytes, k, p)) {
            crate::bits::set_bit(filter, p as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_once_and_replays() {
        let mut cache = PositionCache::default();
        let mut calls = 0;
        for _ in 0..3 {
            let got = cache
                .get_or_insert(b"ab", 2, |p| {
                    calls += 1;
                    p.extend([5, 9]);
                })
                .to_vec();
            assert_eq!(got, [5, 9]);
        }
        assert_eq!(calls, 1);
        // Same token, different number of bits: a different entry.
        assert_eq!(cache.get_or_insert(b"ab", 1, |p| p.push(5)), [5]);
    }
}

/// Bytes of masks a [`MaskCache`] holds before it is emptied (4 MiB per field and thread).
pub(crate) const MAX_MASK_BYTES: usize = 4 << 20;

/// A per-thread, per-field cache of raw value → the bits that value sets.
///
/// Names, places and postcodes repeat across records far more than they vary, so a field's
/// whole contribution is remembered as a bit mask and ORed in (a few vector instructions
/// for 1024 bits) instead of re-validating, re-normalising and re-hashing the value. Only
/// values that encoded successfully are stored, and the stored mask is exactly what encoding
/// the value sets, so hits and misses give identical CLKs.
#[derive(Default)]
pub(crate) struct MaskCache {
    map: HashMap<Box<[u8]>, u32, BuildHasherDefault<TokenHasher>>,
    masks: Vec<u8>,
    mask_len: usize,
    lookups: u64,
    hits: u64,
}

impl MaskCache {
    /// The mask of `value`, if cached. Masks are `mask_len` bytes.
    #[inline]
    pub(crate) fn get(&mut self, value: &[u8]) -> Option<&[u8]> {
        self.lookups += 1;
        let &index = self.map.get(value)?;
        self.hits += 1;
        let start = index as usize * self.mask_len;
        Some(&self.masks[start..start + self.mask_len])
    }

    /// Remembers `mask` as what `value` sets. A field whose values rarely repeat (a full
    /// name, a date of birth) stops being remembered once fewer than one lookup in eight hits:
    /// storing its masks would cost more than it saves.
    pub(crate) fn insert(&mut self, value: &[u8], mask: &[u8]) {
        if self.lookups >= 4096 && self.hits * 8 < self.lookups {
            return;
        }
        if self.mask_len != mask.len() || self.masks.len() + mask.len() > MAX_MASK_BYTES {
            self.map.clear();
            self.masks.clear();
            self.mask_len = mask.len();
        }
        if mask.len() > MAX_MASK_BYTES {
            return;
        }
        let index = (self.masks.len() / mask.len().max(1)) as u32;
        self.masks.extend_from_slice(mask);
        self.map.insert(value.into(), index);
    }
}

/// `target |= mask`, bytewise (vectorised by the compiler).
#[inline]
pub(crate) fn or_into(target: &mut [u8], mask: &[u8]) {
    for (t, m) in target.iter_mut().zip(mask) {
        *t |= *m;
    }
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn masks_round_trip_and_reset_on_length_change() {
        let mut cache = MaskCache::default();
        cache.insert(b"tanaka", &[1, 2, 3]);
        cache.insert(b"sato", &[4, 5, 6]);
        assert_eq!(cache.get(b"tanaka"), Some(&[1u8, 2, 3][..]));
        assert_eq!(cache.get(b"sato"), Some(&[4u8, 5, 6][..]));
        assert_eq!(cache.get(b"suzuki"), None);
        cache.insert(b"x", &[9]);
        assert_eq!(cache.get(b"tanaka"), None);
        let mut target = [0b0001u8, 0];
        or_into(&mut target, &[0b0100, 1]);
        assert_eq!(target, [0b0101, 1]);
    }
}

#[cfg(test)]
mod adaptive_tests {
    use super::*;

    #[test]
    fn rarely_repeating_fields_stop_being_stored() {
        let mut cache = MaskCache::default();
        for i in 0..5000u32 {
            let key = i.to_le_bytes();
            if cache.get(&key).is_none() {
                cache.insert(&key, &[1]);
            }
        }
        assert_eq!(cache.map.len(), 4095);
        // Values stored before the cut-off are still served.
        assert_eq!(cache.get(&7u32.to_le_bytes()), Some(&[1u8][..]));
    }
}
