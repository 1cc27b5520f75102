//! The rows handed to a [`RecordSink`]: record fields aligned with [`columns`], and the ground
//! truth of each record.

use std::fmt;

use crate::config::{Locale, Scenario};

/// The files of a generated data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFile {
    /// `registry.csv`: the authoritative registry, canonical notation.
    Registry,
    /// `insurer.csv`: the insurer's hand-entered records.
    Insurer,
    /// `hospital_a.csv`.
    HospitalA,
    /// `hospital_b.csv`.
    HospitalB,
    /// `truth.csv`.
    Truth,
}

impl OutputFile {
    /// The file name the CLI writes.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Registry => "registry.csv",
            Self::Insurer => "insurer.csv",
            Self::HospitalA => "hospital_a.csv",
            Self::HospitalB => "hospital_b.csv",
            Self::Truth => "truth.csv",
        }
    }

    /// The files of a scenario, truth last.
    pub fn of(scenario: Scenario) -> &'static [OutputFile] {
        match scenario {
            Scenario::RegistryInsurer => &[Self::Registry, Self::Insurer, Self::Truth],
            Scenario::TwoHospitals => &[Self::HospitalA, Self::HospitalB, Self::Truth],
        }
    }
}

const JA_COLUMNS: [&str; 12] = [
    "record_id",
    "my_number",
    "surname_kanji",
    "given_name_kanji",
    "surname_kana",
    "given_name_kana",
    "date_of_birth",
    "sex",
    "postcode",
    "prefecture",
    "city",
    "address",
];
const EN_COLUMNS: [&str; 12] = [
    "record_id",
    "national_id",
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "sex",
];
const INSURER_TRUTH_COLUMNS: [&str; 6] = [
    "insurer_record_id",
    "person_id",
    "registry_record_id",
    "outcome",
    "number_owner_person_id",
    "corrupted_fields",
];
const PAIR_TRUTH_COLUMNS: [&str; 5] = [
    "hospital_a_record_id",
    "hospital_b_record_id",
    "person_id",
    "hospital_a_corrupted_fields",
    "hospital_b_corrupted_fields",
];

/// The header of `file` (hospital files have no identifier column).
pub fn columns(locale: Locale, file: OutputFile, scenario: Scenario) -> Vec<&'static str> {
    let all: &[&str] = match (file, scenario, locale) {
        (OutputFile::Truth, Scenario::RegistryInsurer, _) => &INSURER_TRUTH_COLUMNS,
        (OutputFile::Truth, Scenario::TwoHospitals, _) => &PAIR_TRUTH_COLUMNS,
        (_, _, Locale::Japanese) => &JA_COLUMNS,
        (_, _, Locale::Latin) => &EN_COLUMNS,
    };
    let mut columns = all.to_vec();
    if matches!(file, OutputFile::HospitalA | OutputFile::HospitalB) {
        columns.remove(1);
    }
    columns
}

/// Which wrong person's identifier an insurer record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrongPersonKind {
    /// Another resident with the same kana name and sex.
    SameName,
    /// Another member of the same household.
    Family,
    /// An unrelated resident.
    Unrelated,
}

/// What was done to an insurer record's identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The person's own identifier.
    Correct,
    /// Another resident's valid identifier.
    WrongPerson(WrongPersonKind),
    /// The person's own identifier mistyped; the check digit catches it.
    KeyingError,
    /// The person's own identifier, but the person is not in the registry.
    Unregistered,
}

impl Outcome {
    /// Every outcome, in the order of [`crate::SynthStats::outcomes`].
    pub const ALL: [Outcome; 6] = [
        Outcome::Correct,
        Outcome::WrongPerson(WrongPersonKind::SameName),
        Outcome::WrongPerson(WrongPersonKind::Family),
        Outcome::WrongPerson(WrongPersonKind::Unrelated),
        Outcome::KeyingError,
        Outcome::Unregistered,
    ];

