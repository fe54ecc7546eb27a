//! Editor (UI) format to API format.

use comfy_workflow::editor::{ConvertError, MAX_NESTING, is_editor_format, to_api, to_api_traced};
use comfy_workflow::validate::ProblemKind;
use comfy_workflow::{Limits, ObjectInfo, Workflow};
use serde_json::{Value, json};

use crate::fixtures;
use crate::validate::object_info;

/// Every real workflow converts, and the result is valid against the
/// recorded catalog (model and file names aside: the recorded server has
/// few). The API output of each is snapshotted.
#[test]
fn real_editor_workflows_convert_to_valid_api_workflows() {
    let dir = fixtures().join("workflows/editor");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| std::path::Path::new(n).extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 15);
    for name in names {
        let doc: Value = serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap()).unwrap();
        assert!(is_editor_format(&doc), "{name}");
        let wf = to_api(&doc, object_info(), &Limits::DEFAULT).unwrap_or_else(|e| panic!("{name}: {e}"));
        let problems: Vec<String> = wf
            .validate(object_info())
            .into_iter()
            .filter(|p| !matches!(p.kind, ProblemKind::NotInList { .. }))
            .map(|p| p.to_string())
            .collect();
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        // The converted workflow is itself a valid API document.
        let again = Workflow::from_json(wf.to_json_string().as_bytes(), &Limits::DEFAULT).unwrap();
        assert_eq!(again, wf);
        insta::assert_json_snapshot!(name.trim_end_matches(".json"), wf.to_value());
    }
}

fn catalog() -> ObjectInfo {
    ObjectInfo::from_value(&json!({
        "Gen": {"input": {"required": {
            "seed": ["INT", {"default": 0, "min": 0, "max": 100, "control_after_generate": true}],
            "mode": [["a", "b"], {}],
            "strength": ["FLOAT", {"default": 0.5}],
            "picture": [["x.png"], {"image_upload": true}],
            "size": ["COMFY_DYNAMICCOMBO_V3", {"options": [
                {"key": "fixed", "inputs": {"required": {"w": ["INT", {"default": 8}], "h": ["INT", {"default": 8}]}}},
                {"key": "auto", "inputs": {}}]}],
            "late": ["INT", {"default": 7}]
        }}, "input_order": {"required": ["seed", "mode", "strength", "picture", "size", "late"]}, "output": ["IMAGE"], "output_node": false, "display_name": "Generate"},
        "Use": {"input": {"required": {"image": ["IMAGE"], "text": ["STRING", {}]}}, "output": ["IMAGE"], "output_node": true, "display_name": "Use"}
    }))
}

fn convert(doc: &Value) -> Result<Value, ConvertError> {
    to_api(doc, &catalog(), &Limits::DEFAULT).map(|w| w.to_value())
}

#[test]
fn widgets_take_values_in_order_skipping_the_editors_extra_widgets() {
    let doc = json!({
        "nodes": [{"id": 1, "type": "Gen", "mode": 0, "inputs": [], "widgets_values": [42, "randomize", "b", 0.25, "x.png", "image", "fixed", 16, 32]}],
        "links": []
    });
    let api = convert(&doc).unwrap();
    assert_eq!(
        api["1"]["inputs"],
        json!({"seed": 42, "mode": "b", "strength": 0.25, "picture": "x.png", "size": "fixed", "size.w": 16, "size.h": 32, "late": 7}),
        "`late` was added to the node after the workflow was saved: it takes its default"
    );
    assert_eq!(api["1"]["_meta"], json!({"title": "Generate"}));
}

