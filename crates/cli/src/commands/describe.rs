//! `blindlink describe`: popcount statistics of a CLK file, and per field when given the
//! schema, secret and records that made it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use blindlink_encoding::format::read_clks;
use blindlink_encoding::stats::PopcountStats;
use blindlink_encoding::{ClkEncoder, EncoderScratch, LinkageSecret, SchemaDocument};

/// Arguments of `blindlink describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// CLK file (anonlink JSON or blindlink binary, detected from the content).
    pub clks: PathBuf,
    /// With --secret-file and --input: also report the bits each field sets, by re-encoding
    /// the records field by field.
    #[arg(long, value_name = "SCHEMA", requires_all = ["secret_file", "input"])]
    pub schema: Option<PathBuf>,
    /// The linkage secret file (for per-field statistics).
    #[arg(long, value_name = "KEY")]
    pub secret_file: Option<PathBuf>,
    /// The CSV the CLKs were made from (for per-field statistics).
    #[arg(long, value_name = "CSV")]
    pub input: Option<PathBuf>,
}

/// Runs `blindlink describe`.
///
/// # Errors
/// An unreadable or malformed CLK file, or (per-field mode) any error `blindlink encode` reports.
pub fn run(args: DescribeArgs) -> anyhow::Result<()> {
    let file = std::fs::File::open(&args.clks)
        .with_context(|| format!("cannot read {}", args.clks.display()))?;
    let clks = read_clks(std::io::BufReader::new(file))
        .with_context(|| format!("{}", args.clks.display()))?;
    let stats = PopcountStats::of(&clks);
    println!(
        "{}: {} CLKs of {} bits",
        args.clks.display(),
        clks.len(),
        clks.filter_bits()
    );
    print_stats("popcount", &stats);
    let width = stats.filter_bits().div_ceil(10);
    let peak = stats.histogram().iter().copied().max().unwrap_or(1).max(1);
    for (i, count) in stats.histogram().iter().enumerate() {
        let bar = "#".repeat((count * 50).div_ceil(peak) as usize);
        println!(
            "  {:>5}..{:<5} {count:>9} {bar}",
            i * width,
            ((i + 1) * width).min(stats.filter_bits())
        );
    }
    if let (Some(schema), Some(secret), Some(input)) =
        (&args.schema, &args.secret_file, &args.input)
    {
        per_field(schema, secret, input)?;
    }
    Ok(())
}

fn print_stats(label: &str, s: &PopcountStats) {
    println!(
        "  {label}: mean {:.1} ({:.1}% of the bits), std {:.1}, min {}, max {}",
        s.mean(),
        100.0 * s.mean_fill(),
        s.std_dev(),
        s.min(),
        s.max()
    );
}

fn per_field(schema: &PathBuf, secret: &PathBuf, input: &PathBuf) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(schema)
        .with_context(|| format!("cannot read schema {}", schema.display()))?;
    let document = SchemaDocument::parse(&text)
        .with_context(|| format!("invalid schema {}", schema.display()))?;
    let secret = LinkageSecret::from_bytes(
        std::fs::read(secret).with_context(|| format!("cannot read {}", secret.display()))?,
    )?;
    let encoder = ClkEncoder::new(&document, &secret)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(input)
        .with_context(|| format!("cannot read {}", input.display()))?;
    let header = reader.headers()?.clone();
    let header_fields: Vec<&str> = header.iter().collect();
    let columns = document
        .schema
        .bind_header(&header_fields)
        .with_context(|| format!("{}:1", input.display()))?;
    let names = document.schema.field_names();
    let mut stats: Vec<PopcountStats> = names
        .iter()
        .map(|_| PopcountStats::new(encoder.filter_bits()))
        .collect();
    let mut scratch = EncoderScratch::default();
    let mut out = vec![0u8; encoder.bytes_per_clk()];
    let mut counts = Vec::new();
    let mut skipped = 0u64;
    for (index, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: malformed csv", input.display()))?;
        let values: Vec<&str> = columns
            .iter()
            .map(|&c| record.get(c).unwrap_or(""))
            .collect();
        if encoder
            .encode_with_field_popcounts(&values, index as u64, &mut scratch, &mut out, &mut counts)
            .is_err()
        {
            skipped += 1;
            continue;
        }
        for (s, &c) in stats.iter_mut().zip(&counts) {
            s.add(c);
        }
    }
    if stats.first().is_none_or(|s| s.count() == 0) {
        bail!("{}: no record could be encoded", input.display());
    }
    println!(
        "per field (bits each field sets, before folding and hardening; {skipped} invalid rows skipped):"
    );
    for (name, s) in names.iter().zip(&stats) {
        print_stats(name, s);
    }
    Ok(())
}
