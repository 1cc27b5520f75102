//! Multi-key cascade: records carry several match keys in priority order (e.g. My Number;
//! kana name + date of birth + sex; kanji name + date of birth + postcode). Round `i` runs one
//! mutual PSI session on key `i` of every record not linked in an earlier round.
//!
//! A key value that more than one of this party's still-unlinked records carry in a round is
//! *ambiguous*: linking it would link the other party's record to one of them at random, so
//! it is reported and left out of that round (the records stay in later rounds, where a more
//! specific key may separate them). The other party does not learn that a value was withheld.
//!
//! A caller that will examine every holder of a shared value itself (the comparing side of
//! `validate`, which scores each holder against the peer's record) can ask for a round to
//! *share* duplicates instead ([`CascadePlan::share_duplicates_in_round`]): the value is sent
//! once, as usual, and every holder gets its link id. The peer still sees one element.
//!
//! The plan is a typed state machine like the sessions: [`CascadePlan::next_round`] consumes
//! the plan and hands out a [`PendingRound`], which gives the plan back only with that round's
//! [`MutualOutcome`].

use std::collections::HashMap;

use crate::error::PsiError;
use crate::group::{LinkId, MatchKeyName};
use crate::mutual::MutualOutcome;

/// One party's records and keys, before or between rounds.
///
/// # Security
/// Holds the raw key values (personal data); `Debug` prints only counts.
#[derive(Clone)]
pub struct CascadePlan {
    keys: Vec<MatchKeyName>,
    records: Vec<Vec<Option<Vec<u8>>>>,
    links: Vec<Option<CascadeLink>>,
    ambiguous: Vec<AmbiguousKey>,
    shared_rounds: Vec<bool>,
    next: usize,
}

/// A record linked in some round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CascadeLink {
    /// Position of the record in this party's input.
    pub record: usize,
    /// The round (key index) that linked it.
    pub round: usize,
    /// The link id both parties share for it.
    pub link_id: LinkId,
}

/// A key value shared by several of this party's records in one round, left unlinked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmbiguousKey {
    /// The round (key index).
    pub round: usize,
    /// The records carrying the value, ascending.
    pub records: Vec<usize>,
}

/// What a cascade produced for this party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CascadeOutcome {
    /// Linked records, ascending by record.
    pub links: Vec<CascadeLink>,
    /// Ambiguous key values, by round then first record.
    pub ambiguous: Vec<AmbiguousKey>,
}

/// The next thing to do with a plan.
#[derive(Debug)]
pub enum CascadeStep {
    /// Run a mutual PSI session on this round's elements.
    Round(PendingRound),
    /// Every round ran.
    Done(CascadeOutcome),
}

/// A round whose session is running. `Debug` prints only counts.
pub struct PendingRound {
    plan: CascadePlan,
    round: usize,
    elements: Vec<Vec<u8>>,
    holders_of_element: Vec<Vec<usize>>,
}

impl std::fmt::Debug for CascadePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CascadePlan")
            .field("keys", &self.keys)
            .field("records", &self.records.len())
            .field("linked", &self.links.iter().flatten().count())
            .field("ambiguous", &self.ambiguous.len())
            .field("next_round", &self.next)
            .finish()
    }
}

impl std::fmt::Debug for PendingRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRound")
            .field("round", &self.round)
            .field("elements", &self.elements.len())
            .field("plan", &self.plan)
            .finish()
    }
}

