//! Japanese address notation (`jp-address`) and prefecture dropping (`drop-prefecture`).
//!
//! The same block and house is written `1丁目2番3号`, `1-2-3`, `一丁目2番地の3`, `１－２－３`
//! and `1丁目2-3`; `jp-address` writes all of them `1-2-3`:
//! - spaces are removed and full-width ASCII becomes ASCII (`１` → `1`, `Ａ` → `A`);
//! - a dash after a digit or kanji numeral, in any of its forms (`－ ‐ ‑ ‒ – — ― − ー ｰ ─ ━`),
//!   becomes `-`;
//! - a run of kanji numerals directly before 丁目, 番地, 番 or 号, or after a dash and not
//!   followed by another kanji, becomes digits (`三丁目` → `3-`, `二十一番` → `21-`, `3番地の二`
//!   → `3-2`), while numerals in place names stay (`九段南`, `八王子`, `一番町`, `六本木`,
//!   `5丁目三好町`);
//! - after a number, 丁目, 番地, 番 and 号 become `-` (not 番町, 番丁, 号室, 号棟, 号館, 号線),
//!   and の/ノ/之 between numbers becomes `-` (`3番地の1` → `3-1`);
//! - ヶ, ケ, が, ガ between two kanji become ケ (`霞が関`, `霞ヶ関` → `霞ケ関`), and の between
//!   two kanji becomes ノ (`御茶の水` → `御茶ノ水`);
//! - runs of `-` collapse to one, and a `-` not followed by a digit is dropped, so a trailing
//!   号 or a building name after the number does not matter.
//!
//! `drop-prefecture` removes a leading prefecture name (one of the 47, in full: `東京都`,
//! `北海道`, `大阪府`, `京都府`, `…県`), so addresses with and without it compare equal.

/// Rewrites a Japanese address in one notation (`jp-address`).
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::address::normalise_jp_address;
/// let mut a = String::new();
/// let mut b = String::new();
/// normalise_jp_address("東京都千代田区霞が関一丁目２番３号", &mut a);
/// normalise_jp_address("東京都 千代田区 霞ヶ関 1-2-3", &mut b);
/// assert_eq!(a, "東京都千代田区霞ケ関1-2-3");
/// assert_eq!(a, b);
/// ```
pub fn normalise_jp_address(input: &str, out: &mut String) {
    let mut dropped_dash = rewrite_address(input, out);
    // Dropping a dash can make new neighbours (`霞-が関` → `霞が関`, whose が is then between
    // two kanji; `0-号` → `0号`, whose 号 then follows a number), so then rewrite until
    // nothing changes. Every round that changes the text lowers the number of kanji numerals,
    // of marker characters or of characters, so the loop ends; real addresses need two or
    // three rounds, a run of markers one round per marker (the bound is only a safety net).
    // Without a dropped dash one round is already a fixed point.
    let mut previous = String::new();
    for _ in 0..input.len() + 8 {
        if !dropped_dash {
            break;
        }
        std::mem::swap(&mut previous, out);
        dropped_dash = rewrite_address(&previous, out);
        if *out == previous {
            break;
        }
    }
}

/// One round of the rewrite; true when it dropped a dash.
fn rewrite_address(input: &str, out: &mut String) -> bool {
    out.clear();
    let chars = map_characters(input);
    let mut rewritten: Vec<char> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // A run of kanji numerals counts as a number only directly before a marker.
        if kanji_digit(c).is_some() {
            let end = (i..chars.len())
                .find(|&j| kanji_digit(chars[j]).is_none())
                .unwrap_or(chars.len());
            // A number before a marker (三丁目), or after a dash and not part of a longer
            // kanji word (1-二, 3番地の二; but 5丁目三好町 keeps 三好町).
            let is_number = marker_len(&chars, end).is_some()
                || (rewritten.last() == Some(&'-')
                    && !chars.get(end).is_some_and(|&n| is_kanji(n)));
            if is_number && let Some(value) = kanji_number(&chars[i..end]) {
                rewritten.extend(value.to_string().chars());
                i = end;
                continue;
            }
            rewritten.extend_from_slice(&chars[i..end]);
            i = end;
            continue;
        }
        let after_number = rewritten.last().is_some_and(|p| p.is_ascii_digit());
        if after_number && let Some(len) = marker_len(&chars, i) {
            rewritten.push('-');
            i += len;
            continue;
        }
        let prev = rewritten.last().copied();
        let next = chars.get(i + 1).copied();
        let between_numbers = prev.is_some_and(|p| p.is_ascii_digit() || p == '-')
            && next.is_some_and(|n| n.is_ascii_digit() || kanji_digit(n).is_some());
        let between_kanji = prev.is_some_and(is_kanji) && next.is_some_and(is_kanji);
        let c = match c {
            'の' | 'ノ' | '之' if between_numbers => '-',
            'の' if between_kanji => 'ノ',
            'ヶ' | 'ケ' | 'が' | 'ガ' | 'ゖ' if between_kanji => 'ケ',
            c => c,
        };
        rewritten.push(c);
        i += 1;
    }
    let mut dropped_dash = false;
    for (i, &c) in rewritten.iter().enumerate() {
        if c == '-' {
            let next_is_digit = rewritten.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if !next_is_digit || out.is_empty() || out.ends_with('-') {
                dropped_dash = true;
                continue;
            }
        }
        out.push(c);
    }
    dropped_dash
}

