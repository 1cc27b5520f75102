//! FEBRL4 (5,000 x 5,000, `tests/data/febrl4`) linked by `fuzzy` as a two-party session in
//! memory, with the native schema a new user would write (`schema-native.toml`): the command
//! behind the FEBRL4 figures of papers/benchmarks.md.
//!
//! ```sh
//! # the blocking grid: pairs completeness and candidate pairs per record, per shape and input
//! cargo run --release -p blindlink-protocol --example febrl4 -- grid
//! # one session (defaults unless given): bands, minima per band, threshold, input
//! cargo run --release -p blindlink-protocol --example febrl4 -- run [bands] [rows] [threshold] [field-tokens|clk-bits]
//! ```
//! Two rayon threads; `BLINDLINK_FEBRL4_LIMIT=n` takes the first n true pairs only.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::time::Instant;

use blindlink_matching::LinkageQuality;
use blindlink_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

mod febrl4_data;
mod scenario;
use febrl4_data::*;

fn config(data: &Febrl4, args: &[String]) -> FuzzyConfig {
    let mut c = FuzzyConfig::new(data.fields.clone());
    c.blocking_key = Some(derive_blocking_key(&data.secret));
    if let Some(b) = args.first() {
        c.lsh.bands = b.parse().unwrap();
    }
    if let Some(r) = args.get(1) {
        c.lsh.bits_per_band = r.parse().unwrap();
    }
    if let Some(t) = args.get(2) {
        c.threshold = t.parse().unwrap();
    }
    if let Some(input) = args.get(3) {
        c.blocking = input_named(input);
    }
    if let Some(share) = args.get(4) {
        c.common_share = share.parse().unwrap();
    }
    if let Some(max) = args.get(5) {
        c.max_pairs = max.parse().unwrap();
    }
    if let Some(exact) = args.get(6) {
        c.exact_stage = exact == "exact";
    }
    c
}

