use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::MatchingError;

fn qgram(name: &str) -> FieldComparison {
    FieldComparison::for_token_kind(name, TokenKind::QGram)
}

fn counts(shared: u32, own: u32, peer_min: u32, peer_max: u32) -> FieldObservation {
    FieldObservation::Counts(FieldCounts {
        shared,
        own,
        peer_min,
        peer_max,
    })
}

/// The label of the level `observation` reaches under `kind`'s default comparison, or the
/// error text.
fn check(kind: TokenKind, observation: FieldObservation, expected: &str) {
    let comparison = FieldComparison::for_token_kind("f", kind);
    let got = match comparison.level_of(&observation) {
        Ok(level) => match level.index() {
            Some(i) => comparison.levels[i].label.clone(),
            None => "missing".to_owned(),
        },
        Err(e) => e.to_string(),
    };
    assert_eq!(got, expected, "{kind:?} {observation:?}");
}

#[test]
fn levels_from_counts() {
    use TokenKind::*;
    check(QGram, counts(5, 5, 5, 5), "exact");
    // The peer's bucket 5..=6 allows exactly 5 tokens: the upper bound is 1.
    check(QGram, counts(5, 5, 5, 6), "exact");
    // All own tokens found but the peer has at least 6: Dice at most 10/11.
    check(QGram, counts(5, 5, 6, 8), "dice>=0.9");
    check(QGram, counts(9, 10, 10, 10), "dice>=0.9");
    check(QGram, counts(8, 10, 10, 10), "dice>=0.7");
    // 8 shared of 10, peer 9..=12: upper bound 16/19 = 0.84.
    check(QGram, counts(8, 10, 9, 12), "dice>=0.7");
    check(QGram, counts(6, 10, 10, 10), "different");
    check(QGram, counts(0, 10, 10, 10), "different");
    // Fewer peer tokens than shared is impossible; the bound uses the shared count then.
    check(QGram, counts(4, 4, 1, 4), "exact");
    check(QGram, FieldObservation::Missing, "missing");
    check(QGram, counts(0, 0, 3, 3), "missing");
    check(QGram, counts(0, 3, 0, 0), "missing");
    check(Exact, counts(1, 1, 1, 1), "exact");
    check(Exact, counts(0, 1, 1, 1), "different");
    check(PositionalQGram, counts(8, 8, 8, 8), "exact");
    check(PositionalQGram, counts(7, 8, 8, 8), "typo");
    check(PositionalQGram, counts(9, 10, 9, 12), "typo");
    check(PositionalQGram, counts(6, 8, 8, 8), "different");
    check(Numeric, counts(3, 3, 3, 3), "exact");
    check(
        QGram,
        counts(6, 5, 6, 6),
        "field 'f': 6 shared tokens, more than this side's 5 or the peer's at most 6",
    );
    check(
        QGram,
        counts(2, 5, 4, 3),
        "field 'f': peer size range 4..=3 is empty",
    );
}

#[test]
fn dice_bounds_of_a_bucket() {
    let c = FieldCounts {
        shared: 8,
        own: 10,
        peer_min: 9,
        peer_max: 12,
    };
    assert_eq!(c.dice_bounds(), Some((16.0 / 22.0, 16.0 / 19.0)));
    assert_eq!(
        FieldCounts::exact(3, 4, 5).dice_bounds(),
        Some((6.0 / 9.0, 6.0 / 9.0))
    );
    assert_eq!(FieldCounts::exact(0, 0, 5).dice_bounds(), None);
}

fn check_declaration(levels: Vec<ComparisonLevel>, expected: &str) {
    let got = match FieldComparison::new("dob", levels) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    assert_eq!(got, expected);
}

