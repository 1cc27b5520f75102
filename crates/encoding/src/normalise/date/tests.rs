//! The date steps' tests: one `check` over the three numeric orders, the forms each accepts
//! and rejects with the exact message, japanera's era dates, and round trips by proptest.

use super::*;
use crate::normalise::checks::check_fallible_step;
use proptest::prelude::*;

use NumericOrder::{DayFirst, MonthFirst, YearFirst};

/// The steps `date`, `date-dmy` and `date-mdy`.
const ALL: &[NumericOrder] = &[YearFirst, DayFirst, MonthFirst];
const DATE: &[NumericOrder] = &[YearFirst];
const DMY: &[NumericOrder] = &[DayFirst];
const MDY: &[NumericOrder] = &[MonthFirst];

/// Checks `input` under each of `orders`, all of which must give `expected`.
fn check(orders: &[NumericOrder], input: &str, expected: Result<&str, &str>) {
    for &order in orders {
        let step = |input: &str, out: &mut String| normalise_date_in_order(input, order, out);
        check_fallible_step(step, input, expected);
    }
}

#[test]
fn gregorian_forms() {
    check(ALL, "1985-04-03", Ok("1985-04-03"));
    check(ALL, "1985-4-3", Ok("1985-04-03"));
    check(ALL, "1985/4/3", Ok("1985-04-03"));
    check(ALL, "1985.04.03", Ok("1985-04-03"));
    check(ALL, "19850403", Ok("1985-04-03"));
    check(ALL, "１９８５／０４／０３", Ok("1985-04-03"));
    check(ALL, "１９８５０４０３", Ok("1985-04-03"));
    check(ALL, "1985年4月3日", Ok("1985-04-03"));
    check(ALL, "1985年 4月 3日", Ok("1985-04-03"));
    check(ALL, " 1985-04-03 ", Ok("1985-04-03"));
    check(ALL, "1985-04-03 00:00:00", Ok("1985-04-03"));
    check(ALL, "1985/4/3 0:00", Ok("1985-04-03"));
    check(ALL, "1985-04-03T12:34:56.789", Ok("1985-04-03"));
    check(ALL, "昭和60年4月3日 9:30", Ok("1985-04-03"));
    check(ALL, "昭和60年4月3日\u{3000}9:30", Ok("1985-04-03"));
    check(ALL, "昭和60年4月3日生", Ok("1985-04-03"));
    check(ALL, "昭和60年4月3日 生まれ", Ok("1985-04-03"));
    check(ALL, "2000-02-29", Ok("2000-02-29"));
    check(ALL, "1850-01-01", Ok("1850-01-01"));
}

#[test]
fn era_forms() {
    check(ALL, "昭和60年4月3日", Ok("1985-04-03"));
    check(ALL, "S60.4.3", Ok("1985-04-03"));
    check(ALL, "s60/4/3", Ok("1985-04-03"));
    check(ALL, "S60-04-03", Ok("1985-04-03"));
    check(ALL, "S600403", Ok("1985-04-03"));
    check(ALL, "Ｓ６０．４．３", Ok("1985-04-03"));
    check(ALL, "㍼60年4月3日", Ok("1985-04-03"));
    check(ALL, "昭和 60年 4月 3日", Ok("1985-04-03"));
    check(ALL, "平成元年1月8日", Ok("1989-01-08"));
    check(ALL, "H1/1/8", Ok("1989-01-08"));
    check(ALL, "H元.1.8", Ok("1989-01-08"));
    check(ALL, "R5.12.1", Ok("2023-12-01"));
    check(ALL, "令和元年5月1日", Ok("2019-05-01"));
    check(ALL, "㋿5年12月1日", Ok("2023-12-01"));
    check(ALL, "平成31年4月30日", Ok("2019-04-30"));
    check(ALL, "昭和六十年四月三日", Ok("1985-04-03"));
    check(ALL, "一九八五年四月三日", Ok("1985-04-03"));
    check(ALL, "千九百八十五年十二月三十一日", Ok("1985-12-31"));
    check(ALL, "平成元年一月八日", Ok("1989-01-08"));
    check(ALL, "令和五年十二月一日", Ok("2023-12-01"));
    check(ALL, "昭和64年1月7日", Ok("1989-01-07"));
    check(ALL, "昭和元年12月25日", Ok("1926-12-25"));
    check(ALL, "大正元年7月30日", Ok("1912-07-30"));
    check(ALL, "T15.12.24", Ok("1926-12-24"));
    check(ALL, "明治45年7月29日", Ok("1912-07-29"));
    check(ALL, "M6.1.1", Ok("1873-01-01"));
    check(
        ALL,
        "明治33年2月29日",
        Err("day 29 does not exist in february 1900, which has 28 days"),
    );
}

