//! Runs one linkage mode in memory on a synthetic scenario and prints its time, quality and
//! disclosure: the command behind the protocol figures in papers/benchmarks.md.
//!
//! ```sh
//! cargo run --release -p blindlink-protocol --example modes -- fuzzy 133334 [bands] [bits]
//! cargo run --release -p blindlink-protocol --example modes -- validate 100000
//! ```
//! Modes: `exact`, `validate`, `fuzzy`, `clk-exchange`, `cardinality`. Two-hospitals for fuzzy
//! and clk-exchange (overlap 0.5), registry-insurer otherwise; seed 1; two rayon threads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::time::Instant;

use blindlink_matching::{FlagQuality, LinkageQuality};
use blindlink_protocol::*;
use blindlink_synth::{Outcome, OutputFile, Scenario, Truth};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

mod scenario;
use scenario::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.first().map(String::as_str).unwrap_or("fuzzy") {
        "cardinality" => Mode::Cardinality,
        "exact" => Mode::Exact,
        "validate" => Mode::Validate,
        "fuzzy" => Mode::Fuzzy,
        "clk-exchange" => Mode::ClkExchange,
        other => panic!("unknown mode {other}"),
    };
    let persons: u64 = args.get(1).map_or(10_000, |p| p.parse().unwrap());
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    let mut config = mode_config(mode);
    match &mut config {
        ModeConfig::Fuzzy(c) => {
            c.blocking_key = Some(derive_blocking_key(b"benchmark linkage secret"));
            if let Some(bands) = args.get(2) {
                c.lsh.bands = bands.parse().unwrap();
            }
            if let Some(bits) = args.get(3) {
                c.lsh.bits_per_band = bits.parse().unwrap();
            }
            if let Some(t) = args.get(4) {
                c.threshold = t.parse().unwrap();
            }
        }
        ModeConfig::ClkExchange(c) => {
            c.reveal_decodable_encodings = true;
            if let Some(t) = args.get(4) {
                c.dice_threshold = t.parse().unwrap();
            }
        }
        _ => {}
    }
    let two_hospitals = matches!(mode, Mode::Fuzzy | Mode::ClkExchange);
    let scenario = if two_hospitals {
        Scenario::TwoHospitals
    } else {
        Scenario::RegistryInsurer
    };
    let overlap = 0.5;
    let started = Instant::now();
    let data = generate(scenario, persons, overlap, 1);
    let (fa, fb) = if two_hospitals {
        (OutputFile::HospitalA, OutputFile::HospitalB)
    } else {
        (OutputFile::Insurer, OutputFile::Registry)
    };
    let a = party(fa, scenario, &data.files[fa.file_name()]);
    let b = party(fb, scenario, &data.files[fb.file_name()]);
    eprintln!(
        "{} x {} records generated and encoded in {:.1} s",
        a.len(),
        b.len(),
        started.elapsed().as_secs_f64()
    );
    let ids = |p: &PartyData| -> HashMap<String, usize> {
        p.records()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect()
    };
    let (ia, ib) = (ids(&a), ids(&b));
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
    let started = Instant::now();
    let ledgers = run_in_memory(&mut da, &mut db, mode).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let (oa, ob) = (da.outcome().unwrap(), db.outcome().unwrap());
    println!(
        "mode {} parameters {:?}",
        mode.name(),
        config.parameters().unwrap().entries()
    );
    println!("session time {seconds:.2} s (in memory, both parties, 2 threads)");
    let pairs = oa.learned.compared_pairs.max(ob.learned.compared_pairs);
    if pairs > 0 {
        println!(
            "grouped PSI: {pairs} pairs compared, {:.3} ms per pair (both parties, whole session)",
            seconds * 1e3 / pairs as f64
        );
    }
    println!(
        "bytes initiator->responder {} responder->initiator {}",
        ledgers.initiator.sent.total.bytes, ledgers.responder.sent.total.bytes
    );
    println!("initiator learned {:?}", oa.learned);
    println!("responder learned {:?}", ob.learned);
    println!("initiator counts {:?}", oa.counts);
    let by_link: HashMap<&str, usize> = ob
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((r.link_id.as_deref()?, i)))
        .collect();
    let pairs: Vec<(usize, usize)> = oa
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == LinkStatus::Linked)
        .filter_map(|(i, r)| Some((i, *by_link.get(r.link_id.as_deref()?)?)))
        .collect();
    if two_hospitals {
        let truth: Vec<(usize, usize)> = data
            .truth
            .iter()
            .filter_map(|t| match t {
                Truth::Pair(p) => Some((ia[&p.hospital_a_record_id], ib[&p.hospital_b_record_id])),
                Truth::Insurer(_) => None,
            })
            .collect();
        let q = LinkageQuality::measure(&pairs, &truth);
        println!(
            "precision {:.4} recall {:.4} ({q:?})",
            q.precision(),
            q.recall()
        );
    } else if mode == Mode::Validate {
        let outcome: HashMap<&str, Outcome> = data
            .truth
            .iter()
            .filter_map(|t| match t {
                Truth::Insurer(t) => Some((t.insurer_record_id.as_str(), t.outcome)),
                Truth::Pair(_) => None,
            })
            .collect();
        let q = FlagQuality::measure(oa.rows.iter().filter_map(|row| {
            let flagged = match row.status {
                LinkStatus::Linked => false,
                LinkStatus::SuspectedWrongPerson => true,
                _ => return None,
            };
            match outcome[row.local_id.as_str()] {
                Outcome::WrongPerson(_) => Some((false, flagged)),
                Outcome::Correct => Some((true, flagged)),
                _ => None,
            }
        }));
        println!(
            "wrong-person links flagged {} of {} ({:.2}%), correct links flagged {} of {} ({:.3}%)",
            q.wrong_flagged,
            q.wrong,
            100.0 * q.detection_rate(),
            q.right_flagged,
            q.right,
            100.0 * q.false_flag_rate()
        );
    }
}
