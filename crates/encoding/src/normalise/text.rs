//! Script-independent steps: Unicode NFKC, case folding, whitespace folding and removal, and
//! keeping digits only. Each writes into a caller's buffer and copies ASCII input on a fast
//! path where it can.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

use super::casefold_table::CASEFOLD_EXCEPTIONS;

/// Unicode normalisation form KC (`nfkc`): compatibility characters to their plain forms
/// (full-width `Ａ１` → `A1`, half-width `ｶﾞ` → `ガ`, `㍻` → `平成`, `①` → `1`), then canonical
/// composition.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::text::nfkc;
/// let mut out = String::new();
/// nfkc("ＡＢＣ　ｶﾞ", &mut out);
/// assert_eq!(out, "ABC ガ");
/// ```
pub fn nfkc(input: &str, out: &mut String) {
    out.clear();
    if input.is_ascii() {
        out.push_str(input);
    } else if !nfkc_japanese_fast_path(input, out) {
        out.clear();
        if is_nfkc_quick(input.chars()) == IsNormalized::Yes {
            out.push_str(input);
        } else {
            out.extend(input.nfkc());
        }
    }
}

/// NFKC for the characters of Japanese identifiers, several times faster than the general
/// algorithm: ASCII, kana and CJK unified ideographs (already NFKC, and never composing with
/// each other), the ideographic space, full-width ASCII and half-width kana (mapped as NFKC
/// maps them, with ﾞ and ﾟ composed onto the kana before). Returns false, with `out` partly
/// written, at the first character it does not cover or a voiced mark it cannot compose; the
/// caller then runs the general algorithm. A proptest checks it against that algorithm.
fn nfkc_japanese_fast_path(input: &str, out: &mut String) -> bool {
    for c in input.chars() {
        match c {
            '\u{0}'..='\u{7F}'
            | '\u{3041}'..='\u{3096}'
            | '\u{309D}'..='\u{309E}'
            | '\u{30A1}'..='\u{30FE}'
            | '\u{4E00}'..='\u{9FFF}' => out.push(c),
            '\u{3000}' => out.push(' '),
            '\u{FF01}'..='\u{FF5E}' => out.push(char::from((u32::from(c) - 0xFEE0) as u8)),
            '\u{FF61}'..='\u{FF9D}' => match super::kana::fullwidth_of_halfwidth(c) {
                Some(full) => out.push(full),
                None => return false,
            },
            '\u{FF9E}' | '\u{FF9F}' => {
                let composed = out
                    .chars()
                    .next_back()
                    .and_then(|base| super::kana::compose_voicing(base, c == '\u{FF9F}'));
                match composed {
                    Some(composed) => {
                        out.pop();
                        out.push(composed);
                    }
                    None => return false,
                }
            }
            _ => return false,
        }
    }
    true
}

/// Unicode full case folding (`casefold`): `Straße` → `strasse`, `ΣΊΣΥΦΟΣ` → `σίσυφοσ`.
///
/// The default lowercase mapping of `char::to_lowercase` plus the few hundred characters where
/// full case folding differs from it (generated from the Unicode tables by
/// `scripts/gen_casefold_table.py`). Unlike lowercasing, folding is stable: folding twice is
/// folding once.
pub fn casefold(input: &str, out: &mut String) {
    out.clear();
    if input.is_ascii() {
        out.push_str(input);
        out.make_ascii_lowercase();
        return;
    }
    for c in input.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if let Ok(i) = CASEFOLD_EXCEPTIONS.binary_search_by_key(&c, |&(k, _)| k) {
            out.push_str(CASEFOLD_EXCEPTIONS[i].1);
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// Whitespace folding (`whitespace`): trims both ends and collapses every run of Unicode
/// whitespace (including the ideographic space U+3000, tabs and newlines) into one ASCII space.
/// The invisible zero-width space, word joiner and byte-order mark (U+200B, U+2060, U+FEFF),
/// which text copied from web pages and spreadsheets carries and NFKC keeps, are removed.
pub fn fold_whitespace(input: &str, out: &mut String) {
    out.clear();
    let mut pending_space = false;
    for c in input.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
}

/// Zero-width space, word joiner and byte-order mark: not whitespace to Unicode, but nothing
/// a person typed either.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}')
}

/// Whitespace removal (`strip-whitespace`): drops every whitespace character, for Japanese
/// names where `山田 太郎`, `山田　太郎` and `山田太郎` are one name. The invisible characters
/// of [`fold_whitespace`] are removed too.
///
/// Combining marks carried by a removed space go with it: NFKC writes the spacing marks `゛`
/// and `¯` as a space and a combining mark, and the mark must not land on the letter before.
pub fn strip_whitespace(input: &str, out: &mut String) {
    out.clear();
    if input.is_ascii() {
        out.extend(
            input
                .chars()
                .filter(|c| !c.is_ascii_whitespace() && *c != '\u{B}'),
        );
        return;
    }
    let is_removed = |c: char| c.is_whitespace() || is_invisible(c);
    copy_without(input, out, is_removed, |c, _| is_removed(c));
}

/// Clears `out` and copies `input` into it without the characters `remove` selects (it sees
/// each character and what has been written so far) and the combining marks that follow a
/// removed character, so that no mark lands on the character before. `may_remove` must be
/// true for every character `remove` can select; it lets the unchanged prefix be copied at once.
pub(super) fn copy_without(
    input: &str,
    out: &mut String,
    may_remove: impl Fn(char) -> bool,
    remove: impl Fn(char, &str) -> bool,
) {
    let rest = copy_unchanged_prefix(input, out, may_remove);
    let mut removing_marks = false;
    for c in rest.chars() {
        if remove(c, out) {
            removing_marks = true;
        } else if removing_marks && is_combining_mark(c) {
        } else {
            removing_marks = false;
            out.push(c);
        }
    }
}

/// Clears `out`, copies into it the longest prefix of `input` with no character that
/// `interesting` selects, and returns the rest. Most values need few or no changes from a
/// given step, and one scan plus a copy is several times cheaper than pushing every character.
pub(super) fn copy_unchanged_prefix<'a>(
    input: &'a str,
    out: &mut String,
    interesting: impl Fn(char) -> bool,
) -> &'a str {
    out.clear();
    let start = input
        .char_indices()
        .find(|&(_, c)| interesting(c))
        .map_or(input.len(), |(i, _)| i);
    out.push_str(&input[..start]);
    &input[start..]
}

