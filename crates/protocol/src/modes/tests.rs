//! Both parties of every mode in one process, against synthetic truth, with the ledgers checked
//! against what actually crossed the wire, and hostile messages refused with clear errors.

use std::collections::{BTreeMap, HashMap};

use blindlink_matching::{FlagQuality, LinkageQuality};
use blindlink_synth::{Outcome, OutputFile, Scenario, Truth};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::{Disclosure, ErrorOrigin, MAX_MODE_CHUNK_BYTES, MessageKind, ModeChunk};

#[path = "../../examples/scenario/mod.rs"]
mod scenario;
use scenario::*;

struct Run {
    initiator: LinkOutcome,
    responder: LinkOutcome,
    ledgers: InMemoryRun,
}

fn run(config: &ModeConfig, initiator: PartyData, responder: PartyData) -> Run {
    let mut a = new_driver(
        Role::Initiator,
        config,
        initiator,
        &mut ChaCha20Rng::from_seed([1; 32]),
    )
    .unwrap();
    let mut b = new_driver(
        Role::Responder,
        config,
        responder,
        &mut ChaCha20Rng::from_seed([2; 32]),
    )
    .unwrap();
    let handle = b.outcome_handle();
    let ledgers = run_in_memory(&mut a, &mut b, config.mode()).unwrap();
    check_ledgers(config, &ledgers);
    Run {
        initiator: a.outcome().unwrap(),
        responder: handle.get().unwrap(),
        ledgers,
    }
}

/// What may cross the wire in each mode.
fn allowed_kinds(mode: Mode) -> &'static [MessageKind] {
    use MessageKind::*;
    match mode {
        Mode::Cardinality => &[PsiBlindedSet, PsiCardinalityReply, IntersectionSize, Done],
        Mode::Exact => &[PsiBlindedSet, PsiMutualReply, PsiReblindedSet, Done],
        Mode::Validate => &[
            PsiBlindedSet,
            PsiMutualReply,
            PsiReblindedSet,
            PairPlan,
            PsiGroupedQuery,
            PsiGroupedReply,
            PairScores,
            Done,
        ],
        Mode::Fuzzy => &[
            PsiBlindedSet,
            PsiMutualReply,
            PsiReblindedSet,
            CandidateTokens,
            PairPlan,
            PsiGroupedQuery,
            PsiGroupedReply,
            LinkIds,
            Done,
        ],
        Mode::ClkExchange => &[AllClks, LinkIds, Done],
    }
}

/// Nothing beyond the ledger crossed the wire: only the mode's kinds, each side's count of what
/// it sent equals the other's count of what it received, both ledgers list the same
/// disclosures, and every CLK-bearing kind was accounted for as revealed CLKs.
fn check_ledgers(config: &ModeConfig, run: &InMemoryRun) {
    let (i, r) = (&run.initiator, &run.responder);
    assert_eq!(
        i.sent, r.received,
        "initiator's sent vs responder's received"
    );
    assert_eq!(
        r.sent, i.received,
        "responder's sent vs initiator's received"
    );
    let allowed: Vec<&str> = allowed_kinds(config.mode())
        .iter()
        .map(|k| k.name())
        .collect();
    for ledger in [i, r] {
        for kind in ledger.sent.by_kind.keys() {
            assert!(
                allowed.contains(&kind.as_str()),
                "{} sent '{kind}' in {} mode",
                ledger.role,
                config.mode().name()
            );
        }
    }
    let sorted = |l: &DisclosureLedger| {
        let mut d: Vec<String> = l
            .disclosures()
            .map(|e| serde_json::to_string(&e).unwrap())
            .collect();
        d.sort();
        d
    };
    assert_eq!(
        sorted(i),
        sorted(r),
        "the two ledgers disagree on who learned what"
    );
    let clk_messages: u64 = [i, r]
        .iter()
        .flat_map(|l| l.sent.by_kind.iter())
        .filter(|(k, _)| {
            MessageKind::ALL
                .iter()
                .any(|m| m.name() == *k && m.carries_clks())
        })
        .map(|(_, c)| c.messages)
        .sum();
    let clks_revealed: u64 = i
        .disclosures()
        .filter_map(|e| match e.disclosure {
            Disclosure::Clks { count } => Some(count),
            _ => None,
        })
        .sum();
    if config.mode() != Mode::ClkExchange {
        assert_eq!(clk_messages, 0, "no CLK-bearing kind outside clk-exchange");
    }
    if clk_messages == 0 {
        assert_eq!(clks_revealed, 0);
    } else {
        assert!(
            i.disclosures()
                .any(|e| matches!(e.disclosure, Disclosure::Clks { .. })),
            "clks crossed the wire without a ledger entry"
        );
    }
}

/// Registry and insurer of a registry-insurer scenario, and each insurer record's truth.
struct RegistryInsurer {
    registry: PartyData,
    insurer: PartyData,
    truth: HashMap<String, blindlink_synth::InsurerTruth>,
    registry_person: HashMap<String, u64>,
}

fn registry_insurer(persons: u64, seed: u64) -> RegistryInsurer {
    let scenario = Scenario::RegistryInsurer;
    let data = generate(scenario, persons, 0.5, seed);
    let truth: HashMap<String, _> = data
        .truth
        .iter()
        .filter_map(|t| match t {
            Truth::Insurer(t) => Some((t.insurer_record_id.clone(), t.clone())),
            Truth::Pair(_) => None,
        })
        .collect();
    let registry_person = truth
        .values()
        .filter_map(|t| Some((t.registry_record_id.clone()?, t.person_id)))
        .collect();
    RegistryInsurer {
        registry: party(OutputFile::Registry, scenario, &data.files["registry.csv"]),
        insurer: party(OutputFile::Insurer, scenario, &data.files["insurer.csv"]),
        truth,
        registry_person,
    }
}

/// `(initiator row, responder row)` pairs sharing a link id.
fn linked_pairs(run: &Run) -> Vec<(usize, usize)> {
    let responder: HashMap<&str, usize> = run
        .responder
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((r.link_id.as_deref()?, i)))
        .collect();
    run.initiator
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, *responder.get(r.link_id.as_deref()?)?)))
        .collect()
}

#[test]
fn exact_links_every_valid_number_to_its_owner() {
    let data = registry_insurer(2_000, 11);
    let insurer_rows = data.insurer.len();
    let run = run(
        &mode_config(Mode::Exact),
        data.insurer.clone(),
        data.registry.clone(),
    );
    let pairs = linked_pairs(&run);
    assert_eq!(pairs.len() as u64, run.initiator.counts.linked);
    assert_eq!(run.initiator.counts.linked, run.responder.counts.linked);
    assert_eq!(run.initiator.rows.len(), insurer_rows);
    // Every insurer number that is in the registry and not shared with another insurer record.
    let registry_keys: std::collections::HashSet<&[u8]> = (0..data.registry.len())
        .filter_map(|i| data.registry.key(i, 0))
        .collect();
    let mut insurer_keys: HashMap<&[u8], usize> = HashMap::new();
    for i in 0..data.insurer.len() {
        if let Some(k) = data.insurer.key(i, 0) {
            *insurer_keys.entry(k).or_default() += 1;
        }
    }
    let expected_links = insurer_keys
        .iter()
        .filter(|(k, n)| **n == 1 && registry_keys.contains(*k))
        .count() as u64;
    let expected_ambiguous: u64 = insurer_keys
        .values()
        .filter(|n| **n > 1)
        .map(|n| *n as u64)
        .sum();
    assert_eq!(run.initiator.counts.ambiguous, expected_ambiguous);
    let owner_of_registry: HashMap<&str, u64> = data
        .registry_person
        .iter()
        .map(|(r, p)| (r.as_str(), *p))
        .collect();
    for (i, r) in pairs {
        let insurer_id = &run.initiator.rows[i].local_id;
        let registry_id = run.responder.rows[r].local_id.as_str();
        let t = &data.truth[insurer_id];
        if let Some(owner) = owner_of_registry.get(registry_id) {
            assert_eq!(Some(*owner), t.number_owner_person_id, "{insurer_id}");
        }
        assert_eq!(run.initiator.rows[i].key.as_deref(), Some("my_number"));
    }
    assert_eq!(run.initiator.counts.linked, expected_links);
    assert!(expected_links > 900, "{expected_links}");
    assert_eq!(
        run.initiator.learned.intersection_sizes,
        [("my_number".to_owned(), run.initiator.counts.linked)]
    );
    // No CLK-bearing kind, no score crossed the wire.
    for ledger in [&run.ledgers.initiator, &run.ledgers.responder] {
        assert!(
            ledger
                .sent
                .by_kind
                .keys()
                .all(|k| k.starts_with("psi_") || k == "done")
        );
    }
}

fn exact_keys(keys: &[&str]) -> ModeConfig {
    ModeConfig::Exact(ExactConfig {
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
    })
}

/// `config` with `role` as the comparing side.
fn comparing(mut config: ModeConfig, role: Role) -> ModeConfig {
    match &mut config {
        ModeConfig::Validate(c) => c.comparing = role,
        ModeConfig::Fuzzy(c) => c.comparing = role,
        ModeConfig::ClkExchange(c) => c.comparing = role,
        ModeConfig::Cardinality(_) | ModeConfig::Exact(_) => {}
    }
    config
}

fn keyed(id: &str, keys: &[Option<&str>]) -> PartyRecord {
    PartyRecord {
        id: id.into(),
        keys: keys
            .iter()
            .map(|k| k.map(|k| k.as_bytes().to_vec()))
            .collect(),
        ..PartyRecord::default()
    }
}

fn statuses(outcome: &LinkOutcome) -> Vec<(&str, &str, Option<&str>)> {
    outcome
        .rows
        .iter()
        .map(|r| (r.local_id.as_str(), r.status.name(), r.key.as_deref()))
        .collect()
}

#[test]
fn exact_cascade_links_on_later_keys_and_leaves_duplicates_ambiguous() {
    let config = exact_keys(&["my_number", "kana+dob+sex"]);
    let insurer = PartyData::from_records(vec![
        keyed("i1", &[Some("111"), Some("ヤマダ|1980-01-01|1")]),
        keyed("i2", &[None, Some("サトウ|1990-02-02|2")]),
        keyed("i3", &[Some("333"), Some("スズキ|1970-03-03|1")]),
        keyed("i4", &[Some("333"), Some("タナカ|1960-04-04|2")]),
        keyed("i5", &[Some("555"), None]),
    ]);
    let registry = PartyData::from_records(vec![
        keyed("r1", &[Some("111"), Some("ヤマダ|1980-01-01|1")]),
        keyed("r2", &[Some("222"), Some("サトウ|1990-02-02|2")]),
        keyed("r3", &[Some("333"), Some("スズキ|1970-03-03|1")]),
        keyed("r4", &[Some("444"), Some("タナカ|1960-04-04|2")]),
        keyed("r5", &[Some("999"), None]),
    ]);
    let run = run(&config, insurer, registry);
    // i3 and i4 share 333: ambiguous in round 0, then each linked on the second key.
    assert_eq!(
        statuses(&run.initiator),
        [
            ("i1", "linked", Some("my_number")),
            ("i2", "linked", Some("kana+dob+sex")),
            ("i3", "linked", Some("kana+dob+sex")),
            ("i4", "linked", Some("kana+dob+sex")),
            ("i5", "unmatched", None),
        ]
    );
    assert_eq!(
        statuses(&run.responder),
        [
            ("r1", "linked", Some("my_number")),
            ("r2", "linked", Some("kana+dob+sex")),
            ("r3", "linked", Some("kana+dob+sex")),
            ("r4", "linked", Some("kana+dob+sex")),
            ("r5", "unmatched", None),
        ]
    );
    assert_eq!(
        linked_pairs(&run),
        [(0, 0), (1, 1), (2, 2), (3, 3)],
        "link ids agree pairwise"
    );
    // Without the second key, the duplicated number stays ambiguous.
    let one_key = exact_keys(&["my_number"]);
    let only = |data: &[(&str, &str)]| {
        PartyData::from_records(data.iter().map(|(id, k)| keyed(id, &[Some(k)])).collect())
    };
    let run = tests::run(
        &one_key,
        only(&[("i1", "7"), ("i2", "7"), ("i3", "8")]),
        only(&[("r1", "7"), ("r2", "8")]),
    );
    assert_eq!(
        statuses(&run.initiator),
        [
            ("i1", "ambiguous", None),
            ("i2", "ambiguous", None),
            ("i3", "linked", Some("my_number"))
        ]
    );
    assert_eq!(
        statuses(&run.responder),
        [
            ("r1", "unmatched", None),
            ("r2", "linked", Some("my_number"))
        ]
    );
}

