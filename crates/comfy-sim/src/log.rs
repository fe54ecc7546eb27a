//! The server log ComfyUI keeps for `/internal/logs` and streams to
//! subscribed sockets as `logs` events.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::ws::Hub;

/// Log entries kept (ComfyUI keeps a bounded deque too).
const MAX_ENTRIES: usize = 1000;

/// The log and who subscribed to it.
#[derive(Debug, Default)]
pub(crate) struct Log {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: VecDeque<(String, String)>,
    subscribers: HashSet<String>,
}

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends a line and pushes it to subscribed sockets.
    pub(crate) fn write(&self, hub: &Hub, message: &str) {
        let stamp = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        let t = stamp.trim_end_matches('Z').to_owned();
        let subscribers: Vec<String> = {
            let mut inner = self.lock();
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.pop_front();
            }
            inner.entries.push_back((t.clone(), message.to_owned()));
            inner.subscribers.iter().cloned().collect()
        };
        for sid in subscribers {
            hub.send_json(
                "logs",
                json!({"entries": [{"t": t, "m": message}], "size": null}),
                Some(&sid),
            );
        }
    }

    /// `PATCH /internal/logs/subscribe`.
    pub(crate) fn subscribe(&self, client_id: &str, enabled: bool) {
        let mut inner = self.lock();
        if enabled {
            inner.subscribers.insert(client_id.to_owned());
        } else {
            inner.subscribers.remove(client_id);
        }
    }

    /// `GET /internal/logs`: every message, joined.
    pub(crate) fn text(&self) -> Value {
        Value::String(self.lock().entries.iter().map(|(_, m)| m.as_str()).collect())
    }

    /// `GET /internal/logs/raw`.
    pub(crate) fn raw(&self) -> Value {
        let entries: Vec<Value> = self
            .lock()
            .entries
            .iter()
            .map(|(t, m)| json!({"t": t, "m": m}))
            .collect();
        json!({"entries": entries, "size": {"cols": 80, "rows": 24}})
    }
}
