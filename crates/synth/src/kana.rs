//! Kana and kanji spelling variants as a clerk might type them: hiragana for katakana,
//! half-width katakana, long-vowel marks, one-character typos, and the old or variant kanji
//! (異体字) that the registry may hold in one form and the insurer in another.

use crate::rng::StreamRng;

/// Full-width katakana in the order of the half-width block U+FF66..=U+FF9D.
const HALF_WIDTH_ORDER: &str = "ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン";
const VOICED: &str = "ガギグゲゴザジズゼゾダヂヅデドバビブベボヴ";
const UNVOICED: &str = "カキクケコサシスセソタチツテトハヒフヘホウ";
const SEMI_VOICED: &str = "パピプペポ";
const SEMI_BASE: &str = "ハヒフヘホ";

/// Five-column rows of the syllabary: a typo replaces a kana by another of its row.
const ROWS: &str = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモラリルレロガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポ";
const O_ROW: &str = "オコソトノホモヨロゴゾドボポョ";
const U_ROW: &str = "ウクスツヌフムユルグズヅブプュ";
const E_ROW: &str = "エケセテネヘメレゲゼデベペ";

/// Kanji and a variant form a clerk or a registry may write instead (髙 for 高, 﨑 for 崎 ...).
pub(crate) const KANJI_VARIANTS: &[(char, &str)] = &[
    ('高', "髙"),
    ('崎', "﨑"),
    ('辺', "邊邉"),
    ('斎', "齋齊斉"),
    ('沢', "澤"),
    ('島', "嶋嶌"),
    ('浜', "濱"),
    ('竜', "龍"),
    ('桜', "櫻"),
    ('国', "國"),
    ('広', "廣"),
    ('恵', "惠"),
    ('真', "眞"),
    ('徳', "德"),
    ('吉', "𠮷"),
    ('槙', "槇"),
    ('富', "冨"),
    ('関', "關"),
    ('黒', "黑"),
    ('条', "條"),
    ('瀬', "瀨"),
    ('栄', "榮"),
    ('実', "實"),
    ('滝', "瀧"),
    ('桧', "檜"),
    ('亀', "龜"),
    ('来', "來"),
    ('万', "萬"),
    ('蔵', "藏"),
    ('清', "淸"),
    ('塚', "\u{FA10}"),
    ('隆', "\u{F9DC}"),
];

fn nth(table: &str, index: usize) -> Option<char> {
    table.chars().nth(index)
}

fn position(table: &str, c: char) -> Option<usize> {
    table.chars().position(|t| t == c)
}

/// Katakana written as hiragana (the long-vowel mark stays).
pub(crate) fn to_hiragana(katakana: &str, out: &mut String) {
    out.extend(katakana.chars().map(|c| match c {
        '\u{30A1}'..='\u{30F6}' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
        other => other,
    }));
}

/// Katakana written in half-width forms, voiced marks as separate characters (ガ → ｶﾞ).
pub(crate) fn to_half_width(katakana: &str, out: &mut String) {
    for c in katakana.chars() {
        let (base, mark) = if let Some(i) = position(VOICED, c) {
            (nth(UNVOICED, i).unwrap_or(c), Some('ﾞ'))
        } else if let Some(i) = position(SEMI_VOICED, c) {
            (nth(SEMI_BASE, i).unwrap_or(c), Some('ﾟ'))
        } else {
            (c, None)
        };
        match position(HALF_WIDTH_ORDER, base) {
            Some(i) => out.push(char::from_u32(0xFF66 + i as u32).unwrap_or(base)),
            None => out.push(base),
        }
        out.extend(mark);
    }
}

/// The vowel spelled out after an o-, u- or e-row kana written as a long-vowel mark instead
/// (サトウ → サトー, オオノ → オーノ, ケイコ → ケーコ). Returns false when no such vowel exists.
pub(crate) fn to_long_vowel_mark(katakana: &str, out: &mut String) -> bool {
    let chars: Vec<char> = katakana.chars().collect();
    let found = chars.windows(2).position(|w| {
        (O_ROW.contains(w[0]) && (w[1] == 'ウ' || w[1] == 'オ'))
            || (U_ROW.contains(w[0]) && w[1] == 'ウ')
            || (E_ROW.contains(w[0]) && w[1] == 'イ')
    });
    let Some(at) = found else { return false };
    for (i, &c) in chars.iter().enumerate() {
        out.push(if i == at + 1 { 'ー' } else { c });
    }
    true
}

/// One kana replaced by another of its syllabary row (カ → キ), as a slip of the finger or the
/// ear. Returns false when the name has no kana in the table.
pub(crate) fn one_kana_typo(katakana: &str, rng: &mut StreamRng, out: &mut String) -> bool {
    let chars: Vec<char> = katakana.chars().collect();
    let candidates: Vec<usize> = (0..chars.len())
        .filter(|&i| ROWS.contains(chars[i]))
        .collect();
    if candidates.is_empty() {
        return false;
    }
    let at = candidates[rng.index(candidates.len())];
    let Some(pos) = position(ROWS, chars[at]) else {
        return false;
    };
    let row_start = pos - pos % 5;
    let shift = 1 + rng.index(4);
    let replacement = nth(ROWS, row_start + (pos % 5 + shift) % 5).unwrap_or(chars[at]);
    for (i, &c) in chars.iter().enumerate() {
        out.push(if i == at { replacement } else { c });
    }
    true
}