#[test]
fn cardinality_reveals_only_the_count() {
    let data = registry_insurer(1_000, 5);
    let exact = run(
        &mode_config(Mode::Exact),
        data.insurer.clone(),
        data.registry.clone(),
    );
    let run_raw = run(
        &mode_config(Mode::Cardinality),
        data.insurer.clone(),
        data.registry.clone(),
    );
    let distinct = |p: &PartyData| -> std::collections::HashSet<Vec<u8>> {
        p.records().filter_map(|r| r.keys[0].clone()).collect()
    };
    let expected = distinct(&data.insurer)
        .intersection(&distinct(&data.registry))
        .count() as u64;
    assert!(exact.initiator.learned.intersection_sizes[0].1 <= expected);
    for outcome in [&run_raw.initiator, &run_raw.responder] {
        assert!(outcome.rows.is_empty(), "cardinality links no record");
        assert_eq!(
            outcome.learned.intersection_sizes,
            [("my_number".to_owned(), expected)]
        );
    }
    for ledger in [&run_raw.ledgers.initiator, &run_raw.ledgers.responder] {
        assert!(!ledger.sent.by_kind.contains_key("psi_reblinded_set"));
        assert!(!ledger.sent.by_kind.contains_key("psi_mutual_reply"));
    }
    let bloom = ModeConfig::Cardinality(CardinalityConfig {
        bloom_fpr: Some(0.01),
        ..CardinalityConfig::new(ID_KEY)
    });
    let run_bloom = run(&bloom, data.insurer.clone(), data.registry.clone());
    let counted = run_bloom.initiator.learned.intersection_sizes[0].1;
    assert!(
        (expected..=expected + 5).contains(&counted),
        "{counted} vs {expected}"
    );
    assert!(run_bloom.initiator.learned.peer_set_sizes.is_empty());
    assert!(
        run_bloom
            .initiator
            .learned
            .expected_false_positives
            .is_some()
    );
    assert!(
        run_bloom.ledgers.responder.sent.total.bytes < run_raw.ledgers.responder.sent.total.bytes
    );
}

/// Validate on a registry-insurer scenario: flagged share of planted wrong-person links and of
/// correct links.
fn validate_quality(persons: u64, seed: u64) -> FlagQuality {
    let data = registry_insurer(persons, seed);
    let run = run(
        &mode_config(Mode::Validate),
        data.insurer.clone(),
        data.registry.clone(),
    );
    // The insurer (comparing) scores every holder of a shared number; the registry learns one
    // score per its record: the best holder's. Where a number has one holder both agree.
    let pairs = linked_pairs(&run);
    let mut holders: HashMap<usize, Vec<usize>> = HashMap::new();
    for &(i, r) in &pairs {
        holders.entry(r).or_default().push(i);
    }
    let mut shared = 0;
    for (r, insurer_rows) in &holders {
        let responder = &run.responder.rows[*r];
        let best = insurer_rows
            .iter()
            .map(|&i| &run.initiator.rows[i])
            .max_by(|a, b| a.score.partial_cmp(&b.score).unwrap())
            .unwrap();
        assert_eq!(best.score, responder.score);
        assert_eq!(best.status, responder.status);
        shared += usize::from(insurer_rows.len() > 1);
    }
    assert!(
        run.responder.counts.suspected_wrong_person <= run.initiator.counts.suspected_wrong_person
    );
    assert_eq!(
        run.initiator.counts.ambiguous, 0,
        "the comparing side shares duplicate numbers instead of holding them back"
    );
    assert!(
        shared > 0,
        "the scenario plants numbers that two insurer records carry"
    );
    FlagQuality::measure(run.initiator.rows.iter().filter_map(|row| {
        let flagged = match row.status {
            LinkStatus::Linked => false,
            LinkStatus::SuspectedWrongPerson => true,
            _ => return None,
        };
        match data.truth[&row.local_id].outcome {
            Outcome::WrongPerson(_) => Some((false, flagged)),
            Outcome::Correct => Some((true, flagged)),
            _ => None,
        }
    }))
}

#[test]
fn validate_flags_planted_wrong_person_links() {
    let persons = std::env::var("BLINDLINK_HEAVY").map_or(20_000, |_| 200_000);
    let FlagQuality {
        wrong,
        wrong_flagged,
        right: correct,
        right_flagged: correct_flagged,
    } = validate_quality(persons, 2026);
    eprintln!(
        "validate: flagged {wrong_flagged} of {wrong} wrong, {correct_flagged} of {correct} correct"
    );
    assert!(
        wrong >= 20 && correct > 2_000,
        "{wrong} wrong, {correct} correct"
    );
    assert!(
        wrong_flagged as f64 >= 0.99 * wrong as f64,
        "flagged {wrong_flagged} of {wrong} wrong-person links"
    );
    assert!(
        correct_flagged as f64 <= 0.005 * correct as f64,
        "flagged {correct_flagged} of {correct} correct links"
    );
}

/// Two hospitals with record-level CLKs; truth as `(a row, b row)`.
fn two_hospitals(persons: u64, seed: u64) -> (PartyData, PartyData, Vec<(usize, usize)>) {
    let scenario = Scenario::TwoHospitals;
    let data = generate(scenario, persons, 0.5, seed);
    let a = party(
        OutputFile::HospitalA,
        scenario,
        &data.files["hospital_a.csv"],
    );
    let b = party(
        OutputFile::HospitalB,
        scenario,
        &data.files["hospital_b.csv"],
    );
    let index = |p: &PartyData| -> HashMap<String, usize> {
        p.records()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect()
    };
    let (ia, ib) = (index(&a), index(&b));
    let truth = data
        .truth
        .iter()
        .filter_map(|t| match t {
            Truth::Pair(p) => Some((ia[&p.hospital_a_record_id], ib[&p.hospital_b_record_id])),
            Truth::Insurer(_) => None,
        })
        .collect();
    (a, b, truth)
}

fn fuzzy_config(mode: Mode) -> ModeConfig {
    let mut config = mode_config(mode);
    match &mut config {
        ModeConfig::Fuzzy(c) => {
            c.blocking_key = Some(derive_blocking_key(b"a shared linkage secret"))
        }
        ModeConfig::ClkExchange(c) => c.reveal_decodable_encodings = true,
        _ => {}
    }
    config
}

#[test]
fn fuzzy_and_clk_exchange_link_two_hospitals() {
    let (a, b, truth) = two_hospitals(3_000, 7);
    let fuzzy = run(&fuzzy_config(Mode::Fuzzy), a.clone(), b.clone());
    let baseline = run(&fuzzy_config(Mode::ClkExchange), a.clone(), b.clone());
    let q_fuzzy = LinkageQuality::measure(&linked_pairs(&fuzzy), &truth);
    let q_base = LinkageQuality::measure(&linked_pairs(&baseline), &truth);
    assert!(
        q_base.precision() >= 0.99 && q_base.recall() >= 0.95,
        "{q_base:?}"
    );
    assert!(
        q_fuzzy.precision() >= 0.99 && q_fuzzy.recall() >= 0.95,
        "{q_fuzzy:?}"
    );
    // The baseline reveals all of the responder's CLKs; fuzzy none, only band tokens through
    // the PSI, candidate token numbers and blinded field tokens.
    eprintln!(
        "fuzzy {q_fuzzy:?}, {} pairs compared for {} records",
        fuzzy.initiator.learned.compared_pairs,
        b.len()
    );
    assert_eq!(baseline.initiator.learned.clks_received, b.len() as u64);
    assert_eq!(fuzzy.initiator.learned.clks_received, 0);
    assert_eq!(fuzzy.responder.learned.clks_received, 0);
    assert_eq!(
        fuzzy.initiator.learned.compared_pairs,
        fuzzy.responder.learned.compared_pairs
    );
    assert!(fuzzy.initiator.learned.compared_pairs < 3 * b.len() as u64);
    for (i, r) in linked_pairs(&fuzzy) {
        assert_eq!(fuzzy.initiator.rows[i].score, fuzzy.responder.rows[r].score);
    }
}

#[test]
fn comparing_side_can_be_the_responder() {
    let (a, b, _) = two_hospitals(400, 3);
    let config = comparing(fuzzy_config(Mode::ClkExchange), Role::Responder);
    let run = run(&config, a.clone(), b);
    assert_eq!(run.initiator.learned.clks_received, 0);
    assert_eq!(run.responder.learned.clks_received, a.len() as u64);
    // The all_clks message is exactly its header and the CLKs: nothing else rode along.
    let sent = run.ledgers.initiator.sent.by_kind["all_clks"];
    let payload = 8 + a.len() as u64 * 128;
    assert_eq!(sent.bytes, payload + 8 * sent.messages);
    assert_eq!(sent.messages, payload.div_ceil(MAX_MODE_CHUNK_BYTES as u64));
    assert!(run.initiator.counts.linked > 0);
    let data = registry_insurer(1_500, 4);
    let config = comparing(mode_config(Mode::Validate), Role::Responder);
    let run = tests::run(&config, data.insurer, data.registry);
    assert_eq!(
        run.responder.learned.compared_pairs,
        run.responder.learned.pair_scores
    );
    assert_eq!(run.initiator.learned.clks_received, 0);
    assert_eq!(run.responder.learned.clks_received, 0);
    assert_eq!(
        run.initiator.counts.suspected_wrong_person,
        run.responder.counts.suspected_wrong_person
    );
    assert!(run.initiator.counts.linked > 500);
}

#[test]
fn a_peer_cannot_make_a_state_buffer_more_than_it_expects() {
    // A cardinality responder waiting for the 8-byte intersection size.
    let config = mode_config(Mode::Cardinality);
    let data = || PartyData::from_records(vec![keyed("x", &[Some("1")])]);
    let mut a = new_driver(
        Role::Initiator,
        &config,
        data(),
        &mut ChaCha20Rng::from_seed([1; 32]),
    )
    .unwrap();
    let mut b = new_driver(
        Role::Responder,
        &config,
        data(),
        &mut ChaCha20Rng::from_seed([2; 32]),
    )
    .unwrap();
    let (mut la, mut lb) = (ledger(Role::Initiator), ledger(Role::Responder));
    let request = a.start(&mut la).unwrap().send;
    b.start(&mut lb).unwrap();
    for message in request {
        b.handle(message, &mut lb).unwrap();
    }
    let err = b
        .handle(
            chunk(MessageKind::IntersectionSize, 0, false, vec![0; 9]),
            &mut lb,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "message of kind 'intersection_size' is 9 bytes, over its limit of 8 bytes"
    );
}

// ---- hostile peers ----

fn exact_responder() -> ModeDriver {
    let data = PartyData::from_records(vec![keyed("r1", &[Some("1")])]);
    new_driver(
        Role::Responder,
        &mode_config(Mode::Exact),
        data,
        &mut ChaCha20Rng::from_seed([3; 32]),
    )
    .unwrap()
}

fn ledger(role: Role) -> DisclosureLedger {
    DisclosureLedger::new(
        crate::SessionId::from_bytes([0; 16]),
        role,
        Mode::Exact,
        "peer",
    )
}

