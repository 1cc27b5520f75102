//! `blindlink bench leakage`: what each mode, encoding and hardening reveals, measured with the
//! attacks of `blindlink-leakage` on synthetic ja and en populations, against what it costs in
//! linkage quality. Writes `leakage.csv` (one row per configuration and attack) and
//! `tradeoff.svg` (linkage F against the strongest attack's success, one labelled mark per
//! configuration). The science is in `blindlink-leakage`; this file only loops, reports
//! progress and writes the two files.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use blindlink_encoding::LinkageSecret;
use blindlink_leakage::{
    BlipSeed, Disclosure, EncodingConfig, FilterLayout, GraphParams, Hardening, LinkageScore,
    LinkedFiles, Measurement, clk_linkage, run_attacks, token_linkage,
};
use blindlink_protocol::{MessageKind, Mode};
use blindlink_synth::Locale;

use crate::output::write_atomically;

/// Arguments of `blindlink bench leakage`.
#[derive(Debug, clap::Args)]
pub struct LeakageBenchArgs {
    /// Directory for leakage.csv and tradeoff.svg (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// The one-minute preset: 150 persons per population, fewer hardenings.
    #[arg(long)]
    pub quick: bool,
    /// Persons per population (default 1000, or 150 with --quick).
    #[arg(long)]
    pub persons: Option<u64>,
    /// Share of persons in both files (the attacker's plaintext overlaps the victim's file by
    /// this much).
    #[arg(long, default_value_t = 1.0)]
    pub overlap: f64,
    /// Locales, comma-separated: ja, en.
    #[arg(long, value_delimiter = ',', default_value = "ja,en")]
    pub locales: Vec<String>,
    /// Seed of the synthetic populations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Do not draw progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

/// What each mode hands to whom, from what its frames carry: only `clk-exchange` sends
/// CLKs (`MessageKind::AllClks`, the one kind whose `carries_clks()` is true), so only there
/// does the key holder receive encodings or does a comparing side see their similarity graph.
/// `validate` and `fuzzy` send blinded points, counts and token numbers.
fn disclosure(mode: Mode) -> Disclosure {
    let sends_clks = match mode {
        Mode::ClkExchange => MessageKind::AllClks.carries_clks(),
        Mode::Cardinality | Mode::Exact | Mode::Validate | Mode::Fuzzy => false,
    };
    Disclosure {
        encodings_to_key_holder: sends_clks,
        encodings_outside: sends_clks,
    }
}

/// One row of leakage.csv.
struct Row {
    mode: &'static str,
    locale: &'static str,
    encoding: String,
    hardening: String,
    measurement: Measurement,
    threshold: f64,
    linkage: LinkageScore,
}

const HEADER: &str = "mode,locale,encoding,hardening,attack,targets,reidentified,reidentified_1tom,precision,disclosure_risk,threshold,link_precision,link_recall,link_f,mislink_rate";

impl Row {
    fn csv(&self) -> String {
        let s = &self.measurement.score;
        format!(
            "{},{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{},{:.4},{:.4},{:.4},{:.4}",
            self.mode,
            self.locale,
            self.encoding,
            self.hardening,
            self.measurement.attack,
            s.targets,
            s.reidentified(),
            s.reidentified_1tom(),
            s.precision(),
            s.disclosure_risk,
            self.threshold,
            self.linkage.precision(),
            self.linkage.recall(),
            self.linkage.f_measure(),
            self.linkage.mislink_rate(),
        )
    }
}

/// The encodings swept: the graph-matching literature's CLK, the former per-field filters of
/// `validate`, and the two-field CLK of the frequency-attack literature.
fn encodings() -> Vec<EncodingConfig> {
    let clk = EncodingConfig::clk();
    let per_field = EncodingConfig {
        layout: FilterLayout::PerField,
        bits: 256,
        ..EncodingConfig::clk()
    };
    let names = EncodingConfig {
        bits: 1000,
        fields: vec![0, 1],
        ..EncodingConfig::clk()
    };
    vec![clk, per_field, names]
}

fn hardenings(quick: bool) -> Vec<(Hardening, BlipSeed, &'static str)> {
    let mut h = vec![
        (Hardening::None, BlipSeed::Fresh, ""),
        (Hardening::Blip(2.0), BlipSeed::Keyed, "-keyed"),
        (Hardening::Blip(2.0), BlipSeed::Fresh, "-fresh"),
        (Hardening::SaltYear, BlipSeed::Fresh, ""),
    ];
    if !quick {
        h.extend([
            (Hardening::Balance, BlipSeed::Fresh, ""),
            (Hardening::XorFold, BlipSeed::Fresh, ""),
            (Hardening::Rule90, BlipSeed::Fresh, ""),
            (Hardening::Permute, BlipSeed::Fresh, ""),
        ]);
    }
    h
}

fn locale(name: &str) -> anyhow::Result<(Locale, &'static str)> {
    match name {
        "ja" => Ok((Locale::Japanese, "ja")),
        "en" => Ok((Locale::Latin, "en")),
        other => anyhow::bail!("--locales: unknown locale '{other}' (ja or en)"),
    }
}

/// Runs `blindlink bench leakage`.
///
/// # Errors
/// An unknown locale, a population the generator refuses, or an output that cannot be
/// written.
pub fn run(args: &LeakageBenchArgs) -> anyhow::Result<()> {
    let persons = args.persons.unwrap_or(if args.quick { 150 } else { 1000 });
    let locales = args
        .locales
        .iter()
        .map(|l| locale(l))
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    // A fixed benchmark key: the attacks model who holds it, not how it was made.
    let secret = LinkageSecret::from_bytes(b"blindlink bench leakage linkage key".to_vec())?;
    let encodings = encodings();
    let hardenings = hardenings(args.quick);
    let steps = locales.len() * (encodings.len() * hardenings.len() + 2);
    let bar = if args.no_progress {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(steps as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} configurations {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut rows = Vec::new();
    for &(locale, code) in &locales {
        bar.set_message(format!("{code}: generating {persons} persons"));
        let files = LinkedFiles::generate(locale, persons, args.overlap, args.seed)
            .context("cannot generate the synthetic population")?;
        for config in &encodings {
            for &(hardening, blip, suffix) in &hardenings {
                let config = config.clone().hardened(hardening);
                bar.set_message(format!(
                    "{code} {} {}{suffix}",
                    config.label(),
                    hardening.label()
                ));
                let (threshold, linkage) = clk_linkage(&files, &config, &secret)?;
                let measurements = run_attacks(
                    &files,
                    &config,
                    &secret,
                    blip,
                    disclosure(Mode::ClkExchange),
                    GraphParams::default(),
                )?;
                for measurement in measurements {
                    rows.push(Row {
                        mode: Mode::ClkExchange.name(),
                        locale: code,
                        encoding: config.label(),
                        hardening: format!("{}{suffix}", hardening.label()),
                        measurement,
                        threshold,
                        linkage,
                    });
                }
                bar.inc(1);
            }
        }
        // validate and fuzzy compare tokens through grouped PSI cardinality: no encoding
        // reaches the peer, whatever the schema.
        let (threshold, linkage) = token_linkage(&files, &[0, 1, 2, 3, 4], 2);
        for mode in [Mode::Validate, Mode::Fuzzy] {
            let config = EncodingConfig::clk();
            for measurement in run_attacks(
                &files,
                &config,
                &secret,
                BlipSeed::Fresh,
                disclosure(mode),
                GraphParams::default(),
            )? {
                rows.push(Row {
                    mode: mode.name(),
                    locale: code,
                    encoding: "grouped-psi-tokens-q2-5f".into(),
                    hardening: "none".into(),
                    measurement,
                    threshold,
                    linkage,
                });
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let csv = args.out.join("leakage.csv");
    write_atomically(&csv, |file| {
        writeln!(file, "{HEADER}")?;
        for row in &rows {
            writeln!(file, "{}", row.csv())?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", csv.display()))?;
    let svg = args.out.join("tradeoff.svg");
    let chart = tradeoff_svg(&rows)?;
    write_atomically(&svg, |file| Ok(file.write_all(chart.as_bytes())?))
        .with_context(|| format!("cannot write {}", svg.display()))?;
    println!(
        "bench leakage: {} rows from {} configurations ({persons} persons, overlap {}, locales {}) in {:.1} s; wrote {} and {}",
        rows.len(),
        steps,
        args.overlap,
        args.locales.join(","),
        started.elapsed().as_secs_f64(),
        display(&csv),
        display(&svg),
    );
    Ok(())
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// A mark of the plot: label, attack success, linkage F, whether the mode sends CLKs.
type Point = (String, f64, f64, bool);

/// Linkage F against the strongest attack's 1-to-1 success, one labelled point per
/// configuration (mode, locale, encoding, hardening).
fn tradeoff_svg(rows: &[Row]) -> anyhow::Result<String> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    let mut points: Vec<Point> = Vec::new();
    for row in rows {
        let key = format!(
            "{} {} {} {}",
            row.mode, row.locale, row.encoding, row.hardening
        );
        let success = row.measurement.score.reidentified();
        match points.iter_mut().find(|p| p.0 == key) {
            Some(p) => p.1 = p.1.max(success),
            None => points.push((
                key,
                success,
                row.linkage.f_measure(),
                row.mode == Mode::ClkExchange.name(),
            )),
        }
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1400, 1000)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "blindlink: linkage quality against attack success",
                ("sans-serif", 24),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.02f64..1.05f64, 0.0f64..1.05f64)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("strongest attack: share of records or values re-identified 1-to-1")
            .y_desc("linkage F-measure")
            .draw()
            .map_err(plot_error)?;
        // Configurations at the same place share one mark and a stack of labels, written
        // towards the inside of the plot.
        let mut groups: Vec<((i64, i64), Vec<&Point>)> = Vec::new();
        for p in &points {
            let at = ((p.1 * 100.0).round() as i64, (p.2 * 100.0).round() as i64);
            match groups.iter_mut().find(|g| g.0 == at) {
                Some(g) => g.1.push(p),
                None => groups.push((at, vec![p])),
            }
        }
        for (_, members) in &groups {
            let (x, y) = (members[0].1, members[0].2);
            let colour = if members.iter().any(|m| m.3) {
                RED
            } else {
                BLUE
            };
            let right = x > 0.5;
            let style = TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(
                if right { HPos::Right } else { HPos::Left },
                VPos::Center,
            ));
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((x, y)) + Circle::new((0, 0), 4, colour.filled()),
                ))
                .map_err(plot_error)?;
            chart
                .draw_series(members.iter().enumerate().map(|(i, m)| {
                    let dx = if right { -8 } else { 8 };
                    EmptyElement::at((x, y))
                        + Text::new(m.0.clone(), (dx, 12 * i as i32), style.clone())
                }))
                .map_err(plot_error)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("cannot draw tradeoff.svg: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_sweep_writes_both_files_and_separates_the_modes() {
        let dir = tempfile::tempdir().unwrap();
        let args = LeakageBenchArgs {
            out: dir.path().to_path_buf(),
            quick: true,
            persons: Some(60),
            overlap: 1.0,
            locales: vec!["ja".into()],
            seed: 3,
            no_progress: true,
        };
        run(&args).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("leakage.csv")).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(HEADER));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        let reidentified = |mode: &str, hardening: &str, attack: &str| -> Vec<f64> {
            rows.iter()
                .filter(|r| r[0] == mode && r[3] == hardening && r[4] == attack)
                .map(|r| r[6].parse().unwrap())
                .collect()
        };
        // validate and fuzzy: the key holder receives no encodings.
        assert_eq!(
            reidentified("validate", "none", "key-holder-records"),
            [0.0]
        );
        assert_eq!(reidentified("fuzzy", "none", "key-holder-records"), [0.0]);
        // clk-exchange: the key holder decodes the CLKs of every encoding.
        let clk = reidentified("clk-exchange", "none", "key-holder-records");
        assert_eq!(clk.len(), 3);
        assert!(clk.iter().all(|&r| r >= 0.9), "{clk:?}");
        let svg = std::fs::read_to_string(dir.path().join("tradeoff.svg")).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("clk-exchange ja clk-l1024-k10-q2-5f none")
        );
    }
}
