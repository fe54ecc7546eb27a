//! Every typed method against the simulator.

use comfy_client::name::Segment;
use comfy_client::types::FileRef;
use comfy_client::{Error, Preview, PromptOptions, UploadOptions};
use serde_json::json;

use crate::{basic, client, sim, workflow};

fn seg(s: &str) -> Segment {
    Segment::new(s).unwrap()
}

#[tokio::test]
async fn catalog_and_server_information() {
    let sim = sim().await;
    let c = client(&sim);
    let info = c.object_info().await.unwrap();
    assert!(info.len() > 500);
    assert!(info.node("KSampler").is_some());
    assert!(c.object_info_class(&seg("SaveImage")).await.unwrap().is_some());
    assert_eq!(c.object_info_class(&seg("NoSuchNode")).await.unwrap(), None);
    for bad in ["..", ".", "../../x", "a\\b", "x:y", ""] {
        assert!(
            matches!(Segment::new(bad), Err(Error::InvalidArgument { .. })),
            "{bad:?} is no path segment"
        );
    }
    assert!(matches!(c.job_info("..").await, Err(Error::InvalidArgument { .. })));
    assert!(matches!(
        c.history_entry("..").await,
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(c.system_stats().await.unwrap()["system"]["comfyui_version"], "0.8.0");
    assert_eq!(c.features().await.unwrap()["supports_preview_metadata"], true);
    assert!(!c.extensions().await.unwrap().is_empty());
    assert!(c.embeddings().await.unwrap().is_empty());
    assert!(c.model_folders().await.unwrap().contains(&"checkpoints".to_owned()));
    assert!(
        c.models(&seg("checkpoints"))
            .await
            .unwrap()
            .unwrap()
            .contains(&"v1-5-pruned-emaonly.safetensors".to_owned())
    );
    assert_eq!(c.models(&seg("no_such_folder")).await.unwrap(), None);
    assert_eq!(
        c.prompt_status().await.unwrap(),
        json!({"exec_info": {"queue_remaining": 0}})
    );
    assert!(c.queue_raw().await.unwrap().get("queue_running").is_some());
}

#[tokio::test]
async fn prompts_queue_history_and_jobs() {
    let sim = sim().await;
    let c = client(&sim);
    let accepted = c.queue_prompt(&basic(255), PromptOptions::default()).await.unwrap();
    let mut extra = serde_json::Map::new();
    extra.insert("extra_pnginfo".into(), serde_json::json!({"workflow": {"nodes": []}}));
    let mut job = c
        .submit(
            &basic(254),
            PromptOptions {
                extra_data: Some(extra),
                ..PromptOptions::default()
            },
        )
        .await
        .unwrap();
    job.wait(std::time::Duration::from_secs(20)).await.unwrap();
    // extra_data reaches ComfyUI (it is the 4th item of the history's prompt).
    let raw = c.history_entry(job.prompt_id()).await.unwrap().unwrap();
    assert_eq!(
        raw.prompt[3]["extra_pnginfo"]["workflow"],
        serde_json::json!({"nodes": []})
    );
    assert_eq!(raw.prompt[3]["client_id"], c.client_id());
    let entry = loop {
        if let Some(e) = c.history_entry(&accepted.prompt_id).await.unwrap() {
            break e;
        }
    };
    assert_eq!(entry.files()[0].file.filename, "client_00001_.png");
    assert_eq!(c.history(Some(1), None).await.unwrap().len(), 1);
    assert_eq!(c.history(None, None).await.unwrap().len(), 2);
    assert_eq!(
        c.job_info(&accepted.prompt_id).await.unwrap().unwrap()["status"],
        "completed"
    );
    assert_eq!(c.job_info("00000000-0000-0000-0000-000000000000").await.unwrap(), None);
    assert_eq!(
        c.jobs(&[("status", "completed".into())]).await.unwrap()["pagination"]["total"],
        2
    );
    c.delete_history(std::slice::from_ref(&accepted.prompt_id))
        .await
        .unwrap();
    assert_eq!(c.history_entry(&accepted.prompt_id).await.unwrap(), None);
    c.clear_history().await.unwrap();
    assert!(c.history(None, None).await.unwrap().is_empty());
    assert_eq!(c.queue_remaining().await.unwrap(), 0);
    let q = c.queue().await.unwrap();
    assert!(q.running.is_empty() && q.pending.is_empty());
}

#[tokio::test]
async fn a_refused_prompt_is_a_typed_validation_error() {
    let sim = sim().await;
    let c = client(&sim);
    let bad = workflow(r#"{"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}"#);
    match c.queue_prompt(&bad, PromptOptions::default()).await {
        Err(Error::ValidationFailed { error, node_errors }) => {
            assert_eq!(error["type"], "prompt_outputs_failed_validation");
            assert_eq!(node_errors["1"]["errors"][0]["type"], "required_input_missing");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn queue_interrupt_clear_and_delete() {
    let sim = sim().await;
    let c = client(&sim);
    let run = c
        .queue_prompt(&crate::sleeping(30.0, 1), PromptOptions::default())
        .await
        .unwrap();
    let second = c
        .queue_prompt(&crate::sleeping(30.0, 2), PromptOptions::default())
        .await
        .unwrap();
    let third = c
        .queue_prompt(
            &crate::sleeping(30.0, 3),
            PromptOptions {
                front: true,
                ..PromptOptions::default()
            },
        )
        .await
        .unwrap();
    let q = loop {
        let q = c.queue().await.unwrap();
        if !q.running.is_empty() {
            break q;
        }
    };
    assert!(q.is_running(&run.prompt_id));
    assert_eq!(q.position(&third.prompt_id), Some(1), "front of the queue");
    assert_eq!(q.position(&second.prompt_id), Some(2));
    c.delete_from_queue(std::slice::from_ref(&second.prompt_id))
        .await
        .unwrap();
    assert_eq!(c.queue().await.unwrap().pending.len(), 1);
    c.clear_queue().await.unwrap();
    assert!(c.queue().await.unwrap().pending.is_empty());
    c.interrupt(Some("not-running")).await.unwrap();
    assert!(c.queue().await.unwrap().is_running(&run.prompt_id));
    c.interrupt(None).await.unwrap();
    loop {
        if c.history_entry(&run.prompt_id).await.unwrap().is_some() {
            break;
        }
    }
}

#[tokio::test]
async fn uploads_and_downloads() {
    let sim = sim().await;
    let c = client(&sim);
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/comfyui/http/get_view_uploaded_input.body.png"
    ))
    .unwrap();
    let up = c
        .upload_image("my pic.png", &png, &UploadOptions::default())
        .await
        .unwrap();
    assert_eq!((up.name.as_str(), up.kind.as_str()), ("my pic.png", "input"));
    let mut other = png.clone();
    other.push(0);
    let renamed = c
        .upload_image("my pic.png", &other, &UploadOptions::default())
        .await
        .unwrap();
    assert_eq!(renamed.name, "my pic (1).png");
    let sub = c
        .upload_image(
            "s.png",
            &png,
            &UploadOptions {
                subfolder: Some("a/b".into()),
                kind: Some("temp".into()),
                overwrite: true,
            },
        )
        .await
        .unwrap();
    assert_eq!((sub.subfolder.as_str(), sub.kind.as_str()), ("a/b", "temp"));
    let file = FileRef {
        filename: "my pic.png".into(),
        subfolder: String::new(),
        kind: "input".into(),
    };
    let down = c.view(&file, None).await.unwrap();
    assert_eq!(down.bytes.as_ref(), png.as_slice());
    assert_eq!(down.content_type.as_deref(), Some("image/png"));
    let mut stream = c.view_stream(&file, None).await.unwrap();
    assert_eq!(stream.content_type(), Some("image/png"));
    assert_eq!(stream.content_length(), Some(png.len() as u64));
    let mut streamed = Vec::new();
    while let Some(chunk) = stream.next_chunk().await.unwrap() {
        streamed.extend_from_slice(&chunk);
    }
    assert_eq!(streamed, png);
    let jpeg = c.view(&file, Some(Preview::Jpeg(50))).await.unwrap();
    assert_eq!(jpeg.content_type.as_deref(), Some("image/jpeg"));
    let mask = c
        .upload_mask("mask.png", &png, &file, &UploadOptions::default())
        .await
        .unwrap();
    assert_eq!(mask.name, "mask.png");
    let missing = FileRef {
        filename: "nope.png".into(),
        subfolder: String::new(),
        kind: "input".into(),
    };
    assert!(matches!(
        c.view(&missing, None).await,
        Err(Error::Status { status: 404, .. })
    ));
    assert!(matches!(
        c.view_stream(&missing, None).await,
        Err(Error::Status { status: 404, .. })
    ));
    let traversal = FileRef {
        filename: "../x.png".into(),
        subfolder: String::new(),
        kind: "input".into(),
    };
    assert!(matches!(
        c.view(&traversal, None).await,
        Err(Error::Status { status: 400, .. })
    ));
    assert!(matches!(
        c.upload_image("", &png, &UploadOptions::default()).await,
        Err(Error::InvalidArgument { .. })
    ));
}
