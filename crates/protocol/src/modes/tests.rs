//! Both parties of every mode in one process, against synthetic truth, with the ledgers checked
//! against what actually crossed the wire, and hostile messages refused with clear errors.

use std::collections::{BTreeMap, HashMap};

use blindlink_matching::LinkageQuality;
use blindlink_synth::{Outcome, OutputFile, Scenario, Truth};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::{Disclosure, MAX_MODE_CHUNK_BYTES, MessageKind, ModeChunk};

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
    let ledgers = run_in_memory(&mut a, &mut b, config.mode).unwrap();
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
            FieldClks,
            PairScores,
            Done,
        ],
        Mode::Fuzzy => &[
            PsiBlindedSet,
            PsiMutualReply,
            PsiReblindedSet,
            CandidateClks,
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
    let allowed: Vec<&str> = allowed_kinds(config.mode)
        .iter()
        .map(|k| k.name())
        .collect();
    for ledger in [i, r] {
        for kind in ledger.sent.by_kind.keys() {
            assert!(
                allowed.contains(&kind.as_str()),
                "{} sent '{kind}' in {} mode",
                ledger.role,
                config.mode.name()
            );
        }
    }
    let sorted = |l: &DisclosureLedger| {
        let mut d: Vec<String> = l
            .disclosures
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
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
        .disclosures
        .iter()
        .filter_map(|e| match e.disclosure {
            Disclosure::Clks { count } => Some(count),
            _ => None,
        })
        .sum();
    if clk_messages == 0 {
        assert_eq!(clks_revealed, 0);
    } else {
        assert!(
            i.disclosures
                .iter()
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
    let insurer_rows = data.insurer.records.len();
    let run = run(
        &ModeConfig::new(Mode::Exact),
        data.insurer.clone(),
        data.registry.clone(),
    );
    let pairs = linked_pairs(&run);
    assert_eq!(pairs.len() as u64, run.initiator.counts.linked);
    assert_eq!(run.initiator.counts.linked, run.responder.counts.linked);
    assert_eq!(run.initiator.rows.len(), insurer_rows);
    // Every insurer number that is in the registry and not shared with another insurer record.
    let registry_keys: std::collections::HashSet<&[u8]> = data
        .registry
        .records
        .iter()
        .filter_map(|r| r.keys[0].as_deref())
        .collect();
    let mut insurer_keys: HashMap<&[u8], usize> = HashMap::new();
    for r in &data.insurer.records {
        if let Some(k) = r.keys[0].as_deref() {
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
    let mut config = ModeConfig::new(Mode::Exact);
    config.keys = vec!["my_number".into(), "kana+dob+sex".into()];
    let insurer = PartyData {
        records: vec![
            keyed("i1", &[Some("111"), Some("ヤマダ|1980-01-01|1")]),
            keyed("i2", &[None, Some("サトウ|1990-02-02|2")]),
            keyed("i3", &[Some("333"), Some("スズキ|1970-03-03|1")]),
            keyed("i4", &[Some("333"), Some("タナカ|1960-04-04|2")]),
            keyed("i5", &[Some("555"), None]),
        ],
    };
    let registry = PartyData {
        records: vec![
            keyed("r1", &[Some("111"), Some("ヤマダ|1980-01-01|1")]),
            keyed("r2", &[Some("222"), Some("サトウ|1990-02-02|2")]),
            keyed("r3", &[Some("333"), Some("スズキ|1970-03-03|1")]),
            keyed("r4", &[Some("444"), Some("タナカ|1960-04-04|2")]),
            keyed("r5", &[Some("999"), None]),
        ],
    };
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
    let mut one_key = ModeConfig::new(Mode::Exact);
    one_key.keys = vec!["my_number".into()];
    let only = |data: &[(&str, &str)]| PartyData {
        records: data.iter().map(|(id, k)| keyed(id, &[Some(k)])).collect(),
    };
    let run = super::tests::run(
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
        &ModeConfig::new(Mode::Exact),
        data.insurer.clone(),
        data.registry.clone(),
    );
    let run_raw = run(
        &ModeConfig::new(Mode::Cardinality),
        data.insurer.clone(),
        data.registry.clone(),
    );
    let distinct = |p: &PartyData| -> std::collections::HashSet<Vec<u8>> {
        p.records.iter().filter_map(|r| r.keys[0].clone()).collect()
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
    let mut bloom = ModeConfig::new(Mode::Cardinality);
    bloom.cardinality_bloom_fpr = Some(0.01);
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
fn validate_quality(persons: u64, seed: u64) -> (usize, usize, usize, usize) {
    let data = registry_insurer(persons, seed);
    let run = run(
        &ModeConfig::new(Mode::Validate),
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
    let (mut wrong, mut wrong_flagged, mut correct, mut correct_flagged) = (0, 0, 0, 0);
    for row in &run.initiator.rows {
        let flagged = match row.status {
            LinkStatus::Linked => false,
            LinkStatus::SuspectedWrongPerson => true,
            _ => continue,
        };
        match data.truth[&row.local_id].outcome {
            Outcome::WrongPerson(_) => {
                wrong += 1;
                wrong_flagged += usize::from(flagged);
            }
            Outcome::Correct => {
                correct += 1;
                correct_flagged += usize::from(flagged);
            }
            _ => {}
        }
    }
    (wrong, wrong_flagged, correct, correct_flagged)
}

#[test]
fn validate_flags_planted_wrong_person_links() {
    let persons = std::env::var("BLINDLINK_HEAVY").map_or(20_000, |_| 200_000);
    let (wrong, wrong_flagged, correct, correct_flagged) = validate_quality(persons, 2026);
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
        p.records
            .iter()
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
    let mut config = ModeConfig::new(mode);
    config.blocking_key = Some(derive_blocking_key(b"a shared linkage secret"));
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
    // The baseline reveals all of the responder's CLKs; fuzzy only candidates' (here nearly
    // all: most persons have a household member in the other hospital whose CLK is close).
    let revealed = |r: &Run| r.initiator.learned.clks_received;
    eprintln!(
        "fuzzy {q_fuzzy:?} revealed {} of {}",
        revealed(&fuzzy),
        revealed(&baseline)
    );
    assert_eq!(revealed(&baseline), b.records.len() as u64);
    assert!(revealed(&fuzzy) <= revealed(&baseline));
    // The responder never receives a CLK.
    assert_eq!(fuzzy.responder.learned.clks_received, 0);
    for (i, r) in linked_pairs(&fuzzy) {
        assert_eq!(fuzzy.initiator.rows[i].score, fuzzy.responder.rows[r].score);
    }
}

#[test]
fn comparing_side_can_be_the_responder() {
    let (a, b, _) = two_hospitals(400, 3);
    let mut config = fuzzy_config(Mode::ClkExchange);
    config.comparing = Role::Responder;
    let run = run(&config, a.clone(), b);
    assert_eq!(run.initiator.learned.clks_received, 0);
    assert_eq!(run.responder.learned.clks_received, a.records.len() as u64);
    // The all_clks message is exactly its header and the CLKs: nothing else rode along.
    let sent = run.ledgers.initiator.sent.by_kind["all_clks"];
    let payload = 8 + a.records.len() as u64 * 128;
    assert_eq!(sent.bytes, payload + 8 * sent.messages);
    assert_eq!(sent.messages, payload.div_ceil(MAX_MODE_CHUNK_BYTES as u64));
    assert!(run.initiator.counts.linked > 0);
    let data = registry_insurer(1_500, 4);
    let mut config = ModeConfig::new(Mode::Validate);
    config.comparing = Role::Responder;
    let run = super::tests::run(&config, data.insurer, data.registry);
    assert_eq!(
        run.responder.learned.clks_received,
        run.responder.learned.pair_scores
    );
    assert_eq!(run.initiator.learned.clks_received, 0);
    assert_eq!(
        run.initiator.counts.suspected_wrong_person,
        run.responder.counts.suspected_wrong_person
    );
    assert!(run.initiator.counts.linked > 500);
}

#[test]
fn a_peer_cannot_make_a_state_buffer_more_than_it_expects() {
    // A cardinality responder waiting for the 8-byte intersection size.
    let config = ModeConfig::new(Mode::Cardinality);
    let data = || PartyData {
        records: vec![keyed("x", &[Some("1")])],
    };
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
    let data = PartyData {
        records: vec![keyed("r1", &[Some("1")])],
    };
    new_driver(
        Role::Responder,
        &ModeConfig::new(Mode::Exact),
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
            chunk(FieldClks, 0, true, good[10..].to_vec()),
        ],
        "unexpected message 'field_clks' during the private set intersection: expected psi_blinded_set",
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
    let clks = payload::encode_field_clks(2, 4, &[vec![&field, &field]]);
    assert_eq!(
        payload::decode_field_clks(&clks, 1, 2, 4).unwrap(),
        [1u8; 8]
    );
    check(
        payload::decode_field_clks(&clks, 1, 3, 4),
        "invalid field clks: field count is 2, expected 3",
    );
    check(
        payload::decode_field_clks(&clks[..12], 1, 2, 4),
        "truncated field clks: 8 more bytes needed, 2 available",
    );
    let candidates = payload::encode_candidate_clks(4, &[(&field, &[0, 2])]);
    let decoded = payload::decode_candidate_clks(&candidates, 4, 10, 3).unwrap();
    assert_eq!(
        (decoded.clks, decoded.tokens),
        (field.to_vec(), vec![vec![0, 2]])
    );
    check(
        payload::decode_candidate_clks(&candidates, 4, 10, 2).map(|c| c.tokens),
        "invalid candidate clks: record 0: token index 2 is not ascending below 2",
    );
    check(
        payload::decode_candidate_clks(&candidates, 4, 0, 3).map(|c| c.tokens),
        "invalid candidate clks: 1 records, over the limit of 0",
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
    let messages = chunks::split(MessageKind::AllClks, 0, &bytes);
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
    assert_eq!(chunks::split(MessageKind::LinkIds, 2, &[]).len(), 1);
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
    }
    let empty = PartyData::default();
    let mut c = ModeConfig::new(Mode::Exact);
    c.keys.clear();
    check(
        &c,
        empty.clone(),
        "invalid match keys: 0 keys, expected 1 to 8",
    );
    check(
        &ModeConfig::new(Mode::Fuzzy),
        empty.clone(),
        "invalid fuzzy configuration: no blocking key (derive one from the linkage secret)",
    );
    let mut c = ModeConfig::new(Mode::ClkExchange);
    c.keys = vec!["my_number".into()];
    check(
        &c,
        empty.clone(),
        "invalid match keys: clk-exchange links on CLKs alone and takes none (1 given)",
    );
    let mut c = ModeConfig::new(Mode::ClkExchange);
    c.fuzzy.dice_threshold = 1.5;
    check(
        &c,
        empty.clone(),
        "invalid link.dice_threshold: 1.5 is outside [0, 1]",
    );
    let mut c = ModeConfig::new(Mode::ClkExchange);
    c.filter_bits = 1001;
    check(
        &c,
        empty.clone(),
        "invalid filter_bits: 1001 is not a positive multiple of 8 up to 65536",
    );
    check(
        &ModeConfig::new(Mode::Exact),
        PartyData {
            records: vec![keyed("a", &[Some("1")]), keyed("b", &[Some("1"), None])],
        },
        "invalid party data: record 2 ('b'): 2 match keys, expected 1",
    );
    let with_clk = PartyData {
        records: vec![PartyRecord {
            id: "x".into(),
            clk: Some(vec![0; 3]),
            ..PartyRecord::default()
        }],
    };
    check(
        &ModeConfig::new(Mode::ClkExchange),
        with_clk,
        "invalid party data: record 1 ('x'): clk of 3 bytes, expected 128",
    );
    let with_fields = PartyData {
        records: vec![PartyRecord {
            id: "y".into(),
            keys: vec![Some(b"1".to_vec())],
            fields: vec![None, None, Some(vec![0; 3]), None, None],
            ..PartyRecord::default()
        }],
    };
    check(
        &ModeConfig::new(Mode::Validate),
        with_fields,
        "invalid party data: record 1 ('y'): filter of field 'date_of_birth' has 3 bytes, expected 32",
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
    let validate = entries(&ModeConfig::new(Mode::Validate));
    assert_eq!(validate["validate.threshold"], "0.75");
    assert_eq!(
        validate["validate.fields"],
        "name_kana:2;name_kanji:1;date_of_birth:2:0.9;sex:1:0.5;address:1"
    );
    let mut other = ModeConfig::new(Mode::Validate);
    other.validate.threshold = 0.8;
    assert_ne!(
        other.parameters().unwrap(),
        ModeConfig::new(Mode::Validate).parameters().unwrap()
    );
    let fuzzy = entries(&fuzzy_config(Mode::Fuzzy));
    assert_eq!(fuzzy["fuzzy.minhash"], "6x10");
    assert!(!format!("{:?}", fuzzy_config(Mode::Fuzzy)).contains("BlockingSecret("));
}
