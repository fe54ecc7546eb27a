//! Unit tests of the ownership tables and the listing filters.

use super::*;

#[test]
fn the_tables_are_bounded_and_keep_the_newest() {
    let jobs = Jobs::default();
    let (a, b) = (Principal("a".into()), Principal("b".into()));
    for i in 0..MAX_JOBS + 5 {
        jobs.record(&i.to_string(), &a);
    }
    assert!(!jobs.owns("0", &a) && !jobs.owns("4", &a));
    assert!(jobs.owns("5", &a) && jobs.owns(&(MAX_JOBS + 4).to_string(), &a));
    assert!(!jobs.owns("5", &b));
    assert_eq!(jobs.jobs().map.len(), MAX_JOBS);
}

#[test]
fn a_merged_queue_shows_only_the_callers_jobs_and_where_they_run() {
    let jobs = Jobs::default();
    let (a, b) = (Principal("a".into()), Principal("b".into()));
    jobs.record("p1", &a);
    jobs.record("p2", &b);
    let mut v = serde_json::json!({
        "queue_running": [[0, "p1", {}, {}, []]],
        "queue_pending": [[1, "p2", {}, {}, []]],
        "backend_of": {"p1": "gpu-a", "p2": "gpu-b"},
    });
    filter("comfyui_get_queue", &mut v, &a, &jobs);
    assert_eq!(v["queue_pending"], serde_json::json!([]));
    assert_eq!(
        v["backend_of"],
        serde_json::json!({"p1": "gpu-a"}),
        "b's prompt id is not shown"
    );
}

#[test]
fn output_files_are_found_at_any_depth() {
    let jobs = Jobs::default();
    let a = Principal("a".into());
    let v = serde_json::json!({"outputs": {"9": {"images": [
        {"filename": "x.png", "subfolder": "s", "type": "output"},
        {"filename": "t.png", "subfolder": "", "type": "temp"}]}}});
    jobs.record_files(&v, &a);
    assert!(jobs.owns_file(&("s".into(), "x.png".into()), &a));
    assert!(
        !jobs.owns_file(&(String::new(), "t.png".into()), &a),
        "temp previews are not outputs"
    );
}
