//! Fellegi–Sunter on validate's pairs: runs validate in memory on the synthetic
//! registry-insurer scenario, rebuilds every linked pair's per-field counts (what the grouped
//! PSI gives the comparing side: shared tokens, own count, the peer's padded size, checked
//! against the ledger), fits the model by EM and prints the m/u table, a reliability table
//! (predicted probability bins against the observed share of right-person links) and the
//! flag rates: the command behind the figures in papers/validation.md.
//!
//! ```sh
//! cargo run --release -p blindlink-protocol --example calibration -- [persons] [seed] [stress] [waterfall.svg]
//! ```
//! Defaults: 10,000 persons, seed 1. `stress` (instead of `default`) multiplies the planted
//! wrong-person rates by 10 (same-name 4 %, household 4 %, unrelated 2 %) and raises the kana
//! and kanji variants to 30 % and 20 % of insurer records, so that EM sees ten times the
//! non-matches and the right pairs disagree more often. Two fits: `em` (λ, m and u all by EM over the linked
//! pairs' pattern histogram) and `em+own-u` (u fixed from 20,000 random pairs of the insurer's
//! own records, with the same bucketing; m and λ by EM). The field names are deliberately ones
//! no code knows (`kana`, `kanji`, `dob`, `gender`, `addr`): comparisons come from token kinds.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

use blindlink_matching::fellegi_sunter::*;
use blindlink_protocol::*;
use blindlink_psi::SizeBuckets;
use blindlink_synth::{Generator, Locale, Outcome, OutputFile, Scenario, SynthConfig, Truth};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

mod scenario;
use scenario::*;

/// The compared fields' names and token kinds, in the scenario's field order.
const FIELDS: [(&str, TokenKind); 5] = [
    ("kana", TokenKind::QGram),
    ("kanji", TokenKind::QGram),
    ("dob", TokenKind::PositionalQGram),
    ("gender", TokenKind::Exact),
    ("addr", TokenKind::QGram),
];

/// `|X ∩ Y|` of two token multisets.
fn shared(x: &[Vec<u8>], y: &[Vec<u8>]) -> u32 {
    let mut counts: HashMap<&[u8], i32> = HashMap::new();
    for t in x {
        *counts.entry(t).or_default() += 1;
    }
    let mut n = 0;
    for t in y {
        if let Some(c) = counts.get_mut(t.as_slice())
            && *c > 0
        {
            *c -= 1;
            n += 1;
        }
    }
    n
}

/// What the comparing side learns of one field (as the grouped PSI computes it: tokens plus
/// the presence marker, the peer's size padded), turned into an observation, and the peer's
/// padded group size (to check against the ledger).
fn observe(own: &[Vec<u8>], peer: &[Vec<u8>], buckets: &SizeBuckets) -> (FieldObservation, u32) {
    let peer_group = if peer.is_empty() { 0 } else { peer.len() + 1 };
    let peer_padded = buckets.padded(peer_group);
    if own.is_empty() || peer.is_empty() {
        return (FieldObservation::Missing, peer_padded as u32);
    }
    let s = shared(own, peer);
    let (low, high) = buckets.bounds(peer_padded).unwrap();
    let counts = FieldCounts {
        shared: s,
        own: own.len() as u32,
        peer_min: (low.saturating_sub(1) as u32).max(s),
        peer_max: high.saturating_sub(1) as u32,
    };
    (FieldObservation::Counts(counts), peer_padded as u32)
}

fn print_model(name: &str, model: &FellegiSunterModel) {
    println!(
        "\n## fit `{name}`: lambda {:.5}, {} pairs, {} patterns, {} iterations, converged {}, log-likelihood {:.1}",
        model.lambda,
        model.fit.pairs,
        model.fit.patterns,
        model.fit.iterations,
        model.fit.converged,
        model.fit.log_likelihood
    );
    for w in &model.fit.warnings {
        println!("warning: {w}");
    }
    println!("\n| field | level | pairs | m | u | weight (bits) |");
    println!("|---|---|---:|---:|---:|---:|");
    for field in &model.fields {
        for level in &field.levels {
            println!(
                "| {} | {}{} | {} | {:.5} | {:.5} | {:+.2} |",
                field.field,
                level.label,
                if level.veto { " (veto)" } else { "" },
                level.pairs,
                level.m,
                level.u,
                level.weight
            );
        }
    }
}

/// Bins of predicted probability: the reliability table.
const BINS: [(f64, f64); 7] = [
    (0.0, 0.01),
    (0.01, 0.1),
    (0.1, 0.5),
    (0.5, 0.9),
    (0.9, 0.99),
    (0.99, 0.999),
    (0.999, 1.0000001),
];

