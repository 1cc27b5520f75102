//! Dates (`date`, `date-dmy`, `date-mdy`) in the forms found in Western and Japanese records,
//! to `YYYY-MM-DD`.
//!
//! Accepted by all three steps, with ASCII or full-width digits and optional spaces:
//! - Gregorian, year first: `1985-04-03`, `1985-4-3`, `1985/4/3`, `1985.4.3`, `19850403`,
//!   `1985年4月3日`;
//! - kanji numerals in either: `昭和六十年四月三日`, `一九八五年四月三日`, `平成元年一月八日`;
//! - Japanese eras by name or initial: `昭和60年4月3日`, `S60.4.3`, `s60/4/3`, `Ｈ１．１．８`,
//!   `平成元年1月8日`, `R5.12.1`, the one-character era signs `㍼60年4月3日`, and the compact
//!   `S600403` (initial and six digits);
//! - English month names, which say by themselves which number is the month, in full or as
//!   three letters (and `Sept`), any case, with an optional `.` after the name and `,` between
//!   parts: `5 Jul 1982`, `5 July 1982`, `5th of July 1982`, `05-JUL-1982`, `05JUL1982`,
//!   `July 5, 1982`, `Jul. 5th 1982`, `1982-Jul-05`. An ordinal suffix must be the right one
//!   (`1st`, `22nd`, `11th`).
//!
//! A numeric date with the year last (`15/07/1981`, `07/15/1981`) cannot say whether the day or
//! the month comes first, and `3/4/1985` is a different day in London and in New York. `date`
//! rejects it, naming the fix; `date-dmy` reads it day first (UK, Australia) and `date-mdy`
//! month first (US), with `/`, `.` or `-` between the parts, padded or not. Nothing else
//! changes between the three steps: year-first dates stay year first and eight digits stay
//! `YYYYMMDD` (never `DDMMYYYY`).
//!
//! A trailing `生` or `生まれ` ("born") is ignored. A time of day after the date
//! (`1985-04-03 00:00:00`, `1985-04-03T00:00`), as spreadsheet and database exports write it,
//! is dropped.
//!
//! Rejected, with the reason: two-digit years everywhere (`85/4/3`, `15/07/81`, `5 Jul 82` are
//! ambiguous), impossible dates (`1985-02-30`, month 13), era dates before the era began
//! (`平成元年1月7日` was still 昭和64年) or after it ended (`平成32年`: 平成 ended on
//! 2019-04-30, and a date written in an era that had already ended is a data error this step
//! will not guess around), and Meiji dates before 明治6年 (1873), which are in the lunisolar
//! calendar and do not convert by adding a year offset.
//!
//! Era dates outside their era are common in real Japanese records all the same: pre-printed
//! forms kept `平成` after May 2019, and `令和元年4月1日` is written for April 2019 (a date
//! before 令和 began). The steps keep rejecting them; a caller that wants them read as the
//! Gregorian date they denote says so with [`EraReading::Lenient`] in
//! [`normalise_date_with`], which also says whether it read a date that way (so the caller can
//! count them). Lenient reading takes the era's year offset as it is: `平成32年1月1日` is
//! 2020-01-01, `令和元年4月1日` is 2019-04-01, `昭和64年1月8日` is 1989-01-08 (which was
//! `平成元年1月8日`), `平成元年1月7日` is 1989-01-07. It still rejects impossible days
//! (`平成32年2月30日`), year 0, and Meiji dates before 1873.
//!
//! Era start days: 明治 1873-01-01 (the first Gregorian day; the era itself began in 1868),
//! 大正 1912-07-30, 昭和 1926-12-25, 平成 1989-01-08, 令和 2019-05-01. Each era ends the day
//! before the next begins.

use super::NormaliseError;
use super::calendar::{MONTH_NAMES, days_in_month, month_of_name};
use super::numerals::{kanji_digit, kanji_number};

