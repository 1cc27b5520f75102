//! Kanji numerals (漢数字) as used in addresses and dates: `三`, `二十一`, `千九百八十五`, and
//! the positional `一九八五` and `二〇`.

pub(super) fn kanji_digit(c: char) -> Option<u32> {
    Some(match c {
        '〇' | '零' => 0,
        '一' => 1,
        '二' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        '十' => 10,
        '百' => 100,
        '千' => 1000,
        _ => return None,
    })
}

/// The value of a run of kanji numerals: positional (`二〇` = 20) when it has no 十百千,
/// otherwise multiplicative (`二十一` = 21, `百五` = 105). `None` for a malformed or huge run.
pub(super) fn kanji_number(run: &[char]) -> Option<u32> {
    if run.len() > 9 {
        return None;
    }
    let values: Vec<u32> = run.iter().map(|&c| kanji_digit(c)).collect::<Option<_>>()?;
    if values.iter().all(|&v| v < 10) {
        return Some(values.iter().fold(0, |acc, &v| acc * 10 + v));
    }
    let (mut total, mut pending) = (0u32, None::<u32>);
    let mut last_unit = u32::MAX;
    for v in values {
        if v < 10 {
            if pending.is_some() {
                return None;
            }
            pending = Some(v);
        } else {
            if v >= last_unit {
                return None;
            }
            last_unit = v;
            total += pending.take().unwrap_or(1) * v;
        }
    }
    Some(total + pending.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kanji_numbers() {
        let value = |s: &str| kanji_number(&s.chars().collect::<Vec<_>>());
        assert_eq!(value("三"), Some(3));
        assert_eq!(value("十"), Some(10));
        assert_eq!(value("十五"), Some(15));
        assert_eq!(value("二十"), Some(20));
        assert_eq!(value("二十一"), Some(21));
        assert_eq!(value("百五"), Some(105));
        assert_eq!(value("千二百三十四"), Some(1234));
        assert_eq!(value("二〇"), Some(20));
        assert_eq!(value("十十"), None);
        assert_eq!(value("二三十"), None);
        assert_eq!(value("一二三四五六七八九十"), None);
    }

    /// Kanji numerals written by kanjize 1.6.1 (scripts/gen_normalise_vectors.py).
    #[test]
    fn kanjize_vectors() {
        let vectors = include_str!("testdata/kanji_numerals.tsv");
        let mut checked = 0;
        for line in vectors.lines().filter(|l| !l.starts_with('#')) {
            let (kanji, value) = line.split_once('\t').expect("two columns");
            let run: Vec<char> = kanji.chars().collect();
            assert_eq!(
                kanji_number(&run).map(|v| v.to_string()).as_deref(),
                Some(value),
                "{kanji}"
            );
            checked += 1;
        }
        assert!(checked > 200);
    }
}