/// `input` read leniently: `Ok((date, read outside its era))` or the error.
fn lenient(input: &str) -> Result<(String, bool), String> {
    let mut out = String::new();
    let mut results = Vec::new();
    for order in [YearFirst, DayFirst, MonthFirst] {
        results.push(
            normalise_date_with(input, order, EraReading::Lenient, &mut out)
                .map(|outside| (out.clone(), outside))
                .map_err(|e| e.to_string()),
        );
    }
    // Era dates read the same in every numeric order.
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "{input}: {results:?}"
    );
    results.swap_remove(0)
}

#[test]
fn lenient_era_reading_golden_cases() {
    let ok = |date: &str, outside: bool| Ok((date.to_owned(), outside));
    assert_eq!(lenient("平成32年1月1日"), ok("2020-01-01", true));
    assert_eq!(lenient("令和元年4月1日"), ok("2019-04-01", true));
    // 昭和 ended on 1989-01-07: 昭和64年1月8日 is the day that was 平成元年1月8日.
    assert_eq!(lenient("昭和64年1月8日"), ok("1989-01-08", true));
    assert_eq!(lenient("昭和64年1月7日"), ok("1989-01-07", false));
    assert_eq!(lenient("平成元年1月7日"), ok("1989-01-07", true));
    assert_eq!(lenient("H32.1.1"), ok("2020-01-01", true));
    assert_eq!(lenient("Ｈ３２．５．１"), ok("2020-05-01", true));
    assert_eq!(lenient("H320101"), ok("2020-01-01", true));
    assert_eq!(lenient("平成三十二年一月一日"), ok("2020-01-01", true));
    assert_eq!(lenient("大正15年12月25日"), ok("1926-12-25", true));
    assert_eq!(lenient("令和5年12月1日"), ok("2023-12-01", false));
    assert_eq!(lenient("平成31年4月30日"), ok("2019-04-30", false));
    assert_eq!(lenient("1985-04-03"), ok("1985-04-03", false));
    assert_eq!(lenient("5 Jul 1982"), ok("1982-07-05", false));
    // Still errors: impossible days, year 0, Meiji before the Gregorian calendar.
    assert_eq!(
        lenient("平成32年2月30日"),
        Err("day 30 does not exist in february 2020, which has 29 days".to_owned())
    );
    assert_eq!(
        lenient("平成0年1月1日"),
        Err("平成 year 0 does not exist; the first year is 1 (元年)".to_owned())
    );
    assert_eq!(
        lenient("明治5年1月1日"),
        Err("明治5年 (1872) is before 1873, when Japan adopted the gregorian calendar; the date cannot be converted".to_owned())
    );
}

#[test]
fn strict_era_reading_is_the_steps_behaviour() {
    let mut out = String::new();
    for input in [
        "平成32年1月1日",
        "令和元年4月1日",
        "昭和64年1月8日",
        "平成元年1月7日",
    ] {
        let strict = normalise_date_with(input, YearFirst, EraReading::Strict, &mut out)
            .map_err(|e| e.to_string());
        let step = normalise_date(input, &mut out).map_err(|e| e.to_string());
        assert_eq!(strict.clone().map(|_| ()), step, "{input}");
        assert!(strict.is_err(), "{input}");
    }
    assert_eq!(
        normalise_date("令和元年4月1日", &mut out)
            .unwrap_err()
            .to_string(),
        "令和1年4月1日 (2019-04-01) is before 令和 began on 2019-05-01"
    );
    assert_eq!(
        normalise_date_with("1985-04-03", YearFirst, EraReading::Strict, &mut out),
        Ok(false)
    );
    assert_eq!(EraReading::default(), EraReading::Strict);
}

