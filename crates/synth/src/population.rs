//! The population: persons laid out in blocks of [`BLOCK_PERSONS`] consecutive indices, each
//! block filled with households drawn from its own random stream. Person `i` is therefore a
//! function of `(seed, i / BLOCK_PERSONS)` only: any block can be regenerated on its own, and a
//! run never holds more than one block of persons.
//!
//! A household shares a surname and an address: one adult alone, or a couple (the spouse of the
//! opposite sex, within five years of age) with children 20 to 45 years younger than the younger
//! parent. Ages come from a simplified 2020 Japanese census pyramid; household sizes from the 2020
//! census (ja) or the 2021 Australian census (en), both rounded.

use crate::date::Date;
use crate::rng::{Domain, StreamRng, WeightedIndex};
use crate::tables::{JapaneseTables, LatinTables};

/// Persons per block of the layout.
pub(crate) const BLOCK_PERSONS: u64 = 4096;

/// The census day ages are counted from.
pub(crate) const REFERENCE_DATE: Date = Date {
    year: 2025,
    month: 10,
    day: 1,
};

/// Japan, 2020 census, thousands of persons by five-year age group 0–4 … 95–99, 100+
/// (rounded; the 100+ group is drawn as 100–104).
const AGE_PYRAMID_THOUSANDS: [u64; 21] = [
    4541, 5114, 5376, 5620, 6240, 6253, 6794, 7620, 8619, 9733, 8718, 7960, 7387, 8191, 9144, 7083,
    5371, 3600, 1690, 490, 80,
];

/// Shares (per mille) of households of 1..=6 persons: Japan 2020 census, Australia 2021 census.
const JA_HOUSEHOLD_SIZES: [u64; 6] = [380, 281, 166, 125, 37, 11];
const EN_HOUSEHOLD_SIZES: [u64; 6] = [256, 339, 156, 153, 70, 26];

/// Sex, coded as the registry codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Male.
    Male = 0,
    /// Female.
    Female = 1,
}

/// Where a household lives, as indices into the locale's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Address {
    Japanese {
        prefecture: u16,
        city: u16,
        town: u16,
        /// 丁目, 0 when the town has none.
        chome: u8,
        ban: u16,
        go: u16,
    },
    Latin {
        street_number: u16,
        street: u16,
        street_type: u8,
        /// Unit number, 0 for a house.
        unit: u16,
        suburb: u16,
    },
}

/// One person of the population.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub(crate) index: u64,
    pub(crate) sex: Sex,
    pub(crate) surname: u32,
    pub(crate) given: u32,
    pub(crate) birth: Date,
    pub(crate) household_start: u64,
    pub(crate) household_size: u32,
    pub(crate) address: Address,
}

/// The locale's tables.
#[derive(Debug, Clone)]
pub(crate) enum Tables {
    Japanese(Box<JapaneseTables>),
    Latin(Box<LatinTables>),
}

/// Generates blocks of persons.
#[derive(Debug, Clone)]
pub(crate) struct PopulationModel {
    pub(crate) seed: u64,
    pub(crate) persons: u64,
    pub(crate) tables: Tables,
    ages: WeightedIndex,
    household_sizes: WeightedIndex,
    reference_days: i64,
}

impl PopulationModel {
    pub(crate) fn new(seed: u64, persons: u64, tables: Tables) -> Self {
        let household_sizes = match tables {
            Tables::Japanese(_) => JA_HOUSEHOLD_SIZES,
            Tables::Latin(_) => EN_HOUSEHOLD_SIZES,
        };
        Self {
            seed,
            persons,
            tables,
            ages: WeightedIndex::new(AGE_PYRAMID_THOUSANDS),
            household_sizes: WeightedIndex::new(household_sizes),
            reference_days: REFERENCE_DATE.to_days(),
        }
    }

    pub(crate) fn block_count(&self) -> u64 {
        self.persons.div_ceil(BLOCK_PERSONS)
    }

    /// An age drawn from the pyramid, restricted to `min..=max` by rejection (falling back to a
    /// uniform age in the range, which the restricted ranges used here practically never need).
    fn age(&self, rng: &mut StreamRng, min: u32, max: u32) -> u32 {
        for _ in 0..64 {
            let group = self.ages.sample(rng) as u32;
            let age = group * 5 + rng.range(0, 4);
            if (min..=max).contains(&age) {
                return age;
            }
        }
        rng.range(min, max)
    }

    fn birth_date(&self, rng: &mut StreamRng, age: u32) -> Date {
        let days_old = i64::from(age) * 365_2425 / 10_000 + 1 + rng.below(365) as i64;
        Date::from_days(self.reference_days - days_old)
    }

