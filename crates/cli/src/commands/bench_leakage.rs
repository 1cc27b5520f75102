//! `blindlink bench leakage`: what each mode, encoding and hardening reveals, measured with the
//! attacks of `blindlink-leakage` on synthetic ja and en populations, against what it costs in
//! linkage quality. Writes `leakage.csv` (one row per configuration and attack),
//! `count_inference.csv` (what the grouped PSI counts of `validate` and `fuzzy` reveal, per plan
//! and field), `profile.csv` (the vulnerability profile of each encoding and hardening: five
//! proxies after Vidanage et al., TOPS 2023) and `tradeoff.svg` (linkage F against the strongest attack's success, one labelled
//! mark per configuration). The configurations run in parallel (rayon). The science is in
//! `blindlink-leakage`; this file only loops, reports progress and writes the files.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use blindlink_encoding::LinkageSecret;
use blindlink_leakage::{
    AttackScore, BlipSeed, CountLeak, Disclosure, EncodingConfig, FilterLayout, GraphParams,
    Hardening, LinkageScore, LinkedFiles, ProfileParams, VulnerabilityProfile, clk_linkage,
    count_attack, fuzzy_plan, mislinked_plan, profile_encoding, quasi_identifiers, run_attacks,
    run_value_attacks, token_linkage, validate_plan,
};
use blindlink_matching::MinHashParameters;
use blindlink_protocol::{DEFAULT_FUZZY_BANDS, DEFAULT_FUZZY_ROWS, MessageKind, Mode};
use blindlink_psi::SizeBuckets;
use blindlink_synth::Locale;
use rayon::prelude::*;

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
    /// Persons per population (default 500, or 150 with --quick).
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
    /// Persons of the frequent-values populations (en, one attribute per filter: the setting of
    /// the frequency and pattern-mining attacks): of the synthetic one, and of each side of
    /// febrl-tables (default 20000, or 5000 with --quick; 0 skips both).
    #[arg(long)]
    pub value_persons: Option<u64>,
    /// Populations of the frequency and pattern-mining attacks, comma-separated: synthetic
    /// (the en Zipf-Mandelbrot names of --value-persons persons), febrl (the FEBRL data sets'
    /// real name frequencies, crates/leakage/data/febrl_names.csv), febrl-tables (--value-persons
    /// victims and as many attackers drawn from the frequency tables FEBRL's generator samples
    /// from, crates/leakage/data/febrl-*-freq.csv).
    #[arg(long, value_delimiter = ',', default_value = "synthetic,febrl")]
    pub value_data: Vec<String>,
    /// Pattern mining's smallest partition split further, in victim filters (default: a
    /// fiftieth of the victim file, at least 20); when given, the attack is labelled
    /// pattern-mining-minpartN in leakage.csv.
    #[arg(long)]
    pub min_partition: Option<usize>,
    /// Records sampled for the pairwise proxies of profile.csv (co-occurrence, similarity,
    /// neighbourhood); their cost grows with its square.
    #[arg(long, default_value_t = 1000)]
    pub profile_sample: usize,
    /// The benchmark's linkage key (a label for the attacks to model who holds it, not a
    /// secret; every row but BLIP's is a function of it, --seed and the sizes).
    #[arg(long, default_value = "blindlink bench leakage linkage key")]
    pub key: String,
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
    /// The attack (`Measurement::attack`, or `counts-<plan>[-<field>]`).
    attack: String,
    score: AttackScore,
    /// The best threshold and the linkage there; `None` for encodings that are not linked
    /// (the one-attribute filters of the frequent-values population): empty CSV cells.
    linkage: Option<(f64, LinkageScore)>,
}

const HEADER: &str = "mode,locale,encoding,hardening,attack,targets,reidentified,reidentified_1tom,precision,disclosure_risk,threshold,link_precision,link_recall,link_f,mislink_rate";

