//! Every attack on small synthetic data: what it must recover, and what must stop it.

use blindlink_encoding::LinkageSecret;
use blindlink_synth::Locale;

use super::*;

fn secret(s: &str) -> LinkageSecret {
    LinkageSecret::from_bytes(s.as_bytes().to_vec()).unwrap()
}

fn ja(persons: u64) -> LinkedFiles {
    LinkedFiles::generate(Locale::Japanese, persons, 1.0, 3).unwrap()
}

fn victim(files: &LinkedFiles, config: &EncodingConfig, seed: Option<[u8; 32]>) -> Vec<Vec<u8>> {
    let mut encoder = config.encoder(files.locale, &secret("shared")).unwrap();
    if let Some(seed) = seed {
        encoder = encoder.with_blip_seed(seed);
    }
    config
        .encode(files.locale, &files.victim, &encoder)
        .unwrap()
}

fn per_field(hardening: Hardening) -> EncodingConfig {
    EncodingConfig {
        layout: FilterLayout::PerField,
        bits: 256,
        ..EncodingConfig::clk()
    }
    .hardened(hardening)
}

#[test]
fn linked_files_carry_their_ground_truth() {
    let files = LinkedFiles::generate(Locale::Latin, 100, 0.5, 1).unwrap();
    let pairs = files.true_pairs();
    assert_eq!(
        files.reference.columns,
        ["given_name", "surname", "date_of_birth", "sex", "address"]
    );
    assert_eq!(pairs.len(), files.victim.person.iter().flatten().count());
    assert!(pairs.iter().all(|&(r, v)| files.same_person(r, v)));
    assert!((40..=60).contains(&pairs.len()), "{} pairs", pairs.len());
}

/// (hardening, share of victim records the key holder re-identifies 1-to-1 at least).
fn check_key_holder(hardening: Hardening, at_least: f64) {
    let files = ja(80);
    let config = EncodingConfig::clk().hardened(hardening);
    let holder = KeyHolder::new(
        &config,
        files.locale,
        &secret("shared"),
        BlipKnowledge::None,
    )
    .unwrap();
    let guesses = holder
        .decode_records(&victim(&files, &config, None), &files.reference)
        .unwrap();
    let score = AttackScore::measure(&guesses, 10, |t, c| files.same_person(c, t));
    assert!(
        score.reidentified() >= at_least && score.precision() >= at_least,
        "{hardening:?}: {score:?}"
    );
}

#[test]
fn the_key_holder_decodes_clks_whatever_the_hardening() {
    check_key_holder(Hardening::None, 1.0);
    check_key_holder(Hardening::Balance, 1.0);
    check_key_holder(Hardening::XorFold, 1.0);
    check_key_holder(Hardening::Rule90, 1.0);
    check_key_holder(Hardening::Permute, 1.0);
    check_key_holder(Hardening::SaltYear, 1.0);
    check_key_holder(Hardening::Blip(2.0), 1.0);
}

#[test]
fn keyed_blip_is_stripped_and_fresh_blip_is_not() {
    let files = ja(80);
    let config = per_field(Hardening::Blip(2.0));
    let seed = [9; 32];
    let encoded = victim(&files, &config, Some(seed));
    let exact = |knowledge| {
        let holder = KeyHolder::new(&config, files.locale, &secret("shared"), knowledge).unwrap();
        let guesses = holder.decode_records(&encoded, &files.reference).unwrap();
        let exact = guesses.iter().filter(|g| g.confidence == 1.0).count();
        let dates = holder
            .decode_fields(
                &encoded,
                |f| field_dictionary(files.locale, &files.reference, f, 2),
                &[],
            )
            .unwrap();
        let truth = field_truth(files.locale, &files.victim, 2, 2);
        let (guesses, dictionary) = &dates[2];
        let date_exact = guesses
            .iter()
            .enumerate()
            .filter(|(t, g)| {
                g.confidence == 1.0
                    && g.candidates.len() == 1
                    && value_is_right(&truth, dictionary, *t, g.candidates[0])
            })
            .count();
        (exact, date_exact)
    };
    // BLIP keyed by what the peer knows: the flips are XORed back out, and 79 of 80 filters
    // equal the encoding of a reference record exactly (the other differs in notation the
    // normaliser does not fold), 77 of 80 dates of birth decode exactly.
    assert_eq!(exact(BlipKnowledge::Seed(seed)), (79, 77));
    // Fresh flips: nothing is stripped, no filter and no date decodes exactly.
    assert_eq!(exact(BlipKnowledge::None), (0, 0));
}

