//! Watch a job's progress as it runs.
//!
//! Submits a workflow (a JSON file in ComfyUI's API format, or by default
//! the `txt2img` template with the first checkpoint) and prints every event
//! of that job until it ends.
//!
//! ```text
//! cargo run -p comfy-client --example watch -- [URL] [WORKFLOW.json]
//! ```

#![allow(clippy::print_stdout, reason = "an example program reports to its user")]

use std::time::Duration;

use comfy_client::{Client, Event, PromptOptions, Tracking};
use comfy_workflow::{Limits, Workflow};
use serde_json::{Map, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:8188".to_owned());
    let client = Client::builder(url).build()?;

    let workflow = if let Some(path) = args.next() {
        Workflow::from_json(&std::fs::read(path)?, &Limits::DEFAULT)?
    } else {
        let checkpoint = client
            .models(&comfy_client::name::Segment::new("checkpoints")?)
            .await?
            .and_then(|files| files.into_iter().next())
            .ok_or("ComfyUI has no checkpoint in models/checkpoints")?;
        let mut params = Map::new();
        params.insert("model".into(), Value::String(checkpoint));
        comfy_workflow::template::build("txt2img", &params)?.workflow
    };

    let mut job = client.submit(&workflow, PromptOptions::default()).await?;
    println!("queued {}", job.prompt_id());
    if job.tracking() == Tracking::Polling {
        println!("no WebSocket: following the job by polling");
    }
    let mut events = job.events();
    while let Some(event) = events.next().await {
        match &event {
            Event::ExecutionStart { .. } => println!("started"),
            Event::ExecutionCached { nodes, .. } => println!("cached: {}", nodes.join(", ")),
            Event::Executing { node: Some(node), .. } => println!("running node {node}"),
            Event::Progress { value, max, node, .. } => println!("node {node}: step {value}/{max}"),
            Event::Preview { image, .. } => println!("preview image ({} bytes)", image.len()),
            Event::Executed { node, .. } => println!("node {node} produced output"),
            Event::ExecutionSuccess { .. } => println!("finished"),
            Event::ExecutionError { data, .. } => println!("failed: {}", data["exception_message"]),
            Event::ExecutionInterrupted { .. } => println!("interrupted"),
            _ => {}
        }
    }
    let outcome = job.wait(Duration::from_mins(10)).await?;
    println!(
        "{:?} after {:.1?}, {} file(s)",
        outcome.status,
        outcome.elapsed,
        outcome.files.len()
    );
    Ok(())
}
