//! HTTP routing and the handlers of ComfyUI's REST routes.
//!
//! Routing follows aiohttp as ComfyUI sets it up: every route also answers
//! under `/api`, the jobs routes only under `/api` (and, as upstream,
//! `/api/api`), `/internal/*` only without the prefix; an unknown path is a
//! chunked empty 404, a known path with the wrong method a 405 naming the
//! allowed methods, and the origin-only middleware refuses cross-origin
//! requests to a loopback host with an empty 403.
//!
//! Layout: [`route`] maps a path to a [`Route`] (pure path logic),
//! [`reply`] builds aiohttp-shaped responses and reads bodies for every
//! handler, [`inject`] applies [`crate::Faults`] around a route; this file
//! is the request pipeline ([`handle`]) and the table of core handlers
//! (`dispatch`). Handlers with state of their own live in their area's
//! module (`files`, `userdata`, `jobs`, `library`, the plugins).

mod inject;
mod reply;
mod route;

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{Value, json};

pub(crate) use reply::{
    MAX_UPLOAD, empty, json, json_text, not_found_route, param, query, read_body, read_json, response, server_error,
    text,
};
pub(crate) use route::{Route, resolve};

use crate::body::Body;
use crate::state::Shared;
use reply::MAX_JSON_BODY;
use route::decode;

fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// ComfyUI's origin-only middleware: on a loopback host, a request whose
/// `Origin` host name differs from its `Host` host name is refused.
fn origin_refused(parts: &http::request::Parts) -> bool {
    let Some(host) = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let host = host_name(host);
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return false;
    }
    let origin_authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let origin_authority = origin_authority.split('/').next().unwrap_or("");
    host_name(origin_authority) != host
}