#[test]
fn the_key_holder_decodes_per_field_filters_value_by_value() {
    check_fields(Hardening::None);
    // A year-of-birth salt only multiplies the dictionary by the number of years.
    check_fields(Hardening::SaltYear);
}

fn check_fields(hardening: Hardening) {
    let files = ja(80);
    let config = per_field(hardening);
    let holder = KeyHolder::new(
        &config,
        files.locale,
        &secret("shared"),
        BlipKnowledge::None,
    )
    .unwrap();
    let mut years = birth_years(files.locale, &files.reference);
    years.sort_unstable();
    years.dedup();
    let decoded = holder
        .decode_fields(
            &victim(&files, &config, None),
            |f| field_dictionary(files.locale, &files.reference, f, 2),
            &years,
        )
        .unwrap();
    let shares: Vec<f64> = decoded
        .iter()
        .enumerate()
        .map(|(f, (guesses, dictionary))| {
            let truth = field_truth(files.locale, &files.victim, f, 2);
            AttackScore::measure(guesses, 10, |t, c| value_is_right(&truth, dictionary, t, c))
                .reidentified()
        })
        .collect();
    // Kana name, kanji name, date of birth (against every day 1900-2025), sex, address.
    assert!(
        shares.iter().all(|&s| s >= 0.9),
        "{hardening:?}: {shares:?}"
    );
    assert_eq!(shares[3], 1.0);
}

#[test]
fn graph_matching_reidentifies_clks_and_record_salting_stops_it() {
    let files = ja(300);
    let run = |hardening| {
        let config = EncodingConfig::clk().hardened(hardening);
        let own = config
            .encode(
                files.locale,
                &files.reference,
                &config
                    .encoder(files.locale, &secret("the attacker's"))
                    .unwrap(),
            )
            .unwrap();
        let guesses = graph_matching_attack(
            &similarity_graph(&victim(&files, &config, None)),
            &similarity_graph(&own),
            GraphParams::default(),
        );
        AttackScore::measure(&guesses, 1, |t, c| files.same_person(c, t)).reidentified()
    };
    let plain = run(Hardening::None);
    let salted = run(Hardening::SaltYear);
    assert!(plain >= 0.95, "unsalted {plain}");
    assert!(salted <= 0.15, "salted {salted}");
}

/// Where the toy encoding puts a bigram: 10 bits of 1000 (random hashing, as blindlink's).
fn toy_positions(g: &str) -> Vec<usize> {
    let mut h = g.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut p: Vec<usize> = (0..10)
        .map(|_| {
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 29;
            (h % 1000) as usize
        })
        .collect();
    p.sort_unstable();
    p.dedup();
    p
}

/// Toy filters with known q-gram positions (padded bigrams, [`toy_positions`]).
fn toy(values: &[(String, usize)]) -> (Vec<Vec<u8>>, Vec<Vec<String>>, Vec<String>) {
    let (mut filters, mut sample, mut truth) = (Vec::new(), Vec::new(), Vec::new());
    for (value, count) in values {
        let mut f = vec![0u8; 125];
        for g in frequency::qgrams(value, 2) {
            for p in toy_positions(&g) {
                f[p >> 3] |= 0x80 >> (p & 7);
            }
        }
        for _ in 0..*count {
            filters.push(f.clone());
            sample.push(vec![value.clone()]);
            truth.push(value.clone());
        }
    }
    (filters, sample, truth)
}

#[test]
fn the_frequency_attack_aligns_frequent_filters_with_frequent_values() {
    let values: Vec<(String, usize)> = [
        ("anna", 40),
        ("hanna", 25),
        ("jon", 15),
        ("jan", 8),
        ("ann", 3),
        ("joan", 3),
    ]
    .iter()
    .map(|&(v, c)| (v.to_owned(), c))
    .collect();
    let (filters, sample, truth) = toy(&values);
    let result = frequency_attack(&filters, &sample, FrequencyParams::default());
    let score = AttackScore::measure(&result.guesses, 10, |t, c| truth[t] == result.values[c]);
    // The four most frequent values have distinct frequencies and are aligned; the q-grams
    // seen in two aligned values ("an", "nn", "na") then re-identify "ann" and "joan" too.
    assert_eq!(score.precision(), 1.0);
    assert!(score.correct_1to1 >= 88, "{score:?}");
}

