//! `comfy-mcp smoke`: the operator's check of a live install, one line per
//! check, in order:
//!
//! 1. `connect`: `GET /system_stats` answers, with ComfyUI's version;
//! 2. `model folders`: `GET /models` lists folders;
//! 3. `websocket`: a socket of its own gets ComfyUI's first message;
//! 4. `ComfyUI-Manager` and 5. `ComfyUI-Model-Manager`: installed or not
//!    (both optional: absent is not a failure);
//! 6. `download` (unless `--no-download`, and only with Model-Manager): a
//!    tiny file through Model-Manager's whole task lifecycle: create,
//!    follow to the end, see it listed, delete it. The URL passes the same
//!    download validator as `comfyui_download_model`.
//!
//! The download cleans up on every path: a task still listed is cancelled
//! and a file that landed is deleted, whether the check passed, failed,
//! timed out or was interrupted (Ctrl-C or SIGTERM: then the exit code is
//! 130). Otherwise the exit code is 0 when no check failed, 1 when one did.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::Config;
use comfy_client::Client;
use comfy_client::name::{RelPath, Segment};
use comfy_guard::download::{DownloadPolicy, check_download};
use comfy_guard::path::Extensions;
use serde_json::Value;

/// The default tiny file: a few hundred kilobytes of safetensors.
pub const DEFAULT_URL: &str =
    "https://huggingface.co/hf-internal-testing/tiny-random-gpt2/resolve/main/model.safetensors";

/// What `smoke` was asked.
pub struct Options {
    /// The ComfyUI to check (default: `comfyui.url`).
    pub url: Option<String>,
    /// Skip the download check.
    pub no_download: bool,
    /// The file to download.
    pub download_url: String,
    /// The model folder it goes to.
    pub folder: String,
    /// The longest the download may take.
    pub timeout: Duration,
}

/// One line of the checklist.
#[derive(Debug, PartialEq, Eq)]
enum Mark {
    Ok,
    Failed,
    /// Not there, or not run (optional).
    Skipped,
}

struct Checklist {
    lines: Vec<(Mark, &'static str, String)>,
}

impl Checklist {
    fn add(&mut self, mark: Mark, name: &'static str, detail: impl Into<String>) {
        let detail = detail.into();
        let tag = match mark {
            Mark::Ok => "ok",
            Mark::Failed => "FAILED",
            Mark::Skipped => "skipped",
        };
        #[allow(clippy::print_stdout, reason = "the checklist is the command's output")]
        {
            println!("[{tag:>7}] {name}: {detail}");
        }
        self.lines.push((mark, name, detail));
    }