fn input_named(name: &str) -> BlockingInput {
    BlockingInput::from_name(name).unwrap_or_else(|| panic!("unknown blocking input {name}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    let limit = std::env::var("BLINDLINK_FEBRL4_LIMIT")
        .ok()
        .map(|l| l.parse().unwrap());
    let started = Instant::now();
    let data = match std::env::var("BLINDLINK_HOSPITALS") {
        Ok(persons) => hospitals(persons.parse().unwrap()),
        Err(_) => load(limit),
    };
    eprintln!(
        "{} x {} records encoded in {:.1} s",
        data.a.len(),
        data.b.len(),
        started.elapsed().as_secs_f64()
    );
    match args.first().map_or("run", String::as_str) {
        "grid" => grid(&data, &args[1..]),
        "run" => run(&data, &args[1..]),
        other => panic!("unknown command {other}"),
    }
}

/// The two-hospitals scenario of `blindlink demo --mode fuzzy` (overlap 0.5, seed 1) in the
/// same shape, to check a blocking shape against the demo too (`BLINDLINK_HOSPITALS=persons`).
fn hospitals(persons: u64) -> Febrl4 {
    use blindlink_synth::{OutputFile, Scenario, Truth};
    let data = scenario::generate(Scenario::TwoHospitals, persons, 0.5, 1);
    let a = scenario::party(
        OutputFile::HospitalA,
        Scenario::TwoHospitals,
        &data.files[OutputFile::HospitalA.file_name()],
    );
    let b = scenario::party(
        OutputFile::HospitalB,
        Scenario::TwoHospitals,
        &data.files[OutputFile::HospitalB.file_name()],
    );
    let ids = |p: &PartyData| -> HashMap<String, usize> {
        p.records()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect()
    };
    let (ia, ib) = (ids(&a), ids(&b));
    let truth = data
        .truth
        .iter()
        .filter_map(|t| match t {
            Truth::Pair(p) => Some((ia[&p.hospital_a_record_id], ib[&p.hospital_b_record_id])),
            Truth::Insurer(_) => None,
        })
        .collect();
    Febrl4 {
        a,
        b,
        truth,
        fields: scenario::field_scoring(),
        secret: b"benchmark linkage secret".to_vec(),
    }
}

fn grid(data: &Febrl4, args: &[String]) {
    let inputs: Vec<BlockingInput> = args.first().map_or_else(
        || vec![BlockingInput::FieldTokens, BlockingInput::ClkBits],
        |i| vec![input_named(i)],
    );
    let shares: Vec<f64> = args.get(1).map_or_else(
        || vec![DEFAULT_COMMON_SHARE],
        |s| s.split(',').map(|x| x.parse().unwrap()).collect(),
    );
    let rows_list: Vec<usize> = args.get(2).map_or_else(
        || vec![1, 2, 3, 4, 5, 6, 8, 10],
        |s| s.split(',').map(|x| x.parse().unwrap()).collect(),
    );
    let bands_list: Vec<usize> = args.get(3).map_or_else(
        || vec![5, 10, 15, 20, 30, 40, 64],
        |s| s.split(',').map(|x| x.parse().unwrap()).collect(),
    );
    let max_pairs_list: Vec<usize> = args.get(4).map_or_else(
        || vec![DEFAULT_FUZZY_MAX_PAIRS],
        |s| s.split(',').map(|x| x.parse().unwrap()).collect(),
    );
    println!(
        "| input | common share | max pairs | bands x rows | pairs completeness | candidate pairs | per record | PSI tokens per record | P(J=0.5) | tokens ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for input in inputs {
        for &share in &shares {
            for &rows in &rows_list {
                for (&bands, &max_pairs) in bands_list
                    .iter()
                    .flat_map(|b| max_pairs_list.iter().map(move |m| (b, m)))
                {
                    let mut c = config(data, &[]);
                    c.max_pairs = max_pairs;
                    c.lsh.bands = bands;
                    c.lsh.bits_per_band = rows;
                    c.blocking = input;
                    c.common_share = share;
                    let started = Instant::now();
                    let Ok(ta) = fuzzy_blocking_tokens(&c, &data.a) else {
                        continue;
                    };
                    let tb = fuzzy_blocking_tokens(&c, &data.b).unwrap();
                    let ms = started.elapsed().as_secs_f64() * 1e3 / 2.0;
                    let (pc, pairs, per_record, tokens) =
                        blocking_quality(&c, &ta, &tb, &data.truth);
                    let p = blindlink_matching::MinHashParameters { bands, rows }
                        .candidate_probability(0.5);
                    println!(
                        "| {} | {share} | {max_pairs} | {bands} x {rows} | {pc:.4} | {pairs} | {per_record:.2} | {tokens:.0} | {p:.3} | {ms:.0} |",
                        input.name()
                    );
                }
            }
        }
    }
}

fn run(data: &Febrl4, args: &[String]) {
    let c = config(data, args);
    let ta = fuzzy_blocking_tokens(&c, &data.a).unwrap();
    let tb = fuzzy_blocking_tokens(&c, &data.b).unwrap();
    let (pc, pairs, per_record, tokens) = blocking_quality(&c, &ta, &tb, &data.truth);
    println!(
        "blocking {} {}x{}: pairs completeness {pc:.4}, {pairs} candidate pairs ({per_record:.2} per record), {tokens:.0} PSI tokens per record",
        c.blocking.name(),
        c.lsh.bands,
        c.lsh.bits_per_band
    );
    let config = ModeConfig::Fuzzy(c);
    let ids = |p: &PartyData| -> HashMap<String, usize> {
        p.records()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect()
    };
    let (_ia, _ib) = (ids(&data.a), ids(&data.b));
    let mut da = new_driver(
        Role::Initiator,
        &config,
        data.a.clone(),
        &mut ChaCha20Rng::from_seed([1; 32]),
    )
    .unwrap();
    let mut db = new_driver(
        Role::Responder,
        &config,
        data.b.clone(),
        &mut ChaCha20Rng::from_seed([2; 32]),
    )
    .unwrap();
    let started = Instant::now();
    let cpu = cpu_seconds();
    let ledgers = run_in_memory(&mut da, &mut db, Mode::Fuzzy).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let (oa, ob) = (da.outcome().unwrap(), db.outcome().unwrap());
    println!(
        "parameters {:?}",
        config
            .parameters()
            .unwrap()
            .entries()
            .iter()
            .filter(|(k, _)| k != "fuzzy.fields")
            .collect::<Vec<_>>()
    );
    println!(
        "session {seconds:.2} s wall, {cpu:.2} s CPU (in memory, both parties, 2 threads); {} pairs compared, {} linked by the exact stage; bytes a->b {} b->a {}",
        oa.learned.compared_pairs,
        oa.learned.exact_pairs,
        ledgers.initiator.sent.total.bytes,
        ledgers.responder.sent.total.bytes
    );
    let links = linked_pairs(&oa, &ob);
    let q = LinkageQuality::measure(&links, &data.truth);
    println!(
        "precision {:.4} recall {:.4} ({q:?})",
        q.precision(),
        q.recall()
    );
    // The greedy one-to-one solver takes the highest scores first, so the links at a higher
    // threshold are this run's links scoring at least that (one session, several thresholds).
    let threshold = match &config {
        ModeConfig::Fuzzy(c) => c.threshold,
        _ => 0.0,
    };
    for t in [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8] {
        if t < threshold {
            continue;
        }
        let kept: Vec<(usize, usize)> = links
            .iter()
            .copied()
            .filter(|&(a, _)| oa.rows[a].score.is_some_and(|s| s >= t - 1e-9))
            .collect();
        let q = LinkageQuality::measure(&kept, &data.truth);
        println!(
            "  at threshold {t}: precision {:.4} recall {:.4} ({} links)",
            q.precision(),
            q.recall(),
            kept.len()
        );
    }
}

/// The (a, b) record indices of the links, matched by link id.
pub(crate) fn linked_pairs(oa: &LinkOutcome, ob: &LinkOutcome) -> Vec<(usize, usize)> {
    let by_link: HashMap<&str, usize> = ob
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((r.link_id.as_deref()?, i)))
        .collect();
    oa.rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == LinkStatus::Linked)
        .filter_map(|(i, r)| Some((i, *by_link.get(r.link_id.as_deref()?)?)))
        .collect()
}

/// This process's user + system CPU seconds (Linux `/proc/self/stat`), 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