fn report(name: &str, model: &FellegiSunterModel, pairs: &[(Vec<Level>, bool)]) {
    print_model(name, model);
    let mut bins = [(0u64, 0.0f64, 0u64); BINS.len()];
    let (mut wrong, mut wrong_flagged, mut wrong_veto) = (0u64, 0u64, 0u64);
    let (mut right, mut right_flagged, mut right_veto) = (0u64, 0u64, 0u64);
    for (pattern, is_right) in pairs {
        let score = model.score(pattern).unwrap();
        let bin = BINS
            .iter()
            .position(|&(lo, hi)| score.probability >= lo && score.probability < hi)
            .unwrap();
        bins[bin].0 += 1;
        bins[bin].1 += score.probability;
        bins[bin].2 += u64::from(*is_right);
        let flagged = score.flagged(DEFAULT_PROBABILITY_THRESHOLD);
        if *is_right {
            right += 1;
            right_flagged += u64::from(flagged);
            right_veto += u64::from(score.veto.is_some());
        } else {
            wrong += 1;
            wrong_flagged += u64::from(flagged);
            wrong_veto += u64::from(score.veto.is_some());
        }
    }
    println!("\nreliability (`{name}`; right = the insurer record carries its own number):\n");
    println!(
        "| predicted probability | pairs | mean predicted | observed share right | wrong-person pairs |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (&(lo, hi), &(n, sum, ok)) in BINS.iter().zip(&bins) {
        let hi = hi.min(1.0);
        if n == 0 {
            println!("| [{lo}, {hi}) | 0 | - | - | 0 |");
            continue;
        }
        println!(
            "| [{lo}, {hi}) | {n} | {:.4} | {:.4} | {} |",
            sum / n as f64,
            ok as f64 / n as f64,
            n - ok
        );
    }
    println!(
        "\n`{name}` flags (probability < {DEFAULT_PROBABILITY_THRESHOLD} or a veto): wrong-person links flagged {wrong_flagged} of {wrong} ({:.2}%, {wrong_veto} by a veto), right-person links flagged {right_flagged} of {right} ({:.3}%, {right_veto} by a veto)",
        100.0 * wrong_flagged as f64 / wrong.max(1) as f64,
        100.0 * right_flagged as f64 / right.max(1) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let persons: u64 = args.first().map_or(10_000, |p| p.parse().unwrap());
    let seed: u64 = args.get(1).map_or(1, |s| s.parse().unwrap());
    let stress = match args.get(2).map_or("default", String::as_str) {
        "default" => false,
        "stress" => true,
        other => panic!("unknown setting {other}, expected default or stress"),
    };
    let svg_path = args.get(3);
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    let scenario = Scenario::RegistryInsurer;
    let mut synth = SynthConfig::new(scenario, Locale::Japanese, persons, 0.5, seed);
    if stress {
        synth.link_errors.wrong_same_name *= 10.0;
        synth.link_errors.wrong_family *= 10.0;
        synth.link_errors.wrong_unrelated *= 10.0;
        synth.corruption.kana_variant = 0.3;
        synth.corruption.kanji_variant = 0.2;
    }
    let mut data = Collected::default();
    Generator::new(synth).unwrap().run(&mut data).unwrap();
    let a = party(
        OutputFile::Insurer,
        scenario,
        &data.files[OutputFile::Insurer.file_name()],
    );
    let b = party(
        OutputFile::Registry,
        scenario,
        &data.files[OutputFile::Registry.file_name()],
    );
    let (records_a, records_b) = (a.clone(), b.clone());
    let config = mode_config(Mode::Validate);
    let ModeConfig::Validate(validate) = &config else {
        unreachable!()
    };
    assert_eq!(validate.comparing, Role::Initiator);
    let buckets = validate.buckets.clone();
    let mut da = new_driver(
        Role::Initiator,
        &config,
        a,
        &mut ChaCha20Rng::from_seed([1; 32]),
    )
    .unwrap();
    let mut db = new_driver(
        Role::Responder,
        &config,
        b,
        &mut ChaCha20Rng::from_seed([2; 32]),
    )
    .unwrap();
    let ledgers = run_in_memory(&mut da, &mut db, Mode::Validate).unwrap();
    let (oa, ob) = (da.outcome().unwrap(), db.outcome().unwrap());

    // The peer's padded sizes the comparing side's ledger records, by pair name.
    let ledger_padded: HashMap<String, Vec<u32>> = ledgers
        .initiator
        .disclosures()
        .filter_map(|e| match e.disclosure {
            Disclosure::SharedTokenCounts { pair, peer_padded } => Some((pair, peer_padded)),
            _ => None,
        })
        .collect();
    let by_link: HashMap<&str, usize> = ob
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((r.link_id.as_deref()?, i)))
        .collect();
    let outcome: HashMap<&str, Outcome> = data
        .truth
        .iter()
        .filter_map(|t| match t {
            Truth::Insurer(t) => Some((t.insurer_record_id.as_str(), t.outcome)),
            Truth::Pair(_) => None,
        })
        .collect();

    let comparisons = Comparisons::new(
        FIELDS
            .iter()
            .map(|&(name, kind)| FieldComparison::for_token_kind(name, kind))
            .collect(),
    )
    .unwrap();
    // Every linked pair (each holder of a shared number is its own pair, as validate does).
    let mut holders: HashMap<&str, u16> = HashMap::new();
    let mut pairs: Vec<(Vec<Level>, bool, usize)> = Vec::new();
    let (mut checked, mut today_wrong_flagged, mut today_right_flagged) = (0, 0, 0);
    for (i, row) in oa.rows.iter().enumerate() {
        if !matches!(
            row.status,
            LinkStatus::Linked | LinkStatus::SuspectedWrongPerson
        ) {
            continue;
        }
        let Some(link) = row.link_id.as_deref() else {
            continue;
        };
        assert_eq!(records_a.record(i).unwrap().id, row.local_id);
        let j = by_link[link];
        let holder = holders.entry(link).or_default();
        let name = format!("{link}#{holder}");
        *holder += 1;
        let (observations, padded): (Vec<FieldObservation>, Vec<u32>) = records_a
            .record(i)
            .unwrap()
            .fields
            .iter()
            .zip(&records_b.record(j).unwrap().fields)
            .map(|(own, peer)| observe(own, peer, &buckets))
            .unzip();
        if let Some(expected) = ledger_padded.get(name.as_str()) {
            assert_eq!(expected, &padded, "pair {name}");
            checked += 1;
        }
        let is_right = match outcome[row.local_id.as_str()] {
            Outcome::Correct => true,
            Outcome::WrongPerson(_) => false,
            other => panic!("linked record {} has outcome {other:?}", row.local_id),
        };
        let today = row.status == LinkStatus::SuspectedWrongPerson;
        if is_right {
            today_right_flagged += usize::from(today);
        } else {
            today_wrong_flagged += usize::from(today);
        }
        pairs.push((comparisons.pattern(&observations).unwrap(), is_right, i));
    }
    let wrong = pairs.iter().filter(|p| !p.1).count();
    println!(
        "# validate, registry-insurer, {persons} persons, seed {seed}, {}: {} linked pairs ({} wrong-person), {checked} checked against the ledger's padded sizes",
        if stress { "stress" } else { "default rates" },
        pairs.len(),
        wrong
    );
    println!(
        "the session's own flags (validate's Fellegi-Sunter scoring with the scenario's default comparisons): wrong-person flagged {today_wrong_flagged} of {wrong}, right-person flagged {today_right_flagged} of {}",
        pairs.len() - wrong
    );
    let mut histogram = PatternHistogram::new();
    for (pattern, _, _) in &pairs {
        histogram.add(pattern);
    }
    let labelled: Vec<(Vec<Level>, bool)> = pairs.iter().map(|(p, r, _)| (p.clone(), *r)).collect();

    let em = estimate(&comparisons, &histogram, &EmSettings::default()).unwrap();
    report("em", &em, &labelled);

    // u from random pairs of the insurer's own records: nothing from the peer.
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut own_pairs = PatternHistogram::new();
    let n = records_a.len();
    for _ in 0..20_000 {
        // Modulo bias is below 2^-40 for these sizes.
        let (x, y) = (
            (rng.next_u64() % n as u64) as usize,
            (rng.next_u64() % n as u64) as usize,
        );
        if x == y {
            continue;
        }
        let observations: Vec<FieldObservation> = records_a
            .record(x)
            .unwrap()
            .fields
            .iter()
            .zip(&records_a.record(y).unwrap().fields)
            .map(|(own, peer)| observe(own, peer, &buckets).0)
            .collect();
        own_pairs.add(&comparisons.pattern(&observations).unwrap());
    }
    let settings = EmSettings {
        fixed: comparisons
            .fields
            .iter()
            .enumerate()
            .map(|(f, c)| FixedProbabilities {
                field: c.field.clone(),
                m: None,
                u: Some(own_pairs.level_shares(f, c.levels.len(), 0.5)),
            })
            .collect(),
        ..EmSettings::default()
    };
    let own_u = estimate(&comparisons, &histogram, &settings).unwrap();
    report("em+own-u", &own_u, &labelled);

    if let Some(path) = svg_path {
        // The waterfall of the first wrong-person pair, under the own-u fit.
        let (pattern, _, i) = pairs.iter().find(|p| !p.1).unwrap();
        let why = own_u.explain(pattern).unwrap();
        let svg = waterfall_svg(&why, &format!("insurer record {}", oa.rows[*i].local_id)).unwrap();
        std::fs::write(path, svg).unwrap();
        println!(
            "\nwaterfall of insurer record {} written to {path}",
            oa.rows[*i].local_id
        );
        println!(
            "```json\n{}\n```",
            serde_json::to_string_pretty(&why).unwrap()
        );
    }
}