#[test]
fn declarations_are_checked() {
    let l = ComparisonLevel::new;
    let v = ComparisonLevel::veto;
    check_declaration(vec![l("exact", 1.0), v("different", 0.0)], "ok");
    check_declaration(
        vec![l("exact", 1.0)],
        "comparison of field 'dob': 1 levels, expected 2 to 16",
    );
    check_declaration(
        vec![l("exact", 1.0), l("exact", 0.0)],
        "comparison of field 'dob': level 'exact' is declared twice",
    );
    check_declaration(
        vec![l("", 1.0), l("x", 0.0)],
        "comparison of field 'dob': level 0 has an empty label",
    );
    check_declaration(
        vec![l("exact", 1.5), l("x", 0.0)],
        "comparison of field 'dob': level 'exact' has min_dice 1.5, expected a number in [0, 1]",
    );
    check_declaration(
        vec![l("exact", 1.0), l("close", 0.5)],
        "comparison of field 'dob': the last level 'close' has min_dice 0.5, expected 0 so that every pair has a level",
    );
    check_declaration(
        vec![l("exact", 1.0), v("close", 0.5), l("far", 0.0)],
        "comparison of field 'dob': level 'close' vetoes but the worse level 'far' does not",
    );
    check_declaration(
        vec![l("exact", 1.0), l("also", 1.0), l("far", 0.0)],
        "comparison of field 'dob': level 'also' has min_dice 1, expected below the previous level's 1",
    );
    assert_eq!(
        Comparisons::new(vec![qgram("a"), qgram("a")])
            .unwrap_err()
            .to_string(),
        "comparison of field 'a': the field is compared twice"
    );
    assert_eq!(
        Comparisons::new(Vec::new()).unwrap_err().to_string(),
        "comparison of field '': no field is compared"
    );
    let two = Comparisons::new(vec![qgram("a"), qgram("b")]).unwrap();
    assert_eq!(
        two.pattern(&[FieldObservation::Missing])
            .unwrap_err()
            .to_string(),
        "field 'a': a pair has 1 field observations, expected one per compared field (2)"
    );
}

/// A known model to draw pairs from: λ and per field (m, u), with a missing rate.
struct Truth {
    lambda: f64,
    fields: Vec<(Vec<f64>, Vec<f64>)>,
    missing: f64,
}

fn draw(p: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let x: f64 = rng.random_range(0.0..1.0);
    let mut acc = 0.0;
    for (i, pi) in p.iter().enumerate() {
        acc += pi;
        if x < acc {
            return i;
        }
    }
    p.len() - 1
}

fn simulate(truth: &Truth, pairs: u64, seed: u64) -> PatternHistogram {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut histogram = PatternHistogram::new();
    let mut pattern = vec![Level::MISSING; truth.fields.len()];
    for _ in 0..pairs {
        let is_match = rng.random_range(0.0..1.0) < truth.lambda;
        for (slot, (m, u)) in pattern.iter_mut().zip(&truth.fields) {
            let level = draw(if is_match { m } else { u }, &mut rng);
            *slot = if rng.random_range(0.0..1.0) < truth.missing {
                Level::MISSING
            } else {
                Level::at(level)
            };
        }
        histogram.add(&pattern);
    }
    histogram
}

fn comparisons_for(truth: &Truth) -> Comparisons {
    Comparisons::new(
        truth
            .fields
            .iter()
            .enumerate()
            .map(|(f, (m, _))| {
                let levels = (0..m.len())
                    .map(|l| {
                        ComparisonLevel::new(
                            &format!("l{l}"),
                            1.0 - l as f64 / (m.len() - 1) as f64,
                        )
                    })
                    .collect();
                FieldComparison::new(&format!("f{f}"), levels).unwrap()
            })
            .collect(),
    )
    .unwrap()
}

/// The largest absolute error of the fitted λ, m and u against the truth.
fn recovery_error(truth: &Truth, model: &FellegiSunterModel) -> f64 {
    let mut worst = (model.lambda - truth.lambda).abs();
    for ((m, u), field) in truth.fields.iter().zip(&model.fields) {
        for (l, level) in field.levels.iter().enumerate() {
            worst = worst
                .max((level.m - m[l]).abs())
                .max((level.u - u[l]).abs());
        }
    }
    worst
}

fn four(a: f64, b: f64, c: f64) -> Vec<f64> {
    vec![a, b, c, 1.0 - a - b - c]
}

