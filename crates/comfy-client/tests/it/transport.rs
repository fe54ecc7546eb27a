//! Retries, size caps, malformed bodies and deadlines, against the
//! simulator's fault knobs.

use std::time::Duration;

use comfy_client::{Client, Error, Limits, PromptOptions};
use comfy_sim::{Faults, HttpFault};

use crate::{basic, sim};

#[tokio::test]
async fn gets_are_retried_on_503_and_post_prompt_never_is() {
    let sim = sim().await;
    sim.set_faults(
        Faults::none()
            .route("/queue", HttpFault::Status(503))
            .route("/prompt", HttpFault::Status(503)),
    );
    let c = Client::builder(sim.url()).tries(3).build().unwrap();
    assert!(matches!(c.queue().await, Err(Error::Status { status: 503, .. })));
    assert_eq!(sim.requests("/queue"), 3);
    assert!(matches!(
        c.queue_prompt(&basic(1), PromptOptions::default()).await,
        Err(Error::Status { status: 503, .. })
    ));
    assert_eq!(sim.requests("/prompt"), 1, "POST /prompt is never retried");
}

#[tokio::test]
async fn bodies_are_capped_and_bad_ones_named() {
    let sim = sim().await;
    let limits = Limits {
        history: 10_000,
        ..Limits::default()
    };
    let c = Client::builder(sim.url()).limits(limits).build().unwrap();
    sim.set_faults(Faults::none().route("/history", HttpFault::Oversized(1_000_000)));
    assert!(matches!(
        c.history(None, None).await,
        Err(Error::TooLarge { limit: 10_000, .. })
    ));
    // Without a Content-Length the cap is enforced on what arrives.
    sim.set_faults(Faults::none().route("/history", HttpFault::OversizedChunked(1_000_000)));
    assert!(matches!(
        c.history(None, None).await,
        Err(Error::TooLarge { limit: 10_000, .. })
    ));
    let small_files = Client::builder(sim.url())
        .limits(Limits {
            file: 4_096,
            ..Limits::default()
        })
        .build()
        .unwrap();
    let file = comfy_client::types::FileRef {
        filename: "big.png".into(),
        subfolder: String::new(),
        kind: "input".into(),
    };
    for fault in [HttpFault::Oversized(100_000), HttpFault::OversizedChunked(100_000)] {
        sim.set_faults(Faults::none().route("/view", fault));
        let err = match small_files.view_stream(&file, None).await {
            Err(e) => e,
            Ok(mut stream) => loop {
                match stream.next_chunk().await {
                    Err(e) => break e,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("an oversized file was read to its end"),
                }
            },
        };
        assert!(matches!(err, Error::TooLarge { limit: 4_096, .. }), "{err}");
    }
    sim.set_faults(Faults::none().route("/system_stats", HttpFault::MalformedJson));
    let err = c.system_stats().await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    sim.set_faults(Faults::none().route("/object_info", HttpFault::ResetMidBody));
    let err = Client::builder(sim.url())
        .tries(1)
        .build()
        .unwrap()
        .object_info_raw()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
}

#[tokio::test]
async fn slow_and_unreachable_servers_are_timeouts_and_connect_errors() {
    let sim = sim().await;
    sim.set_faults(Faults::none().latency(Duration::from_secs(5)));
    let c = Client::builder(sim.url())
        .read_timeout(Duration::from_millis(200))
        .tries(1)
        .build()
        .unwrap();
    assert!(matches!(c.queue().await, Err(Error::Timeout { .. })));
    let c = Client::builder(sim.url())
        .deadline(Duration::from_millis(300))
        .build()
        .unwrap();
    assert!(matches!(c.queue().await, Err(Error::Timeout { .. })));
    let addr = sim.addr();
    drop(sim);
    let c = Client::builder(format!("http://{addr}")).tries(2).build().unwrap();
    let err = c.queue().await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
}

#[test]
fn credentials_never_show() {
    let c = Client::builder("http://127.0.0.1:1")
        .auth(comfy_client::Auth::Basic {
            user: "me".into(),
            password: comfy_client::Secret::new("hunter2"),
        })
        .build()
        .unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(Client::builder("http://me:pw@127.0.0.1:1").build().is_err());
}
