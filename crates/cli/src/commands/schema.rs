//! `blindlink schema check`: validates a schema and explains it, or says what is wrong where.

use std::path::PathBuf;

use anyhow::{Context, bail};
use blindlink_encoding::harden::HardeningStep;
use blindlink_encoding::native::{Layout, MissingPolicy, Weight};
use blindlink_encoding::{EncodingError, Schema, SchemaDocument};

/// Subcommands of `blindlink schema`.
#[derive(Debug, clap::Subcommand)]
pub enum SchemaCommand {
    /// Validate a schema file (native TOML or clkhash v3 JSON) and print what it encodes.
    Check {
        /// The schema (native TOML or clkhash v3 JSON, detected from the content).
        file: PathBuf,
    },
}

/// Runs `blindlink schema`.
///
/// # Errors
/// An unreadable file, or an invalid schema: the message names the location in the document
/// (TOML line/column or key path, JSON path such as `features[2].hashing.strategy`), the field
/// and the problem.
pub fn run(cmd: SchemaCommand) -> anyhow::Result<()> {
    let SchemaCommand::Check { file } = cmd;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read schema {}", file.display()))?;
    let document = match SchemaDocument::parse(&text) {
        Ok(document) => document,
        // One line per broken field, so a long schema's problems can all be fixed in one go.
        Err(EncodingError::SchemaProblems(problems)) => {
            let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
            bail!(
                "invalid schema {}: {} problems:\n{}",
                file.display(),
                problems.len(),
                lines.join("\n")
            );
        }
        Err(e) => return Err(e).with_context(|| format!("invalid schema {}", file.display())),
    };
    println!("{}: valid", file.display());
    for line in explain(&document) {
        println!("  {line}");
    }
    for warning in document.schema.warnings() {
        println!("warning: {warning}");
    }
    Ok(())
}

/// A human-readable summary of a schema, one line per item.
pub fn explain(document: &SchemaDocument) -> Vec<String> {
    let mut lines = Vec::new();
    match &document.schema {
        Schema::Native(s) => {
            let layout = match s.layout {
                Layout::Clk => "one CLK for the record",
                Layout::Rbf => "record-level Bloom filter (per-field sampling)",
                Layout::PerField => "one filter per field, concatenated",
            };
            lines.push(format!(
                "dialect: blindlink native (keyed HMAC-SHA3, {})",
                blindlink_encoding::DOMAIN
            ));
            lines.push(format!(
                "filter: {} bits, layout: {layout}; CLKs of {} bits after hardening",
                s.bits,
                s.output_bits()
            ));
            for f in &s.fields {
                let weight = match f.weight {
                    Weight::BitsPerToken(k) => format!("{k} bits per token"),
                    Weight::BitsPerField(k) => format!("{k} bits per field"),
                };
                let missing = match &f.missing {
                    MissingPolicy::Skip => "missing: skipped".to_owned(),
                    MissingPolicy::Reject => "missing: rejected".to_owned(),
                    MissingPolicy::Replace(r) => format!("missing: replaced by '{r}'"),
                };
                lines.push(format!(
                    "field '{}': {weight}, {missing}, {} bits of own filter",
                    f.column, f.own_bits
                ));
            }
            for (i, step) in s.hardening.iter().enumerate() {
                let text = match step {
                    HardeningStep::XorFold { times } => format!("xor-fold {times} time(s)"),
                    HardeningStep::Balance => "balance (complement + keyed permutation)".to_owned(),
                    HardeningStep::Salt { column } => {
                        format!("salt token hashes with column '{column}'")
                    }
                    HardeningStep::Blip { epsilon } => format!(
                        "blip, epsilon = {epsilon} (flip probability {:.4})",
                        blindlink_encoding::harden::blip_flip_probability(*epsilon)
                    ),
                    HardeningStep::Rule90 => "rule 90".to_owned(),
                    HardeningStep::Permute => "keyed permutation".to_owned(),
                    other => format!("{other:?}"),
                };
                lines.push(format!("harden[{i}]: {text}"));
            }
        }
        Schema::Clkhash(s) => {
            lines.push(
                "dialect: clkhash linkage schema v3 (CLKs identical to clkhash 0.18.3)".to_owned(),
            );
            lines.push(format!("filter: {} bits", s.filter_bits()));
            for line in s.describe_features() {
                lines.push(format!("feature {line}"));
            }
        }
    }
    lines.push(format!(
        "csv columns used: {}",
        document.schema.columns().join(", ")
    ));
    lines
}
