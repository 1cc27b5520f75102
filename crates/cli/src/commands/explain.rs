//! `blindlink explain`: the waterfall of one flagged validate pair, from a run's outputs
//! (`model.json` and `explanations.csv` of the comparing side), as text and as an SVG chart.
//!
//! The pair's agreement pattern is read back from its rows in `explanations.csv` (each
//! field's level label) and re-scored with `model.json`; the two files must agree (same
//! fields, levels and total weight), so a stale or edited file is refused rather than drawn.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use blindlink_party::{EXPLANATIONS_FILE, EXPLANATIONS_HEADER, MODEL_FILE};
use blindlink_protocol::fellegi_sunter::{
    FellegiSunterModel, Level, PairExplanation, waterfall_svg,
};

use crate::output::AtomicFile;

/// Arguments of `blindlink explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The output directory of a validate run on the comparing side (it holds model.json and
    /// explanations.csv).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// The pair: its local record id, or its link id when one record holds it.
    #[arg(long, value_name = "ID")]
    pub pair: String,
    /// Where to write the SVG chart (default: `waterfall-<ID>.svg` in DIR, characters other
    /// than letters, digits, `-` and `_` replaced by `_`).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// Runs `blindlink explain`.
///
/// # Errors
/// A missing or malformed model.json or explanations.csv (with the file and line), a pair
/// that is not in explanations.csv (only flagged pairs are), files that do not agree, or a
/// failed write.
pub fn run(args: ExplainArgs) -> anyhow::Result<()> {
    let model_path = args.out_dir.join(MODEL_FILE);
    let text = std::fs::read_to_string(&model_path)
        .with_context(|| format!("cannot read {}", model_path.display()))?;
    let model = FellegiSunterModel::from_json(&text)
        .with_context(|| format!("{}", model_path.display()))?;
    let explanations = args.out_dir.join(EXPLANATIONS_FILE);
    let (local_id, levels, total) = pair_rows(&explanations, &args.pair)?;
    let shown = explanations.display();
    let pattern = model
        .fields
        .iter()
        .map(|field| {
            let Some(label) = levels.get(&field.field) else {
                bail!(
                    "{shown}: pair '{local_id}' has no row for field '{}' of {MODEL_FILE}",
                    field.field
                );
            };
            if label == "missing" {
                return Ok(Level::MISSING);
            }
            match field.levels.iter().position(|l| &l.label == label) {
                Some(i) => Ok(Level::at(i)),
                None => bail!(
                    "{shown}: pair '{local_id}': field '{}' has level '{label}', which {MODEL_FILE} \
                     does not list",
                    field.field
                ),
            }
        })
        .collect::<anyhow::Result<Vec<Level>>>()?;
    if levels.len() != model.fields.len() {
        bail!(
            "{shown}: pair '{local_id}' has {} field rows, {MODEL_FILE} has {} fields",
            levels.len(),
            model.fields.len()
        );
    }
    let why = model.explain(&pattern)?;
    if (why.match_weight - total).abs() > 1e-3 {
        bail!(
            "{shown}: pair '{local_id}' totals {total:.4} bits, {MODEL_FILE} gives {:.4}: the \
             files are not from the same run",
            why.match_weight
        );
    }
    print!("{}", waterfall_text(&local_id, &why));
    let svg_path = args.svg.unwrap_or_else(|| {
        let safe: String = local_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        args.out_dir.join(format!("waterfall-{safe}.svg"))
    });
    let svg = waterfall_svg(&why, &format!("pair {local_id}"))?;
    let mut file = AtomicFile::create(&svg_path)?;
    file.write_all(svg.as_bytes())
        .with_context(|| format!("cannot write {}", svg_path.display()))?;
    file.commit()?;
    eprintln!("waterfall written to {}", svg_path.display());
    Ok(())
}

/// The pair's local id, each field's level label and the total weight, from its rows.
fn pair_rows(path: &Path, pair: &str) -> anyhow::Result<(String, HashMap<String, String>, f64)> {
    let shown = path.display();
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {shown}"))?;
    let header = reader
        .headers()
        .with_context(|| format!("{shown}: cannot read the header"))?
        .clone();
    if header.iter().ne(EXPLANATIONS_HEADER) {
        bail!(
            "{shown}: header is '{}', expected '{}'",
            header.iter().collect::<Vec<_>>().join(","),
            EXPLANATIONS_HEADER.join(",")
        );
    }
    let mut local_ids: Vec<String> = Vec::new();
    let mut levels: HashMap<String, String> = HashMap::new();
    let mut total = None;
    for (n, row) in reader.records().enumerate() {
        let line = n + 2;
        let row = row.with_context(|| format!("{shown}:{line}"))?;
        let (id, link, term, level, weight) = (&row[0], &row[1], &row[2], &row[3], &row[6]);
        if id != pair && link != pair {
            continue;
        }
        if !local_ids.iter().any(|l| l == id) {
            local_ids.push(id.to_owned());
        }
        if local_ids.len() > 1 {
            bail!(
                "link id {pair} names several flagged pairs ({}): give the local record id",
                local_ids.join(", ")
            );
        }
        match term {
            "prior" => {}
            "total" => {
                total = Some(weight.parse::<f64>().with_context(|| {
                    format!("{shown}:{line}: weight '{weight}' is not a number")
                })?);
            }
            field => {
                if levels.insert(field.to_owned(), level.to_owned()).is_some() {
                    bail!("{shown}:{line}: field '{field}' is listed twice for pair '{id}'");
                }
            }
        }
    }
    let Some(local_id) = local_ids.pop() else {
        bail!(
            "pair '{pair}' is not in {shown} (it lists the flagged pairs of a validate run, by \
             local record id or link id)"
        );
    };
    let total = total.with_context(|| format!("{shown}: pair '{local_id}' has no total row"))?;
    Ok((local_id, levels, total))
}

/// The waterfall in words: the prior, each field's level and weight with the running sum,
/// the total and the probability.
fn waterfall_text(pair: &str, why: &PairExplanation) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "pair {pair}");
    let mut sum = why.prior_weight;
    let _ = writeln!(text, "  {:<24} {:>+9.3} bits  {:>+9.3}", "prior", sum, sum);
    for field in &why.fields {
        sum += field.weight;
        let label = format!(
            "{}: {}{}",
            field.field,
            field.level,
            if field.veto { " (veto)" } else { "" }
        );
        let _ = writeln!(
            text,
            "  {label:<24} {:>+9.3} bits  {sum:>+9.3}",
            field.weight
        );
    }
    let _ = writeln!(
        text,
        "  total match weight {:+.3} bits, match probability {:.6}",
        why.match_weight, why.probability
    );
    text
}
