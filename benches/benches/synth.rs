//! Throughput of synthetic data generation (records per second), without I/O: the generator
//! hands rows to a sink that only counts them. The end-to-end CLI figure (CSV writing included)
//! is measured with the command in papers/benchmarks.md.
// Benchmark set-up on fixed, known-good inputs: a failed unwrap is a broken benchmark.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use blindlink_synth::{Generator, Locale, OutputFile, RecordSink, Scenario, SynthConfig, Truth};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

struct CountingSink {
    records: u64,
    bytes: u64,
}

impl RecordSink for CountingSink {
    type Error = Infallible;
    fn record(&mut self, _: OutputFile, fields: &[String]) -> Result<(), Infallible> {
        self.records += 1;
        self.bytes += fields.iter().map(|f| f.len() as u64).sum::<u64>();
        Ok(())
    }
    fn truth(&mut self, truth: &Truth) -> Result<(), Infallible> {
        if let Truth::Insurer(t) = truth {
            self.bytes += t.corruptions.len() as u64;
        }
        Ok(())
    }
}

const PERSONS: u64 = 100_000;

fn generate(scenario: Scenario, locale: Locale) -> u64 {
    let config = SynthConfig::new(scenario, locale, PERSONS, 0.8, 1);
    let mut sink = CountingSink {
        records: 0,
        bytes: 0,
    };
    let stats = Generator::new(config).unwrap().run(&mut sink).unwrap();
    std::hint::black_box(sink.bytes);
    stats.first_records + stats.second_records
}

fn synth(c: &mut Criterion) {
    let mut group = c.benchmark_group("synth");
    group.sample_size(10);
    for (name, scenario, locale) in [
        (
            "registry-insurer/ja",
            Scenario::RegistryInsurer,
            Locale::Japanese,
        ),
        (
            "registry-insurer/en",
            Scenario::RegistryInsurer,
            Locale::Latin,
        ),
        ("two-hospitals/ja", Scenario::TwoHospitals, Locale::Japanese),
    ] {
        let records = generate(scenario, locale);
        group.throughput(Throughput::Elements(records));
        group.bench_function(name, |b| b.iter(|| generate(scenario, locale)));
    }
    group.finish();
}

criterion_group!(benches, synth);
criterion_main!(benches);