/// EM on 100,000 pairs drawn from a known model recovers λ, every m and every u within
/// `2 / sqrt(N · min(λ, 1 - λ))` (absolute): four standard errors of a share estimated from
/// the smaller class (0.009 at λ = 0.5, 0.045 at λ = 0.98), for priors from 5 % to 98 %
/// matches (the last is validate's case: nearly every linked pair is right), with 5 % of
/// fields missing at random.
#[test]
fn em_recovers_known_parameters() {
    let settings = [
        (0.05, 0.0, 11),
        (0.3, 0.05, 12),
        (0.5, 0.05, 13),
        (0.9, 0.05, 14),
        (0.98, 0.05, 15),
    ];
    for (lambda, missing, seed) in settings {
        let truth = Truth {
            lambda,
            fields: vec![
                (four(0.85, 0.08, 0.04), four(0.02, 0.05, 0.13)),
                (four(0.7, 0.2, 0.05), four(0.05, 0.1, 0.25)),
                (vec![0.95, 0.03, 0.02], vec![0.01, 0.04, 0.95]),
                (vec![0.97, 0.03], vec![0.5, 0.5]),
                (four(0.6, 0.2, 0.1), four(0.01, 0.04, 0.15)),
            ],
            missing,
        };
        let histogram = simulate(&truth, 100_000, seed);
        let model = estimate(&comparisons_for(&truth), &histogram, &EmSettings::default()).unwrap();
        let error = recovery_error(&truth, &model);
        assert!(model.fit.converged, "lambda {lambda}: {:?}", model.fit);
        let tolerance = 2.0 / (100_000.0 * lambda.min(1.0 - lambda)).sqrt();
        assert!(
            error < tolerance,
            "lambda {lambda}: error {error} over {tolerance}, fitted lambda {}",
            model.lambda
        );
        // At most 5 x 5 x 4 x 3 x 5 patterns (levels and missing), whatever the pairs.
        assert!(histogram.len() <= 1500, "{} patterns", histogram.len());
    }
}

/// With u fixed (as from random pairs of own records), EM estimates m and λ on few pairs.
#[test]
fn em_with_fixed_u() {
    let truth = Truth {
        lambda: 0.99,
        fields: vec![
            (four(0.9, 0.05, 0.03), four(0.01, 0.02, 0.07)),
            (vec![0.95, 0.03, 0.02], vec![0.002, 0.01, 0.988]),
            (vec![0.99, 0.01], vec![0.5, 0.5]),
        ],
        missing: 0.0,
    };
    let histogram = simulate(&truth, 5_000, 21);
    let comparisons = comparisons_for(&truth);
    let settings = EmSettings {
        fixed: truth
            .fields
            .iter()
            .enumerate()
            .map(|(f, (_, u))| FixedProbabilities {
                field: format!("f{f}"),
                m: None,
                u: Some(u.clone()),
            })
            .collect(),
        ..EmSettings::default()
    };
    let model = estimate(&comparisons, &histogram, &settings).unwrap();
    assert!(model.fit.converged);
    assert!(model.fields.iter().all(|f| f.fixed_u && !f.fixed_m));
    assert!((model.lambda - 0.99).abs() < 0.01, "{}", model.lambda);
    for ((m, u), field) in truth.fields.iter().zip(&model.fields) {
        for (l, level) in field.levels.iter().enumerate() {
            assert_eq!(level.u, u[l]);
            assert!((level.m - m[l]).abs() < 0.02, "{field:?}");
        }
    }
}

#[test]
fn no_pairs_is_an_error_unless_everything_is_fixed() {
    let comparisons = Comparisons::new(vec![qgram("a"), qgram("b"), qgram("c")]).unwrap();
    assert_eq!(
        estimate(
            &comparisons,
            &PatternHistogram::new(),
            &EmSettings::default()
        )
        .unwrap_err()
        .to_string(),
        "fellegi-sunter: no pairs to estimate from (the pattern histogram is empty); give lambda, m and u in the config"
    );
    let fixed = vec![(four(0.9, 0.05, 0.03), four(0.01, 0.02, 0.07)); 3];
    let model = FellegiSunterModel::fixed(&comparisons, 0.5, &fixed).unwrap();
    assert_eq!(model.fit.iterations, 0);
    assert!(model.fit.converged);
    assert!(model.fit.warnings.is_empty());
    // log2(0.9 / 0.01) per field, the prior 0.
    let score = model.score(&[Level::at(0); 3]).unwrap();
    assert!((score.match_weight - 3.0 * 90f64.log2()).abs() < 1e-12);
}

