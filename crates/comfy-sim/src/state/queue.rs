//! The queue and the history.
//!
//! The pending queue is a binary min-heap laid out as CPython's `heapq`
//! lays it out, because `GET /queue` shows the raw array and clients see
//! its order; the sift functions follow `heapq` line for line. The
//! `impl Shared` block here holds the queue and history routes
//! (`/queue`, `/interrupt`, `/api/jobs/.../cancel`, `/history`).

use serde_json::{Map, Number, Value, json};

use super::{Shared, truthy};

/// History entries kept, as ComfyUI's `MAXIMUM_HISTORY_SIZE`.
const MAX_HISTORY: usize = 10_000;

/// One queued prompt.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) number: Number,
    pub(crate) id: String,
    pub(crate) prompt: Value,
    pub(crate) extra_data: Value,
    pub(crate) outputs: Vec<String>,
    /// Whether the submission carried a Comfy account key
    /// (`extra_data.api_key_comfy_org`), which ComfyUI keeps apart from
    /// the queue and the history for paid API nodes.
    pub(crate) account_key: bool,
}

impl Job {
    pub(crate) fn client_id(&self) -> Option<String> {
        self.extra_data
            .get("client_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    pub(crate) fn create_time(&self) -> Option<u64> {
        self.extra_data.get("create_time").and_then(Value::as_u64)
    }

    /// The 5-element queue/history tuple.
    pub(crate) fn tuple(&self) -> Value {
        json!([self.number, self.id, self.prompt, self.extra_data, self.outputs])
    }

    /// Heap order: number, then prompt id.
    fn less(&self, other: &Job) -> bool {
        let (a, b) = (
            self.number.as_f64().unwrap_or(0.0),
            other.number.as_f64().unwrap_or(0.0),
        );
        a < b || (a.total_cmp(&b).is_eq() && self.id < other.id)
    }
}

/// Mutable state behind one lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) pending: Vec<Job>,
    pub(crate) running: Option<Job>,
    pub(crate) counter: i64,
    pub(crate) history: Map<String, Value>,
    /// Set by `POST /interrupt`; cleared when the next prompt starts.
    pub(crate) interrupt: bool,
    /// Bumped by a simulated restart, so a job that was running then does
    /// not write its outcome afterwards.
    pub(crate) epoch: u64,
    /// Node signature → (outputs, ui) of the last prompt (ComfyUI's classic
    /// cache keeps only what the latest prompt used).
    pub(crate) cache: std::collections::HashMap<String, crate::exec::Cached>,
    /// `PreviewImage` name suffix per (node id, class), kept while cached.
    pub(crate) preview_suffix: std::collections::HashMap<String, String>,
}

impl State {
    pub(crate) fn remaining(&self) -> usize {
        self.pending.len() + usize::from(self.running.is_some())
    }

    pub(super) fn heap_push(&mut self, job: Job) {
        self.pending.push(job);
        let last = self.pending.len() - 1;
        sift_down(&mut self.pending, 0, last);
    }

    /// `heapq.heappop`.
    pub(crate) fn heap_pop(&mut self) -> Option<Job> {
        let last = self.pending.pop()?;
        if self.pending.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.pending[0], last);
        sift_up(&mut self.pending, 0);
        Some(top)
    }

    pub(super) fn heapify(&mut self) {
        let n = self.pending.len();
        for i in (0..n / 2).rev() {
            sift_up(&mut self.pending, i);
        }
    }
}

/// CPython `heapq._siftdown`: moves the item at `pos` up towards `start`.
fn sift_down(heap: &mut [Job], start: usize, mut pos: usize) {
    while pos > start {
        let parent = (pos - 1) / 2;
        if heap[pos].less(&heap[parent]) {
            heap.swap(pos, parent);
            pos = parent;
        } else {
            break;
        }
    }
}

/// CPython `heapq._siftup`: sinks the item at `pos` to a leaf along the
/// smaller children, then sifts it back up.
fn sift_up(heap: &mut [Job], mut pos: usize) {
    let end = heap.len();
    let start = pos;
    let mut child = 2 * pos + 1;
    while child < end {
        let right = child + 1;
        if right < end && !heap[child].less(&heap[right]) {
            child = right;
        }
        heap.swap(pos, child);
        pos = child;
        child = 2 * pos + 1;
    }
    sift_down(heap, start, pos);
}