impl CascadePlan {
    /// A plan over `records`, each carrying one optional value per key, in the order of
    /// `keys` (`None`: the record lacks that key).
    ///
    /// # Errors
    /// [`PsiError::Cascade`] when there is no key, or a record has the wrong number of values.
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::{CascadePlan, CascadeStep, MatchKeyName};
    /// let keys = vec![MatchKeyName::new("my_number").unwrap(), MatchKeyName::new("name+dob").unwrap()];
    /// let plan = CascadePlan::new(keys, vec![vec![Some(b"1".to_vec()), Some(b"x".to_vec())]]).unwrap();
    /// let CascadeStep::Round(round) = plan.next_round() else { unreachable!() };
    /// assert_eq!(round.elements(), &[b"1".to_vec()]);
    /// ```
    pub fn new(
        keys: Vec<MatchKeyName>,
        records: Vec<Vec<Option<Vec<u8>>>>,
    ) -> Result<Self, PsiError> {
        if keys.is_empty() {
            return Err(PsiError::Cascade {
                reason: "no match key".into(),
            });
        }
        if let Some((record, values)) = records
            .iter()
            .enumerate()
            .find(|(_, values)| values.len() != keys.len())
        {
            return Err(PsiError::Cascade {
                reason: format!(
                    "record {record} has {} key values, expected {}",
                    values.len(),
                    keys.len()
                ),
            });
        }
        let links = vec![None; records.len()];
        let shared_rounds = vec![false; keys.len()];
        Ok(Self {
            keys,
            records,
            links,
            ambiguous: Vec::new(),
            shared_rounds,
            next: 0,
        })
    }

    /// Lets round `round` link every holder of a value that several unlinked records carry,
    /// instead of reporting it ambiguous; a round that does not exist is ignored.
    ///
    /// # Security
    /// The peer's view is unchanged (the value is one element, as before). Use it only where
    /// the caller checks each holder itself, or one link id would join unrelated records.
    #[must_use]
    pub fn share_duplicates_in_round(mut self, round: usize) -> Self {
        if let Some(shared) = self.shared_rounds.get_mut(round) {
            *shared = true;
        }
        self
    }

    /// Prepares the next round, or finishes.
    pub fn next_round(mut self) -> CascadeStep {
        if self.next == self.keys.len() {
            let links = self.links.iter().filter_map(|l| *l).collect();
            return CascadeStep::Done(CascadeOutcome {
                links,
                ambiguous: self.ambiguous,
            });
        }
        let round = self.next;
        self.next += 1;
        let mut holders: HashMap<&[u8], Vec<usize>> = HashMap::new();
        let mut order: Vec<&[u8]> = Vec::new();
        for (record, values) in self.records.iter().enumerate() {
            if self.links[record].is_some() {
                continue;
            }
            if let Some(value) = &values[round] {
                let entry = holders.entry(value.as_slice()).or_default();
                if entry.is_empty() {
                    order.push(value.as_slice());
                }
                entry.push(record);
            }
        }
        let mut elements = Vec::with_capacity(order.len());
        let mut holders_of_element = Vec::with_capacity(order.len());
        let mut ambiguous = Vec::new();
        let shared = self.shared_rounds[round];
        for value in order {
            let records = &holders[value];
            if records.len() == 1 || shared {
                elements.push(value.to_vec());
                holders_of_element.push(records.clone());
            } else {
                ambiguous.push(AmbiguousKey {
                    round,
                    records: records.clone(),
                });
            }
        }
        self.ambiguous.extend(ambiguous);
        CascadeStep::Round(PendingRound {
            plan: self,
            round,
            elements,
            holders_of_element,
        })
    }
}

impl PendingRound {
    /// The round number (key index).
    pub fn round(&self) -> usize {
        self.round
    }

    /// The match key of this round; the session must use it.
    pub fn key(&self) -> &MatchKeyName {
        &self.plan.keys[self.round]
    }

    /// The elements to give the session: one distinct value per unambiguous, unlinked record.
    pub fn elements(&self) -> &[Vec<u8>] {
        &self.elements
    }

    /// Records the session's outcome and gives the plan back.
    ///
    /// # Errors
    /// [`PsiError::Cascade`] when the outcome names an element this round did not have.
    pub fn finish(mut self, outcome: &MutualOutcome) -> Result<CascadePlan, PsiError> {
        for matched in &outcome.matches {
            let Some(holders) = self.holders_of_element.get(matched.index) else {
                return Err(PsiError::Cascade {
                    reason: format!(
                        "round {} outcome names element {}, but the round has {}",
                        self.round,
                        matched.index,
                        self.elements.len()
                    ),
                });
            };
            for &record in holders {
                self.plan.links[record] = Some(CascadeLink {
                    record,
                    round: self.round,
                    link_id: matched.link_id,
                });
            }
        }
        Ok(self.plan)
    }
}
