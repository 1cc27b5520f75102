//! The proleptic Gregorian calendar and the English month names, in one place so that the
//! `date` steps and clkhash's `date` format agree on which days exist and what a month is
//! called.

/// English month names, January first, lowercase.
pub(crate) const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// The Gregorian leap-year rule, applied to every year (proleptic before 1582).
pub(crate) fn is_leap_year(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// The number of days in `month` (1..=12) of `year`.
pub(crate) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The number (1..=12) of a lowercase English month name: in full (`july`), as its first three
/// letters (`jul`), or as `sept`, the one four-letter abbreviation in common use.
pub(crate) fn month_of_name(lowercase: &str) -> Option<u32> {
    let index = MONTH_NAMES.iter().position(|&name| {
        name == lowercase || (lowercase.len() == 3 && name.starts_with(lowercase))
    });
    let index = index.or((lowercase == "sept").then_some(8))?;
    Some(index as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_names() {
        for (name, month) in [
            ("january", Some(1)),
            ("jan", Some(1)),
            ("may", Some(5)),
            ("jul", Some(7)),
            ("sep", Some(9)),
            ("sept", Some(9)),
            ("september", Some(9)),
            ("dec", Some(12)),
            ("ju", None),
            ("janu", None),
            ("septe", None),
            ("", None),
            ("Jul", None),
        ] {
            assert_eq!(month_of_name(name), month, "{name}");
        }
    }

    #[test]
    fn month_lengths() {
        for (year, month, days) in [
            (1985, 1, 31),
            (1985, 2, 28),
            (1984, 2, 29),
            (1900, 2, 28),
            (2000, 2, 29),
            (1985, 4, 30),
            (1985, 12, 31),
        ] {
            assert_eq!(days_in_month(year, month), days, "{year}-{month}");
        }
    }
}
