//! Saving outputs as ComfyUI's save nodes do: images from `SaveImage` and
//! `PreviewImage`, and the recorded video and audio files of the media
//! save nodes, each with the counter-suffixed names and `ui` value
//! ComfyUI gives them.
//!
//! Apart from the routes because the worker calls it, not a handler.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{inside, list_dir, normalize};
use crate::image::Frame;
use crate::state::Shared;

/// Saves `images` as `SaveImage` (output) or `PreviewImage` (temp) does and
/// returns the node's `ui` value.
pub(crate) async fn save_images(
    shared: &Shared,
    node: &str,
    class: &str,
    images: &[Frame],
    prompt: &Value,
    extra: &Value,
    prefix: Option<Value>,
) -> Result<Value, String> {
    let (kind, prefix) = if class == "PreviewImage" {
        let suffix = {
            let mut st = shared.lock();
            st.preview_suffix
                .entry(format!("{node}/{class}"))
                .or_insert_with(|| {
                    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstupvxyz";
                    (0..5)
                        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
                        .collect()
                })
                .clone()
        };
        ("temp", format!("ComfyUI_temp_{suffix}"))
    } else {
        (
            "output",
            prefix.map_or_else(|| "ComfyUI".to_owned(), |v| crate::validate::py_str(&v)),
        )
    };
    let (w, h) = images.first().map_or((0, 0), |f| (f.width, f.height));
    let SavePath {
        folder,
        filename,
        subfolder,
        mut counter,
    } = save_path(shared, kind, &prefix, w, h).await?;
    let mut texts = vec![("prompt".to_owned(), crate::pyjson::to_string(prompt))];
    if let Some(Value::Object(info)) = extra.get("extra_pnginfo") {
        for (k, v) in info {
            texts.push((k.clone(), crate::pyjson::to_string(v)));
        }
    }
    let mut items = Vec::new();
    for (b, img) in images.iter().enumerate() {
        let file = format!("{}_{counter:05}_.png", filename.replace("%batch_num%", &b.to_string()));
        let png = img.to_png(&texts).map_err(|e| e.to_string())?;
        tokio::fs::write(folder.join(&file), png)
            .await
            .map_err(|e| e.to_string())?;
        items.push(json!({"filename": file, "subfolder": subfolder, "type": kind}));
        counter += 1;
    }
    Ok(json!({"images": items}))
}

/// Where a save node writes: ComfyUI's `get_save_image_path`.
struct SavePath {
    folder: PathBuf,
    filename: String,
    subfolder: String,
    counter: u64,
}

/// The folder, base name, subfolder and next counter for `prefix` in
/// `kind` (`output` or `temp`), as ComfyUI's `get_save_image_path` works
/// them out (`%width%`/`%height%` filled in, the folder kept inside the
/// base directory, the counter one past the highest `{name}_{digits}`).
async fn save_path(shared: &Shared, kind: &str, prefix: &str, w: u32, h: u32) -> Result<SavePath, String> {
    let base = shared.dir(kind);
    let prefix = prefix
        .replace("%width%", &w.to_string())
        .replace("%height%", &h.to_string());
    let norm = normalize(Path::new(&prefix));
    let full = inside(&base, &norm.to_string_lossy()).ok_or_else(|| {
        format!(
            "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: {}",
            base.join(&prefix).display()
        )
    })?;
    let filename = full
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = full.parent().map_or_else(|| base.clone(), Path::to_path_buf);
    let subfolder = folder
        .strip_prefix(&base)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    tokio::fs::create_dir_all(&folder).await.map_err(|e| e.to_string())?;
    let mut counter = 1;
    for existing in list_dir(&folder) {
        if let Some(rest) = existing.strip_prefix(&filename).and_then(|r| r.strip_prefix('_')) {
            // As ComfyUI: the digits up to the next `_` (0.33 also stops
            // at a `.`, so its audio files' `00001.flac` counts); anything
            // else counts as 0.
            let rest = if shared.version.newer() {
                rest.split('.').next().unwrap_or("")
            } else {
                rest
            };
            let digits = rest.split('_').next().unwrap_or("");
            counter = counter.max(digits.parse::<u64>().unwrap_or(0) + 1);
        }
    }
    Ok(SavePath {
        folder,
        filename,
        subfolder,
        counter,
    })
}

/// Video and audio files made by the real ComfyUI 0.33.0's save nodes
/// (`fixtures/media/`): six red then six blue 64x48 frames at 8 fps, 1.5 s
/// of silence at 22050 Hz.
pub(crate) mod media {
    pub(crate) const MP4: &[u8] = include_bytes!("../../../../fixtures/media/savevideo.mp4");
    pub(crate) const WEBM: &[u8] = include_bytes!("../../../../fixtures/media/savewebm.webm");
    pub(crate) const WEBP: &[u8] = include_bytes!("../../../../fixtures/media/saveanimatedwebp.webp");
    pub(crate) const APNG: &[u8] = include_bytes!("../../../../fixtures/media/saveanimatedpng.png");
    pub(crate) const FLAC: &[u8] = include_bytes!("../../../../fixtures/media/saveaudio.flac");
    pub(crate) const MP3: &[u8] = include_bytes!("../../../../fixtures/media/saveaudiomp3.mp3");
    pub(crate) const OPUS: &[u8] = include_bytes!("../../../../fixtures/media/saveaudioopus.opus");
}

/// How a media save node names and lists its file.
pub(crate) struct MediaSave<'a> {
    /// The node's `filename_prefix`, or its default.
    pub prefix: String,
    /// The extension.
    pub ext: &'a str,
    /// ComfyUI's video and image savers end the name with `_` before the
    /// extension (`ComfyUI_00001_.mp4`); 0.33's audio savers do not
    /// (`ComfyUI_00001.flac`; 0.8.0's do).
    pub trailing_underscore: bool,
    /// The output key: `images` or `audio`.
    pub key: &'a str,
    /// Whether the node output says `animated: [true]`.
    pub animated: bool,
    /// Picture size (for `%width%` and `%height%`).
    pub size: (u32, u32),
}

/// Writes `bytes` as a media save node does and returns its `ui` value.
pub(crate) async fn save_media(shared: &Shared, save: MediaSave<'_>, bytes: &[u8]) -> Result<Value, String> {
    let SavePath {
        folder,
        filename,
        subfolder,
        counter,
    } = save_path(shared, "output", &save.prefix, save.size.0, save.size.1).await?;
    let name = filename.replace("%batch_num%", "0");
    let file = if save.trailing_underscore {
        format!("{name}_{counter:05}_.{}", save.ext)
    } else {
        format!("{name}_{counter:05}.{}", save.ext)
    };
    tokio::fs::write(folder.join(&file), bytes)
        .await
        .map_err(|e| e.to_string())?;
    let item = json!({"filename": file, "subfolder": subfolder, "type": "output"});
    let mut ui = serde_json::Map::new();
    ui.insert(save.key.to_owned(), json!([item]));
    if save.animated {
        ui.insert("animated".to_owned(), json!([true]));
    }
    Ok(Value::Object(ui))
}
