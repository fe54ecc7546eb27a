//! Reading the editor document into plain structs: nodes with their
//! inputs and widget values, links by id, and each subgraph definition's
//! own scope. Lenient by design (a field of the wrong type reads as
//! absent); the conversion in the parent module decides what is an error.

use std::collections::HashMap;

use serde_json::Value;

#[derive(Debug, Clone)]
pub(super) struct UiLink {
    pub(super) origin: i64,
    pub(super) origin_slot: usize,
    pub(super) target: i64,
    pub(super) target_slot: usize,
    pub(super) kind: String,
}

#[derive(Debug, Clone)]
pub(super) struct UiInput {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) link: Option<i64>,
    /// Whether the input carries a widget (its value in `widgets_values`).
    pub(super) widget: bool,
}

#[derive(Debug, Clone)]
pub(super) struct UiNode {
    pub(super) id: i64,
    pub(super) kind: String,
    pub(super) mode: i64,
    pub(super) title: Option<String>,
    pub(super) inputs: Vec<UiInput>,
    pub(super) widgets: Value,
    /// Promoted widgets of a subgraph instance: `(inner node id, widget)`.
    pub(super) proxies: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub(super) struct Scope {
    pub(super) nodes: Vec<UiNode>,
    pub(super) by_id: HashMap<i64, usize>,
    pub(super) links: HashMap<i64, UiLink>,
}

#[derive(Debug)]
pub(super) struct Subgraph {
    pub(super) scope: Scope,
    pub(super) inputs: Vec<String>,
}

/// `properties.proxyWidgets` as a list: saved as a list, or as that list
/// in JSON text.
fn proxy_list(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
}

pub(super) fn parse_scope(nodes: &[Value], links: &[Value]) -> Scope {
    let mut scope = Scope::default();
    for n in nodes {
        let Some(id) = int(n.get("id")) else { continue };
        let inputs = n
            .get("inputs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|i| UiInput {
                        name: i.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        kind: i.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        link: int(i.get("link")),
                        widget: i.get("widget").is_some_and(|w| !w.is_null()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        scope.by_id.insert(id, scope.nodes.len());
        scope.nodes.push(UiNode {
            id,
            kind: n.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
            mode: n.get("mode").and_then(Value::as_i64).unwrap_or(0),
            title: n.get("title").and_then(Value::as_str).map(str::to_owned),
            inputs,
            widgets: n.get("widgets_values").cloned().unwrap_or(Value::Null),
            proxies: proxy_list(n.pointer("/properties/proxyWidgets"))
                .iter()
                .map(|p| {
                    let part = |i: usize| match p.get(i) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => String::new(),
                    };
                    (part(0), part(1))
                })
                .collect(),
        });
    }
    for l in links {
        // Top-level links are arrays, subgraph links objects.
        let parsed = match l {
            Value::Array(a) => int(a.first()).map(|id| {
                (
                    id,
                    UiLink {
                        origin: int(a.get(1)).unwrap_or(i64::MIN),
                        origin_slot: int(a.get(2)).unwrap_or(0).max(0) as usize,
                        target: int(a.get(3)).unwrap_or(i64::MIN),
                        target_slot: int(a.get(4)).unwrap_or(0).max(0) as usize,
                        kind: a.get(5).and_then(Value::as_str).unwrap_or("*").to_owned(),
                    },
                )
            }),
            Value::Object(o) => int(o.get("id")).map(|id| {
                (
                    id,
                    UiLink {
                        origin: int(o.get("origin_id")).unwrap_or(i64::MIN),
                        origin_slot: int(o.get("origin_slot")).unwrap_or(0).max(0) as usize,
                        target: int(o.get("target_id")).unwrap_or(i64::MIN),
                        target_slot: int(o.get("target_slot")).unwrap_or(0).max(0) as usize,
                        kind: o.get("type").and_then(Value::as_str).unwrap_or("*").to_owned(),
                    },
                )
            }),
            _ => None,
        };
        if let Some((id, link)) = parsed {
            scope.links.insert(id, link);
        }
    }
    scope
}
