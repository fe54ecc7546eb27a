//! comfy-sim: a ComfyUI simulator that answers as ComfyUI 0.8.0 does.
//!
//! Why: real ComfyUI needs a GPU and model weights, so it cannot run in CI.
//! Every end-to-end test of the client and the MCP server runs against this
//! real HTTP + WebSocket server on 127.0.0.1 instead. Its answers follow the
//! recordings in `fixtures/comfyui/`: status codes, content types, field
//! order, Python's JSON formatting, WebSocket message order and binary frame
//! layout.
//!
//! What it covers: the core REST routes (with their `/api` aliases), prompt
//! validation with ComfyUI's error shapes, a queue with one worker, history,
//! `/api/jobs`, `/view` and uploads with ComfyUI's own path checks, and the
//! `/ws` event stream. Nodes that need no weights run for real; GPU nodes are
//! simulated. [`Faults`] makes it misbehave on demand.
//!
//! Invariants: it listens only where it is told (127.0.0.1 by default); it
//! knows nothing of our client or MCP crates, so it cannot share their bugs;
//! every request body, image size, queue and history is bounded.
//!
//! ```no_run
//! # async fn demo() -> Result<(), comfy_sim::Error> {
//! let sim = comfy_sim::Sim::builder().steps_per_second(200.0).start().await?;
//! println!("ComfyUI at {}", sim.url());
//! # Ok(()) }
//! ```

mod api;
mod body;
mod catalog;
mod exec;
mod fault;
mod files;
mod image;
mod jobs;
mod library;
mod loaders;
mod log;
mod manager;
mod model_manager;
mod pyjson;
mod search;
mod server;
mod state;
mod userdata;
mod validate;
mod version;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use fault::{Faults, HttpFault, JobFault, WsFault};
pub use model_manager::Downloads;
pub use server::{DEFAULT_STEPS_PER_SECOND, SimBuilder, SimHandle};
pub use version::ComfyVersion;

/// Entry point: [`Sim::builder`].
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// A builder with the defaults: 127.0.0.1 on a free port, the recorded
    /// server's model list, a fresh temporary data directory, 50 steps per
    /// second, no previews, no faults.
    pub fn builder() -> SimBuilder {
        SimBuilder::default()
    }

    /// A builder for trying an MCP server by hand (`comfy-mcp --sim`):
    /// every optional plugin on (ComfyUI-Manager, ComfyUI-Model-Manager,
    /// the model search APIs), and 20 steps per second, so a job's progress
    /// can be watched.
    pub fn demo() -> SimBuilder {
        SimBuilder::default()
            .steps_per_second(20.0)
            .model_manager(true)
            .manager(true)
            .model_search(true)
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening address could not be bound.
    #[error("cannot listen on `{addr}`")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A directory could not be read or made.
    #[error("cannot use directory `{}`", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Config(String),
}
