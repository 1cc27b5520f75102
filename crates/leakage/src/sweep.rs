//! One configuration of the leakage benchmark, end to end: encode both parties' files as the
//! parties would, run every attack that applies to what the attacker holds, and link the files
//! to measure what the encoding costs in linkage quality. `blindlink bench leakage` loops over
//! configurations and writes the rows; which attacker exists in which protocol mode is the
//! caller's [`Disclosure`] (taken from what the protocol sends), not this crate's guess.

use blindlink_encoding::LinkageSecret;

use crate::encode::{EncodingConfig, FilterLayout, Hardening, birth_years, normalised_values};
use crate::frequency::{FrequencyParams, frequency_attack, pattern_mining_attack, qgrams};
use crate::graph::{GraphParams, graph_matching_attack, similarity_graph};
use crate::key_holder::{BlipKnowledge, KeyHolder, field_dictionary, value_is_right};
use crate::metrics::{AttackScore, LinkageScore, greedy_one_to_one, link_greedy, score_links};
use crate::profile::{PlaintextRecord, ProfileParams, VulnerabilityProfile, vulnerability_profile};
use crate::{LeakageError, LinkedFiles};

/// What a protocol mode hands to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disclosure {
    /// The peer (who holds the linkage secret) receives the other side's encodings.
    pub encodings_to_key_holder: bool,
    /// Encodings exist outside the party (in a file a thief can take, or at a linkage unit).
    pub encodings_outside: bool,
}

/// An attack and its success.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// `key-holder-records`, `key-holder-fields`, `frequency`, `pattern-mining` or
    /// `graph-matching`.
    pub attack: &'static str,
    /// The success.
    pub score: AttackScore,
}

/// How BLIP's seed relates to the attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlipSeed {
    /// Fresh per run (the fixed encoder).
    Fresh,
    /// Regenerable by every key holder (the encoder before issue 14's fix).
    Keyed,
}

/// Encodes the victim file as its party would.
fn victim_encodings(
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &LinkageSecret,
    blip: BlipSeed,
) -> Result<(Vec<Vec<u8>>, BlipKnowledge), LeakageError> {
    let mut encoder = config.encoder(files.locale, secret)?;
    let knowledge = match blip {
        BlipSeed::Fresh => BlipKnowledge::None,
        BlipSeed::Keyed => {
            // Stands for a seed derived from the linkage secret: the key holder has it.
            let seed = [0x5a; 32];
            encoder = encoder.with_blip_seed(seed);
            BlipKnowledge::Seed(seed)
        }
    };
    Ok((
        config.encode(files.locale, &files.victim, &encoder)?,
        knowledge,
    ))
}

/// Runs the attacks that `disclosure` makes possible on `config`'s encodings of the victim
/// file. The frequency and pattern-mining attacks run only for encodings of at most two
/// fields (their published setting); they find nothing on unique multi-field filters.
///
/// # Errors
/// [`LeakageError::Encoding`] when the encoder refuses the schema or a value.
pub fn run_attacks(
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &LinkageSecret,
    blip: BlipSeed,
    disclosure: Disclosure,
    graph: GraphParams,
) -> Result<Vec<Measurement>, LeakageError> {
    let mut out = Vec::new();
    let same = |t: usize, c: usize| files.same_person(c, t);
    if !disclosure.encodings_to_key_holder && !disclosure.encodings_outside {
        // Nothing encoded leaves the party: every attack on encodings has no input.
        out.push(Measurement {
            attack: "key-holder-records",
            score: AttackScore {
                targets: files.victim.len(),
                ..AttackScore::default()
            },
        });
        return Ok(out);
    }
    let (victim, knowledge) = victim_encodings(files, config, secret, blip)?;
    if disclosure.encodings_to_key_holder {
        let holder = KeyHolder::new(config, files.locale, secret, knowledge)?;
        let guesses = holder.decode_records(&victim, &files.reference)?;
        out.push(Measurement {
            attack: "key-holder-records",
            score: AttackScore::measure(&guesses, 10, same),
        });
        if config.layout == FilterLayout::PerField {
            let mut years = birth_years(files.locale, &files.reference);
            years.sort_unstable();
            years.dedup();
            let decoded = holder.decode_fields(
                &victim,
                |f| field_dictionary(files.locale, &files.reference, f, config.q),
                &years,
            )?;
            // Field values re-identified, pooled over the fields.
            let mut pooled = AttackScore::default();
            let mut risk = 0.0;
            for ((guesses, dictionary), &field) in decoded.iter().zip(&config.fields) {
                let truth = normalised_values(files.locale, &files.victim, field, config.q);
                let s = AttackScore::measure(guesses, 10, |t, c| {
                    value_is_right(&truth, dictionary, t, c)
                });
                pooled.targets += s.targets;
                pooled.guessed_1to1 += s.guessed_1to1;
                pooled.correct_1to1 += s.correct_1to1;
                pooled.guessed_1tom += s.guessed_1tom;
                pooled.correct_1tom += s.correct_1tom;
                risk += s.disclosure_risk * s.targets as f64;
            }
            pooled.disclosure_risk = if pooled.targets == 0 {
                0.0
            } else {
                risk / pooled.targets as f64
            };
            out.push(Measurement {
                attack: "key-holder-fields",
                score: pooled,
            });
        }
    }
    if disclosure.encodings_outside {
        // The attacker re-encodes its plaintext with the public parameters and a key of its
        // own, and compares similarity graphs.
        let own_secret = LinkageSecret::from_bytes(b"the attacker's own key".to_vec())?;
        let own = config.encode(
            files.locale,
            &files.reference,
            &config.encoder(files.locale, &own_secret)?,
        )?;
        let guesses =
            graph_matching_attack(&similarity_graph(&victim), &similarity_graph(&own), graph);
        out.push(Measurement {
            attack: "graph-matching",
            score: AttackScore::measure(&guesses, 1, same),
        });
        if config.fields.len() <= 2 {
            out.extend(value_attacks(files, config, &victim, None));
        }
    }
    Ok(out)
}

