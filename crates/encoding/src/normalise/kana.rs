//! Kana steps: one script (katakana), full-width kana, and the policies for the spellings that
//! vary between clerks and systems for one reading: the long-vowel mark, small kana, ヴ, and
//! the old reading variants ヂ/ジ, ヅ/ズ, ヲ/オ.
//!
//! Every step copies ASCII input unchanged on a fast path and leaves characters it does not
//! know alone, so steps compose in any order. The recommended order for names is
//! `halfwidth-kana, katakana, vu-fold, small-kana-fold, kana-reading-fold, long-vowel-drop`
//! (vu-fold reads small vowels, so it runs before small-kana-fold).

use super::text::{copy_unchanged_prefix, copy_without};

/// Hiragana to katakana (`katakana`): `やまだ たろう` → `ヤマダ タロウ`, including ゔ → ヴ and the
/// iteration marks ゝゞ → ヽヾ. Katakana is the canonical script because kana names on
/// Japanese forms (フリガナ) are mostly written in it.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::kana::to_katakana;
/// let mut out = String::new();
/// to_katakana("やまだ たろう", &mut out);
/// assert_eq!(out, "ヤマダ タロウ");
/// ```
pub fn to_katakana(input: &str, out: &mut String) {
    map_composing(input, out, |c| match c {
        // ぁ..=ゖ and ゝゞ sit exactly 0x60 below their katakana.
        '\u{3041}'..='\u{3096}' | '\u{309D}' | '\u{309E}' => shift(c, 0x60),
        _ => c,
    });
}

/// Half-width kana to full-width (`halfwidth-kana`): `ｶﾞｯｺｳ` → `ガッコウ`, `ﾊﾟﾝ` → `パン`, `ｰ` →
/// `ー`, and the half-width punctuation `｡｢｣､･`.
///
/// A voiced (ﾞ, U+3099, ゛) or semi-voiced (ﾟ, U+309A, ゜) mark after a kana that has such a
/// form is composed with it, whether the kana is half- or full-width (`カ゛` → `ガ`); a mark
/// after anything else becomes the spacing full-width mark ゛ or ゜.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::kana::halfwidth_to_fullwidth;
/// let mut out = String::new();
/// halfwidth_to_fullwidth("ｶﾞｯｺｳ ﾊﾟﾝ", &mut out);
/// assert_eq!(out, "ガッコウ パン");
/// ```
pub fn halfwidth_to_fullwidth(input: &str, out: &mut String) {
    let input = copy_unchanged_prefix(
        input,
        out,
        |c| matches!(c, '\u{FF61}'..='\u{FF9F}' | '\u{3099}'..='\u{309C}'),
    );
    for c in input.chars() {
        let voicing = match c {
            '\u{FF9E}' | '\u{3099}' | '\u{309B}' => Some(Voicing::Voiced),
            '\u{FF9F}' | '\u{309A}' | '\u{309C}' => Some(Voicing::SemiVoiced),
            _ => None,
        };
        if let Some(voicing) = voicing {
            let composed = out
                .chars()
                .next_back()
                .and_then(|base| voiced(base, voicing));
            if let Some(composed) = composed {
                out.pop();
                out.push(composed);
            } else {
                out.push(match voicing {
                    Voicing::Voiced => '゛',
                    Voicing::SemiVoiced => '゜',
                });
            }
            continue;
        }
        out.push(fullwidth_of_halfwidth(c).unwrap_or(c));
    }
}

/// Long-vowel policy "fold" (`long-vowel-fold`): the dashes clerks type for the long-vowel mark
/// after a kana (`ｰ - ‐ ‑ ‒ – — ― − －` and `～`) become ー (`メ-ル` → `メール`). A dash that
/// does not follow a kana (or ー) is left alone, so `1-2-3` stays as it is.
pub fn fold_long_vowel(input: &str, out: &mut String) {
    // Only a dash can change; ASCII has no kana, so an ASCII dash is never a long-vowel mark.
    if input.is_ascii() {
        out.clear();
        out.push_str(input);
        return;
    }
    let input = copy_unchanged_prefix(input, out, is_dash);
    for c in input.chars() {
        let after_kana = out.chars().next_back().is_some_and(is_kana);
        if c == '\u{FF70}' || (after_kana && is_dash(c)) {
            out.push('ー');
        } else {
            out.push(c);
        }
    }
}

