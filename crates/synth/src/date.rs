//! Calendar dates: days since 1970-01-01 to and from the civil calendar (Howard Hinnant's
//! algorithms), and dates written the ways Japanese and Latin forms write them, Japanese eras
//! (昭和60年4月3日, S60.4.3, 平成元年) included.

/// A civil date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// The year (proleptic Gregorian).
    pub year: i32,
    /// The month, 1..=12.
    pub month: u32,
    /// The day of the month, 1..=31.
    pub day: u32,
}

impl Date {
    /// The date `days` days after 1970-01-01.
    pub fn from_days(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self { year, month, day }
    }

    /// Days since 1970-01-01.
    pub fn to_days(self) -> i64 {
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The Japanese era of this date: its kanji name, its letter and the year within the era.
    pub fn era(self) -> (&'static str, char, i32) {
        // First day of each era.
        const ERAS: [(&str, char, Date); 4] = [
            (
                "令和",
                'R',
                Date {
                    year: 2019,
                    month: 5,
                    day: 1,
                },
            ),
            (
                "平成",
                'H',
                Date {
                    year: 1989,
                    month: 1,
                    day: 8,
                },
            ),
            (
                "昭和",
                'S',
                Date {
                    year: 1926,
                    month: 12,
                    day: 25,
                },
            ),
            (
                "大正",
                'T',
                Date {
                    year: 1912,
                    month: 7,
                    day: 30,
                },
            ),
        ];
        for (name, letter, start) in ERAS {
            if self >= start {
                return (name, letter, self.year - start.year + 1);
            }
        }
        ("明治", 'M', self.year - 1867)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(date: (i32, u32, u32), expected_era: (&str, char, i32)) {
        let d = Date {
            year: date.0,
            month: date.1,
            day: date.2,
        };
        assert_eq!(Date::from_days(d.to_days()), d);
        assert_eq!(d.era(), expected_era, "{d:?}");
    }

    #[test]
    fn eras() {
        check((1985, 4, 3), ("昭和", 'S', 60));
        check((1989, 1, 7), ("昭和", 'S', 64));
        check((1989, 1, 8), ("平成", 'H', 1));
        check((2019, 4, 30), ("平成", 'H', 31));
        check((2019, 5, 1), ("令和", 'R', 1));
        check((1926, 12, 24), ("大正", 'T', 15));
        check((1926, 12, 25), ("昭和", 'S', 1));
        check((1912, 7, 29), ("明治", 'M', 45));
        check((2000, 2, 29), ("平成", 'H', 12));
    }

    #[test]
    fn day_numbers() {
        assert_eq!(
            Date::from_days(0),
            Date {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        assert_eq!(
            Date {
                year: 2025,
                month: 10,
                day: 1
            }
            .to_days(),
            20_362
        );
        for days in (-40_000..40_000).step_by(37) {
            assert_eq!(Date::from_days(days).to_days(), days);
        }
    }
}
