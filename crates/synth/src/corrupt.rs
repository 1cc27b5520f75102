//! Canonical formatting of a person into record fields, and the notation errors a clerk makes
//! when typing them in.

use std::fmt::Write as _;

use crate::config::CorruptionRates;
use crate::date::Date;
use crate::kana;
use crate::population::{Address, Person, Sex, Tables};
use crate::records::Corruption;
use crate::rng::StreamRng;

/// Field positions of a record (both locales have 12 columns; see [`crate::columns`]).
pub(crate) mod ja {
    pub(crate) const SURNAME_KANJI: usize = 2;
    pub(crate) const GIVEN_KANJI: usize = 3;
    pub(crate) const SURNAME_KANA: usize = 4;
    pub(crate) const GIVEN_KANA: usize = 5;
    pub(crate) const BIRTH: usize = 6;
    pub(crate) const SEX: usize = 7;
    pub(crate) const POSTCODE: usize = 8;
    pub(crate) const PREFECTURE: usize = 9;
    pub(crate) const ADDRESS: usize = 11;
}

pub(crate) mod en {
    pub(crate) const GIVEN: usize = 2;
    pub(crate) const SURNAME: usize = 3;
    pub(crate) const ADDRESS_1: usize = 5;
    pub(crate) const ADDRESS_2: usize = 6;
    pub(crate) const POSTCODE: usize = 8;
    pub(crate) const STATE: usize = 9;
    pub(crate) const BIRTH: usize = 10;
    pub(crate) const SEX: usize = 11;
}

/// Number of fields in a record of either locale.
pub(crate) const FIELDS: usize = 12;

/// A synthetic 7-digit postcode for a town of a city: the first digit follows Japan's regional
/// scheme roughly, the rest is a hash, so one town always has one postcode (not a real one).
fn japanese_postcode(prefecture: u16, city: u16, town: u16) -> u32 {
    const REGION_DIGIT: [u32; 47] = [
        0, 0, 0, 9, 0, 9, 9, 3, 3, 3, 3, 2, 1, 2, 9, 9, 9, 9, 4, 3, 5, 4, 4, 5, 5, 6, 5, 6, 6, 6,
        6, 6, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 9,
    ];
    let key = (u64::from(prefecture) << 32) | (u64::from(city) << 16) | u64::from(town);
    let rest = (crate::rng::mix64(key) % 1_000_000) as u32;
    REGION_DIGIT[usize::from(prefecture) % 47] * 1_000_000 + rest
}

/// Writes the canonical fields of `person` into `fields` (cleared first); `identifier` is the
/// registry identifier (My Number or national id), `record_id` the record's id.
pub(crate) fn canonical(
    tables: &Tables,
    person: &Person,
    record_id: &str,
    identifier: &str,
    fields: &mut [String; FIELDS],
) {
    for f in fields.iter_mut() {
        f.clear();
    }
    fields[0].push_str(record_id);
    fields[1].push_str(identifier);
    let sex = match person.sex {
        Sex::Male => "M",
        Sex::Female => "F",
    };
    let birth = person.birth;
    match (tables, person.address) {
        (
            Tables::Japanese(t),
            Address::Japanese {
                prefecture,
                city,
                town,
                chome,
                ban,
                go,
            },
        ) => {
            let surname = &t.surnames.names[person.surname as usize];
            let given = &t.given[person.sex as usize].names[person.given as usize];
            fields[ja::SURNAME_KANJI].push_str(&surname.written);
            fields[ja::GIVEN_KANJI].push_str(&given.written);
            fields[ja::SURNAME_KANA].push_str(&surname.reading);
            fields[ja::GIVEN_KANA].push_str(&given.reading);
            iso_date(birth, &mut fields[ja::BIRTH]);
            fields[ja::SEX].push_str(sex);
            let postcode = japanese_postcode(prefecture, city, town);
            let _ = write!(
                fields[ja::POSTCODE],
                "{:03}-{:04}",
                postcode / 10_000,
                postcode % 10_000
            );
            fields[ja::PREFECTURE].push_str(&t.prefectures[usize::from(prefecture)]);
            fields[10].push_str(&t.cities[usize::from(prefecture)][usize::from(city)]);
            let address = &mut fields[ja::ADDRESS];
            address.push_str(&t.towns[usize::from(town)]);
            if chome > 0 {
                let _ = write!(address, "{chome}丁目");
            }
            let _ = write!(address, "{ban}番{go}号");
        }
        (
            Tables::Latin(t),
            Address::Latin {
                street_number,
                street,
                street_type,
                unit,
                suburb,
            },
        ) => {
            let surname = &t.surnames.names[person.surname as usize];
            let given = &t.given[person.sex as usize].names[person.given as usize];
            fields[en::GIVEN].push_str(&given.written);
            fields[en::SURNAME].push_str(&surname.written);
            let _ = write!(fields[4], "{street_number}");
            let _ = write!(
                fields[en::ADDRESS_1],
                "{} {}",
                t.streets[usize::from(street)],
                t.street_types[usize::from(street_type)].0
            );
            if unit > 0 {
                let _ = write!(fields[en::ADDRESS_2], "unit {unit}");
            }
            let suburb = &t.suburbs[usize::from(suburb)];
            fields[7].push_str(&suburb.name);
            fields[en::POSTCODE].push_str(&suburb.postcode);
            fields[en::STATE].push_str(&suburb.state);
            iso_date(birth, &mut fields[en::BIRTH]);
            fields[en::SEX].push_str(sex);
        }
        // The model never mixes a locale's tables with the other locale's addresses.
        _ => {}
    }
}