#[test]
fn era_boundaries() {
    check(
        ALL,
        "平成元年1月7日",
        Err("平成1年1月7日 (1989-01-07) is before 平成 began on 1989-01-08"),
    );
    check(
        ALL,
        "H1.1.7",
        Err("平成1年1月7日 (1989-01-07) is before 平成 began on 1989-01-08"),
    );
    check(
        ALL,
        "平成31年5月1日",
        Err("平成31年5月1日 (2019-05-01) is after 平成 ended on 2019-04-30"),
    );
    check(
        ALL,
        "平成32年1月1日",
        Err("平成32年1月1日 (2020-01-01) is after 平成 ended on 2019-04-30"),
    );
    check(
        ALL,
        "令和元年4月30日",
        Err("令和1年4月30日 (2019-04-30) is before 令和 began on 2019-05-01"),
    );
    check(
        ALL,
        "昭和64年1月8日",
        Err("昭和64年1月8日 (1989-01-08) is after 昭和 ended on 1989-01-07"),
    );
    check(
        ALL,
        "大正元年7月29日",
        Err("大正1年7月29日 (1912-07-29) is before 大正 began on 1912-07-30"),
    );
    check(
        ALL,
        "明治5年12月2日",
        Err(
            "明治5年 (1872) is before 1873, when Japan adopted the gregorian calendar; the date cannot be converted",
        ),
    );
    check(
        ALL,
        "S0.1.1",
        Err("昭和 year 0 does not exist; the first year is 1 (元年)"),
    );
}

#[test]
fn impossible_dates() {
    check(
        ALL,
        "1985-02-30",
        Err("day 30 does not exist in february 1985, which has 28 days"),
    );
    check(
        ALL,
        "1900-02-29",
        Err("day 29 does not exist in february 1900, which has 28 days"),
    );
    check(ALL, "1985-13-01", Err("month 13 is not in 1..=12"));
    check(ALL, "1985-00-10", Err("month 0 is not in 1..=12"));
    check(
        ALL,
        "1985-04-31",
        Err("day 31 does not exist in april 1985, which has 30 days"),
    );
    check(
        ALL,
        "1985-04-00",
        Err("day 0 does not exist in april 1985, which has 30 days"),
    );
    check(ALL, "0000-01-01", Err("year 0 is not in 1..=9999"));
}

#[test]
fn malformed_dates() {
    check(ALL, "", Err("date is empty"));
    check(ALL, "   ", Err("date is empty"));
    check(
        DATE,
        "85/4/3",
        Err("date '85/4/3' has a 2-digit year; write the year with 4 digits or an era"),
    );
    check(
        ALL,
        "1985-04",
        Err("date '1985-04' is not year, month and day"),
    );
    check(
        ALL,
        "1985-04-03-01",
        Err("date '1985-04-03-01' is not year, month and day"),
    );
    check(
        ALL,
        "1985--04-03",
        Err("date '1985--04-03' is not year, month and day"),
    );
    check(
        ALL,
        "1985-04-03-",
        Err("date '1985-04-03-' is not year, month and day"),
    );
    check(
        ALL,
        "1985月4年3日",
        Err("date '1985月4年3日' has 年, 月 or 日 in the wrong place"),
    );
    check(
        ALL,
        "1985-04-03T",
        Err("date '1985-04-03T' contains 'T', which is not part of a date"),
    );
    check(
        ALL,
        "1985-04-03T00:00+09:00",
        Err(
            "date '1985-04-03T00:00+09:00' has a time part '00:00+09:00' that is not H:MM, H:MM:SS or H:MM:SS.fff",
        ),
    );
    check(
        ALL,
        "1985-04-03 24:00",
        Err(
            "date '1985-04-03 24:00' has a time part '24:00' that is not H:MM, H:MM:SS or H:MM:SS.fff",
        ),
    );
    check(
        ALL,
        "1985-04-03 1:2",
        Err("date '1985-04-03 1:2' has a time part '1:2' that is not H:MM, H:MM:SS or H:MM:SS.fff"),
    );
    check(
        ALL,
        "1985:04:03",
        Err("date '1985:04:03' contains ':', which is not part of a date"),
    );
    check(
        ALL,
        "1985043",
        Err("date '1985043' has 7 digits and no separators, expected 8 (YYYYMMDD)"),
    );
    check(
        ALL,
        "S6043",
        Err("date 'S6043' has 4 digits and no separators, expected 6 (YYMMDD after the era)"),
    );
    check(
        ALL,
        "1985元年",
        Err("date '1985元年' has 元 (first year) in the wrong place"),
    );
    check(ALL, "昭60年", Err("date '昭60年' has an unknown era"));
    check(
        ALL,
        "昭和60年4月3日生x",
        Err("date '昭和60年4月3日生x' contains '生', which is not part of a date"),
    );
    check(
        ALL,
        "八五年四月三日",
        Err("date '八五年四月三日' has a 2-digit year; write the year with 4 digits or an era"),
    );
    check(
        ALL,
        "昭和十十年",
        Err("date '昭和十十年' has '十十', which is not a number"),
    );
    check(
        ALL,
        "1985-04-03昭和",
        Err("date '1985-04-03昭和' has an era name that is not at its start"),
    );
    check(
        ALL,
        "昭和60年4月3日昭和",
        Err("date '昭和60年4月3日昭和' has 年, 月 or 日 in the wrong place"),
    );
    check(
        ALL,
        "123456789",
        Err("date '123456789' has a number longer than 8 digits"),
    );
    check(
        ALL,
        "Aprl 3, 1985",
        Err("date 'Aprl 3, 1985' contains 'Aprl', which is not part of a date"),
    );
    check(
        ALL,
        &"1".repeat(65),
        Err("date is 65 bytes long, at most 64 expected"),
    );
}

