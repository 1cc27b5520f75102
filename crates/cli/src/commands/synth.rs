//! `blindlink synth`: writes a synthetic two-party data set (two record files and the truth) as
//! CSV, atomically, with a progress bar on big runs. The generation itself lives in
//! `blindlink-synth`, which never touches a file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use blindlink_synth::{
    CorruptionRates, Generator, LinkErrorRates, Locale, Outcome, OutputFile, RecordSink, Scenario,
    SynthConfig, SynthStats, Truth, columns,
};

use crate::output::AtomicFile;

/// Which data set to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioArg {
    /// registry.csv (clean, authoritative), insurer.csv (hand-entered, with wrong-person links,
    /// keying errors and unregistered persons) and truth.csv.
    RegistryInsurer,
    /// hospital_a.csv and hospital_b.csv with overlapping patients and no shared identifier,
    /// and truth.csv with the true pairs.
    TwoHospitals,
}

/// Names, addresses and notation of the population.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LocaleArg {
    /// Japanese: kanji and kana names, prefecture/city/town addresses, My Numbers.
    Ja,
    /// Latin, FEBRL-style: given name, surname, street address, suburb, postcode, state,
    /// a 9-digit national id with a Luhn check digit.
    En,
}

/// Arguments of `blindlink synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Which data set.
    #[arg(long, value_enum, default_value_t = ScenarioArg::RegistryInsurer)]
    pub scenario: ScenarioArg,
    /// Names, addresses and notation.
    #[arg(long, value_enum, default_value_t = LocaleArg::Ja)]
    pub locale: LocaleArg,
    /// Size of the population.
    #[arg(long, default_value_t = 10_000)]
    pub persons: u64,
    /// registry-insurer: share of persons who are insured (in insurer.csv); two-hospitals:
    /// share of persons in both hospitals (the rest split evenly between them).
    #[arg(long, default_value_t = 0.8)]
    pub overlap: f64,
    /// Seed of every random choice: the same arguments give the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory to write the CSV files into (created if missing).
    #[arg(long)]
    pub out: PathBuf,

    /// Per hand-entered record: a kanji written in a variant form (髙/高, 﨑/崎, 邊/辺 ...); ja only.
    #[arg(long, default_value_t = CorruptionRates::default().kanji_variant, help_heading = "Notation errors")]
    pub kanji_variant_rate: f64,
    /// Per hand-entered record: ja, the kana name in hiragana, half-width, with a long-vowel mark,
    /// one kana mistyped, or surname and given name joined in one field; en, a one-letter typo.
    #[arg(long, default_value_t = CorruptionRates::default().kana_variant, help_heading = "Notation errors")]
    pub kana_variant_rate: f64,
    /// Per hand-entered record: the date of birth as 1985/04/03, 1985/4/3, 19850403, full-width
    /// digits, 昭和60年4月3日 or S60.4.3 (ja); 03/04/1985, 19850403, 1985/04/03, 3 apr 1985 (en).
    #[arg(long, default_value_t = CorruptionRates::default().date_format, help_heading = "Notation errors")]
    pub date_format_rate: f64,
    /// Per hand-entered record: the sex as 男/女 or 1/2 instead of M/F (ja); male/female, m/f or
    /// 1/2 (en).
    #[arg(long, default_value_t = CorruptionRates::default().sex_format, help_heading = "Notation errors")]
    pub sex_format_rate: f64,
    /// Per hand-entered record: the address with hyphens, full-width digits or a kanji 丁目, the
    /// prefecture missing, or the postcode without hyphen (ja); the street type abbreviated, the
    /// postcode or state missing (en).
    #[arg(long, default_value_t = CorruptionRates::default().address_format, help_heading = "Notation errors")]
    pub address_format_rate: f64,

    /// Per insurer record: carries the valid number of another resident with the same kana name
    /// and sex.
    #[arg(long, default_value_t = LinkErrorRates::default().wrong_same_name, help_heading = "Identifier errors (registry-insurer)")]
    pub wrong_same_name_rate: f64,
    /// Per insurer record: carries the valid number of a family member at the same address.
    #[arg(long, default_value_t = LinkErrorRates::default().wrong_family, help_heading = "Identifier errors (registry-insurer)")]
    pub wrong_family_rate: f64,
    /// Per insurer record: carries the valid number of an unrelated resident.
    #[arg(long, default_value_t = LinkErrorRates::default().wrong_unrelated, help_heading = "Identifier errors (registry-insurer)")]
    pub wrong_unrelated_rate: f64,
    /// Per insurer record: the person's own number mistyped (a digit changed or two swapped) so
    /// that the check digit catches it.
    #[arg(long, default_value_t = LinkErrorRates::default().keying_error, help_heading = "Identifier errors (registry-insurer)")]
    pub keying_error_rate: f64,
    /// Per insured person: missing from the registry.
    #[arg(long, default_value_t = LinkErrorRates::default().unregistered, help_heading = "Identifier errors (registry-insurer)")]
    pub unregistered_rate: f64,
}

