//! Per-principal jobs: with authentication on the HTTP transport, one
//! principal cannot inspect, cancel or read the outputs of another's jobs
//! (unless `transport.remote.share_jobs` is set).
//!
//! ComfyUI has one queue and one history for everybody, so the server keeps
//! the ownership itself: the prompt ids its tools submitted, with their
//! principal, and the output files seen in those jobs' results. Around each
//! tool call of an owning caller ([`crate::caller::Caller::owner`]):
//! - [`before`] refuses calls that name someone else's job or file, and the
//!   global ones (`comfyui_clear_queue`, `comfyui_interrupt` without a
//!   prompt id) that would act on everybody's jobs;
//! - [`after`] records what a submission started and filters listings
//!   (queue, history, jobs) down to the caller's own entries;
//!   `comfyui_list_outputs` filters as it lists, through [`current_owner`].
//!
//! Fairness on the remote transport: one client (its principal, else its
//! MCP session) may have at most `transport.remote.max_queued_jobs_per_client`
//! jobs queued or running. [`fair_before`] takes the client's submission
//! lock, counts the client's jobs in ComfyUI's queue and refuses one over
//! the cap; [`submitted`] records each prompt id as it is accepted and
//! releases the lock.
//!
//! Uploaded files are owned too: [`uploaded`] records the file each upload
//! of an owning caller placed (folder, subfolder, name), and [`before`]
//! refuses `overwrite: true` on a file another principal uploaded or
//! another principal's job produced, so one principal cannot replace
//! another's inputs or outputs. With Redis, uploads' owners are shared
//! (`{prefix}:file:{folder}/{subfolder}/{name}`, with the jobs' TTL) and
//! outputs' owners follow from the shared job owners.
//!
//! A job that is not ours looks exactly like a job that does not exist, so
//! prompt ids cannot be probed. The tables are bounded: the oldest entries
//! go first. Callers without an owner (stdio, no token, shared jobs) pass
//! untouched.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};

use crate::caller::Principal;
use crate::tools::{ToolContext, ToolError};

mod fair;

pub use fair::{Ticket, client_key, client_scope, fair_before, submitted};

tokio::task_local! {
    /// The owner of the call running on this task, for tools that filter
    /// as they list (so pagination counts only the caller's entries).
    static OWNER: Principal;
}

/// Records that the current call's owner (when jobs are kept apart)
/// placed `up` (in `folder` when ComfyUI did not say), so no other
/// principal may overwrite it; the first owner of a file keeps it.
pub async fn uploaded(folder: &str, up: &comfy_client::types::Uploaded, jobs: &Jobs) {
    let Some(owner) = current_owner() else { return };
    let kind = if up.kind.is_empty() { folder } else { up.kind.as_str() };
    let key = placed_key(kind, &up.subfolder, &up.name);
    // A file that already has an owner keeps it: an upload of the same
    // bytes under the same name without overwrite changes nothing in
    // ComfyUI (it answers with the existing file), and an overwrite was
    // only let through for the owner's own file.
    if jobs.uploader(&key).await.is_some() {
        return;
    }
    if let Some(shared) = &jobs.shared
        && let Err(e) = shared.job_file_set(&shared_file_id(&key), &owner.0).await
    {
        tracing::warn!("an upload's owner could not be recorded in Redis: {e}");
    }
    jobs.placed().insert(key, owner, MAX_UPLOADS);
}

/// Records the output files of every recent job (of every backend) whose
/// owner is known, or only of `only`'s jobs, so a file's owner can be
/// looked up by name.
async fn refresh_files(cx: &ToolContext, only: Option<&Principal>) {
    for b in cx.pool.all() {
        if let Ok(history) = b.client.history(Some(200), None).await {
            let ids: Vec<&str> = history.keys().map(String::as_str).collect();
            cx.jobs.load(&ids).await;
            for (id, entry) in &history {
                let owner = cx.jobs.jobs().map.get(id).cloned();
                if let Some(owner) = owner
                    && only.is_none_or(|o| *o == owner)
                {
                    cx.jobs.record_files(entry, &owner);
                }
            }
        }
    }
}