#[test]
fn numeric_orders_with_the_year_last() {
    check(DMY, "15/07/1981", Ok("1981-07-15"));
    check(DMY, "15.07.1981", Ok("1981-07-15"));
    check(DMY, "15-07-1981", Ok("1981-07-15"));
    check(DMY, "5/7/1981", Ok("1981-07-05"));
    check(DMY, "１５／０７／１９８１", Ok("1981-07-15"));
    check(DMY, "15/07/1981 00:00:00", Ok("1981-07-15"));
    check(DMY, "29/02/2000", Ok("2000-02-29"));
    check(MDY, "07/15/1981", Ok("1981-07-15"));
    check(MDY, "7/5/1981", Ok("1981-07-05"));
    check(MDY, "02-29-2000", Ok("2000-02-29"));
    check(MDY, "12.31.1999", Ok("1999-12-31"));
    // Year first stays year first, whatever the declared order.
    check(ALL, "1981/07/05", Ok("1981-07-05"));
    check(ALL, "19810705", Ok("1981-07-05"));
    let ambiguous = "date '15/07/1981' has the year last, so its day and month could be either \
         way round; use the step date-dmy (day first) or date-mdy (month first)";
    check(DATE, "15/07/1981", Err(ambiguous));
    check(
        DATE,
        "3/4/1985",
        Err(
            "date '3/4/1985' has the year last, so its day and month could be either way \
             round; use the step date-dmy (day first) or date-mdy (month first)",
        ),
    );
    check(DMY, "3/4/1985", Ok("1985-04-03"));
    check(MDY, "3/4/1985", Ok("1985-03-04"));
    check(MDY, "15/07/1981", Err("month 15 is not in 1..=12"));
    check(DMY, "07/15/1981", Err("month 15 is not in 1..=12"));
    check(
        DMY,
        "31/04/1981",
        Err("day 31 does not exist in april 1981, which has 30 days"),
    );
    check(
        MDY,
        "02/29/1900",
        Err("day 29 does not exist in february 1900, which has 28 days"),
    );
    check(
        DMY,
        "15/07/81",
        Err("date '15/07/81' has a 2-digit year; write the year with 4 digits"),
    );
    check(
        MDY,
        "7/15/81",
        Err("date '7/15/81' has a 2-digit year; write the year with 4 digits"),
    );
    check(
        DATE,
        "15/07/81",
        Err("date '15/07/81' has a 2-digit year; write the year with 4 digits or an era"),
    );
    check(
        DMY,
        "85/4/3",
        Err("date '85/4/3' has a 1-digit year; write the year with 4 digits"),
    );
    // Compact digits are always YYYYMMDD, never DDMMYYYY.
    check(DMY, "15071981", Err("month 19 is not in 1..=12"));
    check(
        DMY,
        "15年07月1981日",
        Err("date '15年07月1981日' has a 2-digit year; write the year with 4 digits or an era"),
    );
    check(DMY, "15/07", Err("date '15/07' is not year, month and day"));
    check(
        DMY,
        "15 07 1981",
        Err("date '15 07 1981' is not year, month and day"),
    );
}

