//! Bit-level helpers shared by the encoders. Bit `i` of a filter is bit `7 - i % 8` of byte
//! `i / 8` (most significant bit first), the order of clkhash's `bitarray` and anonlink.

/// Sets bit `i` (MSB-first order).
#[inline]
pub(crate) fn set_bit(bytes: &mut [u8], i: usize) {
    bytes[i >> 3] |= 0x80 >> (i & 7);
}

/// Reads bit `i` (MSB-first order).
#[inline]
pub(crate) fn get_bit(bytes: &[u8], i: usize) -> bool {
    bytes[i >> 3] & (0x80 >> (i & 7)) != 0
}

/// The bits token `index` of `count` inserts when a field inserts `total` bits in all: an
/// equal share, the first `total % count` tokens one more (clkhash's `bitsPerFeature` and the
/// native schema's `bits_per_field`, so both encoders weigh tokens through this one rule).
#[inline]
pub(crate) fn token_share(total: u32, index: usize, count: usize) -> u32 {
    total / count as u32 + u32::from(index < total as usize % count)
}

/// Number of bits set.
pub(crate) fn popcount(bytes: &[u8]) -> u32 {
    bytes.iter().map(|b| b.count_ones()).sum()
}

/// XOR-folds the first `bits` bits of `bytes` once: the first half XOR the second half. The
/// result occupies the first `bits / 2` bits; the rest of the buffer is cleared. `bits` must be
/// even.
pub(crate) fn xor_fold_once(bytes: &mut [u8], bits: usize) {
    let half = bits / 2;
    if half.is_multiple_of(8) {
        let (low, high) = bytes.split_at_mut(half / 8);
        for (a, b) in low.iter_mut().zip(high.iter()) {
            *a ^= *b;
        }
        for b in high.iter_mut() {
            *b = 0;
        }
    } else {
        let mut folded = vec![0u8; bytes.len()];
        for i in 0..half {
            if get_bit(bytes, i) ^ get_bit(bytes, i + half) {
                set_bit(&mut folded, i);
            }
        }
        bytes.copy_from_slice(&folded);
    }
}

/// Remainder of a big-endian unsigned integer by `modulus` (non-zero).
#[inline]
pub(crate) fn be_bytes_mod(bytes: &[u8], modulus: u64) -> u64 {
    let m = u128::from(modulus);
    let mut r: u128 = 0;
    for &b in bytes {
        r = ((r << 8) | u128::from(b)) % m;
    }
    r as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_is_xor_of_halves() {
        let mut b = [0b1010_0000, 0b0110_0000];
        xor_fold_once(&mut b, 16);
        assert_eq!(b, [0b1100_0000, 0]);
        // 12 bits: halves of 6 bits, bitwise path.
        let mut c = [0b1111_0000, 0b1100_0000];
        xor_fold_once(&mut c, 12);
        // bits 0..6 = 111100, bits 6..12 = 001100 -> 110000
        assert_eq!(c, [0b1100_0000, 0]);
    }

    #[test]
    fn big_endian_mod_matches_u128() {
        let x: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        for m in [1u64, 7, 1000, 1024, 4_294_967_291] {
            assert_eq!(
                u128::from(be_bytes_mod(&x.to_be_bytes(), m)),
                x % u128::from(m)
            );
        }
    }
}
