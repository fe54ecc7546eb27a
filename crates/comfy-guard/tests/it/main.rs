//! comfy-guard's rules against a corpus of hostile inputs and near misses.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod api_nodes;
mod assets;
mod catalog;
mod code;
mod corpus;
mod cost;
mod download;
mod families;
mod flow;
mod graphs;
mod inspect;
mod local;
mod paths;
mod provenance;
mod upload;
mod urls;