/// Digits only (`digits-only`): keeps ASCII and full-width digits (the latter as ASCII) and
/// drops everything else, for phone numbers and postcodes (`〒１００-０００１` → `1000001`).
pub fn digits_only(input: &str, out: &mut String) {
    out.clear();
    for c in input.chars() {
        match c {
            '0'..='9' => out.push(c),
            '０'..='９' => out.push(ascii_digit_of_fullwidth(c)),
            _ => {}
        }
    }
}

/// The ASCII digit for a full-width digit `０`..=`９`.
pub(super) fn ascii_digit_of_fullwidth(c: char) -> char {
    char::from(b'0' + (u32::from(c) - u32::from('０')) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::checks::check_step as check;

    #[test]
    fn nfkc_cases() {
        check(nfkc, "plain ascii", "plain ascii");
        check(nfkc, "ＡＢＣ１２３", "ABC123");
        check(nfkc, "ｶﾞｯｺｳ", "ガッコウ");
        check(nfkc, "ﾊﾟﾝ", "パン");
        check(nfkc, "㍻", "平成");
        check(nfkc, "①", "1");
        check(nfkc, "カ\u{3099}", "ガ");
        check(nfkc, "山田\u{3000}太郎", "山田 太郎");
        check(nfkc, "e\u{301}", "é");
        // CJK compatibility ideographs: 塚 (U+FA10) decomposes, 﨑 (U+FA11) does not.
        check(nfkc, "\u{FA10}", "\u{585A}");
        check(nfkc, "\u{FA11}", "\u{FA11}");
        check(nfkc, "", "");
    }

    #[test]
    fn nfkc_fast_path_cases() {
        check(nfkc, "ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ タロウ");
        check(nfkc, "髙橋\u{3000}太郎", "髙橋 太郎");
        check(nfkc, "ﾞｶ", "\u{3099}カ");
        check(nfkc, "ｱﾞ", "ア\u{3099}");
        check(nfkc, "ﾜﾞｦﾞｳﾞ", "ヷヺヴ");
        check(nfkc, "ﾍﾟﾎﾟ", "ペポ");
        check(nfkc, "ﾊﾟ\u{3099}", "パ\u{3099}");
        check(nfkc, "ヿゟ", "コトより");
    }

    /// Kana, kanji, ASCII and the characters around them that NFKC changes.
    fn japanese_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let alphabet: Vec<char> =
            "aZ1 -　ＡＺ０９！～ｶﾊｳﾜｦｱｰﾞﾟ｡･ かがはぱうゝゞカガハパウワヰヱヲヽヾヴー\
            ヿゟ゛゜\u{3099}\u{309A}髙橋﨑\u{FA10}㍻①ｧｯ\u{301}é"
                .chars()
                .collect();
        prop_oneof![
            proptest::collection::vec(proptest::sample::select(alphabet), 0..16)
                .prop_map(|v| v.into_iter().collect()),
            any::<String>(),
        ]
    }

    proptest::proptest! {
        #[test]
        fn nfkc_matches_the_general_algorithm(input in japanese_text()) {
            let mut out = String::new();
            nfkc(&input, &mut out);
            let reference: String = input.nfkc().collect();
            proptest::prop_assert_eq!(out, reference);
        }
    }

    #[test]
    fn casefold_cases() {
        check(casefold, "Smith", "smith");
        check(casefold, "STRASSE", "strasse");
        check(casefold, "Straße", "strasse");
        check(casefold, "ΣΊΣΥΦΟΣ", "σίσυφοσ");
        check(casefold, "ὈΔΥΣΣΕΎΣ", "ὀδυσσεύσ");
        check(casefold, "ǅ", "ǆ");
        check(casefold, "ＡＢＣ", "ａｂｃ");
        check(casefold, "やまだ", "やまだ");
    }

    #[test]
    fn whitespace_cases() {
        check(fold_whitespace, "  John   Smith ", "John Smith");
        check(fold_whitespace, "山田\u{3000}\u{3000}太郎", "山田 太郎");
        check(fold_whitespace, "\ta\n\r b\u{A0}c", "a b c");
        check(fold_whitespace, "   ", "");
        check(
            fold_whitespace,
            "\u{FEFF}Jo\u{200B}hn \u{200B} Smith\u{2060}",
            "John Smith",
        );
        check(strip_whitespace, "\u{FEFF}山田\u{200B} 太郎", "山田太郎");
        check(strip_whitespace, " 山田 \u{3000}太郎\t", "山田太郎");
        check(strip_whitespace, "", "");
        check(strip_whitespace, "a b\tc\u{B}", "abc");
        check(strip_whitespace, "ハ \u{3099}", "ハ");
        check(strip_whitespace, "y \u{304}z", "yz");
    }

    #[test]
    fn digits_only_cases() {
        check(digits_only, "〒１００-０００１", "1000001");
        check(digits_only, "(03) 1234-5678", "0312345678");
        check(digits_only, "none", "");
    }
}
