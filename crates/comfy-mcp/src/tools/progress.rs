//! MCP progress of a waited run, node by node.
//!
//! A real ComfyUI reports steps only for nodes that have them (a sampler);
//! a run of 40 image nodes sends none. So progress counts nodes: the total
//! is the nodes to run (the workflow's, less those ComfyUI reports cached),
//! every node that starts (`executing`) sends a notification naming its
//! class and title with the nodes done so far, steps inside a node
//! (`progress`) add their fraction, and ComfyUI's per-node `progress_state`
//! (sent by newer servers) corrects the count of finished nodes. The
//! progress value never goes back, as MCP requires.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex, PoisonError};

use comfy_client::Event;
use comfy_workflow::Workflow;
use serde_json::Value;

/// Most node ids tracked (a workflow is bounded before it gets here; this
/// bounds what a server's events can add).
const MAX_NODES: usize = 100_000;

/// Jobs followed at most in [`LIVE`].
const MAX_LIVE: usize = 4096;

/// The node each followed job is running (prompt id → description), for
/// `comfyui_get_progress`: ComfyUI's `/api/jobs` does not say it.
static LIVE: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Records the node `prompt_id` runs (`None`: it ended).
pub(super) fn note(prompt_id: &str, running: Option<String>) {
    let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    match running {
        Some(node) => {
            if live.len() >= MAX_LIVE && !live.contains_key(prompt_id) {
                let Some(any) = live.keys().next().cloned() else { return };
                live.remove(&any);
            }
            live.insert(prompt_id.to_owned(), node);
        }
        None => {
            live.remove(prompt_id);
        }
    }
}

/// The node a job followed here is running.
pub(super) fn running_node(prompt_id: &str) -> Option<String> {
    LIVE.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(prompt_id)
        .cloned()
}

/// Follows one job's events.
#[derive(Debug, Default)]
pub(super) struct RunProgress {
    /// Node id → (class, title).
    nodes: HashMap<String, (String, Option<String>)>,
    cached: HashSet<String>,
    finished: HashSet<String>,
    running: Option<String>,
    /// The last value sent, so progress never goes back.
    last: f64,
}

/// One notification: progress, total, message.
pub(super) type Notice = (f64, f64, String);

impl RunProgress {
    pub(super) fn new(wf: &Workflow) -> Self {
        let nodes = wf
            .nodes()
            .iter()
            .map(|n| {
                (
                    n.id.to_string(),
                    (n.class_type.to_string(), n.title().map(str::to_owned)),
                )
            })
            .collect();
        Self {
            nodes,
            ..Self::default()
        }
    }

    fn total(&self) -> usize {
        self.nodes.len().saturating_sub(self.cached.len()).max(1)
    }

    fn done(&self) -> usize {
        self.finished.len().min(self.total())
    }

    /// `node 7 (KSampler "Sampler")`.
    fn describe(&self, node: &str) -> String {
        match self.nodes.get(node) {
            Some((class, Some(title))) if title != class => format!("node {node} ({class} \"{title}\")"),
            Some((class, _)) => format!("node {node} ({class})"),
            None => format!("node {node}"),
        }
    }

    fn notice(&mut self, value: f64, message: String) -> Notice {
        let total = self.total() as f64;
        self.last = value.clamp(self.last, total);
        (self.last, total, message)
    }