/// A Japanese era: its name, first year, and first and last days it can convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Era {
    name: &'static str,
    /// The Gregorian year of the era's year 1 (元年).
    first_year: u32,
    first_day: (u32, u32, u32),
    last_day: Option<(u32, u32, u32)>,
}

const MEIJI: Era = Era {
    name: "明治",
    first_year: 1868,
    first_day: (1873, 1, 1),
    last_day: Some((1912, 7, 29)),
};
const TAISHO: Era = Era {
    name: "大正",
    first_year: 1912,
    first_day: (1912, 7, 30),
    last_day: Some((1926, 12, 24)),
};
const SHOWA: Era = Era {
    name: "昭和",
    first_year: 1926,
    first_day: (1926, 12, 25),
    last_day: Some((1989, 1, 7)),
};
const HEISEI: Era = Era {
    name: "平成",
    first_year: 1989,
    first_day: (1989, 1, 8),
    last_day: Some((2019, 4, 30)),
};
const REIWA: Era = Era {
    name: "令和",
    first_year: 2019,
    first_day: (2019, 5, 1),
    last_day: None,
};

/// The longest input looked at; a date is never longer, and bounding it keeps messages short.
const MAX_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Number {
        value: u32,
        digits: u32,
    },
    /// 元 (the first year of an era).
    Gannen,
    Era(Era),
    /// `-`, `/`, `.` and their full-width forms.
    Separator,
    Year,
    Month,
    Day,
    /// An English month name, full or abbreviated, as its number 1..=12.
    MonthName(u32),
    /// `,`, as in `July 5, 1982`.
    Comma,
    /// `st`, `nd`, `rd` or `th` written right after the number before it (`5th`), and checked
    /// against it.
    OrdinalSuffix,
    /// `of`, as in `5th of July 1982`.
    Of,
}

/// How a date written in numbers with the year last (`15/07/1981`, `07/15/1981`) is read: the
/// one thing a date's notation cannot say for itself. Every other accepted form (year first,
/// compact `YYYYMMDD`, Japanese, English month names) reads the same under all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericOrder {
    /// Year first only (`date`): a year-last date is rejected as ambiguous.
    YearFirst,
    /// Day, month, year when the year is last (`date-dmy`), as written in the UK and Australia.
    DayFirst,
    /// Month, day, year when the year is last (`date-mdy`), as written in the US.
    MonthFirst,
}

/// How [`normalise_date_with`] reads a Japanese era date outside its era (`平成32年1月1日`,
/// `令和元年4月1日`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EraReading {
    /// Rejected as a data error, naming the era's first or last day: what the steps `date`,
    /// `date-dmy` and `date-mdy` do.
    #[default]
    Strict,
    /// Read as the Gregorian date it denotes: the era's first year plus the written year,
    /// minus one (`平成32年1月1日` -> 2020-01-01, `令和元年4月1日` -> 2019-04-01). Impossible
    /// days, year 0 and Meiji dates before 1873 are still rejected.
    Lenient,
}

/// Parses a date and writes it as `YYYY-MM-DD` (the step `date`): a numeric date with the year
/// last is rejected, since only a declared order ([`normalise_date_in_order`]) can read it.
///
/// # Errors
/// [`NormaliseError::Invalid`] saying what is wrong: an unexpected character, a missing or
/// extra part, an ambiguous two-digit year, a year-last numeric date, an impossible day, or a
/// day outside its era.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::date::normalise_date;
/// let mut out = String::new();
/// normalise_date("昭和60年4月3日", &mut out).unwrap();
/// assert_eq!(out, "1985-04-03");
/// normalise_date("H1/1/8", &mut out).unwrap();
/// assert_eq!(out, "1989-01-08");
/// assert_eq!(
///     normalise_date("1985-02-30", &mut out).unwrap_err().to_string(),
///     "day 30 does not exist in february 1985, which has 28 days"
/// );
/// ```
pub fn normalise_date(input: &str, out: &mut String) -> Result<(), NormaliseError> {
    normalise_date_in_order(input, NumericOrder::YearFirst, out)
}

