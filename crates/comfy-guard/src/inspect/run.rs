//! One inspection's walk over a workflow: class verdicts, inputs, links and
//! nested graphs, pushing findings as it goes. Its own file because it is the
//! long part; the entry points in the parent set it up.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use comfy_workflow::{Input, ObjectInfo, Workflow};
use serde_json::Value;

use super::MAX_SUBGRAPH_DEPTH;
use super::api_nodes;
use super::code;
use super::flow;
use super::flow::{Resolver, Sink, Text};
use super::graphs;
use super::names;
use super::policy::{Mode, Policy};
use super::provenance;
use super::provenance::Verdict;
use super::report::{Finding, InspectError, Inspection};
use super::rules::RuleId;
use super::urls;
use crate::path::check_node_path;

pub(super) struct Run<'a> {
    pub(super) policy: &'a Policy,
    pub(super) info: Option<&'a ObjectInfo>,
    pub(super) out: Inspection,
    /// Nodes inspected so far, subgraphs included, against the node limit.
    pub(super) nodes_seen: usize,
    /// Nested graphs found so far.
    pub(super) graphs_found: usize,
    /// Verdicts on strings already judged in this inspection.
    pub(super) code: code::CodeCache,
}

impl Run<'_> {
    pub(super) fn workflow(&mut self, wf: &Workflow, prefix: &str, depth: usize) -> Result<(), InspectError> {
        self.nodes_seen += wf.len();
        if self.nodes_seen > self.policy.limits.max_nodes {
            return Err(InspectError::TooManyNodes {
                max: self.policy.limits.max_nodes,
            });
        }
        let mut resolver = Resolver::new(wf, self.policy.limits.max_string);
        // Class verdicts repeat across nodes: judge each class once.
        let mut judged: HashMap<&str, bool> = HashMap::new();
        for node in wf.nodes() {
            let id: Cow<'_, str> = if prefix.is_empty() {
                Cow::Borrowed(node.id.as_str())
            } else {
                Cow::Owned(format!("{prefix}{}", node.id))
            };
            let class = node.class_type.as_str();
            let def = self.info.and_then(|i| i.node(class));
            self.out.nodes_used.push(node.class_type.clone());
            if let Some(d) = def.filter(|d| api_nodes::is_api_node(d)) {
                self.out.api_nodes.push(api_nodes::ApiNodeUse {
                    node: id.to_string(),
                    class: class.to_owned(),
                    service: api_nodes::service(d),
                });
            }
            let flagged = *judged.entry(class).or_insert_with(|| self.class_flagged(class, def));
            if flagged {
                self.class_findings(&id, class, def);
            }
            let graphs_before = self.graphs_found;
            for (name, input) in &node.inputs {
                // An input name reaches the node as a keyword: judged like a value.
                if let Some(hit) = code::find_code(name) {
                    self.suspicious(&id, class, name, format!("{} in an input name", hit.describe()));
                }
                match input {
                    Input::Value(v) => self.scan_value(&id, class, name, v, depth)?,
                    Input::Link(_) => {}
                }
                if let Some(sink) = flow::sink(class, name, def, input) {
                    self.sink(&mut resolver, &id, class, name, input, sink);
                } else if matches!(input, Input::Link(_)) && flow::may_carry_text(def, name) {
                    // A URL literal is judged at any input; so is one assembled over links.
                    self.linked_url(&mut resolver, &id, class, name, input);
                }
            }
            if contains_ignore_ascii_case(class, "subgraph") && self.graphs_found == graphs_before {
                self.push(
                    RuleId::SubgraphUnexpanded,
                    &id,
                    class,
                    None,
                    format!("Node {id} ({class}) contains unexpanded subgraph — cannot fully inspect"),
                    "no nested graph found in its inputs".to_owned(),
                );
            }
        }
        Ok(())
    }

    fn push(&mut self, rule: RuleId, node: &str, class: &str, input: Option<&str>, message: String, detail: String) {
        self.out.findings.push(Finding {
            rule,
            severity: rule.severity(),
            node: Some(node.to_owned()),
            class: Some(class.to_owned()),
            input: input.map(str::to_owned),
            message,
            detail,
        });
    }

    /// The `node.provenance` finding: a class enforce mode cannot vouch for.
    fn push_unvetted(&mut self, node: &str, class: &str, why: String) {
        self.push(
            RuleId::NodeProvenance,
            node,
            class,
            None,
            format!("Unvetted node type: {} (node {node})", shown(class)),
            why,
        );
    }

    /// Whether [`Run::class_findings`] has anything to say about `class`.
    fn class_flagged(&self, class: &str, def: Option<&comfy_workflow::object_info::NodeDef>) -> bool {
        self.policy.is_dangerous(class)
            || self.policy.lookalike_of(class).is_some()
            || (def.is_none() && names::suspicious_characters(class).is_some())
            || (self.info.is_some() && def.is_none())
            || self.provenance(class, def).is_some()
            || def.is_some_and(api_nodes::is_api_node)
    }

    /// What provenance says about `class` in this mode, when it says
    /// anything. Audit mode reports what enforce mode would ask about
    /// (with a catalog only, and ignoring that an explicit allowlist is
    /// exclusive, as the peer's audit mode ignores it); enforce mode
    /// reports every class it would not run.
    fn provenance(&self, class: &str, def: Option<&comfy_workflow::object_info::NodeDef>) -> Option<Verdict> {
        let p = self.policy;
        let catalog = self.info.is_some();
        let verdict = provenance::verdict(class, def, catalog, &p.allowed, &p.allowed_packs);
        if p.mode == Mode::Enforce {
            return (verdict != Verdict::Runs).then_some(verdict);
        }
        match verdict {
            v @ Verdict::Ask(_) => Some(v),
            Verdict::NotListed if catalog => {
                match provenance::verdict(class, def, catalog, &BTreeSet::new(), &p.allowed_packs) {
                    v @ Verdict::Ask(_) => Some(v),
                    _ => None,
                }
            }
            Verdict::Runs | Verdict::NotListed | Verdict::Refuse(_) => None,
        }
    }

    fn class_findings(&mut self, id: &str, class: &str, def: Option<&comfy_workflow::object_info::NodeDef>) {
        let known = def.is_some();
        // With `security.allow_api_nodes`, enforce mode runs ComfyUI's own
        // API nodes without asking, although the dangerous list names many
        // of them (as paid API).
        let waived = self.policy.mode == Mode::Enforce
            && self.policy.allow_api_nodes
            && def.is_some_and(api_nodes::is_core_api_node);
        if self.policy.is_dangerous(class) && !waived {
            self.push(
                RuleId::DangerousNode,
                id,
                class,
                None,
                format!("Dangerous node type: {class}"),
                "on the dangerous node list".to_owned(),
            );
        } else if let Some(target) = self.policy.lookalike_of(class) {
            let target = target.to_owned();
            self.push(
                RuleId::LookalikeNode,
                id,
                class,
                None,
                format!("Node {id} ({}) looks like dangerous node type '{target}'", shown(class)),
                format!("the class name differs from `{target}` only by case, confusable characters (Unicode confusables), invisible or bidi-control characters, separators or a copy marker"),
            );
        }
        if !known && let Some(why) = names::suspicious_characters(class) {
            self.push(
                RuleId::NonAsciiNode,
                id,
                class,
                None,
                format!(
                    "Node {id} ({}) has a class name that cannot be vouched for",
                    shown(class)
                ),
                format!("{why}, and the server's catalog does not list it byte for byte"),
            );
        }
        if self.info.is_some() && !known {
            self.push(
                RuleId::UnknownNode,
                id,
                class,
                None,
                format!(
                    "Unknown node type: {} (node {id}) is not installed on the server",
                    shown(class)
                ),
                "not in the server's /object_info".to_owned(),
            );
        }
        match self.provenance(class, def) {
            None | Some(Verdict::Runs) => {}
            Some(Verdict::NotListed) => self.push(
                RuleId::UnapprovedNode,
                id,
                class,
                None,
                format!("Unapproved node type: {} (node {id})", shown(class)),
                "not in security.allowed_nodes".to_owned(),
            ),
            Some(Verdict::Ask(why)) => self.push_unvetted(id, class, why),
            Some(Verdict::Refuse(why)) => {
                if !self.out.refused.iter().any(|c| c == class) {
                    self.out.refused.push(class.to_owned());
                }
                self.push_unvetted(id, class, why);
            }
        }
        if let Some(d) = def
            && api_nodes::is_api_node(d)
            && !self.policy.allow_api_nodes
        {
            let service = api_nodes::service(d);
            self.push(
                RuleId::ApiNode,
                id,
                class,
                None,
                format!(
                    "Paid API node: {} (node {id}) sends its inputs to {service} and charges the user's Comfy account",
                    shown(class)
                ),
                format!(
                    "a partner node (api_node in /object_info, module {}): running it costs money; security.allow_api_nodes: true runs API nodes without asking",
                    shown(&d.python_module)
                ),
            );
        }
    }

    /// Scans a literal input: every string and key at any depth.
    /// Scans a literal input: every string and key at any depth; a graph
    /// found inside (an object, or JSON text in a string) is inspected as a
    /// nested workflow instead of as plain values.
    fn scan_value(
        &mut self,
        id: &str,
        class: &str,
        name: &str,
        value: &Value,
        graph_depth: usize,
    ) -> Result<(), InspectError> {
        let max_depth = self.policy.limits.max_depth;
        let max_string = self.policy.limits.max_string;
        match value {
            // Most inputs: a scalar at the top, no path to build.
            Value::Null | Value::Bool(_) | Value::Number(_) => return Ok(()),
            Value::String(s) if s.len() <= max_string && !graphs::may_hold_graph(s) => {
                if let Some(hit) = self.code.find(s) {
                    self.suspicious(id, class, name, hit.describe());
                }
                return Ok(());
            }
            _ => {}
        }
        let mut stack: Vec<(String, &Value, usize)> = vec![(name.to_owned(), value, 0)];
        while let Some((path, v, depth)) = stack.pop() {
            if depth > max_depth {
                return Err(InspectError::TooDeep {
                    node: id.to_owned(),
                    input: name.to_owned(),
                    max: max_depth,
                });
            }
            let text_check = |s: &str| {
                if s.len() > max_string {
                    Err(InspectError::StringTooLong {
                        node: id.to_owned(),
                        input: name.to_owned(),
                        len: s.len(),
                        max: max_string,
                    })
                } else {
                    Ok(())
                }
            };
            if graphs::is_api_graph(v) || graphs::is_editor_graph(v) {
                self.nested(id, class, &path, v, graph_depth)?;
                continue;
            }
            match v {
                Value::String(s) => {
                    text_check(s)?;
                    if let Some(hit) = self.code.find(s) {
                        self.suspicious(id, class, &path, hit.describe());
                    }
                    if graphs::may_hold_graph(s)
                        && let Ok(doc) = comfy_workflow::parse_json(s.as_bytes(), &self.policy.limits)
                    {
                        let here = format!("{path} (JSON text)");
                        if graphs::is_api_graph(&doc) || graphs::is_editor_graph(&doc) {
                            self.nested(id, class, &here, &doc, graph_depth)?;
                        } else if graph_depth + 1 < MAX_SUBGRAPH_DEPTH {
                            // JSON text around a graph: each level of
                            // text counts as a level of nesting.
                            self.scan_value(id, class, &here, &doc, graph_depth + 1)?;
                        } else {
                            self.push(
                                RuleId::SubgraphDepth,
                                id,
                                class,
                                Some(&here),
                                format!("Node {id} ({class}) exceeds max subgraph depth ({MAX_SUBGRAPH_DEPTH}) — deeper nesting not inspected"),
                                "JSON text nested too deep to inspect".to_owned(),
                            );
                        }
                    }
                }
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate().rev() {
                        stack.push((format!("{path}[{i}]"), item, depth + 1));
                    }
                }
                Value::Object(map) => {
                    let mut children = Vec::with_capacity(map.len());
                    for (k, item) in map {
                        let child = format!("{path}.{k}");
                        text_check(k)?;
                        if let Some(hit) = self.code.find(k) {
                            self.suspicious(id, class, &child, format!("{} in an object key", hit.describe()));
                        }
                        children.push((child, item, depth + 1));
                    }
                    stack.extend(children.into_iter().rev());
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
        Ok(())
    }

    fn suspicious(&mut self, id: &str, class: &str, path: &str, detail: String) {
        self.push(
            RuleId::CodeInInput,
            id,
            class,
            Some(path),
            format!("Suspicious input in node {id} ({class}), field '{path}'"),
            detail,
        );
    }

    /// Judges the value reaching an input that acts on text.
    fn sink(&mut self, resolver: &mut Resolver<'_>, id: &str, class: &str, name: &str, input: &Input, sink: Sink) {
        let linked = matches!(input, Input::Link(_));
        match resolver.input(input) {
            None => {}
            Some(Text::Known(values)) => {
                for value in values {
                    // A value written as a URL is fetched by the nodes that
                    // read paths or URLs (Video Helper Suite, WAS): judged
                    // as the URL it is, as a literal would be.
                    let sink = if sink != Sink::Execute && urls::looks_like_url(&value) {
                        Sink::Fetch
                    } else {
                        sink
                    };
                    match sink {
                        // A literal string was scanned with every other string.
                        Sink::Execute => {
                            let assembled = linked || !matches!(input, Input::Value(Value::String(_)));
                            if let Some(detail) = flow::code_at_sink(&value, assembled) {
                                self.suspicious(id, class, name, detail);
                                return;
                            }
                        }
                        Sink::WriteFile | Sink::ReadFile => {
                            let path = if sink == Sink::ReadFile {
                                strip_folder_tag(&value)
                            } else {
                                &value
                            };
                            if sink == Sink::ReadFile && crate::path::AssetHash::parse(path).is_ok() {
                                // A content hash (ComfyUI 0.33 `--enable-assets`): no path at all.
                                continue;
                            }
                            let checked = if sink == Sink::ReadFile {
                                read_colon(path).and_then(|()| check_node_path(path))
                            } else {
                                check_node_path(path)
                            };
                            if let Err(e) = checked {
                                self.push(
                                    RuleId::PathEscape,
                                    id,
                                    class,
                                    Some(name),
                                    format!("Unsafe path in node {id} ({class}), field '{name}'"),
                                    format!("{} ({}): {}", sink.describe(), e.rule, e.detail),
                                );
                                return;
                            }
                            if sink == Sink::ReadFile
                                && let Some(why) = flow::pickle_reason(class, name, path)
                            {
                                self.push(
                                    RuleId::PickleLoad,
                                    id,
                                    class,
                                    Some(name),
                                    format!("Pickle file in node {id} ({class}), field '{name}'"),
                                    why,
                                );
                                return;
                            }
                        }
                        Sink::Fetch => {
                            if let Some(why) = urls::unsafe_url(&value) {
                                self.unsafe_url(id, class, name, why);
                                return;
                            }
                        }
                    }
                }
            }
            Some(Text::Unknown { node, class: from, why }) => {
                self.push(
                    RuleId::TaintedInput,
                    id,
                    class,
                    Some(name),
                    format!("Unverifiable input in node {id} ({class}), field '{name}'"),
                    format!(
                        "the input {}, and its text from node {node} ({}) cannot be checked: {why}",
                        sink.describe(),
                        shown(&from)
                    ),
                );
            }
        }
    }

    /// Judges the value a linked input with no sink of its own carries,
    /// when it is a URL; anything else there is not the inspector's
    /// business (an unknown value included).
    fn linked_url(&mut self, resolver: &mut Resolver<'_>, id: &str, class: &str, name: &str, input: &Input) {
        let Some(Text::Known(values)) = resolver.input(input) else {
            return;
        };
        if let Some(why) = values
            .iter()
            .filter(|v| urls::looks_like_url(v))
            .find_map(|v| urls::unsafe_url(v))
        {
            self.unsafe_url(id, class, name, format!("text assembled from linked nodes: {why}"));
        }
    }

    fn unsafe_url(&mut self, id: &str, class: &str, name: &str, why: String) {
        self.push(
            RuleId::UnsafeUrl,
            id,
            class,
            Some(name),
            format!("Unsafe URL in node {id} ({class}), field '{name}'"),
            why,
        );
    }

    /// Inspects `graph`, found in input `path` of node `id`, as a nested
    /// workflow (node ids `id:inner`).
    fn nested(&mut self, id: &str, class: &str, path: &str, graph: &Value, depth: usize) -> Result<(), InspectError> {
        self.graphs_found += 1;
        if depth + 1 >= MAX_SUBGRAPH_DEPTH {
            self.push(
                RuleId::SubgraphDepth,
                id,
                class,
                Some(path),
                format!("Node {id} ({class}) exceeds max subgraph depth ({MAX_SUBGRAPH_DEPTH}) — deeper nesting not inspected"),
                "nested too deep to inspect".to_owned(),
            );
            return Ok(());
        }
        let limits = &self.policy.limits;
        let nested = if graphs::is_api_graph(graph) {
            Workflow::from_value(graph.clone(), limits).map_err(|e| e.to_string())
        } else {
            let mut wf = Workflow::new();
            graphs::editor_graph_as_workflow(graph, "", limits, &|_: &Value| true, &mut wf).map(|()| wf)
        };
        match nested {
            Ok(wf) => self.workflow(&wf, &format!("{id}:"), depth + 1),
            Err(why) => {
                // Not a graph ComfyUI could run as one: its strings are
                // still judged.
                self.push(
                    RuleId::SubgraphUnexpanded,
                    id,
                    class,
                    Some(path),
                    format!("Node {id} ({class}) contains unexpanded subgraph — cannot fully inspect"),
                    format!("a nested graph that does not parse ({why})"),
                );
                self.scan_plain(id, class, path, graph);
                Ok(())
            }
        }
    }

    /// Judges every string of `value` for code, without looking for graphs.
    fn scan_plain(&mut self, id: &str, class: &str, path: &str, value: &Value) {
        let mut stack: Vec<&Value> = vec![value];
        let mut seen = 0usize;
        while let Some(v) = stack.pop() {
            seen += 1;
            if seen > self.policy.limits.max_nodes.saturating_mul(64) {
                break;
            }
            match v {
                Value::String(s) if s.len() <= self.policy.limits.max_string => {
                    if let Some(hit) = code::find_code(s) {
                        self.suspicious(id, class, path, hit.describe());
                    }
                }
                Value::Array(items) => stack.extend(items.iter()),
                Value::Object(map) => stack.extend(map.values()),
                _ => {}
            }
        }
    }
}

/// Whether `haystack` contains `needle`, ASCII case-insensitively.
pub(super) fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `photo.png [input]` → `photo.png`: ComfyUI's folder annotation.
/// A `:` in a file a node reads: the one allowed form is an exact asset
/// hash (checked before); a value written as a hash that is not one gets
/// the hash's rule, any other `:` (an NTFS stream, a drive-relative path)
/// the `:` rule. URLs are the URL rule's business.
pub(super) fn read_colon(path: &str) -> Result<(), crate::path::PathError> {
    use crate::path::AssetHash;
    if AssetHash::is_attempt(path) {
        return AssetHash::parse(path).map(|_| ());
    }
    if path.contains(':') && !path.contains("://") {
        return Err(crate::path::err(
            crate::path::PathKind::NodePath,
            crate::path::PathRule::Absolute,
            "a `:` in a file name (an NTFS stream or a drive); the one name with a `:` is an asset hash, \
             `blake3:` and 64 lowercase hex digits",
            path,
        ));
    }
    Ok(())
}

pub(super) fn strip_folder_tag(s: &str) -> &str {
    for tag in [" [input]", " [output]", " [temp]"] {
        if let Some(stripped) = s.strip_suffix(tag) {
            return stripped;
        }
    }
    s
}

/// A class name for a message: escaped so invisible characters show.
pub(super) fn shown(class: &str) -> String {
    if class.chars().all(|c| !c.is_control() && !crate::path::is_invisible(c)) {
        class.to_owned()
    } else {
        class.escape_debug().to_string()
    }
}