/// Unique names of two to four syllables: those whose syllable weights multiply to at least
/// `base^syllables`, so frequent syllables (and their q-grams) are in many names. Every filter
/// is unique: frequency alignment has nothing to align.
fn syllable_names(weights: &[usize], base: usize) -> Vec<(String, usize)> {
    let syllables = ["an", "na", "jo", "ha", "ri", "so", "ma", "ke"];
    let mut values = vec![(String::new(), 1usize, 0u32)];
    let mut out = Vec::new();
    for _ in 0..4 {
        let mut next = Vec::new();
        for (v, w, n) in &values {
            for (s, &ws) in syllables.iter().zip(weights) {
                next.push((format!("{v}{s}"), w * ws, n + 1));
            }
        }
        out.extend(
            next.iter()
                .filter(|(_, w, n)| *n >= 2 && *w >= base.pow(*n))
                .map(|(v, _, _)| (v.clone(), 1)),
        );
        values = next;
    }
    out
}

/// (syllable weights and base of [`syllable_names`], at least this many q-grams identified (8 of their 10 positions right), at most this many
/// wrongly, at least this many filters re-identified 1-to-1, at least this precision).
fn check_pattern_mining(names: (&[usize], usize), expected: (usize, usize, usize, f64)) {
    let (filters, sample, truth) = toy(&syllable_names(names.0, names.1));
    assert_eq!(
        frequency_attack(&filters, &sample, FrequencyParams::default())
            .guesses
            .iter()
            .filter(|g| !g.candidates.is_empty())
            .count(),
        0
    );
    let result = pattern_mining_attack(
        &filters,
        &sample,
        FrequencyParams {
            min_partition: 20,
            ..FrequencyParams::default()
        },
    );
    let right = result
        .identified
        .iter()
        .filter(|(_, g, p)| {
            // Right: at least 8 of the q-gram's own positions (a position another q-gram
            // took first on the path is lost, a colliding one may join).
            let own = toy_positions(g);
            p.iter().filter(|q| own.contains(q)).count() >= 8
        })
        .count();
    let wrong = result.identified.len() - right;
    let score = AttackScore::measure(&result.guesses, 10, |t, c| truth[t] == result.values[c]);
    let (min_right, max_wrong, min_1to1, min_precision) = expected;
    assert!(
        right >= min_right && wrong <= max_wrong,
        "{right} right, {wrong} wrong: {:?}",
        result.identified
    );
    assert!(
        score.correct_1to1 >= min_1to1 && score.precision() >= min_precision,
        "{score:?} of {}",
        filters.len()
    );
}

#[test]
fn pattern_mining_finds_q_gram_positions_when_every_filter_is_unique() {
    // Skewed syllables (as names are): the recursion separates the q-grams by their
    // frequencies conditional on the q-grams decided so far.
    // 2,795 names: 22 q-grams identified, all right, 614 names re-identified 1-to-1 (22 %),
    // every 1-to-1 guess right.
    check_pattern_mining((&[9, 6, 5, 4, 3, 2, 2, 1], 3), (20, 0, 500, 1.0));
    // Every syllable equally likely (4,672 names): most q-gram frequencies tie and the
    // published stop rule leaves such a partition alone rather than give a q-gram another's
    // positions; 7 q-grams whose frequencies do differ are identified, none wrongly (the
    // former greedy miner, without the stop rule and the partitions, assigned 5 of 5 wrongly
    // on a similar set).
    check_pattern_mining((&[1; 8], 1), (5, 0, 0, 0.0));
}

/// (locale, plan, field, (at least, at most) share of the disagreeing values whose most
/// probable candidate is right, at least this many bits of posterior entropy left).
fn check_counts(
    files: &LinkedFiles,
    plan: &[(usize, usize)],
    field: usize,
    top1: (f64, f64),
    bits: f64,
) {
    let leaks = count_attack(files, plan, 2, &blindlink_psi::SizeBuckets::default());
    let l = &leaks[field];
    assert!(
        (top1.0..=top1.1).contains(&l.top1_share()) && l.posterior_bits >= bits,
        "{l:?}"
    );
}

