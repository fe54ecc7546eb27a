//! Cancelling by id: the choice between 0.33.0's cancel route and the
//! older interrupt-or-delete, made once per client, against comfy-sim in
//! both versions; the fallback on a 404 or 405 and an unreadable version
//! with wiremock, where the exact request sequence is the point.

use std::time::Duration;

use comfy_client::{CancelMethod, Cancelled, Client, Event, PromptOptions};
use comfy_sim::{ComfyVersion, Sim, SimHandle};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{client, sleeping};

const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

async fn sim_of(version: ComfyVersion) -> SimHandle {
    Sim::builder()
        .comfyui_version(version)
        .steps_per_second(500.0)
        .start()
        .await
        .unwrap()
}

/// Two sleeping jobs, the first running, the second waiting.
async fn running_and_waiting(c: &Client) -> (String, String) {
    let mut a = c.submit(&sleeping(30.0, 1), PromptOptions::default()).await.unwrap();
    let b = c.submit(&sleeping(30.0, 2), PromptOptions::default()).await.unwrap();
    // This client queued it, so ComfyUI tells its socket when it starts.
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut events = a.events();
        while let Some(ev) = events.next().await {
            if matches!(ev, Event::ExecutionStart { .. }) {
                return;
            }
        }
        panic!("the first job's events ended before it started");
    })
    .await
    .expect("the first job runs");
    (a.prompt_id().to_owned(), b.prompt_id().to_owned())
}

/// The job's `status_str` once it is in the history.
async fn ended(c: &Client, id: &str) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(entry) = c.history_entry(id).await.unwrap() {
                return entry.status.map(|s| s.status_str).unwrap_or_default();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job ends")
}

#[tokio::test]
async fn on_0_33_jobs_are_cancelled_by_the_route_and_on_0_8_in_two_steps() {
    for (version, expected) in [
        (ComfyVersion::V0_33_0, CancelMethod::JobsRoute),
        (ComfyVersion::V0_8_0, CancelMethod::InterruptOrDelete),
    ] {
        let sim = sim_of(version).await;
        let c = client(&sim);
        let (a, b) = running_and_waiting(&c).await;
        // The waiting one, the running one, then both again and an unknown id.
        assert_eq!(c.cancel_job(&b).await.unwrap(), Cancelled::Dequeued, "{version}");
        assert_eq!(c.cancel_job(&a).await.unwrap(), Cancelled::Interrupted, "{version}");
        let status = ended(&c, &a).await;
        assert_eq!(status, "error", "{version}");
        let again = c
            .cancel_jobs(&[a.clone(), b.clone(), UNKNOWN.to_owned()])
            .await
            .unwrap();
        assert!(again.iter().all(|o| !o.acted()), "{version}: {again:?}");
        assert_eq!(c.cancel_method().await, expected, "{version}");
        assert!(c.queue().await.unwrap().pending.is_empty(), "{version}");
        assert!(
            c.history_entry(&b).await.unwrap().is_none(),
            "{version}: a dequeued job never ran"
        );
        // The choice was made from /system_stats once, and 0.8.0 was never
        // sent to the route it lacks.
        assert_eq!(sim.requests("/system_stats"), 1, "{version}");
        let by_route = sim.requests("/jobs/{id}/cancel");
        let interrupts = sim.requests("/interrupt");
        if expected == CancelMethod::JobsRoute {
            assert_eq!((by_route, interrupts), (5, 0), "{version}");
        } else {
            assert_eq!(by_route, 0, "{version}");
            assert_eq!(interrupts, 1, "{version}");
        }
    }
}

#[tokio::test]
async fn a_timed_out_wait_cancels_by_the_route_on_0_33() {
    let sim = sim_of(ComfyVersion::V0_33_0).await;
    let c = client(&sim);
    let mut job = c.submit(&sleeping(30.0, 7), PromptOptions::default()).await.unwrap();
    let outcome = job.wait(Duration::from_millis(300)).await.unwrap();
    assert_eq!(outcome.status, comfy_client::JobStatus::Timeout);
    assert_eq!(sim.requests("/jobs/{id}/cancel"), 1);
    assert_eq!(ended(&c, job.prompt_id()).await, "error");
}

fn queue_with(running: &str, pending: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "queue_running": [[0, running, {}, {}, []]],
        "queue_pending": [[1, pending, {}, {}, []]],
    }))
}

async fn server_with_version(version: &str, route_status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/system_stats"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"system": {"comfyui_version": version}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/queue"))
        .respond_with(queue_with(
            "11111111-1111-4111-8111-111111111111",
            "22222222-2222-4222-8222-222222222222",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/jobs/[^/]+/cancel$"))
        .respond_with(ResponseTemplate::new(route_status).set_body_string("405: Method Not Allowed"))
        .mount(&server)
        .await;
    for p in ["/interrupt", "/queue"] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
    }
    server
}

async fn sent(server: &MockServer, verb: &str, prefix: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == verb && r.url.path().starts_with(prefix))
        .count()
}