fn chunk(kind: MessageKind, round: u16, last: bool, payload: Vec<u8>) -> Message {
    Message::Mode(ModeChunk {
        kind,
        round,
        last,
        payload,
    })
}

/// Feeds `messages` to a fresh exact-mode responder and returns the first error.
fn check_responder_error(messages: Vec<Message>, expected: &str) {
    let mut driver = exact_responder();
    let mut ledger = ledger(Role::Responder);
    driver.start(&mut ledger).unwrap();
    for message in messages {
        if let Err(e) = driver.handle(message, &mut ledger) {
            assert_eq!(e.to_string(), expected);
            // Once failed, nothing more is accepted.
            let again = driver.handle(Message::Done, &mut ledger).unwrap_err();
            assert!(
                again.to_string().contains("after the session failed"),
                "{again}"
            );
            return;
        }
    }
    panic!("no error, expected: {expected}");
}

/// A real blinded set of `n` elements, as psi bytes.
fn blinded_set(n: usize) -> Vec<u8> {
    let key = blindlink_psi::MatchKeyName::new("my_number").unwrap();
    let elements: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8]).collect();
    let (_, set) = blindlink_psi::MutualInitiator::start(
        &key,
        &elements,
        &mut ChaCha20Rng::from_seed([9; 32]),
    )
    .unwrap();
    set.encode()
}

#[test]
fn hostile_messages_are_refused_with_clear_errors() {
    use MessageKind::*;
    let good = blinded_set(2);
    // A point that is not a valid ristretto255 encoding (non-canonical field element).
    let mut bad_point = good.clone();
    bad_point[6..38].copy_from_slice(&[0xff; 32]);
    let mut trailing = good.clone();
    trailing.push(0);
    check_responder_error(
        vec![chunk(PsiMutualReply, 0, true, good.clone())],
        "unexpected message 'psi_mutual_reply' during the private set intersection: expected psi_blinded_set",
    );
    check_responder_error(
        vec![Message::Done],
        "unexpected message 'done' during the private set intersection: expected psi_blinded_set",
    );
    check_responder_error(
        vec![chunk(PsiBlindedSet, 1, true, good.clone())],
        "invalid chunk round: 'psi_blinded_set' chunk for round 1, expected round 0",
    );
    check_responder_error(
        vec![
            chunk(PsiBlindedSet, 0, false, good[..10].to_vec()),
            chunk(CandidateTokens, 0, true, good[10..].to_vec()),
        ],
        "unexpected message 'candidate_tokens' during the private set intersection: expected psi_blinded_set",
    );
    let psi_error = |reason: String| format!("invalid psi message: {reason}");
    let bad_point_error = blindlink_psi::BlindedSet::decode(&bad_point, &Default::default())
        .map(|set| {
            let key = blindlink_psi::MatchKeyName::new("my_number").unwrap();
            let responder = blindlink_psi::MutualResponder::start(
                &key,
                &[b"1"],
                &mut ChaCha20Rng::from_seed([3; 32]),
            )
            .unwrap();
            responder.handle_blinded_set(&set).unwrap_err().to_string()
        })
        .unwrap_or_else(|e| e.to_string());
    assert!(bad_point_error.contains("point"), "{bad_point_error}");
    check_responder_error(
        vec![chunk(PsiBlindedSet, 0, true, bad_point)],
        &psi_error(bad_point_error),
    );
    let trailing_error = blindlink_psi::BlindedSet::decode(&trailing, &Default::default())
        .unwrap_err()
        .to_string();
    check_responder_error(
        vec![chunk(PsiBlindedSet, 0, true, trailing)],
        &psi_error(trailing_error),
    );
    // The identity point (all-zero encoding) is refused too.
    let mut identity = good.clone();
    identity[6..38].copy_from_slice(&[0; 32]);
    let identity_error = blindlink_psi::BlindedSet::decode(&identity, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(identity_error.contains("identity"), "{identity_error}");
    check_responder_error(
        vec![chunk(PsiBlindedSet, 0, true, identity)],
        &psi_error(identity_error),
    );
    check_responder_error(
        vec![chunk(PsiBlindedSet, 0, true, vec![1, 1, 0, 0])],
        &psi_error(
            blindlink_psi::BlindedSet::decode(&[1, 1, 0, 0], &Default::default())
                .unwrap_err()
                .to_string(),
        ),
    );
}

/// The exact responder decodes the PSI message as its chunks arrive: the same bytes cut into
/// pieces of any size give the same answer, and hostile bytes the same error, as one chunk.
#[test]
fn exact_psi_messages_cut_anywhere_give_the_same_answer_or_error() {
    use MessageKind::*;
    fn answer(pieces: Vec<Message>) -> Result<Vec<Message>, String> {
        let mut driver = exact_responder();
        let mut ledger = ledger(Role::Responder);
        driver.start(&mut ledger).unwrap();
        let mut sent = Vec::new();
        for message in pieces {
            let step = driver
                .handle(message, &mut ledger)
                .map_err(|e| e.to_string())?;
            sent.extend(all_sent(&mut driver, step));
        }
        Ok(sent)
    }
    let good = blinded_set(3);
    let whole = answer(vec![chunk(PsiBlindedSet, 0, true, good.clone())]).unwrap();
    // The reply: one chunk, 2 + 8 + 32 × (3 + 1) bytes.
    assert_eq!(whole.len(), 1);
    assert!(
        matches!(&whole[0], Message::Mode(c) if c.kind == PsiMutualReply && c.payload.len() == 138 && c.last)
    );
    for size in [1, 2, 5, 6, 7, 31, 32, 33, 100] {
        let pieces = chunks::split_at_most(PsiBlindedSet, 0, good.clone(), size);
        assert_eq!(answer(pieces).unwrap(), whole, "pieces of {size} bytes");
    }
    let mut identity = good.clone();
    identity[38..70].copy_from_slice(&[0; 32]);
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[7; 33]);
    let mut bad_point = good.clone();
    bad_point[70..102].copy_from_slice(&[0xff; 32]);
    for (bytes, expected) in [
        (
            identity,
            "invalid psi message: blinded set has the identity point at index 1",
        ),
        (
            trailing,
            "invalid psi message: blinded set has 33 trailing bytes",
        ),
        (
            good[..90].to_vec(),
            "invalid psi message: blinded set is truncated: expected 102 bytes, got 90",
        ),
        (
            vec![1, 1, 0, 0],
            "invalid psi message: blinded set is truncated: expected 6 bytes, got 4",
        ),
        (
            vec![1, 3, 0, 0, 0, 0],
            "invalid psi message: expected blinded set (kind 1), got message kind 3",
        ),
        (
            vec![1, 1, 0, 0, 0, 2],
            "invalid psi message: blinded set announces 33554432 elements, more than the limit of 16777216",
        ),
        (
            bad_point,
            "invalid psi message: blinded set has an invalid point encoding at index 2",
        ),
    ] {
        for size in [1, 3, 32, 1000] {
            let pieces = chunks::split_at_most(PsiBlindedSet, 0, bytes.clone(), size);
            assert_eq!(
                answer(pieces).unwrap_err(),
                expected,
                "pieces of {size} bytes"
            );
        }
    }
    // The bound on the message's length holds for decoded messages as for reassembled ones.
    let limit = blindlink_psi::WireLimits::default().max_message_bytes();
    let oversize = vec![
        chunk(PsiBlindedSet, 0, false, good[..6].to_vec()),
        chunk(PsiBlindedSet, 0, false, vec![1; MAX_MODE_CHUNK_BYTES]),
    ];
    let mut pieces = oversize;
    let filler = limit / MAX_MODE_CHUNK_BYTES;
    for _ in 1..filler {
        pieces.push(chunk(
            PsiBlindedSet,
            0,
            false,
            vec![1; MAX_MODE_CHUNK_BYTES],
        ));
    }
    let sent = 6 + filler * MAX_MODE_CHUNK_BYTES;
    pieces.push(chunk(PsiBlindedSet, 0, true, vec![1; limit + 1 - sent]));
    assert_eq!(
        answer(pieces).unwrap_err(),
        format!(
            "message of kind 'psi_blinded_set' is {} bytes, over its limit of {limit} bytes",
            limit + 1
        )
    );
}

