//! clkhash's feature formats (`string`, `integer`, `date`, `enum`): validation of a raw CSV
//! value and its canonical form for hashing, reproducing clkhash 0.18.3's Python semantics
//! (`int()`, `datetime.strptime`, `re.fullmatch`, `str.upper`).

use std::collections::BTreeSet;

use regex::Regex;

use crate::normalise::calendar::{MONTH_NAMES, days_in_month, month_of_name};

/// How a string field's characters become bytes before hashing (clkhash `encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    Utf8,
    Ascii,
    /// Python's `utf-16`: a byte-order mark, then little-endian code units.
    Utf16,
    /// Python's `utf-32`: a byte-order mark, then little-endian code points.
    Utf32,
}

impl TextEncoding {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "utf-8" => Some(Self::Utf8),
            "ascii" => Some(Self::Ascii),
            "utf-16" => Some(Self::Utf16),
            "utf-32" => Some(Self::Utf32),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf-8",
            Self::Ascii => "ascii",
            Self::Utf16 => "utf-16",
            Self::Utf32 => "utf-32",
        }
    }

    /// Appends the encoded bytes of `text` to `out`; `false` if not representable.
    pub(crate) fn encode_into(self, text: &str, out: &mut Vec<u8>) -> bool {
        match self {
            Self::Utf8 => out.extend_from_slice(text.as_bytes()),
            Self::Ascii => {
                if !text.is_ascii() {
                    return false;
                }
                out.extend_from_slice(text.as_bytes());
            }
            Self::Utf16 => {
                out.extend_from_slice(&[0xff, 0xfe]);
                for unit in text.encode_utf16() {
                    out.extend_from_slice(&unit.to_le_bytes());
                }
            }
            Self::Utf32 => {
                out.extend_from_slice(&[0xff, 0xfe, 0, 0]);
                for c in text.chars() {
                    out.extend_from_slice(&u32::from(c).to_le_bytes());
                }
            }
        }
        true
    }
}

/// Letter case constraint of a string field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Upper,
    Lower,
    Mixed,
}

/// The `format` of a clkhash feature.
#[derive(Debug, Clone)]
pub(crate) enum FieldFormat {
    String {
        encoding: TextEncoding,
        pattern: Option<(String, Regex)>,
        case: Case,
        min_length: Option<usize>,
        max_length: Option<usize>,
    },
    Integer {
        minimum: Option<i128>,
        maximum: Option<i128>,
    },
    Date(DateFormat),
    Enum {
        values: BTreeSet<String>,
    },
}

impl FieldFormat {
    pub(crate) fn encoding(&self) -> TextEncoding {
        match self {
            Self::String { encoding, .. } => *encoding,
            _ => TextEncoding::Utf8,
        }
    }

