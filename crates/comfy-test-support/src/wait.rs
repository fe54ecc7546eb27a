//! The one bounded async wait the integration tests share.
//!
//! Tests wait on events wherever there is one. Some state has none a test
//! can see: ComfyUI sends a job's events only to the client that queued it
//! (the simulator does the same, and in the MCP tests that client is the
//! server under test), and a history or audit record appears without a
//! message. For those, [`until`] asks again at a short interval and gives
//! up after a deadline, naming what it waited for.

use std::time::Duration;

/// How long [`until`] waits between two probes.
const POLL: Duration = Duration::from_millis(20);

/// Calls `probe` until it answers `Some`, and returns that; fails the test
/// (panics) after `limit`, saying what it waited for.
///
/// # Panics
/// When `limit` passes before `probe` answers `Some`.
pub async fn until<T, F>(what: &str, limit: Duration, mut probe: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "waited {limit:?} for {what}");
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn until_returns_the_first_answer() {
        let calls = Cell::new(0);
        let got = super::until("the third call", Duration::from_secs(1), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "waited 100ms for nothing")]
    async fn until_fails_naming_what_it_waited_for() {
        super::until("nothing", Duration::from_millis(100), || async { None::<()> }).await;
    }
}