/// Refuses `overwrite: true` on a file another principal uploaded, or
/// (in `output`) another principal's job produced.
async fn check_overwrite(args: &Map<String, Value>, owner: &Principal, cx: &ToolContext) -> Result<(), ToolError> {
    if args.get("overwrite").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let folder = arg(args, "destination").unwrap_or("input");
    let (sub, name) = (
        arg(args, "subfolder").unwrap_or_default(),
        arg(args, "filename").unwrap_or_default(),
    );
    let key = placed_key(folder, sub, name);
    let mut theirs = cx.jobs.uploader(&key).await.is_some_and(|o| &o != owner);
    if !theirs && key.0 == "output" {
        let out = (key.1.clone(), key.2.clone());
        let known = |jobs: &Jobs| jobs.files().map.get(&out).cloned();
        let mut by = known(&cx.jobs);
        if by.is_none() {
            refresh_files(cx, None).await;
            by = known(&cx.jobs);
        }
        theirs = by.is_some_and(|o| &o != owner);
    }
    if theirs {
        return Err(ToolError::rejected(format!(
            "`{name}` in ComfyUI's {folder} folder belongs to another client (it uploaded it, or one of its jobs \
             produced it); overwrite: true may only replace your own files. Choose another name, or upload \
             without overwrite (ComfyUI then stores yours under a new name)"
        )));
    }
    Ok(())
}

/// The owner of the current call, when jobs are kept apart.
#[must_use]
pub fn current_owner() -> Option<Principal> {
    OWNER.try_with(Clone::clone).ok()
}

/// Runs `work` as a call of `owner`.
pub async fn scope<F: std::future::Future>(owner: Option<Principal>, work: F) -> F::Output {
    match owner {
        Some(owner) => OWNER.scope(owner, work).await,
        None => work.await,
    }
}

/// Most jobs remembered.
pub const MAX_JOBS: usize = 10_000;
/// Most output files remembered.
pub const MAX_FILES: usize = 50_000;