    /// clkhash's `validate`: `Err(reason)` when the value does not conform.
    pub(crate) fn validate(&self, value: &str) -> Result<(), String> {
        let encoding = self.encoding();
        if encoding == TextEncoding::Ascii && !value.is_ascii() {
            return Err(format!(
                "expected entry that can be encoded in ascii, read '{value}'"
            ));
        }
        match self {
            Self::String {
                pattern: Some((text, regex)),
                ..
            } => {
                if !regex.is_match(value) {
                    return Err(format!(
                        "expected entry that conforms to regular expression '{text}', read '{value}'"
                    ));
                }
            }
            Self::String {
                pattern: None,
                case,
                min_length,
                max_length,
                ..
            } => {
                let length = value.chars().count();
                if let Some(min) = min_length
                    && length < *min
                {
                    return Err(format!(
                        "expected string length of at least {min}, read '{value}' of length {length}"
                    ));
                }
                if let Some(max) = max_length
                    && length > *max
                {
                    return Err(format!(
                        "expected string length of at most {max}, read '{value}' of length {length}"
                    ));
                }
                match case {
                    Case::Upper if value.to_uppercase() != value => {
                        return Err(format!("expected upper case string, read '{value}'"));
                    }
                    Case::Lower if value.to_lowercase() != value => {
                        return Err(format!("expected lower case string, read '{value}'"));
                    }
                    _ => {}
                }
            }
            Self::Integer { minimum, maximum } => {
                let v = parse_python_int(value)
                    .ok_or_else(|| format!("invalid integer, read '{value}'"))?;
                if let Some(min) = minimum
                    && v < *min
                {
                    return Err(format!(
                        "expected integer value of at least {min}, read '{v}'"
                    ));
                }
                if let Some(max) = maximum
                    && v > *max
                {
                    return Err(format!(
                        "expected integer value of at most {max}, read '{v}'"
                    ));
                }
            }
            Self::Date(format) => {
                format
                    .parse(value)
                    .map_err(|e| format!("invalid date: {e}"))?;
            }
            Self::Enum { values } => {
                if !values.contains(value) {
                    let list: Vec<&str> = values.iter().map(String::as_str).collect();
                    return Err(format!(
                        "expected one of the values {}, read '{value}'",
                        list.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// clkhash's `_format_regular_value`: the canonical text that is tokenised. Integers lose
    /// signs, spaces and leading zeros (`str(int(v))`), dates become `YYYYMMDD`.
    pub(crate) fn canonical<'v>(
        &self,
        value: &'v str,
    ) -> Result<std::borrow::Cow<'v, str>, String> {
        match self {
            Self::Integer { .. } => parse_python_int(value)
                .map(|v| v.to_string().into())
                .ok_or_else(|| format!("invalid integer, read '{value}'")),
            Self::Date(format) => {
                let (y, m, d) = format
                    .parse(value)
                    .map_err(|e| format!("invalid date: {e}"))?;
                // Python's strftime('%Y') does not zero-pad years below 1000 on glibc.
                Ok(format!("{y}{m:02}{d:02}").into())
            }
            _ => Ok(value.into()),
        }
    }
}

/// The value of a decimal digit Python's `int()` accepts: ASCII and full-width digits.
fn digit_value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        '０'..='９' => Some(c as u32 - '０' as u32),
        _ => None,
    }
}

/// Python's `int(text, 10)`: surrounding whitespace, an optional sign, digits with single
/// underscores between them. `None` when Python would raise (or beyond `i128`).
pub(crate) fn parse_python_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let (negative, digits) = match t.chars().next()? {
        '-' => (true, &t[1..]),
        '+' => (false, &t[1..]),
        _ => (false, t),
    };
    let mut value: i128 = 0;
    let mut seen_digit = false;
    let mut previous_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            if !seen_digit || previous_underscore {
                return None;
            }
            previous_underscore = true;
            continue;
        }
        let d = digit_value(c)?;
        value = value.checked_mul(10)?.checked_add(i128::from(d))?;
        seen_digit = true;
        previous_underscore = false;
    }
    if !seen_digit || previous_underscore {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// A `strptime` date format, compiled to the regular expression Python's `_strptime` builds.
#[derive(Debug, Clone)]
pub(crate) struct DateFormat {
    text: String,
    regex: Regex,
    /// Which capture group holds what, in order.
    groups: Vec<DatePart>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DatePart {
    Year4,
    Year2,
    Month,
    MonthAbbrev,
    MonthName,
    Day,
}

/// Alternatives longest first, as Python's `__seqToRE` orders them (a stable sort).
fn names_regex(names: impl Iterator<Item = String>) -> String {
    let mut names: Vec<String> = names.collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.chars().count()));
    format!("({})", names.join("|"))
}

impl DateFormat {
    /// Compiles a `strptime` format. Supported directives: `%Y %y %m %d %b %B %%`.
    pub(crate) fn compile(format: &str) -> Result<Self, String> {
        // Digits: ASCII and full-width, the decimal digits a Japanese CSV actually contains
        // (Python's `\d` accepts every Unicode decimal digit).
        const D: &str = "[0-9０-９]";
        let mut pattern = String::from(r"(?i)\A");
        let mut groups = Vec::new();
        let mut chars = format.chars().peekable();
        let mut in_space = false;
        while let Some(c) = chars.next() {
            if c.is_whitespace() {
                if !in_space {
                    pattern.push_str(r"\s+");
                }
                in_space = true;
                continue;
            }
            in_space = false;
            if c != '%' {
                pattern.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
                continue;
            }
            let directive = chars.next().ok_or("format ends with a lone '%'")?;
            let (part, re) = match directive {
                'Y' => (DatePart::Year4, format!("({D}{D}{D}{D})")),
                'y' => (DatePart::Year2, format!("({D}{D})")),
                'm' => (DatePart::Month, "(1[0-2]|0[1-9]|[1-9])".to_owned()),
                'd' => (
                    DatePart::Day,
                    format!("(3[01]|[12]{D}|0[1-9]|[1-9]| [1-9])"),
                ),
                'b' => (
                    DatePart::MonthAbbrev,
                    names_regex(MONTH_NAMES.iter().map(|m| m[..3].to_owned())),
                ),
                'B' => (
                    DatePart::MonthName,
                    names_regex(MONTH_NAMES.iter().map(|m| (*m).to_owned())),
                ),
                '%' => {
                    pattern.push('%');
                    continue;
                }
                other => {
                    return Err(format!(
                        "date directive '%{other}' is not supported (use %Y %y %m %d %b %B)"
                    ));
                }
            };
            groups.push(part);
            pattern.push_str(&re);
        }
        let regex = Regex::new(&pattern).map_err(|e| format!("cannot compile date format: {e}"))?;
        Ok(Self {
            text: format.to_owned(),
            regex,
            groups,
        })
    }

