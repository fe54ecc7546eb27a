//! Paid partner nodes ("API nodes"): which classes they are and which
//! service each one calls.
//!
//! ComfyUI marks them in `/object_info` with `api_node: true` (they ship in
//! `comfy_api_nodes.*`). Running one sends its inputs (prompts, images,
//! audio) to an outside service and charges the user's Comfy account, so
//! the inspector lists every one a workflow uses (see
//! [`Inspection::api_nodes`](super::Inspection::api_nodes)) and reports
//! each as `node.api` unless `security.allow_api_nodes` is set: a warning
//! in audit mode, the user's confirmation in enforce mode.
//!
//! Provenance counts `comfy_api_nodes.*` as core (it ships with ComfyUI);
//! this rule comes on top of it. The mark is the server's `api_node` flag,
//! not the module: helpers in those modules that call nothing
//! (`OpenAIInputFiles`, `OpenAIChatConfig`) are not marked and are not
//! API nodes.

use comfy_workflow::object_info::NodeDef;
use serde::Serialize;

use super::provenance::Origin;

/// Longest service name kept (a hostile catalog cannot flood a message).
const MAX_SERVICE: usize = 64;

/// The category prefixes ComfyUI files partner nodes under: `api node/`
/// (0.8.0), `partner/` (0.33.0). The service is the last segment
/// (`partner/image/OpenAI`).
const CATEGORY_ROOTS: &[&str] = &["partner/", "api node/"];

/// One node of a workflow that is a paid API node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiNodeUse {
    /// The node id (`outer:inner` inside subgraphs).
    pub node: String,
    /// Its class.
    pub class: String,
    /// The outside service it calls (`OpenAI`, `Kling`, ...), from its
    /// category and module.
    pub service: String,
}

/// Whether `def` is a paid API node (`api_node: true` in `/object_info`).
pub fn is_api_node(def: &NodeDef) -> bool {
    def.api_node
}

/// Whether `def` is an API node that ships with ComfyUI
/// (`comfy_api_nodes.*`), as opposed to a custom pack that marks its own
/// class.
pub fn is_core_api_node(def: &NodeDef) -> bool {
    def.api_node && Origin::of(&def.python_module) == Origin::Core && def.python_module.starts_with("comfy_api_nodes.")
}

/// The service an API node calls: the last segment of its category under
/// `partner/` or `api node/` (`partner/image/OpenAI` → `OpenAI`), else the
/// module's name (`comfy_api_nodes.nodes_openai` → `openai`), else its
/// custom pack's folder. Only letters, digits, spaces and `.-_&+` are
/// kept, at most 64 characters.
pub fn service(def: &NodeDef) -> String {
    let from_category = CATEGORY_ROOTS
        .iter()
        .find_map(|root| def.category.strip_prefix(root))
        .and_then(|rest| rest.rsplit('/').next())
        .map(clean)
        .filter(|s| !s.is_empty());
    if let Some(s) = from_category {
        return s;
    }
    let module = def.python_module.as_str();
    let from_module = module
        .strip_prefix("comfy_api_nodes.")
        .map(|m| m.strip_prefix("nodes_").unwrap_or(m))
        .or_else(|| module.strip_prefix("custom_nodes."))
        .map(clean)
        .filter(|s| !s.is_empty());
    from_module.unwrap_or_else(|| "an outside service".to_owned())
}

/// The paid API nodes among `wf`'s own nodes (not inside subgraphs: the
/// inspector lists those too), in document order.
pub fn uses(wf: &comfy_workflow::Workflow, info: &comfy_workflow::ObjectInfo) -> Vec<ApiNodeUse> {
    wf.nodes()
        .iter()
        .filter_map(|n| {
            let def = info.node(n.class_type.as_str()).filter(|d| is_api_node(d))?;
            Some(ApiNodeUse {
                node: n.id.to_string(),
                class: n.class_type.to_string(),
                service: service(def),
            })
        })
        .collect()
}

/// One sentence saying that running `uses` spends money, and with which
/// services; `None` when there are none.
pub fn spending_note(uses: &[ApiNodeUse]) -> Option<String> {
    if uses.is_empty() {
        return None;
    }
    let mut services: Vec<&str> = Vec::new();
    for u in uses {
        if !services.contains(&u.service.as_str()) {
            services.push(&u.service);
        }
    }
    let n = uses.len();
    Some(format!(
        "{n} paid API node{} ({}): running this workflow sends {} inputs to {} and charges the user's Comfy account",
        if n == 1 { "" } else { "s" },
        services.join(", "),
        if n == 1 { "its" } else { "their" },
        if services.len() == 1 {
            "that service"
        } else {
            "those services"
        },
    ))
}

fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_' | '&' | '+'))
        .take(MAX_SERVICE)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(category: &str, module: &str, api: bool) -> NodeDef {
        NodeDef {
            name: "X".to_owned(),
            display_name: "X".to_owned(),
            category: category.to_owned(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            output_node: false,
            python_module: module.to_owned(),
            api_node: api,
        }
    }

    #[test]
    fn the_service_comes_from_the_category_then_the_module() {
        let cases = [
            ("partner/image/OpenAI", "comfy_api_nodes.nodes_openai", "OpenAI"),
            (
                "api node/video/Moonvalley Marey",
                "comfy_api_nodes.nodes_moonvalley",
                "Moonvalley Marey",
            ),
            ("partner/video/sync.so", "comfy_api_nodes.nodes_sync_so", "sync.so"),
            ("partner/3d/Tencent", "comfy_api_nodes.nodes_hunyuan3d", "Tencent"),
            ("image", "comfy_api_nodes.nodes_openai", "openai"),
            ("partner/", "comfy_api_nodes.nodes_kling", "kling"),
            ("utils", "custom_nodes.my-pack", "my-pack"),
            ("", "", "an outside service"),
            ("partner/x/\u{202e}Evil\nService\u{0}", "", "EvilService"),
        ];
        for (category, module, want) in cases {
            assert_eq!(service(&def(category, module, true)), want, "{category} {module}");
        }
        let long = format!("partner/x/{}", "A".repeat(500));
        assert_eq!(service(&def(&long, "", true)).len(), MAX_SERVICE);
    }

    #[test]
    fn the_note_names_each_service_once() {
        let u = |node: &str, service: &str| ApiNodeUse {
            node: node.to_owned(),
            class: "C".to_owned(),
            service: service.to_owned(),
        };
        assert_eq!(spending_note(&[]), None);
        assert_eq!(
            spending_note(&[u("1", "OpenAI")]).as_deref(),
            Some(
                "1 paid API node (OpenAI): running this workflow sends its inputs to that service and charges the user's Comfy account"
            )
        );
        assert_eq!(
            spending_note(&[u("1", "OpenAI"), u("2", "Kling"), u("3", "OpenAI")]).as_deref(),
            Some(
                "3 paid API nodes (OpenAI, Kling): running this workflow sends their inputs to those services and charges the user's Comfy account"
            )
        );
    }

    #[test]
    fn only_marked_classes_are_api_nodes() {
        assert!(is_core_api_node(&def(
            "partner/image/OpenAI",
            "comfy_api_nodes.nodes_openai",
            true
        )));
        assert!(!is_api_node(&def(
            "partner/text/OpenAI",
            "comfy_api_nodes.nodes_openai",
            false
        )));
        let pack = def("partner/x/Y", "custom_nodes.pack", true);
        assert!(is_api_node(&pack) && !is_core_api_node(&pack));
        assert!(!is_core_api_node(&def("partner/x/Y", "comfy_api_nodes_evil.x", true)));
    }
}
