//! Synthetic populations with ground truth, for trying, testing and benchmarking record linkage
//! without anyone's real data.
//!
//! The design follows how the My Number mislinks happened: a registry holds every resident in
//! canonical notation; an insurer typed its members in by hand, in whatever notation the form
//! or the clerk used, and attached identifiers after matching only a kana name, a date of birth
//! and a sex — so some records carry *another* resident's valid number (someone with the same
//! name, a family member, an unrelated resident), some carry a mistyped number that the check
//! digit catches, and some insured persons are not in the registry at all. The `two-hospitals`
//! scenario drops the shared identifier for fuzzy linkage.
//!
//! Everything is a pure function of the seed: persons are laid out in fixed blocks of
//! households, each block drawn from a counter-based stream of `(seed, block)`, and every
//! per-person decision from `(seed, person)`. Generation streams block by block into a
//! caller-supplied [`RecordSink`], so ten million persons need no more memory than one block and
//! a bounded same-name index; the crate never opens a file. `papers/synthetic-data.md` documents
//! the model, its distributions and sources.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod corrupt;
mod date;
mod generator;
mod kana;
mod population;
mod records;
mod rng;
mod tables;

pub use config::{CorruptionRates, LinkErrorRates, Locale, Scenario, SynthConfig};
pub use date::Date;
pub use generator::{Generator, SAME_NAME_CAPACITY, SynthStats};
pub use population::Sex;
pub use records::{
    Corruption, InsurerTruth, Outcome, OutputFile, PairTruth, RecordSink, Truth, WrongPersonKind,
    columns,
};

/// What can go wrong when setting up a generator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SynthError {
    /// A rate outside 0..=1.
    #[error("{name} rate is {value}, expected a value between 0 and 1")]
    Rate {
        /// The rate's name, as in the CLI option without `--` and `-rate`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// The identifier-error rates add up to more than one.
    #[error("wrong-person and keying-error rates add up to {total}, more than 1")]
    RatesExceedOne {
        /// Their sum.
        total: f64,
    },
    /// An empty population, or one too large to number.
    #[error("{persons} persons is outside 1..={max} for this locale")]
    Persons {
        /// The size asked for.
        persons: u64,
        /// The largest size the locale's identifiers can number.
        max: u64,
    },
    /// A shipped table does not parse (a defect of the build, not of the input).
    #[error("table {table} line {line}: {reason}")]
    Table {
        /// The table's file name.
        table: &'static str,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}