    /// Parses a date the way `datetime.strptime` does: the format must match a prefix and the
    /// whole input must be consumed; missing parts default to 1900-01-01.
    pub(crate) fn parse(&self, value: &str) -> Result<(i32, u32, u32), String> {
        let caps = self
            .regex
            .captures(value)
            .ok_or_else(|| format!("'{value}' does not match format '{}'", self.text))?;
        let whole = caps.get(0).map_or(0, |m| m.end());
        if whole != value.len() {
            return Err(format!("unconverted data remains: '{}'", &value[whole..]));
        }
        let (mut year, mut month, mut day) = (1900i32, 1u32, 1u32);
        for (i, part) in self.groups.iter().enumerate() {
            let text = caps.get(i + 1).map_or("", |m| m.as_str());
            let number = || {
                text.trim()
                    .chars()
                    .filter_map(digit_value)
                    .fold(0u32, |a, d| a * 10 + d)
            };
            match part {
                DatePart::Year4 => year = number() as i32,
                DatePart::Year2 => {
                    let y = number() as i32;
                    year = if y < 69 { 2000 + y } else { 1900 + y };
                }
                DatePart::Month => month = number(),
                DatePart::Day => day = number(),
                DatePart::MonthAbbrev | DatePart::MonthName => {
                    // The regex admits only the names in any case; one that matched by
                    // Unicode case folding alone (`ſep`) is not a name here and reads as January.
                    month = month_of_name(&text.to_lowercase()).unwrap_or(1);
                }
            }
        }
        let Some(positive_year) = u32::try_from(year).ok().filter(|&y| y >= 1) else {
            return Err(format!("year {year} is out of range"));
        };
        if day > days_in_month(positive_year, month) {
            return Err(format!("day is out of range for month in '{value}'"));
        }
        Ok((year, month, day))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_int(input: &str, expected: Option<i128>) {
        assert_eq!(parse_python_int(input), expected, "int({input:?})");
    }

    #[test]
    fn python_int_cases() {
        check_int("13", Some(13));
        check_int(" +13 ", Some(13));
        check_int("-0013", Some(-13));
        check_int("1_000", Some(1000));
        check_int("１２", Some(12));
        check_int("1__0", None);
        check_int("_1", None);
        check_int("1_", None);
        check_int("", None);
        check_int("-", None);
        check_int("1.5", None);
        check_int("0x10", None);
    }

    fn check_date(format: &str, input: &str, expected: Result<(i32, u32, u32), &str>) {
        let got = DateFormat::compile(format).unwrap().parse(input);
        assert_eq!(
            got,
            expected.map_err(str::to_owned),
            "strptime({input:?}, {format:?})"
        );
    }

    #[test]
    fn strptime_cases() {
        check_date("%Y-%m-%d", "1990-01-02", Ok((1990, 1, 2)));
        check_date("%Y-%m-%d", "1990-1-2", Ok((1990, 1, 2)));
        // Like Python: %Y and the second digit of %d take any decimal digit, %m only ASCII.
        check_date("%Y/%m/%d", "２０００/02/2９", Ok((2000, 2, 29)));
        check_date(
            "%Y/%m/%d",
            "2000/０２/29",
            Err("'2000/０２/29' does not match format '%Y/%m/%d'"),
        );
        check_date("%Y%m%d", "19901231", Ok((1990, 12, 31)));
        // Python's regex takes "12" for the month and "3" for the day.
        check_date("%Y%m%d", "1990123", Ok((1990, 12, 3)));
        check_date("%d %b %Y", "5  MAR 1999", Ok((1999, 3, 5)));
        check_date("%d/%m/%y", "01/02/68", Ok((2068, 2, 1)));
        check_date("%d/%m/%y", "01/02/69", Ok((1969, 2, 1)));
        check_date(
            "%Y-%m-%d",
            "1900-02-29",
            Err("day is out of range for month in '1900-02-29'"),
        );
        check_date(
            "%Y-%m-%d",
            "1990-13-01",
            Err("'1990-13-01' does not match format '%Y-%m-%d'"),
        );
        check_date(
            "%Y-%m-%d",
            "1990-01-011",
            Err("unconverted data remains: '1'"),
        );
        check_date("%Y-%m-%d", "0000-01-01", Err("year 0 is out of range"));
    }

    #[test]
    fn unsupported_directive_is_named() {
        assert_eq!(
            DateFormat::compile("%Y-%j").unwrap_err(),
            "date directive '%j' is not supported (use %Y %y %m %d %b %B)"
        );
    }

    #[test]
    fn encodings_match_python() {
        let mut out = Vec::new();
        assert!(TextEncoding::Utf16.encode_into("aé", &mut out));
        assert_eq!(out, [0xff, 0xfe, b'a', 0, 0xe9, 0]);
        out.clear();
        assert!(!TextEncoding::Ascii.encode_into("é", &mut out));
    }
}
