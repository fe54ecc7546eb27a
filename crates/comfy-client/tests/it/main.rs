//! comfy-client against comfy-sim: every method, every job path, and the
//! transport's retry, size and time rules.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod cancel;
mod fetch;
mod jobs;
mod methods;
mod narrow;
mod tls;
mod transport;

use comfy_client::Client;
use comfy_sim::{Sim, SimHandle};
use comfy_workflow::{Limits, Workflow};

pub(crate) async fn sim() -> SimHandle {
    Sim::builder().steps_per_second(500.0).start().await.unwrap()
}

pub(crate) fn client(sim: &SimHandle) -> Client {
    Client::builder(sim.url())
        .poll_interval(std::time::Duration::from_millis(100))
        .build()
        .unwrap()
}

pub(crate) fn workflow(text: &str) -> Workflow {
    Workflow::from_json(text.as_bytes(), &Limits::DEFAULT).unwrap()
}

pub(crate) fn basic(color: u32) -> Workflow {
    workflow(&format!(
        r#"{{"1": {{"class_type": "EmptyImage", "inputs": {{"width": 32, "height": 16, "batch_size": 1, "color": {color}}}}},
            "2": {{"class_type": "ImageInvert", "inputs": {{"image": ["1", 0]}}}},
            "3": {{"class_type": "SaveImage", "inputs": {{"images": ["2", 0], "filename_prefix": "client"}}}}}}"#
    ))
}

pub(crate) fn sleeping(seconds: f64, seed: u64) -> Workflow {
    workflow(&format!(
        r#"{{"1": {{"class_type": "EmptyImage", "inputs": {{"width": 8, "height": 8, "batch_size": 1, "color": 0}}}},
            "2": {{"class_type": "FixtureSleep", "inputs": {{"image": ["1", 0], "seconds": {seconds}, "seed": {seed}}}}},
            "3": {{"class_type": "PreviewImage", "inputs": {{"images": ["2", 0]}}}}}}"#
    ))
}
