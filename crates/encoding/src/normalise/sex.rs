//! Sex codes (`sex`) to the codes of ISO/IEC 5218: `1` male, `2` female.
//!
//! Accepted, case-insensitive, ASCII or full-width, surrounding spaces ignored: `1`, `m`,
//! `male`, `man`, `男`, `男性`, `男子`, `♂` for male; `2`, `f`, `female`, `woman`, `女`, `女性`,
//! `女子`, `♀` for female. The "unknown" codes `0` (not known), `9` (not applicable), `u`,
//! `unknown`, `不明` and the empty value become the empty string: a missing value for the
//! encoder's missing-value policy, never a third code that would make two unknowns agree.
//! Anything else is rejected.

use super::NormaliseError;

/// Maps a sex code to `1` (male), `2` (female) or the empty string (unknown).
///
/// # Errors
/// [`NormaliseError::Invalid`] naming the code when it is none of the accepted ones.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::sex::normalise_sex;
/// let mut out = String::new();
/// normalise_sex("女性", &mut out).unwrap();
/// assert_eq!(out, "2");
/// ```
pub fn normalise_sex(input: &str, out: &mut String) -> Result<(), NormaliseError> {
    out.clear();
    let trimmed = input.trim();
    // Every accepted code is at most 7 characters ("unknown"); reject longer ones before
    // folding so hostile input costs nothing.
    if trimmed.chars().count() > 7 {
        return Err(invalid(trimmed));
    }
    let mut folded = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        let c = match c {
            'Ａ'..='Ｚ' | 'ａ'..='ｚ' | '０'..='９' => {
                char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c)
            }
            c => c,
        };
        folded.push(c.to_ascii_lowercase());
    }
    let code = match folded.as_str() {
        "1" | "m" | "male" | "man" | "男" | "男性" | "男子" | "♂" => "1",
        "2" | "f" | "female" | "woman" | "女" | "女性" | "女子" | "♀" => "2",
        "" | "0" | "9" | "u" | "unknown" | "不明" => "",
        _ => return Err(invalid(trimmed)),
    };
    out.push_str(code);
    Ok(())
}

fn invalid(code: &str) -> NormaliseError {
    // Quote at most 20 characters of a hostile value.
    let code: String = match code.char_indices().nth(20) {
        Some((end, _)) => format!("{}…", &code[..end]),
        None => code.to_owned(),
    };
    NormaliseError::Invalid(format!(
        "sex code '{code}' is not one of 1/2/0/9, m/f, male/female, 男/女, 男性/女性 or unknown"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::checks::check_fallible_step;

    fn check(input: &str, expected: Result<&str, &str>) {
        check_fallible_step(normalise_sex, input, expected);
    }

    const BAD_X: &str =
        "sex code 'X' is not one of 1/2/0/9, m/f, male/female, 男/女, 男性/女性 or unknown";

    #[test]
    fn codes() {
        for male in [
            "1", "M", "m", "Male", "MALE", "man", "男", "男性", "♂", "Ｍ", "１", " m ",
        ] {
            check(male, Ok("1"));
        }
        for female in [
            "2", "F", "f", "Female", "woman", "女", "女性", "♀", "ｆ", "２",
        ] {
            check(female, Ok("2"));
        }
        for unknown in ["0", "9", "u", "Unknown", "不明", "", "  "] {
            check(unknown, Ok(""));
        }
        check("X", Err(BAD_X));
        check(
            "3",
            Err(
                "sex code '3' is not one of 1/2/0/9, m/f, male/female, 男/女, 男性/女性 or unknown",
            ),
        );
        check(
            "males",
            Err(
                "sex code 'males' is not one of 1/2/0/9, m/f, male/female, 男/女, 男性/女性 or unknown",
            ),
        );
        check(
            "a value that is much too long",
            Err(
                "sex code 'a value that is much…' is not one of 1/2/0/9, m/f, male/female, 男/女, 男性/女性 or unknown",
            ),
        );
        check(
            "a very long value",
            Err(
                "sex code 'a very long value' is not one of 1/2/0/9, m/f, male/female, 男/女, 男性/女性 or unknown",
            ),
        );
    }
}