#[test]
fn grouped_psi_counts_reveal_some_of_a_wrong_persons_values() {
    let files = LinkedFiles::generate(Locale::Latin, 400, 1.0, 5).unwrap();
    let wrong = mislinked_plan(&files);
    // Surname and given name: the shared-bigram count against its own name and the size
    // bucket leave a few candidates of the attacker's dictionary; the most probable is right
    // for 10-40 % of the wrong persons.
    check_counts(&files, &wrong, 1, (0.1, 0.4), 2.0);
    check_counts(&files, &wrong, 0, (0.05, 0.3), 3.0);
    // Date of birth: of 15.5 bits (every day 1900-2025) at least 12 remain; the day is named
    // right for at most 5 %.
    check_counts(&files, &wrong, 2, (0.0, 0.05), 12.0);
    // Sex: "disagrees" is the other sex, named every time (no leak beyond the disagreement).
    check_counts(&files, &wrong, 3, (1.0, 1.0), 0.0);
    // The linked pairs of the right person: the few disagreeing fields are notation variants
    // and typos; where the peer's variant is a value of the attacker's own file, it is often
    // named.
    let right = validate_plan(&files);
    let leaks = count_attack(&files, &right, 2, &blindlink_psi::SizeBuckets::default());
    assert!(
        leaks
            .iter()
            .all(|l| l.agreeing as f64 >= 0.9 * l.observed as f64),
        "{leaks:?}"
    );
}

/// (field indices, hardening, at least / at most this share re-identified 1-to-1 by the
/// frequency attack, and by pattern mining; an attack that re-identifies any does so with
/// precision at least 0.6, or `PRECISION_FEBRL` for [`check_febrl`]).
fn check_values(
    files: &LinkedFiles,
    fields: &[usize],
    hardening: Hardening,
    frequency: (f64, f64),
    pattern: (f64, f64),
) {
    check_values_at(files, fields, hardening, frequency, pattern, 0.6);
}

/// Pattern mining's precision on the FEBRL given names is 0.49 in development: half its
/// 1-to-1 guesses are a similar name (a shared mined q-gram set).
const PRECISION_FEBRL: f64 = 0.4;

fn check_febrl(
    files: &LinkedFiles,
    fields: &[usize],
    hardening: Hardening,
    frequency: (f64, f64),
    pattern: (f64, f64),
) {
    check_values_at(
        files,
        fields,
        hardening,
        frequency,
        pattern,
        PRECISION_FEBRL,
    );
}

fn check_values_at(
    files: &LinkedFiles,
    fields: &[usize],
    hardening: Hardening,
    frequency: (f64, f64),
    pattern: (f64, f64),
    precision: f64,
) {
    let config = EncodingConfig {
        bits: 1000,
        fields: fields.to_vec(),
        ..EncodingConfig::clk()
    }
    .hardened(hardening);
    let m = run_value_attacks(files, &config, &secret("shared"), None).unwrap();
    let share = |i: usize| m[i].score.reidentified();
    assert!(
        (frequency.0..=frequency.1).contains(&share(0))
            && (pattern.0..=pattern.1).contains(&share(1))
            && m.iter()
                .all(|x| x.score.correct_1to1 == 0 || x.score.precision() >= precision),
        "{fields:?} {hardening:?}: {m:?}"
    );
}

#[test]
fn frequent_values_are_reidentified_and_hardening_stops_pattern_mining() {
    // The published setting as far as it can be rebuilt: one attribute per filter (l = 1000,
    // k = 10, q = 2), 5,000 en persons with the generator's Zipf name frequencies, the
    // attacker's plaintext a disjoint sample of the same population.
    let files = LinkedFiles::generate(Locale::Latin, 5000, 0.0, 5).unwrap();
    // Surnames: the frequency alignment names 14 % (precision 1.0 in development).
    check_values(&files, &[1], Hardening::None, (0.08, 0.25), (0.0, 0.1));
    // Given names: the flatter head of the law misaligns (50 guesses, none right); pattern
    // mining names 3 %.
    check_values(&files, &[0], Hardening::None, (0.0, 0.0), (0.01, 0.1));
    // Balancing and xor-folding: pattern mining names nothing (published: 0); equal
    // values still give equal filters, so the frequency alignment is unchanged.
    for hardening in [Hardening::Balance, Hardening::XorFold] {
        check_values(&files, &[1], hardening, (0.08, 0.25), (0.0, 0.0));
        check_values(&files, &[0], hardening, (0.0, 0.0), (0.0, 0.0));
    }
    // First name and surname in one filter: the pairs are too rare to align or mine.
    check_values(&files, &[0, 1], Hardening::None, (0.0, 0.0), (0.0, 0.0));
    // A record salt (the year of birth) or fresh BLIP: equal surnames no longer give equal
    // filters, and the frequency alignment that named 14 % names none (published: "0 with
    // hardening" for pattern mining; here the frequency attack reaches it too).
    check_values(&files, &[1], Hardening::SaltYear, (0.0, 0.0), (0.0, 0.0));
    check_values(&files, &[1], Hardening::Blip(2.0), (0.0, 0.0), (0.0, 0.0));
}

