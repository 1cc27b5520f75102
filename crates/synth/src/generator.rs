//! The two-party scenarios: walks the population block by block, decides for each person which
//! files hold them and what went wrong with their identifier, formats and corrupts their
//! records, and hands the rows to a [`RecordSink`].
//!
//! Decisions about person `i` come from the stream `(seed, i)`, so whether a *different* person
//! is registered can be recomputed on the spot when choosing whose identifier to plant. The one
//! piece of state carried across blocks is the same-name index (kana surname, kana given name,
//! sex → the latest registered person with that name), bounded to [`SAME_NAME_CAPACITY`]
//! entries and cleared when full; it makes the output depend on the order of blocks, so blocks
//! are generated in order.

use std::collections::HashMap;

use blindlink_encoding::normalise::my_number::check_digit;

use crate::SynthError;
use crate::config::{LATIN_ID_DOMAIN, Locale, RECORD_ID_DOMAIN, Scenario, SynthConfig};
use crate::corrupt::{self, FIELDS};
use crate::population::{BLOCK_PERSONS, Person, PopulationModel, Tables};
use crate::records::{
    Corruption, InsurerTruth, Outcome, OutputFile, PairTruth, RecordSink, Truth, WrongPersonKind,
};
use crate::rng::{Domain, IndexPermutation, StreamRng};
use crate::tables::{JapaneseTables, LatinTables};

/// Bound on the same-name index: about 50 MB at most, whatever the population size.
pub const SAME_NAME_CAPACITY: usize = 1 << 20;

const MY_NUMBER_DOMAIN: u64 = 100_000_000_000;
/// My Number bodies come from a bijection on 0..2^36 (no cycle walking: 2^36 is a Feistel
/// domain), stretched onto 0..10^11 by `x * 10^11 / 2^36`; the stretch factor exceeds 1, so the
/// map stays injective, and 2^36 > 10^10 covers every population size allowed.
const MY_NUMBER_BITS: u32 = 36;

/// Hashes the same-name keys (already well-mixed integers) with one SplitMix64 finaliser instead
/// of SipHash: the index is private to the generator, so flooding resistance buys nothing.
#[derive(Debug, Clone, Copy, Default)]
struct NameKeyHasher(u64);

impl std::hash::Hasher for NameKeyHasher {
    fn finish(&self) -> u64 {
        crate::rng::mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

type SameNameIndex = HashMap<u64, u64, std::hash::BuildHasherDefault<NameKeyHasher>>;

/// Counts of what was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthStats {
    /// Persons walked through.
    pub persons: u64,
    /// Records of the first file (registry or hospital A).
    pub first_records: u64,
    /// Records of the second file (insurer or hospital B).
    pub second_records: u64,
    /// Rows of the truth.
    pub truth_rows: u64,
    /// Insurer records per outcome, in the order of [`Outcome::ALL`].
    pub outcomes: [u64; 6],
    /// Hand-entered records with at least one corrupted field.
    pub corrupted_records: u64,
}

/// A hand-entered record waiting for the block's shuffle.
#[derive(Debug, Default)]
struct PendingRecord {
    fields: [String; FIELDS],
    corruptions: Vec<Corruption>,
    person: u64,
    outcome: Option<Outcome>,
    number_owner: Option<u64>,
    registry_record_id: Option<String>,
}

/// Reusable records of one output file within a block.
#[derive(Debug, Default)]
struct PendingFile {
    records: Vec<PendingRecord>,
    len: usize,
    order: Vec<usize>,
}

impl PendingFile {
    fn next(&mut self) -> (usize, &mut PendingRecord) {
        if self.len == self.records.len() {
            self.records.push(PendingRecord::default());
        }
        let slot = self.len;
        self.len += 1;
        let record = &mut self.records[slot];
        record.corruptions.clear();
        (slot, record)
    }

