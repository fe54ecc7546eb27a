//! The server's workflow library and assets as ComfyUI 0.33.0 serves them,
//! against `fixtures/comfyui-0.33/` (`record_assets.py`): official
//! templates, subgraph blueprints, `/api/assets` and `/view` by hash.

use comfy_sim::{ComfyVersion, Sim};
use serde_json::Value;

use crate::support::{fixtures, get};

fn dir() -> std::path::PathBuf {
    fixtures().join("../comfyui-0.33")
}

fn recorded(name: &str) -> (u16, Vec<u8>) {
    let head = std::fs::read_to_string(dir().join(format!("http/{name}.response_head.txt"))).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        std::fs::read(dir().join(format!("http/{name}.body.json"))).unwrap(),
    )
}

fn recorded_json(name: &str) -> Value {
    serde_json::from_slice(&recorded(name).1).unwrap()
}

const TEMPLATES: &[&str] = &[
    "api_heygen_text_to_speech",
    "image_to_video_wan",
    "image_z_image_turbo",
    "utility_image_stitch",
];

#[tokio::test]
async fn templates_are_served_as_recorded_and_the_index_names_exactly_them() {
    let sim = Sim::builder()
        .comfyui_version(ComfyVersion::V0_33_0)
        .start()
        .await
        .unwrap();
    for name in TEMPLATES {
        let reply = get(sim.addr(), &format!("/templates/{name}.json")).await;
        assert_eq!(reply.status, 200, "{name}");
        let recorded = std::fs::read(dir().join(format!("templates/{name}.json"))).unwrap();
        assert_eq!(reply.bytes().as_ref(), recorded.as_slice(), "{name}: byte for byte");
    }
    // The index: the recorded groups and entries, cut down to what is served.
    let full: Value = serde_json::from_slice(&std::fs::read(dir().join("templates/index.json")).unwrap()).unwrap();
    let index = get(sim.addr(), "/templates/index.json").await.json();
    let mut names = Vec::new();
    for group in index.as_array().unwrap() {
        let rec = full
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["title"] == group["title"])
            .unwrap();
        for t in group["templates"].as_array().unwrap() {
            let same = rec["templates"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == t["name"]);
            assert_eq!(Some(t), same, "entries as recorded");
            names.push(t["name"].as_str().unwrap().to_owned());
        }
    }
    names.sort();
    assert_eq!(names, TEMPLATES);
    // Unknown template; no `/api` alias.
    let (status, body) = recorded("get_templates_unknown");
    let reply = get(sim.addr(), "/templates/no_such_template.json").await;
    assert_eq!((reply.status, reply.bytes().to_vec()), (status, body));
    let reply = get(sim.addr(), "/api/templates/index.json").await;
    assert_eq!(reply.status, recorded("get_api_templates_index").0);
    // 0.8.0 in the simulator has no templates.
    let old = Sim::builder().start().await.unwrap();
    assert_eq!(get(old.addr(), "/templates/index.json").await.status, 404);
}

#[tokio::test]
async fn blueprints_are_served_as_recorded() {
    let sim = Sim::builder()
        .comfyui_version(ComfyVersion::V0_33_0)
        .start()
        .await
        .unwrap();
    let all = recorded_json("get_global_subgraphs");
    assert_eq!(all.as_object().unwrap().len(), 89, "the real 0.33.0 lists 89");
    let listing = get(sim.addr(), "/global_subgraphs").await.json();
    let listing = listing.as_object().unwrap();
    assert_eq!(listing.len(), 4);
    for (id, entry) in listing {
        assert_eq!(Some(entry), all.get(id), "{id}: as recorded");
        let reply = get(sim.addr(), &format!("/api/global_subgraphs/{id}")).await;
        let recorded = std::fs::read(dir().join(format!("blueprints/{id}.json"))).unwrap();
        assert_eq!(reply.bytes().as_ref(), recorded.as_slice(), "{id}: byte for byte");
        let one: Value = serde_json::from_slice(&recorded).unwrap();
        assert_eq!(one["name"], entry["name"]);
        assert!(one["data"].is_string(), "the workflow comes as JSON text");
    }
    let old = Sim::builder().start().await.unwrap();
    assert_eq!(get(old.addr(), "/global_subgraphs").await.json(), serde_json::json!({}));
}

