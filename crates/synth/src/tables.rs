//! The name and address tables shipped in `crates/synth/data/`, parsed once per generator.
//! The Japanese tables are derived from the MIT-licensed gimei data by
//! `scripts/synth_tables.py`; the Latin tables are hand-written (see `data/README.md`).

use crate::SynthError;
use crate::rng::WeightedIndex;

const JA_SURNAMES: &str = include_str!("../data/ja_surnames.tsv");
const JA_GIVEN_NAMES: &str = include_str!("../data/ja_given_names.tsv");
const JA_PREFECTURES: &str = include_str!("../data/ja_prefectures.tsv");
const JA_CITIES: &str = include_str!("../data/ja_cities.tsv");
const JA_TOWNS: &str = include_str!("../data/ja_towns.tsv");
const EN_GIVEN_NAMES: &str = include_str!("../data/en_given_names.tsv");
const EN_SURNAMES: &str = include_str!("../data/en_surnames.tsv");
const EN_STREETS: &str = include_str!("../data/en_streets.tsv");
const EN_STREET_TYPES: &str = include_str!("../data/en_street_types.tsv");
const EN_SUBURBS: &str = include_str!("../data/en_suburbs.tsv");

/// A name with its reading (katakana for ja, the name itself for en).
#[derive(Debug, Clone)]
pub(crate) struct Name {
    pub(crate) written: String,
    pub(crate) reading: String,
    /// Equal for names read alike (`昭夫` and `昭雄` are both アキオ).
    pub(crate) reading_id: u32,
}

/// Names of one sex (or surnames) with their sampling weights.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameTable {
    pub(crate) names: Vec<Name>,
    pub(crate) weights: WeightedIndex,
}

/// Japanese tables.
#[derive(Debug, Clone)]
pub(crate) struct JapaneseTables {
    pub(crate) surnames: NameTable,
    /// Index 0 male, 1 female.
    pub(crate) given: [NameTable; 2],
    pub(crate) prefectures: Vec<String>,
    pub(crate) prefecture_weights: WeightedIndex,
    /// Cities of each prefecture.
    pub(crate) cities: Vec<Vec<String>>,
    pub(crate) towns: Vec<String>,
}

/// A suburb with its postcode and state.
#[derive(Debug, Clone)]
pub(crate) struct Suburb {
    pub(crate) name: String,
    pub(crate) postcode: String,
    pub(crate) state: String,
}

/// Latin (FEBRL-style) tables.
#[derive(Debug, Clone)]
pub(crate) struct LatinTables {
    pub(crate) surnames: NameTable,
    pub(crate) given: [NameTable; 2],
    pub(crate) streets: Vec<String>,
    /// (full, abbreviated), e.g. ("street", "st").
    pub(crate) street_types: Vec<(String, String)>,
    pub(crate) suburbs: Vec<Suburb>,
    pub(crate) suburb_weights: WeightedIndex,
}

/// The data rows of a table: comments and blank lines skipped, with their line numbers.
fn rows<'a>(text: &'a str) -> impl Iterator<Item = (usize, Vec<&'a str>)> + 'a {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && !line.trim().is_empty())
        .map(|(n, line)| (n + 1, line.split('\t').collect()))
}

fn field<'a>(
    table: &'static str,
    line: usize,
    cells: &[&'a str],
    column: usize,
) -> Result<&'a str, SynthError> {
    cells
        .get(column)
        .copied()
        .filter(|cell| !cell.is_empty())
        .ok_or_else(|| SynthError::Table {
            table,
            line,
            reason: format!("column {} is missing", column + 1),
        })
}

fn number(table: &'static str, line: usize, cell: &str) -> Result<u64, SynthError> {
    cell.parse().map_err(|_| SynthError::Table {
        table,
        line,
        reason: format!("'{cell}' is not a whole number"),
    })
}

/// Builds a name table, giving names with the same reading the same reading id.
fn name_table(entries: Vec<(String, String, u64)>) -> NameTable {
    let mut readings: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut names = Vec::with_capacity(entries.len());
    let mut weights = Vec::with_capacity(entries.len());
    for (written, reading, weight) in entries {
        let next = readings.len() as u32;
        let reading_id = *readings.entry(reading.clone()).or_insert(next);
        names.push(Name {
            written,
            reading,
            reading_id,
        });
        weights.push(weight);
    }
    NameTable {
        names,
        weights: WeightedIndex::new(weights),
    }
}

/// Weight of rank `rank` (from 1) in a Zipf–Mandelbrot law `(rank + offset)^-1`, in parts per 10^9
/// of an unnormalised total (only ratios matter).
fn zipf_weight(rank: usize, offset: usize) -> u64 {
    (1e9 / (rank + offset) as f64) as u64
}