/// Long-vowel policy "drop" (`long-vowel-drop`): removes the long-vowel mark ー (and ｰ, and any
/// dash after a kana as in [`fold_long_vowel`]), so `コーヒー`, `コヒー` and `コーヒ` agree
/// with each other's spelling `コヒ`.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::kana::drop_long_vowel;
/// let mut out = String::new();
/// drop_long_vowel("コーヒ－", &mut out);
/// assert_eq!(out, "コヒ");
/// ```
pub fn drop_long_vowel(input: &str, out: &mut String) {
    if input.is_ascii() {
        out.clear();
        out.push_str(input);
        return;
    }
    // Combining marks on a removed mark go with it, so none lands on the kana before.
    copy_without(
        input,
        out,
        |c| c == 'ー' || is_dash(c),
        |c, written| {
            let after_kana = written.chars().next_back().is_some_and(is_kana);
            c == 'ー' || c == '\u{FF70}' || (after_kana && is_dash(c))
        },
    );
}

/// Small-kana policy "fold" (`small-kana-fold`): small kana to their full-size letters,
/// `ァィゥェォッャュョヮヵヶ` and the hiragana `ぁぃぅぇぉっゃゅょゎゕゖ` and the Ainu small
/// katakana `ㇰ..ㇿ` (`キャッシュ` → `キヤツシユ`), since registries written on older systems
/// could not store small kana. Half-width small kana (`ｧ`) are folded by `halfwidth-kana` first.
pub fn fold_small_kana(input: &str, out: &mut String) {
    map_composing(input, out, |c| small_to_large(c).unwrap_or(c));
}

/// ヴ handling (`vu-fold`): ヴ with a following small vowel to the B-row (`ヴァ` → `バ`, `ヴィ` →
/// `ビ`, `ヴゥ` → `ブ`, `ヴェ` → `ベ`, `ヴォ` → `ボ`), ヴ alone to ブ, and ヷヸヹヺ to バビベボ; the
/// same for hiragana ゔ. Foreign names are written both ways (`ヴァイオリン`/`バイオリン`).
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::kana::fold_vu;
/// let mut out = String::new();
/// fold_vu("ヴァイオリン", &mut out);
/// assert_eq!(out, "バイオリン");
/// ```
pub fn fold_vu(input: &str, out: &mut String) {
    let input = copy_unchanged_prefix(input, out, |c| {
        matches!(c, 'ヴ' | 'ゔ' | 'ヷ'..='ヺ') || voiced_vu(c).is_some()
    });
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        // The decomposed forms (`ウ` + U+3099 for `ヴ`) fold like the composed ones.
        let c = match voiced_vu(c) {
            Some(composed) if chars.peek() == Some(&'\u{3099}') => {
                chars.next();
                composed
            }
            _ => c,
        };
        let (b_row, hiragana) = match c {
            'ヴ' => (['バ', 'ビ', 'ブ', 'ベ', 'ボ'], false),
            'ゔ' => (['ば', 'び', 'ぶ', 'べ', 'ぼ'], true),
            'ヷ' => {
                out.push('バ');
                continue;
            }
            'ヸ' => {
                out.push('ビ');
                continue;
            }
            'ヹ' => {
                out.push('ベ');
                continue;
            }
            'ヺ' => {
                out.push('ボ');
                continue;
            }
            _ => {
                out.push(c);
                continue;
            }
        };
        let vowel = chars.peek().and_then(|&next| {
            let next = if hiragana { shift(next, 0x60) } else { next };
            ['ァ', 'ィ', 'ゥ', 'ェ', 'ォ']
                .iter()
                .position(|&v| v == next)
        });
        match vowel {
            Some(i) => {
                chars.next();
                out.push(b_row[i]);
            }
            None => out.push(b_row[2]),
        }
    }
}

/// The kana that a combining voiced mark (U+3099) turns into one of vu-fold's: `ウ` → `ヴ`,
/// `う` → `ゔ`, `ワ` → `ヷ`, `ヰ` → `ヸ`, `ヱ` → `ヹ`, `ヲ` → `ヺ`.
fn voiced_vu(c: char) -> Option<char> {
    Some(match c {
        'ウ' => 'ヴ',
        'う' => 'ゔ',
        'ワ' => 'ヷ',
        'ヰ' => 'ヸ',
        'ヱ' => 'ヹ',
        'ヲ' => 'ヺ',
        _ => return None,
    })
}

