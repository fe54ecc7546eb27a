//! Generate an image and save it.
//!
//! Builds the `txt2img` template with the first checkpoint ComfyUI has,
//! submits it, waits for it, and downloads every image it produced.
//!
//! ```text
//! cargo run -p comfy-client --example generate -- [URL] [OUT_DIR]
//! ```
//! URL defaults to `http://127.0.0.1:8188`, OUT_DIR to the current folder.

#![allow(clippy::print_stdout, reason = "an example program reports to its user")]

use std::path::PathBuf;
use std::time::Duration;

use comfy_client::{Client, JobStatus, PromptOptions};
use serde_json::{Map, Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:8188".to_owned());
    let out_dir = PathBuf::from(args.next().unwrap_or_else(|| ".".to_owned()));

    let client = Client::builder(url).build()?;
    let checkpoint = client
        .models(&comfy_client::name::Segment::new("checkpoints")?)
        .await?
        .and_then(|files| files.into_iter().next())
        .ok_or("ComfyUI has no checkpoint in models/checkpoints")?;

    let mut params = Map::new();
    params.insert("prompt".into(), json!("a lighthouse on a cliff at dawn"));
    params.insert("model".into(), Value::String(checkpoint.clone()));
    params.insert("width".into(), json!(512));
    params.insert("height".into(), json!(512));
    let built = comfy_workflow::template::build("txt2img", &params)?;

    let mut job = client.submit(&built.workflow, PromptOptions::default()).await?;
    println!("queued {} with {checkpoint}", job.prompt_id());
    let outcome = job.wait(Duration::from_mins(10)).await?;
    if outcome.status != JobStatus::Completed {
        return Err(format!("the job ended as {:?}: {:?}", outcome.status, outcome.error).into());
    }

    std::fs::create_dir_all(&out_dir)?;
    for output in &outcome.files {
        let file = client.view(&output.file, None).await?;
        // The name comes from ComfyUI: keep only its last component.
        let name = std::path::Path::new(&output.file.filename)
            .file_name()
            .ok_or("ComfyUI sent an empty file name")?;
        let path = out_dir.join(name);
        std::fs::write(&path, &file.bytes)?;
        println!("saved {} ({} bytes)", path.display(), file.bytes.len());
    }
    println!("done in {:.1?}", outcome.elapsed);
    Ok(())
}