/// Parses a date, reading a numeric date with the year last in `order`, and writes it as
/// `YYYY-MM-DD`: the steps `date` ([`NumericOrder::YearFirst`]), `date-dmy`
/// ([`NumericOrder::DayFirst`]) and `date-mdy` ([`NumericOrder::MonthFirst`]).
///
/// # Errors
/// As [`normalise_date`]; under [`NumericOrder::YearFirst`] a date with the year last is
/// rejected with a reason that names `date-dmy` and `date-mdy`.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::date::{NumericOrder, normalise_date_in_order};
/// let mut out = String::new();
/// normalise_date_in_order("15/07/1981", NumericOrder::DayFirst, &mut out).unwrap();
/// assert_eq!(out, "1981-07-15");
/// normalise_date_in_order("07/15/1981", NumericOrder::MonthFirst, &mut out).unwrap();
/// assert_eq!(out, "1981-07-15");
/// normalise_date_in_order("July 15, 1981", NumericOrder::YearFirst, &mut out).unwrap();
/// assert_eq!(out, "1981-07-15");
/// assert_eq!(
///     normalise_date_in_order("15/07/1981", NumericOrder::YearFirst, &mut out)
///         .unwrap_err()
///         .to_string(),
///     "date '15/07/1981' has the year last, so its day and month could be either way round; \
///      use the step date-dmy (day first) or date-mdy (month first)"
/// );
/// ```
pub fn normalise_date_in_order(
    input: &str,
    order: NumericOrder,
    out: &mut String,
) -> Result<(), NormaliseError> {
    out.clear();
    let (year, month, day) = parse_date(input, order)?;
    use std::fmt::Write as _;
    let _ = write!(out, "{year:04}-{month:02}-{day:02}");
    Ok(())
}

/// Parses a date as [`normalise_date_in_order`] does, reading an era date outside its era as
/// `era` says, and writes it as `YYYY-MM-DD`. Returns `true` when the date was an era date
/// outside its era that [`EraReading::Lenient`] read as the Gregorian date it denotes (always
/// `false` under [`EraReading::Strict`]), so a caller can count such dates.
///
/// # Errors
/// As [`normalise_date_in_order`]; under [`EraReading::Lenient`] an era date outside its era
/// is an error only if the day does not exist, the era year is 0 or it is a Meiji date before
/// 1873.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::date::{EraReading, NumericOrder, normalise_date_with};
/// let mut out = String::new();
/// let lenient = |input: &str, out: &mut String| {
///     normalise_date_with(input, NumericOrder::YearFirst, EraReading::Lenient, out)
/// };
/// assert_eq!(lenient("平成32年1月1日", &mut out), Ok(true));
/// assert_eq!(out, "2020-01-01");
/// assert_eq!(lenient("令和元年4月1日", &mut out), Ok(true));
/// assert_eq!(out, "2019-04-01");
/// assert_eq!(lenient("平成31年4月30日", &mut out), Ok(false));
/// assert_eq!(out, "2019-04-30");
/// assert_eq!(
///     normalise_date_with("平成32年1月1日", NumericOrder::YearFirst, EraReading::Strict, &mut out)
///         .unwrap_err()
///         .to_string(),
///     "平成32年1月1日 (2020-01-01) is after 平成 ended on 2019-04-30"
/// );
/// ```
pub fn normalise_date_with(
    input: &str,
    order: NumericOrder,
    era: EraReading,
    out: &mut String,
) -> Result<bool, NormaliseError> {
    out.clear();
    let ((year, month, day), outside_era) = parse_date_reading(input, order, era)?;
    use std::fmt::Write as _;
    let _ = write!(out, "{year:04}-{month:02}-{day:02}");
    Ok(outside_era)
}

fn invalid(message: String) -> NormaliseError {
    NormaliseError::Invalid(message)
}