fn iso_date(d: Date, out: &mut String) {
    let _ = write!(out, "{:04}-{:02}-{:02}", d.year, d.month, d.day);
}

/// Replaces `field` by what `f` writes, if `f` reports a change.
fn rewrite(field: &mut String, f: impl FnOnce(&str, &mut String) -> bool) -> bool {
    let mut out = String::with_capacity(field.len() + 8);
    if f(field, &mut out) && out != *field {
        *field = out;
        true
    } else {
        false
    }
}

/// Applies the Japanese notation errors to a record in canonical form.
pub(crate) fn corrupt_japanese(
    person: &Person,
    rates: &CorruptionRates,
    rng: &mut StreamRng,
    fields: &mut [String; FIELDS],
    done: &mut Vec<Corruption>,
) {
    if rng.chance(rates.kanji_variant) {
        let order = if rng.chance(0.5) {
            [
                (ja::SURNAME_KANJI, "surname_kanji"),
                (ja::GIVEN_KANJI, "given_name_kanji"),
            ]
        } else {
            [
                (ja::GIVEN_KANJI, "given_name_kanji"),
                (ja::SURNAME_KANJI, "surname_kanji"),
            ]
        };
        for (at, name) in order {
            if rewrite(&mut fields[at], |s, out| kana::kanji_variant(s, rng, out)) {
                done.push(Corruption {
                    field: name,
                    kind: "variant-kanji",
                });
                break;
            }
        }
    }
    if rng.chance(rates.kana_variant) {
        corrupt_kana(rng, fields, done);
    }
    if rng.chance(rates.date_format) {
        let d = person.birth;
        let (era, letter, era_year) = d.era();
        let (m, day) = (d.month, d.day);
        let out = &mut fields[ja::BIRTH];
        out.clear();
        let kind = match rng.index(6) {
            0 => {
                let _ = write!(out, "{:04}/{m:02}/{day:02}", d.year);
                "slashes"
            }
            1 => {
                let _ = write!(out, "{}/{m}/{day}", d.year);
                "slashes-unpadded"
            }
            2 => {
                let _ = write!(out, "{:04}{m:02}{day:02}", d.year);
                "compact"
            }
            3 => {
                let ascii = format!("{:04}-{m:02}-{day:02}", d.year);
                kana::to_full_width_digits(&ascii, out);
                "full-width"
            }
            4 => {
                out.push_str(era);
                if era_year == 1 {
                    out.push('元');
                } else {
                    let _ = write!(out, "{era_year}");
                }
                let _ = write!(out, "年{m}月{day}日");
                "era-kanji"
            }
            _ => {
                let _ = write!(out, "{letter}{era_year}.{m}.{day}");
                "era-letter"
            }
        };
        done.push(Corruption {
            field: "date_of_birth",
            kind,
        });
    }
    if rng.chance(rates.sex_format) {
        let (text, kind) = match (person.sex, rng.chance(0.5)) {
            (Sex::Male, true) => ("男", "kanji"),
            (Sex::Female, true) => ("女", "kanji"),
            (Sex::Male, false) => ("1", "digit"),
            (Sex::Female, false) => ("2", "digit"),
        };
        fields[ja::SEX].clear();
        fields[ja::SEX].push_str(text);
        done.push(Corruption { field: "sex", kind });
    }
    if rng.chance(rates.address_format) {
        corrupt_japanese_address(person, rng, fields, done);
    }
}

