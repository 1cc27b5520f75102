//! The two messages of grouped PSI and their one bounded decoder each.

use std::collections::HashMap;

use curve25519_dalek::ristretto::CompressedRistretto;

use crate::error::PsiError;
use crate::wire::{KIND_GROUPED_QUERY, KIND_GROUPED_REPLY, POINT_LEN, Reader, header, put_count};

/// Bounds applied to grouped messages, both to the peer's bytes while decoding and to this
/// party's own groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupedLimits {
    /// Most groups one message may carry.
    pub max_groups: usize,
    /// Most points one group of one list may carry (a padded size).
    pub max_group_size: usize,
}

impl Default for GroupedLimits {
    /// 1,048,576 groups of at most 4,096 points each.
    fn default() -> Self {
        Self {
            max_groups: 1 << 20,
            max_group_size: 1 << 12,
        }
    }
}

impl GroupedLimits {
    /// The largest encoded [`GroupedReply`] (the larger message) these limits admit, for a
    /// transport that bounds a message before it has arrived whole (saturating).
    ///
    /// # Example
    /// ```
    /// use blindlink_psi::GroupedLimits;
    /// let limits = GroupedLimits { max_groups: 2, max_group_size: 3 };
    /// assert_eq!(limits.max_message_bytes(), 2 + 4 + 2 * (8 + 2 * 3 * 32));
    /// ```
    pub fn max_message_bytes(&self) -> usize {
        let group = 8usize.saturating_add(
            2usize
                .saturating_mul(POINT_LEN)
                .saturating_mul(self.max_group_size),
        );
        6usize.saturating_add(self.max_groups.saturating_mul(group))
    }
}

/// Flat points of many groups: group `i` is `points[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GroupedPoints {
    pub(crate) points: Vec<CompressedRistretto>,
    pub(crate) offsets: Vec<usize>,
}

impl GroupedPoints {
    pub(crate) fn from_sizes(points: Vec<CompressedRistretto>, sizes: &[usize]) -> Self {
        let mut offsets = Vec::with_capacity(sizes.len() + 1);
        offsets.push(0);
        let mut total = 0;
        for &size in sizes {
            total += size;
            offsets.push(total);
        }
        debug_assert_eq!(total, points.len());
        Self { points, offsets }
    }

    pub(crate) fn groups(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub(crate) fn group(&self, i: usize) -> &[CompressedRistretto] {
        &self.points[self.offsets[i]..self.offsets[i + 1]]
    }

    pub(crate) fn size(&self, i: usize) -> usize {
        self.offsets[i + 1] - self.offsets[i]
    }

    /// The group and the index within it of a flat point index.
    pub(crate) fn locate(&self, flat: usize) -> (usize, usize) {
        let group = self.offsets.partition_point(|&o| o <= flat) - 1;
        (group, flat - self.offsets[group])
    }
}

/// The querier's message: per group, its tokens hashed to the group and blinded with its
/// secret, padded with random points to the bucket's top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupedQuery {
    pub(crate) groups: GroupedPoints,
}

/// The answerer's message: per group, the querier's points blinded again and shuffled within
/// the group, and the answerer's own tokens blinded, padded and shuffled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupedReply {
    pub(crate) doubled: GroupedPoints,
    pub(crate) answerer: GroupedPoints,
}

const QUERY: &str = "grouped query";
const REPLY: &str = "grouped reply";

impl GroupedQuery {
    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.groups()
    }

    /// Whether the query has no group.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The padded size of every group, in order.
    pub fn padded_sizes(&self) -> Vec<usize> {
        (0..self.len()).map(|i| self.groups.size(i)).collect()
    }

    /// Number of points over all groups.
    pub fn point_count(&self) -> usize {
        self.groups.points.len()
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let g = self.len();
        let mut out = header(
            KIND_GROUPED_QUERY,
            4 + 4 * g + POINT_LEN * self.point_count(),
        );
        put_count(&mut out, g);
        for i in 0..g {
            put_count(&mut out, self.groups.size(i));
        }
        out.extend(self.groups.points.iter().flat_map(|p| p.to_bytes()));
        out
    }

    /// Parses wire bytes.
    ///
    /// # Errors
    /// [`PsiError::TooManyElements`] for more than `max_groups` groups,
    /// [`PsiError::GroupTooLarge`] for a group above `max_group_size`,
    /// [`PsiError::IdentityGroupPoint`] and [`PsiError::DuplicateGroupPoint`] naming the group
    /// and index, [`PsiError::Truncated`], [`PsiError::TrailingBytes`], a wrong version or
    /// kind. Whether a point is a valid encoding and whether a size is a bucket's top are
    /// checked by the session that consumes the message.
    pub fn decode(bytes: &[u8], limits: &GroupedLimits) -> Result<Self, PsiError> {
        let mut reader = Reader::new(QUERY, bytes, KIND_GROUPED_QUERY)?;
        let g = read_group_count(&mut reader, limits)?;
        // The sizes table is read whole before anything is allocated for it.
        let mut sizes_reader = Reader::sub(QUERY, reader.take(4usize.saturating_mul(g))?);
        let mut sizes = Vec::with_capacity(g);
        for group in 0..g {
            sizes.push(read_group_size(&mut sizes_reader, limits, group)?);
        }
        let mut points = Vec::new();
        let mut seen = HashMap::new();
        for (group, &size) in sizes.iter().enumerate() {
            read_group_points(&mut reader, QUERY, group, size, 0, &mut seen, &mut points)?;
        }
        reader.finish()?;
        Ok(Self {
            groups: GroupedPoints::from_sizes(points, &sizes),
        })
    }
}