/// The frequency and pattern-mining attacks (no key: the attacker holds `victim`, the
/// encodings of the victim file under `config`, and the reference file as its plaintext sample
/// of the same population), scored per value: a victim record is re-identified when the
/// attacker names its normalised value tuple of `config`'s fields. Pattern mining stops
/// splitting partitions of fewer than `min_partition` filters; `None` scales it with the
/// victim file ([`scaled_min_partition`]).
#[must_use]
pub fn value_attacks(
    files: &LinkedFiles,
    config: &EncodingConfig,
    victim: &[Vec<u8>],
    min_partition: Option<usize>,
) -> Vec<Measurement> {
    let sample = field_tuples(files, config, false);
    let truth: Vec<String> = field_tuples(files, config, true)
        .into_iter()
        .map(|v| v.join("|"))
        .collect();
    let params = FrequencyParams {
        q: config.q,
        exact_fields: exact_mask(files, config),
        min_partition: min_partition.unwrap_or_else(|| scaled_min_partition(victim.len())),
        ..FrequencyParams::default()
    };
    [
        ("frequency", frequency_attack(victim, &sample, params)),
        (
            "pattern-mining",
            pattern_mining_attack(victim, &sample, params),
        ),
    ]
    .into_iter()
    .map(|(attack, result)| Measurement {
        attack,
        score: AttackScore::measure(&result.guesses, 10, |t, c| truth[t] == result.values[c]),
    })
    .collect()
}

/// Pattern mining's default smallest partition for `filters` victim filters: a fiftieth of
/// them, at least 20 (100 filters at 5,000, 4,445 at NCVR's 222,251).
#[must_use]
pub fn scaled_min_partition(filters: usize) -> usize {
    (filters / 50).max(20)
}

/// Encodes the victim file under `config` and `secret` (BLIP fresh) and runs
/// [`value_attacks`] on it.
///
/// # Errors
/// [`LeakageError::Encoding`] when the encoder refuses the schema or a value.
pub fn run_value_attacks(
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &LinkageSecret,
    min_partition: Option<usize>,
) -> Result<Vec<Measurement>, LeakageError> {
    let (victim, _) = victim_encodings(files, config, secret, BlipSeed::Fresh)?;
    Ok(value_attacks(files, config, &victim, min_partition))
}

/// Encodes the victim file under `config` and `secret` (BLIP as `blip` says) and profiles the
/// encodings against the victim's own plaintext ([`vulnerability_profile`]).
///
/// # Errors
/// [`LeakageError::Encoding`] when the encoder refuses the schema or a value.
pub fn profile_encoding(
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &LinkageSecret,
    blip: BlipSeed,
    params: ProfileParams,
) -> Result<VulnerabilityProfile, LeakageError> {
    let (victim, _) = victim_encodings(files, config, secret, blip)?;
    Ok(vulnerability_profile(
        &victim,
        &plaintext_records(files, config),
        params,
    ))
}