/// One pattern, every field agreeing: nothing tells the classes apart, so λ goes to the
/// match class, m puts nearly everything on the best level and u stays at the prior's
/// uniform shares; the warnings say so.
#[test]
fn all_pairs_agree() {
    let comparisons = Comparisons::new(vec![
        qgram("kana"),
        FieldComparison::for_token_kind("dob", TokenKind::PositionalQGram),
        FieldComparison::for_token_kind("sex", TokenKind::Exact),
    ])
    .unwrap();
    let mut histogram = PatternHistogram::new();
    histogram.add_count(&[Level::at(0); 3], 1000);
    let model = estimate(&comparisons, &histogram, &EmSettings::default()).unwrap();
    assert_eq!((model.fit.pairs, model.fit.patterns), (1000, 1));
    assert!(model.fit.converged);
    assert!(model.lambda > 0.998, "{}", model.lambda);
    // m of the best level: (1000 λ-share + 0.5) / (matches + 0.5 L).
    for field in &model.fields {
        let best = &field.levels[0];
        assert!(best.m > 0.998, "{field:?}");
        // The levels no pair reached share the pseudo-counts alike; the best level's u gets
        // the little non-match mass EM has left (about half a pair), so agreeing tells little.
        for level in &field.levels[1..] {
            assert_eq!(level.u, field.levels[1].u);
            assert_eq!(level.m, field.levels[1].m);
        }
        assert!(
            best.u < 0.6 && best.weight > 0.0 && best.weight < 2.0,
            "{field:?}"
        );
    }
    assert_eq!(
        model.fit.warnings,
        [
            "about 0.5 of 1000 pairs are estimated non-matches: u rests mostly on the prior pseudo-counts; fix u in the config (e.g. from random pairs of own records)",
            "field 'kana': every compared pair agrees at its best level; its m and u below that level are the pseudo-counts' alone",
            "field 'dob': every compared pair agrees at its best level; its m and u below that level are the pseudo-counts' alone",
            "field 'sex': every compared pair agrees at its best level; its m and u below that level are the pseudo-counts' alone",
        ]
    );
    let score = model.score(&[Level::at(0); 3]).unwrap();
    assert!(score.probability > 0.999 && !score.flagged(0.5));
}

#[test]
fn one_pattern_of_disagreement_and_few_fields() {
    let comparisons = Comparisons::new(vec![qgram("a")]).unwrap();
    let mut histogram = PatternHistogram::new();
    histogram.add_count(&[Level::at(3)], 7);
    let model = estimate(&comparisons, &histogram, &EmSettings::default()).unwrap();
    assert_eq!(
        model.fit.warnings[0],
        "1 compared field(s): a two-class model of agreement patterns is identifiable only from 3 conditionally independent fields on; fix u (or m) in the config"
    );
    assert!(model.fit.warnings.contains(
        &"field 'a': level 'exact' was never observed; its m and u are the pseudo-counts' alone"
            .to_owned()
    ));
    let score = model.score(&[Level::at(3)]).unwrap();
    assert!((0.0..=1.0).contains(&score.probability));
}

