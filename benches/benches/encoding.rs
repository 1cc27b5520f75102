//! Encoding throughput (records/s) on FEBRL4 with the 5-field clkhash schema, on clkhash's
//! own randomnames schema, and with the native schema; one core unless the name says so.
//!
//!     cargo bench -p blindlink-benches --bench encoding
//!
//! Every iteration encodes the whole data set with a fresh scratch space (cold token caches),
//! as one `blindlink encode` run does. `encode-pipeline` runs the whole `blindlink encode`
//! pipeline with one and two workers. The clkhash side of the comparison is
//! `scripts/clkhash_speed.py` (see papers/benchmarks.md).
// Benchmark set-up on fixed, known-good inputs: a failed unwrap is a broken benchmark.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use blindlink_encoding::{ClkEncoder, EncoderScratch, LinkageSecret, SchemaDocument};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// A CSV without quoted fields: the header and the rows, split on commas.
fn read_csv(paths: &[&str]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = Vec::new();
    let mut rows = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(repo(path)).unwrap();
        let mut lines = text.lines();
        header = lines
            .next()
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        rows.extend(lines.map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>()));
    }
    (header, rows)
}

struct Workload {
    encoder: ClkEncoder,
    records: Vec<Vec<String>>,
}

fn workload(schema: &str, secret: &[u8], data: &[&str]) -> Workload {
    let document = SchemaDocument::parse(&std::fs::read_to_string(repo(schema)).unwrap()).unwrap();
    let encoder = ClkEncoder::new(
        &document,
        &LinkageSecret::from_bytes(secret.to_vec()).unwrap(),
    )
    .unwrap();
    let (header, rows) = read_csv(data);
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let columns = document.schema.bind_header(&header).unwrap();
    let records = rows
        .iter()
        .map(|r| columns.iter().map(|&c| r[c].clone()).collect())
        .collect();
    Workload { encoder, records }
}

impl Workload {
    /// Encodes every record on the current thread; returns the number encoded.
    fn encode_all(&self, out: &mut [u8]) -> usize {
        let mut scratch = EncoderScratch::default();
        let bytes = self.encoder.bytes_per_clk();
        let mut ok = 0;
        let mut values: Vec<&str> = Vec::new();
        for (i, (record, clk)) in self
            .records
            .iter()
            .zip(out.chunks_exact_mut(bytes))
            .enumerate()
        {
            values.clear();
            values.extend(record.iter().map(String::as_str));
            ok += usize::from(
                self.encoder
                    .encode(&values, i as u64, &mut scratch, clk)
                    .is_ok(),
            );
        }
        ok
    }
}

const FEBRL4: &[&str] = &["tests/data/febrl4/a.csv", "tests/data/febrl4/b.csv"];

fn encoding(c: &mut Criterion) {
    let febrl_secret = std::fs::read_to_string(repo("tests/data/febrl4/secret.txt")).unwrap();
    let febrl_secret = febrl_secret.trim().as_bytes();
    let cases = [
        (
            "febrl4-5field-clkhash",
            workload("tests/data/febrl4/schema-5field.json", febrl_secret, FEBRL4),
        ),
        (
            "febrl4-5field-native",
            workload("benches/data/febrl4-native.toml", febrl_secret, FEBRL4),
        ),
        (
            "randomnames-clkhash",
            workload(
                "tests/data/clkhash/randomnames.schema.json",
                &std::fs::read(repo("tests/data/clkhash/secret.key")).unwrap(),
                &["benches/data/randomnames-10k.csv"],
            ),
        ),
    ];
    let mut group = c.benchmark_group("encode");
    group.sample_size(20);
    for (name, work) in &cases {
        let mut out = vec![0u8; work.records.len() * work.encoder.bytes_per_clk()];
        assert_eq!(
            work.encode_all(&mut out),
            work.records.len(),
            "{name}: every record encodes"
        );
        group.throughput(Throughput::Elements(work.records.len() as u64));
        group.bench_function(format!("{name}/1-thread"), |b| {
            b.iter(|| work.encode_all(&mut out))
        });
    }
    group.finish();
    pipeline(c);
}

/// The whole `blindlink encode` pipeline (CSV parsing, encoding, JSON output; see
/// `CsvEncoding`) on the registry file of `blindlink synth --persons 200000`, CSV in memory,
/// output to memory, fresh worker caches every iteration as in a real run: the process pinned
/// to one core with one worker, then to two cores with two workers (Linux; elsewhere the cases
/// run unpinned). The reader and writer threads come in addition to the workers and share the
/// same cores, so the ratio of the two is the scaling over cores. `scripts/encode_scaling.sh`
/// measures the same with the CLI, file I/O included.
fn pipeline(c: &mut Criterion) {
    use blindlink_cli::commands::encode::{CsvEncoding, Progress};
    use blindlink_encoding::format::{ClkFormat, ClkWriter};

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    blindlink_cli::run_from(["blindlink", "synth", "--persons", "200000", "--out", out]).unwrap();
    let csv = std::fs::read(dir.path().join("registry.csv")).unwrap();
    let records = csv.iter().filter(|&&b| b == b'\n').count() as u64 - 1;
    let schema = std::fs::read_to_string(repo("benches/data/synth-registry.toml")).unwrap();
    let document = SchemaDocument::parse(&schema).unwrap();
    let secret = std::fs::read(repo("examples/linkage.key")).unwrap();
    let encoder = ClkEncoder::new(&document, &LinkageSecret::from_bytes(secret).unwrap()).unwrap();
    let progress = Progress::new(0, true);
    let all_cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut group = c.benchmark_group("encode-pipeline");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records));
    for cores in [1, 2].into_iter().filter(|&n| n <= all_cores) {
        let pinned = use_cores(cores);
        let job = CsvEncoding {
            encoder: &encoder,
            schema: &document.schema,
            input_name: "registry.csv",
            output_name: "memory",
            threads: cores,
        };
        let buffer = Vec::with_capacity(records as usize * 180);
        let mut output = Some(std::io::Cursor::new(buffer));
        let name = if pinned { "cores" } else { "workers-unpinned" };
        group.bench_function(format!("synth-registry-200k/{cores}-{name}"), |b| {
            b.iter(|| {
                let mut target = output.take().unwrap();
                target.get_mut().clear();
                target.set_position(0);
                let writer =
                    ClkWriter::new(target, ClkFormat::Json, encoder.filter_bits(), None).unwrap();
                let (writer, summary) = job.run(&csv[..], writer, None, &progress).unwrap();
                assert_eq!(summary.encoded, records);
                output = Some(writer.finish().unwrap());
            })
        });
    }
    use_cores(all_cores);
    group.finish();
}

/// Restricts this thread, and the threads it starts from now on, to the first `cores` CPUs;
/// whether that worked.
#[cfg(target_os = "linux")]
fn use_cores(cores: usize) -> bool {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    (0..cores).all(|core| set.set(core).is_ok())
        && sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn use_cores(_cores: usize) -> bool {
    false
}

criterion_group!(benches, encoding);
criterion_main!(benches);
