//! Size buckets: the padded sizes a group's token count is rounded up to, so that the peer
//! learns a bucket instead of the exact count.

use crate::error::PsiError;

/// Size buckets that token counts are padded to. Both sides must use equal buckets (they are a
/// handshake parameter: compare [`SizeBuckets::describe`]).
///
/// The default scheme, `two-three`, has the tops 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96,
/// ... (every power of two and three times every power of two from 6 on): the padding adds at
/// most half the count (5 → 6, 9 → 12, 17 → 24) and about a fifth on average, and a count is
/// hidden among up to a third of its bucket's top (the bucket of 48 stands for 33 to 48
/// tokens). Coarser buckets hide more and cost more points; [`SizeBuckets::exact`] hides
/// nothing.
///
/// In every scheme an empty group stays empty (0 points): the peer learns that the group is
/// empty. The protocol's groups reveal that anyway (a missing field is an empty group, a
/// present one has at least one token), and sending no point for it saves the presence marker
/// token the protocol used to add to every field to tell the two apart. A caller that must
/// hide emptiness adds one constant token to every group.
///
/// # Example
/// ```
/// use blindlink_psi::SizeBuckets;
/// let buckets = SizeBuckets::default();
/// assert_eq!([0, 1, 5, 9, 45].map(|n| buckets.padded(n)), [0, 1, 6, 12, 48]);
/// assert_eq!(buckets.bounds(48), Some((33, 48)));
/// assert_eq!(buckets.bounds(0), Some((0, 0)));
/// assert_eq!(buckets.bounds(5), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SizeBuckets {
    scheme: Scheme,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Scheme {
    /// 1, 2, 3, 4, 6, 8, 12, 16, ...
    #[default]
    TwoThree,
    /// Every count is its own bucket (no padding; 0 stays 0).
    Exact,
    /// Explicit strictly increasing tops; past the last, multiples of the last.
    Tops(Vec<usize>),
}

/// Longest tops list [`SizeBuckets::tops`] and [`SizeBuckets::from_description`] accept.
const MAX_TOPS: usize = 64;

impl SizeBuckets {
    /// No padding at all: the peer learns exact counts. For tests and for data whose sizes are
    /// public anyway.
    pub fn exact() -> Self {
        Self {
            scheme: Scheme::Exact,
        }
    }

    /// Explicit bucket tops, strictly increasing and at least 1; a count above the last top is
    /// padded to the next multiple of the last top. An empty group stays empty.
    ///
    /// # Errors
    /// [`PsiError::InvalidSizeBuckets`] for an empty, unsorted or zero-starting list, or one
    /// longer than 64 tops.
    pub fn tops(tops: Vec<usize>) -> Result<Self, PsiError> {
        if tops.is_empty() || tops.len() > MAX_TOPS {
            return Err(PsiError::InvalidSizeBuckets {
                reason: "need 1 to 64 tops",
            });
        }
        if tops[0] == 0 || tops.windows(2).any(|w| w[0] >= w[1]) {
            return Err(PsiError::InvalidSizeBuckets {
                reason: "tops must be strictly increasing from at least 1",
            });
        }
        Ok(Self {
            scheme: Scheme::Tops(tops),
        })
    }

    /// The padded size of a group of `n` tokens: the top of its bucket (never below `n`; 0
    /// for an empty group).
    pub fn padded(&self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        match &self.scheme {
            Scheme::Exact => n,
            Scheme::TwoThree => {
                if n <= 4 {
                    return n;
                }
                match n.checked_next_power_of_two() {
                    Some(power) => {
                        let three_quarters = power / 2 + power / 4;
                        if n <= three_quarters {
                            three_quarters
                        } else {
                            power
                        }
                    }
                    None => n,
                }
            }
            Scheme::Tops(tops) => {
                if let Some(&top) = tops.iter().find(|&&top| top >= n) {
                    return top;
                }
                let last = tops[tops.len() - 1];
                n.div_ceil(last).checked_mul(last).unwrap_or(n)
            }
        }
    }

    /// The token counts a padded size may stand for, `(smallest, largest)` inclusive, or
    /// `None` when `padded` is not the top of a bucket (an honest peer never sends it).
    pub fn bounds(&self, padded: usize) -> Option<(usize, usize)> {
        if padded == 0 {
            return Some((0, 0));
        }
        match &self.scheme {
            Scheme::Exact => Some((padded, padded)),
            Scheme::TwoThree => match padded {
                1..=4 => Some((padded, padded)),
                _ if padded.is_power_of_two() => Some((padded / 2 + padded / 4 + 1, padded)),
                _ if padded.is_multiple_of(3) && (padded / 3).is_power_of_two() => {
                    Some((padded / 3 * 2 + 1, padded))
                }
                _ => None,
            },
            Scheme::Tops(tops) => {
                if let Some(i) = tops.iter().position(|&top| top == padded) {
                    let low = if i == 0 { 1 } else { tops[i - 1] + 1 };
                    return Some((low, padded));
                }
                let last = tops[tops.len() - 1];
                (padded > last && padded.is_multiple_of(last)).then(|| (padded - last + 1, padded))
            }
        }
    }

