//! Jobs: a submitted prompt followed to its end over the shared socket, or
//! by polling `/history` and the queue when no socket can be had.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::types::{OutputFile, output_files};
use crate::ws::Event;
use crate::{Client, Error, PromptOptions};

/// How a job is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tracking {
    /// Over the client's WebSocket.
    WebSocket,
    /// By polling `/history/{id}` and the queue.
    Polling,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobStatus {
    /// It finished.
    Completed,
    /// A node failed.
    Error,
    /// Someone interrupted it.
    Interrupted,
    /// It did not finish before the deadline.
    Timeout,
    /// It vanished from the queue and the history (ComfyUI restarted).
    Lost,
}

/// Where a job is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Steps done by the current node.
    pub step: Option<u64>,
    /// Steps in all for the current node.
    pub total: Option<u64>,
    /// The node running.
    pub node: Option<String>,
    /// 1-based position among waiting prompts, while waiting.
    pub queue_position: Option<usize>,
}

/// The end of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    /// How it ended.
    pub status: JobStatus,
    /// The files it produced.
    pub files: Vec<OutputFile>,
    /// All node outputs, as ComfyUI reported them.
    pub outputs: Map<String, Value>,
    /// Time from submission.
    pub elapsed: Duration,
    /// ComfyUI's error or interruption report, when there is one.
    pub error: Option<Value>,
}

/// A submitted prompt.
#[derive(Debug)]
pub struct Job {
    client: Client,
    prompt_id: String,
    number: Value,
    events: Option<mpsc::Receiver<Event>>,
    tracking: Tracking,
    progress: Progress,
    outputs: Map<String, Value>,
    started: Instant,
    cancel_on_timeout: bool,
    /// Set once an ending event was seen (by `wait` or `events`).
    ended: Option<(JobStatus, Option<Value>)>,
}

impl Drop for Job {
    fn drop(&mut self) {
        if let Some(hub) = self.client.hub_if_started() {
            hub.unsubscribe(&self.prompt_id);
        }
    }
}

/// The events of one job, as a stream that ends after the job's last
/// event (`ExecutionSuccess`, `ExecutionError` or `ExecutionInterrupted`).
/// Reading it keeps [`Job::progress`] current; when the job is polled (no
/// socket), it is empty.
#[derive(Debug)]
pub struct JobEvents<'a> {
    job: &'a mut Job,
}

impl JobEvents<'_> {
    /// The job's progress as of the last event read.
    #[must_use]
    pub fn progress(&self) -> &Progress {
        &self.job.progress
    }

    /// The next event, `None` once the job has ended.
    pub async fn next(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *self), cx)).await
    }
}

impl futures_core::Stream for JobEvents<'_> {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let job = &mut *self.job;
        if job.ended.is_some() {
            return Poll::Ready(None);
        }
        let Some(rx) = job.events.as_mut() else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
            Poll::Ready(Some(ev)) => {
                job.record(&ev);
                Poll::Ready(Some(ev))
            }
            other => other,
        }
    }
}

impl Client {
    /// Queues `workflow` and returns a [`Job`] that follows it. The prompt
    /// id is chosen here and registered with the socket before the prompt
    /// is sent, so no early event is missed.
    ///
    /// # Errors
    /// As [`Client::queue_prompt`].
    pub async fn submit(&self, workflow: &comfy_workflow::Workflow, mut options: PromptOptions) -> Result<Job, Error> {
        let prompt_id = options
            .prompt_id
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone();
        let mut events = None;
        let mut tracking = Tracking::Polling;
        if let Some(hub) = self.hub().await {
            events = Some(hub.subscribe(&prompt_id));
            tracking = Tracking::WebSocket;
        }
        let accepted = match self.queue_prompt(workflow, options).await {
            Ok(a) => a,
            Err(e) => {
                if let Some(hub) = self.hub_if_started() {
                    hub.unsubscribe(&prompt_id);
                }
                return Err(e);
            }
        };
        Ok(Job {
            client: self.clone(),
            prompt_id: accepted.prompt_id,
            number: accepted.number,
            events,
            tracking,
            progress: Progress::default(),
            outputs: Map::new(),
            started: Instant::now(),
            cancel_on_timeout: true,
            ended: None,
        })
    }
}

impl Job {
    /// The prompt id.
    pub fn prompt_id(&self) -> &str {
        &self.prompt_id
    }

    /// The queue number ComfyUI gave it.
    pub fn number(&self) -> &Value {
        &self.number
    }

    /// How the job is followed.
    pub fn tracking(&self) -> Tracking {
        self.tracking
    }

    /// The latest known progress.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Whether [`Job::wait`] interrupts or dequeues the job when its
    /// deadline passes (default: yes, so ComfyUI is never left busy with a
    /// job nobody waits for).
    pub fn set_cancel_on_timeout(&mut self, cancel: bool) {
        self.cancel_on_timeout = cancel;
    }

    /// Stops listening to the WebSocket for this job and follows it by
    /// polling from now on: for a socket that is connected but silent, which
    /// only polling can see past.
    pub fn follow_by_polling(&mut self) {
        self.events = None;
        self.tracking = Tracking::Polling;
    }

