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

use std::sync::Arc;

use rayon::prelude::*;

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
    records: Arc<dyn CascadeKeys>,
    /// Per record, its index in `linked` ([`NOT_LINKED`] while unlinked): 4 bytes a record.
    links: Vec<u32>,
    /// The round and link id of every (record, round) link, in the order they were made.
    linked: Vec<(usize, LinkId)>,
    ambiguous: Vec<AmbiguousKey>,
    shared_rounds: Vec<bool>,
    next: usize,
}

/// `links` of a record not linked (yet).
const NOT_LINKED: u32 = u32::MAX;

/// Where a [`CascadePlan`] reads its records' key values, without a copy of them: the caller's
/// own storage (a party's records, shared with the rest of its session).
pub trait CascadeKeys: Send + Sync {
    /// How many records.
    fn record_count(&self) -> usize;

    /// Record `record`'s value of the key of round `round`, `None` when it has none. Called
    /// only with `record < record_count()` and `round` below the plan's number of keys.
    fn key(&self, record: usize, round: usize) -> Option<&[u8]>;
}

/// Records as owned values: per record, one value (or none) per key.
impl CascadeKeys for Vec<Vec<Option<Vec<u8>>>> {
    fn record_count(&self) -> usize {
        self.len()
    }

    fn key(&self, record: usize, round: usize) -> Option<&[u8]> {
        self[record].get(round)?.as_deref()
    }
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
    /// Per element, the record whose value it is (its first holder).
    elements: Vec<u32>,
    /// The holders of element `e` are `holders[holder_ends[e - 1]..holder_ends[e]]`.
    holder_ends: Vec<u32>,
    holders: Vec<u32>,
}

impl std::fmt::Debug for CascadePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CascadePlan")
            .field("keys", &self.keys)
            .field("records", &self.links.len())
            .field(
                "linked",
                &self.links.iter().filter(|&&l| l != NOT_LINKED).count(),
            )
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
    /// assert_eq!(round.elements(), [b"1".as_slice()]);
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
        Self::from_source(keys, Arc::new(records))
    }

    /// A plan over records whose key values `records` holds (no copy is made), key `i` being
    /// `records.key(record, i)`.
    ///
    /// # Errors
    /// [`PsiError::Cascade`] when there is no key, or more records than a round can number.
    pub fn from_source(
        keys: Vec<MatchKeyName>,
        records: Arc<dyn CascadeKeys>,
    ) -> Result<Self, PsiError> {
        if keys.is_empty() {
            return Err(PsiError::Cascade {
                reason: "no match key".into(),
            });
        }
        let count = records.record_count();
        if u32::try_from(count).is_err() {
            return Err(PsiError::Cascade {
                reason: format!("{count} records, more than a cascade numbers"),
            });
        }
        let shared_rounds = vec![false; keys.len()];
        Ok(Self {
            keys,
            records,
            links: vec![NOT_LINKED; count],
            linked: Vec::new(),
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
            // Made at its exact size (48 bytes a link, at the session's end: grown by
            // doubling it could take twice that).
            let count = self.links.iter().filter(|&&l| l != NOT_LINKED).count();
            let mut links = Vec::with_capacity(count);
            links.extend(
                self.links
                    .iter()
                    .enumerate()
                    .filter(|&(_, &l)| l != NOT_LINKED)
                    .map(|(record, &l)| {
                        let (round, link_id) = self.linked[l as usize];
                        CascadeLink {
                            record,
                            round,
                            link_id,
                        }
                    }),
            );
            drop(std::mem::take(&mut self.linked));
            return CascadeStep::Done(CascadeOutcome {
                links,
                ambiguous: self.ambiguous,
            });
        }
        let round = self.next;
        self.next += 1;
        // The unlinked records with a value, grouped by value by sorting their indices (4
        // bytes a record, where a hash map of values took several times that); ties keep
        // input order, so each group starts with its first holder.
        let records = &*self.records;
        let mut order: Vec<u32> = (0..self.links.len())
            .filter(|&r| self.links[r] == NOT_LINKED && records.key(r, round).is_some())
            .map(|r| r as u32)
            .collect();
        let value = |r: u32| records.key(r as usize, round).unwrap_or_default();
        order.par_sort_unstable_by(|&a, &b| value(a).cmp(value(b)).then(a.cmp(&b)));
        // Groups as (start, end) in `order`, then in order of first appearance, as the
        // elements were always numbered.
        let mut groups: Vec<(u32, u32)> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len() && value(order[end]) == value(order[start]) {
                end += 1;
            }
            groups.push((start as u32, end as u32));
            start = end;
        }
        groups.par_sort_unstable_by_key(|&(start, _)| order[start as usize]);
        let mut elements = Vec::with_capacity(groups.len());
        let mut holder_ends = Vec::with_capacity(groups.len());
        let mut holders = Vec::with_capacity(order.len());
        let mut ambiguous = Vec::new();
        let shared = self.shared_rounds[round];
        for (start, end) in groups {
            let group = &order[start as usize..end as usize];
            if group.len() == 1 || shared {
                elements.push(group[0]);
                holders.extend_from_slice(group);
                holder_ends.push(holders.len() as u32);
            } else {
                ambiguous.push(AmbiguousKey {
                    round,
                    records: group.iter().map(|&r| r as usize).collect(),
                });
            }
        }
        self.ambiguous.extend(ambiguous);
        CascadeStep::Round(PendingRound {
            plan: self,
            round,
            elements,
            holder_ends,
            holders,
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

    /// The elements to give the session: one distinct value per unambiguous, unlinked record
    /// (borrowed from the records: a round holds 12 bytes per element of its own).
    pub fn elements(&self) -> Vec<&[u8]> {
        let records = &*self.plan.records;
        self.elements
            .iter()
            .map(|&r| records.key(r as usize, self.round).unwrap_or_default())
            .collect()
    }

    /// How many elements [`PendingRound::elements`] gives.
    pub fn element_count(&self) -> usize {
        self.elements.len()
    }

    /// Records the session's outcome and gives the plan back.
    ///
    /// # Errors
    /// [`PsiError::Cascade`] when the outcome names an element this round did not have.
    pub fn finish(mut self, outcome: &MutualOutcome) -> Result<CascadePlan, PsiError> {
        self.plan.linked.reserve_exact(outcome.matches.len());
        for matched in &outcome.matches {
            if matched.index >= self.elements.len() {
                return Err(PsiError::Cascade {
                    reason: format!(
                        "round {} outcome names element {}, but the round has {}",
                        self.round,
                        matched.index,
                        self.elements.len()
                    ),
                });
            }
            let start = match matched.index {
                0 => 0,
                e => self.holder_ends[e - 1] as usize,
            };
            let end = self.holder_ends[matched.index] as usize;
            let link = u32::try_from(self.plan.linked.len()).unwrap_or(NOT_LINKED);
            self.plan.linked.push((self.round, matched.link_id));
            for &record in &self.holders[start..end] {
                self.plan.links[record as usize] = link;
            }
        }
        Ok(self.plan)
    }
}
