//! The policy an inspection checks against: the mode, the dangerous list, the
//! allowlists and the limits. Apart from the checks, so a caller (the server's
//! config, the linter) builds one without reading how findings are made.

use std::collections::BTreeSet;
use std::fmt;

use comfy_workflow::Limits;
use serde::{Deserialize, Serialize};

use super::names::DangerousIndex;
use super::names::default_dangerous_nodes;

/// How findings affect a run, as the peer's `security.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Findings are warnings; the workflow runs.
    #[default]
    Audit,
    /// Only classes it can vouch for run: core classes (less a curated
    /// list), classes of allowlisted packs, classes named in the allowlist
    /// (and with an explicit allowlist, only those). Any other finding
    /// needs the user's confirmation; see [`provenance`](super::provenance).
    Enforce,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Audit => "audit",
            Mode::Enforce => "enforce",
        })
    }
}

/// What the inspector checks against.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(super) mode: Mode,
    pub(super) allowed: BTreeSet<String>,
    pub(super) allowed_packs: BTreeSet<String>,
    pub(super) allow_api_nodes: bool,
    pub(super) dangerous: DangerousIndex,
    pub(super) limits: Limits,
}

impl Policy {
    /// The peer's defaults: its 159 dangerous classes, no allowlist, the
    /// default limits.
    pub fn new(mode: Mode) -> Self {
        let dangerous: BTreeSet<String> = default_dangerous_nodes().map(str::to_owned).collect();
        Self {
            mode,
            allowed: BTreeSet::new(),
            allowed_packs: BTreeSet::new(),
            allow_api_nodes: false,
            dangerous: DangerousIndex::new(&dangerous),
            limits: Limits::DEFAULT,
        }
    }

    /// Replaces the dangerous list (the peer's `security.dangerous_nodes`
    /// replaces the default when set).
    #[must_use]
    pub fn with_dangerous<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        let set: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        self.dangerous = DangerousIndex::new(&set);
        self
    }

    /// Adds to the dangerous list.
    #[must_use]
    pub fn with_extra_dangerous<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        let mut set = self.dangerous.names().clone();
        set.extend(names.into_iter().map(Into::into));
        self.dangerous = DangerousIndex::new(&set);
        self
    }

    /// Sets the enforce-mode allowlist (`security.allowed_nodes`).
    #[must_use]
    pub fn with_allowed<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.allowed = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the packs whose classes enforce mode runs
    /// (`security.allowed_node_packs`, each `custom_nodes.<folder>` as
    /// `/object_info`'s `python_module` names it).
    #[must_use]
    pub fn with_allowed_packs<I: IntoIterator<Item = S>, S: Into<String>>(mut self, modules: I) -> Self {
        self.allowed_packs = modules.into_iter().map(Into::into).collect();
        self
    }

    /// Lets paid API nodes run without the `node.api` finding
    /// (`security.allow_api_nodes`): in enforce mode they then run without
    /// asking, also when the dangerous list names them (it names many as
    /// paid API); in audit mode the `node.api` warning goes, the dangerous
    /// list's warnings stay. They are listed in
    /// [`Inspection::api_nodes`](super::Inspection::api_nodes) either way.
    #[must_use]
    pub fn with_allow_api_nodes(mut self, allow: bool) -> Self {
        self.allow_api_nodes = allow;
        self
    }

    /// Whether paid API nodes run without asking.
    pub fn allows_api_nodes(&self) -> bool {
        self.allow_api_nodes
    }

    /// Sets the limits checked before anything else.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether `class` is on the dangerous list (byte-exact).
    pub fn is_dangerous(&self, class: &str) -> bool {
        self.dangerous.is_dangerous(class)
    }

    /// The listed dangerous class `class` passes for, when it is not one
    /// itself.
    pub fn lookalike_of(&self, class: &str) -> Option<&str> {
        self.dangerous.lookalike_of(class)
    }
}
