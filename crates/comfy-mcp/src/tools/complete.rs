//! `completion/complete`: values for the arguments of our prompts and
//! resource templates, where the set is finite and known.
//!
//! | Reference | Argument | Values |
//! |---|---|---|
//! | `comfyui://models/{folder}`, prompt `models` | `folder` | weight folders: ComfyUI's `/models` less the non-weight folders (`comfy_guard::download::NON_WEIGHT_FOLDERS`) |
//! | prompt `gen` | `model` | files in `checkpoints` |
//! | prompt `upscale_prompt` | `upscale_model` | files in `upscale_models` |
//! | prompt `workflow` | `template` | the built-in workflow templates |
//! | `comfyui://output/{prompt_id}/{index}`, prompt `progress` | `prompt_id` | the newest [`RECENT_JOBS`] jobs in ComfyUI's history (the caller's own, when jobs are kept apart) |
//! | `comfyui://output/{prompt_id}/{index}` | `index` | `0` to the number of output files less one, of the job the context's `prompt_id` names |
//!
//! Every other argument (free text such as `prompt`, `style`) completes to
//! nothing: an empty `values` with neither `total` nor `hasMore`.
//!
//! Matching is a case-insensitive prefix match; an answer carries at most
//! [`MAX_VALUES`] values, `total` counts every match and `hasMore` says
//! whether some were left out. The typed value is only compared, never
//! sent to ComfyUI; a context value that is (the `prompt_id` of an output
//! index) passes the same check as in a resource read, and one that fails
//! it refuses the request. An unknown prompt, template or argument is
//! refused too (the handler answers those with `-32602`). Runs through the
//! stack as `complete:<prompt:name | resource:template>`, read-only
//! category, so it is audited and rate-limited like a resource read.

use comfy_client::name::Segment;
use comfy_guard::download::NON_WEIGHT_FOLDERS;
use comfy_guard::path::SafeName;
use serde_json::{Map, Value, json};

use super::impls::{Output, ToolContext, ToolError, str_arg};
use super::resources::{MAX_INDEX, Resolve, job_files};

type Args = Map<String, Value>;

/// Most values in one answer (the MCP limit).
const MAX_VALUES: usize = 100;
/// Longest typed value compared; a longer one matches nothing.
const MAX_TYPED: usize = 512;
/// How many of the newest jobs offer their prompt ids.
const RECENT_JOBS: u32 = 100;