/// Removes the leading prefecture name (`drop-prefecture`), and the spaces after it; a
/// prefecture written twice (`東京都東京都…`, a data-entry slip) goes entirely, so that a second
/// pass changes nothing.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::address::drop_prefecture;
/// let mut out = String::new();
/// drop_prefecture("東京都千代田区千代田1-1", &mut out);
/// assert_eq!(out, "千代田区千代田1-1");
/// drop_prefecture("京都市左京区", &mut out);
/// assert_eq!(out, "京都市左京区");
/// ```
pub fn drop_prefecture(input: &str, out: &mut String) {
    out.clear();
    let mut rest = input.trim_start();
    while let Some(after) = PREFECTURES.iter().find_map(|p| rest.strip_prefix(p)) {
        rest = after.trim_start();
    }
    out.push_str(rest);
}

/// Removes a leading Japanese postcode (`drop-postcode`): an optional `〒`, three digits, an
/// optional hyphen and four digits, ASCII or full-width, and the spaces after it. An address
/// that does not start with a whole postcode, or where another number or `〒` follows it, is
/// copied unchanged.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::address::drop_postcode;
/// let mut out = String::new();
/// drop_postcode("〒100-0001 東京都千代田区千代田1-1", &mut out);
/// assert_eq!(out, "東京都千代田区千代田1-1");
/// ```
pub fn drop_postcode(input: &str, out: &mut String) {
    out.clear();
    let trimmed = input.trim_start();
    let mut rest = trimmed.strip_prefix('〒').map_or(trimmed, str::trim_start);
    let mut digits = 0;
    for (i, c) in rest.char_indices() {
        let is_digit = c.is_ascii_digit() || ('０'..='９').contains(&c);
        let is_hyphen = matches!(c, '-' | '－' | '‐' | '−' | 'ー' | '\u{2010}'..='\u{2015}');
        if is_digit && digits < 7 {
            digits += 1;
        } else if is_hyphen && digits == 3 {
        } else {
            rest = &rest[i..];
            break;
        }
        if digits == 7 {
            rest = &rest[i + c.len_utf8()..];
            break;
        }
    }
    // A second postcode-like number right after it means this was not a postcode; checking
    // it also keeps the step idempotent.
    let rest = rest.trim_start();
    let next_is_number = rest
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || ('０'..='９').contains(&c) || c == '〒');
    if digits == 7 && !next_is_number {
        out.push_str(rest);
    } else {
        out.push_str(input);
    }
}

use super::numerals::{kanji_digit, kanji_number};

const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

/// Spaces removed, full-width ASCII to ASCII, and dashes after a digit to `-`.
fn map_characters(input: &str) -> Vec<char> {
    let mut chars: Vec<char> = Vec::with_capacity(input.len());
    for c in input.chars() {
        if c.is_whitespace() {
            continue;
        }
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            c => c,
        };
        let after_digit = chars
            .last()
            .is_some_and(|&p| p.is_ascii_digit() || kanji_digit(p).is_some());
        let is_dash = matches!(
            c,
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE63}' | 'ー' | '\u{FF70}' | '─' | '━'
        );
        chars.push(if is_dash && after_digit { '-' } else { c });
    }
    chars
}

/// The length of the address marker (丁目, 番地, 番, 号) at `i`, if there is one.
fn marker_len(chars: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| chars.get(i + k).copied();
    match (at(0)?, at(1)) {
        ('丁', Some('目')) | ('番', Some('地')) => Some(2),
        ('番', Some('町' | '丁')) => None,
        ('番', _) => Some(1),
        ('号', Some('室' | '棟' | '館' | '線')) => None,
        ('号', _) => Some(1),
        _ => None,
    }
}