impl Shared {
    pub(crate) fn queue_json(&self) -> Value {
        let st = self.lock();
        json!({
            "queue_running": st.running.iter().map(Job::tuple).collect::<Vec<_>>(),
            "queue_pending": st.pending.iter().map(Job::tuple).collect::<Vec<_>>(),
        })
    }

    /// `POST /queue`: clear and/or delete pending items.
    pub(crate) fn queue_post(&self, body: &Value) {
        if body.get("clear").is_some_and(truthy) {
            let remaining = {
                let mut st = self.lock();
                st.pending.clear();
                st.remaining()
            };
            self.broadcast_status(remaining);
        }
        if let Some(Value::Array(ids)) = body.get("delete") {
            for id in ids.iter().filter_map(Value::as_str) {
                let mut st = self.lock();
                let Some(pos) = st.pending.iter().position(|j| j.id == id) else {
                    continue;
                };
                let sends = if st.pending.len() == 1 { 2 } else { 1 };
                st.pending.remove(pos);
                st.heapify();
                let remaining = st.remaining();
                drop(st);
                for _ in 0..sends {
                    self.broadcast_status(remaining);
                }
            }
        }
    }

    /// `POST /api/jobs/{id}/cancel` (0.33.0): interrupts the job when it
    /// runs, removes it when it waits; whether it did either.
    pub(crate) fn cancel_job(&self, id: &str) -> bool {
        let (running, pending) = {
            let st = self.lock();
            (
                st.running.as_ref().is_some_and(|j| j.id == id),
                st.pending.iter().any(|j| j.id == id),
            )
        };
        if running {
            self.log.write(&self.hub, &format!("Cancelling running prompt {id}\n"));
            let mut st = self.lock();
            if st.running.as_ref().is_some_and(|j| j.id == id) {
                st.interrupt = true;
            }
        } else if pending {
            self.log.write(&self.hub, &format!("Cancelling pending prompt {id}\n"));
            self.queue_post(&json!({"delete": [id]}));
        }
        running || pending
    }

    /// `POST /interrupt`: global, or only if `prompt_id` is running; logged
    /// as ComfyUI logs it.
    pub(crate) fn interrupt(&self, prompt_id: Option<&str>) {
        let line = {
            let mut st = self.lock();
            match prompt_id {
                Some(id) if st.running.as_ref().is_none_or(|j| j.id != id) => {
                    format!("Prompt {id} is not currently running, skipping interrupt\n")
                }
                Some(id) => {
                    st.interrupt = true;
                    format!("Interrupting prompt {id}\n")
                }
                None => {
                    st.interrupt = true;
                    "Global interrupt (no prompt_id specified)\n".to_owned()
                }
            }
        };
        self.log.write(&self.hub, &line);
    }

    pub(crate) fn history_json(&self, max_items: Option<i64>, offset: i64) -> Value {
        let st = self.lock();
        let len = st.history.len() as i64;
        let mut offset = offset;
        if offset < 0
            && let Some(max) = max_items
        {
            offset = len - max;
        }
        let mut out = Map::new();
        for (i, (k, v)) in st.history.iter().enumerate() {
            if i as i64 >= offset {
                out.insert(k.clone(), v.clone());
                if max_items.is_some_and(|max| out.len() as i64 >= max) {
                    break;
                }
            }
        }
        Value::Object(out)
    }

    pub(crate) fn history_one(&self, id: &str) -> Value {
        let st = self.lock();
        st.history.get(id).map_or_else(|| json!({}), |e| json!({ id: e }))
    }

    pub(crate) fn history_post(&self, body: &Value) {
        let mut st = self.lock();
        if body.get("clear").is_some_and(truthy) {
            st.history.clear();
        }
        if let Some(Value::Array(ids)) = body.get("delete") {
            for id in ids.iter().filter_map(Value::as_str) {
                st.history.shift_remove(id);
            }
        }
    }

    pub(crate) fn add_history(&self, id: String, entry: Value) {
        let mut st = self.lock();
        if st.history.len() >= MAX_HISTORY
            && let Some(oldest) = st.history.keys().next().cloned()
        {
            st.history.shift_remove(&oldest);
        }
        st.history.insert(id, entry);
    }
}