#[test]
fn settings_and_patterns_are_checked() {
    let comparisons = Comparisons::new(vec![qgram("a"), qgram("b"), qgram("c")]).unwrap();
    let mut histogram = PatternHistogram::new();
    histogram.add(&[Level::at(0); 3]);
    let check_settings = |settings: EmSettings, expected: &str| {
        assert_eq!(
            estimate(&comparisons, &histogram, &settings)
                .unwrap_err()
                .to_string(),
            expected
        );
    };
    check_settings(
        EmSettings {
            tolerance: 0.0,
            ..EmSettings::default()
        },
        "fellegi-sunter: tolerance 0 is not a positive number",
    );
    check_settings(
        EmSettings {
            fixed_lambda: Some(1.0),
            ..EmSettings::default()
        },
        "fellegi-sunter: fixed_lambda 1 is not in (0, 1)",
    );
    check_settings(
        EmSettings {
            pseudo_count: -1.0,
            ..EmSettings::default()
        },
        "fellegi-sunter: pseudo_count -1 is not a number >= 0",
    );
    let fixed = |field: &str, m: Option<Vec<f64>>| EmSettings {
        fixed: vec![FixedProbabilities {
            field: field.to_owned(),
            m,
            u: None,
        }],
        ..EmSettings::default()
    };
    check_settings(
        fixed("z", None),
        "comparison of field 'z': fixed m/u given for a field that is not compared",
    );
    check_settings(
        fixed("b", Some(vec![0.5, 0.5])),
        "comparison of field 'b': fixed m has 2 values, expected one per level (4)",
    );
    check_settings(
        fixed("b", Some(vec![0.5, 0.5, 0.5, 0.5])),
        "comparison of field 'b': fixed m sums to 2, expected 1",
    );
    check_settings(
        fixed("b", Some(vec![1.5, -0.5, 0.0, 0.0])),
        "comparison of field 'b': fixed m has a value outside [0, 1]",
    );
    let mut bad = PatternHistogram::new();
    bad.add(&[Level::at(0), Level::at(4), Level::at(0)]);
    assert_eq!(
        estimate(&comparisons, &bad, &EmSettings::default())
            .unwrap_err()
            .to_string(),
        "fellegi-sunter: field 'b' has 4 levels, a pattern names level 4"
    );
    let model = estimate(&comparisons, &histogram, &EmSettings::default()).unwrap();
    assert_eq!(
        model.score(&[Level::at(0)]).unwrap_err().to_string(),
        "fellegi-sunter: a pattern of 1 levels, expected one per compared field (3)"
    );
}

#[test]
fn iteration_cap_is_reported() {
    let truth = Truth {
        lambda: 0.5,
        fields: vec![(four(0.7, 0.1, 0.1), four(0.1, 0.1, 0.1)); 3],
        missing: 0.0,
    };
    let histogram = simulate(&truth, 2_000, 5);
    let settings = EmSettings {
        max_iterations: 2,
        ..EmSettings::default()
    };
    let model = estimate(&comparisons_for(&truth), &histogram, &settings).unwrap();
    assert_eq!(model.fit.iterations, 2);
    assert!(!model.fit.converged);
    assert!(
        model
            .fit
            .warnings
            .last()
            .unwrap()
            .starts_with("em stopped after 2 iterations without converging (largest change "),
        "{:?}",
        model.fit.warnings
    );
}

#[test]
fn non_monotone_estimates_are_pooled() {
    let comparisons = Comparisons::new(vec![qgram("a")]).unwrap();
    // Level 1 would weigh more than level 0 (0.3/0.01 against 0.5/0.1): pooled.
    let model = FellegiSunterModel::fixed(
        &comparisons,
        0.5,
        &[(vec![0.5, 0.3, 0.1, 0.1], vec![0.1, 0.01, 0.19, 0.7])],
    )
    .unwrap();
    let w: Vec<f64> = model.fields[0].levels.iter().map(|l| l.weight).collect();
    assert_eq!(w[0], (0.8f64 / 0.11).log2());
    assert_eq!(w[1], w[0]);
    assert_eq!(w[2], (0.1f64 / 0.19).log2());
    assert_eq!(w[3], (0.1f64 / 0.7).log2());
}

#[test]
fn model_json_round_trip_and_errors() {
    let comparisons = Comparisons::new(vec![
        qgram("name"),
        FieldComparison::for_token_kind("sex", TokenKind::Exact),
    ])
    .unwrap();
    let model = FellegiSunterModel::fixed(
        &comparisons,
        0.9,
        &[
            (four(0.9, 0.05, 0.03), four(0.01, 0.02, 0.07)),
            (vec![0.98, 0.02], vec![0.5, 0.5]),
        ],
    )
    .unwrap();
    let json = model.to_json().unwrap();
    assert!(json.contains("\"label\": \"dice>=0.9\""));
    // serde_json reads floats back to within an ulp or so, not always bit for bit.
    let back = FellegiSunterModel::from_json(&json).unwrap();
    assert_eq!(
        (back.comparisons(), &back.fit),
        (model.comparisons(), &model.fit)
    );
    for (a, b) in back.fields.iter().zip(&model.fields) {
        for (a, b) in a.levels.iter().zip(&b.levels) {
            for (x, y) in [(a.m, b.m), (a.u, b.u), (a.weight, b.weight)] {
                assert!((x - y).abs() < 1e-12, "{x} {y}");
            }
        }
    }
    assert_eq!(model.comparisons(), comparisons);
    let bad = json.replacen("\"lambda\": 0.9", "\"lambda\": 1.5", 1);
    assert_eq!(
        FellegiSunterModel::from_json(&bad).unwrap_err().to_string(),
        "fellegi-sunter: model json: lambda 1.5 is not in (0, 1)"
    );
    assert!(
        FellegiSunterModel::from_json("{")
            .unwrap_err()
            .to_string()
            .starts_with(
                "fellegi-sunter: model json: EOF while parsing an object at line 1 column 1"
            )
    );
}