fn parse_date(input: &str, order: NumericOrder) -> Result<(u32, u32, u32), NormaliseError> {
    parse_date_reading(input, order, EraReading::Strict).map(|(date, _)| date)
}

/// The date, and whether it was an era date outside its era read leniently.
fn parse_date_reading(
    input: &str,
    order: NumericOrder,
    era: EraReading,
) -> Result<((u32, u32, u32), bool), NormaliseError> {
    if let Some((year, month, day)) = iso_like(input) {
        check_calendar(year, month, day)?;
        return Ok(((year, month, day), false));
    }
    parse_date_in_general(input, order, era)
}

/// `YYYY-MM-DD` (or with `/` or `.`) and `YYYYMMDD` in ASCII digits, the forms most records
/// use, read without tokenising. Every other input goes the general way, which reads these
/// the same in every order (a test checks it).
fn iso_like(input: &str) -> Option<(u32, u32, u32)> {
    let bytes = input.as_bytes();
    let number = |range: std::ops::Range<usize>| {
        bytes.get(range)?.iter().try_fold(0u32, |value, &b| {
            b.is_ascii_digit().then(|| value * 10 + u32::from(b - b'0'))
        })
    };
    match bytes.len() {
        10 if matches!(bytes[4], b'-' | b'/' | b'.') && bytes[7] == bytes[4] => {
            Some((number(0..4)?, number(5..7)?, number(8..10)?))
        }
        8 => Some((number(0..4)?, number(4..6)?, number(6..8)?)),
        _ => None,
    }
}

fn parse_date_in_general(
    input: &str,
    order: NumericOrder,
    reading: EraReading,
) -> Result<((u32, u32, u32), bool), NormaliseError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(invalid("date is empty".to_owned()));
    }
    if trimmed.len() > MAX_LEN {
        return Err(invalid(format!(
            "date is {} bytes long, at most {MAX_LEN} expected",
            trimmed.len()
        )));
    }
    let trimmed = strip_time_of_day(trimmed)?;
    let tokens = tokenise(trimmed)?;
    if tokens.iter().any(|t| matches!(t, Token::MonthName(_))) {
        return parse_month_name_date(&tokens, trimmed).map(|date| (date, false));
    }
    let (era, rest) = match tokens.first() {
        Some(Token::Era(era)) => (Some(*era), &tokens[1..]),
        _ => (None, &tokens[..]),
    };
    let parts = split_parts(rest, trimmed, era.is_some())?;
    match era {
        None => {
            let (year, month, day) = gregorian_order(&parts, order, trimmed)?;
            check_calendar(year, month, day)?;
            Ok(((year, month, day), false))
        }
        Some(era) => {
            let [(era_year, _), (month, _), (day, _)] = parts.numbers;
            if era_year == 0 {
                return Err(invalid(format!(
                    "{} year 0 does not exist; the first year is 1 (元年)",
                    era.name
                )));
            }
            let year = era.first_year + era_year - 1;
            check_calendar(year, month, day)?;
            let date = (year, month, day);
            let lenient = reading == EraReading::Lenient;
            if date < era.first_day {
                if lenient && (era.name != MEIJI.name) {
                    return Ok((date, true));
                }
                let (y, m, d) = era.first_day;
                return Err(invalid(if era.name == MEIJI.name {
                    format!(
                        "{}{era_year}年 ({year}) is before 1873, when Japan adopted the gregorian calendar; the date cannot be converted",
                        era.name
                    )
                } else {
                    format!(
                        "{}{era_year}年{}月{}日 ({year:04}-{:02}-{:02}) is before {} began on {y:04}-{m:02}-{d:02}",
                        era.name, month, day, month, day, era.name
                    )
                }));
            }
            if let Some(last) = era.last_day
                && date > last
            {
                if lenient {
                    return Ok((date, true));
                }
                let (y, m, d) = last;
                return Err(invalid(format!(
                    "{}{era_year}年{}月{}日 ({year:04}-{:02}-{:02}) is after {} ended on {y:04}-{m:02}-{d:02}",
                    era.name, month, day, month, day, era.name
                )));
            }
            Ok((date, false))
        }
    }
}