#[tokio::test]
async fn a_route_that_answers_404_or_405_switches_the_client_to_two_steps_for_good() {
    for status in [404, 405] {
        // A version between 0.8.0 and 0.33.0: it may or may not have the route.
        let server = server_with_version("0.20.1", status).await;
        let c = Client::builder(server.uri()).build().unwrap();
        let running = "11111111-1111-4111-8111-111111111111".to_owned();
        let waiting = "22222222-2222-4222-8222-222222222222".to_owned();
        // The first cancel tries the route once, then does the job in two steps.
        let out = c.cancel_jobs(&[waiting.clone(), running.clone()]).await.unwrap();
        assert_eq!(out, [Cancelled::Dequeued, Cancelled::Interrupted], "{status}");
        assert_eq!(sent(&server, "POST", "/api/jobs/").await, 1, "{status}");
        assert_eq!(sent(&server, "POST", "/interrupt").await, 1, "{status}");
        assert_eq!(sent(&server, "POST", "/queue").await, 1, "{status}");
        assert_eq!(c.cancel_method().await, CancelMethod::InterruptOrDelete);
        // Later cancels never try the route again.
        assert_eq!(c.cancel_job(&running).await.unwrap(), Cancelled::Interrupted);
        assert_eq!(sent(&server, "POST", "/api/jobs/").await, 1, "{status}");
        assert_eq!(sent(&server, "GET", "/system_stats").await, 1, "{status}");
    }
}

/// A 0.33.0 with an empty queue whose cancel route answers `answer`
/// (mounted after any mocks the test put first, which take precedence).
async fn idle_0_33(server: &MockServer, answer: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path("/system_stats"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"system": {"comfyui_version": "0.33.0"}})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/queue"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"queue_running": [], "queue_pending": []})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/jobs/[^/]+/cancel$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(server)
        .await;
}

#[tokio::test]
async fn an_unreadable_version_cancels_in_two_steps_and_asks_again_next_time() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/system_stats"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    idle_0_33(&server, json!({"cancelled": false})).await;
    let c = Client::builder(server.uri()).tries(1).build().unwrap();
    assert_eq!(c.cancel_job(UNKNOWN).await.unwrap(), Cancelled::NotActive);
    assert_eq!(sent(&server, "POST", "/api/jobs/").await, 0);
    // Still undecided: the next calls ask until /system_stats answers.
    assert_eq!(c.cancel_method().await, CancelMethod::InterruptOrDelete);
    assert_eq!(c.cancel_method().await, CancelMethod::InterruptOrDelete);
    assert_eq!(c.cancel_method().await, CancelMethod::JobsRoute);
    assert_eq!(c.cancel_job(UNKNOWN).await.unwrap(), Cancelled::NotActive);
    assert_eq!(sent(&server, "POST", "/api/jobs/").await, 1);
    assert_eq!(sent(&server, "GET", "/system_stats").await, 4);
}

#[tokio::test]
async fn a_route_answer_without_its_boolean_is_an_error_not_a_guess() {
    let server = MockServer::start().await;
    idle_0_33(&server, json!({"cancelled": "yes"})).await;
    let c = Client::builder(server.uri()).build().unwrap();
    let err = c.cancel_job(UNKNOWN).await.unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    // A bad id is refused before anything is sent.
    let err = c.cancel_job("a/b").await.unwrap_err();
    assert!(matches!(err, comfy_client::Error::InvalidArgument { .. }), "{err}");
    assert_eq!(sent(&server, "POST", "/").await, 1);
}

#[tokio::test]
async fn stop_job_is_one_request_once_the_method_is_known() {
    // 0.33.0: the route alone, no look at the queue.
    let server = MockServer::start().await;
    idle_0_33(&server, json!({"cancelled": true})).await;
    let c = Client::builder(server.uri()).build().unwrap();
    assert_eq!(c.cancel_method().await, CancelMethod::JobsRoute);
    c.stop_job(UNKNOWN).await.unwrap();
    assert_eq!(sent(&server, "POST", "/api/jobs/").await, 1);
    assert_eq!(sent(&server, "GET", "/queue").await, 0);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "system_stats, then the route"
    );
    // 0.8.0: an interrupt and a queue delete, never the route.
    let server = server_with_version("0.8.0", 405).await;
    let c = Client::builder(server.uri()).build().unwrap();
    c.stop_job(UNKNOWN).await.unwrap();
    assert_eq!(sent(&server, "POST", "/api/jobs/").await, 0);
    assert_eq!(sent(&server, "POST", "/interrupt").await, 1);
    assert_eq!(sent(&server, "POST", "/queue").await, 1);
    assert_eq!(sent(&server, "GET", "/queue").await, 0);
    // A route that turns out missing: the two steps, and from then on only them.
    let server = server_with_version("0.20.1", 404).await;
    let c = Client::builder(server.uri()).build().unwrap();
    c.stop_job(UNKNOWN).await.unwrap();
    c.stop_job(UNKNOWN).await.unwrap();
    assert_eq!(sent(&server, "POST", "/api/jobs/").await, 1);
    assert_eq!(sent(&server, "POST", "/interrupt").await, 2);
}