    /// The notification `ev` calls for, if any.
    pub(super) fn on_event(&mut self, ev: &Event) -> Option<Notice> {
        match ev {
            Event::ExecutionCached { nodes, .. } => {
                self.cached.extend(nodes.iter().take(MAX_NODES).cloned());
                None
            }
            Event::Executing { node: Some(node), .. } => {
                if let Some(prev) = self.running.replace(node.clone())
                    && prev != *node
                    && self.finished.len() < MAX_NODES
                {
                    self.finished.insert(prev);
                }
                let done = self.done();
                let message = format!(
                    "{} started ({done} of {} nodes done)",
                    self.describe(node),
                    self.total()
                );
                Some(self.notice(done as f64, message))
            }
            Event::Progress { node, value, max, .. } if *max > 0 => {
                let fraction = (*value as f64 / *max as f64).clamp(0.0, 1.0);
                let done = self.done();
                let message = format!(
                    "{}: step {value}/{max} ({done} of {} nodes done)",
                    self.describe(node),
                    self.total()
                );
                Some(self.notice(done as f64 + fraction, message))
            }
            Event::Other { kind, data } if kind == "progress_state" => {
                let nodes = data.get("nodes").and_then(Value::as_object)?;
                for (id, state) in nodes.iter().take(MAX_NODES) {
                    if state.get("state").and_then(Value::as_str) == Some("finished")
                        && self.finished.len() < MAX_NODES
                        && !self.cached.contains(id)
                    {
                        self.finished.insert(id.clone());
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// The node running now, as `describe` names it.
    pub(super) fn running(&self) -> Option<String> {
        self.running.as_deref().map(|n| self.describe(n))
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "small exact values")]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: usize) -> Workflow {
        let mut doc = serde_json::Map::new();
        doc.insert(
            "1".into(),
            json!({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}),
        );
        for i in 2..=n {
            doc.insert(
                i.to_string(),
                json!({"class_type": "ImageInvert", "inputs": {"image": [(i - 1).to_string(), 0]}, "_meta": {"title": format!("Invert {i}")}}),
            );
        }
        Workflow::from_value(Value::Object(doc), &comfy_workflow::Limits::default()).unwrap()
    }

    fn executing(node: &str) -> Event {
        Event::Executing {
            prompt_id: "p".into(),
            node: Some(node.into()),
        }
    }

    #[test]
    fn every_node_that_starts_is_reported_with_class_title_and_count() {
        let mut p = RunProgress::new(&chain(40));
        let notes: Vec<Notice> = (1..=40)
            .filter_map(|i| p.on_event(&executing(&i.to_string())))
            .collect();
        assert_eq!(notes.len(), 40);
        assert_eq!(
            notes[0],
            (0.0, 40.0, "node 1 (EmptyImage) started (0 of 40 nodes done)".to_owned())
        );
        assert_eq!(notes[39].0, 39.0);
        assert_eq!(
            notes[39].2,
            "node 40 (ImageInvert \"Invert 40\") started (39 of 40 nodes done)"
        );
        assert!(notes.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(p.running().as_deref(), Some("node 40 (ImageInvert \"Invert 40\")"));
    }

    #[test]
    fn cached_nodes_leave_the_total_and_steps_add_their_fraction() {
        let mut p = RunProgress::new(&chain(4));
        assert!(
            p.on_event(&Event::ExecutionCached {
                prompt_id: "p".into(),
                nodes: vec!["1".into(), "2".into()],
            })
            .is_none()
        );
        let first = p.on_event(&executing("3")).unwrap();
        assert_eq!((first.0, first.1), (0.0, 2.0));
        let step = p
            .on_event(&Event::Progress {
                prompt_id: "p".into(),
                node: "3".into(),
                value: 1,
                max: 4,
            })
            .unwrap();
        assert_eq!(step.0, 0.25);
        assert!(step.2.contains("step 1/4"), "{}", step.2);
        // progress_state marks node 3 finished; node 4 starts at 1 of 2.
        p.on_event(&Event::Other {
            kind: "progress_state".into(),
            data: json!({"prompt_id": "p", "nodes": {"3": {"state": "finished", "value": 4, "max": 4}}}),
        });
        assert_eq!(p.on_event(&executing("4")).unwrap().0, 1.0);
        // A server that sends a step count going backwards never moves progress back.
        let back = p.on_event(&Event::Progress {
            prompt_id: "p".into(),
            node: "4".into(),
            value: 0,
            max: 0,
        });
        assert!(back.is_none());
    }
}
