//! The unit tests of the task store: ids and owners, ends, waits for input.

use super::*;

#[tokio::test]
async fn task_ids_are_random_uuids_and_tasks_answer_only_their_owner() {
    let tasks = Tasks::default();
    let (alice, bob) = (Principal("alice".into()), Principal("bob".into()));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..64 {
        let (id, _, _) = tasks.create(Some(alice.clone())).await;
        let uuid = uuid::Uuid::try_parse(&id).expect("a UUID");
        assert_eq!(uuid.get_version_num(), 4, "{id}");
        assert!(seen.insert(id));
    }
    let (id, _, cancel) = tasks.create(Some(alice.clone())).await;
    assert!(tasks.get(&id, Some(&bob)).await.is_none());
    assert!(tasks.get(&id, None).await.is_none());
    assert!(!tasks.cancel(&id, Some(&bob)).await);
    assert!(!cancel.is_cancelled());
    assert!(tasks.get(&id, Some(&alice)).await.is_some());
    assert!(tasks.cancel(&id, Some(&alice)).await);
    assert!(cancel.is_cancelled());
}

#[tokio::test]
async fn a_tool_error_completes_and_a_protocol_error_fails() {
    let tasks = Tasks::default();
    let (tool_error, _, _) = tasks.create(None).await;
    tasks
        .finish(
            &tool_error,
            CallToolResult::error(vec![rmcp::model::ContentBlock::text("no")]),
            false,
        )
        .await;
    let got = serde_json::to_value(tasks.get(&tool_error, None).await.unwrap()).unwrap();
    assert_eq!(got["status"], "completed", "{got}");
    assert_eq!(got["result"]["isError"], true, "{got}");
    let (broken, _, _) = tasks.create(None).await;
    tasks.fail(&broken, "internal").await;
    let got = serde_json::to_value(tasks.get(&broken, None).await.unwrap()).unwrap();
    assert_eq!(got["status"], "failed", "{got}");
    assert_eq!(got["error"]["message"], "internal", "{got}");
    assert!(got.get("result").is_none(), "{got}");
}

/// Two questions that each want a field `x`.
fn two_questions() -> InputRequests {
    let ask = |m: &str| {
        serde_json::json!({"method": "elicitation/create", "params": {"message": m, "requestedSchema":
            {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}}})
    };
    serde_json::from_value(serde_json::json!({"a": ask("A?"), "b": ask("B?")})).unwrap()
}

/// Waits (yielding, bounded) until task `id` of `owner` waits for input;
/// the keys it shows.
async fn parked(tasks: &Tasks, id: &str, owner: &Principal) -> Vec<String> {
    for _ in 0..10_000 {
        if let Some(t) = tasks.get(id, Some(owner)).await
            && let TaskPayload::InputRequired { input_requests } = t.payload
        {
            return input_requests.keys().cloned().collect();
        }
        tokio::task::yield_now().await;
    }
    panic!("task {id} never waited for input");
}

#[tokio::test]
async fn a_waiting_task_takes_answers_from_its_owner_only_some_at_a_time() {
    let tasks = Tasks::new(None, Duration::from_mins(1));
    let (alice, bob) = (Principal("alice".into()), Principal("bob".into()));
    let (id, _, cancel) = tasks.create(Some(alice.clone())).await;
    let waiter = {
        let (tasks, id) = (tasks.clone(), id.clone());
        tokio::spawn(async move { tasks.wait_for_input(&id, &two_questions(), 2, &cancel).await })
    };
    assert_eq!(parked(&tasks, &id, &alice).await, ["2.a", "2.b"]);
    let answer = |k: &str, v: serde_json::Value| InputResponses::from([(k.to_owned(), v)]);
    let good = serde_json::json!({"action": "accept", "content": {"x": "1"}});
    assert_eq!(
        tasks.update(&id, Some(&bob), &answer("2.a", good.clone())).await,
        Err(UpdateError::NoTask)
    );
    let malformed = answer("2.a", serde_json::json!({"action": "accept", "content": {}}));
    assert!(matches!(
        tasks.update(&id, Some(&alice), &malformed).await,
        Err(UpdateError::Invalid(_))
    ));
    // Keys not asked are ignored (SEP-2663).
    for ignored in [answer("a", good.clone()), InputResponses::new()] {
        tasks.update(&id, Some(&alice), &ignored).await.unwrap();
    }
    assert_eq!(parked(&tasks, &id, &alice).await, ["2.a", "2.b"]);
    tasks
        .update(&id, Some(&alice), &answer("2.a", good.clone()))
        .await
        .unwrap();
    assert_eq!(parked(&tasks, &id, &alice).await, ["2.b"]);
    // Answered once: a second answer is ignored.
    let late = answer("2.a", serde_json::json!("x"));
    tasks.update(&id, Some(&alice), &late).await.unwrap();
    assert_eq!(parked(&tasks, &id, &alice).await, ["2.b"]);
    tasks
        .update(&id, Some(&alice), &answer("2.b", good.clone()))
        .await
        .unwrap();
    // Working as soon as the last answer is in, before the waiter runs.
    assert_eq!(
        tasks.get(&id, Some(&alice)).await.unwrap().status(),
        TaskStatus::Working
    );
    let Input::Answered(got) = waiter.await.unwrap() else {
        panic!("not answered")
    };
    assert_eq!(got.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        tasks.get(&id, Some(&alice)).await.unwrap().status(),
        TaskStatus::Working
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_waits_until_its_deadline_or_its_cancel() {
    let tasks = Tasks::new(None, Duration::from_secs(5));
    let (id, _, cancel) = tasks.create(None).await;
    assert_eq!(
        tasks.wait_for_input(&id, &two_questions(), 1, &cancel).await,
        Input::TimedOut
    );
    cancel.cancel();
    assert_eq!(
        tasks.wait_for_input(&id, &two_questions(), 2, &cancel).await,
        Input::Cancelled
    );
    assert_eq!(
        tasks.wait_for_input("nope", &two_questions(), 1, &cancel).await,
        Input::Gone
    );
}
