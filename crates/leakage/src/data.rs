//! The two files an attack is run on, from `blindlink-synth`'s two-hospitals scenario: the
//! *victim* file (hospital B), whose encodings the attacker holds, and the *reference* file
//! (hospital A), the plaintext the attacker matches them against. The overlap of the two is
//! the synth `overlap`, and the ground truth says which records describe the same person.

use std::collections::HashMap;

use blindlink_synth::{
    Generator, Locale, OutputFile, RecordSink, Scenario, SynthConfig, Truth, columns,
};

use crate::LeakageError;

/// The quasi-identifier columns of every [`Table`], in order, for a locale.
#[must_use]
pub fn quasi_identifiers(locale: Locale) -> [&'static str; 5] {
    match locale {
        Locale::Japanese => ["name_kana", "name_kanji", "date_of_birth", "sex", "address"],
        Locale::Latin => ["given_name", "surname", "date_of_birth", "sex", "address"],
    }
}

/// One party's records as quasi-identifier values (in the order of [`quasi_identifiers`]),
/// with the person each record describes when it is in both files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The column names.
    pub columns: Vec<&'static str>,
    /// One row per record.
    pub rows: Vec<Vec<String>>,
    /// The person of each row if that person is in the other file too, else `None`.
    pub person: Vec<Option<u64>>,
}

impl Table {
    /// The rows as string slices, ready for `ClkEncoder::encode`.
    #[must_use]
    pub fn row(&self, index: usize) -> Vec<&str> {
        self.rows[index].iter().map(String::as_str).collect()
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The column's index.
    #[must_use]
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| *c == name)
    }
}

/// The victim's and the attacker's files with their ground truth.
#[derive(Debug, Clone)]
pub struct LinkedFiles {
    /// Locale of the names and addresses.
    pub locale: Locale,
    /// The plaintext the attacker holds (hospital A).
    pub reference: Table,
    /// The file whose encodings are attacked (hospital B).
    pub victim: Table,
}

impl LinkedFiles {
    /// Generates `persons` persons of `locale` with `overlap` of them in both files (the
    /// others split between the two), from `seed`.
    ///
    /// # Errors
    /// [`LeakageError::Synth`] for sizes or rates the generator refuses.
    ///
    /// # Example
    /// ```
    /// use blindlink_leakage::LinkedFiles;
    /// use blindlink_synth::Locale;
    /// let files = LinkedFiles::generate(Locale::Japanese, 200, 1.0, 7)?;
    /// assert_eq!(files.reference.columns, ["name_kana", "name_kanji", "date_of_birth", "sex", "address"]);
    /// assert!(files.true_pairs().len() > 150);
    /// # Ok::<(), blindlink_leakage::LeakageError>(())
    /// ```
    pub fn generate(
        locale: Locale,
        persons: u64,
        overlap: f64,
        seed: u64,
    ) -> Result<Self, LeakageError> {
        let config = SynthConfig::new(Scenario::TwoHospitals, locale, persons, overlap, seed);
        let mut sink = Collect::new(locale)?;
        Generator::new(config)?.run(&mut sink)?;
        Ok(Self {
            locale,
            reference: sink.a.finish(&sink.person_of),
            victim: sink.b.finish(&sink.person_of),
        })
    }

    /// The victim's and the attacker's records from a name-count table: a CSV with the header
    /// `source,given_name,surname,count`, `source` being `victim` or `attacker`, one line per
    /// distinct pair of names and source. Each line becomes `count` records of en columns
    /// ([`quasi_identifiers`]) whose date of birth, sex and address are empty. The two sources
    /// are different persons (no true pairs): the setting of the frequency and pattern-mining
    /// attacks, where the attacker's plaintext is another sample of the same population.
    ///
    /// # Errors
    /// [`LeakageError::NameTable`] for a wrong header, a line without four fields, an unknown
    /// source, a count that is not a positive integer, or a total above 1,000,000 records.
    ///
    /// # Example
    /// ```
    /// use blindlink_leakage::LinkedFiles;
    /// let files = LinkedFiles::from_name_counts(
    ///     "source,given_name,surname,count\nvictim,anna,white,2\nattacker,jack,white,1\n",
    /// )?;
    /// assert_eq!((files.victim.len(), files.reference.len()), (2, 1));
    /// assert_eq!(files.victim.rows[1][..2], ["anna", "white"]);
    /// # Ok::<(), blindlink_leakage::LeakageError>(())
    /// ```
    pub fn from_name_counts(csv: &str) -> Result<Self, LeakageError> {
        const HEADER: &str = "source,given_name,surname,count";
        const MAX_RECORDS: usize = 1_000_000;
        let bad = |line: usize, reason: String| LeakageError::NameTable { line, reason };
        let mut lines = csv.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim_end() == HEADER => {}
            _ => return Err(bad(1, format!("the header must be '{HEADER}'"))),
        }
        let empty = |columns: &[&'static str]| Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
            person: Vec::new(),
        };
        let columns = quasi_identifiers(Locale::Latin);
        let (mut victim, mut reference) = (empty(&columns), empty(&columns));
        let mut total = 0usize;
        for (i, line) in lines {
            let line_no = i + 1;
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            let [source, given, surname, count] = fields[..] else {
                return Err(bad(
                    line_no,
                    format!("expected 4 fields, found {}", fields.len()),
                ));
            };
            let table = match source {
                "victim" => &mut victim,
                "attacker" => &mut reference,
                other => {
                    return Err(bad(
                        line_no,
                        format!("source '{other}' is neither 'victim' nor 'attacker'"),
                    ));
                }
            };
            let count: usize = match count.parse() {
                Ok(c) if c > 0 => c,
                _ => {
                    return Err(bad(
                        line_no,
                        format!("count '{count}' is not a positive integer"),
                    ));
                }
            };
            total = total.saturating_add(count);
            if total > MAX_RECORDS {
                return Err(bad(
                    line_no,
                    format!("more than {MAX_RECORDS} records in the table"),
                ));
            }
            for _ in 0..count {
                let mut row = vec![String::new(); columns.len()];
                row[0] = given.to_owned();
                row[1] = surname.to_owned();
                table.rows.push(row);
                table.person.push(None);
            }
        }
        Ok(Self {
            locale: Locale::Latin,
            reference,
            victim,
        })
    }

    /// The FEBRL data sets' names ([`Self::from_name_counts`] of
    /// `crates/leakage/data/febrl_names.csv`, made by `scripts/leakage/febrl_names.py`):
    /// the victim holds the 5,000 original records of FEBRL data set 4a, the attacker the
    /// 6,500 original records of data sets 1-3, names drawn by the FEBRL generator from
    /// Australian name frequency tables.
    ///
    /// # Errors
    /// None in practice (the table is compiled in and tested); [`LeakageError::NameTable`]
    /// if it were malformed.
    pub fn febrl_names() -> Result<Self, LeakageError> {
        Self::from_name_counts(include_str!("../data/febrl_names.csv"))
    }

    /// The true pairs `(reference index, victim index)`.
    #[must_use]
    pub fn true_pairs(&self) -> Vec<(usize, usize)> {
        let by_person: HashMap<u64, usize> = self
            .reference
            .person
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (p, i)))
            .collect();
        self.victim
            .person
            .iter()
            .enumerate()
            .filter_map(|(j, p)| p.and_then(|p| by_person.get(&p)).map(|&i| (i, j)))
            .collect()
    }

    /// Whether reference record `r` and victim record `v` describe the same person.
    #[must_use]
    pub fn same_person(&self, r: usize, v: usize) -> bool {
        matches!((self.reference.person[r], self.victim.person[v]), (Some(a), Some(b)) if a == b)
    }
}