/// Reading variants (`kana-reading-fold`): the kana that modern spelling merged with another,
/// `ヂ` → `ジ`, `ヅ` → `ズ`, `ヲ` → `オ`, `ヰ` → `イ`, `ヱ` → `エ` (and the hiragana ぢづをゐゑ), so
/// `ツヅキ` and `ツズキ` agree.
pub fn fold_kana_reading(input: &str, out: &mut String) {
    map_composing(input, out, |c| match c {
        'ヂ' => 'ジ',
        'ヅ' => 'ズ',
        'ヲ' => 'オ',
        'ヰ' => 'イ',
        'ヱ' => 'エ',
        'ぢ' => 'じ',
        'づ' => 'ず',
        'を' => 'お',
        'ゐ' => 'い',
        'ゑ' => 'え',
        _ => c,
    });
}

/// Maps every character with `map`, composing a combining voiced or semi-voiced mark
/// (U+3099, U+309A) with the mapped kana before it when they compose (`ッ` + U+3099 → `ヅ`
/// under small-kana-fold) and mapping the composed kana again, so the result is what NFC would
/// make of it, a later `nfkc` finds nothing more to compose, and a second pass changes nothing.
fn map_composing(input: &str, out: &mut String, map: impl Fn(char) -> char) {
    let input = copy_unchanged_prefix(input, out, |c| {
        map(c) != c || c == '\u{3099}' || c == '\u{309A}'
    });
    for c in input.chars() {
        let voicing = match c {
            '\u{3099}' => Some(Voicing::Voiced),
            '\u{309A}' => Some(Voicing::SemiVoiced),
            _ => None,
        };
        let composed = voicing.and_then(|v| voiced(out.chars().next_back()?, v));
        match composed {
            Some(composed) => {
                // The composed kana is mapped too (`つ` + U+3099 is `づ`, which the reading
                // fold turns into `ず`), or a second pass would change it.
                out.pop();
                out.push(map(composed));
            }
            None => out.push(map(c)),
        }
    }
}

#[derive(Clone, Copy)]
enum Voicing {
    Voiced,
    SemiVoiced,
}

fn shift(c: char, by: u32) -> char {
    char::from_u32(u32::from(c) + by).unwrap_or(c)
}

/// Hiragana, katakana (full- or half-width) or the long-vowel mark.
fn is_kana(c: char) -> bool {
    matches!(
        c,
        '\u{3041}'..='\u{3096}'
            | '\u{309D}'..='\u{309E}'
            | '\u{30A1}'..='\u{30FA}'
            | '\u{30FC}'..='\u{30FE}'
            | '\u{31F0}'..='\u{31FF}'
            | '\u{FF66}'..='\u{FF9D}'
    )
}

fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'
            ..='\u{2015}' | '\u{2212}' | '\u{FF0D}' | '\u{FF70}' | '\u{FE63}' | '～' | '〜'
    )
}

/// The voiced or semi-voiced form of a full-width kana, if it has one.
fn voiced(base: char, voicing: Voicing) -> Option<char> {
    match voicing {
        Voicing::Voiced => match base {
            // カ..ト and か..と: the voiced form is the next code point, for the bases at odd
            // offsets in these rows (カキクケコサシスセソタチツテト).
            'か' | 'き' | 'く' | 'け' | 'こ' | 'さ' | 'し' | 'す' | 'せ' | 'そ' | 'た' | 'ち'
            | 'つ' | 'て' | 'と' | 'カ' | 'キ' | 'ク' | 'ケ' | 'コ' | 'サ' | 'シ' | 'ス' | 'セ'
            | 'ソ' | 'タ' | 'チ' | 'ツ' | 'テ' | 'ト' => Some(shift(base, 1)),
            'は' | 'ひ' | 'ふ' | 'へ' | 'ほ' | 'ハ' | 'ヒ' | 'フ' | 'ヘ' | 'ホ' => {
                Some(shift(base, 1))
            }
            'う' => Some('ゔ'),
            'ウ' => Some('ヴ'),
            'ワ' => Some('ヷ'),
            'ヰ' => Some('ヸ'),
            'ヱ' => Some('ヹ'),
            'ヲ' => Some('ヺ'),
            'ゝ' => Some('ゞ'),
            'ヽ' => Some('ヾ'),
            _ => None,
        },
        Voicing::SemiVoiced => match base {
            'は' | 'ひ' | 'ふ' | 'へ' | 'ほ' | 'ハ' | 'ヒ' | 'フ' | 'ヘ' | 'ホ' => {
                Some(shift(base, 2))
            }
            _ => None,
        },
    }
}

/// The precomposed kana for `base` with a voiced (or, when `semi`, semi-voiced) mark: the
/// canonical compositions of Unicode with U+3099 and U+309A.
pub(super) fn compose_voicing(base: char, semi: bool) -> Option<char> {
    voiced(
        base,
        if semi {
            Voicing::SemiVoiced
        } else {
            Voicing::Voiced
        },
    )
}

