//! Failures the assistant can fix: ComfyUI's refusals and run-time errors
//! as a structured verdict with repair hints.
//!
//! ComfyUI answers a bad prompt with `node_errors` (per node, a list of
//! `{type, message, details, extra_info}`) or an `invalid_prompt` error,
//! and a failed run with an `execution_error`. [`validation`] and
//! [`execution`] turn them into one shape:
//!
//! ```json
//! {"kind": "validation_failed", "message": "...", "problems": [
//!   {"node_id": "1", "class_type": "CheckpointLoaderSimple", "input": "ckpt_name",
//!    "error_type": "value_not_in_list", "message": "...", "received": "nope.safetensors",
//!    "hint": {"closest": "sd_xl_base_1.0.safetensors", "choices": 2, "text": "..."}}]}
//! ```
//!
//! Hints: the closest allowed choice for a value not in the list (a model
//! name, a sampler), the allowed range for a number out of it, the closest
//! installed class for a class ComfyUI does not have, and what to change
//! for running out of memory. Messages are trimmed and carry no host
//! paths (the caller cuts them).

use serde_json::{Map, Value, json};

/// Longest message passed on.
const MAX_MESSAGE: usize = 300;

fn trimmed(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The candidate closest to `wanted` (case-insensitive edit distance,
/// normalised by length), when it is close enough to be a likely typo or
/// near miss.
pub(super) fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // File names are compared without their extension, so a shared
    // `.safetensors` does not make unrelated models look alike.
    let stem = |s: &str| -> String {
        let lower = s.to_lowercase();
        match lower.rsplit_once('.') {
            Some((stem, ext))
                if !stem.is_empty()
                    && (1..=12).contains(&ext.len())
                    && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                stem.to_owned()
            }
            _ => lower,
        }
    };
    let w = stem(wanted);
    candidates
        .into_iter()
        .map(|c| (strsim::normalized_levenshtein(&w, &stem(c)), c))
        .filter(|(score, _)| *score >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The choices of a combo input config (`[[a, b], {...}]` or
/// `["COMBO", {"options": [...]}]`).
fn choices(config: &Value) -> Option<Vec<&str>> {
    let list = match config.get(0) {
        Some(Value::Array(a)) => a,
        _ => config.get(1)?.get("options")?.as_array()?,
    };
    Some(list.iter().filter_map(Value::as_str).collect())
}

fn hint_for(error_type: &str, extra: &Value) -> Option<Value> {
    let config = extra.get("input_config").unwrap_or(&Value::Null);
    let received = extra.get("received_value").unwrap_or(&Value::Null);
    let input = extra.get("input_name").and_then(Value::as_str).unwrap_or("the input");
    match error_type {
        "value_not_in_list" => {
            let list = choices(config)?;
            let got = received.as_str().unwrap_or_default();
            let best = closest(got, list.iter().copied());
            let text = match best {
                Some(b) => format!(
                    "`{input}` must be one of {} choices; the closest to '{got}' is '{b}'",
                    list.len()
                ),
                None => format!(
                    "`{input}` must be one of {} choices: {}",
                    list.len(),
                    list.iter().take(10).copied().collect::<Vec<_>>().join(", ")
                ),
            };
            let mut h = Map::new();
            if let Some(b) = best {
                h.insert("closest".to_owned(), Value::from(b));
            }
            h.insert("choices".to_owned(), Value::from(list.len()));
            h.insert(
                "first_choices".to_owned(),
                json!(list.iter().take(20).collect::<Vec<_>>()),
            );
            h.insert("text".to_owned(), Value::from(text));
            Some(Value::Object(h))
        }
        "value_bigger_than_max" | "value_smaller_than_min" => {
            let opts = config.get(1)?;
            let (min, max) = (opts.get("min").cloned(), opts.get("max").cloned());
            let range = |v: &Option<Value>| v.as_ref().map_or_else(|| "…".to_owned(), ToString::to_string);
            Some(json!({
                "min": min, "max": max,
                "text": format!("`{input}` must be between {} and {} (got {received})", range(&min), range(&max)),
            }))
        }
        "required_input_missing" => Some(json!({
            "text": format!("connect `{input}` to a node's output of the right type, or set it (comfyui_get_node_info shows what it takes)"),
        })),
        "return_type_mismatch" => Some(json!({
            "text": format!("`{input}` is linked to an output of the wrong type; link it to an output of type {}", config.get(0).map_or_else(|| "it expects".to_owned(), ToString::to_string)),
        })),
        _ => None,
    }
}

/// A refused prompt as a verdict. `classes` are the installed node
/// classes, for the closest-class hint.
pub(super) fn validation(error: &Value, node_errors: &Value, classes: &[&str]) -> Value {
    let mut problems = Vec::new();
    for (id, ne) in node_errors.as_object().into_iter().flatten() {
        let class = ne.get("class_type").and_then(Value::as_str).unwrap_or_default();
        for e in ne.get("errors").and_then(Value::as_array).into_iter().flatten() {
            let error_type = e.get("type").and_then(Value::as_str).unwrap_or("error");
            let extra = e.get("extra_info").unwrap_or(&Value::Null);
            let mut p = Map::new();
            p.insert("node_id".to_owned(), Value::from(id.as_str()));
            p.insert("class_type".to_owned(), Value::from(class));
            if let Some(input) = extra.get("input_name").and_then(Value::as_str) {
                p.insert("input".to_owned(), Value::from(input));
            }
            p.insert("error_type".to_owned(), Value::from(error_type));
            let message = e.get("message").and_then(Value::as_str).unwrap_or_default();
            let details = e.get("details").and_then(Value::as_str).unwrap_or_default();
            let full = if details.is_empty() {
                message.to_owned()
            } else {
                format!("{message}: {details}")
            };
            p.insert("message".to_owned(), Value::from(trimmed(&full)));
            if let Some(received) = extra.get("received_value") {
                p.insert("received".to_owned(), received.clone());
            }
            if let Some(h) = hint_for(error_type, extra) {
                p.insert("hint".to_owned(), h);
            }
            problems.push(Value::Object(p));
        }
    }
    let error_type = error.get("type").and_then(Value::as_str).unwrap_or_default();
    let message = error.get("message").and_then(Value::as_str).unwrap_or_default();
    if let Some((class, node)) = unknown_class(error_type, message, error) {
        let best = closest(class, classes.iter().copied());
        let text = match best {
            Some(b) => format!(
                "ComfyUI has no node class '{class}'; the closest installed one is '{b}' (class names are case-sensitive). If it comes from a custom node pack, comfyui_search_custom_nodes finds the pack."
            ),
            None => format!(
                "ComfyUI has no node class '{class}'. If it comes from a custom node pack, comfyui_search_custom_nodes finds the pack; comfyui_list_nodes lists what is installed."
            ),
        };
        let mut hint = Map::new();
        if let Some(b) = best {
            hint.insert("closest".to_owned(), Value::from(b));
        }
        hint.insert("text".to_owned(), Value::from(text));
        problems.push(json!({
            "node_id": node, "class_type": class, "error_type": "unknown_class",
            "message": trimmed(message), "hint": hint,
        }));
    }
    json!({
        // ComfyUI 0.33 names an unknown class `missing_node_type`; both
        // refuse the prompt as a whole.
        "kind": if matches!(error_type, "invalid_prompt" | "missing_node_type") { "invalid_prompt" } else { "validation_failed" },
        "message": trimmed(&if let Some(d) = error.get("details").and_then(Value::as_str).filter(|d| !d.is_empty()) {
            format!("{message} ({d})")
        } else {
            message.to_owned()
        }),
        "problems": problems,
    })
}

/// The class and node id of a prompt refused for a class ComfyUI does not
/// have: 0.8.0 says `invalid_prompt` with "Cannot execute because node X
/// does not exist." (details "Node ID '#1'"); 0.33.0 says
/// `missing_node_type` with the class and node in `extra_info`.
fn unknown_class<'a>(error_type: &str, message: &'a str, error: &'a Value) -> Option<(&'a str, &'a str)> {
    let node_from_details = || {
        error
            .get("details")
            .and_then(Value::as_str)
            .and_then(|d| d.strip_prefix("Node ID '#"))
            .and_then(|d| d.strip_suffix('\''))
            .unwrap_or_default()
    };
    match error_type {
        "invalid_prompt" => {
            let class = message
                .strip_prefix("Cannot execute because node ")
                .and_then(|r| r.strip_suffix(" does not exist."))?;
            Some((class, node_from_details()))
        }
        "missing_node_type" => {
            let extra = error.get("extra_info")?;
            // No class at all (a corrupted node) has nothing to hint at.
            let class = extra.get("class_type").and_then(Value::as_str)?;
            let node = extra
                .get("node_id")
                .and_then(Value::as_str)
                .unwrap_or_else(node_from_details);
            Some((class, node))
        }
        _ => None,
    }
}

/// The node packs that provide `class`, from ComfyUI-Manager's mappings:
/// `(url, title)`, at most 5.
pub(super) fn packs_providing<'a>(class: &str, mappings: &'a Value) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    for (url, entry) in mappings.as_object().into_iter().flatten() {
        let provides = entry
            .get(0)
            .and_then(Value::as_array)
            .is_some_and(|classes| classes.iter().any(|c| c.as_str() == Some(class)));
        if provides {
            let meta = entry.get(1);
            let title = ["title", "title_aux", "nickname"]
                .iter()
                .find_map(|k| meta.and_then(|m| m.get(*k)).and_then(Value::as_str))
                .unwrap_or(url);
            out.push((url.as_str(), title));
            if out.len() == 5 {
                break;
            }
        }
    }
    out
}

