//! `completion/complete` through the real binary and rmcp's client against
//! comfy-sim: weight folders (never `custom_nodes` or `configs`), the
//! files of a model folder, the built-in workflow templates, a finished
//! job's prompt id and output indexes, a prefix that matches nothing,
//! free-text arguments, unknown references, a hostile context value, a
//! ComfyUI failure, and the audit record each request leaves.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::collections::HashMap;

use rmcp::model::{ArgumentInfo, CompleteRequestParams, CompletionContext, CompletionInfo, Reference};
use serde_json::json;
use support::{ok, records, start};

const CONFIG: &str = "rate_limits:\n  workflow: 1000\n  generation: 1000\n  file_ops: 1000\n  read_only: 1000\n\
logging:\n  audit_flush: every_record\n";

async fn complete(
    s: &support::Session,
    reference: Reference,
    argument: &str,
    value: &str,
    context: &[(&str, &str)],
) -> Result<CompletionInfo, rmcp::ServiceError> {
    let mut params = CompleteRequestParams::new(reference, ArgumentInfo::new(argument, value));
    if !context.is_empty() {
        let given: HashMap<String, String> = context
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        params = params.with_context(CompletionContext::with_arguments(given));
    }
    s.client.complete(params).await.map(|r| r.completion)
}

/// Whether the audit log has a `completed` record of `tool` with `outcome`.
fn audited(s: &support::Session, tool: &str, outcome: &str) -> bool {
    records(&s.audit_file())
        .iter()
        .any(|r| r["action"] == "completed" && r["tool"] == tool && r["outcome"] == outcome)
}

fn prompt(name: &str) -> Reference {
    Reference::for_prompt(name)
}