/// The victim file's plaintext as the encoding sees it: per record the normalised values of
/// `config`'s fields joined by `|`, and its tokens (`field:q-gram`, the sex one exact token),
/// without the salt: the salt is not part of the value an attacker wants.
#[must_use]
pub fn plaintext_records(files: &LinkedFiles, config: &EncodingConfig) -> Vec<PlaintextRecord> {
    let exact = exact_mask(files, config);
    field_tuples(files, config, true)
        .into_iter()
        .map(|values| {
            let mut tokens = Vec::new();
            for (f, v) in values.iter().enumerate() {
                if v.is_empty() {
                    continue;
                }
                if exact & (1 << f) != 0 {
                    tokens.push(format!("{f}:{v}"));
                } else {
                    tokens.extend(qgrams(v, config.q).into_iter().map(|g| format!("{f}:{g}")));
                }
            }
            tokens.sort_unstable();
            tokens.dedup();
            PlaintextRecord {
                value: values.join("|"),
                tokens,
            }
        })
        .collect()
}

fn exact_mask(files: &LinkedFiles, config: &EncodingConfig) -> u32 {
    config
        .fields
        .iter()
        .enumerate()
        .filter(|&(_, &f)| files.reference.columns[f] == "sex")
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// The normalised values of the configured fields per record, of the reference (the
/// attacker's sample) or of the victim (the truth).
fn field_tuples(files: &LinkedFiles, config: &EncodingConfig, victim: bool) -> Vec<Vec<String>> {
    let table = if victim {
        &files.victim
    } else {
        &files.reference
    };
    let columns: Vec<Vec<Option<String>>> = config
        .fields
        .iter()
        .map(|&f| normalised_values(files.locale, table, f, config.q))
        .collect();
    (0..table.len())
        .map(|i| {
            columns
                .iter()
                .map(|c| c[i].clone().unwrap_or_default())
                .collect()
        })
        .collect()
}

/// Thresholds tried for the linkage; the best F is reported with its threshold.
pub const THRESHOLDS: [f64; 7] = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9];

/// Links the two files by the Dice similarity of their encodings (both parties encode under
/// the shared secret, each with its own fresh BLIP seed), greedy one-to-one, at the
/// threshold of [`THRESHOLDS`] with the best F-measure.
///
/// # Errors
/// [`LeakageError::Encoding`] when the encoder refuses the schema or a value.
pub fn clk_linkage(
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &LinkageSecret,
) -> Result<(f64, LinkageScore), LeakageError> {
    let left = config.encode(
        files.locale,
        &files.reference,
        &config.encoder(files.locale, secret)?,
    )?;
    let right = config.encode(
        files.locale,
        &files.victim,
        &config.encoder(files.locale, secret)?,
    )?;
    let truth = files.true_pairs();
    Ok(best_threshold(|t| {
        score_links(&link_greedy(&left, &right, t), &truth, |r, v| {
            files.same_person(r, v)
        })
    }))
}

/// Links the two files by the Dice similarity of their normalised q-gram token sets over
/// `fields` (what grouped PSI cardinality computes exactly in `validate` and `fuzzy`, here
/// without fuzzy's blocking), greedy one-to-one at the best threshold.
#[must_use]
pub fn token_linkage(files: &LinkedFiles, fields: &[usize], q: usize) -> (f64, LinkageScore) {
    let config = EncodingConfig {
        layout: FilterLayout::Clk,
        bits: 0,
        bits_per_token: 0,
        q,
        fields: fields.to_vec(),
        hardening: Hardening::None,
    };
    let token_sets = |victim: bool| -> Vec<Vec<String>> {
        field_tuples(files, &config, victim)
            .into_iter()
            .map(|values| {
                let mut t = Vec::new();
                for (f, v) in values.iter().enumerate() {
                    t.extend(qgrams(v, q).into_iter().map(|g| format!("{f}:{g}")));
                }
                t.sort_unstable();
                t.dedup();
                t
            })
            .collect()
    };
    let (left, right) = (token_sets(false), token_sets(true));
    let mut scored = Vec::new();
    for (i, a) in left.iter().enumerate() {
        for (j, b) in right.iter().enumerate() {
            let common = a.iter().filter(|t| b.binary_search(t).is_ok()).count();
            let total = a.len() + b.len();
            if total > 0 {
                scored.push((2.0 * common as f64 / total as f64, i, j));
            }
        }
    }
    let truth = files.true_pairs();
    best_threshold(|t| {
        let pairs: Vec<(f64, usize, usize)> = scored.iter().copied().filter(|p| p.0 >= t).collect();
        let links = greedy_one_to_one(pairs, left.len(), right.len());
        score_links(&links, &truth, |r, v| files.same_person(r, v))
    })
}

fn best_threshold(mut score: impl FnMut(f64) -> LinkageScore) -> (f64, LinkageScore) {
    let mut best = (THRESHOLDS[0], score(THRESHOLDS[0]));
    for &t in &THRESHOLDS[1..] {
        let s = score(t);
        if s.f_measure() > best.1.f_measure() {
            best = (t, s);
        }
    }
    best
}
