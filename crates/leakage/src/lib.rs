//! Attacks on the encodings of privacy-preserving record linkage, and the metrics of their
//! success: what each of blindlink's modes, encodings and hardenings reveals, measured.
//!
//! Design: every attack is a function from what the attacker holds (encodings, a similarity
//! graph, the linkage secret, a plaintext reference population) to [`Guess`]es (candidate
//! re-identifications with a confidence), scored against the synthetic ground truth by
//! [`AttackScore`]. The data come from `blindlink-synth` ([`LinkedFiles`]: a victim file whose
//! encodings are attacked and a reference file the attacker holds in plaintext), the encodings
//! from `blindlink-encoding` exactly as a party makes them ([`EncodingConfig`]). For the
//! frequency and pattern-mining attacks at the published scale, [`NameFrequencies`] draws
//! populations of any size from real name frequency tables (FEBRL's, in `data/`). The crate is
//! sans-IO and single-threaded (callers parallelise configurations); it knows nothing of the
//! network, and nothing of the protocol beyond what the caller says a mode reveals.
//!
//! | attack | attacker holds | source |
//! |---|---|---|
//! | [`KeyHolder`] | the secret and schema (the peer of a two-party protocol) | dictionary attack under key compromise |
//! | [`frequency_attack`] | encodings, a plaintext sample of the population | Christen et al., PAKDD 2017 |
//! | [`pattern_mining_attack`] | encodings, a plaintext sample of the population | Christen et al., PAKDD 2018 |
//! | [`graph_matching_attack`] | the pairwise similarities of encodings, overlapping plaintext | Vidanage et al., CIKM 2020 |
//! | [`vulnerability_profile`] | (the data owner's view: encodings and their plaintext) | Vidanage et al., ACM TOPS 2023: five vulnerability types, as cheap proxies |
//! | [`count_attack`] | the secret, its own records, per compared pair and field the shared-token count and the peer's size bucket (`validate`, `fuzzy`) | this crate: dictionary inference from grouped PSI counts |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod counts;
mod data;
mod encode;
mod error;
mod frequency;
mod graph;
mod key_holder;
mod metrics;
mod population;
mod profile;
mod sweep;

pub use counts::{CountLeak, count_attack, fuzzy_plan, mislinked_plan, validate_plan};
pub use data::{LinkedFiles, Table, quasi_identifiers};
pub use encode::{EncodingConfig, FilterLayout, Hardening, birth_years, normalised_values};
pub use error::LeakageError;
pub use frequency::{FrequencyParams, ValueAttack, frequency_attack, pattern_mining_attack};
pub use graph::{GraphParams, graph_matching_attack, similarity_graph};
pub use key_holder::{
    BlipKnowledge, FieldDecode, KeyHolder, field_dictionary, field_truth, value_is_right,
};
pub use metrics::{AttackScore, Guess, LinkageScore, dice, link_greedy, score_links};
pub use population::{MAX_SAMPLE_PERSONS, NameFrequencies};
pub use profile::{PlaintextRecord, ProfileParams, VulnerabilityProfile, vulnerability_profile};
pub use sweep::{
    BlipSeed, Disclosure, Measurement, THRESHOLDS, clk_linkage, plaintext_records,
    profile_encoding, run_attacks, run_value_attacks, scaled_min_partition, token_linkage,
    value_attacks,
};

#[cfg(test)]
mod tests;
