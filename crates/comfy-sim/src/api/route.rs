//! The route table: which handler a raw request path reaches.
//!
//! Kept apart from the handlers because it is pure path logic (no state, no
//! I/O): the aliases aiohttp gives ComfyUI's routes, the `/api/jobs` quirks,
//! percent-decoding of path segments, and the canonical path that request
//! counts and fault injection key on.

/// A resolved route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Ws,
    Embeddings,
    Models,
    ModelsFolder(String),
    Extensions,
    UploadImage,
    UploadMask,
    View,
    ViewMetadata(String),
    SystemStats,
    Features,
    NodeReplacements,
    Prompt,
    ObjectInfo,
    ObjectInfoOne(String),
    Jobs,
    Job(String),
    History,
    HistoryOne(String),
    Queue,
    Interrupt,
    Free,
    Users,
    Settings,
    Setting(String),
    Userdata,
    UserdataFile(String),
    UserdataMove(String, String),
    V2Userdata,
    ExperimentModels,
    ExperimentModelsFolder(String),
    WorkflowTemplates,
    I18n,
    GlobalSubgraphs,
    GlobalSubgraph(String),
    ModelPreview(String, String),
    InternalFiles(String),
    InternalFolderPaths,
    InternalLogs,
    InternalLogsRaw,
    InternalLogsSubscribe,
}

impl Route {
    /// The methods this route answers, sorted as aiohttp lists them in
    /// `Allow` (`HEAD` comes with every `GET`).
    pub(super) fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::UploadImage | Route::UploadMask | Route::Interrupt | Route::Free | Route::UserdataMove(..) => {
                &["POST"]
            }
            Route::Prompt | Route::Queue | Route::History | Route::Users | Route::Settings | Route::Setting(_) => {
                &["GET", "HEAD", "POST"]
            }
            Route::UserdataFile(_) => &["DELETE", "GET", "HEAD", "POST"],
            Route::InternalLogsSubscribe => &["PATCH"],
            _ => &["GET", "HEAD"],
        }
    }
}

pub(super) fn decode(seg: &str) -> String {
    form_urlencoded::parse(format!("x={}", seg.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Resolves a raw request path to a route and its canonical (unprefixed)
/// path, which fault injection keys on.
pub(crate) fn resolve(path: &str) -> Option<(Route, String)> {
    if let Some(rest) = path.strip_prefix("/internal/") {
        let r = match rest.split('/').collect::<Vec<_>>().as_slice() {
            ["files", t] => Route::InternalFiles(decode(t)),
            ["folder_paths"] => Route::InternalFolderPaths,
            ["logs"] => Route::InternalLogs,
            ["logs", "raw"] => Route::InternalLogsRaw,
            ["logs", "subscribe"] => Route::InternalLogsSubscribe,
            _ => return None,
        };
        return Some((r, path.to_owned()));
    }
    let (core, prefixed) = match path.strip_prefix("/api") {
        Some(rest) if rest.starts_with('/') => (rest, true),
        _ => (path, false),
    };
    let jobs_path = if prefixed {
        core.strip_prefix("/api")
            .filter(|r| r.starts_with("/jobs"))
            .or(Some(core))
    } else {
        None
    };
    if let Some(j) = jobs_path.filter(|j| *j == "/jobs" || j.starts_with("/jobs/")) {
        let r = match j.trim_start_matches("/jobs") {
            "" => Route::Jobs,
            id => {
                let id = id.trim_start_matches('/');
                if id.is_empty() || id.contains('/') {
                    return None;
                }
                Route::Job(decode(id))
            }
        };
        return Some((r, "/jobs".to_owned()));
    }
    if core.starts_with("/internal") || core == "/jobs" || core.starts_with("/jobs/") {
        return None;
    }
    let segs: Vec<&str> = core.trim_start_matches('/').split('/').collect();
    let r = match segs.as_slice() {
        ["ws"] => Route::Ws,
        ["embeddings"] => Route::Embeddings,
        ["models"] => Route::Models,
        ["models", f] => Route::ModelsFolder(decode(f)),
        ["extensions"] => Route::Extensions,
        ["upload", "image"] => Route::UploadImage,
        ["upload", "mask"] => Route::UploadMask,
        ["view"] => Route::View,
        ["view_metadata", f] => Route::ViewMetadata(decode(f)),
        ["system_stats"] => Route::SystemStats,
        ["features"] => Route::Features,
        ["node_replacements"] => Route::NodeReplacements,
        ["prompt"] => Route::Prompt,
        ["object_info"] => Route::ObjectInfo,
        ["object_info", c] => Route::ObjectInfoOne(decode(c)),
        ["history"] => Route::History,
        ["history", id] => Route::HistoryOne(decode(id)),
        ["queue"] => Route::Queue,
        ["interrupt"] => Route::Interrupt,
        ["free"] => Route::Free,
        ["users"] => Route::Users,
        ["settings"] => Route::Settings,
        ["settings", id] => Route::Setting(decode(id)),
        ["userdata"] => Route::Userdata,
        ["userdata", f] => Route::UserdataFile(decode(f)),
        ["userdata", f, "move", d] => Route::UserdataMove(decode(f), decode(d)),
        ["v2", "userdata"] => Route::V2Userdata,
        ["experiment", "models"] => Route::ExperimentModels,
        ["experiment", "models", f] => Route::ExperimentModelsFolder(decode(f)),
        ["experiment", "models", "preview", f, _index, name] => Route::ModelPreview(decode(f), decode(name)),
        ["workflow_templates"] => Route::WorkflowTemplates,
        ["i18n"] => Route::I18n,
        ["global_subgraphs"] => Route::GlobalSubgraphs,
        ["global_subgraphs", id] => Route::GlobalSubgraph(decode(id)),
        _ => return None,
    };
    let canonical = match &r {
        Route::ModelsFolder(_) => "/models/{folder}".to_owned(),
        Route::ObjectInfoOne(_) => "/object_info/{class}".to_owned(),
        Route::HistoryOne(_) => "/history/{id}".to_owned(),
        _ => core.to_owned(),
    };
    Some((r, canonical))
}