/// How a quasi-identifier is built from the generated columns.
enum Source {
    Column(usize),
    Joined(Vec<usize>, &'static str),
}

struct Builder {
    sources: Vec<Source>,
    columns: Vec<&'static str>,
    ids: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Builder {
    fn new(locale: Locale, file: OutputFile) -> Result<Self, LeakageError> {
        let header = columns(locale, file, Scenario::TwoHospitals);
        let at = |name: &'static str| {
            header
                .iter()
                .position(|h| *h == name)
                .ok_or(LeakageError::MissingColumn(name))
        };
        let sources = match locale {
            Locale::Japanese => vec![
                Source::Joined(vec![at("surname_kana")?, at("given_name_kana")?], " "),
                Source::Joined(vec![at("surname_kanji")?, at("given_name_kanji")?], ""),
                Source::Column(at("date_of_birth")?),
                Source::Column(at("sex")?),
                Source::Joined(vec![at("prefecture")?, at("city")?, at("address")?], ""),
            ],
            Locale::Latin => vec![
                Source::Column(at("given_name")?),
                Source::Column(at("surname")?),
                Source::Column(at("date_of_birth")?),
                Source::Column(at("sex")?),
                Source::Joined(
                    vec![at("street_number")?, at("address_1")?, at("suburb")?],
                    " ",
                ),
            ],
        };
        at("record_id")?;
        Ok(Self {
            sources,
            columns: quasi_identifiers(locale).to_vec(),
            ids: Vec::new(),
            rows: Vec::new(),
        })
    }

    fn push(&mut self, fields: &[String]) {
        // record_id is the first column of every generated record file.
        self.ids.push(fields[0].clone());
        let get = |i: usize| fields.get(i).map_or("", String::as_str);
        self.rows.push(
            self.sources
                .iter()
                .map(|s| match s {
                    Source::Column(i) => get(*i).to_owned(),
                    Source::Joined(parts, sep) => parts
                        .iter()
                        .map(|&i| get(i))
                        .filter(|p| !p.is_empty())
                        .collect::<Vec<_>>()
                        .join(sep),
                })
                .collect(),
        );
    }

    fn finish(self, person_of: &HashMap<String, u64>) -> Table {
        Table {
            person: self
                .ids
                .iter()
                .map(|id| person_of.get(id).copied())
                .collect(),
            columns: self.columns,
            rows: self.rows,
        }
    }
}

struct Collect {
    a: Builder,
    b: Builder,
    person_of: HashMap<String, u64>,
}

impl Collect {
    fn new(locale: Locale) -> Result<Self, LeakageError> {
        Ok(Self {
            a: Builder::new(locale, OutputFile::HospitalA)?,
            b: Builder::new(locale, OutputFile::HospitalB)?,
            person_of: HashMap::new(),
        })
    }
}

impl RecordSink for Collect {
    type Error = LeakageError;

    fn record(&mut self, file: OutputFile, fields: &[String]) -> Result<(), LeakageError> {
        match file {
            OutputFile::HospitalA => self.a.push(fields),
            OutputFile::HospitalB => self.b.push(fields),
            _ => {}
        }
        Ok(())
    }

    fn truth(&mut self, truth: &Truth) -> Result<(), LeakageError> {
        if let Truth::Pair(pair) = truth {
            // Record ids are unique across the two hospital files (one keyed permutation).
            self.person_of
                .insert(pair.hospital_a_record_id.clone(), pair.person_id);
            self.person_of
                .insert(pair.hospital_b_record_id.clone(), pair.person_id);
        }
        Ok(())
    }
}