/// A part of a date with an English month name: a number (and whether it had an ordinal
/// suffix) or the month.
#[derive(Clone, Copy)]
enum NamedDatePart {
    Number {
        value: u32,
        digits: u32,
        ordinal: bool,
    },
    Month(u32),
}

/// Reads a date with an English month name, which says which number is the month: day first
/// (`5 Jul 1982`, `5th of July, 1982`, `05-JUL-1982`, `05JUL1982`), month first (`July 5, 1982`,
/// `Jul. 5th 1982`) or year first (`1982-Jul-05`). Parts are separated by spaces, one
/// separator or a comma, or nothing.
fn parse_month_name_date(tokens: &[Token], input: &str) -> Result<(u32, u32, u32), NormaliseError> {
    let not_a_date = || {
        invalid(format!(
            "date '{input}' is not day, month name and year (5 jul 1982, jul 5 1982 or 1982-jul-05)"
        ))
    };
    let mut parts: Vec<NamedDatePart> = Vec::with_capacity(3);
    // A separator, comma or `of` since the last part: another one, or the end, is an error.
    let mut after_separator = false;
    let mut after_of = false;
    for token in tokens {
        match *token {
            Token::Number { value, digits } if parts.len() < 3 && !after_of => {
                parts.push(Number {
                    value,
                    digits,
                    ordinal: false,
                });
            }
            Token::MonthName(month) if parts.len() < 3 => parts.push(Month(month)),
            Token::OrdinalSuffix => match parts.last_mut() {
                Some(Number { ordinal, .. }) => *ordinal = true,
                _ => return Err(not_a_date()),
            },
            Token::Of
                if !after_separator
                    && matches!(parts.last(), Some(Number { ordinal: true, .. })) =>
            {
                after_separator = true;
                after_of = true;
                continue;
            }
            Token::Separator | Token::Comma if !after_separator && !parts.is_empty() => {
                after_separator = true;
                continue;
            }
            _ => return Err(not_a_date()),
        }
        after_separator = false;
        after_of = false;
    }
    if after_separator {
        return Err(not_a_date());
    }
    use NamedDatePart::{Month, Number};
    let (year, month, day) = match parts[..] {
        [
            Number {
                value: year,
                digits: 4,
                ordinal: false,
            },
            Month(month),
            Number { value: day, .. },
        ] => (year, month, day),
        [
            Number { value: day, .. },
            Month(month),
            Number {
                value: year,
                digits,
                ordinal: false,
            },
        ]
        | [
            Month(month),
            Number { value: day, .. },
            Number {
                value: year,
                digits,
                ordinal: false,
            },
        ] => {
            if digits != 4 {
                return Err(invalid(format!(
                    "date '{input}' has a {digits}-digit year; write the year with 4 digits"
                )));
            }
            (year, month, day)
        }
        _ => return Err(not_a_date()),
    };
    check_calendar(year, month, day)?;
    Ok((year, month, day))
}