fn is_kanji(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '々' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{3FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::checks::check_step as check;

    fn check_address(input: &str, expected: &str) {
        check(normalise_jp_address, input, expected);
    }

    #[test]
    fn block_and_house_numbers() {
        check_address("千代田区千代田1丁目2番3号", "千代田区千代田1-2-3");
        check_address("千代田区千代田1-2-3", "千代田区千代田1-2-3");
        check_address("千代田区千代田１－２－３", "千代田区千代田1-2-3");
        check_address("千代田区千代田1‐2‑3", "千代田区千代田1-2-3");
        check_address("千代田区千代田1ー2−3", "千代田区千代田1-2-3");
        check_address("千代田区千代田一丁目2番3号", "千代田区千代田1-2-3");
        check_address("千代田区千代田1丁目2-3", "千代田区千代田1-2-3");
        check_address("千代田区 千代田 1丁目 2番 3号", "千代田区千代田1-2-3");
        check_address("大手町二十一丁目5番地", "大手町21-5");
        check_address("中央三十丁目十番", "中央30-10");
        check_address("本町3番地の1", "本町3-1");
        // A run of markers after a dash takes one round each; all of them go, so a second
        // pass changes nothing (found by fuzz/normalise, which stopped at eight rounds).
        check_address("0-号番号号号番号番号", "0");
        check_address("1-号番号号号番号番号号番号号号番号番号", "1");
        check_address("本町3番地1", "本町3-1");
        check_address("本町3の1", "本町3-1");
        check_address("本町二〇番", "本町20");
        check_address("本町五番地の二", "本町5-2");
        check_address("本町一丁目二ー三", "本町1-2-3");
        check_address("本町一丁目二番三号", "本町1-2-3");
        check_address("本町1-二-三", "本町1-2-3");
        check_address("本町5丁目三好町", "本町5三好町");
    }

    #[test]
    fn place_names_keep_their_numerals() {
        check_address("千代田区九段南1-2-3", "千代田区九段南1-2-3");
        check_address("八王子市三崎町5番", "八王子市三崎町5");
        check_address("千代田区一番町10番地", "千代田区一番町10");
        check_address("仙台市青葉区一番丁1丁目", "仙台市青葉区一番丁1");
        check_address("港区六本木六丁目10番1号", "港区六本木6-10-1");
        check_address("国道1号線", "国道1号線");
    }

    #[test]
    fn buildings_and_rooms() {
        check_address(
            "本町1丁目2番3号 メゾン本町101号室",
            "本町1-2-3メゾン本町101号室",
        );
        check_address("本町1-2-3 メゾン本町101号室", "本町1-2-3メゾン本町101号室");
        check_address("本町1-2-3 Ａ棟", "本町1-2-3A棟");
    }

    #[test]
    fn ga_and_no_between_kanji() {
        check_address("千代田区霞が関1", "千代田区霞ケ関1");
        check_address("千代田区霞ヶ関1", "千代田区霞ケ関1");
        check_address("千代田区霞ケ関1", "千代田区霞ケ関1");
        check_address("文京区御茶の水", "文京区御茶ノ水");
        check_address("ヶ丘", "ヶ丘");
    }

    #[test]
    fn odd_inputs() {
        check_address("", "");
        check_address("---", "");
        check_address("1--2", "1-2");
        check_address("丁目番号", "丁目番号");
        check_address("一二三四五六七八九十番", "一二三四五六七八九十番");
        check_address("十十番", "十十番");
        check_address("1-番", "1");
        check_address("霞-が関", "霞ケ関");
    }

    #[test]
    fn postcodes() {
        check(drop_postcode, "〒100-0001 東京都千代田区", "東京都千代田区");
        check(drop_postcode, "〒１００－０００１　東京都", "東京都");
        check(drop_postcode, "1000001東京都", "東京都");
        check(drop_postcode, " 〒 100-0001東京都", "東京都");
        check(drop_postcode, "東京都千代田区", "東京都千代田区");
        check(drop_postcode, "100-00012 東京都", "100-00012 東京都");
        check(drop_postcode, "1-2-3 本町", "1-2-3 本町");
        check(drop_postcode, "〒100 東京都", "〒100 東京都");
        check(drop_postcode, "", "");
        check(drop_postcode, "1000001 1000001", "1000001 1000001");
        check(
            drop_postcode,
            "〒100-0001 〒100-0001",
            "〒100-0001 〒100-0001",
        );
    }

    #[test]
    fn prefectures() {
        check(
            drop_prefecture,
            "東京都千代田区千代田1-1",
            "千代田区千代田1-1",
        );
        check(drop_prefecture, "千代田区千代田1-1", "千代田区千代田1-1");
        check(drop_prefecture, " 北海道 札幌市", "札幌市");
        check(drop_prefecture, "京都府京都市", "京都市");
        check(drop_prefecture, "京都市左京区", "京都市左京区");
        check(drop_prefecture, "神奈川県横浜市", "横浜市");
        // Written twice (found by fuzz/normalise): both go, so a second pass changes nothing.
        check(drop_prefecture, "東京都 東京都港区", "港区");
        check(drop_prefecture, "栃木県東京都", "");
        check(drop_prefecture, "鹿児島県鹿児島市", "鹿児島市");
        check(drop_prefecture, "東京都", "");
    }
}