impl JapaneseTables {
    pub(crate) fn load() -> Result<Self, SynthError> {
        let mut surnames = Vec::new();
        for (line, cells) in rows(JA_SURNAMES) {
            let t = "ja_surnames.tsv";
            surnames.push((
                field(t, line, &cells, 0)?.to_owned(),
                field(t, line, &cells, 1)?.to_owned(),
                number(t, line, field(t, line, &cells, 2)?)?,
            ));
        }
        let mut given: [Vec<(String, String, u64)>; 2] = [Vec::new(), Vec::new()];
        for (line, cells) in rows(JA_GIVEN_NAMES) {
            let t = "ja_given_names.tsv";
            let sex = match field(t, line, &cells, 2)? {
                "M" => 0,
                "F" => 1,
                other => {
                    return Err(SynthError::Table {
                        table: t,
                        line,
                        reason: format!("sex '{other}' is not M or F"),
                    });
                }
            };
            given[sex].push((
                field(t, line, &cells, 0)?.to_owned(),
                field(t, line, &cells, 1)?.to_owned(),
                number(t, line, field(t, line, &cells, 3)?)?,
            ));
        }
        let mut prefectures = Vec::new();
        let mut populations = Vec::new();
        for (line, cells) in rows(JA_PREFECTURES) {
            let t = "ja_prefectures.tsv";
            prefectures.push(field(t, line, &cells, 0)?.to_owned());
            populations.push(number(t, line, field(t, line, &cells, 1)?)?);
        }
        let mut cities = vec![Vec::new(); prefectures.len()];
        for (line, cells) in rows(JA_CITIES) {
            let t = "ja_cities.tsv";
            let prefecture = field(t, line, &cells, 0)?;
            let Some(p) = prefectures.iter().position(|p| p == prefecture) else {
                return Err(SynthError::Table {
                    table: t,
                    line,
                    reason: format!("prefecture '{prefecture}' is not in ja_prefectures.tsv"),
                });
            };
            cities[p].push(field(t, line, &cells, 1)?.to_owned());
        }
        if let Some(p) = cities.iter().position(Vec::is_empty) {
            return Err(SynthError::Table {
                table: "ja_cities.tsv",
                line: 0,
                reason: format!("prefecture '{}' has no city", prefectures[p]),
            });
        }
        let towns = rows(JA_TOWNS)
            .map(|(line, cells)| field("ja_towns.tsv", line, &cells, 0).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        let [male, female] = given;
        Ok(Self {
            surnames: name_table(surnames),
            given: [name_table(male), name_table(female)],
            prefectures,
            prefecture_weights: WeightedIndex::new(populations),
            cities,
            towns,
        })
    }
}

impl LatinTables {
    pub(crate) fn load() -> Result<Self, SynthError> {
        let mut given: [Vec<(String, String, u64)>; 2] = [Vec::new(), Vec::new()];
        for (line, cells) in rows(EN_GIVEN_NAMES) {
            let t = "en_given_names.tsv";
            let name = field(t, line, &cells, 0)?;
            let sex = match field(t, line, &cells, 1)? {
                "M" => 0,
                "F" => 1,
                other => {
                    return Err(SynthError::Table {
                        table: t,
                        line,
                        reason: format!("sex '{other}' is not M or F"),
                    });
                }
            };
            let rank = given[sex].len() + 1;
            given[sex].push((name.to_owned(), name.to_owned(), zipf_weight(rank, 10)));
        }
        let surnames = rows(EN_SURNAMES)
            .enumerate()
            .map(|(i, (line, cells))| {
                let name = field("en_surnames.tsv", line, &cells, 0)?;
                Ok((name.to_owned(), name.to_owned(), zipf_weight(i + 1, 5)))
            })
            .collect::<Result<Vec<_>, SynthError>>()?;
        let streets = rows(EN_STREETS)
            .map(|(line, cells)| field("en_streets.tsv", line, &cells, 0).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        let street_types = rows(EN_STREET_TYPES)
            .map(|(line, cells)| {
                let t = "en_street_types.tsv";
                Ok((
                    field(t, line, &cells, 0)?.to_owned(),
                    field(t, line, &cells, 1)?.to_owned(),
                ))
            })
            .collect::<Result<Vec<_>, SynthError>>()?;
        let mut suburbs = Vec::new();
        let mut weights = Vec::new();
        for (line, cells) in rows(EN_SUBURBS) {
            let t = "en_suburbs.tsv";
            suburbs.push(Suburb {
                name: field(t, line, &cells, 0)?.to_owned(),
                postcode: field(t, line, &cells, 1)?.to_owned(),
                state: field(t, line, &cells, 2)?.to_owned(),
            });
            weights.push(number(t, line, field(t, line, &cells, 3)?)?);
        }
        let [male, female] = given;
        Ok(Self {
            surnames: name_table(surnames),
            given: [name_table(male), name_table(female)],
            streets,
            street_types,
            suburbs,
            suburb_weights: WeightedIndex::new(weights),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_katakana(s: &str) -> bool {
        s.chars().all(|c| ('\u{30A1}'..='\u{30FC}').contains(&c))
    }

    #[test]
    fn japanese_tables_load_with_readings() {
        let t = JapaneseTables::load().unwrap();
        assert_eq!(t.prefectures.len(), 47);
        assert_eq!(t.surnames.names.len(), 499);
        assert_eq!(t.surnames.names[0].written, "佐藤");
        assert_eq!(t.surnames.names[0].reading, "サトウ");
        assert!(t.given[0].names.len() > 2000 && t.given[1].names.len() > 10_000);
        for table in [&t.surnames, &t.given[0], &t.given[1]] {
            for name in &table.names {
                assert!(
                    is_katakana(&name.reading),
                    "{} {}",
                    name.written,
                    name.reading
                );
            }
        }
        assert_eq!(t.cities[12][0], "千代田区");
        assert!(t.towns.len() > 1000);
    }

    #[test]
    fn latin_tables_load() {
        let t = LatinTables::load().unwrap();
        assert_eq!(t.surnames.names[0].written, "smith");
        assert!(t.given[0].names.len() > 90 && t.given[1].names.len() > 90);
        assert_eq!(t.street_types[0], ("street".to_owned(), "st".to_owned()));
        assert!(t.suburbs.iter().all(|s| s.postcode.len() == 4));
    }

    #[test]
    fn bad_table_rows_name_table_and_line() {
        let err = number("ja_surnames.tsv", 7, "x1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "table ja_surnames.tsv line 7: 'x1' is not a whole number"
        );
        let err = field("en_streets.tsv", 3, &["a"], 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "table en_streets.tsv line 3: column 2 is missing"
        );
    }
}
