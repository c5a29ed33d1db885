//! When a commit folds the segments into a new base generation instead of adding a segment.

/// A commit writes a full generation, not a segment, once the papers outside the base
/// generation would pass this fraction of it: they are searched exactly, and every reader
/// parses their segments, so they are folded into the graph before they cost much. Each
/// paper is thus rewritten about 1/COMPACT_FRACTION times over the library's life, however
/// it grows, instead of at every ingest.
pub const COMPACT_FRACTION: f64 = 0.10;
/// A commit writes a full generation when the manifest already lists this many segments
/// (sightings-only ingests add segments without adding papers).
pub const MAX_SEGMENTS: usize = 32;

/// Decides, at each commit, between appending a segment and writing a full generation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MergePolicy {
    /// See [`COMPACT_FRACTION`].
    pub compact_fraction: f64,
    /// See [`MAX_SEGMENTS`].
    pub max_segments: usize,
}

impl Default for MergePolicy {
    fn default() -> Self {
        MergePolicy {
            compact_fraction: COMPACT_FRACTION,
            max_segments: MAX_SEGMENTS,
        }
    }
}

/// What the policy looks at.
#[derive(Debug, Clone, Copy)]
pub struct CommitShape {
    /// Papers in the base generation (covered by its graph and lexical files).
    pub base_rows: usize,
    /// Papers after it: the segments' and the uncommitted ones.
    pub tail_rows: usize,
    /// Segments the manifest lists now.
    pub segments: usize,
    /// Nothing is committed yet (a new library).
    pub first_commit: bool,
    /// The model, the vectors or the index parameters changed: every file must be rewritten.
    pub rewrite: bool,
}

impl MergePolicy {
    /// Whether the next commit writes a full generation rather than a segment.
    pub fn full_commit(&self, shape: CommitShape) -> bool {
        shape.rewrite
            || shape.first_commit
            || shape.segments >= self.max_segments
            || shape.tail_rows as f64 > shape.base_rows as f64 * self.compact_fraction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(base_rows: usize, tail_rows: usize, segments: usize) -> CommitShape {
        CommitShape {
            base_rows,
            tail_rows,
            segments,
            first_commit: false,
            rewrite: false,
        }
    }

    #[test]
    fn segments_until_the_tail_passes_the_fraction_or_the_count() {
        let p = MergePolicy::default();
        assert!(
            !p.full_commit(shape(1000, 100, 3)),
            "10% exactly stays a segment"
        );
        assert!(p.full_commit(shape(1000, 101, 3)));
        assert!(p.full_commit(shape(1000, 0, MAX_SEGMENTS)));
        assert!(!p.full_commit(shape(1000, 0, MAX_SEGMENTS - 1)));
        assert!(p.full_commit(CommitShape {
            first_commit: true,
            ..shape(0, 5, 0)
        }));
        assert!(p.full_commit(CommitShape {
            rewrite: true,
            ..shape(1000, 0, 0)
        }));
    }
}