/// One kanji replaced by a variant form. Returns false when the name has no kanji with a variant.
pub(crate) fn kanji_variant(kanji: &str, rng: &mut StreamRng, out: &mut String) -> bool {
    let chars: Vec<char> = kanji.chars().collect();
    let candidates: Vec<(usize, &str)> = chars
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            KANJI_VARIANTS
                .iter()
                .find(|(standard, _)| standard == c)
                .map(|(_, variants)| (i, *variants))
        })
        .collect();
    if candidates.is_empty() {
        return false;
    }
    let (at, variants) = candidates[rng.index(candidates.len())];
    let variant_count = variants.chars().count();
    let variant = nth(variants, rng.index(variant_count)).unwrap_or(chars[at]);
    for (i, &c) in chars.iter().enumerate() {
        out.push(if i == at { variant } else { c });
    }
    true
}

/// ASCII digits (and `-`) written full-width.
pub(crate) fn to_full_width_digits(text: &str, out: &mut String) {
    out.extend(text.chars().map(|c| match c {
        '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap_or(c),
        '-' => '－',
        '/' => '／',
        other => other,
    }));
}

/// A number below 100 in kanji numerals (三, 十二, 二十).
pub(crate) fn kanji_numeral(value: u32, out: &mut String) {
    const DIGITS: [char; 10] = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    let (tens, ones) = (value / 10 % 10, value % 10);
    if tens > 1 {
        out.push(DIGITS[tens as usize]);
    }
    if tens > 0 {
        out.push('十');
    }
    if ones > 0 || tens == 0 {
        out.push(DIGITS[ones as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Domain;

    fn check(f: fn(&str, &mut String), input: &str, expected: &str) {
        let mut out = String::new();
        f(input, &mut out);
        assert_eq!(out, expected, "{input}");
    }

    fn long(input: &str, out: &mut String) {
        if !to_long_vowel_mark(input, out) {
            out.push_str("(none)");
        }
    }

    fn numeral(input: &str, out: &mut String) {
        kanji_numeral(input.parse().unwrap(), out);
    }

    #[test]
    fn spelling_variants() {
        check(to_hiragana, "サトウ", "さとう");
        check(to_hiragana, "ユーコ", "ゆーこ");
        check(to_half_width, "サトウ", "ｻﾄｳ");
        check(to_half_width, "ガッコウ", "ｶﾞｯｺｳ");
        check(to_half_width, "パンダヴ", "ﾊﾟﾝﾀﾞｳﾞ");
        check(to_half_width, "ヲァー", "ｦｧｰ");
        check(long, "サトウ", "サトー");
        check(long, "オオノ", "オーノ");
        check(long, "ユウキ", "ユーキ");
        check(long, "ケイコ", "ケーコ");
        check(long, "タナカ", "(none)");
        check(to_full_width_digits, "1985-04/03", "１９８５－０４／０３");
        check(numeral, "3", "三");
        check(numeral, "10", "十");
        check(numeral, "12", "十二");
        check(numeral, "20", "二十");
        check(numeral, "45", "四十五");
    }

    #[test]
    fn typos_and_kanji_variants_change_exactly_one_character() {
        let mut rng = StreamRng::new(1, Domain::CorruptFirst, 0);
        for name in ["タナカ", "スズキ", "ン", "タカハシ"] {
            let mut out = String::new();
            let changed = one_kana_typo(name, &mut rng, &mut out);
            assert_eq!(changed, name != "ン", "{name}");
            if changed {
                let diff = name
                    .chars()
                    .zip(out.chars())
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(diff, 1, "{name} -> {out}");
            }
        }
        for (name, can) in [("高橋", true), ("山崎", true), ("田中", false)] {
            let mut out = String::new();
            assert_eq!(kanji_variant(name, &mut rng, &mut out), can, "{name}");
            if can {
                assert_ne!(out, name);
                assert_eq!(out.chars().count(), name.chars().count());
            }
        }
        let mut out = String::new();
        kanji_variant("高", &mut rng, &mut out);
        assert_eq!(out, "髙");
    }

    proptest::proptest! {
        #[test]
        fn hiragana_and_half_width_keep_every_kana(name in "[ァ-ヶー]{1,8}", seed: u64) {
            let mut hiragana = String::new();
            to_hiragana(&name, &mut hiragana);
            proptest::prop_assert_eq!(hiragana.chars().count(), name.chars().count());
            let katakana = '\u{30A1}'..='\u{30F6}';
            let no_katakana_left = hiragana.chars().all(|c| !katakana.contains(&c));
            proptest::prop_assert!(no_katakana_left);
            let mut half = String::new();
            to_half_width(&name, &mut half);
            proptest::prop_assert!(half.chars().count() >= name.chars().count());
            let mut typo = String::new();
            let mut rng = StreamRng::new(seed, Domain::CorruptFirst, 0);
            if one_kana_typo(&name, &mut rng, &mut typo) {
                let changed = name.chars().zip(typo.chars()).filter(|(a, b)| a != b).count();
                proptest::prop_assert_eq!(changed, 1);
            }
        }
    }
}