/// The profile of `files`' victim encodings under `config` (BLIP fresh).
fn profile_of(files: &LinkedFiles, config: &EncodingConfig) -> VulnerabilityProfile {
    profile_encoding(
        files,
        config,
        &secret("shared"),
        BlipSeed::Fresh,
        ProfileParams::default(),
    )
    .unwrap()
}

/// (hardening, what its profile must show next to the unhardened one's).
fn check_profile(
    files: &LinkedFiles,
    config: &EncodingConfig,
    hardening: Hardening,
    expected: impl Fn(&VulnerabilityProfile, &VulnerabilityProfile) -> bool,
) {
    let plain = profile_of(files, config);
    let hardened = profile_of(files, &config.clone().hardened(hardening));
    assert!(
        expected(&hardened, &plain),
        "{hardening:?}: {hardened:?} against unhardened {plain:?}"
    );
}

#[test]
fn the_vulnerability_profile_moves_the_way_each_hardening_should() {
    // ja, 150 persons, the 5-field CLK (in development: length 0.96, co-occurrence 0.44,
    // similarity 0.74, neighbourhood 0.65; every CLK unique, so no frequency signal).
    let files = ja(150);
    let clk = EncodingConfig::clk();
    check_profile(&files, &clk, Hardening::None, |p, _| {
        p.unique_encodings == 1.0
            && p.frequency == 0.0
            && p.length >= 0.9
            && p.similarity >= 0.6
            && p.neighbourhood >= 0.5
    });
    // Balancing: every filter has the same weight, the length signal is gone exactly; the
    // similarity structure stays.
    check_profile(&files, &clk, Hardening::Balance, |p, plain| {
        p.length == 0.0 && p.similarity >= 0.8 * plain.similarity
    });
    // A year-of-birth salt: similar values of different years no longer have similar
    // encodings (development: similarity 0.74 -> 0.00, neighbourhood 0.65 -> 0.12).
    check_profile(&files, &clk, Hardening::SaltYear, |p, plain| {
        p.similarity <= 0.2 && p.neighbourhood <= plain.neighbourhood / 2.0
    });
    // Fresh BLIP: the flips blur which positions go together and how similar filters are.
    check_profile(&files, &clk, Hardening::Blip(2.0), |p, plain| {
        p.co_occurrence < plain.co_occurrence && p.similarity < plain.similarity
    });
    // One attribute per filter (en surnames, 1,000 persons): equal values give equal
    // filters, so the frequency ranks carry over entirely; a record salt splits them by year
    // and fresh BLIP makes every filter unique.
    let en = LinkedFiles::generate(Locale::Latin, 1000, 0.0, 5).unwrap();
    let surname = EncodingConfig {
        bits: 1000,
        fields: vec![1],
        ..EncodingConfig::clk()
    };
    check_profile(&en, &surname, Hardening::None, |p, _| {
        p.frequency == 1.0 && p.unique_encodings <= 0.2 && p.co_occurrence >= 0.6
    });
    check_profile(&en, &surname, Hardening::SaltYear, |p, plain| {
        p.frequency <= 0.5 && p.unique_encodings > plain.unique_encodings
    });
    check_profile(&en, &surname, Hardening::Blip(2.0), |p, _| {
        p.frequency == 0.0 && p.unique_encodings == 1.0
    });
}

/// (name-count table, the error it must give).
fn check_name_table(csv: &str, expected: &str) {
    let error = LinkedFiles::from_name_counts(csv).unwrap_err();
    assert_eq!(error.to_string(), expected);
}

