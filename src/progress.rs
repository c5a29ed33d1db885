//! Progress reporting without printing: long library operations (model downloads, embedding)
//! report through this trait, and the binary decides how (and whether) to show it.

/// Receives progress of one long operation at a time.
pub trait Progress: Sync {
    /// A new phase begins, with `total` units of work (bytes, texts).
    fn start(&self, _label: &str, _total: u64) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
    /// The phase is over.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