fn corrupt_kana(rng: &mut StreamRng, fields: &mut [String; FIELDS], done: &mut Vec<Corruption>) {
    let kind = rng.index(7);
    let both = |f: &mut [String; FIELDS], convert: fn(&str, &mut String)| {
        for at in [ja::SURNAME_KANA, ja::GIVEN_KANA] {
            let mut out = String::new();
            convert(&f[at], &mut out);
            f[at] = out;
        }
    };
    let (field, kind) = match kind {
        0 => {
            both(fields, kana::to_hiragana);
            ("kana_name", "hiragana")
        }
        1 => {
            both(fields, kana::to_half_width);
            ("kana_name", "half-width")
        }
        2..=4 => {
            let separator = ["", " ", "\u{3000}"][kind - 2];
            let given = std::mem::take(&mut fields[ja::GIVEN_KANA]);
            fields[ja::SURNAME_KANA].push_str(separator);
            fields[ja::SURNAME_KANA].push_str(&given);
            let kind = [
                "joined-no-space",
                "joined-ascii-space",
                "joined-full-width-space",
            ][kind - 2];
            ("kana_name", kind)
        }
        _ => {
            let (first, second) = if rng.chance(0.5) {
                (
                    (ja::SURNAME_KANA, "surname_kana"),
                    (ja::GIVEN_KANA, "given_name_kana"),
                )
            } else {
                (
                    (ja::GIVEN_KANA, "given_name_kana"),
                    (ja::SURNAME_KANA, "surname_kana"),
                )
            };
            if kind == 5 {
                for (at, name) in [first, second] {
                    if rewrite(&mut fields[at], kana::to_long_vowel_mark) {
                        done.push(Corruption {
                            field: name,
                            kind: "long-vowel",
                        });
                        return;
                    }
                }
            }
            for (at, name) in [first, second] {
                if rewrite(&mut fields[at], |s, out| kana::one_kana_typo(s, rng, out)) {
                    done.push(Corruption {
                        field: name,
                        kind: "typo",
                    });
                    return;
                }
            }
            return;
        }
    };
    done.push(Corruption { field, kind });
}

fn corrupt_japanese_address(
    person: &Person,
    rng: &mut StreamRng,
    fields: &mut [String; FIELDS],
    done: &mut Vec<Corruption>,
) {
    let Address::Japanese { chome, ban, go, .. } = person.address else {
        return;
    };
    let town_end = fields[ja::ADDRESS]
        .char_indices()
        .find(|(_, c)| c.is_ascii_digit())
        .map_or(fields[ja::ADDRESS].len(), |(i, _)| i);
    let town = fields[ja::ADDRESS][..town_end].to_owned();
    let hyphenated = if chome > 0 {
        format!("{chome}-{ban}-{go}")
    } else {
        format!("{ban}-{go}")
    };
    let (field, kind) = match rng.index(6) {
        0 => {
            fields[ja::ADDRESS] = town + &hyphenated;
            ("address", "hyphens")
        }
        1 => {
            let mut out = town;
            kana::to_full_width_digits(&fields[ja::ADDRESS][town_end..], &mut out);
            fields[ja::ADDRESS] = out;
            ("address", "full-width-digits")
        }
        2 => {
            let mut out = town;
            kana::to_full_width_digits(&hyphenated, &mut out);
            fields[ja::ADDRESS] = out;
            ("address", "full-width-hyphens")
        }
        3 if chome > 0 => {
            let mut out = town;
            kana::kanji_numeral(u32::from(chome), &mut out);
            let _ = write!(out, "丁目{ban}-{go}");
            fields[ja::ADDRESS] = out;
            ("address", "kanji-chome")
        }
        4 => {
            fields[ja::PREFECTURE].clear();
            ("prefecture", "missing")
        }
        _ => {
            fields[ja::POSTCODE].retain(|c| c != '-');
            ("postcode", "no-hyphen")
        }
    };
    done.push(Corruption { field, kind });
}