#[test]
fn level_shares_estimate_u_from_known_non_matches() {
    let mut own_pairs = PatternHistogram::new();
    own_pairs.add_count(&[Level::at(3)], 96);
    own_pairs.add_count(&[Level::at(2)], 3);
    own_pairs.add_count(&[Level::at(0)], 1);
    own_pairs.add_count(&[Level::MISSING], 50);
    assert_eq!(
        own_pairs.level_shares(0, 4, 0.0),
        vec![0.01, 0.0, 0.03, 0.96]
    );
    assert_eq!(own_pairs.level_shares(0, 4, 1.0)[1], 1.0 / 104.0);
}

#[test]
fn waterfall_is_deterministic_svg() {
    let comparisons = Comparisons::new(vec![
        qgram("kana"),
        FieldComparison::for_token_kind("dob", TokenKind::PositionalQGram),
        FieldComparison::for_token_kind("sex", TokenKind::Exact),
    ])
    .unwrap();
    let model = FellegiSunterModel::fixed(
        &comparisons,
        0.95,
        &[
            (four(0.9, 0.05, 0.03), four(0.01, 0.02, 0.07)),
            (vec![0.95, 0.04, 0.01], vec![0.001, 0.01, 0.989]),
            (vec![0.98, 0.02], vec![0.5, 0.5]),
        ],
    )
    .unwrap();
    let why = model
        .explain(&[Level::at(0), Level::at(2), Level::MISSING])
        .unwrap();
    let svg = waterfall_svg(&why, "pair 1").unwrap();
    assert_eq!(svg, waterfall_svg(&why, "pair 1").unwrap());
    for text in [
        "prior",
        "kana: exact",
        "dob: different",
        "sex: missing",
        "total",
        "veto",
    ] {
        assert!(svg.contains(text), "{text} not in the chart");
    }
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let mut broken = why.clone();
    broken.fields[0].weight = f64::NAN;
    assert_eq!(
        waterfall_svg(&broken, "x").unwrap_err(),
        MatchingError::FellegiSunter {
            reason: "cannot draw the waterfall chart: a weight is not finite".into()
        }
    );
}

fn distribution(levels: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.001f64..1.0, levels).prop_map(|v| {
        let sum: f64 = v.iter().sum();
        v.iter().map(|x| x / sum).collect()
    })
}

/// A fixed model over three fields (2, 3 and 4 levels; the 2- and 3-level ones veto at
/// their worst level) and a pattern.
fn model_and_pattern() -> impl Strategy<Value = (FellegiSunterModel, Vec<Level>)> {
    let comparisons = Comparisons::new(vec![
        FieldComparison::for_token_kind("sex", TokenKind::Exact),
        FieldComparison::for_token_kind("dob", TokenKind::PositionalQGram),
        qgram("name"),
    ])
    .unwrap();
    (
        0.001f64..0.999,
        (distribution(2), distribution(2)),
        (distribution(3), distribution(3)),
        (distribution(4), distribution(4)),
        prop::collection::vec(0usize..5, 3),
    )
        .prop_map(move |(lambda, a, b, c, raw)| {
            let model = FellegiSunterModel::fixed(&comparisons, lambda, &[a, b, c]).unwrap();
            let pattern = raw
                .iter()
                .zip([2, 3, 4])
                .map(|(&r, levels)| {
                    if r >= levels {
                        Level::MISSING
                    } else {
                        Level::at(r)
                    }
                })
                .collect();
            (model, pattern)
        })
}