/// What an argument completes from.
#[derive(Clone, Copy)]
enum Source {
    /// Free text: nothing to offer.
    Free,
    /// Weight folders.
    Folders,
    /// The files of one model folder.
    Models(&'static str),
    /// The built-in workflow templates.
    Templates,
    /// Recent prompt ids.
    Jobs,
    /// A job's output indexes.
    OutputIndex,
}

/// The source of argument `argument` of `reference` (`prompt:<name>` or
/// `resource:<template>`).
fn source(reference: &str, argument: &str) -> Result<Source, ToolError> {
    if let Some(name) = reference.strip_prefix("prompt:") {
        let Some(mut names) = super::prompts::argument_names(name) else {
            return Err(ToolError::rejected(format!("Unknown prompt: '{name}'")));
        };
        if !names.any(|a| a == argument) {
            return Err(ToolError::rejected(format!(
                "prompt {name} has no argument `{argument}`"
            )));
        }
        return Ok(match (name, argument) {
            ("models", "folder") => Source::Folders,
            ("gen", "model") => Source::Models("checkpoints"),
            ("upscale_prompt", "upscale_model") => Source::Models("upscale_models"),
            ("workflow", "template") => Source::Templates,
            ("progress", "prompt_id") => Source::Jobs,
            _ => Source::Free,
        });
    }
    let uri = reference.strip_prefix("resource:").unwrap_or(reference);
    let known = super::resources::templates().iter().any(|t| t.uri_template == uri);
    match (uri, argument) {
        ("comfyui://models/{folder}", "folder") => Ok(Source::Folders),
        ("comfyui://output/{prompt_id}/{index}", "prompt_id") => Ok(Source::Jobs),
        ("comfyui://output/{prompt_id}/{index}", "index") => Ok(Source::OutputIndex),
        _ if known => Err(ToolError::rejected(format!(
            "resource template {uri} has no argument `{argument}`"
        ))),
        _ => Err(ToolError::rejected(format!("Unknown resource template: '{uri}'"))),
    }
}

/// The values of `all` that start with `typed` (case-insensitively), each
/// once, at most [`MAX_VALUES`], with the count of all matches.
fn matching(all: impl IntoIterator<Item = String>, typed: &str) -> Value {
    let mut values: Vec<String> = Vec::new();
    let mut total: usize = 0;
    if typed.len() <= MAX_TYPED {
        let typed = typed.to_lowercase();
        let mut seen = std::collections::HashSet::new();
        for v in all {
            if v.to_lowercase().starts_with(&typed) && seen.insert(v.clone()) {
                total += 1;
                if values.len() < MAX_VALUES {
                    values.push(v);
                }
            }
        }
    }
    json!({"values": values, "total": total, "has_more": total > values.len()})
}

/// ComfyUI's weight folders, sorted.
async fn folders(cx: &ToolContext) -> Result<Vec<String>, ToolError> {
    let mut folders: Vec<String> = cx
        .client()
        .model_folders()
        .await?
        .into_iter()
        .filter(|f| SafeName::parse(f).is_ok() && !NON_WEIGHT_FOLDERS.iter().any(|n| n.eq_ignore_ascii_case(f)))
        .collect();
    folders.sort_by_key(|f| f.to_lowercase());
    Ok(folders)
}

/// The newest prompt ids, newest first; the caller's only when jobs are
/// kept apart.
async fn jobs(cx: &ToolContext) -> Result<Vec<String>, ToolError> {
    let history = cx.client().history(Some(RECENT_JOBS), None).await?;
    // ComfyUI answers the newest entries oldest first.
    let mut ids: Vec<String> = history.into_iter().map(|(id, _)| id).rev().collect();
    ids.truncate(RECENT_JOBS as usize);
    if let Some(owner) = crate::jobs::current_owner() {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        cx.jobs.load(&refs).await;
        ids.retain(|id| cx.jobs.owns(id, &owner));
    }
    Ok(ids)
}

/// The output indexes of the job the context's `prompt_id` names: none
/// without one, or when the job is not (or not yet) there.
async fn output_indexes(context: Option<&Args>, cx: &ToolContext) -> Result<Vec<String>, ToolError> {
    let Some(context) = context.filter(|c| c.contains_key("prompt_id")) else {
        return Ok(Vec::new());
    };
    let id = super::impls::prompt_id(context, "prompt_id")?;
    match job_files(&id, cx).await {
        Ok((files, _)) => Ok((0..files.len().min(MAX_INDEX)).map(|i| i.to_string()).collect()),
        Err(Resolve::Bad(_)) => Ok(Vec::new()),
        Err(Resolve::Comfy(e)) => Err(e),
    }
}

/// Completes `args` (`argument`, `value`, optional `context`) for
/// `reference`: `{"values", "total", "has_more"}`, or just `{"values": []}`
/// for free text.
///
/// # Errors
/// An unknown reference or argument, a context value that fails its
/// check (refused); ComfyUI could not be asked (failed).
pub(super) async fn run(reference: &str, args: &Args, cx: &ToolContext) -> Result<Output, ToolError> {
    let typed = str_arg(args, "value");
    let all = match source(reference, str_arg(args, "argument"))? {
        Source::Free => return Ok(Output::Json(json!({"values": []}))),
        Source::Folders => folders(cx).await?,
        Source::Models(folder) => {
            let seg = Segment::new(folder).map_err(|e| ToolError::failed(e.to_string()))?;
            let mut files = cx.client().models(&seg).await?.unwrap_or_default();
            files.sort_by_key(|f| f.to_lowercase());
            files
        }
        Source::Templates => comfy_workflow::template::TEMPLATES
            .iter()
            .map(|t| t.name.to_owned())
            .collect(),
        Source::Jobs => jobs(cx).await?,
        Source::OutputIndex => output_indexes(args.get("context").and_then(Value::as_object), cx).await?,
    };
    Ok(Output::Json(matching(all, typed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn prefix_match_is_case_insensitive_and_counts_every_match() {
        let v = matching(
            names(&["SDXL.safetensors", "sd15.ckpt", "flux.safetensors", "sd15.ckpt"]),
            "sD",
        );
        assert_eq!(v["values"], json!(["SDXL.safetensors", "sd15.ckpt"]));
        assert_eq!(v["total"], 2);
        assert_eq!(v["has_more"], false);
    }

    #[test]
    fn at_most_a_hundred_values_with_has_more() {
        let all = (0..250).map(|i| format!("m{i:03}"));
        let v = matching(all, "M");
        assert_eq!(v["values"].as_array().map(Vec::len), Some(MAX_VALUES));
        assert_eq!(v["total"], 250);
        assert_eq!(v["has_more"], true);
    }

    #[test]
    fn an_overlong_value_matches_nothing() {
        let v = matching(names(&["a"]), &"a".repeat(MAX_TYPED + 1));
        assert_eq!(v["values"], json!([]));
        assert_eq!(v["total"], 0);
    }

    #[test]
    fn sources_follow_the_prompts_and_templates() {
        assert!(matches!(source("prompt:models", "folder"), Ok(Source::Folders)));
        assert!(matches!(
            source("prompt:gen", "model"),
            Ok(Source::Models("checkpoints"))
        ));
        assert!(matches!(source("prompt:gen", "prompt"), Ok(Source::Free)));
        assert!(matches!(
            source("resource:comfyui://output/{prompt_id}/{index}", "index"),
            Ok(Source::OutputIndex)
        ));
        assert!(source("prompt:gen", "nope").is_err());
        assert!(source("prompt:nope", "model").is_err());
        assert!(source("resource:comfyui://models/{folder}", "model").is_err());
        assert!(source("resource:file:///{path}", "path").is_err());
    }
}
