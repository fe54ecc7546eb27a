//! The tracing spans of a tool call: one `tool_call` span per call, the
//! ComfyUI requests' spans inside it, and none of the call's arguments in
//! any of them. Its own test binary: it installs the global subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use comfy_sim::Sim;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

/// One span as the subscriber saw it.
#[derive(Debug, Clone)]
struct Span {
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
}

/// Every span opened, by id, with the fields recorded on it.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<BTreeMap<u64, Span>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx.span(id).and_then(|s| s.parent()).map(|p| p.id().into_u64());
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let span = Span {
            name: attrs.metadata().name(),
            parent,
            fields,
        };
        self.0.lock().unwrap().insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(span) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_call_has_one_span_with_the_comfyui_requests_inside() {
    let capture = Capture::default();
    let subscriber = Registry::default().with(capture.clone().with_filter(LevelFilter::DEBUG));
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let sim = Sim::builder().steps_per_second(500.0).start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut config = comfy_mcp::Config::default();
    config.comfyui.url = sim.url();
    config.logging.audit_file = home.path().join("audit.log").display().to_string();
    let server = comfy_mcp::Server::new(config, None).unwrap();

    // A prompt that stands for a secret: arguments are never recorded.
    let secret = "sk-live-do-not-log-4f2a";
    let args = json!({"prompt": secret, "steps": 4, "wait": true, "seed": 42});
    let reply = server.call("comfyui_generate_image", args.as_object().cloned()).await;
    assert_eq!(reply.outcome, comfy_audit::Outcome::Ok, "{:?}", reply.error_text());
    server.close();

    let spans = capture.0.lock().unwrap().clone();
    let calls: Vec<(&u64, &Span)> = spans.iter().filter(|(_, s)| s.name == "tool_call").collect();
    assert_eq!(calls.len(), 1, "{spans:#?}");
    let (&call_id, call) = calls[0];
    assert_eq!(call.fields["tool"], "comfyui_generate_image");
    assert_eq!(call.fields["backend"], "default");
    assert_eq!(call.fields["outcome"], "ok");
    assert!(call.fields.contains_key("duration"), "{call:?}");
    // From the command line: no session, no principal.
    assert!(!call.fields.contains_key("session") && !call.fields.contains_key("principal"));

    // Each ComfyUI request's span, with the `tool_call` span above it.
    let within = |mut at: Option<u64>| {
        while let Some(id) = at {
            if id == call_id {
                return true;
            }
            at = spans.get(&id).and_then(|s| s.parent);
        }
        false
    };
    let requests: Vec<&Span> = spans
        .values()
        .filter(|s| s.name == "comfyui_request" && within(s.parent))
        .collect();
    let queued = requests
        .iter()
        .find(|r| r.fields["method"] == "POST" && r.fields["path"] == "/prompt")
        .unwrap_or_else(|| panic!("no POST /prompt under the call: {requests:#?}"));
    assert_eq!(queued.fields["status"], "200");
    assert!(requests.len() >= 2, "{requests:#?}");
    for r in &requests {
        assert!(
            ["method", "path", "status"].iter().all(|k| r.fields.contains_key(*k)),
            "{r:?}"
        );
        assert!(!r.fields["path"].contains('?'), "{r:?}");
    }
    for s in spans.values() {
        assert!(s.fields.values().all(|v| !v.contains(secret)), "{s:?}");
    }
}