#[test]
fn english_month_names() {
    check(ALL, "5 Jul 1982", Ok("1982-07-05"));
    check(ALL, "5 July 1982", Ok("1982-07-05"));
    check(ALL, "5 jul 1982", Ok("1982-07-05"));
    check(ALL, "05 JULY 1982", Ok("1982-07-05"));
    check(ALL, "July 5, 1982", Ok("1982-07-05"));
    check(ALL, "Jul 5 1982", Ok("1982-07-05"));
    check(ALL, "Jul. 5, 1982", Ok("1982-07-05"));
    check(ALL, "5 Jul. 1982", Ok("1982-07-05"));
    check(ALL, "5 July, 1982", Ok("1982-07-05"));
    check(ALL, "1982-Jul-05", Ok("1982-07-05"));
    check(ALL, "1982 July 5", Ok("1982-07-05"));
    check(ALL, "05-JUL-1982", Ok("1982-07-05"));
    check(ALL, "05/Jul/1982", Ok("1982-07-05"));
    check(ALL, "05JUL1982", Ok("1982-07-05"));
    check(ALL, "5th July 1982", Ok("1982-07-05"));
    check(ALL, "5th of July 1982", Ok("1982-07-05"));
    check(ALL, "July 5th, 1982", Ok("1982-07-05"));
    check(ALL, "1st May 1990", Ok("1990-05-01"));
    check(ALL, "22nd Sept 1990", Ok("1990-09-22"));
    check(ALL, "23rd Sep. 1990", Ok("1990-09-23"));
    check(ALL, "11th Nov 1990", Ok("1990-11-11"));
    check(ALL, "12th Dec 1990", Ok("1990-12-12"));
    check(ALL, "13th Dec 1990", Ok("1990-12-13"));
    check(ALL, "21st Dec 1990", Ok("1990-12-21"));
    check(ALL, "31st Dec 1990", Ok("1990-12-31"));
    check(ALL, "February 29, 2000", Ok("2000-02-29"));
    check(ALL, "５　Ｊｕｌ　１９８２", Ok("1982-07-05"));
    check(ALL, "5 Jul 1982 00:00", Ok("1982-07-05"));
    check(ALL, " december 31 1999 ", Ok("1999-12-31"));
    check(
        ALL,
        "February 29, 1900",
        Err("day 29 does not exist in february 1900, which has 28 days"),
    );
    check(
        ALL,
        "31 Apr 1982",
        Err("day 31 does not exist in april 1982, which has 30 days"),
    );
    check(
        ALL,
        "0 Jul 1982",
        Err("day 0 does not exist in july 1982, which has 31 days"),
    );
    check(
        ALL,
        "5 Jul 82",
        Err("date '5 Jul 82' has a 2-digit year; write the year with 4 digits"),
    );
    check(
        ALL,
        "Jul 5, 82",
        Err("date 'Jul 5, 82' has a 2-digit year; write the year with 4 digits"),
    );
    let not_a_date = |input: &str| {
        format!(
            "date '{input}' is not day, month name and year (5 jul 1982, jul 5 1982 or \
             1982-jul-05)"
        )
    };
    for input in [
        "Jul 1982",
        "5 Jul",
        "5 1982 Jul",
        "1982 5 Jul",
        "5 Jul Aug 1982",
        "5 Jul 1982 1",
        "5 Jul 1982,",
        ", 5 Jul 1982",
        "5, , Jul 1982",
        "5 Jul 1982nd",
        "5 of July 1982",
        "5th of, July 1982",
        "昭和 Jul 5",
        "5 Jul 1982年",
        "1982年Jul5日",
    ] {
        check(ALL, input, Err(&not_a_date(input)));
    }
    check(
        ALL,
        "5st July 1982",
        Err("date '5st July 1982' has '5st', which is not an ordinal number (5th)"),
    );
    check(ALL, "1982 Jul 5th", Ok("1982-07-05"));
    check(
        ALL,
        "5 Jul 1982th",
        Err("date '5 Jul 1982th' has '1982th', which is not an ordinal number (1982nd)"),
    );
    check(
        ALL,
        "12nd July 1982",
        Err("date '12nd July 1982' has '12nd', which is not an ordinal number (12th)"),
    );
    check(
        ALL,
        "11st July 1982",
        Err("date '11st July 1982' has '11st', which is not an ordinal number (11th)"),
    );
    check(
        ALL,
        "5 Juli 1982",
        Err("date '5 Juli 1982' contains 'Juli', which is not part of a date"),
    );
    check(
        ALL,
        "Mon 5 Jul 1982",
        Err("date 'Mon 5 Jul 1982' contains 'Mon', which is not part of a date"),
    );
    check(
        ALL,
        "5th of 1982",
        Err("date '5th of 1982' is not year, month and day"),
    );
    check(
        ALL,
        "5 th July 1982",
        Err("date '5 th July 1982' contains 'th', which is not part of a date"),
    );
}