#[test]
fn name_count_tables_are_validated_line_by_line() {
    let header = "source,given_name,surname,count\n";
    check_name_table(
        "given_name,surname\n",
        "name table line 1: the header must be 'source,given_name,surname,count'",
    );
    check_name_table(
        "",
        "name table line 1: the header must be 'source,given_name,surname,count'",
    );
    check_name_table(
        &format!("{header}victim,anna,white\n"),
        "name table line 2: expected 4 fields, found 3",
    );
    check_name_table(
        &format!("{header}victim,anna,white,2\nthief,anna,white,2\n"),
        "name table line 3: source 'thief' is neither 'victim' nor 'attacker'",
    );
    check_name_table(
        &format!("{header}victim,anna,white,0\n"),
        "name table line 2: count '0' is not a positive integer",
    );
    check_name_table(
        &format!("{header}victim,anna,white,-1\n"),
        "name table line 2: count '-1' is not a positive integer",
    );
    check_name_table(
        &format!("{header}victim,anna,white,600000\nattacker,jack,white,400001\n"),
        "name table line 3: more than 1000000 records in the table",
    );
    let febrl = LinkedFiles::febrl_names().unwrap();
    assert_eq!((febrl.victim.len(), febrl.reference.len()), (5000, 6500));
    assert!(febrl.true_pairs().is_empty());
}

#[test]
fn febrl_names_reproduce_the_attacks_and_their_hardenings() {
    // Real name frequencies (the FEBRL generator's Australian tables): the victim is data
    // set 4a's 5,000 originals, the attacker holds data sets 1-3's 6,500; one attribute per
    // filter, l = 1000, k = 10, q = 2. In development: given names 2.2 % (frequency,
    // precision 1.0) and 7.0 % (pattern mining, precision 0.49); surnames 5.2 % and 1.8 %.
    let febrl = LinkedFiles::febrl_names().unwrap();
    check_febrl(&febrl, &[0], Hardening::None, (0.01, 0.05), (0.04, 0.12));
    check_febrl(&febrl, &[1], Hardening::None, (0.03, 0.08), (0.01, 0.05));
    // Balancing and xor-folding stop pattern mining but not the frequency alignment
    // (deterministic: equal names keep equal filters); fresh BLIP stops both.
    for hardening in [Hardening::Balance, Hardening::XorFold] {
        check_febrl(&febrl, &[0], hardening, (0.01, 0.05), (0.0, 0.0));
        check_febrl(&febrl, &[1], hardening, (0.03, 0.08), (0.0, 0.0));
    }
    check_febrl(&febrl, &[0], Hardening::Blip(2.0), (0.0, 0.0), (0.0, 0.0));
    check_febrl(&febrl, &[1], Hardening::Blip(2.0), (0.0, 0.0), (0.0, 0.0));
    // Both names in one filter: 4,806 of the 5,000 pairs are distinct, nothing aligns or
    // mines (the greedy miner refuses partitions with more than 64 frequent positions).
    check_febrl(&febrl, &[0, 1], Hardening::None, (0.0, 0.0), (0.0, 0.0));
}

/// (frequency table, the error it must give).
fn check_frequency_table(csv: &str, expected: &str) {
    let error = NameFrequencies::parse("t.csv", csv).unwrap_err();
    assert_eq!(error.to_string(), expected);
}

#[test]
fn frequency_tables_are_validated_line_by_line() {
    check_frequency_table("", "frequency table t.csv line 1: the table has no name");
    check_frequency_table(
        "anna,2\njack\n",
        "frequency table t.csv line 2: expected 2 fields (name,count), found 1",
    );
    check_frequency_table(
        "anna,2,x\n",
        "frequency table t.csv line 1: expected 2 fields (name,count), found 3",
    );
    check_frequency_table(",2\n", "frequency table t.csv line 1: the name is empty");
    check_frequency_table(
        "anna,0\n",
        "frequency table t.csv line 1: count '0' is not a positive integer below 2^32",
    );
    check_frequency_table(
        "anna,1\n\njack,4294967296\n",
        "frequency table t.csv line 3: count '4294967296' is not a positive integer below 2^32",
    );
    let too_many = LinkedFiles::sample_names(
        &NameFrequencies::parse("g", "anna,1").unwrap(),
        &NameFrequencies::parse("s", "white,1").unwrap(),
        10,
        MAX_SAMPLE_PERSONS + 1,
        1,
    )
    .unwrap_err();
    assert_eq!(
        too_many.to_string(),
        "population sample: 1000001 attacker persons, more than 1000000"
    );
}

