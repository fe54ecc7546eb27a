//! Which ComfyUI release the simulator answers as.
//!
//! The recordings of `fixtures/comfyui/` are ComfyUI 0.8.0; those of
//! `fixtures/comfyui-0.33/` show what 0.33.0 does differently, and with
//! [`ComfyVersion::V0_33_0`] the simulator does the same: an unknown class
//! is refused as `missing_node_type`, an interrupted job is `cancelled` in
//! `/api/jobs`, jobs can be cancelled by id (`POST /api/jobs/{id}/cancel`,
//! `POST /api/jobs/cancel`), a client-chosen `prompt_id` must be a
//! canonical UUID, and `/features` has the newer keys.

use std::fmt;
use std::str::FromStr;

/// A ComfyUI release the simulator can answer as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ComfyVersion {
    /// ComfyUI 0.8.0 (January 2026), the recorded server.
    #[default]
    V0_8_0,
    /// ComfyUI 0.33.0 (August 2026).
    V0_33_0,
}

impl ComfyVersion {
    /// The version string, as `/system_stats` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_8_0 => "0.8.0",
            Self::V0_33_0 => "0.33.0",
        }
    }

    /// Whether this release has the 0.33.0 behaviours.
    pub(crate) fn newer(self) -> bool {
        self == Self::V0_33_0
    }
}

impl fmt::Display for ComfyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ComfyVersion {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "0.8.0" => Ok(Self::V0_8_0),
            "0.33.0" => Ok(Self::V0_33_0),
            other => Err(crate::Error::Config(format!(
                "unknown ComfyUI version {other:?} (the simulator knows 0.8.0 and 0.33.0)"
            ))),
        }
    }
}

/// Whether `id` is a UUID in canonical lowercase hyphenated form, as
/// ComfyUI 0.33.0 requires of a client-chosen `prompt_id`.
pub(crate) fn is_canonical_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_uuids_are_checked() {
        assert_eq!("0.33.0".parse::<ComfyVersion>().ok(), Some(ComfyVersion::V0_33_0));
        assert!("0.9".parse::<ComfyVersion>().is_err());
        assert!(is_canonical_uuid("0e8da97a-b590-40ec-8f9d-8ea882fd3607"));
        assert!(!is_canonical_uuid("0E8DA97A-B590-40EC-8F9D-8EA882FD3607"));
        assert!(!is_canonical_uuid("not-a-uuid"));
        assert!(!is_canonical_uuid("0e8da97ab59040ec8f9d8ea882fd3607"));
    }
}