/// A step's streamed messages go after those it still has to hand over: the initiator's
/// reblinded set and the next round's blinded set keep their order, and the transcript holds
/// each logical message once, whole.
#[test]
fn streamed_messages_keep_their_order_and_reach_the_transcript() {
    // 40 records a side, 30 sharing a number; the other 10 a side go to round 1.
    let records = |prefix: &str, first: usize| {
        PartyData::from_records(
            (first..first + 40)
                .map(|i| {
                    keyed(
                        &format!("{prefix}{i}"),
                        &[Some(&format!("n{i}")), Some(&format!("k{i}"))],
                    )
                })
                .collect(),
        )
    };
    let config = ModeConfig::new(
        Mode::Exact,
        vec!["my_number".into(), "kana".into()],
        Vec::new(),
    );
    let mut a = new_driver(
        Role::Initiator,
        &config,
        records("a", 0),
        &mut ChaCha20Rng::from_seed([1; 32]),
    )
    .unwrap();
    let mut b = new_driver(
        Role::Responder,
        &config,
        records("b", 10),
        &mut ChaCha20Rng::from_seed([2; 32]),
    )
    .unwrap();
    a.keep_transcript();
    b.keep_transcript();
    let run = run_in_memory(&mut a, &mut b, Mode::Exact).unwrap();
    let transcript = a.transcript().unwrap();
    let shown: Vec<String> = transcript
        .entries()
        .iter()
        .map(|e| {
            format!(
                "{:?} {} {} {}",
                e.direction,
                e.kind.name(),
                e.round,
                e.bytes.len()
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            "Sent psi_blinded_set 0 1286",
            "Received psi_mutual_reply 0 2570",
            "Sent psi_reblinded_set 0 1286",
            "Sent psi_blinded_set 1 326",
            "Received psi_mutual_reply 1 650",
            "Sent psi_reblinded_set 1 326",
            "Received done 0 0",
        ]
    );
    assert_eq!(run.initiator.sent, run.responder.received);
    assert_eq!(run.initiator.received, run.responder.sent);
    let linked = a.outcome().unwrap().counts.linked;
    assert_eq!(linked, 30);
}

#[test]
fn mode_payloads_reject_wrong_counts_and_trailing_bytes() {
    fn check(result: Result<impl std::fmt::Debug, ProtocolError>, expected: &str) {
        assert_eq!(result.unwrap_err().to_string(), expected);
    }
    let scores = payload::encode_pair_scores(&[(1_000_000, false), (5, true)]);
    assert_eq!(
        payload::decode_pair_scores(&scores, 2).unwrap(),
        [(1_000_000, false), (5, true)]
    );
    check(
        payload::decode_pair_scores(&scores, 3),
        "invalid pair scores: pair count is 2, expected 3",
    );
    let mut long = scores.clone();
    long.push(0);
    check(
        payload::decode_pair_scores(&long, 2),
        "trailing data after pair scores: 1 bytes",
    );
    let mut bad_flag = scores.clone();
    bad_flag[8] = 2;
    check(
        payload::decode_pair_scores(&bad_flag, 2),
        "invalid pair scores: pair 0: flag 2, expected 0 or 1",
    );
    let mut too_high = scores;
    too_high[4..8].copy_from_slice(&1_000_001u32.to_be_bytes());
    check(
        payload::decode_pair_scores(&too_high, 2),
        "invalid pair scores: pair 0: score 1000001 is over 1000000",
    );
    let link = |position| payload::SentLink {
        position,
        link_id: [7; 32],
        score: 900_000,
    };
    let links = payload::encode_link_ids(&[link(0), link(3)]);
    assert_eq!(
        payload::decode_link_ids(&links, 4).unwrap(),
        [link(0), link(3)]
    );
    check(
        payload::decode_link_ids(&links, 3),
        "invalid link ids: position 3 is not ascending below 3",
    );
    check(
        payload::decode_link_ids(&payload::encode_link_ids(&[link(2), link(2)]), 4),
        "invalid link ids: position 2 is not ascending below 4",
    );
    let field = [1u8; 4];
    let candidates = payload::encode_candidate_tokens(&[vec![0, 2], vec![1]]);
    assert_eq!(
        payload::decode_candidate_tokens(&candidates, 10, 6, 3).unwrap(),
        [vec![0, 2], vec![1]]
    );
    check(
        payload::decode_candidate_tokens(&candidates, 10, 6, 2),
        "invalid candidate tokens: record 0: token index 2 is not ascending below 2",
    );
    check(
        payload::decode_candidate_tokens(&candidates, 1, 6, 3),
        "invalid candidate tokens: 2 records, over the limit of 1",
    );
    check(
        payload::decode_candidate_tokens(&payload::encode_candidate_tokens(&[vec![]]), 1, 6, 3),
        "invalid candidate tokens: record 0 has 0 matched tokens, expected 1 to 6",
    );
    let mut long = candidates.clone();
    long.push(0);
    check(
        payload::decode_candidate_tokens(&long, 10, 6, 3),
        "trailing data after candidate tokens: 1 bytes",
    );
    let holders = payload::encode_holders(&[1, 2]);
    assert_eq!(payload::decode_holders(&holders, 2, 4).unwrap(), [1, 2]);
    check(
        payload::decode_holders(&holders, 3, 4),
        "invalid pair plan: link count is 2, expected 3",
    );
    check(
        payload::decode_holders(&payload::encode_holders(&[0]), 1, 4),
        "invalid pair plan: link 0 has 0 holders, expected 1 to 4",
    );
    let positions = payload::encode_positions(&[0, 0, 3]);
    assert_eq!(
        payload::decode_positions(&positions, 4, 10).unwrap(),
        [0, 0, 3]
    );
    check(
        payload::decode_positions(&positions, 3, 10),
        "invalid pair plan: pair 2: position 3 is not ascending below 3 (a pair with a record that was never a candidate)",
    );
    check(
        payload::decode_positions(&payload::encode_positions(&[2, 1]), 3, 10),
        "invalid pair plan: pair 1: position 1 is not ascending below 3 (a pair with a record that was never a candidate)",
    );
    check(
        payload::decode_positions(&positions, 4, 2),
        "invalid pair plan: 3 pairs, over the limit of 2",
    );
    check(
        payload::decode_all_clks(&payload::encode_all_clks(4, &[&field]), 8, 10),
        "invalid all clks: clk length is 4, expected 8",
    );
    check(
        payload::decode_intersection_size(&[0; 9]),
        "trailing data after intersection size: 1 bytes",
    );
}

#[test]
fn chunks_split_and_reassemble_within_their_bound() {
    let bytes: Vec<u8> = (0..MAX_MODE_CHUNK_BYTES * 2 + 5).map(|i| i as u8).collect();
    let messages = chunks::split(MessageKind::AllClks, 0, bytes.clone());
    assert_eq!(messages.len(), 3);
    let mut assembly = chunks::Reassembly::new(MessageKind::AllClks, 0, bytes.len());
    let mut whole = None;
    for message in messages {
        let frame = message.encode().unwrap();
        assert!(frame.len() <= MessageKind::AllClks.max_frame_len());
        let Message::Mode(chunk) = Message::decode(&frame).unwrap() else {
            panic!("a mode chunk");
        };
        whole = assembly.push(chunk, "test").unwrap();
    }
    assert_eq!(whole.unwrap(), bytes);
    let mut small = chunks::Reassembly::new(MessageKind::AllClks, 0, 10);
    let err = small
        .push(
            ModeChunk {
                kind: MessageKind::AllClks,
                round: 0,
                last: false,
                payload: vec![0; 11],
            },
            "test",
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "message of kind 'all_clks' is 11 bytes, over its limit of 10 bytes"
    );
    assert_eq!(chunks::split(MessageKind::LinkIds, 2, Vec::new()).len(), 1);
}

#[test]
fn mode_chunk_frames_are_checked() {
    fn check(frame: &[u8], expected: &str) {
        assert_eq!(Message::decode(frame).unwrap_err().to_string(), expected);
    }
    let message = chunk(MessageKind::PairScores, 3, true, vec![9, 8]);
    let frame = message.encode().unwrap();
    assert_eq!(frame, [0x40, 0, 3, 1, 0, 0, 0, 2, 9, 8]);
    assert_eq!(Message::decode(&frame).unwrap(), message);
    check(
        &[0x40, 0, 3, 2, 0, 0, 0, 0],
        "invalid chunk flag: expected 0 or 1, got 2",
    );
    check(
        &[0x40, 0, 3, 1, 0, 0, 0, 0, 7],
        "trailing data after pair_scores: 1 bytes",
    );
    check(&[0x7f], "unknown message kind 0x7f");
    check(
        &[0x24, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "message of kind 'intersection_size' is 17 bytes, over its limit of 16 bytes",
    );
    assert_eq!(
        chunk(MessageKind::IntersectionSize, 0, true, vec![0; 9])
            .encode()
            .unwrap_err()
            .to_string(),
        "message of kind 'intersection_size' is 9 bytes, over its limit of 8 bytes"
    );
    assert_eq!(
        chunk(MessageKind::Ping, 0, true, Vec::new())
            .encode()
            .unwrap_err()
            .to_string(),
        "invalid mode chunk: kind 'ping' is not a mode kind"
    );
    for kind in MessageKind::ALL {
        assert_eq!(MessageKind::from_byte(kind.byte()).unwrap(), kind);
    }
}

#[test]
fn configurations_and_data_are_checked() {
    fn check(config: &ModeConfig, data: PartyData, expected: &str) {
        let err = new_driver(
            Role::Initiator,
            config,
            data,
            &mut ChaCha20Rng::from_seed([0; 32]),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_eq!(err.origin(), ErrorOrigin::Local);
        assert_eq!(err.peer_text(), crate::LOCAL_ERROR_PEER_TEXT);
    }
    let empty = PartyData::default();
    check(
        &exact_keys(&[]),
        empty.clone(),
        "invalid match keys: 0 keys, expected 1 to 8",
    );
    check(
        &mode_config(Mode::Fuzzy),
        empty.clone(),
        "invalid fuzzy configuration: no blocking key (derive one from the linkage secret)",
    );
    check(
        &mode_config(Mode::ClkExchange),
        empty.clone(),
        "invalid clk-exchange configuration: [linkage] reveal_decodable_encodings is not set: \
         clk-exchange sends every CLK to the comparing side, which holds the linkage key and can \
         decode them; set [linkage] reveal_decodable_encodings = true in both party configs to \
         accept that",
    );
    let mut c = fuzzy_config(Mode::ClkExchange);
    if let ModeConfig::ClkExchange(c) = &mut c {
        c.dice_threshold = 1.5;
    }
    check(
        &c,
        empty.clone(),
        "invalid link.dice_threshold: 1.5 is outside [0, 1]",
    );
    let mut c = fuzzy_config(Mode::ClkExchange);
    if let ModeConfig::ClkExchange(c) = &mut c {
        c.filter_bits = 1001;
    }
    check(
        &c,
        empty.clone(),
        "invalid filter_bits: 1001 is not a positive multiple of 8 up to 65536",
    );
    let mut c = mode_config(Mode::Validate);
    if let ModeConfig::Validate(c) = &mut c {
        c.comparisons.fields.clear();
    }
    check(
        &c,
        empty.clone(),
        "invalid compared fields: 0 fields, expected 1 to 16 (validate and fuzzy compare field tokens)",
    );
    check(
        &mode_config(Mode::Exact),
        PartyData::from_records(vec![
            keyed("a", &[Some("1")]),
            keyed("b", &[Some("1"), None]),
        ]),
        "invalid party data: record 2 ('b'): 2 match keys, expected 1",
    );
    let with_clk = PartyData::from_records(vec![PartyRecord {
        id: "x".into(),
        clk: Some(vec![0; 3]),
        ..PartyRecord::default()
    }]);
    check(
        &fuzzy_config(Mode::ClkExchange),
        with_clk,
        "invalid party data: record 1 ('x'): clk of 3 bytes, expected 128",
    );
    let record = |fields: Vec<FieldTokens>| {
        PartyData::from_records(vec![PartyRecord {
            id: "y".into(),
            keys: vec![Some(b"1".to_vec())],
            fields,
            ..PartyRecord::default()
        }])
    };
    check(
        &mode_config(Mode::Validate),
        record(vec![Vec::new(); 4]),
        "invalid party data: record 1 ('y'): 4 compared fields, expected 5",
    );
    let mut fields = vec![Vec::new(); 5];
    fields[2] = vec![b"t".to_vec(); MAX_FIELD_TOKENS + 1];
    check(
        &mode_config(Mode::Validate),
        record(fields),
        "invalid party data: record 1 ('y'): field 'date_of_birth' has 257 tokens, over the limit of 256",
    );
    let mut fields = vec![Vec::new(); 5];
    fields[0] = vec![vec![0; MAX_TOKEN_BYTES + 1]];
    check(
        &mode_config(Mode::Validate),
        record(fields),
        "invalid party data: record 1 ('y'): a token of field 'name_kana' has 1025 bytes, over the limit of 1024",
    );
}

#[test]
fn parameters_name_what_both_sides_must_share() {
    let entries = |config: &ModeConfig| -> BTreeMap<String, String> {
        config
            .parameters()
            .unwrap()
            .entries()
            .iter()
            .cloned()
            .collect()
    };
    let validate = entries(&mode_config(Mode::Validate));
    assert_eq!(validate["validate.threshold"], "0.5");
    let text = "exact@1,dice>=0.9@0.9,dice>=0.7@0.7,different@0";
    let exact = "exact@1,different@0!";
    assert_eq!(
        validate["validate.fields"],
        format!(
            "name_kana:{text};name_kanji:{text};date_of_birth:{exact};sex:{exact};address:{text}"
        )
    );
    assert_eq!(
        validate["grouped.buckets"],
        blindlink_psi::SizeBuckets::default().describe()
    );
    let mut other = mode_config(Mode::Validate);
    if let ModeConfig::Validate(c) = &mut other {
        c.threshold = 0.8;
    }
    assert_ne!(
        other.parameters().unwrap(),
        mode_config(Mode::Validate).parameters().unwrap()
    );
    let mut exact_buckets = mode_config(Mode::Validate);
    if let ModeConfig::Validate(c) = &mut exact_buckets {
        c.buckets = blindlink_psi::SizeBuckets::exact();
    }
    assert_ne!(
        entries(&exact_buckets)["grouped.buckets"],
        validate["grouped.buckets"],
        "the handshake commits to the bucket scheme"
    );
    let fuzzy = entries(&fuzzy_config(Mode::Fuzzy));
    assert_eq!(fuzzy["fuzzy.minhash"], "1x8");
    assert_eq!(fuzzy["fuzzy.blocking"], "field-pairs");
    assert_eq!(fuzzy["fuzzy.max_pairs"], "2");
    assert_eq!(fuzzy["fuzzy.exact_stage"], "true");
    assert_eq!(fuzzy["fuzzy.threshold"], "0.6");
    assert!(fuzzy.contains_key("grouped.buckets"));
    assert!(!format!("{:?}", fuzzy_config(Mode::Fuzzy)).contains("BlockingSecret("));
    // Both sides must opt in to clk-exchange: the opt-in is a parameter.
    assert_eq!(
        entries(&fuzzy_config(Mode::ClkExchange))["clk_exchange.reveal_decodable_encodings"],
        "true"
    );
}

// ---- grouped PSI: validate and fuzzy ----

/// A step's messages and those its driver makes on demand after them (the mutual PSI's).
fn all_sent(driver: &mut ModeDriver, step: DriverStep) -> Vec<Message> {
    let mut sent = step.send;
    sent.extend(std::iter::from_fn(|| driver.next_message()));
    sent
}

/// Two drivers and their ledgers, with the messages in flight, driven by hand.
struct Manual {
    drivers: [ModeDriver; 2],
    ledgers: [DisclosureLedger; 2],
    /// `(to side, message)`.
    queue: std::collections::VecDeque<(usize, Message)>,
}

impl Manual {
    fn new(config: &ModeConfig, a: PartyData, b: PartyData) -> Self {
        let mut drivers = [
            new_driver(
                Role::Initiator,
                config,
                a,
                &mut ChaCha20Rng::from_seed([1; 32]),
            )
            .unwrap(),
            new_driver(
                Role::Responder,
                config,
                b,
                &mut ChaCha20Rng::from_seed([2; 32]),
            )
            .unwrap(),
        ];
        let session = crate::SessionId::from_bytes([5; 16]);
        let mut ledgers = [
            DisclosureLedger::new(session, Role::Initiator, config.mode(), "responder"),
            DisclosureLedger::new(session, Role::Responder, config.mode(), "initiator"),
        ];
        let mut queue = std::collections::VecDeque::new();
        for side in 0..2 {
            let step = drivers[side].start(&mut ledgers[side]).unwrap();
            let sent = all_sent(&mut drivers[side], step);
            queue.extend(sent.into_iter().map(|m| (1 - side, m)));
        }
        Self {
            drivers,
            ledgers,
            queue,
        }
    }

    /// Delivers messages until the next one is a chunk of `kind`; takes that whole logical
    /// message out of the queue and returns its receiver and bytes.
    fn until(&mut self, kind: MessageKind) -> (usize, Vec<u8>) {
        loop {
            let (to, message) = self.queue.pop_front().expect("the message never came");
            if let Message::Mode(chunk) = &message
                && chunk.kind == kind
            {
                let mut bytes = chunk.payload.clone();
                let mut last = chunk.last;
                while !last {
                    let Some((_, Message::Mode(next))) = self.queue.pop_front() else {
                        panic!("a chunked message");
                    };
                    bytes.extend_from_slice(&next.payload);
                    last = next.last;
                }
                return (to, bytes);
            }
            let step = self.drivers[to]
                .handle(message, &mut self.ledgers[to])
                .unwrap();
            let sent = all_sent(&mut self.drivers[to], step);
            self.queue.extend(sent.into_iter().map(|m| (1 - to, m)));
        }
    }

    fn inject(&mut self, to: usize, kind: MessageKind, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.inject_round(to, kind, 0, bytes)
    }

    fn inject_round(
        &mut self,
        to: usize,
        kind: MessageKind,
        round: u16,
        bytes: &[u8],
    ) -> Result<(), ProtocolError> {
        for message in chunks::split(kind, round, bytes.to_vec()) {
            let step = self.drivers[to].handle(message, &mut self.ledgers[to])?;
            let sent = all_sent(&mut self.drivers[to], step);
            self.queue.extend(sent.into_iter().map(|m| (1 - to, m)));
        }
        Ok(())
    }

    /// Runs what is left to the end.
    fn finish(&mut self) {
        while let Some((to, message)) = self.queue.pop_front() {
            let step = self.drivers[to]
                .handle(message, &mut self.ledgers[to])
                .unwrap();
            let sent = all_sent(&mut self.drivers[to], step);
            self.queue.extend(sent.into_iter().map(|m| (1 - to, m)));
        }
    }
}

/// A record with an ID and field values (name_kana, name_kanji, date_of_birth, sex, address).
fn person(id: &str, number: &str, values: [&str; 5]) -> PartyRecord {
    PartyRecord {
        id: id.into(),
        keys: vec![Some(number.as_bytes().to_vec())],
        clk: None,
        fields: Tokeniser::new().tokens(&values),
    }
}

const TARO: [&str; 5] = [
    "ヤマダタロウ",
    "山田太郎",
    "1980-01-02",
    "1",
    "東京都千代田区丸の内1-2-3",
];
const TARO_TYPO: [&str; 5] = [
    "ヤマダタロ",
    "山田太郎",
    "1980-01-02",
    "1",
    "東京都千代田区丸の内1-2-3",
];
const HANAKO: [&str; 5] = [
    "スズキハナコ",
    "鈴木花子",
    "1975-11-30",
    "2",
    "大阪府大阪市北区梅田3-4-5",
];

fn small_validate() -> (PartyData, PartyData) {
    let insurer = PartyData::from_records(vec![
        person("i1", "111", TARO),
        person("i2", "222", TARO_TYPO),
        person("i3", "333", HANAKO),
        person("i4", "333", TARO),
    ]);
    let registry = PartyData::from_records(vec![
        person("r1", "111", TARO),
        person("r2", "222", TARO),
        person("r3", "333", HANAKO),
    ]);
    (insurer, registry)
}

/// Dice of two token multisets, as exact sizes give it.
fn exact_dice(a: &FieldTokens, b: &FieldTokens) -> f64 {
    let mut counts: HashMap<&[u8], i64> = HashMap::new();
    for t in a {
        *counts.entry(t).or_default() += 1;
    }
    let mut shared = 0;
    for t in b {
        if let Some(c) = counts.get_mut(t.as_slice())
            && *c > 0
        {
            *c -= 1;
            shared += 1;
        }
    }
    2.0 * f64::from(shared) / (a.len() + b.len()) as f64
}

#[test]
fn validate_scores_right_and_wrong_person_pairs_through_the_grouped_psi() {
    let (insurer, registry) = small_validate();
    let run = run(
        &mode_config(Mode::Validate),
        insurer.clone(),
        registry.clone(),
    );
    let rows = &run.initiator.rows;
    // The comparing side keeps the model and every compared record's agreement pattern; its
    // score is the pattern's match probability as the peer learns it (in millionths).
    let validation = run.initiator.validation.as_ref().unwrap();
    assert!(run.responder.validation.is_none());
    assert_eq!(validation.model.fit.pairs, 4);
    let probability = |row: usize| {
        let pattern = validation.patterns[row].as_ref().unwrap();
        validation.model.score(pattern).unwrap().probability
    };
    for (i, row) in rows.iter().enumerate().take(4) {
        let expected = (probability(i) * 1e6).round() / 1e6;
        assert_eq!(row.score, Some(expected), "row {i}");
    }
    // Same person, same values: every field at its best level.
    use crate::fellegi_sunter::Level;
    assert_eq!(
        validation.patterns[0].as_deref(),
        Some(&[Level::at(0); 5][..])
    );
    assert_eq!(rows[0].status, LinkStatus::Linked);
    // Same person with a typo in the kana name: the kana below its best level (on the Dice
    // upper bound over the sizes the peer's bucket allows), the rest exact, not flagged.
    let dice = exact_dice(
        &insurer.record(1).unwrap().fields[0],
        &registry.record(1).unwrap().fields[0],
    );
    assert!(dice < 1.0);
    let typo = validation.patterns[1].as_ref().unwrap();
    assert_ne!(typo[0], Level::at(0));
    assert_eq!(typo[1..], [Level::at(0); 4]);
    assert_eq!(rows[1].status, LinkStatus::Linked);
    // Two holders of 333: Hanako is right, Taro is the wrong person and is flagged.
    assert_eq!(rows[2].status, LinkStatus::Linked);
    assert_eq!(rows[3].status, LinkStatus::SuspectedWrongPerson);
    assert!(rows[3].score.unwrap() < 0.5, "{:?}", rows[3].score);
    assert_eq!(rows[2].link_id, rows[3].link_id);
    // The registry learns the best holder's score.
    assert_eq!(run.responder.rows[2].score, rows[2].score);
    assert_eq!(run.responder.rows[2].status, LinkStatus::Linked);
    assert_eq!(run.initiator.learned.compared_pairs, 4);
    assert_eq!(run.responder.learned.compared_pairs, 4);
    // The ledgers list every pair: 4 pairs, each with what both sides learned.
    for ledger in [&run.ledgers.initiator, &run.ledgers.responder] {
        let shared: Vec<crate::DisclosureEntry> = ledger
            .disclosures()
            .filter(|e| matches!(e.disclosure, Disclosure::SharedTokenCounts { .. }))
            .collect();
        assert_eq!(shared.len(), 4);
        assert!(shared.iter().all(|e| e.learned_by == Role::Initiator));
        let padded = ledger
            .disclosures()
            .filter(|e| {
                matches!(e.disclosure, Disclosure::PaddedTokenCounts { .. })
                    && e.learned_by == Role::Responder
            })
            .count();
        assert_eq!(padded, 4);
    }
    let per_pair = |l: &DisclosureLedger| -> Vec<crate::DisclosureEntry> {
        l.disclosures()
            .filter(|e| {
                matches!(
                    e.disclosure,
                    Disclosure::SharedTokenCounts { .. } | Disclosure::PaddedTokenCounts { .. }
                )
            })
            .collect()
    };
    assert_eq!(
        per_pair(&run.ledgers.initiator),
        per_pair(&run.ledgers.responder),
        "both ledgers list the same pairs, in the same order, with the same values"
    );
    assert_eq!(per_pair(&run.ledgers.initiator).len(), 8);
}

#[test]
fn field_dice_is_the_upper_bound_over_the_bucket() {
    let buckets = blindlink_psi::SizeBuckets::default();
    let count = |shared: usize, x: usize, y: usize| blindlink_psi::GroupCount {
        shared: shared as u32,
        own_size: x as u32,
        peer_padded: buckets.padded(y) as u32,
    };
    for x in 1..40usize {
        for y in 1..40usize {
            for s in 0..=x.min(y) {
                let exact = 2.0 * s as f64 / (x + y) as f64;
                let bound = grouped::field_dice(&count(s, x, y), &buckets).unwrap();
                assert!(bound + 1e-12 >= exact, "{s} {x} {y}: {bound} < {exact}");
                assert!(bound <= 1.0 + 1e-12);
                if s == x && s == y {
                    assert_eq!(bound, 1.0, "agreeing fields score 1");
                }
            }
        }
    }
    // A missing field on either side (an empty group: padded size 0) is left out.
    assert_eq!(grouped::field_dice(&count(0, 5, 0), &buckets), None);
    assert_eq!(grouped::field_dice(&count(0, 0, 6), &buckets), None);
    // A one-token field that differs is a disagreement, not a missing field.
    assert_eq!(grouped::field_dice(&count(0, 1, 1), &buckets), Some(0.0));
}

/// Every 32-byte piece of these filters that is not all zero.
fn pieces(filters: impl IntoIterator<Item = Vec<u8>>) -> std::collections::HashSet<Vec<u8>> {
    filters
        .into_iter()
        .flat_map(|f| f.chunks(32).map(<[u8]>::to_vec).collect::<Vec<_>>())
        .filter(|p| p.len() == 32 && p.iter().any(|&b| b != 0))
        .collect()
}

fn contains_any(bytes: &[u8], pieces: &std::collections::HashSet<Vec<u8>>) -> bool {
    bytes.windows(32).any(|w| pieces.contains(w))
}

#[test]
fn no_clk_or_field_filter_crosses_the_wire_in_validate_or_fuzzy() {
    for mode in [Mode::Validate, Mode::Fuzzy, Mode::ClkExchange] {
        let (scenario, files) = if mode == Mode::Validate {
            (
                Scenario::RegistryInsurer,
                [OutputFile::Insurer, OutputFile::Registry],
            )
        } else {
            (
                Scenario::TwoHospitals,
                [OutputFile::HospitalA, OutputFile::HospitalB],
            )
        };
        let data = generate(scenario, 300, 0.5, 17);
        let rows = |f: OutputFile| &data.files[f.file_name()];
        let parties = files.map(|f| party(f, scenario, rows(f)));
        // Every party's field filters (what validate used to send) and CLKs.
        let secrets: Vec<std::collections::HashSet<Vec<u8>>> = files
            .iter()
            .zip(&parties)
            .map(|(&f, p)| {
                let filters = rows(f).iter().enumerate().flat_map(|(i, row)| {
                    let values = derived(f, scenario, row);
                    let values: Vec<&str> = values.iter().map(String::as_str).collect();
                    field_filters(&values, i as u64)
                });
                let clks = p.records().filter_map(|r| r.clk.clone());
                pieces(filters.chain(clks))
            })
            .collect();
        let config = fuzzy_config(mode);
        let mut a = new_driver(
            Role::Initiator,
            &config,
            parties[0].clone(),
            &mut ChaCha20Rng::from_seed([1; 32]),
        )
        .unwrap();
        let mut b = new_driver(
            Role::Responder,
            &config,
            parties[1].clone(),
            &mut ChaCha20Rng::from_seed([2; 32]),
        )
        .unwrap();
        a.keep_transcript();
        b.keep_transcript();
        run_in_memory(&mut a, &mut b, mode).unwrap();
        for (side, driver) in [&a, &b].into_iter().enumerate() {
            let transcript = driver.transcript().unwrap();
            let received: Vec<u8> = transcript
                .entries()
                .iter()
                .filter(|e| e.direction == Direction::Received)
                .flat_map(|e| e.bytes.clone())
                .collect();
            assert!(!received.is_empty());
            let peer = &secrets[1 - side];
            let leaked = contains_any(&received, peer);
            if mode == Mode::ClkExchange && side == 0 {
                assert!(leaked, "the check finds the CLKs clk-exchange sends");
            } else {
                assert!(
                    !leaked,
                    "{mode}: side {side} received a CLK or field filter"
                );
            }
        }
    }
}

#[test]
fn the_transcript_matches_the_ledger() {
    let (insurer, registry) = small_validate();
    let config = mode_config(Mode::Validate);
    let mut a = new_driver(
        Role::Initiator,
        &config,
        insurer,
        &mut ChaCha20Rng::from_seed([1; 32]),
    )
    .unwrap();
    let mut b = new_driver(
        Role::Responder,
        &config,
        registry,
        &mut ChaCha20Rng::from_seed([2; 32]),
    )
    .unwrap();
    a.keep_transcript();
    b.keep_transcript();
    let handle = b.outcome_handle();
    let ledgers = run_in_memory(&mut a, &mut b, Mode::Validate).unwrap();
    let transcripts = [a.transcript().unwrap(), handle.transcript().unwrap()];
    for (transcript, ledger) in transcripts
        .iter()
        .zip([&ledgers.initiator, &ledgers.responder])
    {
        for (direction, traffic) in [
            (Direction::Sent, &ledger.sent),
            (Direction::Received, &ledger.received),
        ] {
            let mut by_kind: BTreeMap<String, crate::TrafficCount> = BTreeMap::new();
            for e in transcript
                .entries()
                .iter()
                .filter(|e| e.direction == direction)
            {
                let c = by_kind.entry(e.kind.name().to_owned()).or_default();
                if e.kind.is_mode() {
                    // Frames of 8 bytes of header and at most a chunk of payload each.
                    let frames = e.bytes.len().div_ceil(MAX_MODE_CHUNK_BYTES).max(1) as u64;
                    c.messages += frames;
                    c.bytes += e.bytes.len() as u64 + 8 * frames;
                } else {
                    c.messages += 1;
                    c.bytes += 1 + e.bytes.len() as u64;
                }
            }
            assert_eq!(by_kind, traffic.by_kind, "{} {direction:?}", ledger.role);
        }
        let bytes = transcript.to_bytes();
        assert_eq!(&Transcript::from_bytes(&bytes).unwrap(), transcript);
    }
    // What one side sent is what the other received, message by message.
    let sent = |t: &Transcript, d| -> Vec<(MessageKind, Vec<u8>)> {
        t.entries()
            .iter()
            .filter(|e| e.direction == d)
            .map(|e| (e.kind, e.bytes.clone()))
            .collect()
    };
    assert_eq!(
        sent(&transcripts[0], Direction::Sent),
        sent(&transcripts[1], Direction::Received)
    );
    assert_eq!(
        sent(&transcripts[1], Direction::Sent),
        sent(&transcripts[0], Direction::Received)
    );
}

#[test]
fn the_transcript_starts_with_both_hellos() {
    use crate::{
        InitiatorHandshake, Parameters, ResponderHandshake, SchemaDescriptor, SessionOffer,
    };
    let config = mode_config(Mode::Exact);
    let offer = SessionOffer {
        mode: Mode::Exact,
        schema: SchemaDescriptor::new([("key:my_number", "digits")]).unwrap(),
        parameters: Parameters::new(config.parameters().unwrap().entries().to_vec()).unwrap(),
    };
    let sid = crate::SessionId::from_bytes([8; 16]);
    let (waiting, hello) = InitiatorHandshake::start(offer.clone(), b"key", sid);
    let answer = ResponderHandshake::new(offer, b"key").handle(hello.clone());
    let responder_session = answer.result.unwrap();
    let reply = answer.reply.unwrap();
    let initiator_session = waiting.handle(reply.clone()).unwrap();
    let data = || PartyData::from_records(vec![keyed("x", &[Some("1")])]);
    let mut a = new_driver(
        Role::Initiator,
        &config,
        data(),
        &mut ChaCha20Rng::from_seed([1; 32]),
    )
    .unwrap();
    let mut b = new_driver(
        Role::Responder,
        &config,
        data(),
        &mut ChaCha20Rng::from_seed([2; 32]),
    )
    .unwrap();
    a.keep_transcript();
    b.keep_transcript();
    a.established(&initiator_session);
    b.established(&responder_session);
    run_in_memory(&mut a, &mut b, Mode::Exact).unwrap();
    let frame_body = |m: &Message| m.encode().unwrap()[1..].to_vec();
    for (driver, first, second) in [
        (&a, Direction::Sent, Direction::Received),
        (&b, Direction::Received, Direction::Sent),
    ] {
        let t = driver.transcript().unwrap();
        assert_eq!(t.session_id(), sid);
        let e = t.entries();
        assert_eq!((e[0].kind, e[0].direction), (MessageKind::Hello, first));
        assert_eq!((e[1].kind, e[1].direction), (MessageKind::Hello, second));
        assert_eq!(e[0].bytes, frame_body(&hello));
        assert_eq!(e[1].bytes, frame_body(&reply));
        assert!(e[2..].iter().all(|e| e.kind != MessageKind::Hello));
    }
    let bytes = a.transcript().unwrap().to_bytes();
    let cut = Transcript::from_bytes(&bytes[..bytes.len() - 1])
        .unwrap_err()
        .to_string();
    assert!(cut.starts_with("truncated transcript entry"), "{cut}");
    let mut wrong = bytes.clone();
    wrong[0] = b'X';
    assert_eq!(
        Transcript::from_bytes(&wrong).unwrap_err().to_string(),
        "invalid transcript: it does not start with BLTRANS1"
    );
}

/// The error a hostile grouped message makes `side` report, after which it is failed.
fn hostile(
    config: &ModeConfig,
    data: (PartyData, PartyData),
    kind: MessageKind,
    tamper: impl FnOnce(Vec<u8>) -> (MessageKind, Vec<u8>),
) -> ProtocolError {
    let mut manual = Manual::new(config, data.0, data.1);
    let (to, bytes) = manual.until(kind);
    let (kind, bytes) = tamper(bytes);
    let error = manual.inject(to, kind, &bytes).unwrap_err();
    assert_eq!(error.origin(), ErrorOrigin::Peer, "{error}");
    assert_eq!(error.peer_text(), error.to_string());
    let again = manual.drivers[to]
        .handle(Message::Done, &mut manual.ledgers[to])
        .unwrap_err();
    assert!(
        again.to_string().contains("after the session failed"),
        "{again}"
    );
    error
}

/// Offset of the first point of group 0 in a grouped query of `groups` groups.
fn first_point(groups: usize) -> usize {
    2 + 4 + 4 * groups
}

fn query_groups(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[2..6].try_into().unwrap()) as usize
}

#[test]
fn hostile_grouped_messages_are_refused_on_both_sides() {
    use MessageKind::*;
    let config = mode_config(Mode::Validate);
    let psi = |reason: &str| format!("invalid psi message: {reason}");
    // The answerer (responder): a plan for more pairs than were linked.
    let e = hostile(&config, small_validate(), PairPlan, |_| {
        let mut plan = payload::encode_holders(&[1, 1, 2]);
        plan[..4].copy_from_slice(&4u32.to_be_bytes());
        (PairPlan, plan)
    });
    assert_eq!(
        e.to_string(),
        "invalid pair plan: link count is 4, expected 3"
    );
    let e = hostile(&config, small_validate(), PairPlan, |_| {
        (PairPlan, payload::encode_holders(&[1, 1, 2, 1]))
    });
    assert_eq!(
        e.to_string(),
        "message of kind 'pair_plan' is 12 bytes, over its limit of 10 bytes"
    );
    let e = hostile(&config, small_validate(), PairPlan, |_| {
        (PairPlan, payload::encode_holders(&[1, 0, 2]))
    });
    assert_eq!(
        e.to_string(),
        "invalid pair plan: link 1 has 0 holders, expected 1 to 1024"
    );
    // Out of order: the query before the plan, scores instead of the query.
    let e = hostile(&config, small_validate(), PairPlan, |b| {
        (PsiGroupedQuery, b)
    });
    assert_eq!(
        e.to_string(),
        "unexpected message 'psi_grouped_query' while waiting for the pair plan: expected pair_plan"
    );
    let mut manual = Manual::new(&config, small_validate().0, small_validate().1);
    let (to, plan) = manual.until(PairPlan);
    manual.inject(to, PairPlan, &plan).unwrap();
    let e = manual
        .inject(to, PairScores, &payload::encode_pair_scores(&[]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unexpected message 'pair_scores' while waiting for the grouped query: expected psi_grouped_query"
    );
    // The answerer: bad queries. Four pairs of five fields: 20 groups.
    let query_error = |tamper: &dyn Fn(&mut Vec<u8>)| {
        let mut manual = Manual::new(&config, small_validate().0, small_validate().1);
        let (to, plan) = manual.until(PairPlan);
        manual.inject(to, PairPlan, &plan).unwrap();
        let (to, mut query) = manual.until(PsiGroupedQuery);
        assert_eq!(query_groups(&query), 20);
        tamper(&mut query);
        let e = manual.inject(to, PsiGroupedQuery, &query).unwrap_err();
        assert_eq!(e.origin(), ErrorOrigin::Peer);
        e.to_string()
    };
    let p = first_point(20);
    let trailing = query_error(&|q| q.push(0));
    assert!(
        trailing.starts_with("invalid psi message: grouped query") && trailing.contains("trailing"),
        "{trailing}"
    );
    let identity = query_error(&|q| q[p..p + 32].fill(0));
    assert!(
        identity.starts_with("invalid psi message:") && identity.contains("identity point"),
        "{identity}"
    );
    assert!(identity.contains("group 0"), "{identity}");
    let invalid = query_error(&|q| q[p..p + 32].fill(0xff));
    assert!(
        invalid.contains("invalid point encoding") && invalid.contains("group 0"),
        "{invalid}"
    );
    let duplicate = query_error(&|q| {
        let first: Vec<u8> = q[p..p + 32].to_vec();
        q[p + 32..p + 64].copy_from_slice(&first);
    });
    assert!(
        duplicate.contains("repeats") && duplicate.contains("group 0"),
        "{duplicate}"
    );
    let oversize = query_error(&|q| q[6..10].copy_from_slice(&100_000u32.to_le_bytes()));
    assert!(
        oversize.contains("group 0 has 100000 points, more than the limit"),
        "{oversize}"
    );
    // Wrong group count: a well-formed query of one group.
    let one = {
        let group = blindlink_psi::TokenGroup {
            label: b"x".to_vec(),
            tokens: vec![b"t".to_vec()],
        };
        let buckets = blindlink_psi::SizeBuckets::default();
        let (_, q) = blindlink_psi::GroupedQuerier::start(
            &[5; 16],
            &[group],
            &buckets,
            &blindlink_psi::GroupedLimits::default(),
            &mut ChaCha20Rng::from_seed([4; 32]),
        )
        .unwrap();
        q.encode()
    };
    assert_eq!(
        query_error(&|q| *q = one.clone()),
        psi("grouped query has 1 groups, expected 20")
    );
    // The querier (initiator): bad replies.
    let reply_error = |tamper: &dyn Fn(&mut Vec<u8>)| {
        let mut manual = Manual::new(&config, small_validate().0, small_validate().1);
        let (to, mut reply) = manual.until(PsiGroupedReply);
        assert_eq!(to, 0);
        tamper(&mut reply);
        let e = manual.inject(to, PsiGroupedReply, &reply).unwrap_err();
        assert_eq!(e.origin(), ErrorOrigin::Peer);
        e.to_string()
    };
    let trailing = reply_error(&|r| r.push(0));
    assert!(
        trailing.starts_with("invalid psi message: grouped reply") && trailing.contains("trailing"),
        "{trailing}"
    );
    let truncated = reply_error(&|r| {
        r.pop();
    });
    assert!(
        truncated.starts_with("invalid psi message: grouped reply"),
        "{truncated}"
    );
    let rp = 2 + 4 + 8 * 20;
    let identity = reply_error(&|r| r[rp..rp + 32].fill(0));
    assert!(
        identity.contains("identity point") && identity.contains("group 0"),
        "{identity}"
    );
    let duplicate = reply_error(&|r| {
        let first: Vec<u8> = r[rp..rp + 32].to_vec();
        r[rp + 32..rp + 64].copy_from_slice(&first);
    });
    assert!(duplicate.contains("repeats"), "{duplicate}");
    let one_reply = {
        let buckets = blindlink_psi::SizeBuckets::default();
        let group = blindlink_psi::TokenGroup {
            label: b"x".to_vec(),
            tokens: vec![b"t".to_vec()],
        };
        let (_, q) = blindlink_psi::GroupedQuerier::start(
            &[5; 16],
            std::slice::from_ref(&group),
            &buckets,
            &blindlink_psi::GroupedLimits::default(),
            &mut ChaCha20Rng::from_seed([4; 32]),
        )
        .unwrap();
        let a = blindlink_psi::GroupedAnswerer::start(
            &[5; 16],
            &[group],
            &buckets,
            &blindlink_psi::GroupedLimits::default(),
            &mut ChaCha20Rng::from_seed([6; 32]),
        )
        .unwrap();
        a.handle_query(&q).unwrap().0.encode()
    };
    assert_eq!(
        reply_error(&|r| *r = one_reply.clone()),
        psi("grouped reply has 1 groups, expected 20")
    );
    // Out of order on the querier: link ids instead of the reply.
    let mut manual = Manual::new(&config, small_validate().0, small_validate().1);
    let (to, _) = manual.until(PsiGroupedReply);
    let e = manual
        .inject(to, LinkIds, &payload::encode_link_ids(&[]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unexpected message 'link_ids' while waiting for the grouped reply: expected psi_grouped_reply"
    );
    // The honest run still works after all this.
    let mut manual = Manual::new(&config, small_validate().0, small_validate().1);
    manual.finish();
    assert!(manual.drivers[0].outcome().is_some() && manual.drivers[1].outcome().is_some());
}

#[test]
fn hostile_fuzzy_plans_and_candidates_are_refused() {
    use MessageKind::*;
    let (a, b, _) = two_hospitals(60, 9);
    let mut config = fuzzy_config(Mode::Fuzzy);
    // Without the exact stage, which would link most of these pairs without a plan.
    if let ModeConfig::Fuzzy(c) = &mut config {
        c.exact_stage = false;
    }
    // The querier (initiator): candidate token numbers it never matched.
    let e = hostile(&config, (a.clone(), b.clone()), CandidateTokens, |bytes| {
        let mut records =
            payload::decode_candidate_tokens(&bytes, MAX_RECORDS, 64, 1 << 30).unwrap();
        records[0] = vec![u32::MAX - 1];
        (CandidateTokens, payload::encode_candidate_tokens(&records))
    });
    assert!(
        e.to_string().starts_with(
            "invalid candidate tokens: record 0: token index 4294967294 is not ascending below"
        ),
        "{e}"
    );
    // The answerer (responder): a pair with a record that was never a candidate.
    let e = hostile(&config, (a.clone(), b.clone()), PairPlan, |bytes| {
        let mut positions = payload::decode_positions(&bytes, usize::MAX, usize::MAX).unwrap();
        let last = positions.len() - 1;
        positions[last] = u32::MAX;
        (PairPlan, payload::encode_positions(&positions))
    });
    assert!(
        e.to_string()
            .contains("(a pair with a record that was never a candidate)"),
        "{e}"
    );
    // A candidate in more pairs than fuzzy.max_pairs (2) allows.
    let e = hostile(&config, (a.clone(), b.clone()), PairPlan, |bytes| {
        let positions = payload::decode_positions(&bytes, usize::MAX, usize::MAX).unwrap();
        (PairPlan, payload::encode_positions(&[positions[0]; 3]))
    });
    assert!(
        e.to_string().starts_with("invalid pair plan: candidate ")
            && e.to_string()
                .ends_with(" is in pair 2, over fuzzy.max_pairs = 2"),
        "{e}"
    );
    // Link ids for a position it never sent.
    let e = hostile(&config, (a.clone(), b.clone()), LinkIds, |_| {
        let link = payload::SentLink {
            position: u32::MAX,
            link_id: [1; 32],
            score: 1,
        };
        (LinkIds, payload::encode_link_ids(&[link]))
    });
    assert!(
        e.to_string()
            .starts_with("invalid link ids: position 4294967295 is not ascending below"),
        "{e}"
    );
    // A query of the wrong shape for the plan.
    let e = hostile(&config, (a, b), PsiGroupedQuery, |mut q| {
        q.push(1);
        (PsiGroupedQuery, q)
    });
    assert!(
        e.to_string()
            .starts_with("invalid psi message: grouped query"),
        "{e}"
    );
}

#[test]
fn local_errors_are_not_sent_as_they_are() {
    let data = PartyData::from_records(vec![keyed("patient-0042", &[Some("1"), Some("2")])]);
    let error = new_driver(
        Role::Responder,
        &mode_config(Mode::Exact),
        data,
        &mut ChaCha20Rng::from_seed([0; 32]),
    )
    .unwrap_err();
    assert!(error.to_string().contains("patient-0042"));
    assert_eq!(error.origin(), ErrorOrigin::Local);
    assert!(!error.peer_text().contains("patient-0042"));
    assert_eq!(
        Message::abort(&error.peer_text()),
        Message::Abort(crate::LOCAL_ERROR_PEER_TEXT.into())
    );
    // Peer-caused and agreement errors are about bytes or settings both sides know.
    assert_eq!(ProtocolError::KeyMismatch.origin(), ErrorOrigin::Agreement);
    assert_eq!(ProtocolError::EmptyMessage.origin(), ErrorOrigin::Peer);
}

#[test]
fn every_mode_runs_in_memory_with_either_side_comparing() {
    let (insurer, registry) = small_validate();
    let (a, b, _) = two_hospitals(200, 5);
    for mode in Mode::ALL {
        for role in [Role::Initiator, Role::Responder] {
            let config = comparing(fuzzy_config(mode), role);
            let (x, y) = if matches!(mode, Mode::Fuzzy | Mode::ClkExchange) {
                (a.clone(), b.clone())
            } else {
                (insurer.clone(), registry.clone())
            };
            let run = run(&config, x, y);
            if mode != Mode::Cardinality {
                assert!(run.initiator.counts.linked > 0, "{mode} {role}");
                if mode == Mode::Validate {
                    // Holders of a shared ID differ; the other side has the best one's.
                    continue;
                }
                for (i, r) in linked_pairs(&run) {
                    assert_eq!(
                        run.initiator.rows[i].score, run.responder.rows[r].score,
                        "{mode} {role}"
                    );
                }
            }
        }
    }
}

/// m, u and λ fixed in the configuration (no EM): the model is the one given, and a pair is
/// flagged below the probability threshold even when no field vetoes.
#[test]
fn validate_with_fixed_m_and_u_flags_below_the_probability_threshold() {
    use crate::fellegi_sunter::{EmSettings, FixedProbabilities};
    let (insurer, registry) = small_validate();
    let mut config = mode_config(Mode::Validate);
    let ModeConfig::Validate(c) = &mut config else {
        unreachable!()
    };
    c.threshold = 0.999;
    c.em = EmSettings {
        fixed_lambda: Some(0.0001),
        fixed: c
            .comparisons
            .fields
            .iter()
            .map(|f| {
                let (m, u) = if f.levels.len() == 2 {
                    (vec![0.99, 0.01], vec![0.1, 0.9])
                } else {
                    (vec![0.9, 0.05, 0.03, 0.02], vec![0.01, 0.02, 0.07, 0.9])
                };
                FixedProbabilities {
                    field: f.field.clone(),
                    m: Some(m),
                    u: Some(u),
                }
            })
            .collect(),
        ..EmSettings::default()
    };
    let run = run(&config, insurer, registry);
    let validation = run.initiator.validation.as_ref().unwrap();
    let model = &validation.model;
    assert_eq!(model.lambda, 0.0001);
    assert!(model.fields.iter().all(|f| f.fixed_m && f.fixed_u));
    assert_eq!(validation.threshold, 0.999);
    let score = |row: usize| {
        model
            .score(validation.patterns[row].as_ref().unwrap())
            .unwrap()
    };
    for (i, row) in run.initiator.rows.iter().enumerate() {
        let flagged = score(i).flagged(0.999);
        assert_eq!(
            row.status == LinkStatus::SuspectedWrongPerson,
            flagged,
            "row {i}: {:?}",
            score(i)
        );
    }
    // Same values: linked. The kana typo: no veto, probability above 0.5 but below 0.999.
    assert_eq!(run.initiator.rows[0].status, LinkStatus::Linked);
    let typo = score(1);
    assert_eq!(typo.veto, None);
    assert!(
        typo.probability > 0.5 && typo.probability < 0.999,
        "{typo:?}"
    );
    assert_eq!(
        run.initiator.rows[1].status,
        LinkStatus::SuspectedWrongPerson
    );
}

#[test]
fn chunks_are_cut_at_the_bound_counting_from_the_start() {
    let max = MAX_MODE_CHUNK_BYTES;
    let check = |len: usize, expected: &[usize]| {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let messages = chunks::split(MessageKind::AllClks, 0, bytes.clone());
        let mut sizes = Vec::new();
        let mut joined = Vec::new();
        let mut lasts = Vec::new();
        for message in messages {
            if let Message::Mode(chunk) = message {
                sizes.push(chunk.payload.len());
                lasts.push(chunk.last);
                joined.extend(chunk.payload);
            }
        }
        assert_eq!(sizes, expected, "{len}");
        assert_eq!(joined, bytes, "{len}");
        let mut want_lasts = vec![false; expected.len()];
        if let Some(last) = want_lasts.last_mut() {
            *last = true;
        }
        assert_eq!(lasts, want_lasts, "{len}");
    };
    check(0, &[0]);
    check(1, &[1]);
    check(max, &[max]);
    check(max + 1, &[max, 1]);
    check(2 * max, &[max, max]);
    check(2 * max + 5, &[max, max, 5]);
}

/// The rows a session's decisions give, made as they are read: status by precedence
/// (suspected, linked, ambiguous, unmatched), the link id in hex, the score and the cascade
/// key by name; equal to (and serialised as) the same rows listed.
#[test]
fn decided_rows_read_as_the_rows_they_stand_for() {
    use super::common::RecordLink;
    fn check(links: Vec<Option<RecordLink>>, ambiguous: Vec<bool>, expected: &[LinkRow]) {
        let data = PartyData::from_records(
            (0..links.len())
                .map(|i| keyed(&format!("r{i}"), &[Some("k")]))
                .collect(),
        );
        let keys = vec!["my_number".to_owned(), "kana+dob+sex".to_owned()];
        let rows = LinkRows::decided(Mode::Validate, Arc::new(data), keys, links, ambiguous);
        assert_eq!(rows.iter_rows().collect::<Vec<_>>(), expected);
        assert_eq!(rows.as_slice(), expected);
        let listed = LinkRows::from(expected.to_vec());
        assert_eq!(rows, listed);
        assert_eq!(
            serde_json::to_string(&rows).unwrap(),
            serde_json::to_string(&listed).unwrap()
        );
    }
    let link = |byte: u8, key: Option<u8>, score: Option<f64>, suspected| RecordLink {
        link_id: [byte; 32],
        key,
        score,
        suspected,
    };
    let row = |i: usize, link: Option<(u8, &str, Option<f64>)>, status| LinkRow {
        local_id: format!("r{i}"),
        link_id: link.map(|(b, _, _)| hex::encode([b; 32])),
        mode: Mode::Validate,
        score: link.and_then(|(_, _, s)| s),
        status,
        key: link.map(|(_, k, _)| k.to_owned()),
    };
    check(Vec::new(), Vec::new(), &[]);
    check(
        vec![
            Some(link(0xab, Some(0), Some(0.98), false)),
            Some(link(0x01, Some(1), Some(0.1), true)),
            None,
            None,
            Some(link(0x02, Some(0), None, false)),
        ],
        vec![false, false, true, false, true],
        &[
            row(0, Some((0xab, "my_number", Some(0.98))), LinkStatus::Linked),
            row(
                1,
                Some((0x01, "kana+dob+sex", Some(0.1))),
                LinkStatus::SuspectedWrongPerson,
            ),
            row(2, None, LinkStatus::Ambiguous),
            row(3, None, LinkStatus::Unmatched),
            row(4, Some((0x02, "my_number", None)), LinkStatus::Linked),
        ],
    );
}

// ---- the grouped PSI in batches ----

/// `config` with the grouped PSI in batches of `pairs` pairs.
fn in_batches(mut config: ModeConfig, pairs: usize) -> ModeConfig {
    match &mut config {
        ModeConfig::Validate(c) => c.batch_pairs = pairs,
        ModeConfig::Fuzzy(c) => c.batch_pairs = pairs,
        _ => unreachable!("only validate and fuzzy compare pairs"),
    }
    config
}

/// Grouped queries sent by the initiator (one frame a batch here: the batches are small).
fn grouped_queries(run: &Run) -> u64 {
    run.ledgers
        .initiator
        .sent
        .by_kind
        .get(MessageKind::PsiGroupedQuery.name())
        .map_or(0, |c| c.messages)
}

#[test]
fn batches_are_cut_from_the_pair_count() {
    fn check(pairs: usize, per_batch: usize, expected: &[(usize, usize)]) {
        let batches = grouped::Batches::new(pairs, per_batch, 5);
        let got: Vec<(usize, usize)> = (0..batches.count())
            .map(|k| batches.pairs_of(k))
            .map(|r| (r.start, r.end))
            .collect();
        assert_eq!(got, expected, "{pairs} pairs in batches of {per_batch}");
    }
    check(0, 2048, &[(0, 0)]);
    check(1, 2048, &[(0, 1)]);
    check(4, 2, &[(0, 2), (2, 4)]);
    check(5, 2, &[(0, 2), (2, 4), (4, 5)]);
    check(4, 1, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
    check(4, 4, &[(0, 4)]);
    check(4, 3, &[(0, 3), (3, 4)]);
}

#[test]
fn the_batch_size_changes_nothing_but_the_framing() {
    // validate: four pairs; the same scores, patterns, model and ledger entries in batches
    // of 1, 2, 3 and 2,048 pairs (one batch: the protocol before batches).
    let whole = run(
        &mode_config(Mode::Validate),
        small_validate().0,
        small_validate().1,
    );
    assert_eq!(grouped_queries(&whole), 1);
    let disclosures = |run: &Run| {
        (
            run.ledgers.initiator.disclosures().collect::<Vec<_>>(),
            run.ledgers.responder.disclosures().collect::<Vec<_>>(),
        )
    };
    for (pairs, queries) in [(1, 4), (2, 2), (3, 2), (4, 1)] {
        let config = in_batches(mode_config(Mode::Validate), pairs);
        let batched = run(&config, small_validate().0, small_validate().1);
        assert_eq!(grouped_queries(&batched), queries, "batches of {pairs}");
        assert_eq!(
            batched.initiator.rows, whole.initiator.rows,
            "batches of {pairs}"
        );
        assert_eq!(
            batched.responder.rows, whole.responder.rows,
            "batches of {pairs}"
        );
        assert_eq!(batched.initiator.validation, whole.initiator.validation);
        assert_eq!(
            disclosures(&batched),
            disclosures(&whole),
            "batches of {pairs}"
        );
    }
    // fuzzy: the same pairs linked with the same scores and ledger entries (the link ids are
    // random draws that follow the grouped PSI's, whose number the batches change).
    let (a, b, _) = two_hospitals(400, 3);
    let links = |run: &Run| {
        let rows = |rows: &[LinkRow]| -> Vec<_> {
            rows.iter()
                .map(|r| (r.local_id.clone(), r.status, r.score))
                .collect()
        };
        (
            rows(&run.initiator.rows),
            rows(&run.responder.rows),
            linked_pairs(run),
        )
    };
    let whole = run(&fuzzy_config(Mode::Fuzzy), a.clone(), b.clone());
    assert_eq!(grouped_queries(&whole), 1);
    let pairs = whole.initiator.learned.compared_pairs;
    assert!(pairs > 20, "{pairs}");
    let batched = run(&in_batches(fuzzy_config(Mode::Fuzzy), 7), a, b);
    assert_eq!(grouped_queries(&batched), pairs.div_ceil(7));
    assert_eq!(links(&batched), links(&whole));
    assert_eq!(disclosures(&batched), disclosures(&whole));
}

#[test]
fn hostile_batches_are_refused_on_both_sides() {
    use MessageKind::*;
    // Four pairs in batches of two: two queries of ten groups (five fields a pair).
    let config = in_batches(mode_config(Mode::Validate), 2);
    let psi = |reason: &str| format!("invalid psi message: {reason}");
    // The answerer (responder) after the plan, waiting for batch 0.
    let at_query = || {
        let mut manual = Manual::new(&config, small_validate().0, small_validate().1);
        let (to, plan) = manual.until(PairPlan);
        manual.inject(to, PairPlan, &plan).unwrap();
        let (to, query) = manual.until(PsiGroupedQuery);
        assert_eq!(query_groups(&query), 10);
        (manual, to, query)
    };
    let refused = |manual: &mut Manual, to: usize, round: u16, kind: MessageKind, bytes: &[u8]| {
        let e = manual.inject_round(to, kind, round, bytes).unwrap_err();
        assert_eq!(e.origin(), ErrorOrigin::Peer, "{e}");
        e.to_string()
    };
    // Out of order: batch 1's round first, or a batch index past the end.
    let (mut manual, to, query) = at_query();
    assert_eq!(
        refused(&mut manual, to, 1, PsiGroupedQuery, &query),
        "invalid chunk round: 'psi_grouped_query' chunk for round 1, expected round 0"
    );
    let (mut manual, to, query) = at_query();
    manual.inject(to, PsiGroupedQuery, &query).unwrap();
    assert_eq!(
        refused(&mut manual, to, 2, PsiGroupedQuery, &query),
        "invalid chunk round: 'psi_grouped_query' chunk for round 2, expected round 1"
    );
    // A batch larger than agreed: the whole session's twenty groups in batch 0 (the
    // unbatched protocol's query), within and past the reassembly bound.
    let whole = {
        let mut manual = Manual::new(
            &mode_config(Mode::Validate),
            small_validate().0,
            small_validate().1,
        );
        let (to, plan) = manual.until(PairPlan);
        manual.inject(to, PairPlan, &plan).unwrap();
        manual.until(PsiGroupedQuery).1
    };
    assert_eq!(query_groups(&whole), 20);
    let (mut manual, to, _) = at_query();
    assert_eq!(
        refused(&mut manual, to, 0, PsiGroupedQuery, &whole),
        psi("grouped query announces 20 groups, more than the limit of 10")
    );
    let (mut manual, to, _) = at_query();
    let limit = blindlink_psi::GroupedLimits {
        max_groups: 10,
        max_group_size: blindlink_psi::SizeBuckets::default().padded(MAX_FIELD_TOKENS),
    }
    .max_message_bytes();
    assert_eq!(limit, 6 + 10 * (8 + 256 * 40));
    let oversize = vec![0u8; limit + 1];
    assert_eq!(
        refused(&mut manual, to, 0, PsiGroupedQuery, &oversize),
        "message of kind 'psi_grouped_query' is 102487 bytes, over its limit of 102486 bytes"
    );
    // Too few batches: the scores after batch 0.
    let (mut manual, to, query) = at_query();
    manual.inject(to, PsiGroupedQuery, &query).unwrap();
    assert_eq!(
        refused(
            &mut manual,
            to,
            0,
            PairScores,
            &payload::encode_pair_scores(&[])
        ),
        "unexpected message 'pair_scores' while waiting for the grouped query: expected psi_grouped_query"
    );
    // Too many: a third query after the last batch.
    let (mut manual, to, query) = at_query();
    manual.inject(to, PsiGroupedQuery, &query).unwrap();
    let (to, second) = manual.until(PsiGroupedQuery);
    manual
        .inject_round(to, PsiGroupedQuery, 1, &second)
        .unwrap();
    assert_eq!(
        refused(&mut manual, to, 2, PsiGroupedQuery, &second),
        "unexpected message 'psi_grouped_query' while waiting for the pair scores: expected pair_scores"
    );
    // The querier (initiator): a reply out of order, a third reply, and the honest run.
    let at_reply = || {
        let (mut manual, to, query) = at_query();
        manual.inject(to, PsiGroupedQuery, &query).unwrap();
        let (to, reply) = manual.until(PsiGroupedReply);
        (manual, to, reply)
    };
    let (mut manual, to, reply) = at_reply();
    assert_eq!(
        refused(&mut manual, to, 1, PsiGroupedReply, &reply),
        "invalid chunk round: 'psi_grouped_reply' chunk for round 1, expected round 0"
    );
    let (mut manual, to, reply) = at_reply();
    manual.inject(to, PsiGroupedReply, &reply).unwrap();
    // Batch 1's query was delivered on the way to batch 0's reply; its reply is queued.
    let (to, last) = manual.until(PsiGroupedReply);
    manual.inject_round(to, PsiGroupedReply, 1, &last).unwrap();
    assert_eq!(
        refused(&mut manual, to, 2, PsiGroupedReply, &last),
        "unexpected message 'psi_grouped_reply' while waiting for the end of the session: expected done"
    );
    let (mut manual, to, reply) = at_reply();
    manual.inject(to, PsiGroupedReply, &reply).unwrap();
    manual.finish();
    assert_eq!(
        manual.ledgers[0].disclosure_count(),
        manual.ledgers[1].disclosure_count()
    );
    // Both sides must agree on the batch size: it is a handshake parameter.
    let parameters = |config: &ModeConfig| config.parameters().unwrap();
    assert_ne!(
        parameters(&config),
        parameters(&mode_config(Mode::Validate))
    );
    assert_eq!(
        parameters(&in_batches(
            mode_config(Mode::Validate),
            grouped::DEFAULT_BATCH_PAIRS
        )),
        parameters(&mode_config(Mode::Validate)),
        "the default is not listed: a default session's parameters are those before batches"
    );
}
