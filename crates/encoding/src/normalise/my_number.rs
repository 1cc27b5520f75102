//! The My Number (個人番号): 12 digits, the last a check digit over the first 11 with the
//! weights published in the ordinance on My Number check digits (総務省令第85号, 2014).

use super::NormaliseError;

/// The check digit for the first 11 digits of a My Number (each 0..=9).
///
/// With `P(n)` the n-th digit counting leftwards from the one before the check digit and weight
/// `Q(n) = n + 1` for n ≤ 6, `n - 5` for n ≥ 7, the check digit is 0 when `Σ P(n)·Q(n) mod 11 ≤ 1`
/// and `11 - (Σ mod 11)` otherwise.
///
/// # Example
/// ```
/// use blindlink_encoding::normalise::my_number::check_digit;
/// assert_eq!(check_digit(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]), 8);
/// ```
pub fn check_digit(first_eleven: &[u8; 11]) -> u8 {
    let sum: u32 = first_eleven
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let n = i as u32 + 1;
            let weight = if n <= 6 { n + 1 } else { n - 5 };
            u32::from(d) * weight
        })
        .sum();
    let remainder = sum % 11;
    if remainder <= 1 {
        0
    } else {
        (11 - remainder) as u8
    }
}

/// Validates a My Number written with ASCII or full-width digits, optionally grouped with
/// spaces or hyphens (`1234 5678 9018`), and returns its 12 ASCII digits.
///
/// # Errors
/// [`NormaliseError::Invalid`] naming the reason: wrong length, a non-digit, a wrong check digit.
pub fn normalise(input: &str) -> Result<String, NormaliseError> {
    let mut digits = Vec::with_capacity(12);
    for c in input.chars() {
        match c {
            '0'..='9' => digits.push(c as u8 - b'0'),
            '０'..='９' => digits.push((c as u32 - '０' as u32) as u8),
            ' ' | '\u{3000}' | '-' | '－' | 'ー' => {}
            other => {
                return Err(NormaliseError::Invalid(format!(
                    "my number contains '{other}', which is not a digit"
                )));
            }
        }
    }
    let Ok(all) = <[u8; 12]>::try_from(digits.as_slice()) else {
        return Err(NormaliseError::Invalid(format!(
            "my number has {} digits, expected 12",
            digits.len()
        )));
    };
    let mut first = [0u8; 11];
    first.copy_from_slice(&all[..11]);
    let expected = check_digit(&first);
    if all[11] != expected {
        return Err(NormaliseError::Invalid(format!(
            "my number check digit is {}, expected {expected}",
            all[11]
        )));
    }
    Ok(all.iter().map(|d| char::from(b'0' + d)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        let got = normalise(input);
        match expected {
            Ok(want) => assert_eq!(got, Ok(want.to_owned()), "{input}"),
            Err(msg) => assert_eq!(got, Err(NormaliseError::Invalid(msg.to_owned())), "{input}"),
        }
    }

    #[test]
    fn my_numbers() {
        check("123456789018", Ok("123456789018"));
        check("1234 5678 9018", Ok("123456789018"));
        check("１２３４５６７８９０１８", Ok("123456789018"));
        check(
            "123456789019",
            Err("my number check digit is 9, expected 8"),
        );
        check("12345678901", Err("my number has 11 digits, expected 12"));
        check(
            "12345678901a",
            Err("my number contains 'a', which is not a digit"),
        );
    }
}
