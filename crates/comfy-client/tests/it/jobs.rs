//! Every job path: success, cached, error, interrupt, timeout, socket drop,
//! polling, restart, other clients' events.

use std::time::Duration;

use comfy_client::{Client, Event, JobStatus, PromptOptions, Tracking};
use comfy_sim::{Faults, WsFault};

use crate::{basic, client, sim, sleeping, workflow};

const LONG: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_job_completes_over_the_websocket_with_its_files_and_events() {
    let sim = sim().await;
    let c = client(&sim);
    let progress = workflow(
        r#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
            "2": {"class_type": "FixtureProgress", "inputs": {"image": ["1", 0], "steps": 3, "delay": 0.01, "seed": 1}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "p"}}}"#,
    );
    let mut job = c.submit(&progress, PromptOptions::default()).await.unwrap();
    assert_eq!(job.tracking(), Tracking::WebSocket);
    // The stream ends by itself after the job's last event.
    let mut seen = Vec::new();
    let mut events = job.events();
    while let Some(ev) = events.next().await {
        if let Event::Progress { value, max, .. } = &ev {
            assert_eq!(
                (events.progress().step, events.progress().total),
                (Some(*value), Some(*max))
            );
        }
        seen.push(ev);
    }
    assert!(matches!(seen.last(), Some(Event::ExecutionSuccess { .. })), "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Progress { value: 3, max: 3, .. }))
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Preview { prompt_id: Some(p), .. } if p == job.prompt_id()))
    );
    assert!(seen.iter().all(|e| e.prompt_id().is_none_or(|p| p == job.prompt_id())));
    let outcome = job.wait(LONG).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Completed);
    assert_eq!(outcome.files[0].file.filename, "p_00001_.png");
    // The same prompt again is cached, and still completes with its files.
    let mut again = c.submit(&progress, PromptOptions::default()).await.unwrap();
    let outcome = again.wait(LONG).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Completed);
    assert_eq!(outcome.files[0].file.filename, "p_00001_.png");
}

#[tokio::test]
async fn errors_and_interrupts_are_reported_with_comfyuis_report() {
    let sim = sim().await;
    let c = client(&sim);
    let failing = workflow(
        r#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
            "2": {"class_type": "FixtureFail", "inputs": {"image": ["1", 0], "message": "boom"}},
            "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}"#,
    );
    let outcome = c
        .submit(&failing, PromptOptions::default())
        .await
        .unwrap()
        .wait(LONG)
        .await
        .unwrap();
    assert_eq!(outcome.status, JobStatus::Error);
    assert_eq!(outcome.error.unwrap()["exception_message"], "boom\n");
    let mut job = c.submit(&sleeping(30.0, 1), PromptOptions::default()).await.unwrap();
    let c2 = c.clone();
    let id = job.prompt_id().to_owned();
    tokio::spawn(async move {
        while !c2.queue().await.unwrap().is_running(&id) {}
        c2.interrupt(Some(&id)).await.unwrap();
    });
    let outcome = job.wait(LONG).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Interrupted);
}

#[tokio::test]
async fn a_timed_out_job_is_interrupted_or_dequeued() {
    let sim = sim().await;
    let c = client(&sim);
    let mut running = c.submit(&sleeping(30.0, 1), PromptOptions::default()).await.unwrap();
    let mut waiting = c.submit(&sleeping(30.0, 2), PromptOptions::default()).await.unwrap();
    let outcome = waiting.wait(Duration::from_millis(300)).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Timeout);
    assert!(
        c.queue().await.unwrap().pending.is_empty(),
        "the waiting job left the queue"
    );
    let outcome = running.wait(Duration::from_millis(300)).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Timeout);
    // It was interrupted, so ComfyUI is free again.
    let next = c
        .submit(&basic(1), PromptOptions::default())
        .await
        .unwrap()
        .wait(LONG)
        .await
        .unwrap();
    assert_eq!(next.status, JobStatus::Completed);
}