/// A 0.33.0 simulator with assets on, and the recorded input files.
async fn with_assets(on: bool) -> (comfy_sim::SimHandle, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("input")).unwrap();
    for f in ["red.png", "blue.png"] {
        std::fs::copy(dir().join("assets/input").join(f), data.path().join("input").join(f)).unwrap();
    }
    let sim = Sim::builder()
        .comfyui_version(ComfyVersion::V0_33_0)
        .data_dir(data.path())
        .assets(on)
        .start()
        .await
        .unwrap();
    // The simulator's own example input, which the recording did not have.
    let _ = std::fs::remove_file(data.path().join("input/example.png"));
    (sim, data)
}

/// An asset without what depends on the machine and the moment.
fn stable(a: &Value) -> Value {
    let mut a = a.clone();
    let m = a.as_object_mut().unwrap();
    for k in ["id", "created_at", "updated_at", "last_access_time"] {
        assert!(m.remove(k).is_some_and(|v| v.is_string()), "{k}");
    }
    m["metadata"].as_object_mut().unwrap().remove("file_path");
    a
}

#[tokio::test]
async fn assets_list_filter_page_and_view_by_hash_as_recorded() {
    let (sim, _data) = with_assets(true).await;
    let got = get(sim.addr(), "/api/assets?sort=name&order=asc").await.json();
    let rec = recorded_json("get_api_assets");
    let by_name = |v: &Value| {
        let mut items: Vec<Value> = v["assets"].as_array().unwrap().iter().map(stable).collect();
        items.sort_by_key(|a| a["name"].as_str().unwrap().to_owned());
        items
    };
    assert_eq!(by_name(&got), by_name(&rec));
    assert_eq!((&got["total"], &got["has_more"]), (&rec["total"], &rec["has_more"]));
    for (name, path) in [
        (
            "get_api_assets_paged",
            "/api/assets?limit=1&offset=1&sort=name&order=asc",
        ),
        (
            "get_api_assets_filtered",
            "/api/assets?tags_all=input&name_contains=red",
        ),
    ] {
        let got = get(sim.addr(), path).await.json();
        let rec = recorded_json(name);
        assert_eq!(by_name(&got), by_name(&rec), "{name}");
        assert_eq!(
            (&got["total"], &got["has_more"]),
            (&rec["total"], &rec["has_more"]),
            "{name}"
        );
    }
    let reply = get(sim.addr(), "/api/assets?limit=0").await;
    assert_eq!(
        (reply.status, reply.json()),
        (400, recorded_json("get_api_assets_bad_limit"))
    );
    // `/view` by hash: the file's bytes and name, as recorded.
    let red = rec["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "red.png")
        .unwrap();
    let hash = red["asset_hash"].as_str().unwrap();
    let reply = get(sim.addr(), &format!("/view?filename={}", hash.replace(':', "%3A"))).await;
    assert_eq!(reply.bytes().to_vec(), recorded("get_view_blake3").1);
    assert_eq!(reply.content_type(), Some("image/png"));
    assert_eq!(
        reply.headers.get("content-disposition").unwrap(),
        "filename=\"red.png\""
    );
    let (status, body) = recorded("get_view_blake3_unknown");
    let reply = get(sim.addr(), &format!("/api/view?filename=blake3%3A{}", "0".repeat(64))).await;
    assert_eq!((reply.status, reply.bytes().to_vec()), (status, body));
}

#[tokio::test]
async fn without_the_flag_assets_are_disabled_and_before_0_33_absent() {
    let (sim, _data) = with_assets(false).await;
    let reply = get(sim.addr(), "/api/assets").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["code"], "SERVICE_DISABLED");
    let old = Sim::builder().start().await.unwrap();
    assert_eq!(get(old.addr(), "/api/assets").await.status, 404);
}
