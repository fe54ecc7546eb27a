//! Jobs abandoned mid-wait: a call that the client cancels (or that the
//! deadline ends) interrupts or dequeues its job, so ComfyUI is never left
//! busy for nobody. The cancels run in the background and are counted, so
//! the server can let them land before it exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::Instrument;

/// Cancels of abandoned jobs still on their way to ComfyUI, so that the
/// server can let them land before it exits (a client that goes away
/// closes stdin, and the process would otherwise end mid-request).
#[derive(Debug, Default)]
pub struct PendingCancels {
    count: AtomicUsize,
    done: tokio::sync::Notify,
}

impl PendingCancels {
    /// Runs `stop_job` for `prompt_id` in the background, counted.
    fn spawn(self: &Arc<Self>, rt: &tokio::runtime::Handle, client: comfy_client::Client, prompt_id: String) {
        self.count.fetch_add(1, Ordering::AcqRel);
        let me = Arc::clone(self);
        rt.spawn(
            async move {
                let _ = client.stop_job(&prompt_id).await;
                if me.count.fetch_sub(1, Ordering::AcqRel) == 1 {
                    me.done.notify_waiters();
                }
            }
            .in_current_span(),
        );
    }

    /// Waits until no cancel is on its way, or `limit` passes.
    pub async fn settle(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.done.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

/// Interrupts or dequeues a job when dropped while armed (the caller was
/// cancelled or timed out mid-wait).
pub(super) struct JobGuard {
    pub(super) client: comfy_client::Client,
    pub(super) prompt_id: String,
    pub(super) armed: bool,
    pub(super) pending: Arc<PendingCancels>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            self.pending
                .spawn(&rt, self.client.clone(), std::mem::take(&mut self.prompt_id));
        }
    }
}
