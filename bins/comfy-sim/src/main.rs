//! `comfy-sim`: runs the ComfyUI simulator on 127.0.0.1 until Ctrl-C.

use std::path::PathBuf;

use clap::Parser;

/// A ComfyUI simulator (0.33.0 or 0.8.0): a real HTTP + WebSocket server on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "comfy-sim", version)]
#[allow(clippy::struct_excessive_bools, reason = "command-line switches")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8188)]
    port: u16,
    /// Serve model folders from DIR/<folder>/ instead of the recorded list.
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
    /// Keep input/, output/ and temp/ under DIR (default: a temporary directory removed on exit).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Simulated sampler steps per second.
    #[arg(long, default_value_t = comfy_sim::DEFAULT_STEPS_PER_SECOND)]
    steps_per_second: f64,
    /// Send a JPEG preview frame with every simulated sampler step.
    #[arg(long)]
    previews: bool,
    /// Serve ComfyUI-Model-Manager's routes (`/model-manager/...`).
    #[arg(long)]
    model_manager: bool,
    /// Serve ComfyUI-Manager V4's routes (`/v2/manager/...`, `/v2/customnode/...`).
    #[arg(long)]
    manager: bool,
    /// Answer CivitAI's and HuggingFace's model-search APIs (for model_search.*_api_base).
    #[arg(long)]
    model_search: bool,
    /// Turn on the assets system, as ComfyUI 0.33.0's `--enable-assets`
    /// (`/api/assets`, `/view?filename=blake3:<hex>`); 0.33.0 only.
    #[arg(long)]
    assets: bool,
    /// What Model-Manager downloads do: stall (as recorded without network),
    /// complete (the file lands), or fail (stops half way).
    #[arg(long, value_name = "MODE", default_value = "stall", value_parser = ["stall", "complete", "fail"])]
    downloads: String,
    /// The ComfyUI release to answer as.
    #[arg(long, value_name = "VERSION", default_value = "0.33.0", value_parser = ["0.8.0", "0.33.0"])]
    comfyui_version: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let version: comfy_sim::ComfyVersion = args.comfyui_version.parse()?;
    let mut builder = comfy_sim::Sim::builder()
        .comfyui_version(version)
        .port(args.port)
        .steps_per_second(args.steps_per_second)
        .previews(args.previews)
        .model_manager(args.model_manager)
        .manager(args.manager)
        .model_search(args.model_search)
        .assets(args.assets)
        .model_manager_downloads(match args.downloads.as_str() {
            "complete" => comfy_sim::Downloads::Complete,
            "fail" => comfy_sim::Downloads::Fail,
            _ => comfy_sim::Downloads::Stall,
        });
    if let Some(dir) = args.models_dir {
        builder = builder.models_dir(dir);
    }
    if let Some(dir) = args.data_dir {
        builder = builder.data_dir(dir);
    }
    let sim = builder.start().await?;
    eprintln!(
        "comfy-sim: ComfyUI {version} simulator listening on {} (data in {})",
        sim.url(),
        sim.data_dir().display()
    );
    tokio::signal::ctrl_c().await?;
    sim.stop();
    Ok(())
}