/// Adds to every unknown-class problem of `verdict` the packs that provide
/// the class, per ComfyUI-Manager's `mappings`.
pub(super) fn add_pack_hints(verdict: &mut Value, mappings: &Value) {
    let Some(problems) = verdict.get_mut("problems").and_then(Value::as_array_mut) else {
        return;
    };
    for p in problems {
        if p.get("error_type").and_then(Value::as_str) != Some("unknown_class") {
            continue;
        }
        let class = p
            .get("class_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let packs = packs_providing(&class, mappings);
        let Some((url, title)) = packs.first().copied() else {
            continue;
        };
        let list: Vec<Value> = packs.iter().map(|(u, t)| json!({"url": u, "title": t})).collect();
        if let Some(hint) = p.get_mut("hint").and_then(Value::as_object_mut) {
            hint.insert("packs".to_owned(), Value::from(list));
            hint.insert(
                "text".to_owned(),
                Value::from(format!(
                    "ComfyUI has no node class '{class}'; it comes from the custom node pack '{title}' ({url}). \
                     Install it with comfyui_install_custom_node (by its registry id), restart ComfyUI, and run again."
                )),
            );
        }
    }
}

/// The repair hint for a run-time error, from its exception type and
/// message, when there is a usual fix.
pub(super) fn execution_hint(exception_type: &str, message: &str) -> Option<&'static str> {
    let m = message.to_lowercase();
    let t = exception_type.to_lowercase();
    if t.contains("outofmemory") || m.contains("out of memory") || m.contains("allocation on device") {
        return Some(
            "The GPU ran out of memory: lower the width and height, the batch size or the number of frames, or use a smaller model, then run it again.",
        );
    }
    if m.contains("no such file") || m.contains("not found") && (m.contains("model") || m.contains("file")) {
        return Some(
            "A file the node needs is missing: check the model or image names with comfyui_list_models or comfyui_list_outputs.",
        );
    }
    // A loader that could not read its model file (seen on a real 0.33.0
    // with empty placeholder files: safetensors' header errors, torch's
    // EOFError and unpickling errors).
    if t.contains("safetensorerror")
        || m.contains("deserializing header")
        || t == "eoferror"
        || t.ends_with("unpicklingerror")
    {
        return Some(
            "The model file could not be read: it is empty, cut short or not a model (often a failed or unfinished download). Download it again or choose another with comfyui_list_models.",
        );
    }
    if m.contains("size mismatch") || m.contains("shape") && m.contains("mismatch") {
        return Some(
            "Tensor shapes do not match: the model, LoRA, VAE or ControlNet are likely for different model families (e.g. SD 1.5 with SDXL); use matching ones.",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../fixtures/comfyui/http/{name}.body.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap_or_default()).unwrap_or_default()
    }

    fn verdict(name: &str, classes: &[&str]) -> Value {
        let f = fixture(name);
        validation(&f["error"], &f["node_errors"], classes)
    }

    #[test]
    fn a_model_not_in_the_list_gets_the_closest_installed_one() {
        let v = verdict("post_prompt_err_bad_combo_ckpt", &[]);
        assert_eq!(v["kind"], "validation_failed");
        let p = &v["problems"][0];
        assert_eq!(
            (p["node_id"].as_str(), p["input"].as_str()),
            (Some("1"), Some("ckpt_name"))
        );
        assert_eq!(p["received"], "nope.safetensors");
        assert_eq!(p["hint"]["choices"], 2);
        // Nothing is close to "nope": the choices are listed instead.
        assert!(p["hint"].get("closest").is_none());
        assert!(
            p["hint"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("sd_xl_base_1.0.safetensors")
        );
        let mut f = fixture("post_prompt_err_bad_combo_ckpt");
        f["node_errors"]["1"]["errors"][0]["extra_info"]["received_value"] = json!("sd_xl_base_1.safetensors");
        let v = validation(&f["error"], &f["node_errors"], &[]);
        assert_eq!(v["problems"][0]["hint"]["closest"], "sd_xl_base_1.0.safetensors");
    }

    #[test]
    fn out_of_range_numbers_get_the_range_and_missing_inputs_a_fix() {
        let v = verdict("post_prompt_err_number_above_max", &[]);
        let p = &v["problems"][0];
        assert_eq!(p["hint"]["max"], 16384);
        assert_eq!(p["hint"]["text"], "`width` must be between 1 and 16384 (got 100000)");
        let v = verdict("post_prompt_err_missing_required_input", &[]);
        assert_eq!(v["problems"][0]["input"], "images");
        assert!(
            v["problems"][0]["hint"]["text"]
                .as_str()
                .unwrap_or_default()
                .starts_with("connect `images`")
        );
    }

    #[test]
    fn an_unknown_class_gets_the_closest_installed_class() {
        let mut f = fixture("post_prompt_err_unknown_class_type");
        f["error"]["message"] = json!("Cannot execute because node KSamplr does not exist.");
        let v = validation(
            &f["error"],
            &f["node_errors"],
            &["KSampler", "KSamplerAdvanced", "SaveImage"],
        );
        assert_eq!(v["kind"], "invalid_prompt");
        let p = &v["problems"][0];
        assert_eq!(
            (p["node_id"].as_str(), p["class_type"].as_str()),
            (Some("1"), Some("KSamplr"))
        );
        assert_eq!(p["hint"]["closest"], "KSampler");
        let v = verdict("post_prompt_err_unknown_class_type", &["KSampler"]);
        assert!(v["problems"][0]["hint"].get("closest").is_none());
    }

    #[test]
    fn comfyui_0_33_missing_node_type_keeps_the_hint() {
        let f = fixture_033("post_prompt_err_missing_node_type");
        assert_eq!(f["error"]["type"], "missing_node_type", "{f}");
        let v = validation(&f["error"], &f["node_errors"], &["SaveImage", "EmptyImage"]);
        assert_eq!(v["kind"], "invalid_prompt");
        let p = &v["problems"][0];
        assert_eq!(
            (
                p["node_id"].as_str(),
                p["class_type"].as_str(),
                p["error_type"].as_str()
            ),
            (Some("2"), Some("SaveImag"), Some("unknown_class"))
        );
        assert_eq!(p["hint"]["closest"], "SaveImage");
        // A node without a class (a corrupted workflow) gets no class hint.
        let mut f = f;
        f["error"]["extra_info"]["class_type"] = Value::Null;
        let v = validation(&f["error"], &f["node_errors"], &["SaveImage"]);
        assert_eq!(v["problems"], json!([]));
    }

    fn fixture_033(name: &str) -> Value {
        let path = format!(
            "{}/../../fixtures/comfyui-0.33/http/{name}.body.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn a_class_from_a_custom_pack_names_the_pack() {
        let mappings: Value = serde_json::from_str(include_str!(
            "../../../../fixtures/comfyui/manager_v4/get_customnode_getmappings_local.excerpt.json"
        ))
        .unwrap_or_default();
        let mut f = fixture("post_prompt_err_unknown_class_type");
        f["error"]["message"] = json!("Cannot execute because node ImpactWildcardProcessor does not exist.");
        let mut v = validation(&f["error"], &f["node_errors"], &["KSampler"]);
        add_pack_hints(&mut v, &mappings);
        let hint = &v["problems"][0]["hint"];
        assert_eq!(
            hint["packs"][0]["url"],
            "https://github.com/ltdrdata/ComfyUI-Impact-Pack"
        );
        assert!(
            hint["text"].as_str().unwrap_or_default().contains("'Impact Pack'"),
            "{hint}"
        );
        assert!(packs_providing("NoSuchThing", &mappings).is_empty());
        assert!(packs_providing("X", &json!([1, 2])).is_empty());
    }

    #[test]
    fn hostile_shapes_give_a_verdict_without_panicking() {
        for (e, n) in [
            (json!(null), json!(null)),
            (json!({"type": 5}), json!({"1": {"errors": "x"}})),
            (
                json!({}),
                json!({"1": {"errors": [{"type": "value_not_in_list", "extra_info": {"input_config": 7}}]}}),
            ),
            (
                json!({"type": "invalid_prompt", "message": "Cannot execute because node  does not exist."}),
                json!([]),
            ),
        ] {
            let v = validation(&e, &n, &[]);
            assert!(v["problems"].is_array());
        }
        assert!(execution_hint("torch.OutOfMemoryError", "CUDA out of memory").is_some());
        assert!(execution_hint("ValueError", "bad").is_none());
    }

    #[test]
    fn a_model_file_that_cannot_be_read_gets_the_download_hint() {
        // What a real 0.33.0 reported for empty placeholder model files.
        for name in ["get_history_placeholder_checkpoint", "get_history_placeholder_upscale"] {
            let history = fixture_033(name);
            let entry = history
                .as_object()
                .and_then(|h| h.values().next())
                .cloned()
                .unwrap_or_default();
            let error = entry["status"]["messages"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m[0] == "execution_error"))
                .map(|m| m[1].clone())
                .unwrap_or_default();
            let hint = execution_hint(
                error["exception_type"].as_str().unwrap_or_default(),
                error["exception_message"].as_str().unwrap_or_default(),
            );
            assert!(hint.is_some_and(|h| h.contains("could not be read")), "{name}: {error}");
        }
    }
}
