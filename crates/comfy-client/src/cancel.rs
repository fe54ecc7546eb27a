//! Cancelling jobs by prompt id, by whichever means the server has.
//!
//! Why: ComfyUI 0.33.0 cancels one job in one request,
//! `POST /api/jobs/{id}/cancel`, answering `{"cancelled": bool}`. The server
//! looks the job up itself and, under its queue lock, interrupts it only if
//! it is still the one running, or takes it out of the queue if it still
//! waits (and interrupts it if it started in between). Older servers have no
//! such route (0.8.0 answers 405): there a cancel is the client's two steps,
//! read `/queue`, then `POST /interrupt {"prompt_id"}` for the running job or
//! `POST /queue {"delete": [...]}` for a waiting one, with the gap between
//! the two steps that the route closes.
//!
//! The choice is made once per client (a client talks to one server), from
//! `comfyui_version` in `/system_stats`: 0.8.0 and older never had the route
//! (it came in June 2026), so they get the two steps without a probe; newer
//! versions, and servers that name no version, get the route. A route that
//! answers 404 or 405 switches this client to the two steps for good, and
//! the job is cancelled that way in the same call. When `/system_stats`
//! cannot be read the call uses the two steps and the choice stays open.
//!
//! Cancelling is idempotent on both paths, but it is a `POST`, so the
//! transport sends it once; nothing here touches `POST /prompt`.

use std::sync::atomic::{AtomicU8, Ordering};

use http::StatusCode;
use serde_json::{Value, json};

use crate::name::Segment;
use crate::url::segment;
use crate::{Client, Error};

/// The newest ComfyUI known to lack the cancel route.
const LAST_WITHOUT_ROUTE: (u64, u64, u64) = (0, 8, 0);

/// How this client cancels jobs on its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelMethod {
    /// `POST /api/jobs/{id}/cancel` (ComfyUI 0.33.0 and other newer ones).
    JobsRoute,
    /// `GET /queue`, then `POST /interrupt` or `POST /queue {"delete"}`.
    InterruptOrDelete,
}

/// What cancelling one job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cancelled {
    /// It was running and was interrupted.
    Interrupted,
    /// It was waiting and was taken out of the queue.
    Dequeued,
    /// The server cancelled it but did not say in which state: it was
    /// neither running nor waiting a moment before, and then was one of the
    /// two (a job queued in between).
    Cancelled,
    /// It was neither running nor waiting (finished, or never known):
    /// nothing was done.
    NotActive,
}

impl Cancelled {
    /// Whether the server stopped or removed a job.
    #[must_use]
    pub fn acted(self) -> bool {
        self != Cancelled::NotActive
    }
}

/// The cached choice: 0 while undecided, then the route or the two steps.
#[derive(Debug, Default)]
pub(crate) struct CancelChoice(AtomicU8);

const ROUTE: u8 = 1;
const TWO_STEPS: u8 = 2;

impl CancelChoice {
    fn get(&self) -> Option<CancelMethod> {
        match self.0.load(Ordering::Acquire) {
            ROUTE => Some(CancelMethod::JobsRoute),
            TWO_STEPS => Some(CancelMethod::InterruptOrDelete),
            _ => None,
        }
    }

    fn set(&self, method: CancelMethod) {
        let v = match method {
            CancelMethod::JobsRoute => ROUTE,
            CancelMethod::InterruptOrDelete => TWO_STEPS,
        };
        self.0.store(v, Ordering::Release);
    }
}

/// `major.minor.patch` at the start of a version string (`0.33.0`,
/// `v0.3.40`, `0.45.1-rc1`); `None` for anything else.
pub(crate) fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    let s = s.trim().trim_start_matches('v');
    let mut parts = s.splitn(3, '.');
    let num = |p: &str| -> Option<u64> {
        let digits: &str = &p[..p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len())];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        digits.parse().ok()
    };
    let major = num(parts.next()?)?;
    let minor = num(parts.next()?)?;
    let patch = parts.next().map_or(Some(0), num)?;
    Some((major, minor, patch))
}

