//! The `blindlink` command-line tool as a library, so that the end-to-end tests can run every
//! command in-process and check its exact errors.
//!
//! The binary only parses arguments and wires the library crates together: files are read and
//! written here (atomically), the encoder, matcher, PSI and synthesis crates never touch I/O.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

#[cfg(not(target_env = "msvc"))]
pub mod allocator;
pub mod commands;
pub mod output;

/// Privacy-preserving record linkage: encode, match and link personal records without
/// exchanging raw identifiers.
#[derive(Debug, Parser)]
#[command(name = "blindlink", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `blindlink`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encode a CSV file of identifiers into CLKs (keyed-hash Bloom filters).
    Encode(commands::encode::EncodeArgs),
    /// Inspect and validate linkage schemas.
    #[command(subcommand)]
    Schema(commands::schema::SchemaCommand),
    /// Print per-field and per-filter popcount statistics of encoded CLKs.
    Describe(commands::describe::DescribeArgs),
    /// Find the pairs of encoded records that belong to the same person (Dice similarity).
    Match(commands::matching::MatchArgs),
    /// Measure linkage quality of a pairs file against a truth file.
    Evaluate(commands::evaluate::EvaluateArgs),
    /// Generate synthetic two-party populations with ground truth.
    Synth(commands::synth::SynthArgs),
    /// Reproducible benchmarks of the building blocks.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Write a fresh 256-bit linkage secret (64 hex digits, mode 0600).
    Keygen(commands::keygen::KeygenArgs),
    /// Write a development CA and a certificate and key per party, for mutual TLS.
    Certs(commands::certs::CertsArgs),
    /// Serve linkage sessions to the peers of a party config's allow-list (the responder).
    Serve(commands::serve::ServeArgs),
    /// Link with the peer of a party config (the initiator).
    Link(commands::link::LinkArgs),
    /// Both peers in one process over loopback mutual TLS on synthetic data: what was linked,
    /// what was flagged, how accurate it was and what each side learned.
    Demo(commands::demo::DemoArgs),
    /// Draw the waterfall of one flagged validate pair (each field's level and weight) from a
    /// run's model.json and explanations.csv, as text and SVG.
    Explain(commands::explain::ExplainArgs),
    /// Combine the outputs of a sharded run's shards (serve/link --shard I/N) into the files
    /// an unsharded run writes.
    Merge(commands::merge::MergeArgs),
    /// Write each shard's rows of a party's input CSV to its own file, in one pass, so that
    /// each shard run (serve/link --shard I/N) reads only its own rows.
    Split(commands::split::SplitArgs),
}

/// Runs one parsed command line.
///
/// # Errors
/// Whatever the command reports: bad input files (with file, line and field), bad arguments,
/// failed writes.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Encode(args) => commands::encode::run(args),
        Command::Schema(cmd) => commands::schema::run(cmd),
        Command::Describe(args) => commands::describe::run(args),
        Command::Match(args) => commands::matching::run(args),
        Command::Evaluate(args) => commands::evaluate::run(args),
        Command::Synth(args) => commands::synth::run(args),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Certs(args) => commands::certs::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Link(args) => commands::link::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Explain(args) => commands::explain::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Split(args) => commands::split::run(args),
    }
}

/// Parses `args` (the first being the program name) and runs the command; for tests.
///
/// # Errors
/// A usage error from clap, or whatever the command reports.
pub fn run_from<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    run(cli)
}