/// A bounded map that forgets its oldest keys.
pub(crate) struct Bounded<K, V = Principal> {
    pub(crate) map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> Bounded<K, V> {
    pub(crate) fn insert(&mut self, key: K, value: V, max: usize) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
            while self.order.len() > max {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// An output file: subfolder and name.
type FileKey = (String, String);

/// An uploaded file: folder (`input`, `output`, `temp`), subfolder, name.
type PlacedKey = (String, String, String);

/// Most uploaded files remembered.
pub const MAX_UPLOADS: usize = 50_000;

/// A subfolder as ComfyUI joins it: separators either way, empty segments
/// dropped, so `a/b/`, `/a//b` and `a\\b` name the same place.
fn normal_subfolder(sub: &str) -> String {
    sub.split(['/', '\\'])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

fn placed_key(folder: &str, sub: &str, name: &str) -> PlacedKey {
    let folder = if folder.is_empty() { "input" } else { folder };
    (folder.to_owned(), normal_subfolder(sub), name.to_owned())
}

fn shared_file_id(key: &PlacedKey) -> String {
    format!("{}/{}/{}", key.0, key.1, key.2)
}

/// Who owns which job and output file.
#[derive(Default)]
pub struct Jobs {
    owners: Mutex<Bounded<String>>,
    files: Mutex<Bounded<FileKey>>,
    placed: Mutex<Bounded<PlacedKey>>,
    clients: Mutex<Bounded<String>>,
    submit_locks: Mutex<HashMap<Principal, Arc<tokio::sync::Mutex<()>>>>,
    /// Where jobs' owners and clients are shared with other replicas.
    shared: Option<Arc<crate::state::Shared>>,
}

impl Jobs {
    /// The tables, shared with other replicas through `shared` when set.
    #[must_use]
    pub fn new(shared: Option<Arc<crate::state::Shared>>) -> Self {
        Self {
            shared,
            ..Self::default()
        }
    }

    /// Writes `field` of job `id` to the shared state (when there is one).
    async fn share(&self, id: &str, field: &str, who: &Principal) {
        if let Some(shared) = &self.shared
            && let Err(e) = shared.job_set(id, &[(field, &who.0)]).await
        {
            tracing::warn!("job {id}: its {field} could not be recorded in Redis: {e}");
        }
    }

    /// Fetches the owners and clients of `ids` not known here from the
    /// shared state (jobs another replica started).
    pub async fn load(&self, ids: &[&str]) {
        let Some(shared) = &self.shared else { return };
        let unknown: Vec<&str> = {
            let (owners, clients) = (self.jobs(), self.clients());
            ids.iter()
                .copied()
                .filter(|id| !owners.map.contains_key(*id) || !clients.map.contains_key(*id))
                .collect()
        };
        for (field, table) in [("owner", &self.owners), ("client", &self.clients)] {
            match shared.jobs_field(&unknown, field).await {
                Ok(values) => {
                    let mut t = table.lock().unwrap_or_else(PoisonError::into_inner);
                    for (id, v) in unknown.iter().zip(values) {
                        if let Some(v) = v {
                            t.insert((*id).to_owned(), Principal(v.into()), MAX_JOBS);
                        }
                    }
                }
                Err(e) => tracing::warn!("jobs' {field}s could not be read from Redis: {e}"),
            }
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Bounded<String>> {
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn files(&self) -> std::sync::MutexGuard<'_, Bounded<FileKey>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn placed(&self) -> std::sync::MutexGuard<'_, Bounded<PlacedKey>> {
        self.placed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Who uploaded the file at `key`, here or (when shared) in Redis.
    async fn uploader(&self, key: &PlacedKey) -> Option<Principal> {
        if let Some(owner) = self.placed().map.get(key) {
            return Some(owner.clone());
        }
        let shared = self.shared.as_ref()?;
        match shared.hash_get("file", &shared_file_id(key)).await {
            Ok(fields) => fields.get("owner").map(|o| Principal(o.as_str().into())),
            Err(e) => {
                tracing::warn!("uploads' owners could not be read from Redis: {e}");
                None
            }
        }
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, Bounded<String>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `owner` started job `id`.
    pub fn record(&self, id: &str, owner: &Principal) {
        self.jobs().insert(id.to_owned(), owner.clone(), MAX_JOBS);
    }

    /// Whether `owner` started job `id`.
    #[must_use]
    pub fn owns(&self, id: &str, owner: &Principal) -> bool {
        self.jobs().map.get(id) == Some(owner)
    }

    fn owns_file(&self, key: &FileKey, owner: &Principal) -> bool {
        self.files().map.get(key) == Some(owner)
    }

    /// Records every output file named in `v` as `owner`'s.
    fn record_files(&self, v: &Value, owner: &Principal) {
        let mut files = self.files();
        walk_files(v, &mut |key| files.insert(key, owner.clone(), MAX_FILES));
    }
}

/// Calls `f` with `(subfolder, filename)` of every output file object in `v`
/// (ComfyUI's `{filename, subfolder, type}` and our `{filename, subfolder}`).
pub(crate) fn walk_files(v: &Value, f: &mut impl FnMut(FileKey)) {
    match v {
        Value::Object(m) => {
            if let Some(name) = m.get("filename").and_then(Value::as_str) {
                let kind = m.get("type").and_then(Value::as_str).unwrap_or("output");
                if kind == "output" {
                    let sub = m.get("subfolder").and_then(Value::as_str).unwrap_or_default();
                    f((sub.to_owned(), name.to_owned()));
                }
            }
            m.values().for_each(|x| walk_files(x, f));
        }
        Value::Array(a) => a.iter().for_each(|x| walk_files(x, f)),
        _ => {}
    }
}

fn not_found(id: &str) -> ToolError {
    ToolError::rejected(crate::tools::no_job(id))
}

fn arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

/// The prompt id argument when it is well formed; a malformed one is left
/// for the tool to refuse with its own message.
fn id_arg(args: &Map<String, Value>) -> Option<String> {
    crate::tools::prompt_id(args, "prompt_id").ok()
}

/// Checks a call against the owner's jobs before it runs.
///
/// # Errors
/// A refusal naming what the caller may not touch.
pub async fn before(
    name: &str,
    args: &Map<String, Value>,
    owner: &Principal,
    cx: &ToolContext,
) -> Result<(), ToolError> {
    let jobs = &cx.jobs;
    if jobs.shared.is_some() {
        let mut ids: Vec<String> = id_arg(args).into_iter().collect();
        for id in args.get("job_ids").and_then(Value::as_array).into_iter().flatten() {
            ids.extend(id.as_str().map(str::to_owned));
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        jobs.load(&ids).await;
    }
    match name {
        "comfyui_get_job" | "comfyui_get_progress" | "comfyui_cancel_job" => {
            if let Some(id) = id_arg(args)
                && !jobs.owns(&id, owner)
            {
                return Err(not_found(&id));
            }
        }
        "comfyui_get_history" | "comfyui_interrupt" => match id_arg(args) {
            Some(id) if !jobs.owns(&id, owner) => return Err(not_found(&id)),
            None if name == "comfyui_interrupt" && args.get("prompt_id").is_none_or(Value::is_null) => {
                return Err(ToolError::rejected(
                    "comfyui_interrupt without a prompt_id stops whatever runs, which may be another client's job; \
                     pass the prompt_id of one of your jobs",
                ));
            }
            _ => {}
        },
        "comfyui_cancel_jobs" => {
            for id in args.get("job_ids").and_then(Value::as_array).into_iter().flatten() {
                // A malformed id makes the tool refuse the whole call.
                let Ok(id) = crate::tools::check_prompt_id(id.as_str().unwrap_or_default(), "prompt_id") else {
                    return Ok(());
                };
                if !jobs.owns(&id, owner) {
                    return Err(not_found(&id));
                }
            }
        }
        "comfyui_upload_image" | "comfyui_upload_mask" => check_overwrite(args, owner, cx).await?,
        "comfyui_list_assets" => {
            return Err(ToolError::rejected(
                "comfyui_list_assets lists every client's files (ComfyUI's assets have no owner here); it is off while \
                 clients' jobs are kept apart",
            ));
        }
        "comfyui_clear_queue" => {
            return Err(ToolError::rejected(
                "comfyui_clear_queue acts on every client's jobs; pass your job ids to comfyui_cancel_jobs instead",
            ));
        }
        "comfyui_get_image" | "comfyui_get_workflow_from_image" => {
            let key = (
                arg(args, "subfolder").unwrap_or_default().to_owned(),
                arg(args, "filename").unwrap_or_default().to_owned(),
            );
            if !jobs.owns_file(&key, owner) {
                refresh_files(cx, Some(owner)).await;
                if !jobs.owns_file(&key, owner) {
                    return Err(ToolError::rejected(format!(
                        "no output '{}' among your jobs' outputs",
                        key.1
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Keeps the entries of `list` that `keep` accepts; whether any went.
fn retain(list: Option<&mut Value>, keep: impl Fn(&Value) -> bool) -> bool {
    let Some(Value::Array(items)) = list.map(|v| &mut *v) else {
        return false;
    };
    let before = items.len();
    items.retain(keep);
    items.len() != before
}

/// Fixes `count` and `total` of a paginated listing after filtering.
fn recount(v: &mut Value, removed: bool) {
    let count = v.get("items").and_then(Value::as_array).map_or(0, Vec::len);
    if let Some(m) = v.as_object_mut() {
        if m.contains_key("count") {
            m.insert("count".to_owned(), Value::from(count));
        }
        if removed && m.contains_key("total") {
            m.insert("total".to_owned(), Value::Null);
        }
    }
}

/// Prompt ids a listing names (queue tuples, jobs, history items).
fn listed_ids(v: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for key in ["queue_running", "queue_pending"] {
        for item in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            ids.extend(item.get(1).and_then(Value::as_str).map(str::to_owned));
        }
    }
    for (key, field) in [("jobs", "id"), ("items", "prompt_id")] {
        for item in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            ids.extend(item.get(field).and_then(Value::as_str).map(str::to_owned));
        }
    }
    ids
}

/// Records and filters a successful result for its owner.
pub async fn after(name: &str, v: &mut Value, owner: &Principal, cx: &ToolContext) {
    let jobs = &cx.jobs;
    if jobs.shared.is_some() {
        let ids = listed_ids(v);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        jobs.load(&ids).await;
    }
    match name {
        _ if crate::tools::submits(name) => {
            if let Some(id) = v.get("prompt_id").and_then(Value::as_str) {
                jobs.record(id, owner);
                jobs.share(id, "owner", owner).await;
                jobs.record_files(v, owner);
            }
        }
        _ => filter(name, v, owner, jobs),
    }
}

/// Keeps only `owner`'s entries in a listing (and records the output files
/// a job result names as theirs).
fn filter(name: &str, v: &mut Value, owner: &Principal, jobs: &Jobs) {
    match name {
        "comfyui_get_job" | "comfyui_get_progress" => jobs.record_files(v, owner),
        "comfyui_get_queue" => {
            for key in ["queue_running", "queue_pending"] {
                retain(v.get_mut(key), |item| {
                    item.get(1)
                        .and_then(Value::as_str)
                        .is_some_and(|id| jobs.owns(id, owner))
                });
            }
            // With several backends: where each job runs, for the
            // caller's jobs only (the ids of others' jobs are not shown).
            if let Some(Value::Object(of)) = v.get_mut("backend_of") {
                of.retain(|id, _| jobs.owns(id, owner));
            }
        }
        "comfyui_list_jobs" => {
            retain(v.get_mut("jobs"), |job| {
                job.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| jobs.owns(id, owner))
            });
        }
        "comfyui_get_history" => {
            let removed = retain(v.get_mut("items"), |entry| {
                entry
                    .get("prompt_id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| jobs.owns(id, owner))
            });
            recount(v, removed);
            jobs.record_files(v, owner);
        }
        // comfyui_list_outputs filters as it lists (see `current_owner`).
        _ => {}
    }
}

#[cfg(test)]
mod tests;
