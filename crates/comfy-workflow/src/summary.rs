//! Summaries of an [`Analysis`]: plain text for a person or an assistant,
//! and a Mermaid flowchart. Both are built from the same analysis.

use std::fmt::Write as _;

use crate::analysis::{Analysis, show};
use crate::{ObjectInfo, Workflow};

/// Mermaid style classes, as the Python server draws them.
const CLASS_DEFS: &[&str] = &[
    "classDef loader fill:#d9ebff,stroke:#1d4e89,color:#0b2239;",
    "classDef sampler fill:#d8f3dc,stroke:#2d6a4f,color:#0b2818;",
    "classDef encoder fill:#fde2c5,stroke:#b96a00,color:#3d2400;",
    "classDef output fill:#ffd8d8,stroke:#a4161a,color:#3b090a;",
    "classDef default fill:#eef1f4,stroke:#6b7280,color:#111827;",
];

impl Analysis {
    /// The summary as text, one fact a line.
    ///
    /// # Examples
    /// ```
    /// use comfy_workflow::{Limits, Workflow};
    /// let wf = Workflow::from_json(br#"{
    ///   "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 768, "batch_size": 1}},
    ///   "2": {"class_type": "KSampler", "inputs": {"latent_image": ["1", 0], "steps": 20, "cfg": 7}},
    ///   "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}"#, &Limits::DEFAULT).unwrap();
    /// let text = wf.analyze(None).to_text();
    /// assert!(text.contains("Flow: EmptyLatentImage(512x768) -> KSampler(steps=20, cfg=7) -> SaveImage"));
    /// ```
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let plural = if self.node_count == 1 { "" } else { "s" };
        let _ = writeln!(out, "Workflow: {} node{plural}", self.node_count);
        let _ = writeln!(out, "Pipeline: {}", self.pipeline);
        if !self.features.is_empty() {
            let _ = writeln!(out, "Features: {}", self.features.join(", "));
        }
        if !self.models.is_empty() {
            let models: Vec<String> = self
                .models
                .iter()
                .map(|m| format!("{} ({})", m.name, m.folder))
                .collect();
            let _ = writeln!(out, "Models: {}", models.join(", "));
        }
        let flow: Vec<String> = self
            .flow
            .iter()
            .map(|s| match &s.detail {
                Some(d) if d.contains('x') && s.class_type.contains("Latent") => format!("{}({d})", s.display_name),
                Some(d) if d.starts_with("steps=") => format!("{}({d})", s.display_name),
                _ => s.display_name.to_string(),
            })
            .collect();
        let _ = writeln!(out, "Flow: {}", flow.join(" -> "));
        if self.has_cycle {
            let _ = writeln!(
                out,
                "Warning: the links form a cycle; ComfyUI will refuse this workflow"
            );
        }
        let classes: std::collections::HashMap<&str, &str> = self
            .flow
            .iter()
            .map(|s| (s.node_id.as_str(), s.class_type.as_str()))
            .collect();
        for (label, nodes) in [("Prompt", &self.prompt_nodes), ("Negative", &self.negative_nodes)] {
            if nodes.is_empty() {
                continue;
            }
            let named: Vec<String> = nodes
                .iter()
                .map(|id| format!("node {id} ({})", classes.get(id.as_str()).copied().unwrap_or("?")))
                .collect();
            let _ = writeln!(out, "{label}: {}", named.join(", "));
        }
        let params = self.parameters.pairs();
        if !params.is_empty() {
            let pairs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", show(v))).collect();
            let _ = writeln!(out, "Parameters: {}", pairs.join(", "));
        }
        out.truncate(out.trim_end().len());
        out
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid-safe node name for an id (`12:3` becomes `n12_3`).
fn mermaid_id(id: &str) -> String {
    let mut out = String::from("n");
    out.extend(id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }));
    out
}

fn style(class: &str, output: bool) -> &'static str {
    if output || class.starts_with("Save") || class.starts_with("Preview") {
        "output"
    } else if class.contains("Sampler") {
        "sampler"
    } else if class.contains("Encode") {
        "encoder"
    } else if class.contains("Loader")
        || class.starts_with("Load")
        || (class.starts_with("Empty") && class.contains("Latent"))
    {
        "loader"
    } else {
        "default"
    }
}

fn edge_label(input: &str) -> String {
    match input {
        "model" => "MODEL".into(),
        "clip" => "CLIP".into(),
        "vae" => "VAE".into(),
        "positive" | "negative" | "conditioning" => "CONDITIONING".into(),
        "latent_image" | "samples" | "latent" => "LATENT".into(),
        "image" | "images" | "pixels" => "IMAGE".into(),
        "mask" => "MASK".into(),
        other => other.to_uppercase(),
    }
}

impl Workflow {
    /// A Mermaid flowchart of the workflow, from [`Workflow::analyze`].
    /// Edge labels are the linked output's type when `info` knows it.
    pub fn to_mermaid(&self, analysis: &Analysis, info: Option<&ObjectInfo>) -> String {
        let mut out = String::from("flowchart LR\n");
        for step in &analysis.flow {
            let label = match &step.detail {
                Some(d) => format!("{}<br/>{}", escape(&step.display_name), escape(d)),
                None => escape(&step.display_name),
            };
            let _ = writeln!(out, "    {}[\"{label}\"]", mermaid_id(step.node_id.as_str()));
        }
        for step in &analysis.flow {
            let Some(node) = self.node(step.node_id.as_str()) else {
                continue;
            };
            for (input, link) in node.links() {
                if !self.contains(link.node.as_str()) {
                    continue;
                }
                let typed = self
                    .node(link.node.as_str())
                    .and_then(|src| info?.node(&src.class_type)?.outputs.get(link.output as usize).cloned());
                let label = typed.unwrap_or_else(|| edge_label(input));
                let _ = writeln!(
                    out,
                    "    {} -->|{}| {}",
                    mermaid_id(link.node.as_str()),
                    escape(&label),
                    mermaid_id(node.id.as_str())
                );
            }
        }
        for def in CLASS_DEFS {
            let _ = writeln!(out, "    {def}");
        }
        for step in &analysis.flow {
            let output = analysis.output_nodes.contains(&step.node_id);
            let _ = writeln!(
                out,
                "    class {} {};",
                mermaid_id(step.node_id.as_str()),
                style(&step.class_type, output)
            );
        }
        out.truncate(out.trim_end().len());
        out
    }
}