    /// Position in [`Outcome::ALL`].
    pub fn ordinal(self) -> usize {
        match self {
            Outcome::Correct => 0,
            Outcome::WrongPerson(WrongPersonKind::SameName) => 1,
            Outcome::WrongPerson(WrongPersonKind::Family) => 2,
            Outcome::WrongPerson(WrongPersonKind::Unrelated) => 3,
            Outcome::KeyingError => 4,
            Outcome::Unregistered => 5,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Correct => "correct",
            Outcome::WrongPerson(WrongPersonKind::SameName) => "wrong-person:same-name",
            Outcome::WrongPerson(WrongPersonKind::Family) => "wrong-person:family",
            Outcome::WrongPerson(WrongPersonKind::Unrelated) => "wrong-person:unrelated",
            Outcome::KeyingError => "keying-error",
            Outcome::Unregistered => "unregistered",
        })
    }
}

/// One field written differently from the registry, as `field:kind` (`date_of_birth:era-kanji`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Corruption {
    /// The column (or `kana_name` for both kana columns at once).
    pub field: &'static str,
    /// What was done.
    pub kind: &'static str,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.field, self.kind)
    }
}

/// The truth about one insurer record.
#[derive(Debug, Clone, PartialEq)]
pub struct InsurerTruth {
    /// The insurer record.
    pub insurer_record_id: String,
    /// The person it describes (index in the population).
    pub person_id: u64,
    /// The registry record of that person, if registered.
    pub registry_record_id: Option<String>,
    /// What was done to its identifier.
    pub outcome: Outcome,
    /// Whose valid identifier it carries (none for a keying error).
    pub number_owner_person_id: Option<u64>,
    /// Fields written differently from the registry.
    pub corruptions: Vec<Corruption>,
}

/// A true pair of hospital records.
#[derive(Debug, Clone, PartialEq)]
pub struct PairTruth {
    /// The record in hospital A.
    pub hospital_a_record_id: String,
    /// The record in hospital B.
    pub hospital_b_record_id: String,
    /// The person both describe.
    pub person_id: u64,
    /// Fields of the A record written differently from the canonical form.
    pub hospital_a_corruptions: Vec<Corruption>,
    /// Fields of the B record written differently from the canonical form.
    pub hospital_b_corruptions: Vec<Corruption>,
}

/// A row of `truth.csv`.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// registry–insurer: one per insurer record.
    Insurer(InsurerTruth),
    /// two-hospitals: one per true pair.
    Pair(PairTruth),
}

fn join(corruptions: &[Corruption]) -> String {
    let parts: Vec<String> = corruptions.iter().map(ToString::to_string).collect();
    parts.join(";")
}

impl Truth {
    /// The row's fields, aligned with the truth columns of [`columns`].
    pub fn fields(&self) -> Vec<String> {
        match self {
            Truth::Insurer(t) => vec![
                t.insurer_record_id.clone(),
                t.person_id.to_string(),
                t.registry_record_id.clone().unwrap_or_default(),
                t.outcome.to_string(),
                t.number_owner_person_id
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                join(&t.corruptions),
            ],
            Truth::Pair(t) => vec![
                t.hospital_a_record_id.clone(),
                t.hospital_b_record_id.clone(),
                t.person_id.to_string(),
                join(&t.hospital_a_corruptions),
                join(&t.hospital_b_corruptions),
            ],
        }
    }
}

/// Receives generated rows. The generator never does I/O: the caller decides where rows go
/// (CSV files in the CLI, vectors in tests, nowhere in benchmarks).
pub trait RecordSink {
    /// What a failed write reports.
    type Error;

    /// One record of `file`, its fields aligned with [`columns`].
    ///
    /// # Errors
    /// Whatever the sink fails with; generation stops.
    fn record(&mut self, file: OutputFile, fields: &[String]) -> Result<(), Self::Error>;

    /// One row of the truth.
    ///
    /// # Errors
    /// Whatever the sink fails with; generation stops.
    fn truth(&mut self, truth: &Truth) -> Result<(), Self::Error>;
}