    /// Whether `padded` is the top of a bucket.
    pub fn is_top(&self, padded: usize) -> bool {
        self.bounds(padded).is_some()
    }

    /// The scheme as text, for the handshake parameters: `two-three`, `exact` or
    /// `tops:1,2,4,...`. [`SizeBuckets::from_description`] reads it back.
    pub fn describe(&self) -> String {
        match &self.scheme {
            Scheme::TwoThree => "two-three".to_owned(),
            Scheme::Exact => "exact".to_owned(),
            Scheme::Tops(tops) => {
                let list: Vec<String> = tops.iter().map(usize::to_string).collect();
                format!("tops:{}", list.join(","))
            }
        }
    }

    /// Parses [`SizeBuckets::describe`]'s text (a peer's handshake parameter).
    ///
    /// # Errors
    /// [`PsiError::InvalidSizeBuckets`] for anything else.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::SizeBuckets;
    /// let buckets = SizeBuckets::tops(vec![1, 4, 16]).unwrap();
    /// assert_eq!(SizeBuckets::from_description(&buckets.describe()).unwrap(), buckets);
    /// assert!(SizeBuckets::from_description("tops:4,2").is_err());
    /// ```
    pub fn from_description(text: &str) -> Result<Self, PsiError> {
        match text {
            "two-three" => Ok(Self::default()),
            "exact" => Ok(Self::exact()),
            _ => {
                let list = text
                    .strip_prefix("tops:")
                    .ok_or(PsiError::InvalidSizeBuckets {
                        reason: "unknown scheme",
                    })?;
                if list.len() > MAX_TOPS * 21 {
                    return Err(PsiError::InvalidSizeBuckets {
                        reason: "need 1 to 64 tops",
                    });
                }
                let tops = list
                    .split(',')
                    .map(|top| {
                        top.parse::<usize>()
                            .map_err(|_| PsiError::InvalidSizeBuckets {
                                reason: "a top is not a number",
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Self::tops(tops)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_schemes() -> Vec<SizeBuckets> {
        vec![
            SizeBuckets::default(),
            SizeBuckets::exact(),
            SizeBuckets::tops(vec![1, 2, 5, 10]).unwrap(),
            SizeBuckets::tops(vec![3]).unwrap(),
        ]
    }

    #[test]
    fn two_three_tops() {
        let buckets = SizeBuckets::default();
        let tops: Vec<usize> = (0..=200).filter(|&p| buckets.is_top(p)).collect();
        assert_eq!(
            tops,
            [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192]
        );
    }

    #[test]
    fn padded_is_a_top_whose_bounds_contain_the_count() {
        for buckets in all_schemes() {
            for n in 0..=1000usize {
                let padded = buckets.padded(n);
                assert!(padded >= n, "{buckets:?} {n}");
                let (low, high) = buckets.bounds(padded).unwrap();
                assert!(low <= n && n <= high && high == padded, "{buckets:?} {n}");
                // Every count the bucket stands for pads to the same top.
                assert_eq!(buckets.padded(low), padded, "{buckets:?} {n}");
            }
        }
    }

    #[test]
    fn only_an_empty_group_stays_empty() {
        for buckets in all_schemes() {
            assert_eq!(buckets.padded(0), 0, "{buckets:?}");
            assert_eq!(buckets.bounds(0), Some((0, 0)), "{buckets:?}");
            for n in 1..=100usize {
                let (low, _) = buckets.bounds(buckets.padded(n)).unwrap();
                assert!(
                    low >= 1,
                    "{buckets:?} {n}: a present group never looks empty"
                );
            }
        }
    }

    #[test]
    fn two_three_padding_is_at_most_half() {
        let buckets = SizeBuckets::default();
        for n in 1..100_000usize {
            assert!(buckets.padded(n) * 2 <= n * 3, "{n}");
        }
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        for buckets in all_schemes() {
            assert!(buckets.padded(usize::MAX) == usize::MAX);
            let _ = buckets.bounds(usize::MAX);
        }
    }

    #[test]
    fn descriptions_round_trip_and_bad_ones_fail() {
        for buckets in all_schemes() {
            assert_eq!(
                SizeBuckets::from_description(&buckets.describe()).unwrap(),
                buckets
            );
        }
        for bad in [
            "",
            "tops:",
            "tops:0,1",
            "tops:2,2",
            "tops:x",
            "pow2",
            "tops:1,,2",
        ] {
            assert!(
                matches!(
                    SizeBuckets::from_description(bad),
                    Err(PsiError::InvalidSizeBuckets { .. })
                ),
                "{bad}"
            );
        }
    }
}