/// Era dates converted by japanera 2.1.3 (scripts/gen_normalise_vectors.py). japanera
/// converts Meiji dates before 1873 naively; this step rejects them (lunisolar calendar).
#[test]
fn japanera_vectors() {
    let vectors = include_str!("../testdata/era_dates.tsv");
    let mut checked = 0;
    for line in vectors.lines().filter(|l| !l.starts_with('#')) {
        let (input, iso) = line.split_once('\t').expect("two columns");
        for &order in ALL {
            let mut out = String::new();
            let got = normalise_date_in_order(input, order, &mut out).map(|()| out.as_str());
            if iso < "1873-01-01" {
                assert!(got.is_err(), "{input} should be rejected, got {got:?}");
            } else {
                assert_eq!(got, Ok(iso), "{input} under {order:?}");
            }
        }
        checked += 1;
    }
    assert!(checked > 1_000);
}

/// A valid date, years 1000..=9999 (four digits).
fn valid_date() -> impl Strategy<Value = (u32, u32, u32)> {
    (1000u32..=9999, 1u32..=12).prop_flat_map(|(y, m)| (Just(y), Just(m), 1..=days_in_month(y, m)))
}

/// `name` in the case `case` picks: lower, upper or capitalised.
fn in_case(name: &str, case: usize) -> String {
    match case {
        0 => name.to_owned(),
        1 => name.to_ascii_uppercase(),
        _ => name[..1].to_ascii_uppercase() + &name[1..],
    }
}

proptest! {
    /// The fast path for `YYYY-MM-DD` / `YYYYMMDD` gives exactly what the general path gives,
    /// dates and errors, in every order, on digit strings of those shapes (valid or not).
    #[test]
    fn iso_fast_path_agrees_with_the_general_path(
        digits in "[0-9]{8}",
        separator in proptest::sample::select(vec!["", "-", "/", ".", "-/"]),
    ) {
        let input = match separator {
            "" => digits.clone(),
            "-/" => format!("{}-{}/{}", &digits[..4], &digits[4..6], &digits[6..]),
            s => format!("{}{s}{}{s}{}", &digits[..4], &digits[4..6], &digits[6..]),
        };
        for order in [YearFirst, DayFirst, MonthFirst] {
            let general = parse_date_in_general(&input, order, EraReading::Strict).and_then(|((y, m, d), _)| {
                check_calendar(y, m, d).map(|()| (y, m, d))
            });
            prop_assert_eq!(
                parse_date(&input, order).map_err(|e| e.to_string()),
                general.map_err(|e| e.to_string()),
                "{}", input
            );
        }
    }

    #[test]
    fn numeric_orders_read_back(
        (year, month, day) in valid_date(),
        separator in proptest::sample::select(vec!['/', '.', '-']),
        padded in any::<bool>(),
    ) {
        let iso = format!("{year:04}-{month:02}-{day:02}");
        let (d, m) = if padded {
            (format!("{day:02}"), format!("{month:02}"))
        } else {
            (day.to_string(), month.to_string())
        };
        let s = separator;
        let mut out = String::new();
        let day_first = format!("{d}{s}{m}{s}{year}");
        prop_assert_eq!(
            normalise_date_in_order(&day_first, DayFirst, &mut out).map(|()| out.clone()),
            Ok(iso.clone()),
            "{}", day_first
        );
        let month_first = format!("{m}{s}{d}{s}{year}");
        prop_assert_eq!(
            normalise_date_in_order(&month_first, MonthFirst, &mut out).map(|()| out.clone()),
            Ok(iso.clone()),
            "{}", month_first
        );
        // The default step never guesses.
        prop_assert!(normalise_date(&day_first, &mut out).is_err());
    }

    #[test]
    fn month_names_read_back_under_every_order(
        (year, month, day) in valid_date(),
        form in 0usize..6,
        full_name in any::<bool>(),
        case in 0usize..3,
    ) {
        let iso = format!("{year:04}-{month:02}-{day:02}");
        let full = MONTH_NAMES[(month - 1) as usize];
        let name = in_case(if full_name { full } else { &full[..3] }, case);
        let suffix = ordinal_suffix(day);
        let input = match form {
            0 => format!("{day} {name} {year}"),
            1 => format!("{name} {day}, {year}"),
            2 => format!("{year}-{name}-{day:02}"),
            3 => format!("{day:02}-{name}-{year}"),
            4 => format!("{day}{suffix} of {name} {year}"),
            _ => format!("{name}. {day}{suffix} {year}"),
        };
        for &order in ALL {
            let mut out = String::new();
            let got = normalise_date_in_order(&input, order, &mut out).map(|()| out);
            prop_assert_eq!(got, Ok(iso.clone()), "{} under {:?}", input, order);
        }
    }
}