impl GroupedReply {
    /// Number of groups.
    pub fn len(&self) -> usize {
        self.doubled.groups()
    }

    /// Whether the reply has no group.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answerer's padded size of every group, in order.
    pub fn answerer_padded_sizes(&self) -> Vec<usize> {
        (0..self.len()).map(|i| self.answerer.size(i)).collect()
    }

    /// Number of points over all groups and both lists.
    pub fn point_count(&self) -> usize {
        self.doubled.points.len() + self.answerer.points.len()
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let g = self.len();
        let mut out = header(
            KIND_GROUPED_REPLY,
            4 + 8 * g + POINT_LEN * self.point_count(),
        );
        put_count(&mut out, g);
        for i in 0..g {
            put_count(&mut out, self.doubled.size(i));
            put_count(&mut out, self.answerer.size(i));
        }
        for i in 0..g {
            out.extend(self.doubled.group(i).iter().flat_map(|p| p.to_bytes()));
            out.extend(self.answerer.group(i).iter().flat_map(|p| p.to_bytes()));
        }
        out
    }

    /// Parses wire bytes. Within a group, indices in errors count the doubly blinded points
    /// first (`0..n`), then the answerer's points (`n..n + m`).
    ///
    /// # Errors
    /// As [`GroupedQuery::decode`]; duplicates are refused within each of a group's two
    /// lists.
    pub fn decode(bytes: &[u8], limits: &GroupedLimits) -> Result<Self, PsiError> {
        let mut reader = Reader::new(REPLY, bytes, KIND_GROUPED_REPLY)?;
        let g = read_group_count(&mut reader, limits)?;
        let mut sizes_reader = Reader::sub(REPLY, reader.take(8usize.saturating_mul(g))?);
        let mut doubled_sizes = Vec::with_capacity(g);
        let mut answerer_sizes = Vec::with_capacity(g);
        for group in 0..g {
            doubled_sizes.push(read_group_size(&mut sizes_reader, limits, group)?);
            answerer_sizes.push(read_group_size(&mut sizes_reader, limits, group)?);
        }
        let mut doubled = Vec::new();
        let mut answerer = Vec::new();
        let mut seen = HashMap::new();
        for group in 0..g {
            let n = doubled_sizes[group];
            read_group_points(&mut reader, REPLY, group, n, 0, &mut seen, &mut doubled)?;
            let m = answerer_sizes[group];
            read_group_points(&mut reader, REPLY, group, m, n, &mut seen, &mut answerer)?;
        }
        reader.finish()?;
        Ok(Self {
            doubled: GroupedPoints::from_sizes(doubled, &doubled_sizes),
            answerer: GroupedPoints::from_sizes(answerer, &answerer_sizes),
        })
    }
}

fn read_group_count(reader: &mut Reader<'_>, limits: &GroupedLimits) -> Result<usize, PsiError> {
    reader.count_of(limits.max_groups, "groups")
}

fn read_group_size(
    reader: &mut Reader<'_>,
    limits: &GroupedLimits,
    group: usize,
) -> Result<usize, PsiError> {
    let size = reader.raw_u32()?;
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if size > limits.max_group_size {
        return Err(PsiError::GroupTooLarge {
            message: reader.message(),
            group,
            size: size as u64,
            limit: limits.max_group_size as u64,
        });
    }
    Ok(size)
}

/// Reads one list of one group, refusing the identity (all-zero bytes) and repeated points;
/// `first_index` numbers the points within the group for errors.
fn read_group_points(
    reader: &mut Reader<'_>,
    message: &'static str,
    group: usize,
    count: usize,
    first_index: usize,
    seen: &mut HashMap<[u8; POINT_LEN], usize>,
    out: &mut Vec<CompressedRistretto>,
) -> Result<(), PsiError> {
    let raw = reader.take(count.saturating_mul(POINT_LEN))?;
    seen.clear();
    out.reserve(count);
    for (i, chunk) in raw.chunks_exact(POINT_LEN).enumerate() {
        let mut bytes = [0u8; POINT_LEN];
        bytes.copy_from_slice(chunk);
        let index = first_index + i;
        if bytes == [0u8; POINT_LEN] {
            return Err(PsiError::IdentityGroupPoint {
                message,
                group,
                index,
            });
        }
        if let Some(&first) = seen.get(&bytes) {
            return Err(PsiError::DuplicateGroupPoint {
                message,
                group,
                index,
                first,
            });
        }
        seen.insert(bytes, index);
        out.push(CompressedRistretto(bytes));
    }
    Ok(())
}
