//! Bounds on untrusted workflow input, checked before the expensive work.

/// How large a workflow may be. Every bound is checked while parsing, so a
/// hostile document is rejected before it costs memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest document, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects.
    pub max_depth: usize,
    /// Longest string (value or key), in bytes.
    pub max_string: usize,
    /// Most nodes in one workflow.
    pub max_nodes: usize,
}

impl Limits {
    /// The defaults: 10 MiB (as the Python server), depth 64, strings of
    /// 1 MiB, 50,000 nodes.
    pub const DEFAULT: Limits = Limits {
        max_bytes: 10 * 1024 * 1024,
        max_depth: 64,
        max_string: 1024 * 1024,
        max_nodes: 50_000,
    };

    /// These limits with another byte bound.
    #[must_use]
    pub const fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// These limits with another depth bound.
    #[must_use]
    pub const fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// These limits with another string bound.
    #[must_use]
    pub const fn with_max_string(mut self, max_string: usize) -> Self {
        self.max_string = max_string;
        self
    }

    /// These limits with another node-count bound.
    #[must_use]
    pub const fn with_max_nodes(mut self, max_nodes: usize) -> Self {
        self.max_nodes = max_nodes;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
