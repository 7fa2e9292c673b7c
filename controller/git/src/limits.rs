//! Bounds on what reading one revision's manifests folder may cost, and what it did cost. A
//! push is small but a tree can list one large blob thousands of times (an 8 KB push that
//! reads as 6 GB): every bound is checked against the listing before any content is read.

/// Bounds on one read of a folder at a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Entries `git ls-tree -r` lists under the folder (files, links, submodules).
    pub max_entries: usize,
    /// Bytes of all files together, a blob listed under several paths counting once per path
    /// (the loader parses, and containers receive, each path's content).
    pub max_total_bytes: u64,
    /// Bytes of the `git ls-tree` listing itself (long paths make a listing large before the
    /// entry count is known).
    pub max_listing_bytes: usize,
}

impl ReadLimits {
    /// The controller's and memectl's limits. A real manifests folder holds tens of files and
    /// well under a megabyte (the staging stack: 13 files, 12 KB); these leave two orders of
    /// magnitude of room while keeping one revision's read within what a small host can hold.
    pub const DEFAULT: Self = Self { max_entries: 5_000, max_total_bytes: 32 << 20, max_listing_bytes: 8 << 20 };
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What one read of a folder cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Entries listed under the folder.
    pub entries: usize,
    /// Files in the tree read (paths).
    pub files: usize,
    /// Distinct blobs among them: each was read once.
    pub blobs: usize,
    /// Bytes of the files, every path counted.
    pub total_bytes: u64,
    /// Bytes actually read from git (each blob once).
    pub bytes_read: u64,
}