/// `POST /api/jobs/cancel {"job_ids": [...]}` (0.33.0): every id must be a
/// canonical UUID string, or nothing is cancelled and the 400 lists the bad
/// ones (Python `repr` for non-strings); unknown and finished ids are
/// no-ops; `{"cancelled": bool}` says whether any job was stopped or
/// removed. A body that is not UTF-8 fails as aiohttp's `text()` does (500).
async fn cancel_batch(shared: &Shared, body: Incoming) -> Response<Body> {
    let Some(bytes) = read_body(body, MAX_JSON_BODY).await else {
        return server_error();
    };
    if std::str::from_utf8(&bytes).is_err() {
        return server_error();
    }
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return json(400, &json!({"error": "Request body must be valid JSON"}));
    };
    let Some(ids) = value
        .as_object()
        .and_then(|o| o.get("job_ids"))
        .and_then(Value::as_array)
    else {
        return json(400, &json!({"error": "job_ids must be a list"}));
    };
    let invalid: Vec<Value> = ids
        .iter()
        .filter_map(|id| match id {
            Value::String(s) if crate::version::is_canonical_uuid(s) => None,
            Value::String(s) => Some(Value::from(s.as_str())),
            other => Some(Value::from(crate::validate::py_repr(other))),
        })
        .collect();
    if !invalid.is_empty() {
        return json(
            400,
            &json!({"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}),
        );
    }
    let mut any = false;
    for id in ids.iter().filter_map(Value::as_str) {
        any |= shared.cancel_job(id);
    }
    json(200, &json!({"cancelled": any}))
}

/// Serves one request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let faults = shared.faults.borrow().clone();
    if let Some(latency) = faults.latency {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = req.into_parts();
    if origin_refused(&parts) {
        return empty(403);
    }
    if parts.method == Method::OPTIONS {
        return empty(200);
    }
    let path = parts.uri.path();
    let bare = path.strip_prefix("/api").filter(|p| p.starts_with('/')).unwrap_or(path);
    if shared.model_search
        && parts.method == Method::GET
        && (path == "/api/v1/models" || path.starts_with("/api/models"))
    {
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
            && let Ok(mut seen) = shared.search_auth.lock()
        {
            seen.push(format!("GET {path}: {auth}"));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let own_url = format!("http://{host}");
        if let Some(resp) = crate::search::handle(path, &query(&parts), &own_url) {
            return resp;
        }
        return not_found_route();
    }
    if shared.manager_on && (bare.starts_with("/v2/manager/") || bare.starts_with("/v2/customnode/")) {
        let bare = bare.to_owned();
        return crate::manager::handle(&shared, &parts.method, &bare, body).await;
    }
    if shared.model_manager && bare.starts_with("/model-manager/") {
        let bare = bare.to_owned();
        return crate::model_manager::handle(&shared, &parts.method, &bare, body)
            .await
            .unwrap_or_else(not_found_route);
    }
    if shared.version.newer()
        && parts.method == Method::POST
        && let Some(rest) = parts.uri.path().strip_prefix("/api/jobs/")
    {
        // ComfyUI 0.33.0's cancel routes: `{"cancelled": bool}`.
        if rest == "cancel" {
            shared.count_request("/jobs/cancel");
            return cancel_batch(&shared, body).await;
        }
        if let Some(id) = rest.strip_suffix("/cancel").filter(|id| !id.contains('/')) {
            shared.count_request("/jobs/{id}/cancel");
            return json(200, &json!({"cancelled": shared.cancel_job(&decode(id))}));
        }
    }
    // 0.8.0 has no cancel route: a POST there is a 405, as real 0.8.0 answers.
    if !shared.version.newer()
        && parts.method == Method::POST
        && parts
            .uri
            .path()
            .strip_prefix("/api/jobs/")
            .and_then(|r| r.strip_suffix("/cancel"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
    {
        shared.count_request("/jobs/{id}/cancel");
        let mut r = text(405, "405: Method Not Allowed");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        return r;
    }
    // The official templates (no `/api` alias) and, on 0.33.0, the assets
    // list and hash views (`library`).
    if parts.method == Method::GET || parts.method == Method::HEAD {
        let path = parts.uri.path();
        if let Some(rest) = path.strip_prefix("/templates/") {
            shared.count_request("/templates/{path}");
            return crate::library::template(&shared, &decode(rest));
        }
        if shared.version.newer() && path == "/api/assets" {
            shared.count_request("/api/assets");
            return crate::library::list(&shared, &query(&parts));
        }
        if shared.version.newer()
            && resolve(path).is_some_and(|(r, _)| r == Route::View)
            && let Some(hash) = param(&query(&parts), "filename").filter(|f| f.starts_with("blake3:"))
        {
            shared.count_request("/view");
            return crate::library::view_hash(&shared, hash);
        }
    }
    let Some((route, canonical)) = resolve(parts.uri.path()) else {
        return not_found_route();
    };
    shared.count_request(&canonical);
    let fault = faults.routes.get(&canonical).cloned();
    let body = match inject::before(fault.as_ref(), body).await {
        Ok(body) => body,
        Err(early) => return early,
    };
    let allowed = route.methods();
    if !allowed.contains(&parts.method.as_str()) {
        let mut r = text(405, "405: Method Not Allowed");
        if let Ok(v) = HeaderValue::from_str(&allowed.join(",")) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        return r;
    }
    let resp = dispatch(&shared, route, parts, body).await;
    inject::after(fault.as_ref(), resp).await
}

async fn dispatch(shared: &Arc<Shared>, route: Route, parts: http::request::Parts, body: Incoming) -> Response<Body> {
    let q = query(&parts);
    let post = parts.method == Method::POST;
    match route {
        Route::Ws => crate::ws::upgrade(shared, Request::from_parts(parts, body)),
        Route::Embeddings => json(200, &json!([])),
        Route::Models => json(200, &json!(crate::catalog::FOLDERS)),
        Route::ModelsFolder(f) => match shared.models.files(&f) {
            Some(files) => json(200, &json!(files)),
            None => empty(404),
        },
        Route::Extensions => json(200, &shared.extensions),
        Route::SystemStats => json(200, &shared.system_stats()),
        Route::Features => json(200, &shared.features()),
        // ComfyUI 0.14 and later; 0.8.0 (the recording) has no such route.
        Route::NodeReplacements => match &shared.node_replacements {
            Some(table) => json(200, table),
            None => empty(404),
        },
        Route::ObjectInfo => json_text(200, shared.catalog.all_text(&shared.input_files())),
        Route::ObjectInfoOne(c) => json_text(200, shared.catalog.one_text(&c, &shared.input_files())),
        Route::Prompt if post => match read_json(body).await {
            Ok(v) => shared.submit(v),
            Err(r) => r,
        },
        Route::Prompt => json(200, &shared.prompt_info()),
        Route::Queue if post => match read_json(body).await {
            Ok(v) => {
                shared.queue_post(&v);
                empty(200)
            }
            Err(r) => r,
        },
        Route::Queue => json(200, &shared.queue_json()),
        Route::Interrupt => {
            let v = match read_body(body, MAX_JSON_BODY).await {
                Some(b) => serde_json::from_slice::<Value>(&b).unwrap_or_else(|_| json!({})),
                None => json!({}),
            };
            // A JSON body that is not an object fails in ComfyUI's
            // `json_data.get` (500, nothing interrupted).
            if !v.is_object() {
                return server_error();
            }
            // Python truthiness: a missing, null, empty or zero id is the
            // global interrupt; any other value names a job (and one that
            // is not a string names none).
            let id = match v.get("prompt_id") {
                None | Some(Value::Null | Value::Bool(false)) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::Array(a)) if a.is_empty() => None,
                Some(Value::Object(o)) if o.is_empty() => None,
                Some(Value::Number(n)) if n.as_f64() == Some(0.0) => None,
                Some(other) => Some(crate::validate::py_str(other)),
            };
            shared.interrupt(id.as_deref());
            empty(200)
        }
        Route::Free => {
            let _ = read_body(body, MAX_JSON_BODY).await;
            empty(200)
        }
        Route::History if post => match read_json(body).await {
            Ok(v) => {
                shared.history_post(&v);
                empty(200)
            }
            Err(r) => r,
        },
        Route::History => {
            let parse = |name: &str| param(&q, name).map(str::parse::<i64>);
            match (parse("max_items").transpose(), parse("offset").transpose()) {
                (Ok(max), Ok(offset)) => json(200, &shared.history_json(max, offset.unwrap_or(-1))),
                _ => server_error(),
            }
        }
        Route::HistoryOne(id) => json(200, &shared.history_one(&id)),
        Route::Jobs => crate::jobs::list(shared, &q),
        Route::Job(id) => crate::jobs::one(shared, &id),
        Route::View => crate::files::view(shared, &q),
        Route::UploadImage => crate::files::upload(shared, &parts, body, false).await,
        Route::UploadMask => crate::files::upload(shared, &parts, body, true).await,
        Route::Users => {
            if post {
                return server_error();
            }
            json(200, &json!({"storage": "server", "migrated": false}))
        }
        Route::Settings if post => match read_json(body).await {
            Ok(Value::Object(m)) => crate::userdata::save_settings(shared, m),
            Ok(_) | Err(_) => server_error(),
        },
        Route::Settings => json(200, &Value::Object(crate::userdata::settings(shared))),
        Route::Setting(id) if post => match read_json(body).await {
            Ok(v) => crate::userdata::save_settings(shared, std::iter::once((id, v)).collect()),
            Err(r) => r,
        },
        Route::Setting(id) => json(200, crate::userdata::settings(shared).get(&id).unwrap_or(&Value::Null)),
        Route::Userdata => crate::userdata::list(shared, &q),
        Route::V2Userdata => crate::userdata::list_v2(shared, &q),
        Route::UserdataFile(f) => crate::userdata::file(shared, &parts.method, &f, None, &q, body).await,
        Route::UserdataMove(f, d) => crate::userdata::file(shared, &parts.method, &f, Some(&d), &q, body).await,
        Route::ExperimentModels => json(200, &shared.experiment_models()),
        Route::ExperimentModelsFolder(f) => match shared.models.files(&f) {
            Some(files) => json(
                200,
                &Value::Array(
                    files
                        .iter()
                        .map(|n| json!({"name": n, "pathIndex": 0, "modified": 1_795_586_228.239_85, "created": 1_795_586_228.239_85, "size": 0}))
                        .collect(),
                ),
            ),
            None => empty(404),
        },
        Route::WorkflowTemplates | Route::I18n => json(200, &json!({})),
        Route::GlobalSubgraphs => crate::library::subgraphs(shared),
        // No blueprint by that id: `200 null`, as ComfyUI 0.8.0 and 0.33.0 answer.
        Route::GlobalSubgraph(id) => crate::library::subgraph(shared, &id),
        Route::ViewMetadata(folder) => crate::files::view_metadata(shared, &folder, &q),
        Route::ModelPreview(folder, name) => crate::files::model_preview(shared, &folder, &name),
        Route::InternalFiles(t) => crate::files::internal_files(shared, &t),
        Route::InternalFolderPaths => json(200, &shared.folder_paths()),
        Route::InternalLogs => json(200, &shared.log.text()),
        Route::InternalLogsRaw => json(200, &shared.log.raw()),
        Route::InternalLogsSubscribe => match read_json(body).await {
            Ok(v) => {
                let enabled = v.get("enabled").is_some_and(crate::state::truthy);
                if let Some(id) = v.get("clientId").and_then(Value::as_str) {
                    shared.log.subscribe(id, enabled);
                }
                empty(200)
            }
            Err(r) => r,
        },
    }
}
