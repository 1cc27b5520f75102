//! The `check` helpers of the step modules' tests: each runs one step on one input, into a
//! buffer holding a stale value, and compares the whole output (or the exact error text).

use super::NormaliseError;

/// Checks a step that cannot fail.
pub(super) fn check_step(step: fn(&str, &mut String), input: &str, expected: &str) {
    let mut out = String::from("stale");
    step(input, &mut out);
    assert_eq!(out, expected, "input {input:?}");
}

/// Checks a step that can reject: `Ok(output)` or `Err(exact message)`.
pub(super) fn check_fallible_step(
    step: impl Fn(&str, &mut String) -> Result<(), NormaliseError>,
    input: &str,
    expected: Result<&str, &str>,
) {
    let mut out = String::from("stale");
    let got = step(input, &mut out).map(|()| out.as_str());
    let expected = expected.map_err(|message| NormaliseError::Invalid(message.to_owned()));
    assert_eq!(got, expected, "input {input:?}");
}