/// Removes a time of day after the date (`1985-04-03 00:00:00`, `1985/4/3 0:00`,
/// `1985-04-03T00:00:00.000`), which spreadsheet and database exports add to dates of birth.
/// Only a plain `H:MM`, `H:MM:SS` or `H:MM:SS.fff` after a space or `T` is accepted; a time zone
/// or anything else is rejected rather than guessed at.
fn strip_time_of_day(input: &str) -> Result<&str, NormaliseError> {
    let Some(colon) = input.find(':') else {
        return Ok(input);
    };
    let Some(split) = input[..colon].rfind(|c: char| c == 'T' || c.is_whitespace()) else {
        return Err(invalid(format!(
            "date '{input}' contains ':', which is not part of a date"
        )));
    };
    // The separator may be the 3-byte ideographic space.
    let separator_len = input[split..].chars().next().map_or(1, char::len_utf8);
    let (date, time) = (input[..split].trim_end(), &input[split + separator_len..]);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let fields: Vec<&str> = clock.split(':').collect();
    let number = |f: &str, max_len: usize| {
        (!f.is_empty() && f.len() <= max_len && f.bytes().all(|b| b.is_ascii_digit()))
            .then(|| f.parse::<u32>().ok())
            .flatten()
    };
    let valid = match fields.as_slice() {
        [h, m] | [h, m, _]
            if number(h, 2).is_some_and(|h| h < 24)
                && m.len() == 2
                && number(m, 2).is_some_and(|m| m < 60) =>
        {
            fields
                .get(2)
                .is_none_or(|s| s.len() == 2 && number(s, 2).is_some_and(|s| s <= 60))
                && fraction.bytes().all(|b| b.is_ascii_digit())
                && !fraction.is_empty()
        }
        _ => false,
    };
    if !valid {
        return Err(invalid(format!(
            "date '{input}' has a time part '{time}' that is not H:MM, H:MM:SS or H:MM:SS.fff"
        )));
    }
    Ok(date)
}

/// The three numbers of a numeric date as written, each with its count of digits.
struct WrittenNumbers {
    numbers: [(u32, u32); 3],
    /// The notation itself puts the year first: 年/月/日 or a compact run of digits.
    year_first: bool,
}

/// Picks year, month and day out of a numeric Gregorian date: year first when the notation
/// says so or the first number has 4 digits, else year last in the declared `order`.
fn gregorian_order(
    parts: &WrittenNumbers,
    order: NumericOrder,
    input: &str,
) -> Result<(u32, u32, u32), NormaliseError> {
    let [(first, first_digits), (second, _), (third, third_digits)] = parts.numbers;
    if first_digits == 4 {
        return Ok((first, second, third));
    }
    let short_year = |digits: u32, hint: &str| {
        invalid(format!(
            "date '{input}' has a {digits}-digit year; write the year with 4 digits{hint}"
        ))
    };
    if parts.year_first || (third_digits != 4 && order == NumericOrder::YearFirst) {
        return Err(short_year(first_digits, " or an era"));
    }
    if third_digits != 4 {
        return Err(short_year(third_digits, ""));
    }
    match order {
        NumericOrder::YearFirst => Err(invalid(format!(
            "date '{input}' has the year last, so its day and month could be either way round; \
             use the step date-dmy (day first) or date-mdy (month first)"
        ))),
        NumericOrder::DayFirst => Ok((third, second, first)),
        NumericOrder::MonthFirst => Ok((third, first, second)),
    }
}

/// Reads `year sep month sep day [日]` (or, without an era, any three numbers between
/// separators) or a compact run of digits from the tokens after the era.
fn split_parts(
    tokens: &[Token],
    input: &str,
    has_era: bool,
) -> Result<WrittenNumbers, NormaliseError> {
    // Compact: 19850403, or S600403 after an era initial.
    if let [Token::Number { value, digits }] = tokens {
        let expected = if has_era { 6 } else { 8 };
        if *digits != expected {
            return Err(invalid(format!(
                "date '{input}' has {digits} digits and no separators, expected {expected} ({})",
                if has_era {
                    "YYMMDD after the era"
                } else {
                    "YYYYMMDD"
                }
            )));
        }
        let year_digits = if has_era { 2 } else { 4 };
        return Ok(WrittenNumbers {
            numbers: [
                (value / 10_000, year_digits),
                (value / 100 % 100, 2),
                (value % 100, 2),
            ],
            year_first: true,
        });
    }
    let mut numbers = [(0u32, 0u32); 3];
    let mut found = 0;
    let mut expect_number = true;
    let mut year_first = false;
    for (i, token) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        match (*token, expect_number) {
            (Token::Number { value, digits }, true) if found < 3 => {
                numbers[found] = (value, digits);
                found += 1;
                expect_number = false;
            }
            (Token::Gannen, true) if found == 0 && has_era => {
                numbers[0] = (1, 1);
                found = 1;
                expect_number = false;
            }
            (Token::Gannen, _) => {
                return Err(invalid(format!(
                    "date '{input}' has 元 (first year) in the wrong place"
                )));
            }
            (Token::Separator, false) if found < 3 => expect_number = true,
            (Token::Year, false) if found == 1 => {
                expect_number = true;
                year_first = true;
            }
            (Token::Month, false) if found == 2 => expect_number = true,
            (Token::Day, false) if found == 3 && last => {}
            (Token::Year | Token::Month | Token::Day, _) => {
                return Err(invalid(format!(
                    "date '{input}' has 年, 月 or 日 in the wrong place"
                )));
            }
            (Token::Era(_), _) => {
                return Err(invalid(format!(
                    "date '{input}' has an era name that is not at its start"
                )));
            }
            _ => {
                return Err(invalid(format!(
                    "date '{input}' is not year, month and day"
                )));
            }
        }
    }
    if found != 3 || expect_number {
        return Err(invalid(format!(
            "date '{input}' is not year, month and day"
        )));
    }
    Ok(WrittenNumbers {
        numbers,
        year_first,
    })
}

