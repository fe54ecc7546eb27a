//! Node ids.

use std::fmt;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// Longest node id accepted, in bytes. ComfyUI's are short (`"3"`,
/// `"12:4"` inside subgraphs); anything longer is hostile.
pub const MAX_NODE_ID_LEN: usize = 128;

/// A node id as ComfyUI writes it: a non-empty string of printable
/// characters, at most [`MAX_NODE_ID_LEN`] bytes. A [`SmolStr`]: ids up
/// to 23 bytes (all of ComfyUI's) are stored inline, so neither reading
/// one nor cloning it (ids are cloned into every link, order and report)
/// allocates; longer ones are shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(SmolStr);

impl NodeId {
    /// Validates `id`.
    ///
    /// # Errors
    /// The reason, when `id` is empty, too long, or holds a control
    /// character.
    pub fn new(id: impl AsRef<str>) -> Result<Self, &'static str> {
        let id = id.as_ref();
        Self::check(id)?;
        Ok(Self(SmolStr::new(id)))
    }

    /// An id that [`NodeId::check`] has passed.
    pub(crate) fn checked(id: &str) -> Self {
        debug_assert!(Self::check(id).is_ok());
        Self(SmolStr::new(id))
    }

    /// Why `id` cannot be a node id, if it cannot.
    ///
    /// # Errors
    /// The reason, as for [`NodeId::new`].
    pub fn check(id: &str) -> Result<(), &'static str> {
        if id.is_empty() {
            return Err("node ids must not be empty");
        }
        if id.len() > MAX_NODE_ID_LEN {
            return Err("node ids are at most 128 bytes");
        }
        // Control characters are ASCII bytes or U+0080..=U+009F (0xC2
        // then 0x80..=0x9F); the bytes say it without decoding.
        let b = id.as_bytes();
        if b.iter().any(|&c| c < 0x20 || c == 0x7f)
            || b.windows(2).any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]))
        {
            return Err("node ids must not contain control characters");
        }
        Ok(())
    }

    /// The id of a number, as the editor numbers nodes.
    pub fn from_number(n: u64) -> Self {
        Self(smol_str::format_smolstr!("{n}"))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a number, when it is one (most API-format ids are).
    pub fn as_number(&self) -> Option<u64> {
        self.0.parse().ok()
    }
}

impl TryFrom<String> for NodeId {
    type Error = &'static str;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> Self {
        id.0.to_string()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for NodeId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_NODE_ID_LEN, NodeId};

    #[test]
    fn accepts_comfyui_ids_and_refuses_hostile_ones() {
        for ok in ["3", "12:4", "a-b_c", "ü"] {
            assert!(NodeId::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(NodeId::new(""), Err("node ids must not be empty"));
        assert_eq!(NodeId::new("1\n"), Err("node ids must not contain control characters"));
        assert!(NodeId::new("x".repeat(MAX_NODE_ID_LEN)).is_ok());
        assert!(NodeId::new("x".repeat(MAX_NODE_ID_LEN + 1)).is_err());
        assert_eq!(NodeId::from_number(42).as_number(), Some(42));
        assert_eq!(NodeId::new("12:4").unwrap().as_number(), None);
    }

    #[test]
    fn serde_keeps_the_plain_string_and_validates() {
        let id: NodeId = serde_json::from_str("\"7\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"7\"");
        assert!(serde_json::from_str::<NodeId>("\"\"").is_err());
    }
}