#[tokio::test]
async fn polling_follows_a_job_when_there_is_no_websocket() {
    let sim = sim().await;
    let c = Client::builder(sim.url())
        .websocket(false)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut job = c.submit(&basic(7), PromptOptions::default()).await.unwrap();
    assert_eq!(job.tracking(), Tracking::Polling);
    let outcome = job.wait(LONG).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Completed);
    assert_eq!(outcome.files.len(), 1);
}

#[tokio::test]
async fn a_refused_websocket_falls_back_to_polling() {
    let sim = comfy_sim::Sim::builder()
        .faults(Faults::none().ws(WsFault::Silent))
        .start()
        .await
        .unwrap();
    let c = client(&sim);
    // The socket opens but stays silent: the job still ends, by polling.
    let outcome = c
        .submit(&basic(9), PromptOptions::default())
        .await
        .unwrap()
        .wait(LONG)
        .await
        .unwrap();
    assert_eq!(outcome.status, JobStatus::Completed);
}

#[tokio::test]
async fn a_dropped_socket_reconnects_and_nothing_is_missed() {
    let sim = sim().await;
    let c = client(&sim);
    let mut first = c.submit(&basic(1), PromptOptions::default()).await.unwrap();
    assert_eq!(first.wait(LONG).await.unwrap().status, JobStatus::Completed);
    // Every socket from now on drops after two messages.
    sim.set_faults(Faults::none().ws(WsFault::DropAfter(2)));
    sim.restart();
    let mut job = c.submit(&sleeping(0.3, 4), PromptOptions::default()).await.unwrap();
    let outcome = job.wait(LONG).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Completed);
}

#[tokio::test]
async fn a_job_forgotten_by_a_restart_is_lost_not_polled_forever() {
    let sim = sim().await;
    let c = client(&sim);
    let mut job = c.submit(&sleeping(30.0, 5), PromptOptions::default()).await.unwrap();
    while !c.queue().await.unwrap().is_running(job.prompt_id()) {}
    sim.restart();
    let outcome = job.wait(LONG).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Lost);
}

#[tokio::test]
async fn other_clients_events_never_reach_a_job() {
    let sim = sim().await;
    let mine = client(&sim);
    let theirs = client(&sim);
    let mut job = mine.submit(&sleeping(0.2, 6), PromptOptions::default()).await.unwrap();
    let mut other = theirs.submit(&basic(3), PromptOptions::default()).await.unwrap();
    assert_eq!(other.wait(LONG).await.unwrap().status, JobStatus::Completed);
    let outcome = job.wait(LONG).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Completed);
    assert!(
        outcome.files.iter().all(|f| f.file.kind == "temp"),
        "only this job's outputs"
    );
}

#[tokio::test]
async fn a_timed_out_job_can_be_left_running() {
    let sim = sim().await;
    let c = client(&sim);
    let mut job = c.submit(&sleeping(30.0, 7), PromptOptions::default()).await.unwrap();
    job.set_cancel_on_timeout(false);
    let outcome = job.wait(Duration::from_millis(300)).await.unwrap();
    assert_eq!(outcome.status, JobStatus::Timeout);
    assert!(
        c.queue().await.unwrap().is_running(job.prompt_id()),
        "left running as asked"
    );
    c.interrupt(Some(job.prompt_id())).await.unwrap();
    assert_eq!(job.wait(LONG).await.unwrap().status, JobStatus::Interrupted);
}

#[tokio::test]
async fn junk_on_the_socket_is_skipped_and_counted() {
    let sim = comfy_sim::Sim::builder()
        .steps_per_second(500.0)
        .faults(Faults::none().ws(WsFault::Junk))
        .start()
        .await
        .unwrap();
    let c = client(&sim);
    let mut job = c.submit(&basic(5), PromptOptions::default()).await.unwrap();
    assert_eq!(job.tracking(), Tracking::WebSocket);
    let mut events = job.events();
    let mut last = None;
    while let Some(ev) = events.next().await {
        last = Some(ev);
    }
    assert!(matches!(last, Some(Event::ExecutionSuccess { .. })), "{last:?}");
    assert!(c.skipped_messages() > 0);
    assert_eq!(job.wait(LONG).await.unwrap().status, JobStatus::Completed);
}