fn tokenise(input: &str) -> Result<Vec<Token>, NormaliseError> {
    let mut tokens = Vec::with_capacity(8);
    let mut chars = input.char_indices().peekable();
    // The value of the digits just read, while nothing (not even a space) has followed them.
    let mut number_just_read: Option<u32> = None;
    while let Some((start, c)) = chars.next() {
        let number_before = number_just_read.take();
        if let Some(d) = digit_value(c) {
            let (mut value, mut digits) = (d, 1u32);
            while let Some(d) = chars.peek().and_then(|&(_, c)| digit_value(c)) {
                chars.next();
                digits += 1;
                if digits > 8 {
                    return Err(invalid(format!(
                        "date '{input}' has a number longer than 8 digits"
                    )));
                }
                value = value * 10 + d;
            }
            tokens.push(Token::Number { value, digits });
            number_just_read = Some(value);
            continue;
        }
        if kanji_digit(c).is_some() {
            let mut run = vec![c];
            while let Some(next) = chars
                .peek()
                .map(|&(_, n)| n)
                .filter(|&n| kanji_digit(n).is_some())
            {
                chars.next();
                run.push(next);
            }
            let Some(value) = kanji_number(&run).filter(|&v| v < 100_000_000) else {
                let run: String = run.into_iter().collect();
                return Err(invalid(format!(
                    "date '{input}' has '{run}', which is not a number"
                )));
            };
            // Positional runs (一九八五, 〇三) count their characters, like digits, so a
            // two-character year stays ambiguous; 十百千 forms count the value's digits.
            let positional = run.iter().all(|&k| kanji_digit(k).is_some_and(|v| v < 10));
            let digits = if positional {
                run.len() as u32
            } else {
                value.checked_ilog10().unwrap_or(0) + 1
            };
            tokens.push(Token::Number { value, digits });
            continue;
        }
        if latin_letter(c).is_some() {
            let mut end = start + c.len_utf8();
            while let Some(&(i, next)) = chars.peek().filter(|&&(_, n)| latin_letter(n).is_some()) {
                chars.next();
                end = i + next.len_utf8();
            }
            let written = &input[start..end];
            let word: String = written.chars().filter_map(latin_letter).collect();
            tokens.push(word_token(
                &word,
                written,
                number_before,
                tokens.is_empty(),
                input,
            )?);
            continue;
        }
        let token = match c {
            c if c.is_whitespace() => continue,
            '-' | '/' | '.' | '－' | '／' | '．' | '‐' | '−' | '・' => Token::Separator,
            ',' | '，' => Token::Comma,
            '年' => Token::Year,
            '月' => Token::Month,
            '日' => Token::Day,
            '元' => Token::Gannen,
            // 生 / 生まれ ("born") after the date, as on resident records, ends the date.
            '生' if matches!(input[start + c.len_utf8()..].trim(), "" | "まれ") => break,
            '㍾' => Token::Era(MEIJI),
            '㍽' => Token::Era(TAISHO),
            '㍼' => Token::Era(SHOWA),
            '㍻' => Token::Era(HEISEI),
            '㋿' => Token::Era(REIWA),
            '明' | '大' | '昭' | '平' | '令' => {
                let era = match (c, chars.next().map(|(_, n)| n)) {
                    ('明', Some('治')) => MEIJI,
                    ('大', Some('正')) => TAISHO,
                    ('昭', Some('和')) => SHOWA,
                    ('平', Some('成')) => HEISEI,
                    ('令', Some('和')) => REIWA,
                    _ => return Err(invalid(format!("date '{input}' has an unknown era"))),
                };
                Token::Era(era)
            }
            other => {
                return Err(invalid(format!(
                    "date '{input}' contains '{other}', which is not part of a date"
                )));
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// The token for a run of Latin letters (`word`, lowercase ASCII; `written` as in the input):
/// an era initial at the start (`S60.4.3`), an English month name, `of`, or the ordinal
/// suffix of the number written right before it, which must be the right one (`1st`, `22nd`).
fn word_token(
    word: &str,
    written: &str,
    number_before: Option<u32>,
    at_start: bool,
    input: &str,
) -> Result<Token, NormaliseError> {
    let era = match word {
        "m" => Some(MEIJI),
        "t" => Some(TAISHO),
        "s" => Some(SHOWA),
        "h" => Some(HEISEI),
        "r" => Some(REIWA),
        _ => None,
    };
    if let Some(era) = era.filter(|_| at_start) {
        return Ok(Token::Era(era));
    }
    if let Some(number) = number_before
        && matches!(word, "st" | "nd" | "rd" | "th")
    {
        let expected = ordinal_suffix(number);
        if word != expected {
            return Err(invalid(format!(
                "date '{input}' has '{number}{written}', which is not an ordinal number \
                 ({number}{expected})"
            )));
        }
        return Ok(Token::OrdinalSuffix);
    }
    if word == "of" {
        return Ok(Token::Of);
    }
    month_of_name(word).map(Token::MonthName).ok_or_else(|| {
        invalid(format!(
            "date '{input}' contains '{written}', which is not part of a date"
        ))
    })
}

/// The English ordinal suffix of `number`: `1st`, `2nd`, `3rd`, `4th`, `11th`, `21st`.
fn ordinal_suffix(number: u32) -> &'static str {
    match (number % 10, number % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// A Latin letter, ASCII or full-width, as lowercase ASCII.
fn latin_letter(c: char) -> Option<char> {
    match c {
        'a'..='z' => Some(c),
        'A'..='Z' => Some(c.to_ascii_lowercase()),
        'ａ'..='ｚ' | 'Ａ'..='Ｚ' => {
            char::from_u32(u32::from(c) - 0xFEE0).map(|a| a.to_ascii_lowercase())
        }
        _ => None,
    }
}

fn digit_value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(u32::from(c) - u32::from('0')),
        '０'..='９' => Some(u32::from(c) - u32::from('０')),
        _ => None,
    }
}

/// Checks a proleptic Gregorian date, years 1..=9999.
fn check_calendar(year: u32, month: u32, day: u32) -> Result<(), NormaliseError> {
    if !(1..=9999).contains(&year) {
        return Err(invalid(format!("year {year} is not in 1..=9999")));
    }
    if !(1..=12).contains(&month) {
        return Err(invalid(format!("month {month} is not in 1..=12")));
    }
    let days = days_in_month(year, month);
    if !(1..=days).contains(&day) {
        let name = MONTH_NAMES[(month - 1) as usize];
        return Err(invalid(format!(
            "day {day} does not exist in {name} {year}, which has {days} days"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
