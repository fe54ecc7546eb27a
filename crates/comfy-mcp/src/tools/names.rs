//! Tool arguments that become part of a ComfyUI path, parsed into typed
//! values: first `comfy-guard`'s safe names (the rules, with their ids in
//! the refusal), then `comfy-client`'s path types (which the client's
//! methods require, so nothing unchecked reaches a URL).

use comfy_client::name::{RelPath, Segment};
use comfy_guard::path::{PathError, SafeModelFile, SafeName};
use serde_json::{Map, Value};

use super::impls::ToolError;

type Args = Map<String, Value>;

fn arg<'a>(args: &'a Args, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn refuse(name: &str, e: &PathError) -> ToolError {
    ToolError::rejected(format!("`{name}`: {e}"))
}

/// The client's segment for a name the guard accepted. The client's rules
/// are a subset of the guard's, so this cannot fail in practice; if it
/// does, the call is refused all the same.
pub(crate) fn segment(name: &SafeName) -> Result<Segment, ToolError> {
    Segment::new(name.as_str()).map_err(|e| ToolError::rejected(e.to_string()))
}

/// Argument `key` as one path segment (a node class, a subgraph id, a
/// task id).
pub(crate) fn name_arg(args: &Args, key: &str) -> Result<(SafeName, Segment), ToolError> {
    let name = SafeName::parse(arg(args, key)).map_err(|e| refuse(key, &e))?;
    let seg = segment(&name)?;
    Ok((name, seg))
}

/// A model folder name (`folder`) as a path segment.
pub(crate) fn folder_arg(args: &Args) -> Result<(String, Segment), ToolError> {
    let raw = arg(args, "folder");
    let name = SafeName::parse(raw).map_err(|e| {
        ToolError::rejected(format!(
            "`folder` must be a model folder name such as checkpoints or loras: {e}"
        ))
    })?;
    let seg = segment(&name)?;
    Ok((name.as_str().to_owned(), seg))
}

/// A model file (`filename`), possibly under subfolders of its folder.
pub(crate) fn model_file_arg(args: &Args) -> Result<(String, RelPath), ToolError> {
    let file = SafeModelFile::parse(arg(args, "filename")).map_err(|e| refuse("filename", &e))?;
    let path = RelPath::new(file.as_str()).map_err(|e| ToolError::rejected(e.to_string()))?;
    Ok((file.as_str().to_owned(), path))
}