/// The method for a server that reports `version` in `/system_stats`
/// (`None`: it names none).
pub(crate) fn method_for(version: Option<&str>) -> CancelMethod {
    match version.and_then(parse_version) {
        Some(v) if v <= LAST_WITHOUT_ROUTE => CancelMethod::InterruptOrDelete,
        _ => CancelMethod::JobsRoute,
    }
}

impl Client {
    /// How this client cancels jobs: decided on first use from the version
    /// in `/system_stats` and kept (see the module docs). When
    /// `/system_stats` cannot be read, [`CancelMethod::InterruptOrDelete`]
    /// for now, and the next call asks again.
    pub async fn cancel_method(&self) -> CancelMethod {
        if let Some(m) = self.inner.cancel.get() {
            return m;
        }
        match self.system_stats().await {
            Ok(stats) => {
                let method = method_for(stats.pointer("/system/comfyui_version").and_then(Value::as_str));
                self.inner.cancel.set(method);
                method
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the ComfyUI version; cancelling in two steps");
                CancelMethod::InterruptOrDelete
            }
        }
    }

    /// Cancels one job: interrupts it when it runs, takes it out of the
    /// queue when it waits. See [`Client::cancel_jobs`].
    ///
    /// # Errors
    /// As [`Client::cancel_jobs`].
    pub async fn cancel_job(&self, prompt_id: &str) -> Result<Cancelled, Error> {
        let mut out = self.cancel_jobs(std::slice::from_ref(&prompt_id.to_owned())).await?;
        Ok(out.pop().unwrap_or(Cancelled::NotActive))
    }

    /// Cancels these jobs, one outcome per id in order. One `GET /queue`
    /// first says which ran and which waited (so the outcome can name it);
    /// then each is cancelled by the server's cancel route, or, on servers
    /// without it, the running one interrupted and the waiting ones removed
    /// in one request.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an id that cannot be a path segment
    /// (nothing is sent then); otherwise the first failed request's error,
    /// with the jobs before it already cancelled.
    pub async fn cancel_jobs(&self, prompt_ids: &[String]) -> Result<Vec<Cancelled>, Error> {
        let segments = prompt_ids
            .iter()
            .map(|id| Segment::new(id))
            .collect::<Result<Vec<_>, _>>()?;
        if prompt_ids.is_empty() {
            return Ok(Vec::new());
        }
        let queue = self.queue().await?;
        let seen = |id: &str| {
            if queue.is_running(id) {
                Cancelled::Interrupted
            } else if queue.position(id).is_some() {
                Cancelled::Dequeued
            } else {
                Cancelled::Cancelled
            }
        };
        if self.cancel_method().await == CancelMethod::JobsRoute {
            let mut out = Vec::with_capacity(prompt_ids.len());
            for (id, seg) in prompt_ids.iter().zip(&segments) {
                match self.cancel_by_route(seg).await? {
                    Some(true) => out.push(seen(id)),
                    Some(false) => out.push(Cancelled::NotActive),
                    None => {
                        self.route_missing();
                        let rest = self.cancel_in_two_steps(&prompt_ids[out.len()..]).await?;
                        out.extend(rest);
                        break;
                    }
                }
            }
            return Ok(out);
        }
        self.cancel_in_two_steps(prompt_ids).await
    }

    /// Stops a job without first reading the queue, for callers that need
    /// no account of what happened (a guard on an abandoned call, a
    /// watchdog): one `POST /api/jobs/{id}/cancel` where the server has it,
    /// else `/interrupt` for the id and a `/queue` delete of it, as older
    /// servers need. Once the method is known, the first request leaves at
    /// once.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an id that cannot be a path segment;
    /// otherwise the failed request's error.
    pub async fn stop_job(&self, prompt_id: &str) -> Result<(), Error> {
        let seg = Segment::new(prompt_id)?;
        if self.cancel_method().await == CancelMethod::JobsRoute {
            if self.cancel_by_route(&seg).await?.is_some() {
                return Ok(());
            }
            self.route_missing();
        }
        self.interrupt(Some(prompt_id)).await?;
        self.delete_from_queue(std::slice::from_ref(&prompt_id.to_owned()))
            .await
    }