    fn failed(&self) -> usize {
        self.lines.iter().filter(|(m, _, _)| *m == Mark::Failed).count()
    }
}

/// Runs the checks; the exit code says how they went. When `stop`
/// completes (the caller's Ctrl-C) during the download check, the trial
/// file is removed and the check fails as interrupted.
pub async fn run(config: &Config, opts: &Options, stop: impl std::future::Future<Output = ()>) -> ExitCode {
    let url = opts.url.clone().unwrap_or_else(|| config.comfyui.url.clone());
    #[allow(clippy::print_stdout, reason = "the checklist is the command's output")]
    {
        println!("comfy-mcp smoke: {url}");
    }
    let mut list = Checklist { lines: Vec::new() };
    let client = match Client::builder(url.as_str())
        .connect_timeout(Duration::from_secs(config.comfyui.timeout_connect.min(10)))
        .read_timeout(Duration::from_secs(30))
        .tls_verify(config.comfyui.tls_verify)
        .user_agent(concat!("comfy-mcp-smoke/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            list.add(Mark::Failed, "connect", e.to_string());
            return summary(&list, false);
        }
    };
    match client.system_stats().await {
        Ok(stats) => {
            let version = stats
                .pointer("/system/comfyui_version")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let devices = stats.get("devices").and_then(Value::as_array).map_or(0, Vec::len);
            list.add(Mark::Ok, "connect", format!("ComfyUI {version}, {devices} device(s)"));
        }
        Err(e) => {
            // Nothing else can pass without a server.
            list.add(Mark::Failed, "connect", e.to_string());
            return summary(&list, false);
        }
    }
    match client.model_folders().await {
        Ok(folders) if !folders.is_empty() => {
            list.add(Mark::Ok, "model folders", format!("{} folders", folders.len()));
        }
        Ok(_) => list.add(Mark::Failed, "model folders", "ComfyUI lists no model folders"),
        Err(e) => list.add(Mark::Failed, "model folders", e.to_string()),
    }
    let started = Instant::now();
    match client.websocket_check(Duration::from_secs(10)).await {
        Ok(()) => list.add(
            Mark::Ok,
            "websocket",
            format!("first message in {} ms", started.elapsed().as_millis()),
        ),
        Err(e) => list.add(Mark::Failed, "websocket", e.to_string()),
    }
    match client.manager_version().await {
        Ok(Some(v)) => list.add(Mark::Ok, "ComfyUI-Manager", format!("installed ({v})")),
        Ok(None) => list.add(Mark::Skipped, "ComfyUI-Manager", "not installed (optional)"),
        Err(e) => list.add(Mark::Failed, "ComfyUI-Manager", e.to_string()),
    }
    let model_manager = match client.model_manager_available().await {
        Ok(true) => {
            list.add(Mark::Ok, "ComfyUI-Model-Manager", "installed");
            true
        }
        Ok(false) => {
            list.add(Mark::Skipped, "ComfyUI-Model-Manager", "not installed (optional)");
            false
        }
        Err(e) => {
            list.add(Mark::Failed, "ComfyUI-Model-Manager", e.to_string());
            false
        }
    };
    if opts.no_download {
        list.add(Mark::Skipped, "download", "--no-download");
        return summary(&list, false);
    }
    if !model_manager {
        list.add(Mark::Skipped, "download", "needs ComfyUI-Model-Manager");
        return summary(&list, false);
    }
    let mut trial = Download::new(&client, opts);
    let outcome = tokio::select! {
        r = trial.run(config) => Some(r),
        () = stop => None,
    };
    // Whatever happened, nothing is left behind.
    let cleanup = trial.clean_up().await;
    match outcome {
        None => {
            list.add(Mark::Failed, "download", format!("interrupted; {cleanup}"));
            summary(&list, true)
        }
        Some(Ok(detail)) => {
            list.add(Mark::Ok, "download", format!("{detail}; {cleanup}"));
            summary(&list, false)
        }
        Some(Err(why)) => {
            list.add(Mark::Failed, "download", format!("{why}; {cleanup}"));
            summary(&list, false)
        }
    }
}

fn summary(list: &Checklist, interrupted: bool) -> ExitCode {
    let ok = list.lines.iter().filter(|(m, _, _)| *m == Mark::Ok).count();
    let skipped = list.lines.iter().filter(|(m, _, _)| *m == Mark::Skipped).count();
    #[allow(clippy::print_stdout, reason = "the checklist is the command's output")]
    {
        println!("{ok} ok, {} failed, {skipped} skipped", list.failed());
    }
    if interrupted {
        ExitCode::from(130)
    } else if list.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The download check and what it must undo.
struct Download<'a> {
    client: &'a Client,
    opts: &'a Options,
    fullname: String,
    task: Option<String>,
}

/// How often the task list is read.
const POLL: Duration = Duration::from_millis(250);
/// How long a task may sit at `pause` before it has moved at all (the
/// plugin shows a download that cannot start as paused).
const STUCK: Duration = Duration::from_secs(20);

impl<'a> Download<'a> {
    fn new(client: &'a Client, opts: &'a Options) -> Self {
        Self {
            client,
            opts,
            fullname: format!("comfy-mcp-smoke-{:08x}.safetensors", fastrand::u32(..)),
            task: None,
        }
    }

