//! The benchmark `comfy-bench` runs (its `main.rs` parses the arguments):
//! one job per module.
//!
//! - `run`: one run as asked ([`Options`], [`run()`]);
//! - `suite`: the workloads against one server, and their figures;
//! - `process`: the server as a child over stdio (raw JSON-RPC lines,
//!   start-up, resident memory);
//! - `http`: the Streamable HTTP driver, the many-client hammer, and plain
//!   GETs to the simulator;
//! - `inputs`: the workflows and images the workloads send;
//! - `others`: the other ComfyUI MCP servers' start-up and footprint;
//! - `scale`: replicas sharing Redis;
//! - `report`: the table, the machine line, the performance doc's block and
//!   the baseline check;
//! - `tempdir`: temporary directories removed on drop.

mod http;
mod inputs;
mod others;
mod process;
mod report;
mod run;
mod scale;
mod suite;
mod tempdir;

pub use run::{Options, run};
