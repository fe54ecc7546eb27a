//! Integration tests of the simulator: fixture parity (stateless and
//! scenario replays), end-to-end runs, and one test per fault knob.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers may panic on broken fixtures"
)]

mod coverage;
mod e2e;
mod fault;
mod library;
mod parity;
mod scenario;
mod support;
mod v033;
mod ws_replay;