fn template(uri: &str) -> Reference {
    Reference::for_resource(uri)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_models_and_templates_complete_by_prefix() {
    let s = start(CONFIG).await;
    let info = s.client.peer_info().unwrap();
    assert!(info.capabilities.completions.is_some(), "{:?}", info.capabilities);

    // Every weight folder for an empty value, none of the non-weight ones.
    let all = complete(&s, template("comfyui://models/{folder}"), "folder", "", &[])
        .await
        .unwrap();
    assert!(all.values.contains(&"checkpoints".to_owned()), "{all:?}");
    assert!(all.values.contains(&"upscale_models".to_owned()), "{all:?}");
    for hidden in ["custom_nodes", "configs"] {
        assert!(!all.values.contains(&hidden.to_owned()), "{hidden}: {all:?}");
    }
    assert_eq!(all.total, Some(u32::try_from(all.values.len()).unwrap()));
    assert_eq!(all.has_more, Some(false));

    // Case-insensitive prefix, the same list for the `models` prompt.
    for reference in [template("comfyui://models/{folder}"), prompt("models")] {
        let up = complete(&s, reference, "folder", "UP", &[]).await.unwrap();
        assert_eq!(up.values, ["upscale_models"], "{up:?}");
        assert_eq!((up.total, up.has_more), (Some(1), Some(false)));
    }
    // `cu` would be custom_nodes: not a weight folder.
    let cu = complete(&s, prompt("models"), "folder", "cu", &[]).await.unwrap();
    assert!(cu.values.is_empty(), "{cu:?}");
    assert_eq!((cu.total, cu.has_more), (Some(0), Some(false)));

    // The files of `checkpoints` for the gen prompt's model.
    let sd = complete(&s, prompt("gen"), "model", "sd_", &[]).await.unwrap();
    assert_eq!(sd.values, ["sd_xl_base_1.0.safetensors"], "{sd:?}");
    let ckpt = complete(&s, prompt("gen"), "model", "", &[]).await.unwrap();
    assert_eq!(ckpt.total, Some(2), "{ckpt:?}");
    let up = complete(&s, prompt("upscale_prompt"), "upscale_model", "real", &[])
        .await
        .unwrap();
    assert_eq!(up.values, ["RealESRGAN_x4plus.pth"], "{up:?}");

    // Workflow template names.
    let t = complete(&s, prompt("workflow"), "template", "TXT2", &[]).await.unwrap();
    assert!(t.values.contains(&"txt2img".to_owned()), "{t:?}");
    assert!(t.values.iter().all(|v| v.starts_with("txt2")), "{t:?}");

    // A prefix that matches nothing; a path as the typed value.
    for typed in ["zzz", "../../etc", "checkpoints/../../"] {
        let none = complete(&s, prompt("models"), "folder", typed, &[]).await.unwrap();
        assert!(none.values.is_empty(), "{typed}: {none:?}");
        assert_eq!(none.total, Some(0));
    }

    // Free text: nothing to offer, and no claim about how much there is.
    let free = complete(&s, prompt("txt2img_prompt"), "prompt", "a ", &[])
        .await
        .unwrap();
    assert!(free.values.is_empty());
    assert_eq!((free.total, free.has_more), (None, None));

    // Unknown references and arguments are invalid params.
    for (reference, argument) in [
        (prompt("no_such_prompt"), "x"),
        (prompt("gen"), "no_such_argument"),
        (template("file:///{path}"), "path"),
        (template("comfyui://models/{folder}"), "model"),
    ] {
        let e = complete(&s, reference, argument, "", &[]).await.unwrap_err();
        assert!(
            format!("{e}").contains("-32602") || format!("{e:?}").contains("InvalidParams"),
            "{e:?}"
        );
    }

    // Each request is audited like a resource read.
    assert!(audited(&s, "complete:prompt:models", "ok"));
    assert!(audited(&s, "complete:prompt:no_such_prompt", "rejected"));
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_ids_and_output_indexes_complete_and_hostile_context_is_refused() {
    let s = start(CONFIG).await;
    let done = ok(&s
        .call(
            "comfyui_generate_image",
            json!({"prompt": "a red fox", "steps": 2, "wait": true, "seed": 1}),
        )
        .await)
    .clone();
    assert_eq!(done["status"], "completed", "{done}");
    let id = done["prompt_id"].as_str().unwrap().to_owned();
    let output = "comfyui://output/{prompt_id}/{index}";

    let ids = complete(&s, template(output), "prompt_id", &id[..4], &[])
        .await
        .unwrap();
    assert_eq!(ids.values, std::slice::from_ref(&id), "{ids:?}");
    let ids = complete(&s, prompt("progress"), "prompt_id", "", &[]).await.unwrap();
    assert_eq!(ids.values, std::slice::from_ref(&id), "{ids:?}");

    let indexes = complete(&s, template(output), "index", "", &[("prompt_id", &id)])
        .await
        .unwrap();
    assert_eq!(indexes.values, ["0"], "{indexes:?}");
    // Without a job to look at, nothing.
    let none = complete(&s, template(output), "index", "", &[]).await.unwrap();
    assert!(none.values.is_empty(), "{none:?}");

    // A path in the context's prompt id is refused before any request.
    let asked = || s.sim.requests("/history/{id}") + s.sim.requests("/history");
    let before = asked();
    for hostile in ["../../../etc/passwd", "..%2F..%2Fsecrets", &format!("{id}/../x")] {
        let e = complete(&s, template(output), "index", "", &[("prompt_id", hostile)])
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("prompt id"), "{hostile}: {e:?}");
    }
    assert_eq!(asked(), before, "no request reached ComfyUI");
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comfyui_failure_is_an_empty_completion() {
    let s = start(CONFIG).await;
    s.sim
        .set_faults(comfy_sim::Faults::none().route("/models", comfy_sim::HttpFault::Status(500)));
    let info = complete(&s, prompt("models"), "folder", "", &[]).await.unwrap();
    assert!(info.values.is_empty(), "{info:?}");
    assert_eq!((info.total, info.has_more), (None, None));
    assert!(audited(&s, "complete:prompt:models", "error"));
    s.client.cancel().await.unwrap();
}
