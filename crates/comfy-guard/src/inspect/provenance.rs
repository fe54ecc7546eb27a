//! Where a node class comes from, and whether enforce mode may run it
//! without asking.
//!
//! ComfyUI's `/object_info` names, for every class, the Python module that
//! registered it (`python_module`). Classes of `nodes`, `comfy_extras.*` and
//! `comfy_api_nodes.*` ship with ComfyUI; classes of `custom_nodes.<folder>`
//! come from a pack the user installed. Enforce mode runs, without asking,
//! only what it can vouch for:
//!
//! - a class named in `security.allowed_nodes`;
//! - a class of a pack named in `security.allowed_node_packs`
//!   (`custom_nodes.<folder>`);
//! - a core class, less [`CORE_CLASSES_ON_PATHS_OR_CODE`].
//!
//! With an explicit `security.allowed_nodes` (the peer's key), any other
//! class is refused outright, as the peer refuses it. With the default
//! (empty) list, any other class the catalog knows needs the user's yes
//! (elicitation), and a class the catalog does not know, or any class when
//! there is no catalog, is refused: nothing says where it comes from.

use comfy_workflow::object_info::NodeDef;

/// Core classes that act on paths or code, which enforce mode does not
/// vouch for although they ship with ComfyUI: each needs the user's yes or
/// its name in `security.allowed_nodes`. One place, with the reason shown
/// to the user.
pub const CORE_CLASSES_ON_PATHS_OR_CODE: &[(&str, &str)] = &[
    (
        "LoadTrainingDataset",
        "loads a saved dataset folder with torch.load, which unpickles (runs) whatever the files hold",
    ),
    (
        "SaveTrainingDataset",
        "writes a dataset to a folder named by the workflow",
    ),
    (
        "SaveImageDataSetToFolder",
        "writes images to a folder named by the workflow",
    ),
    (
        "SaveImageTextDataSetToFolder",
        "writes images and captions to a folder named by the workflow",
    ),
    (
        "LoadImageDataSetFromFolder",
        "reads every image of a folder named by the workflow",
    ),
    (
        "LoadImageTextDataSetFromFolder",
        "reads every image and caption of a folder named by the workflow",
    ),
    ("Preview3D", "reads a model file named by a free-text path"),
    ("Preview3DAnimation", "reads a model file named by a free-text path"),
];

/// The reason a core class is on [`CORE_CLASSES_ON_PATHS_OR_CODE`], if it is.
pub fn core_class_on_paths_or_code(class: &str) -> Option<&'static str> {
    CORE_CLASSES_ON_PATHS_OR_CODE
        .iter()
        .find(|(name, _)| *name == class)
        .map(|(_, why)| *why)
}

/// Where a class comes from, read from its `python_module`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// Ships with ComfyUI (`nodes`, `comfy_extras.*`, `comfy_api_nodes.*`).
    Core,
    /// A custom node pack: its module, `custom_nodes.<folder>`.
    Pack(&'a str),
    /// Empty or anything else: the server does not say.
    Unknown,
}

impl<'a> Origin<'a> {
    /// Reads `python_module` as ComfyUI sets it.
    pub fn of(python_module: &'a str) -> Self {
        let under = |root: &str| {
            python_module == root
                || python_module
                    .strip_prefix(root)
                    .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1)
        };
        if python_module == "nodes" || under("comfy_extras") || under("comfy_api_nodes") {
            return Origin::Core;
        }
        match python_module.strip_prefix("custom_nodes.") {
            Some(folder) if !folder.is_empty() => Origin::Pack(python_module),
            _ => Origin::Unknown,
        }
    }
}

/// Whether `entry` names a pack as `security.allowed_node_packs` takes it:
/// `custom_nodes.<folder>`, the folder one path segment.
pub fn is_pack_module(entry: &str) -> bool {
    entry
        .strip_prefix("custom_nodes.")
        .is_some_and(|folder| !folder.is_empty() && !folder.contains(['/', '\\']) && folder != "." && folder != "..")
}

/// What enforce mode does with one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It runs.
    Runs,
    /// Outside an explicit `security.allowed_nodes`: refused (the peer's rule).
    NotListed,
    /// Known, but not vouched for: the user decides.
    Ask(String),
    /// Nothing says where it comes from: refused.
    Refuse(String),
}

/// Judges `class` (its catalog entry `def`; `catalog` says whether there
/// was a catalog at all).
pub(crate) fn verdict(
    class: &str,
    def: Option<&NodeDef>,
    catalog: bool,
    allowed_nodes: &std::collections::BTreeSet<String>,
    allowed_packs: &std::collections::BTreeSet<String>,
) -> Verdict {
    if allowed_nodes.contains(class) {
        return Verdict::Runs;
    }
    let origin = def.map(|d| Origin::of(&d.python_module));
    if let Some(Origin::Pack(module)) = origin
        && allowed_packs.contains(module)
    {
        return Verdict::Runs;
    }
    if !allowed_nodes.is_empty() {
        return Verdict::NotListed;
    }
    match origin {
        None if catalog => {
            Verdict::Refuse("not in the server's /object_info, so nothing says where it comes from".to_owned())
        }
        None => Verdict::Refuse("no /object_info catalog to tell where it comes from".to_owned()),
        Some(Origin::Core) => match core_class_on_paths_or_code(class) {
            None => Verdict::Runs,
            Some(why) => Verdict::Ask(format!(
                "a core class that {why}; name it in security.allowed_nodes to run it without asking"
            )),
        },
        Some(Origin::Pack(module)) => Verdict::Ask(format!(
            "from the custom node pack `{module}`, which is not in security.allowed_node_packs"
        )),
        Some(Origin::Unknown) => {
            Verdict::Ask("the server does not say which module registered it (no python_module)".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Origin, is_pack_module};

    #[test]
    fn origins() {
        assert_eq!(Origin::of("nodes"), Origin::Core);
        assert_eq!(Origin::of("comfy_extras.nodes_mask"), Origin::Core);
        assert_eq!(Origin::of("comfy_api_nodes.nodes_openai"), Origin::Core);
        assert_eq!(
            Origin::of("custom_nodes.was-node-suite"),
            Origin::Pack("custom_nodes.was-node-suite")
        );
        // Look-alikes of the core prefixes are not core.
        for odd in [
            "",
            "nodesx",
            "nodes.evil",
            "comfy_extras_evil",
            "comfy_extras.",
            "custom_nodes.",
            "custom_nodes",
        ] {
            assert_eq!(Origin::of(odd), Origin::Unknown, "{odd}");
        }
        assert!(is_pack_module("custom_nodes.ComfyUI-KJNodes"));
        for bad in [
            "ComfyUI-KJNodes",
            "custom_nodes.",
            "custom_nodes../x",
            "custom_nodes.a/b",
        ] {
            assert!(!is_pack_module(bad), "{bad}");
        }
    }
}