/// Applies the Latin notation errors to a record in canonical form.
pub(crate) fn corrupt_latin(
    tables: &crate::tables::LatinTables,
    person: &Person,
    rates: &CorruptionRates,
    rng: &mut StreamRng,
    fields: &mut [String; FIELDS],
    done: &mut Vec<Corruption>,
) {
    if rng.chance(rates.kana_variant) {
        let (at, name) = if rng.chance(0.5) {
            (en::GIVEN, "given_name")
        } else {
            (en::SURNAME, "surname")
        };
        let mut letters: Vec<u8> = fields[at].bytes().collect();
        let pos = rng.index(letters.len().max(1));
        let letter = b'a' + rng.below(26) as u8;
        let kind = match rng.index(4) {
            0 if !letters.is_empty() => {
                letters[pos] = letter;
                "typo-substitute"
            }
            1 => {
                letters.insert(pos, letter);
                "typo-insert"
            }
            2 if letters.len() > 2 => {
                letters.remove(pos);
                "typo-delete"
            }
            _ if letters.len() > 1 => {
                let p = pos.min(letters.len() - 2);
                letters.swap(p, p + 1);
                "typo-transpose"
            }
            _ => "typo-insert",
        };
        let text = String::from_utf8(letters).unwrap_or_default();
        if text != fields[at] {
            fields[at] = text;
            done.push(Corruption { field: name, kind });
        }
    }
    if rng.chance(rates.date_format) {
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        let d = person.birth;
        let out = &mut fields[en::BIRTH];
        out.clear();
        let kind = match rng.index(4) {
            0 => {
                let _ = write!(out, "{:02}/{:02}/{:04}", d.day, d.month, d.year);
                "day-first"
            }
            1 => {
                let _ = write!(out, "{:04}{:02}{:02}", d.year, d.month, d.day);
                "compact"
            }
            2 => {
                let _ = write!(out, "{:04}/{:02}/{:02}", d.year, d.month, d.day);
                "slashes"
            }
            _ => {
                let month = MONTHS[(d.month as usize).saturating_sub(1) % 12];
                let _ = write!(out, "{} {month} {}", d.day, d.year);
                "month-name"
            }
        };
        done.push(Corruption {
            field: "date_of_birth",
            kind,
        });
    }
    if rng.chance(rates.sex_format) {
        let male = person.sex == Sex::Male;
        let (text, kind) = match rng.index(3) {
            0 => (if male { "male" } else { "female" }, "word"),
            1 => (if male { "1" } else { "2" }, "digit"),
            _ => (if male { "m" } else { "f" }, "lowercase"),
        };
        fields[en::SEX].clear();
        fields[en::SEX].push_str(text);
        done.push(Corruption { field: "sex", kind });
    }
    if rng.chance(rates.address_format) {
        let Address::Latin {
            street,
            street_type,
            ..
        } = person.address
        else {
            return;
        };
        let (full, short) = &tables.street_types[usize::from(street_type)];
        let (field, kind) = match rng.index(3) {
            0 if full != short => {
                fields[en::ADDRESS_1].clear();
                let street = &tables.streets[usize::from(street)];
                let _ = write!(fields[en::ADDRESS_1], "{street} {short}");
                ("address_1", "abbreviated-street-type")
            }
            1 => {
                fields[en::STATE].clear();
                ("state", "missing")
            }
            _ => {
                fields[en::POSTCODE].clear();
                ("postcode", "missing")
            }
        };
        done.push(Corruption { field, kind });
    }
}