impl SynthArgs {
    fn config(&self) -> SynthConfig {
        SynthConfig {
            scenario: match self.scenario {
                ScenarioArg::RegistryInsurer => Scenario::RegistryInsurer,
                ScenarioArg::TwoHospitals => Scenario::TwoHospitals,
            },
            locale: match self.locale {
                LocaleArg::Ja => Locale::Japanese,
                LocaleArg::En => Locale::Latin,
            },
            persons: self.persons,
            overlap: self.overlap,
            seed: self.seed,
            corruption: CorruptionRates {
                kanji_variant: self.kanji_variant_rate,
                kana_variant: self.kana_variant_rate,
                date_format: self.date_format_rate,
                sex_format: self.sex_format_rate,
                address_format: self.address_format_rate,
            },
            link_errors: LinkErrorRates {
                wrong_same_name: self.wrong_same_name_rate,
                wrong_family: self.wrong_family_rate,
                wrong_unrelated: self.wrong_unrelated_rate,
                keying_error: self.keying_error_rate,
                unregistered: self.unregistered_rate,
            },
        }
    }
}

/// The three CSV files of a scenario, written atomically.
struct CsvSink {
    /// (file, path, writer), truth last.
    files: Vec<(OutputFile, PathBuf, csv::Writer<AtomicFile>)>,
}

impl CsvSink {
    fn create(config: &SynthConfig, dir: &Path) -> anyhow::Result<Self> {
        let mut files = Vec::new();
        for &file in OutputFile::of(config.scenario) {
            let path = dir.join(file.file_name());
            let mut writer = csv::WriterBuilder::new()
                .buffer_capacity(1 << 16)
                .from_writer(AtomicFile::create(&path)?);
            writer
                .write_record(columns(config.locale, file, config.scenario))
                .with_context(|| format!("cannot write {}", path.display()))?;
            files.push((file, path, writer));
        }
        Ok(Self { files })
    }

    fn writer(&mut self, file: OutputFile) -> anyhow::Result<&mut csv::Writer<AtomicFile>> {
        self.files
            .iter_mut()
            .find(|(f, _, _)| *f == file)
            .map(|(_, _, w)| w)
            .with_context(|| format!("{} is not part of this scenario", file.file_name()))
    }

    fn commit(self) -> anyhow::Result<()> {
        for (_, path, writer) in self.files {
            let file = writer
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("cannot write {}", path.display()))?;
            file.commit()?;
        }
        Ok(())
    }
}

impl RecordSink for CsvSink {
    type Error = anyhow::Error;

    fn record(&mut self, file: OutputFile, fields: &[String]) -> anyhow::Result<()> {
        self.writer(file)?
            .write_record(fields)
            .with_context(|| format!("cannot write {}", file.file_name()))
    }

    fn truth(&mut self, truth: &Truth) -> anyhow::Result<()> {
        self.writer(OutputFile::Truth)?
            .write_record(truth.fields())
            .context("cannot write truth.csv")
    }
}

/// Runs `blindlink synth`.
///
/// # Errors
/// An invalid rate or population size, an output directory that cannot be created, a failed
/// write; no file appears at its destination unless all were written.
pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    generate(&args.config(), &args.out)
}

/// Generates `config`'s population through the [`Generator`] into the CSV files of `out`
/// (created if missing) and prints the summary: `blindlink synth`, and `blindlink demo`'s
/// first step.
///
/// # Errors
/// As [`run`].
pub(crate) fn generate(config: &SynthConfig, out: &Path) -> anyhow::Result<()> {
    let mut generator = Generator::new(config.clone()).context("invalid synth arguments")?;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    let mut sink = CsvSink::create(config, out)?;

    let progress = if config.persons >= 100_000 {
        indicatif::ProgressBar::new(config.persons)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} persons ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    while generator.next_block(&mut sink)? {
        progress.set_position(generator.stats().persons);
    }
    progress.finish_and_clear();
    sink.commit()?;

    match print_summary(config, generator.stats(), out) {
        // A closed pipe (`blindlink synth ... | head`) is not a failure: the files are written.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("cannot print the summary")?,
    }
    Ok(())
}

fn print_summary(config: &SynthConfig, stats: &SynthStats, out: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let files = OutputFile::of(config.scenario);
    writeln!(
        stdout,
        "wrote {} ({} records), {} ({} records), {} ({} rows) to {}",
        files[0].file_name(),
        stats.first_records,
        files[1].file_name(),
        stats.second_records,
        files[2].file_name(),
        stats.truth_rows,
        out.display()
    )?;
    if config.scenario == Scenario::RegistryInsurer {
        let outcomes: Vec<String> = Outcome::ALL
            .iter()
            .map(|o| format!("{o} {}", stats.outcomes[o.ordinal()]))
            .collect();
        writeln!(stdout, "insurer records: {}", outcomes.join(", "))?;
    }
    writeln!(
        stdout,
        "hand-entered records with a corrupted field: {}",
        stats.corrupted_records
    )
}