    /// Shuffles the emission order of this block's records (Fisher–Yates), so that row order
    /// does not line up with the other file within a block.
    fn shuffle(&mut self, rng: &mut StreamRng) {
        self.order.clear();
        self.order.extend(0..self.len);
        for i in (1..self.order.len()).rev() {
            let j = rng.index(i + 1);
            self.order.swap(i, j);
        }
    }
}

/// Generates one data set; see the crate documentation.
#[derive(Debug)]
pub struct Generator {
    config: SynthConfig,
    model: PopulationModel,
    identifiers: IndexPermutation,
    first_ids: IndexPermutation,
    second_ids: IndexPermutation,
    same_name: SameNameIndex,
    /// Planned wrong-person links (same-name, family, unrelated) not yet placed.
    owed_wrong_persons: [u64; 3],
    next_block: u64,
    persons: Vec<Person>,
    first: PendingFile,
    second: PendingFile,
    pairs: Vec<(u64, usize, usize)>,
    registry_fields: [String; FIELDS],
    stats: SynthStats,
}

impl Generator {
    /// A generator for `config`.
    ///
    /// # Errors
    /// The configuration is invalid ([`SynthConfig::validate`]), or a shipped table does not
    /// parse ([`SynthError::Table`], a build defect).
    ///
    /// # Example
    /// ```
    /// use blindlink_synth::{Generator, Locale, OutputFile, RecordSink, Scenario, SynthConfig, Truth};
    ///
    /// struct Count(usize);
    /// impl RecordSink for Count {
    ///     type Error = std::convert::Infallible;
    ///     fn record(&mut self, _: OutputFile, _: &[String]) -> Result<(), Self::Error> {
    ///         self.0 += 1;
    ///         Ok(())
    ///     }
    ///     fn truth(&mut self, _: &Truth) -> Result<(), Self::Error> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let config = SynthConfig::new(Scenario::RegistryInsurer, Locale::Japanese, 100, 0.5, 7);
    /// let mut sink = Count(0);
    /// let stats = Generator::new(config)?.run(&mut sink).unwrap();
    /// assert_eq!(sink.0 as u64, stats.first_records + stats.second_records);
    /// # Ok::<(), blindlink_synth::SynthError>(())
    /// ```
    pub fn new(config: SynthConfig) -> Result<Self, SynthError> {
        config.validate()?;
        let tables = match config.locale {
            Locale::Japanese => Tables::Japanese(Box::new(JapaneseTables::load()?)),
            Locale::Latin => Tables::Latin(Box::new(LatinTables::load()?)),
        };
        let identifier_domain = match config.locale {
            Locale::Japanese => 1 << MY_NUMBER_BITS,
            Locale::Latin => LATIN_ID_DOMAIN,
        };
        Ok(Self {
            model: PopulationModel::new(config.seed, config.persons, tables),
            identifiers: IndexPermutation::new(config.seed, 1, identifier_domain),
            first_ids: IndexPermutation::new(config.seed, 2, RECORD_ID_DOMAIN),
            second_ids: IndexPermutation::new(config.seed, 3, RECORD_ID_DOMAIN),
            same_name: SameNameIndex::default(),
            owed_wrong_persons: [0; 3],
            next_block: 0,
            persons: Vec::with_capacity(BLOCK_PERSONS as usize),
            first: PendingFile::default(),
            second: PendingFile::default(),
            pairs: Vec::new(),
            registry_fields: Default::default(),
            stats: SynthStats::default(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// Counts so far.
    pub fn stats(&self) -> &SynthStats {
        &self.stats
    }

    /// Generates everything.
    ///
    /// # Errors
    /// The first error of the sink.
    pub fn run<S: RecordSink>(mut self, sink: &mut S) -> Result<SynthStats, S::Error> {
        while self.next_block(sink)? {}
        Ok(self.stats)
    }

    /// Generates the next block of 4,096 persons (in order); false when all are done.
    ///
    /// # Errors
    /// The first error of the sink.
    pub fn next_block<S: RecordSink>(&mut self, sink: &mut S) -> Result<bool, S::Error> {
        if self.next_block >= self.model.block_count() {
            return Ok(false);
        }
        let block = self.next_block;
        self.next_block += 1;
        let mut persons = std::mem::take(&mut self.persons);
        self.model.block(block, &mut persons);
        let result = match self.config.scenario {
            Scenario::RegistryInsurer => self.registry_insurer_block(block, &persons, sink),
            Scenario::TwoHospitals => self.two_hospitals_block(block, &persons, sink),
        };
        self.stats.persons += persons.len() as u64;
        self.persons = persons;
        result.map(|()| true)
    }

    /// The stream of person `index` after its membership draws: (stream, in first file, in
    /// second file).
    fn membership(&self, index: u64) -> (StreamRng, bool, bool) {
        let mut rng = StreamRng::new(self.config.seed, Domain::Person, index);
        let (a, b) = (rng.unit(), rng.unit());
        match self.config.scenario {
            Scenario::RegistryInsurer => {
                let insured = a < self.config.overlap;
                let unregistered = insured && b < self.config.link_errors.unregistered;
                (rng, !unregistered, insured)
            }
            Scenario::TwoHospitals => {
                let both = a < self.config.overlap;
                (rng, both || b < 0.5, both || b >= 0.5)
            }
        }
    }

    fn registry_record_id(&self, index: u64) -> String {
        format!("R{:010}", self.first_ids.apply(index))
    }

    fn is_registered(&self, index: u64) -> bool {
        self.membership(index).1
    }

    /// The identifier (My Number or national id) of person `index`.
    fn identifier(&self, index: u64, out: &mut String) {
        out.clear();
        let body = self.identifiers.apply(index);
        match self.config.locale {
            Locale::Japanese => {
                let stretched = (u128::from(body) * u128::from(MY_NUMBER_DOMAIN)) >> MY_NUMBER_BITS;
                let mut digits = [0u8; 11];
                let mut rest = stretched as u64;
                for d in digits.iter_mut().rev() {
                    *d = (rest % 10) as u8;
                    rest /= 10;
                }
                out.extend(digits.iter().map(|&d| char::from(b'0' + d)));
                out.push(char::from(b'0' + check_digit(&digits)));
            }
            Locale::Latin => {
                let mut digits = [0u8; 8];
                let mut rest = body;
                for d in digits.iter_mut().rev() {
                    *d = (rest % 10) as u8;
                    rest /= 10;
                }
                out.extend(digits.iter().map(|&d| char::from(b'0' + d)));
                out.push(char::from(b'0' + luhn_check_digit(&digits)));
            }
        }
    }

    /// Whether the digits form a valid identifier of this locale.
    fn identifier_is_valid(&self, digits: &[u8]) -> bool {
        match (self.config.locale, digits.split_last()) {
            (Locale::Japanese, Some((&check, body))) => {
                <&[u8; 11]>::try_from(body).is_ok_and(|body| check_digit(body) == check)
            }
            (Locale::Latin, Some((&check, body))) => luhn_check_digit(body) == check,
            _ => false,
        }
    }

    /// Mistypes an identifier (a substituted digit or two swapped neighbours) so that its check
    /// digit no longer matches, and names the mistake.
    fn mistype(&self, rng: &mut StreamRng, number: &mut String) -> &'static str {
        let digits: Vec<u8> = number.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        let len = digits.len();
        for _ in 0..32 {
            let mut typed = digits.clone();
            let kind = if rng.chance(0.7) {
                let at = rng.index(len);
                typed[at] = (typed[at] + 1 + rng.below(9) as u8) % 10;
                "substituted-digit"
            } else {
                let at = rng.index(len - 1);
                typed.swap(at, at + 1);
                "transposed-digits"
            };
            if typed != digits && !self.identifier_is_valid(&typed) {
                *number = typed.iter().map(|&d| char::from(b'0' + d)).collect();
                return kind;
            }
        }
        // A changed check digit is always caught.
        let mut typed = digits;
        typed[len - 1] = (typed[len - 1] + 1) % 10;
        *number = typed.iter().map(|&d| char::from(b'0' + d)).collect();
        "substituted-digit"
    }

    fn name_key(&self, person: &Person) -> u64 {
        let (surname, given) = match &self.model.tables {
            Tables::Japanese(t) => (
                t.surnames.names[person.surname as usize].reading_id,
                t.given[person.sex as usize].names[person.given as usize].reading_id,
            ),
            Tables::Latin(t) => (
                t.surnames.names[person.surname as usize].reading_id,
                t.given[person.sex as usize].names[person.given as usize].reading_id,
            ),
        };
        (u64::from(surname) << 32) | (u64::from(given) << 1) | person.sex as u64
    }

    fn family_member(
        &self,
        person: &Person,
        block_start: u64,
        persons: &[Person],
        rng: &mut StreamRng,
    ) -> Option<u64> {
        let start = person.household_start;
        let members: Vec<u64> = (start..start + u64::from(person.household_size))
            .filter(|&j| j != person.index && self.is_registered(j))
            .collect();
        debug_assert!(
            members
                .iter()
                .all(|&j| ((j - block_start) as usize) < persons.len())
        );
        (!members.is_empty()).then(|| members[rng.index(members.len())])
    }

    fn unrelated_resident(&self, person: &Person, rng: &mut StreamRng) -> Option<u64> {
        let household =
            person.household_start..person.household_start + u64::from(person.household_size);
        (0..16)
            .map(|_| rng.below(self.config.persons))
            .find(|&j| !household.contains(&j) && self.is_registered(j))
    }

    fn wrong_person(
        &self,
        kind: WrongPersonKind,
        person: &Person,
        block_start: u64,
        persons: &[Person],
        rng: &mut StreamRng,
    ) -> Option<u64> {
        match kind {
            WrongPersonKind::SameName => self
                .same_name
                .get(&self.name_key(person))
                .copied()
                .filter(|&j| j != person.index),
            WrongPersonKind::Family => self.family_member(person, block_start, persons, rng),
            WrongPersonKind::Unrelated => self.unrelated_resident(person, rng),
        }
    }

    /// Chooses what goes wrong with a person's identifier. A planned wrong-person link that
    /// finds no such resident (nobody of the same name seen yet, a one-person household) is
    /// owed: the next insured person who has such a resident gets it instead. The configured
    /// rates are thus met, and the links fall on people with common names and families, as
    /// real mislinks do.
    fn outcome(
        &mut self,
        person: &Person,
        block_start: u64,
        persons: &[Person],
        registered: bool,
        rng: &mut StreamRng,
    ) -> (Outcome, Option<u64>) {
        if !registered {
            return (Outcome::Unregistered, Some(person.index));
        }
        let l = &self.config.link_errors;
        let u = rng.unit();
        let thresholds = [
            l.wrong_same_name,
            l.wrong_same_name + l.wrong_family,
            l.wrong_same_name + l.wrong_family + l.wrong_unrelated,
            l.wrong_same_name + l.wrong_family + l.wrong_unrelated + l.keying_error,
        ];
        let kinds = [
            WrongPersonKind::SameName,
            WrongPersonKind::Family,
            WrongPersonKind::Unrelated,
        ];
        if u < thresholds[2] {
            let planned = thresholds.iter().position(|&t| u < t).unwrap_or(2);
            let kind = kinds[planned];
            if let Some(j) = self.wrong_person(kind, person, block_start, persons, rng) {
                return (Outcome::WrongPerson(kind), Some(j));
            }
            self.owed_wrong_persons[planned] += 1;
            return (Outcome::Correct, Some(person.index));
        }
        if u < thresholds[3] {
            return (Outcome::KeyingError, None);
        }
        for (owed, kind) in kinds.into_iter().enumerate() {
            if self.owed_wrong_persons[owed] > 0
                && let Some(j) = self.wrong_person(kind, person, block_start, persons, rng)
            {
                self.owed_wrong_persons[owed] -= 1;
                return (Outcome::WrongPerson(kind), Some(j));
            }
        }
        (Outcome::Correct, Some(person.index))
    }

    fn corrupt(&self, person: &Person, rng: &mut StreamRng, record: &mut PendingRecord) {
        match &self.model.tables {
            Tables::Japanese(_) => corrupt::corrupt_japanese(
                person,
                &self.config.corruption,
                rng,
                &mut record.fields,
                &mut record.corruptions,
            ),
            Tables::Latin(t) => corrupt::corrupt_latin(
                t,
                person,
                &self.config.corruption,
                rng,
                &mut record.fields,
                &mut record.corruptions,
            ),
        }
    }

    fn registry_insurer_block<S: RecordSink>(
        &mut self,
        block: u64,
        persons: &[Person],
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let block_start = block * BLOCK_PERSONS;
        let mut number = String::with_capacity(12);
        let mut insurer = std::mem::take(&mut self.second);
        insurer.len = 0;
        for person in persons {
            let (mut rng, registered, insured) = self.membership(person.index);
            let key = self.name_key(person);
            if insured {
                let (outcome, owner) =
                    self.outcome(person, block_start, persons, registered, &mut rng);
                let id = format!("I{:010}", self.second_ids.apply(person.index));
                self.identifier(owner.unwrap_or(person.index), &mut number);
                let (_, record) = insurer.next();
                corrupt::canonical(&self.model.tables, person, &id, &number, &mut record.fields);
                let mut corruption_rng =
                    StreamRng::new(self.config.seed, Domain::CorruptFirst, person.index);
                self.corrupt(person, &mut corruption_rng, record);
                if outcome == Outcome::KeyingError {
                    let kind = self.mistype(&mut corruption_rng, &mut record.fields[1]);
                    let field = match self.config.locale {
                        Locale::Japanese => "my_number",
                        Locale::Latin => "national_id",
                    };
                    record.corruptions.push(Corruption { field, kind });
                }
                record.person = person.index;
                record.outcome = Some(outcome);
                record.number_owner = owner;
                record.registry_record_id =
                    registered.then(|| self.registry_record_id(person.index));
            }
            if registered {
                let id = self.registry_record_id(person.index);
                self.identifier(person.index, &mut number);
                let mut fields = std::mem::take(&mut self.registry_fields);
                corrupt::canonical(&self.model.tables, person, &id, &number, &mut fields);
                let written = sink.record(OutputFile::Registry, &fields);
                self.registry_fields = fields;
                written?;
                self.stats.first_records += 1;
                if self.same_name.len() >= SAME_NAME_CAPACITY {
                    self.same_name.clear();
                }
                self.same_name.insert(key, person.index);
            }
        }
        let mut shuffle = StreamRng::new(self.config.seed, Domain::Shuffle, block);
        insurer.shuffle(&mut shuffle);
        let result = self.emit_insurer(&insurer, sink);
        self.second = insurer;
        result
    }

    fn emit_insurer<S: RecordSink>(
        &mut self,
        insurer: &PendingFile,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        for &slot in &insurer.order {
            let record = &insurer.records[slot];
            sink.record(OutputFile::Insurer, &record.fields)?;
            let outcome = record.outcome.unwrap_or(Outcome::Correct);
            let truth = Truth::Insurer(InsurerTruth {
                insurer_record_id: record.fields[0].clone(),
                person_id: record.person,
                registry_record_id: record.registry_record_id.clone(),
                outcome,
                number_owner_person_id: record.number_owner,
                corruptions: record.corruptions.clone(),
            });
            sink.truth(&truth)?;
            self.stats.second_records += 1;
            self.stats.truth_rows += 1;
            self.stats.outcomes[outcome.ordinal()] += 1;
            self.stats.corrupted_records += u64::from(!record.corruptions.is_empty());
        }
        Ok(())
    }

    fn two_hospitals_block<S: RecordSink>(
        &mut self,
        block: u64,
        persons: &[Person],
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let mut a = std::mem::take(&mut self.first);
        let mut b = std::mem::take(&mut self.second);
        let mut pairs = std::mem::take(&mut self.pairs);
        a.len = 0;
        b.len = 0;
        pairs.clear();
        for person in persons {
            let (_, in_a, in_b) = self.membership(person.index);
            let mut slots = [0usize; 2];
            for (side, (file, wanted)) in [(&mut a, in_a), (&mut b, in_b)].into_iter().enumerate() {
                if !wanted {
                    continue;
                }
                let (prefix, ids, domain) = if side == 0 {
                    ('A', &self.first_ids, Domain::CorruptFirst)
                } else {
                    ('B', &self.second_ids, Domain::CorruptSecond)
                };
                let id = format!("{prefix}{:010}", ids.apply(person.index));
                let (slot, record) = file.next();
                corrupt::canonical(&self.model.tables, person, &id, "", &mut record.fields);
                let mut rng = StreamRng::new(self.config.seed, domain, person.index);
                self.corrupt(person, &mut rng, record);
                // No shared identifier: drop the column (it is position 1) by moving it last.
                record.fields[1..].rotate_left(1);
                record.person = person.index;
                slots[side] = slot;
            }
            if in_a && in_b {
                pairs.push((person.index, slots[0], slots[1]));
            }
        }
        let mut shuffle = StreamRng::new(self.config.seed, Domain::Shuffle, block);
        a.shuffle(&mut shuffle);
        b.shuffle(&mut shuffle);
        let result = (|| {
            for (file, pending) in [(OutputFile::HospitalA, &a), (OutputFile::HospitalB, &b)] {
                for &slot in &pending.order {
                    let record = &pending.records[slot];
                    sink.record(file, &record.fields[..FIELDS - 1])?;
                    self.stats.corrupted_records += u64::from(!record.corruptions.is_empty());
                }
            }
            for &(person, slot_a, slot_b) in &pairs {
                let (ra, rb) = (&a.records[slot_a], &b.records[slot_b]);
                sink.truth(&Truth::Pair(PairTruth {
                    hospital_a_record_id: ra.fields[0].clone(),
                    hospital_b_record_id: rb.fields[0].clone(),
                    person_id: person,
                    hospital_a_corruptions: ra.corruptions.clone(),
                    hospital_b_corruptions: rb.corruptions.clone(),
                }))?;
            }
            Ok(())
        })();
        self.stats.first_records += a.len as u64;
        self.stats.second_records += b.len as u64;
        self.stats.truth_rows += pairs.len() as u64;
        self.first = a;
        self.second = b;
        self.pairs = pairs;
        result
    }
}

/// The Luhn check digit of `body` (the en national identifier's last digit).
pub(crate) fn luhn_check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}