    /// Create, follow, see listed, delete. `Err` says which step failed.
    async fn run(&mut self, config: &Config) -> Result<String, String> {
        let sec = &config.security;
        let policy = DownloadPolicy::new(
            &sec.allowed_download_domains,
            Extensions::new(&sec.allowed_model_extensions),
        );
        let checked = check_download(&self.opts.download_url, Some(&self.fullname), &policy)
            .map_err(|e| format!("the download URL is refused: {e}"))?;
        let folder = self.opts.folder.as_str();
        let platform = crate::tools::download_platform(&checked.host);
        let started = Instant::now();
        let created = self
            .client
            .model_manager_download(&[
                ("type", folder),
                ("pathIndex", "0"),
                ("fullname", self.fullname.as_str()),
                ("downloadPlatform", platform),
                ("downloadUrl", self.opts.download_url.as_str()),
                ("sizeBytes", "0"),
                ("description", ""),
                ("previewFile", ""),
            ])
            .await
            .map_err(|e| format!("creating the task: {e}"))?;
        let id = created
            .pointer("/data/taskId")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!(
                    "creating the task: {}",
                    created
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("no task id in the answer")
                )
            })?
            .to_owned();
        self.task = Some(id.clone());
        // Follow it: it leaves the list when it is done; `pause` after it
        // has moved (or for too long) is the plugin's failure.
        let mut moved = false;
        let mut last_progress = 0.0;
        loop {
            if started.elapsed() > self.opts.timeout {
                return Err(format!(
                    "not finished after {} s (at {last_progress:.0} %)",
                    self.opts.timeout.as_secs()
                ));
            }
            let tasks = self
                .client
                .model_manager_tasks()
                .await
                .map_err(|e| format!("reading the tasks: {e}"))?;
            let Some(task) = tasks.get("data").and_then(Value::as_array).and_then(|list| {
                list.iter()
                    .find(|t| t.get("taskId").and_then(Value::as_str) == Some(id.as_str()))
            }) else {
                break;
            };
            let status = task.get("status").and_then(Value::as_str).unwrap_or_default();
            last_progress = task.get("progress").and_then(Value::as_f64).unwrap_or(0.0);
            match status {
                "doing" | "waiting" => moved = true,
                "pause" if moved => {
                    return Err(format!(
                        "the download stopped at {last_progress:.0} % (Model-Manager's log or WebSocket says why)"
                    ));
                }
                "pause" if started.elapsed() > STUCK => {
                    return Err(format!("the download did not start within {} s", STUCK.as_secs()));
                }
                _ => {}
            }
            tokio::time::sleep(POLL).await;
        }
        self.task = None;
        let took = started.elapsed();
        if !self.listed().await? {
            return Err(format!("the task ended but {} is not in {folder}", self.fullname));
        }
        let deleted = self
            .client
            .model_manager_delete_model(&segment(folder)?, 0, &rel_path(&self.fullname)?)
            .await
            .map_err(|e| format!("deleting the file: {e}"))?;
        if deleted.get("success").and_then(Value::as_bool) != Some(true) {
            return Err(format!("deleting the file: {deleted}"));
        }
        if self.listed().await? {
            return Err(format!("{} is still listed after it was deleted", self.fullname));
        }
        Ok(format!(
            "{} downloaded into {folder} in {:.1} s, listed, deleted",
            self.fullname,
            took.as_secs_f64()
        ))
    }

    /// Whether Model-Manager lists the file in the folder.
    async fn listed(&self) -> Result<bool, String> {
        let list = self
            .client
            .model_manager_models(&segment(&self.opts.folder)?)
            .await
            .map_err(|e| format!("listing {}: {e}", self.opts.folder))?;
        Ok(list.get("data").and_then(Value::as_array).is_some_and(|files| {
            files.iter().any(|f| {
                let base = f.get("basename").and_then(Value::as_str).unwrap_or_default();
                let ext = f.get("extension").and_then(Value::as_str).unwrap_or_default();
                format!("{base}{ext}") == self.fullname
            })
        }))
    }

    /// Cancels a task still listed and deletes a file that landed; says
    /// what it did.
    async fn clean_up(&mut self) -> String {
        let mut done = String::from("cleaned up");
        let before = done.len();
        if let Some(id) = self.task.take() {
            let cancelled = match Segment::new(&id) {
                Ok(task) => self.client.model_manager_cancel(&task).await,
                Err(e) => Err(e),
            };
            match cancelled {
                Ok(_) => {
                    let _ = write!(done, ": task {id} cancelled");
                }
                Err(e) => {
                    let _ = write!(done, ": task {id} could NOT be cancelled ({e})");
                }
            }
        }
        if matches!(self.listed().await, Ok(true)) {
            let deleted = match (Segment::new(&self.opts.folder), RelPath::new(&self.fullname)) {
                (Ok(folder), Ok(name)) => self.client.model_manager_delete_model(&folder, 0, &name).await,
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            match deleted {
                Ok(_) => {
                    let _ = write!(done, ", {} deleted", self.fullname);
                }
                Err(e) => {
                    let _ = write!(done, ", {} could NOT be deleted ({e})", self.fullname);
                }
            }
        }
        if done.len() == before {
            "nothing left behind".to_owned()
        } else {
            done
        }
    }
}

/// A name as the client's path segment, or the reason it is not one.
fn segment(s: &str) -> Result<Segment, String> {
    Segment::new(s).map_err(|e| e.to_string())
}

/// A file name (possibly under subfolders) as the client's relative path.
fn rel_path(s: &str) -> Result<RelPath, String> {
    RelPath::new(s).map_err(|e| e.to_string())
}
