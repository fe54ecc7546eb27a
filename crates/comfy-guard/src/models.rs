//! The model checker: which model files a workflow references, and which
//! of them the server does not have.
//!
//! References come from `comfy_workflow`'s loader table (checkpoint, LoRA,
//! VAE, ControlNet, upscaler, CLIP, UNet, ... loaders). Listings are the
//! server's `/models/{folder}` answers; a folder with no listing is not
//! judged (the peer skips a folder it could not list). Names compare with
//! `\` and `/` as the same separator, since a Windows server lists
//! `SDXL\model.safetensors` for what a workflow writes either way.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use comfy_workflow::Workflow;
use comfy_workflow::analysis::ModelRef;
use serde::Serialize;

/// A referenced model the server does not list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingModel {
    /// The file name as the workflow writes it.
    pub name: String,
    /// The model folder it is read from.
    pub folder: String,
    /// The loader node.
    pub node: String,
    /// `Missing model: 'x' not found in checkpoints. Use comfyui_search_models
    /// to find and comfyui_download_model to install it.` (the peer's words).
    pub message: String,
}

/// The model files `wf` references, in execution order.
pub fn referenced_models(wf: &Workflow) -> Vec<ModelRef> {
    wf.models()
}

/// The folders whose listings [`missing_models`] needs for `wf`.
pub fn folders_needed(wf: &Workflow) -> Vec<String> {
    let mut folders: Vec<String> = referenced_models(wf).into_iter().map(|m| m.folder).collect();
    folders.sort();
    folders.dedup();
    folders
}

/// The referenced models not in `listings` (folder → file names). Folders
/// missing from `listings` are skipped.
pub fn missing_models(wf: &Workflow, listings: &BTreeMap<String, Vec<String>>) -> Vec<MissingModel> {
    fn norm(s: &str) -> Cow<'_, str> {
        if s.contains('\\') {
            Cow::Owned(s.replace('\\', "/"))
        } else {
            Cow::Borrowed(s)
        }
    }
    // Each folder's names normalised once, on first use: linear in the
    // listings and the references, however many loaders a workflow has.
    let mut listed: BTreeMap<&str, HashSet<Cow<'_, str>>> = BTreeMap::new();
    let mut reported: HashSet<(String, String)> = HashSet::new();
    let mut out: Vec<MissingModel> = Vec::new();
    for model in referenced_models(wf) {
        let Some((folder, names)) = listings.get_key_value(&model.folder) else {
            continue;
        };
        let names = listed
            .entry(folder.as_str())
            .or_insert_with(|| names.iter().map(|n| norm(n)).collect());
        if names.contains(&norm(&model.name)) || !reported.insert((model.name.clone(), model.folder.clone())) {
            continue;
        }
        out.push(MissingModel {
            message: format!(
                "Missing model: '{}' not found in {}. Use comfyui_search_models to find and comfyui_download_model to install it.",
                model.name, model.folder
            ),
            name: model.name,
            folder: model.folder,
            node: model.node.to_string(),
        });
    }
    out
}