#[test]
fn febrl_tables_are_read_whole_and_sampled_by_their_counts() {
    // The tables as committed (data/README.md): 869 given-name lines of which 10 names
    // repeat, 9,159 surnames.
    let given = NameFrequencies::febrl_given_names().unwrap();
    let surnames = NameFrequencies::febrl_surnames().unwrap();
    assert_eq!((given.len(), given.total()), (859, 2721));
    assert_eq!((surnames.len(), surnames.total()), (9159, 79731));
    assert_eq!(given.count("alex"), Some(5));
    assert_eq!(surnames.count("clarke"), Some(1781));
    // Seeded, and each side its own stream: the victims do not depend on the attackers' size.
    let a = LinkedFiles::febrl_population(20_000, 3).unwrap();
    let b = LinkedFiles::sample_names(&given, &surnames, 20_000, 10, 3).unwrap();
    assert_eq!(a.victim, b.victim);
    assert_ne!(a.victim.rows, a.reference.rows[..].to_vec());
    assert_ne!(
        a.victim,
        LinkedFiles::febrl_population(20_000, 4).unwrap().victim
    );
    // Shares follow the counts: white is 2,399 / 79,731 = 3.01 % of surnames, joshua
    // 50 / 2,721 = 1.84 % of given names (20,000 draws: a standard error near 0.1 point).
    let share = |table: &Table, column: usize, name: &str| {
        table.rows.iter().filter(|r| r[column] == name).count() as f64 / table.len() as f64
    };
    for table in [&a.victim, &a.reference] {
        assert!((share(table, 1, "white") - 0.0301).abs() < 0.004);
        assert!((share(table, 0, "joshua") - 0.0184).abs() < 0.003);
        assert!(
            table
                .rows
                .iter()
                .all(|r| r[2..].iter().all(String::is_empty))
        );
    }
    assert!(a.true_pairs().is_empty());
}

#[test]
fn febrl_tables_at_scale_give_pattern_mining_more_given_names() {
    // Names drawn from FEBRL's frequency tables, the victim and the attacker two samples of
    // 50,000 persons each (the bench runs up to NCVR's 222,251): one attribute per filter,
    // l = 1000, k = 10, q = 2. In development (key "shared", seed 1): pattern mining names
    // 11.5 % of the given names 1-to-1 (precision 0.91; 4.1-7.0 % on FEBRL's 5,000 records),
    // the frequency alignment 12.3 % of the surnames and no given name (the two most frequent,
    // joshua 50 and emiily 48, are closer than the 5 % gap it needs).
    let files = LinkedFiles::febrl_population(50_000, 1).unwrap();
    check_febrl(&files, &[0], Hardening::None, (0.0, 0.0), (0.08, 0.2));
    check_febrl(&files, &[1], Hardening::None, (0.08, 0.16), (0.0, 0.02));
    // Balancing and xor-folding stop pattern mining, not the frequency alignment.
    for hardening in [Hardening::Balance, Hardening::XorFold] {
        check_febrl(&files, &[0], hardening, (0.0, 0.0), (0.0, 0.0));
        check_febrl(&files, &[1], hardening, (0.08, 0.16), (0.0, 0.0));
    }
    // The scaled smallest partition (a fiftieth of the filters: 1,000 here) ends the
    // recursion early; a fixed 100 filters (the scaled value at 5,000) lets it identify more
    // q-grams. In development: 11.5 % and 12.5 % 1-to-1 (precision 0.91 both; at 222,251
    // persons the gap is wider, papers/leakage.md §4).
    let config = EncodingConfig {
        bits: 1000,
        fields: vec![0],
        ..EncodingConfig::clk()
    };
    let pattern = |min_partition| {
        let m = run_value_attacks(&files, &config, &secret("shared"), min_partition).unwrap();
        (
            m[1].attack,
            m[1].score.reidentified(),
            m[1].score.precision(),
        )
    };
    let (scaled, fixed) = (pattern(None), pattern(Some(100)));
    assert_eq!(fixed.0, "pattern-mining");
    assert!(
        fixed.1 > scaled.1 && fixed.2 >= PRECISION_FEBRL,
        "{scaled:?} {fixed:?}"
    );
}