    fn address(&self, rng: &mut StreamRng) -> Address {
        match &self.tables {
            Tables::Japanese(t) => {
                let prefecture = t.prefecture_weights.sample(rng);
                Address::Japanese {
                    prefecture: prefecture as u16,
                    city: rng.index(t.cities[prefecture].len()) as u16,
                    town: rng.index(t.towns.len()) as u16,
                    chome: if rng.chance(0.8) {
                        rng.range(1, 5) as u8
                    } else {
                        0
                    },
                    ban: rng.range(1, 40) as u16,
                    go: rng.range(1, 30) as u16,
                }
            }
            Tables::Latin(t) => Address::Latin {
                street_number: rng.range(1, 250) as u16,
                street: rng.index(t.streets.len()) as u16,
                street_type: rng.index(t.street_types.len()) as u8,
                unit: if rng.chance(0.15) {
                    rng.range(1, 40) as u16
                } else {
                    0
                },
                suburb: t.suburb_weights.sample(rng) as u16,
            },
        }
    }

    fn surname(&self, rng: &mut StreamRng) -> u32 {
        match &self.tables {
            Tables::Japanese(t) => t.surnames.weights.sample(rng) as u32,
            Tables::Latin(t) => t.surnames.weights.sample(rng) as u32,
        }
    }

    fn given(&self, rng: &mut StreamRng, sex: Sex) -> u32 {
        match &self.tables {
            Tables::Japanese(t) => t.given[sex as usize].weights.sample(rng) as u32,
            Tables::Latin(t) => t.given[sex as usize].weights.sample(rng) as u32,
        }
    }

    /// Fills `out` with the persons of block `block`, in index order.
    pub(crate) fn block(&self, block: u64, out: &mut Vec<Person>) {
        out.clear();
        let start = block * BLOCK_PERSONS;
        let end = (start + BLOCK_PERSONS).min(self.persons);
        let mut rng = StreamRng::new(self.seed, Domain::Block, block);
        let mut index = start;
        while index < end {
            let size = (self.household_sizes.sample(&mut rng) as u64 + 1).min(end - index);
            let address = self.address(&mut rng);
            let surname = self.surname(&mut rng);
            let head_sex = if rng.chance(0.5) {
                Sex::Male
            } else {
                Sex::Female
            };
            let head_age = self.age(&mut rng, 20, 104);
            let spouse_age = (head_age + rng.range(0, 10))
                .saturating_sub(5)
                .clamp(18, 104);
            let younger_parent = head_age.min(spouse_age);
            for member in 0..size {
                let (sex, age) = match member {
                    0 => (head_sex, head_age),
                    1 => (
                        if head_sex == Sex::Male {
                            Sex::Female
                        } else {
                            Sex::Male
                        },
                        spouse_age,
                    ),
                    _ => {
                        let sex = if rng.chance(0.5) {
                            Sex::Male
                        } else {
                            Sex::Female
                        };
                        let oldest = younger_parent.saturating_sub(20);
                        let youngest = younger_parent.saturating_sub(45);
                        (sex, self.age(&mut rng, youngest, oldest))
                    }
                };
                out.push(Person {
                    index: index + member,
                    sex,
                    surname,
                    given: self.given(&mut rng, sex),
                    birth: self.birth_date(&mut rng, age),
                    household_start: index,
                    household_size: size as u32,
                    address,
                });
            }
            index += size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(persons: u64) -> PopulationModel {
        let tables = Tables::Japanese(Box::new(JapaneseTables::load().unwrap()));
        PopulationModel::new(42, persons, tables)
    }

    #[test]
    fn blocks_cover_every_index_once_with_households_inside_the_block() {
        let m = model(10_000);
        assert_eq!(m.block_count(), 3);
        let mut persons = Vec::new();
        let mut next = 0;
        for b in 0..m.block_count() {
            m.block(b, &mut persons);
            for p in &persons {
                assert_eq!(p.index, next);
                next += 1;
                assert!(p.household_start <= p.index);
                assert!(p.index < p.household_start + u64::from(p.household_size));
                assert_eq!(p.household_start / BLOCK_PERSONS, p.index / BLOCK_PERSONS);
            }
        }
        assert_eq!(next, 10_000);
    }

    #[test]
    fn households_share_surname_and_address_and_ages_follow_the_pyramid() {
        let m = model(BLOCK_PERSONS);
        let mut persons = Vec::new();
        m.block(0, &mut persons);
        let mut over_65 = 0;
        for p in &persons {
            let head = &persons[p.household_start as usize];
            assert_eq!((p.surname, p.address), (head.surname, head.address));
            assert!(p.birth < REFERENCE_DATE);
            if REFERENCE_DATE.year - p.birth.year > 65 {
                over_65 += 1;
            }
        }
        // Japan 2020: 28.6% aged 65 or more; households put more adults in the sample.
        let share = f64::from(over_65) / persons.len() as f64;
        assert!((0.2..0.45).contains(&share), "share over 65: {share}");
    }

    #[test]
    fn a_block_is_the_same_whatever_the_population_size() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        model(BLOCK_PERSONS * 3).block(1, &mut a);
        model(BLOCK_PERSONS * 2).block(1, &mut b);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}