    /// The job's events as they come (empty when polling).
    pub fn events(&mut self) -> JobEvents<'_> {
        JobEvents { job: self }
    }

    /// Updates progress and outputs from `ev`; remembers an ending.
    fn record(&mut self, ev: &Event) {
        if let Some(status) = self.note(ev) {
            let error = match ev {
                Event::ExecutionError { data, .. } | Event::ExecutionInterrupted { data, .. } => Some(data.clone()),
                _ => None,
            };
            self.ended = Some((status, error));
        }
    }

    /// The outcome of a job whose ending event was seen. The history is
    /// preferred (it has every output) but may trail the socket a moment.
    async fn finish(&self, status: JobStatus, error: Option<Value>) -> JobOutcome {
        for _ in 0..5 {
            if let Ok(Some(outcome)) = self.outcome_from_history().await {
                return outcome;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.outcome(status, error)
    }

    fn note(&mut self, ev: &Event) -> Option<JobStatus> {
        match ev {
            Event::Executing { node, .. } => {
                // A new node resets the step count; the end (`node: None`)
                // keeps the last one.
                if node.is_some() {
                    self.progress.step = None;
                    self.progress.total = None;
                }
                self.progress.node.clone_from(node);
                self.progress.queue_position = None;
                None
            }
            Event::Progress { node, value, max, .. } => {
                self.progress.node = Some(node.clone());
                self.progress.step = Some(*value);
                self.progress.total = Some(*max);
                None
            }
            Event::Executed { node, output, .. } => {
                self.outputs.insert(node.clone(), output.clone());
                None
            }
            Event::ExecutionSuccess { .. } => Some(JobStatus::Completed),
            Event::ExecutionError { .. } => Some(JobStatus::Error),
            Event::ExecutionInterrupted { .. } => Some(JobStatus::Interrupted),
            _ => None,
        }
    }

    /// The outcome from the history entry, if the prompt has one.
    async fn outcome_from_history(&self) -> Result<Option<JobOutcome>, Error> {
        let Some(entry) = self.client.history_entry(&self.prompt_id).await? else {
            return Ok(None);
        };
        let interrupted = entry.message("execution_interrupted").cloned();
        let failed = entry.message("execution_error").cloned();
        let status = match (&interrupted, &failed, entry.status.as_ref()) {
            (Some(_), _, _) => JobStatus::Interrupted,
            (_, Some(_), _) => JobStatus::Error,
            (_, _, Some(s)) if s.status_str == "error" => JobStatus::Error,
            _ => JobStatus::Completed,
        };
        Ok(Some(JobOutcome {
            status,
            files: entry.files(),
            outputs: entry.outputs,
            elapsed: self.started.elapsed(),
            error: interrupted.or(failed),
        }))
    }

    fn outcome(&self, status: JobStatus, error: Option<Value>) -> JobOutcome {
        JobOutcome {
            status,
            files: output_files(&self.outputs),
            outputs: self.outputs.clone(),
            elapsed: self.started.elapsed(),
            error,
        }
    }

    /// Waits until the job ends or `timeout` passes. On timeout the job is
    /// interrupted (or removed from the queue if still waiting) unless
    /// [`Job::set_cancel_on_timeout`] turned that off.
    ///
    /// # Errors
    /// Only when ComfyUI cannot be reached at all while polling; a lost or
    /// timed-out job is an `Ok` outcome.
    ///
    /// # Cancel safety
    /// Dropping the future loses no state: events stay queued for the next
    /// call.
    pub async fn wait(&mut self, timeout: Duration) -> Result<JobOutcome, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let base = self.client.poll_interval();
        let mut missing = 0u32;
        let mut poll_every = if self.tracking == Tracking::WebSocket {
            base * 5
        } else {
            base
        };
        let mut next_poll = tokio::time::Instant::now() + poll_every;
        loop {
            if let Some((status, error)) = self.ended.clone() {
                return Ok(self.finish(status, error).await);
            }
            let event = if let Some(rx) = self.events.as_mut() {
                tokio::select! {
                    ev = rx.recv() => Some(ev),
                    () = tokio::time::sleep_until(next_poll.min(deadline)) => None,
                }
            } else {
                tokio::time::sleep_until(next_poll.min(deadline)).await;
                None
            };
            match event {
                Some(Some(ev)) => {
                    if matches!(ev, Event::Reconnected) {
                        next_poll = tokio::time::Instant::now();
                        continue;
                    }
                    self.record(&ev);
                    continue;
                }
                Some(None) => {
                    // The socket side went away: follow by polling.
                    self.events = None;
                    self.tracking = Tracking::Polling;
                    poll_every = base;
                    next_poll = tokio::time::Instant::now();
                    continue;
                }
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(self.time_out().await);
            }
            // Poll: history first, then the queue.
            if let Some(outcome) = self.outcome_from_history().await? {
                return Ok(outcome);
            }
            let queue = self.client.queue().await?;
            if queue.is_running(&self.prompt_id) {
                missing = 0;
                self.progress.queue_position = None;
            } else if let Some(pos) = queue.position(&self.prompt_id) {
                missing = 0;
                self.progress.queue_position = Some(pos);
            } else {
                // Between leaving the queue and entering the history a
                // prompt is briefly in neither; twice in a row is gone.
                missing += 1;
                if missing >= 2 {
                    return Ok(self.outcome(JobStatus::Lost, None));
                }
            }
            next_poll = tokio::time::Instant::now()
                + if missing > 0 {
                    base.min(Duration::from_millis(200))
                } else {
                    poll_every
                };
        }
    }

    async fn time_out(&self) -> JobOutcome {
        if self.cancel_on_timeout {
            let _ = self.client.cancel_job(&self.prompt_id).await;
        }
        self.outcome(JobStatus::Timeout, None)
    }
}