proptest! {
    #[test]
    fn weights_add_up_to_the_total((model, pattern) in model_and_pattern()) {
        let score = model.score(&pattern).unwrap();
        let why = model.explain(&pattern).unwrap();
        let mut sum = why.prior_weight;
        for field in &why.fields {
            sum += field.weight;
        }
        prop_assert_eq!(sum, why.match_weight);
        prop_assert_eq!(why.match_weight, score.match_weight);
        prop_assert_eq!(why.probability, score.probability);
        prop_assert_eq!(why.flagged(0.5), score.flagged(0.5));
        prop_assert!((0.0..=1.0).contains(&score.probability));
    }

    #[test]
    fn raising_a_level_never_lowers_the_probability(
        (model, pattern) in model_and_pattern(),
        field in 0usize..3,
    ) {
        if let Some(l) = pattern[field].index().filter(|&l| l > 0) {
            let mut better = pattern.clone();
            better[field] = Level::at(l - 1);
            let (low, high) = (model.score(&pattern).unwrap(), model.score(&better).unwrap());
            prop_assert!(high.match_weight >= low.match_weight);
            prop_assert!(high.probability >= low.probability);
            prop_assert!(!high.flagged(0.5) || low.flagged(0.5));
        }
    }

    /// The same on models fitted by EM to arbitrary histograms.
    #[test]
    fn fitted_models_are_monotone_and_bounded(
        entries in prop::collection::vec(
            (prop::collection::vec(0usize..5, 3), 1u64..500), 1..30),
        field in 0usize..3,
    ) {
        let comparisons = Comparisons::new(vec![qgram("a"), qgram("b"), qgram("c")]).unwrap();
        let mut histogram = PatternHistogram::new();
        let to_pattern = |raw: &[usize]| -> Vec<Level> {
            raw.iter().map(|&r| if r == 4 { Level::MISSING } else { Level::at(r) }).collect()
        };
        for (raw, n) in &entries {
            histogram.add_count(&to_pattern(raw), *n);
        }
        let model = estimate(&comparisons, &histogram, &EmSettings::default()).unwrap();
        for (raw, _) in &entries {
            let pattern = to_pattern(raw);
            let score = model.score(&pattern).unwrap();
            prop_assert!((0.0..=1.0).contains(&score.probability));
            prop_assert!(score.match_weight.is_finite());
            if let Some(l) = pattern[field].index().filter(|&l| l > 0) {
                let mut better = pattern.clone();
                better[field] = Level::at(l - 1);
                prop_assert!(model.score(&better).unwrap().probability >= score.probability);
            }
        }
    }
}

#[test]
fn default_comparisons_are_valid_and_veto_only_exact_kinds() {
    use TokenKind::*;
    for (kind, levels, vetoes) in [
        (Exact, 2, 1),
        (PositionalQGram, 3, 1),
        (QGram, 4, 0),
        (Numeric, 4, 0),
    ] {
        let comparison = FieldComparison::for_token_kind("any name", kind);
        comparison.check().unwrap();
        assert_eq!(comparison.levels.len(), levels, "{kind:?}");
        assert_eq!(
            comparison.levels.iter().filter(|l| l.veto).count(),
            vetoes,
            "{kind:?}"
        );
    }
}

proptest! {
    /// More shared tokens (all else equal) never give a worse level, and the Dice bounds
    /// stay ordered within [0, 1].
    #[test]
    fn sharing_more_never_lowers_the_level(
        own in 1u32..40,
        peer_min in 0u32..40,
        spread in 0u32..12,
        shared in 0u32..40,
    ) {
        let peer_max = (peer_min + spread).max(1);
        let shared = shared.min(own).min(peer_max);
        prop_assume!(shared < own.min(peer_max));
        let comparison = qgram("f");
        let at = |s: u32| {
            let counts = FieldCounts { shared: s, own, peer_min: peer_min.max(s), peer_max };
            let (low, high) = counts.dice_bounds().unwrap();
            assert!(0.0 <= low && low <= high && high <= 1.0, "{counts:?}");
            comparison.level_of(&FieldObservation::Counts(counts)).unwrap().index().unwrap()
        };
        prop_assert!(at(shared + 1) <= at(shared));
    }
}