    /// The server has no cancel route after all: two steps from now on.
    fn route_missing(&self) {
        tracing::info!("ComfyUI has no POST /api/jobs/{{id}}/cancel; cancelling in two steps from now on");
        self.inner.cancel.set(CancelMethod::InterruptOrDelete);
    }

    /// `POST /api/jobs/{id}/cancel`: `Some(cancelled)`, or `None` when the
    /// server answers 404 or 405 (no such route).
    async fn cancel_by_route(&self, id: &Segment) -> Result<Option<bool>, Error> {
        const WHAT: &str = "cancelling a job";
        let target = format!("/api/jobs/{}/cancel", segment(id.as_str()));
        let reply = self.post_json(&target, &json!({}), WHAT).await?;
        if reply.status == StatusCode::NOT_FOUND || reply.status == StatusCode::METHOD_NOT_ALLOWED {
            return Ok(None);
        }
        crate::api::check(&reply, WHAT)?;
        let v: Value = crate::api::decode(&reply.body, WHAT)?;
        match v.get("cancelled").and_then(Value::as_bool) {
            Some(b) => Ok(Some(b)),
            None => Err(Error::Decode {
                what: WHAT.to_owned(),
                reason: "no boolean `cancelled` in the answer".to_owned(),
            }),
        }
    }

    /// The two steps of servers without the cancel route: one `GET /queue`,
    /// `/interrupt` for the running job, one `/queue` delete for the waiting
    /// ones; then, if any were waiting, the queue once more, and a job that
    /// started meanwhile is interrupted too (what 0.33.0's route does under
    /// its lock).
    async fn cancel_in_two_steps(&self, prompt_ids: &[String]) -> Result<Vec<Cancelled>, Error> {
        let queue = self.queue().await?;
        let mut out = Vec::with_capacity(prompt_ids.len());
        let mut waiting = Vec::new();
        let mut running = Vec::new();
        for id in prompt_ids {
            if queue.is_running(id) {
                if !running.contains(id) {
                    running.push(id.clone());
                }
                out.push(Cancelled::Interrupted);
            } else if queue.position(id).is_some() {
                if !waiting.contains(id) {
                    waiting.push(id.clone());
                }
                out.push(Cancelled::Dequeued);
            } else {
                out.push(Cancelled::NotActive);
            }
        }
        // The waiting jobs leave the queue before the running one is
        // interrupted: the other order lets the next waiting job start in
        // between, so it would run for a moment before being stopped.
        if !waiting.is_empty() {
            self.delete_from_queue(&waiting).await?;
        }
        for id in &running {
            self.interrupt(Some(id)).await?;
        }
        if !waiting.is_empty() {
            let now = self.queue().await?;
            for (id, state) in prompt_ids.iter().zip(out.iter_mut()) {
                if *state == Cancelled::Dequeued && now.is_running(id) {
                    self.interrupt(Some(id)).await?;
                    *state = Cancelled::Interrupted;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_decide() {
        assert_eq!(parse_version("0.33.0"), Some((0, 33, 0)));
        assert_eq!(parse_version("v0.3.40"), Some((0, 3, 40)));
        assert_eq!(parse_version("0.45.1-rc1"), Some((0, 45, 1)));
        assert_eq!(parse_version("1.2"), Some((1, 2, 0)));
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("banana"), None);
        assert_eq!(parse_version("0.99999999999999999999.0"), None);
        assert_eq!(method_for(Some("0.8.0")), CancelMethod::InterruptOrDelete);
        assert_eq!(method_for(Some("0.3.40")), CancelMethod::InterruptOrDelete);
        assert_eq!(method_for(Some("0.7.9")), CancelMethod::InterruptOrDelete);
        assert_eq!(method_for(Some("0.8.1")), CancelMethod::JobsRoute);
        assert_eq!(method_for(Some("0.33.0")), CancelMethod::JobsRoute);
        assert_eq!(method_for(Some("1.0.0")), CancelMethod::JobsRoute);
        assert_eq!(method_for(None), CancelMethod::JobsRoute);
        assert_eq!(method_for(Some("unknown")), CancelMethod::JobsRoute);
    }
}