/// The full-width form of a half-width katakana or punctuation mark (U+FF61..=U+FF9D).
pub(super) fn fullwidth_of_halfwidth(c: char) -> Option<char> {
    const FULL: [char; 61] = [
        '。', '「', '」', '、', '・', 'ヲ', 'ァ', 'ィ', 'ゥ', 'ェ', 'ォ', 'ャ', 'ュ', 'ョ', 'ッ',
        'ー', 'ア', 'イ', 'ウ', 'エ', 'オ', 'カ', 'キ', 'ク', 'ケ', 'コ', 'サ', 'シ', 'ス', 'セ',
        'ソ', 'タ', 'チ', 'ツ', 'テ', 'ト', 'ナ', 'ニ', 'ヌ', 'ネ', 'ノ', 'ハ', 'ヒ', 'フ', 'ヘ',
        'ホ', 'マ', 'ミ', 'ム', 'メ', 'モ', 'ヤ', 'ユ', 'ヨ', 'ラ', 'リ', 'ル', 'レ', 'ロ', 'ワ',
        'ン',
    ];
    let offset = u32::from(c).checked_sub(0xFF61)?;
    FULL.get(usize::try_from(offset).ok()?).copied()
}

fn small_to_large(c: char) -> Option<char> {
    Some(match c {
        'ァ' | 'ィ' | 'ゥ' | 'ェ' | 'ォ' | 'ッ' | 'ャ' | 'ュ' | 'ョ' | 'ヮ' | 'ぁ' | 'ぃ'
        | 'ぅ' | 'ぇ' | 'ぉ' | 'っ' | 'ゃ' | 'ゅ' | 'ょ' | 'ゎ' => shift(c, 1),
        'ヵ' => 'カ',
        'ヶ' => 'ケ',
        'ゕ' => 'か',
        'ゖ' => 'け',
        'ㇰ' => 'ク',
        'ㇱ' => 'シ',
        'ㇲ' => 'ス',
        'ㇳ' => 'ト',
        'ㇴ' => 'ヌ',
        'ㇵ' => 'ハ',
        'ㇶ' => 'ヒ',
        'ㇷ' => 'フ',
        'ㇸ' => 'ヘ',
        'ㇹ' => 'ホ',
        'ㇺ' => 'ム',
        'ㇻ' => 'ラ',
        'ㇼ' => 'リ',
        'ㇽ' => 'ル',
        'ㇾ' => 'レ',
        'ㇿ' => 'ロ',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::checks::check_step as check;

    #[test]
    fn katakana_cases() {
        check(to_katakana, "やまだ たろう", "ヤマダ タロウ");
        check(to_katakana, "ゔぁいおりん", "ヴァイオリン");
        check(to_katakana, "いすゞ", "イスヾ");
        check(to_katakana, "ぁゖ", "ァヶ");
        check(to_katakana, "ヤマダ", "ヤマダ");
        check(to_katakana, "山田ゆき", "山田ユキ");
        check(to_katakana, "smith", "smith");
        check(to_katakana, "か\u{3099}", "ガ");
    }

    #[test]
    fn halfwidth_cases() {
        check(halfwidth_to_fullwidth, "ｶﾞｯｺｳ", "ガッコウ");
        check(halfwidth_to_fullwidth, "ﾊﾟﾝ", "パン");
        check(halfwidth_to_fullwidth, "ﾊﾞﾋﾞﾌﾞﾍﾞﾎﾞ", "バビブベボ");
        check(halfwidth_to_fullwidth, "ｳﾞｧｲｵﾘﾝ", "ヴァイオリン");
        check(halfwidth_to_fullwidth, "ｺｰﾋｰ", "コーヒー");
        check(halfwidth_to_fullwidth, "ｦﾝ", "ヲン");
        check(halfwidth_to_fullwidth, "｢ｱ｣､･｡", "「ア」、・。");
        check(halfwidth_to_fullwidth, "カ゛", "ガ");
        check(halfwidth_to_fullwidth, "は\u{309A}", "ぱ");
        check(halfwidth_to_fullwidth, "ｱﾞ", "ア゛");
        check(halfwidth_to_fullwidth, "ﾟ", "゜");
        check(halfwidth_to_fullwidth, "ｶﾞﾞ", "ガ゛");
        check(halfwidth_to_fullwidth, "ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ タロウ");
        check(halfwidth_to_fullwidth, "abc", "abc");
    }

    #[test]
    fn long_vowel_cases() {
        check(fold_long_vowel, "メ-ル", "メール");
        check(fold_long_vowel, "ｺｰﾋｰ", "ｺーﾋー");
        check(fold_long_vowel, "コ－ヒ―", "コーヒー");
        check(fold_long_vowel, "ユ−ザ‐", "ユーザー");
        check(fold_long_vowel, "ラ〜メン", "ラーメン");
        check(fold_long_vowel, "1-2-3", "1-2-3");
        check(fold_long_vowel, "山-田", "山-田");
        check(fold_long_vowel, "ア--", "アーー");
        check(drop_long_vowel, "コーヒー", "コヒ");
        check(drop_long_vowel, "コ-ヒ－", "コヒ");
        check(drop_long_vowel, "ｺｰﾋｰ", "ｺﾋ");
        check(drop_long_vowel, "ー-", "-");
        check(drop_long_vowel, "1-2", "1-2");
        check(drop_long_vowel, "ハー\u{3099}", "ハ");
    }

    #[test]
    fn small_kana_cases() {
        check(fold_small_kana, "キャッシュ", "キヤツシユ");
        check(fold_small_kana, "ァィゥェォヮヵヶ", "アイウエオワカケ");
        check(fold_small_kana, "ちょっと", "ちよつと");
        check(fold_small_kana, "ゕゖ", "かけ");
        check(fold_small_kana, "ㇰㇿ", "クロ");
        check(fold_small_kana, "アイウ", "アイウ");
        check(fold_small_kana, "ッ\u{3099}", "ヅ");
    }

    #[test]
    fn vu_cases() {
        check(fold_vu, "ヴァイオリン", "バイオリン");
        check(fold_vu, "ヴィヴゥヴェヴォ", "ビブベボ");
        check(fold_vu, "ヴ", "ブ");
        check(fold_vu, "ヴヴ", "ブブ");
        // Decomposed (as NFD writes them) fold the same (noticed by fuzz/normalise).
        check(fold_vu, "ウ\u{3099}ァイオリン", "バイオリン");
        check(fold_vu, "う\u{3099}", "ぶ");
        check(fold_vu, "ワ\u{3099}ヲ\u{3099}", "バボ");
        check(fold_vu, "ウ\u{309A}ウ", "ウ\u{309A}ウ");
        check(fold_vu, "ヴア", "ブア");
        check(fold_vu, "ゔぁ", "ば");
        check(fold_vu, "ヷヸヹヺ", "バビベボ");
        check(fold_vu, "ベートーヴェン", "ベートーベン");
    }

    #[test]
    fn reading_cases() {
        check(fold_kana_reading, "ツヅキ", "ツズキ");
        check(fold_kana_reading, "チヂミ", "チジミ");
        check(fold_kana_reading, "ヲヰヱ", "オイエ");
        check(fold_kana_reading, "ぢづをゐゑ", "じずおいえ");
        // A combining voiced mark composes first, then folds (found by fuzz/normalise).
        check(fold_kana_reading, "つ\u{3099}", "ず");
        check(fold_kana_reading, "ツ\u{3099}キ", "ズキ");
    }

    /// Every hiragana and half-width kana (with and without a voiced mark) against jaconv 0.5.0
    /// (scripts/gen_normalise_vectors.py). Deliberate differences: a voiced or semi-voiced mark
    /// that composes with nothing stays half-width in jaconv and becomes ゛ or ゜ here, and
    /// ｦﾞ and ﾜﾞ compose to ヺ and ヷ here, as Unicode (and NFKC) compose them.
    #[test]
    fn jaconv_vectors() {
        let vectors = include_str!("testdata/kana.tsv");
        let mut checked = 0;
        for line in vectors.lines().filter(|l| !l.starts_with('#')) {
            let mut columns = line.split('\t');
            let (step, input, jaconv) = (
                columns.next().expect("step"),
                columns.next().expect("input"),
                columns.next().expect("output"),
            );
            let expected = match input {
                // jaconv leaves these two apart; Unicode composes them (as NFKC does).
                "ｦﾞ" => "ヺ".to_owned(),
                "ﾜﾞ" => "ヷ".to_owned(),
                _ => jaconv.replace('ﾞ', "゛").replace('ﾟ', "゜"),
            };
            match step {
                "katakana" => check(to_katakana, input, &expected),
                "halfwidth-kana" => check(halfwidth_to_fullwidth, input, &expected),
                other => panic!("unknown step {other} in kana.tsv"),
            }
            checked += 1;
        }
        assert!(checked > 250);
    }
}
