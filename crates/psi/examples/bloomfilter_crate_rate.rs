//! Why `crates/psi` does not use the `bloomfilter` crate: measures that crate's false-positive
//! rate on the small, many-hash filters that whole-query sizing produces, next to the rate its
//! own fill predicts. Figures quoted in `papers/psi.md` §8 come from:
//!
//!     cargo run --release -p blindlink-psi --example bloomfilter_crate_rate

use std::hash::{Hash, Hasher};

use bloomfilter::Bloom;

/// A 32-byte item hashed as exactly its bytes (no platform-dependent length prefix).
struct PointBytes([u8; 32]);

impl Hash for PointBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

fn item(tag: u8, seed: u8, i: u64) -> PointBytes {
    let mut bytes = [seed; 32];
    bytes[..8].copy_from_slice(&i.to_le_bytes());
    bytes[31] = tag;
    PointBytes(bytes)
}

fn main() {
    const FILTERS: u8 = 50;
    const TESTS: u64 = 20_000;
    println!("items  bits  k  false positives / tests  rate predicted by fill^k");
    for (items, bytes) in [(5usize, 32usize), (24, 128), (100, 512)] {
        let mut false_positives = 0u64;
        let mut predicted = 0.0;
        let mut hash_functions = 0;
        for seed in 0..FILTERS {
            let mut filter: Bloom<PointBytes> =
                match Bloom::new_with_seed(bytes, items, &[seed; 32]) {
                    Ok(filter) => filter,
                    Err(error) => {
                        eprintln!("cannot build a filter: {error}");
                        return;
                    }
                };
            for i in 0..items as u64 {
                filter.set(&item(1, seed, i));
            }
            hash_functions = filter.number_of_hash_functions();
            let set_bits: u64 = filter.as_slice()[45..]
                .iter()
                .map(|b| u64::from(b.count_ones()))
                .sum();
            predicted += (set_bits as f64 / filter.len() as f64).powi(hash_functions as i32);
            false_positives += (0..TESTS)
                .filter(|&q| filter.check(&item(2, seed, q)))
                .count() as u64;
        }
        let tests = u64::from(FILTERS) * TESTS;
        println!(
            "{items:5}  {:4}  {hash_functions:2}  {false_positives:7} / {tests}  ({:.2} %)  {:.1e}",
            bytes * 8,
            100.0 * false_positives as f64 / tests as f64,
            predicted / f64::from(FILTERS)
        );
    }
}
