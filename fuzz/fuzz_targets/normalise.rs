//! Normalisation pipelines on arbitrary values. The input is split into a step list and a
//! value: byte 0 gives the number of steps (0 to 4), the next bytes pick each step by index
//! into `NormaliseStep::ALL`, the rest is the value (UTF-8). The pipeline is built from the
//! public step names with `Pipeline::parse`.
//!
//! Properties: nothing panics; `apply` and `apply_into` with dirty reused buffers agree;
//! every step is idempotent on its own (papers/normalisation.md: "applying a step twice gives
//! the same as once", checked on each step's actual input inside the pipeline); an arbitrary
//! pipeline need not be idempotent (the paper says so), so the whole pipeline is not checked.
#![no_main]

use blindlink_encoding::normalise::{NormaliseStep, Pipeline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 5).min(rest.len());
    let (picks, value) = rest.split_at(count);
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    let names: Vec<&str> = picks
        .iter()
        .map(|&b| NormaliseStep::ALL[usize::from(b) % NormaliseStep::ALL.len()].name())
        .collect();
    let pipeline = Pipeline::parse(&names).expect("the public step names parse");
    assert_eq!(pipeline.steps().len(), names.len());

    let whole = pipeline.apply(value);
    let mut out = String::from("dirty output buffer");
    let mut scratch = String::from("dirty scratch buffer");
    let reused = pipeline.apply_into(value, &mut out, &mut scratch);
    match (&whole, &reused) {
        (Ok(a), Ok(())) => assert_eq!(a, &out, "apply and apply_into disagree on {value:?}"),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("apply and apply_into disagree on success for {names:?} on {value:?}"),
    }

    // Each step on its own input: idempotent.
    let mut current = value.to_owned();
    for step in pipeline.steps() {
        let Ok(once) = step.apply(&current) else {
            return;
        };
        let twice = step.apply(&once).unwrap_or_else(|e| {
            panic!("{step} rejects its own output {once:?} (from {current:?}): {e}")
        });
        assert_eq!(twice, once, "{step} is not idempotent on {current:?}");
        current = once;
    }
});