#[test]
fn links_resolve_through_reroutes_primitives_bypasses_and_mutes() {
    let doc = json!({
        "nodes": [
            {"id": 1, "type": "Gen", "mode": 0, "inputs": [], "widgets_values": [1, "randomize", "a", 0.5, "x.png", "image", "auto"]},
            {"id": 2, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 10}]},
            {"id": 3, "type": "Use", "mode": 4, "inputs": [{"name": "image", "type": "IMAGE", "link": 11}, {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": null}], "widgets_values": ["bypassed"]},
            {"id": 4, "type": "PrimitiveNode", "mode": 0, "inputs": [], "outputs": [{"name": "STRING", "type": "STRING", "widget": {"name": "text"}, "links": [13]}], "widgets_values": ["from a primitive"]},
            {"id": 5, "type": "Use", "mode": 0, "title": "Final", "inputs": [{"name": "image", "type": "IMAGE", "link": 12}, {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 13}], "widgets_values": ["ignored"]},
            {"id": 6, "type": "Gen", "mode": 2, "inputs": [], "widgets_values": []},
            {"id": 7, "type": "Use", "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 14}], "widgets_values": ["kept"]},
            {"id": 8, "type": "Note", "mode": 0, "inputs": [], "widgets_values": ["a note"]}
        ],
        "links": [[10, 1, 0, 2, 0, "IMAGE"], [11, 2, 0, 3, 0, "IMAGE"], [12, 3, 0, 5, 0, "IMAGE"], [13, 4, 0, 5, 1, "STRING"], [14, 6, 0, 7, 0, "IMAGE"]]
    });
    let api = convert(&doc).unwrap();
    let ids: Vec<&String> = api.as_object().unwrap().keys().collect();
    assert_eq!(ids, ["1", "5", "7"], "virtual, bypassed and muted nodes are not sent");
    assert_eq!(
        api["5"]["inputs"],
        json!({"text": "from a primitive", "image": ["1", 0]})
    );
    assert_eq!(api["5"]["_meta"]["title"], "Final");
    assert_eq!(
        api["7"]["inputs"],
        json!({"text": "kept"}),
        "a link from a muted node is dropped"
    );
}

#[test]
fn subgraphs_expand_with_prefixed_ids_and_nest() {
    let inner = |id: &str, nested: Option<&str>| {
        json!({
            "id": id,
            "inputs": [{"name": "text", "type": "STRING"}, {"name": "image", "type": "IMAGE"}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE"}],
            "nodes": [
                {"id": 1, "type": nested.unwrap_or("Use"), "mode": 0,
                 "inputs": [{"name": "image", "type": "IMAGE", "link": 1}, {"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 2}],
                 "widgets_values": ["inner default"]}
            ],
            "links": [
                {"id": 1, "origin_id": -10, "origin_slot": 1, "target_id": 1, "target_slot": 0, "type": "IMAGE"},
                {"id": 2, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 1, "type": "STRING"},
                {"id": 3, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "IMAGE"}
            ]
        })
    };
    let doc = json!({
        "nodes": [
            {"id": 1, "type": "Gen", "mode": 0, "inputs": [], "widgets_values": [1, "fixed", "a", 0.5, "x.png", "image", "auto"]},
            {"id": 9, "type": "outer-graph", "mode": 0,
             "inputs": [{"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": null}, {"name": "image", "type": "IMAGE", "link": 20}],
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [21]}]},
            {"id": 3, "type": "Use", "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 21}], "widgets_values": ["end"]}
        ],
        "links": [[20, 1, 0, 9, 1, "IMAGE"], [21, 9, 0, 3, 0, "IMAGE"]],
        "definitions": {"subgraphs": [inner("outer-graph", Some("inner-graph")), inner("inner-graph", None)]}
    });
    let api = convert(&doc).unwrap();
    let ids: Vec<&String> = api.as_object().unwrap().keys().collect();
    assert_eq!(ids, ["1", "9:1:1", "3"]);
    assert_eq!(
        api["9:1:1"]["inputs"],
        json!({"text": "inner default", "image": ["1", 0]})
    );
    assert_eq!(api["3"]["inputs"]["image"], json!(["9:1:1", 0]));
}

#[test]
fn promoted_widget_values_of_an_instance_reach_the_inner_node() {
    let def = json!({
        "id": "sg", "inputs": [], "outputs": [],
        "nodes": [
            {"id": 1, "type": "Use", "mode": 0, "inputs": [], "widgets_values": ["from the definition"]},
            {"id": 2, "type": "Use", "mode": 0, "inputs": [], "widgets_values": ["not promoted"]}
        ],
        "links": []
    });
    let doc = |values: Value, proxies: Value| {
        json!({
            "nodes": [{"id": 7, "type": "sg", "mode": 0, "inputs": [],
                       "properties": {"proxyWidgets": proxies}, "widgets_values": values}],
            "links": [],
            "definitions": {"subgraphs": [def.clone()]}
        })
    };
    // The instance's value, in the order of its proxies; an editor-only
    // widget and an unknown one are not sent.
    let api = convert(&doc(
        json!(["fixed", 3, "set on the instance"]),
        json!([["1", "control_after_generate"], ["1", "nonexistent"], [1, "text"]]),
    ))
    .unwrap();
    assert_eq!(api["7:1"]["inputs"], json!({"text": "set on the instance"}));
    assert_eq!(api["7:2"]["inputs"]["text"], "not promoted");
    // No values on the instance (as real files save them): the inner
    // node's own.
    let api = convert(&doc(json!([]), json!([["1", "text"]]))).unwrap();
    assert_eq!(api["7:1"]["inputs"]["text"], "from the definition");
}

/// A definition `sg` whose input `caption` feeds the `text` widget of its
/// `Use` node 1, which holds "inner".
fn captioned() -> Value {
    json!({
        "id": "sg", "inputs": [{"name": "caption", "type": "STRING"}], "outputs": [],
        "nodes": [{"id": 1, "type": "Use", "mode": 0,
                   "inputs": [{"name": "text", "type": "STRING", "link": 1, "widget": {"name": "text"}}],
                   "widgets_values": ["inner"]}],
        "links": [{"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 1, "type": "STRING"}]
    })
}

fn traced(doc: &Value) -> (Value, Vec<(String, usize)>) {
    let c = to_api_traced(doc, &catalog(), &Limits::DEFAULT).unwrap();
    (c.workflow.to_value(), c.promoted.into_iter().collect())
}

#[test]
fn promoted_subgraph_inputs_reach_the_nodes_linked_from_the_input_node() {
    let instance = |properties: Value, link: Value| {
        json!({"id": 7, "type": "sg", "mode": 0, "properties": properties, "widgets_values": ["outer"],
               "inputs": [{"name": "caption", "type": "STRING", "link": link, "widget": {"name": "caption"}}]})
    };
    let doc = |node: Value, extra: Vec<Value>, links: Value| {
        let mut nodes = vec![node];
        nodes.extend(extra);
        json!({"nodes": nodes, "links": links, "definitions": {"subgraphs": [captioned()]}})
    };
    // `["-1", input]` in proxyWidgets, as a list or as JSON text, and an
    // instance without proxyWidgets whose input carries a widget.
    for properties in [
        json!({"proxyWidgets": [["-1", "caption"]]}),
        json!({"proxyWidgets": "[[\"-1\", \"caption\"]]"}),
        json!({}),
    ] {
        let (api, carried) = traced(&doc(instance(properties.clone(), Value::Null), vec![], json!([])));
        assert_eq!(api["7:1"]["inputs"]["text"], "outer", "{properties}");
        assert_eq!(carried, [("7".to_owned(), 0)]);
    }
    // The instance's input connected outside: the link wins, the promoted
    // value is not sent.
    let primitive = json!({"id": 2, "type": "PrimitiveNode", "mode": 0, "widgets_values": ["linked"]});
    let (api, carried) = traced(&doc(
        instance(json!({"proxyWidgets": [["-1", "caption"]]}), json!(5)),
        vec![primitive],
        json!([[5, 2, 0, 7, 0, "STRING"]]),
    ));
    assert_eq!(api["7:1"]["inputs"]["text"], "linked");
    assert!(carried.is_empty());
}

#[test]
fn promotions_chain_through_nested_instances_and_text_proxies() {
    let doc = |top_values: Value, top_proxies: Value| {
        json!({
            "nodes": [{"id": 7, "type": "outer", "mode": 0, "inputs": [],
                       "properties": {"proxyWidgets": top_proxies}, "widgets_values": top_values}],
            "links": [],
            "definitions": {"subgraphs": [
                {"id": "outer", "inputs": [], "outputs": [], "links": [],
                 "nodes": [{"id": 4, "type": "inner", "mode": 0, "inputs": [],
                            "properties": {"proxyWidgets": [["1", "text"]]}, "widgets_values": ["middle"]}]},
                {"id": "inner", "inputs": [], "outputs": [], "links": [],
                 "nodes": [{"id": 1, "type": "Use", "mode": 0, "inputs": [], "widgets_values": ["inner"]}]}
            ]}
        })
    };
    // The outer instance's value overrides the nested instance's promoted
    // widget, which sets the inner node.
    let (api, carried) = traced(&doc(json!(["top"]), json!([["4", "text"]])));
    assert_eq!(api["7:4:1"]["inputs"]["text"], "top");
    assert_eq!(carried, [("7".to_owned(), 0)]);
    let (api, _) = traced(&doc(json!(["top"]), json!("[[\"4\", \"text\"]]")));
    assert_eq!(api["7:4:1"]["inputs"]["text"], "top");
    // Nothing on the outer instance: the nested instance's own value.
    let (api, carried) = traced(&doc(json!([]), json!([["4", "text"]])));
    assert_eq!(api["7:4:1"]["inputs"]["text"], "middle");
    assert_eq!(carried, [("7:4".to_owned(), 0)]);
}

#[test]
fn nesting_and_work_are_bounded() {
    // A chain of definitions, each holding one instance of the next.
    let chain = |levels: usize| {
        let mut defs: Vec<Value> = (0..levels)
            .map(|i| {
                json!({"id": format!("d{i}"), "inputs": [], "outputs": [], "links": [],
                       "nodes": [{"id": 1, "type": format!("d{}", i + 1), "mode": 0, "inputs": []}]})
            })
            .collect();
        defs.push(
            json!({"id": format!("d{levels}"), "inputs": [], "outputs": [], "links": [],
                         "nodes": [{"id": 1, "type": "Use", "mode": 0, "inputs": [], "widgets_values": ["deep"]}]}),
        );
        json!({"nodes": [{"id": 1, "type": "d0", "mode": 0, "inputs": []}], "links": [],
               "definitions": {"subgraphs": defs}})
    };
    let api = convert(&chain(MAX_NESTING - 1)).unwrap();
    assert_eq!(api.as_object().unwrap().len(), 1);
    assert!(matches!(
        convert(&chain(MAX_NESTING)),
        Err(ConvertError::TooIntricate(_))
    ));
    // A definition that holds an instance of itself.
    let looping = json!({"nodes": [{"id": 1, "type": "me", "mode": 0, "inputs": []}], "links": [],
        "definitions": {"subgraphs": [{"id": "me", "inputs": [], "outputs": [], "links": [],
            "nodes": [{"id": 1, "type": "me", "mode": 0, "inputs": []}]}]}});
    assert!(matches!(convert(&looping), Err(ConvertError::TooIntricate(_))));
    // Thousands of nodes each reached through a long chain of reroutes:
    // the step budget stops it.
    let mut nodes = Vec::new();
    let mut links = Vec::new();
    for r in 0..250_i64 {
        nodes.push(json!({"id": 100_000 + r, "type": "Reroute", "mode": 0,
                          "inputs": [{"name": "", "type": "*", "link": if r == 0 { Value::Null } else { json!(100_000 + r) }}]}));
        if r > 0 {
            links.push(json!([100_000 + r, 100_000 + r - 1, 0, 100_000 + r, 0, "*"]));
        }
    }
    for n in 0..4_100_i64 {
        nodes.push(json!({"id": n, "type": "Use", "mode": 0,
                          "inputs": [{"name": "image", "type": "IMAGE", "link": 200_000 + n}]}));
        links.push(json!([200_000 + n, 100_249, 0, n, 0, "IMAGE"]));
    }
    let busy = json!({"nodes": nodes, "links": links});
    assert!(matches!(convert(&busy), Err(ConvertError::TooIntricate(_))));
}

#[test]
fn bad_documents_are_clear_errors() {
    assert!(matches!(
        convert(&json!({"1": {"class_type": "X"}})),
        Err(ConvertError::NotEditorFormat(_))
    ));
    let unknown = json!({"nodes": [
        {"id": 1, "type": "NopeA", "mode": 0}, {"id": 2, "type": "NopeB", "mode": 0}, {"id": 3, "type": "NopeA", "mode": 0},
        {"id": 4, "type": "Skipped", "mode": 4}], "links": []});
    assert_eq!(
        convert(&unknown).unwrap_err().to_string(),
        "node types not known to the server: NopeA, NopeB"
    );
    let dangling = json!({"nodes": [{"id": 5, "type": "Use", "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 99}]}], "links": []});
    assert_eq!(
        convert(&dangling).unwrap_err().to_string(),
        "node `5` input `image`: link does not exist"
    );
    let looping = json!({"nodes": [
        {"id": 1, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 2}]},
        {"id": 2, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}]},
        {"id": 3, "type": "Use", "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}]}],
        "links": [[1, 1, 0, 2, 0, "*"], [2, 2, 0, 1, 0, "*"]]});
    assert!(matches!(convert(&looping), Err(ConvertError::BadLink { .. })));
    let hostile = json!({"nodes": [{"id": "x", "type": 5}, 7, null, {"id": 1}], "links": [3, [1], {"id": "q"}]});
    assert!(
        convert(&hostile).is_err() || convert(&hostile).is_ok(),
        "no panic on junk"
    );
}

fn junk() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z -]{0,8}".prop_map(Value::String),
        (-3i64..6).prop_map(Value::from)
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "id",
                    "type",
                    "mode",
                    "inputs",
                    "link",
                    "links",
                    "name",
                    "widgets_values",
                    "origin_id",
                    "target_id",
                    "origin_slot",
                    "target_slot"
                ]),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn conversion_never_panics(nodes in proptest::collection::vec(junk(), 0..6), links in proptest::collection::vec(junk(), 0..6)) {
        let doc = json!({"nodes": nodes, "links": links});
        let _ = to_api(&doc, &catalog(), &Limits::DEFAULT);
        let _ = to_api(&doc, object_info(), &Limits::DEFAULT);
    }
}