impl Row {
    fn csv(&self) -> String {
        let s = &self.score;
        let linkage = match &self.linkage {
            Some((threshold, l)) => format!(
                "{threshold},{:.4},{:.4},{:.4},{:.4}",
                l.precision(),
                l.recall(),
                l.f_measure(),
                l.mislink_rate()
            ),
            None => ",,,,".into(),
        };
        format!(
            "{},{},{},{},{},{},{:.4},{:.4},{:.4},{:.4},{linkage}",
            self.mode,
            self.locale,
            self.encoding,
            self.hardening,
            self.attack,
            s.targets,
            s.reidentified(),
            s.reidentified_1tom(),
            s.precision(),
            s.disclosure_risk,
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

/// One unit of work of the sweep; the units run in parallel (rayon), each producing rows.
enum Job {
    /// `clk-exchange` with one encoding and hardening on one locale's population.
    Clk {
        locale: usize,
        config: EncodingConfig,
        blip: BlipSeed,
        suffix: &'static str,
    },
    /// `validate` and `fuzzy` on one locale's population: token linkage, the key holder's
    /// (empty) view and the attack on the grouped PSI counts.
    Tokens { locale: usize },
    /// The frequency and pattern-mining attacks on a one- or two-attribute filter of a
    /// frequent-values population.
    Values {
        population: ValuePopulation,
        config: EncodingConfig,
    },
}

/// The populations of the frequency and pattern-mining attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValuePopulation {
    /// `blindlink-synth`'s en names (Zipf-Mandelbrot laws).
    Synthetic,
    /// The FEBRL data sets' names (real frequency tables).
    Febrl,
    /// Names drawn from FEBRL's frequency tables, at any size.
    FebrlTables,
}

impl ValuePopulation {
    /// The locale column of the rows.
    fn code(self) -> &'static str {
        match self {
            Self::Synthetic => "en",
            Self::Febrl => "en-febrl",
            Self::FebrlTables => "en-febrl-tables",
        }
    }

    /// The hardenings run on it: the published three, then the two that break the equality
    /// of equal values (a record salt needs a date of birth, which the FEBRL table has not).
    /// The sampled tables, meant for the published sizes, run the published three only.
    fn hardenings(self) -> Vec<Hardening> {
        let mut h = vec![Hardening::None, Hardening::Balance, Hardening::XorFold];
        match self {
            Self::Synthetic => h.extend([Hardening::SaltYear, Hardening::Blip(2.0)]),
            Self::Febrl => h.push(Hardening::Blip(2.0)),
            Self::FebrlTables => {}
        }
        h
    }
}

fn value_population(name: &str) -> anyhow::Result<ValuePopulation> {
    match name {
        "synthetic" => Ok(ValuePopulation::Synthetic),
        "febrl" => Ok(ValuePopulation::Febrl),
        "febrl-tables" => Ok(ValuePopulation::FebrlTables),
        other => anyhow::bail!(
            "--value-data: unknown data set '{other}' (synthetic, febrl or febrl-tables)"
        ),
    }
}

/// The label of a hardening in the rows: BLIP's flips are fresh unless the suffix says.
fn hardening_label(hardening: Hardening, suffix: &str) -> String {
    match (hardening, suffix) {
        (Hardening::Blip(_), "") => format!("{}-fresh", hardening.label()),
        _ => format!("{}{suffix}", hardening.label()),
    }
}

impl Job {
    fn label(&self, locales: &[(Locale, &'static str)]) -> String {
        match self {
            Self::Clk {
                locale,
                config,
                suffix,
                ..
            } => format!(
                "{} {} {}{suffix}",
                locales[*locale].1,
                config.label(),
                config.hardening.label()
            ),
            Self::Tokens { locale } => format!("{} validate/fuzzy counts", locales[*locale].1),
            Self::Values { population, config } => format!(
                "{} values {} {}",
                population.code(),
                config.label(),
                config.hardening.label()
            ),
        }
    }
}

/// Own records per band token above which fuzzy does not pair by that token (the protocol's
/// private `MAX_TOKEN_GROUP` in `crates/protocol/src/modes/fuzzy.rs`, repeated here).
const FUZZY_MAX_TOKEN_GROUP: usize = 256;

/// The counts attack's detail: one line per mode, plan and field.
const COUNTS_HEADER: &str = "mode,locale,plan,field,observed,agreeing,disagreeing,in_dictionary,top1,reidentified,reidentified_1tom,prior_bits,posterior_bits";

/// profile.csv's header: one line per encoding and hardening of a population.
const PROFILE_HEADER: &str = "mode,locale,encoding,hardening,records,unique_encodings,frequency,length,co_occurrence,similarity,neighbourhood";

struct Populations {
    locales: Vec<(Locale, &'static str)>,
    files: Vec<LinkedFiles>,
    values: Option<LinkedFiles>,
    febrl: Option<LinkedFiles>,
    febrl_tables: Option<LinkedFiles>,
    min_partition: Option<usize>,
    profile: ProfileParams,
}

/// Runs `blindlink bench leakage`.
///
/// # Errors
/// An unknown locale, a population the generator refuses, or an output that cannot be
/// written.
pub fn run(args: &LeakageBenchArgs) -> anyhow::Result<()> {
    let persons = args.persons.unwrap_or(if args.quick { 150 } else { 500 });
    let value_persons = args
        .value_persons
        .unwrap_or(if args.quick { 5000 } else { 20000 });
    let locales = args
        .locales
        .iter()
        .map(|l| locale(l))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let value_data = args
        .value_data
        .iter()
        .map(|d| value_population(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(p) = args.min_partition
        && p < 2
    {
        anyhow::bail!("--min-partition must be at least 2, got {p}");
    }
    if args.profile_sample < 2 {
        anyhow::bail!(
            "--profile-sample must be at least 2, got {}",
            args.profile_sample
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    // A benchmark key: the attacks model who holds it, not how it was made.
    if args.key.is_empty() {
        anyhow::bail!("--key must not be empty");
    }
    let secret = LinkageSecret::from_bytes(args.key.as_bytes().to_vec())?;
    let started = Instant::now();
    let populations = Populations {
        files: locales
            .iter()
            .map(|&(locale, _)| LinkedFiles::generate(locale, persons, args.overlap, args.seed))
            .collect::<Result<_, _>>()
            .context("cannot generate the synthetic population")?,
        // The attacker's plaintext is a disjoint sample of the same population (overlap 0).
        values: (value_persons > 0 && value_data.contains(&ValuePopulation::Synthetic))
            .then(|| LinkedFiles::generate(Locale::Latin, value_persons, 0.0, args.seed))
            .transpose()
            .context("cannot generate the frequent-values population")?,
        febrl: value_data
            .contains(&ValuePopulation::Febrl)
            .then(LinkedFiles::febrl_names)
            .transpose()
            .context("cannot read the FEBRL name table")?,
        febrl_tables: (value_persons > 0 && value_data.contains(&ValuePopulation::FebrlTables))
            .then(|| {
                usize::try_from(value_persons)
                    .map_err(|_| anyhow::anyhow!("--value-persons {value_persons} is too large"))
                    .and_then(|n| Ok(LinkedFiles::febrl_population(n, args.seed)?))
            })
            .transpose()
            .context("cannot sample the FEBRL frequency tables")?,
        locales,
        min_partition: args.min_partition,
        profile: ProfileParams {
            sample: args.profile_sample,
            ..ProfileParams::default()
        },
    };
    let jobs = jobs(&populations, args.quick);
    let bar = if args.no_progress {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(jobs.len() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} configurations, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let results = jobs
        .par_iter()
        .map(|job| {
            bar.set_message(job.label(&populations.locales));
            let out = run_job(job, &populations, &secret);
            bar.inc(1);
            out
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    bar.finish_and_clear();
    let mut rows = Vec::new();
    let mut counts = Vec::new();
    let mut profiles = Vec::new();
    for (r, c, p) in results {
        rows.extend(r);
        counts.extend(c);
        profiles.extend(p);
    }
    let csv = args.out.join("leakage.csv");
    write_atomically(&csv, |file| {
        writeln!(file, "{HEADER}")?;
        for row in &rows {
            writeln!(file, "{}", row.csv())?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", csv.display()))?;
    let counts_csv = args.out.join("count_inference.csv");
    write_atomically(&counts_csv, |file| {
        writeln!(file, "{COUNTS_HEADER}")?;
        for line in &counts {
            writeln!(file, "{line}")?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", counts_csv.display()))?;
    let profile_csv = args.out.join("profile.csv");
    write_atomically(&profile_csv, |file| {
        writeln!(file, "{PROFILE_HEADER}")?;
        for line in &profiles {
            writeln!(file, "{line}")?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", profile_csv.display()))?;
    let svg = args.out.join("tradeoff.svg");
    let chart = tradeoff_svg(&rows)?;
    write_atomically(&svg, |file| Ok(file.write_all(chart.as_bytes())?))
        .with_context(|| format!("cannot write {}", svg.display()))?;
    println!(
        "bench leakage: {} rows from {} configurations ({persons} persons, overlap {}, locales {}; frequent values: {}, {value_persons} persons) in {:.1} s; wrote {}, {}, {} and {}",
        rows.len(),
        jobs.len(),
        args.overlap,
        args.locales.join(","),
        args.value_data.join(","),
        started.elapsed().as_secs_f64(),
        display(&csv),
        display(&counts_csv),
        display(&profile_csv),
        display(&svg),
    );
    Ok(())
}

/// The sweep's units of work, per locale, then the frequent-values population's.
fn jobs(populations: &Populations, quick: bool) -> Vec<Job> {
    let mut jobs = Vec::new();
    for locale in 0..populations.locales.len() {
        jobs.push(Job::Tokens { locale });
        for config in encodings() {
            for &(hardening, blip, suffix) in &hardenings(quick) {
                jobs.push(Job::Clk {
                    locale,
                    config: config.clone().hardened(hardening),
                    blip,
                    suffix,
                });
            }
        }
    }
    for (population, present) in [
        (ValuePopulation::Synthetic, populations.values.is_some()),
        (ValuePopulation::Febrl, populations.febrl.is_some()),
        (
            ValuePopulation::FebrlTables,
            populations.febrl_tables.is_some(),
        ),
    ] {
        if !present {
            continue;
        }
        for fields in [vec![0], vec![1], vec![0, 1]] {
            for hardening in population.hardenings() {
                jobs.push(Job::Values {
                    population,
                    config: EncodingConfig {
                        bits: 1000,
                        fields: fields.clone(),
                        ..EncodingConfig::clk()
                    }
                    .hardened(hardening),
                });
            }
        }
    }
    jobs
}

/// leakage.csv rows, count_inference.csv lines, profile.csv lines.
type JobOutput = (Vec<Row>, Vec<String>, Vec<String>);

fn profile_line(locale: &str, encoding: &str, hardening: &str, p: &VulnerabilityProfile) -> String {
    format!(
        "{},{locale},{encoding},{hardening},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}",
        Mode::ClkExchange.name(),
        p.records,
        p.unique_encodings,
        p.frequency,
        p.length,
        p.co_occurrence,
        p.similarity,
        p.neighbourhood,
    )
}

fn run_job(
    job: &Job,
    populations: &Populations,
    secret: &LinkageSecret,
) -> anyhow::Result<JobOutput> {
    let mut rows = Vec::new();
    let mut counts = Vec::new();
    let mut profiles = Vec::new();
    match job {
        Job::Clk {
            locale,
            config,
            blip,
            suffix,
        } => {
            let files = &populations.files[*locale];
            let code = populations.locales[*locale].1;
            let linkage = clk_linkage(files, config, secret)?;
            let hardening = hardening_label(config.hardening, suffix);
            let profile = profile_encoding(files, config, secret, *blip, populations.profile)?;
            profiles.push(profile_line(code, &config.label(), &hardening, &profile));
            let measurements = run_attacks(
                files,
                config,
                secret,
                *blip,
                disclosure(Mode::ClkExchange),
                GraphParams::default(),
            )?;
            for measurement in measurements {
                rows.push(Row {
                    mode: Mode::ClkExchange.name(),
                    locale: code,
                    encoding: config.label(),
                    hardening: hardening.clone(),
                    attack: measurement.attack.into(),
                    score: measurement.score,
                    linkage: Some(linkage),
                });
            }
        }
        Job::Tokens { locale } => {
            let files = &populations.files[*locale];
            let code = populations.locales[*locale].1;
            // validate and fuzzy compare tokens through grouped PSI cardinality: no encoding
            // reaches the peer, whatever the schema; what the counts reveal is attacked.
            let linkage = token_linkage(files, &[0, 1, 2, 3, 4], 2);
            let buckets = SizeBuckets::default();
            let plans = [
                (Mode::Validate, "linked", validate_plan(files)),
                (Mode::Validate, "mislinked", mislinked_plan(files)),
                (
                    Mode::Fuzzy,
                    "candidates",
                    fuzzy_plan(
                        files,
                        2,
                        MinHashParameters {
                            bands: DEFAULT_FUZZY_BANDS,
                            rows: DEFAULT_FUZZY_ROWS,
                        },
                        FUZZY_MAX_TOKEN_GROUP,
                    )?,
                ),
            ];
            for mode in [Mode::Validate, Mode::Fuzzy] {
                for measurement in run_attacks(
                    files,
                    &EncodingConfig::clk(),
                    secret,
                    BlipSeed::Fresh,
                    disclosure(mode),
                    GraphParams::default(),
                )? {
                    rows.push(token_row(
                        mode,
                        code,
                        measurement.attack.into(),
                        measurement.score,
                        linkage,
                    ));
                }
            }
            for (mode, plan, pairs) in &plans {
                let leaks = count_attack(files, pairs, 2, &buckets);
                let mut pooled = AttackScore::default();
                let mut risk = 0.0;
                for leak in &leaks {
                    counts.push(count_line(mode.name(), code, plan, leak));
                    let s = &leak.disagreeing;
                    // Pooled over every compared value (agreeing ones included): the share
                    // of compared values the counts reveal beyond "agrees".
                    pooled.targets += leak.observed;
                    pooled.guessed_1to1 += s.guessed_1to1;
                    pooled.correct_1to1 += s.correct_1to1;
                    pooled.guessed_1tom += s.guessed_1tom;
                    pooled.correct_1tom += s.correct_1tom;
                    risk += s.disclosure_risk * s.targets as f64;
                    rows.push(token_row(
                        *mode,
                        code,
                        format!("counts-{plan}-{}", leak.field),
                        leak.disagreeing,
                        linkage,
                    ));
                }
                if pooled.targets > 0 {
                    pooled.disclosure_risk = risk / pooled.targets as f64;
                }
                rows.push(token_row(
                    *mode,
                    code,
                    format!("counts-{plan}"),
                    pooled,
                    linkage,
                ));
            }
        }
        Job::Values { population, config } => {
            let files = match population {
                ValuePopulation::Synthetic => &populations.values,
                ValuePopulation::Febrl => &populations.febrl,
                ValuePopulation::FebrlTables => &populations.febrl_tables,
            };
            let Some(files) = files else {
                return Ok((rows, counts, profiles));
            };
            let names = quasi_identifiers(Locale::Latin);
            let fields: Vec<&str> = config.fields.iter().map(|&f| names[f]).collect();
            let encoding = format!("{}-{}", config.label(), fields.join("+"));
            let hardening = hardening_label(config.hardening, "");
            let profile =
                profile_encoding(files, config, secret, BlipSeed::Fresh, populations.profile)?;
            profiles.push(profile_line(
                population.code(),
                &encoding,
                &hardening,
                &profile,
            ));
            for measurement in run_value_attacks(files, config, secret, populations.min_partition)?
            {
                let attack = match populations.min_partition {
                    Some(p) if measurement.attack == "pattern-mining" => {
                        format!("{}-minpart{p}", measurement.attack)
                    }
                    _ => measurement.attack.into(),
                };
                rows.push(Row {
                    mode: Mode::ClkExchange.name(),
                    locale: population.code(),
                    encoding: encoding.clone(),
                    hardening: hardening.clone(),
                    attack,
                    score: measurement.score,
                    linkage: None,
                });
            }
        }
    }
    Ok((rows, counts, profiles))
}

/// A row of `validate` or `fuzzy` (tokens through grouped PSI, no encoding sent).
fn token_row(
    mode: Mode,
    locale: &'static str,
    attack: String,
    score: AttackScore,
    linkage: (f64, LinkageScore),
) -> Row {
    Row {
        mode: mode.name(),
        locale,
        encoding: "grouped-psi-tokens-q2-5f".into(),
        hardening: "none".into(),
        attack,
        score,
        linkage: Some(linkage),
    }
}

fn count_line(mode: &str, locale: &str, plan: &str, leak: &CountLeak) -> String {
    let s = &leak.disagreeing;
    format!(
        "{mode},{locale},{plan},{},{},{},{},{},{:.4},{:.4},{:.4},{:.2},{:.2}",
        leak.field,
        leak.observed,
        leak.agreeing,
        s.targets,
        leak.in_dictionary,
        leak.top1_share(),
        s.reidentified(),
        s.reidentified_1tom(),
        leak.prior_bits,
        leak.posterior_bits,
    )
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
        let Some((_, linkage)) = &row.linkage else {
            continue;
        };
        // Per-field count rows are relative to the disagreeing values of one field; the
        // pooled row stands for the configuration.
        if row.attack.starts_with("counts-") && row.attack.matches('-').count() > 1 {
            continue;
        }
        let key = format!(
            "{} {} {} {}",
            row.mode, row.locale, row.encoding, row.hardening
        );
        let success = row.score.reidentified();
        match points.iter_mut().find(|p| p.0 == key) {
            Some(p) => p.1 = p.1.max(success),
            None => points.push((
                key,
                success,
                linkage.f_measure(),
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
            value_persons: Some(0),
            value_data: vec!["febrl".into()],
            min_partition: None,
            profile_sample: 200,
            key: "blindlink bench leakage linkage key".into(),
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
        // ... but the counts are attacked: one pooled row per plan, one per field.
        for (mode, plan) in [
            ("validate", "linked"),
            ("validate", "mislinked"),
            ("fuzzy", "candidates"),
        ] {
            assert_eq!(
                reidentified(mode, "none", &format!("counts-{plan}")).len(),
                1
            );
        }
        // A wrong person's sex: "differs" leaves the other codes, none named 1-to-1 (the
        // most probable, in count_inference.csv, is the other sex: no leak beyond the
        // disagreement). The detail file has one line per mode, plan and field.
        assert_eq!(
            reidentified("validate", "none", "counts-mislinked-sex"),
            [0.0]
        );
        let counts = std::fs::read_to_string(dir.path().join("count_inference.csv")).unwrap();
        assert_eq!(counts.lines().next(), Some(COUNTS_HEADER));
        assert_eq!(counts.lines().count(), 1 + 3 * 5);
        // clk-exchange: the key holder decodes the CLKs of every encoding.
        let clk = reidentified("clk-exchange", "none", "key-holder-records");
        assert_eq!(clk.len(), 3);
        assert!(clk.iter().all(|&r| r >= 0.9), "{clk:?}");
        let svg = std::fs::read_to_string(dir.path().join("tradeoff.svg")).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("clk-exchange ja clk-l1024-k10-q2-5f none")
        );
        // The FEBRL names: the frequency attack names surnames; fresh BLIP stops it.
        let febrl_surname = |hardening: &str, attack: &str| -> Vec<f64> {
            rows.iter()
                .filter(|r| {
                    r[1] == "en-febrl"
                        && r[2] == "clk-l1000-k10-q2-1f-surname"
                        && r[3] == hardening
                        && r[4] == attack
                })
                .map(|r| r[6].parse().unwrap())
                .collect()
        };
        assert!(febrl_surname("none", "frequency")[0] > 0.03);
        assert_eq!(febrl_surname("blip-eps2-fresh", "frequency"), [0.0]);
        // profile.csv: one line per encoding and hardening (ja: 3 encodings x 4 quick
        // hardenings; FEBRL: 3 filters x 4 hardenings).
        let profile = std::fs::read_to_string(dir.path().join("profile.csv")).unwrap();
        let mut lines = profile.lines();
        assert_eq!(lines.next(), Some(PROFILE_HEADER));
        let profiles: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(profiles.len(), 3 * 4 + 3 * 4);
        let proxy = |locale: &str, encoding: &str, hardening: &str, column: usize| -> f64 {
            profiles
                .iter()
                .find(|r| r[1] == locale && r[2] == encoding && r[3] == hardening)
                .map(|r| r[column].parse().unwrap())
                .unwrap()
        };
        // Similarity (column 9): a year-of-birth salt lowers it on the 5-field CLK.
        let clk = "clk-l1024-k10-q2-5f";
        assert!(proxy("ja", clk, "salt-yob", 9) < proxy("ja", clk, "none", 9));
        // Balancing removes the length signal (column 7) exactly.
        let surname = "clk-l1000-k10-q2-1f-surname";
        assert_eq!(proxy("en-febrl", surname, "balance", 7), 0.0);
        assert!(proxy("en-febrl", surname, "none", 7) > 0.9);
    }

    /// (a bad flag's arguments, the error it must give).
    fn check_bad_flag(change: impl FnOnce(&mut LeakageBenchArgs), expected: &str) {
        let dir = tempfile::tempdir().unwrap();
        let mut args = LeakageBenchArgs {
            out: dir.path().to_path_buf(),
            quick: true,
            persons: Some(20),
            overlap: 1.0,
            locales: vec!["ja".into()],
            seed: 3,
            value_persons: Some(0),
            value_data: vec![],
            min_partition: None,
            profile_sample: 1000,
            key: "k".into(),
            no_progress: true,
        };
        change(&mut args);
        assert_eq!(run(&args).unwrap_err().to_string(), expected);
        // Refused before anything is written.
        assert!(!dir.path().join("leakage.csv").exists());
    }

    #[test]
    fn bad_flags_are_refused_with_their_name() {
        check_bad_flag(
            |a| a.value_data = vec!["ncvr".into()],
            "--value-data: unknown data set 'ncvr' (synthetic, febrl or febrl-tables)",
        );
        check_bad_flag(
            |a| a.profile_sample = 1,
            "--profile-sample must be at least 2, got 1",
        );
        check_bad_flag(|a| a.key = String::new(), "--key must not be empty");
        check_bad_flag(
            |a| a.min_partition = Some(1),
            "--min-partition must be at least 2, got 1",
        );
        check_bad_flag(
            |a| a.locales = vec!["fr".into()],
            "--locales: unknown locale 'fr' (ja or en)",
        );
    }
}
