//! comfy-guard's rules against a corpus of hostile inputs and near misses.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod catalog;
mod cost;
mod download;
mod families;
mod flow;
mod inspect;
mod local;
mod paths;
mod urls;
