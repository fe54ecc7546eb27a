//! Widget values: matching `widgets_values` to the widget inputs that
//! `/object_info` declares, including the editor's extra widgets that are
//! never sent (`control_after_generate`, upload buttons) and a dynamic
//! combo's sub-widgets.

use serde_json::Value;

use crate::Input;
use crate::Node;
use crate::object_info::{InputDef, InputKind};

/// The editor's extra widgets after a combo: an upload button.
fn has_upload(decl: &InputDef) -> bool {
    matches!(decl.kind, InputKind::Combo(_))
        && ["image_upload", "video_upload", "audio_upload", "file_upload"]
            .iter()
            .any(|k| decl.options.get(*k).and_then(Value::as_bool) == Some(true))
}

/// The value a widget starts with in the editor.
fn default_value(decl: &InputDef) -> Option<Value> {
    if let Some(d) = decl.options.get("default") {
        return Some(d.clone());
    }
    match &decl.kind {
        InputKind::Combo(options) => options.first().cloned(),
        InputKind::DynamicCombo(options) => options.first().map(|o| Value::String(o.key.clone())),
        _ => None,
    }
}

/// Sets the node's widget inputs from `widgets_values`: a list consumed in
/// widget order (with the editor's unsent extra widgets, and a dynamic
/// combo's sub-widgets after it), or an object by name. Widgets the saved
/// workflow has no value for (added to the node since) take their default.
pub(super) fn assign_widgets(api: &mut Node, decls: &[InputDef], prefix: &str, values: &Value) {
    let mut list = match values {
        Value::Array(v) => Some(v.iter()),
        _ => None,
    };
    assign_from(api, decls, prefix, values, &mut list);
}

fn assign_from<'a>(
    api: &mut Node,
    decls: &[InputDef],
    prefix: &str,
    values: &'a Value,
    list: &mut Option<std::slice::Iter<'a, Value>>,
) {
    for decl in decls.iter().filter(|d| d.kind.is_widget()) {
        let name = format!("{prefix}{}", decl.name);
        let value = match (list.as_mut(), values) {
            (Some(iter), _) => iter.next().cloned(),
            (None, Value::Object(map)) => map.get(&name).or_else(|| map.get(&decl.name)).cloned(),
            _ => None,
        };
        if let Some(iter) = list.as_mut() {
            if decl.has_control_after_generate() {
                iter.next();
            }
            if has_upload(decl) {
                iter.next();
            }
        }
        let Some(value) = value.or_else(|| default_value(decl)) else {
            continue;
        };
        if let (InputKind::DynamicCombo(options), Value::String(key)) = (&decl.kind, &value)
            && let Some(chosen) = options.iter().find(|o| &o.key == key)
        {
            api.set_input(name.clone(), Input::Value(value.clone()));
            assign_from(api, &chosen.inputs, &format!("{name}."), values, list);
            continue;
        }
        api.set_input(name, Input::Value(value));
    }
}
