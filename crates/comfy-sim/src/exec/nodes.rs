//! What each node class does when it runs: the nodes that really run (image
//! ops, loads and saves), the ones that replay recorded files, and the
//! simulated ones (samplers stepping with progress and previews). Its own
//! file because it is the long table of classes; the parent runs the queue.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

use super::Out;
use super::Run;
use super::Stop;
use crate::image::Frame;

impl Run<'_> {
    pub(super) async fn run_node(&mut self, node: &str, class: &str) -> Result<(Vec<Out>, Option<Value>), Stop> {
        let one = |o: Out| Ok((vec![o], None));
        if let Some(inputs) = self
            .prompt
            .get(node)
            .and_then(|n| n.get("inputs"))
            .and_then(Value::as_object)
            && let Some((message, kind)) = crate::loaders::failure(self.shared, class, inputs)
        {
            return Err(Stop::Failed { message, kind });
        }
        match class {
            "EmptyImage" => {
                let (w, h, b) = (
                    self.int(node, "width", 512),
                    self.int(node, "height", 512),
                    self.int(node, "batch_size", 1).clamp(1, 64),
                );
                let f = Frame::solid(w, h, self.int(node, "color", 0) as u32).map_err(fail)?;
                one(Out::Images(Arc::new(vec![f; b as usize])))
            }
            "ImageInvert" => {
                let imgs = self.images(node, "image")?;
                one(Out::Images(Arc::new(imgs.iter().map(Frame::inverted).collect())))
            }
            "ImageScale" => {
                let imgs = self.images(node, "image")?;
                let (mut w, mut h) = (self.int(node, "width", 512), self.int(node, "height", 512));
                let first = imgs
                    .first()
                    .map_or((64, 64), |f| (u64::from(f.width), u64::from(f.height)));
                if w == 0 && h == 0 {
                    return one(Out::Images(imgs));
                } else if w == 0 {
                    w = (first.0 * h / first.1.max(1)).max(1);
                } else if h == 0 {
                    h = (first.1 * w / first.0.max(1)).max(1);
                }
                let out: Result<Vec<_>, _> = imgs.iter().map(|f| f.resized(w, h)).collect();
                one(Out::Images(Arc::new(out.map_err(fail)?)))
            }
            "ImageScaleBy" => {
                let imgs = self.images(node, "image")?;
                let s = self.float(node, "scale_by", 1.0);
                let out: Result<Vec<_>, _> = imgs
                    .iter()
                    .map(|f| {
                        f.resized(
                            (f64::from(f.width) * s).round_ties_even().max(1.0) as u64,
                            (f64::from(f.height) * s).round_ties_even().max(1.0) as u64,
                        )
                    })
                    .collect();
                one(Out::Images(Arc::new(out.map_err(fail)?)))
            }
            "LoadImage" => {
                let name = self
                    .input(node, "image")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let path = crate::files::resolve_input(self.shared, &name).ok_or_else(|| Stop::Failed {
                    message: format!("Invalid image file: {name}"),
                    kind: "FileNotFoundError".into(),
                })?;
                let bytes = tokio::fs::read(&path).await.map_err(|e| Stop::Failed {
                    message: e.to_string(),
                    kind: "OSError".into(),
                })?;
                let f = Frame::from_png(&bytes).map_err(|e| Stop::Failed {
                    message: e.to_string(),
                    kind: "PIL.UnidentifiedImageError".into(),
                })?;
                Ok((vec![Out::Images(Arc::new(vec![f])), Out::Opaque], None))
            }
            "SaveImage" | "PreviewImage" => {
                let imgs = self.images(node, "images")?;
                let ui = crate::files::save_images(
                    self.shared,
                    node,
                    class,
                    &imgs,
                    &self.job.prompt,
                    &self.job.extra_data,
                    self.input(node, "filename_prefix"),
                )
                .await
                .map_err(exception)?;
                Ok((Vec::new(), Some(ui)))
            }
            "ImageBatch" => {
                // image2 scaled to image1's size, then appended.
                let (a, b) = (self.images(node, "image1")?, self.images(node, "image2")?);
                let (w, h) = a
                    .first()
                    .map_or((64, 64), |f| (u64::from(f.width), u64::from(f.height)));
                let mut all: Vec<Frame> = a.iter().cloned().collect();
                for f in b.iter() {
                    all.push(f.resized(w, h).map_err(fail)?);
                }
                one(Out::Images(Arc::new(all)))
            }
            // A video is its frames here; the save nodes write files the
            // real ComfyUI 0.33.0 made (`crate::files::media`), named and
            // listed as it names and lists them.
            "CreateVideo" => one(Out::Images(self.images(node, "images")?)),
            "SaveVideo" | "SaveWEBM" | "SaveAnimatedWEBP" | "SaveAnimatedPNG" => {
                let input = if class == "SaveVideo" { "video" } else { "images" };
                let imgs = self.images(node, input)?;
                let size = imgs.first().map_or((0, 0), |f| (f.width, f.height));
                let still = imgs.len() == 1 && matches!(class, "SaveAnimatedWEBP" | "SaveAnimatedPNG");
                let (ext, bytes, default_prefix): (&str, std::borrow::Cow<'static, [u8]>, &str) = match class {
                    "SaveVideo" => ("mp4", crate::files::media::MP4.into(), "video/ComfyUI"),
                    "SaveWEBM" => ("webm", crate::files::media::WEBM.into(), "ComfyUI"),
                    // One frame: a still image, as Pillow writes it.
                    "SaveAnimatedWEBP" if still => (
                        "webp",
                        imgs.first()
                            .map(Frame::to_webp)
                            .transpose()
                            .map_err(fail)?
                            .unwrap_or_default()
                            .into(),
                        "ComfyUI",
                    ),
                    "SaveAnimatedWEBP" => ("webp", crate::files::media::WEBP.into(), "ComfyUI"),
                    _ if still => (
                        "png",
                        imgs.first()
                            .map(|f| f.to_png(&[]))
                            .transpose()
                            .map_err(fail)?
                            .unwrap_or_default()
                            .into(),
                        "ComfyUI",
                    ),
                    _ => ("png", crate::files::media::APNG.into(), "ComfyUI"),
                };
                let save = crate::files::MediaSave {
                    prefix: self
                        .input(node, "filename_prefix")
                        .map_or_else(|| default_prefix.to_owned(), |v| crate::validate::py_str(&v)),
                    ext,
                    trailing_underscore: true,
                    key: "images",
                    animated: !still,
                    size,
                };
                let ui = crate::files::save_media(self.shared, save, &bytes)
                    .await
                    .map_err(exception)?;
                Ok((vec![Out::Images(imgs)], Some(ui)))
            }
            "SaveAudio" | "SaveAudioMP3" | "SaveAudioOpus" => {
                let (ext, bytes) = match class {
                    "SaveAudio" => ("flac", crate::files::media::FLAC),
                    "SaveAudioMP3" => ("mp3", crate::files::media::MP3),
                    _ => ("opus", crate::files::media::OPUS),
                };
                let save = crate::files::MediaSave {
                    prefix: self
                        .input(node, "filename_prefix")
                        .map_or_else(|| "audio/ComfyUI".to_owned(), |v| crate::validate::py_str(&v)),
                    ext,
                    // 0.8.0 names audio `ComfyUI_00001_.flac`, 0.33.0
                    // `ComfyUI_00001.flac`.
                    trailing_underscore: !self.shared.version.newer(),
                    key: "audio",
                    animated: false,
                    size: (0, 0),
                };
                let ui = crate::files::save_media(self.shared, save, bytes)
                    .await
                    .map_err(exception)?;
                Ok((Vec::new(), Some(ui)))
            }
            "SaveImageWebsocket" => {
                let imgs = self.images(node, "images")?;
                let n = imgs.len() as u64;
                for (step, img) in imgs.iter().enumerate() {
                    let bytes = img.to_png(&[]).map_err(fail)?;
                    self.step_progress(node, step as u64, n, Some(Preview { bytes, png: true }));
                }
                Ok((Vec::new(), None))
            }
            "FixtureFail" => {
                let msg = self
                    .input(node, "message")
                    .map_or_else(|| "fixture failure".to_owned(), |v| crate::validate::py_str(&v));
                Err(Stop::Failed {
                    message: msg,
                    kind: "RuntimeError".into(),
                })
            }
            "FixtureSleep" => {
                let imgs = self.images(node, "image")?;
                self.pause(Duration::from_secs_f64(
                    self.float(node, "seconds", 5.0).clamp(0.0, 600.0),
                ))
                .await?;
                one(Out::Images(imgs))
            }
            "FixtureProgress" => {
                let imgs = self.images(node, "image")?;
                let steps = self.int(node, "steps", 3).clamp(1, 100);
                let delay = Duration::from_secs_f64(self.float(node, "delay", 0.2).clamp(0.0, 10.0));
                for i in 1..=steps {
                    self.pause(delay).await?;
                    self.shared
                        .hub
                        .send_binary(text_frame(node, &format!("step {i}/{steps}")), None);
                    self.step_progress(node, i, steps, imgs.first().and_then(Preview::jpeg));
                }
                one(Out::Images(imgs))
            }
            "EmptyLatentImage" | "EmptySD3LatentImage" | "EmptyHunyuanLatentVideo" => one(Out::Latent {
                width: self.int(node, "width", 512),
                height: self.int(node, "height", 512),
                batch: self.int(node, "batch_size", 1).clamp(1, 64),
                seed: 0,
            }),
            c if c.starts_with("KSampler") || c.starts_with("SamplerCustom") => {
                let steps = self.int(node, "steps", 20).clamp(1, 10_000);
                let seed = self.int(node, "seed", self.int(node, "noise_seed", 0));
                let (width, height, batch) = match self.linked(node, "latent_image") {
                    Some(Out::Latent {
                        width, height, batch, ..
                    }) => (width, height, batch),
                    _ => (512, 512, 1),
                };
                let step = Duration::from_secs_f64(1.0 / self.shared.steps_per_second);
                let preview = if self.shared.previews {
                    Frame::generated(width.min(512), height.min(512), seed)
                        .ok()
                        .as_ref()
                        .and_then(Preview::jpeg)
                } else {
                    None
                };
                for i in 1..=steps {
                    self.pause(step).await?;
                    self.step_progress(node, i, steps, preview.clone());
                }
                one(Out::Latent {
                    width,
                    height,
                    batch,
                    seed,
                })
            }
            "VAEDecode" | "VAEDecodeTiled" => {
                let out = match self.linked(node, "samples") {
                    Some(Out::Latent {
                        width,
                        height,
                        batch,
                        seed,
                    }) => {
                        let f = Frame::generated(width, height, seed).map_err(fail)?;
                        vec![f; batch as usize]
                    }
                    _ => vec![Frame::generated(512, 512, 0).map_err(fail)?],
                };
                one(Out::Images(Arc::new(out)))
            }
            "VAEEncode" | "VAEEncodeForInpaint" => {
                let imgs = self.images(node, "pixels")?;
                let (w, h) = imgs
                    .first()
                    .map_or((512, 512), |f| (u64::from(f.width), u64::from(f.height)));
                one(Out::Latent {
                    width: w,
                    height: h,
                    batch: imgs.len() as u64,
                    seed: 0,
                })
            }
            // A paid API node without a Comfy account key: what ComfyUI's
            // API client says when the partner API answers 401.
            other
                if !self.job.account_key
                    && self
                        .shared
                        .catalog
                        .node(other)
                        .and_then(|d| d.get("api_node"))
                        .and_then(Value::as_bool)
                        == Some(true) =>
            {
                Err(Stop::Failed {
                    message: "Unauthorized: Please login first to use this node.".into(),
                    kind: "Exception".into(),
                })
            }
            other => {
                let types = self
                    .shared
                    .catalog
                    .node(other)
                    .and_then(|d| d.get("output"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut outs = Vec::new();
                for t in types {
                    outs.push(match t.as_str() {
                        Some("IMAGE") => Out::Images(Arc::new(vec![Frame::generated(512, 512, 0).map_err(fail)?])),
                        Some("LATENT") => Out::Latent {
                            width: 512,
                            height: 512,
                            batch: 1,
                            seed: 0,
                        },
                        _ => Out::Opaque,
                    });
                }
                Ok((outs, None))
            }
        }
    }

    /// One progress step: `progress_state`, then a metadata preview (type
    /// 4) or `progress` followed by a plain preview (type 1), as ComfyUI
    /// orders them.
    pub(super) fn step_progress(&mut self, node: &str, value: u64, max: u64, preview: Option<Preview>) {
        self.progress_state(node, &json!(value), &json!(max), "running");
        let meta = self.shared.hub.preview_metadata(self.sid());
        if let (Some(p), true) = (&preview, meta) {
            let mime = if p.png { "image/png" } else { "image/jpeg" };
            let md = crate::pyjson::to_string(
                &json!({"node_id": node, "prompt_id": self.job.id, "display_node_id": node, "parent_node_id": null, "real_node_id": node, "image_type": mime}),
            );
            let mut b = BytesMut::with_capacity(8 + md.len() + p.bytes.len());
            b.put_u32(4);
            b.put_u32(md.len() as u32);
            b.put_slice(md.as_bytes());
            b.put_slice(&p.bytes);
            self.shared.hub.send_binary(b.freeze(), self.sid());
        }
        self.shared.hub.send_json(
            "progress",
            json!({"value": value, "max": max, "prompt_id": self.job.id, "node": node}),
            self.sid(),
        );
        if let (Some(p), false) = (preview, meta) {
            let mut b = BytesMut::with_capacity(8 + p.bytes.len());
            b.put_u32(1);
            b.put_u32(if p.png { 2 } else { 1 });
            b.put_slice(&p.bytes);
            self.shared.hub.send_binary(b.freeze(), self.sid());
        }
    }
}

/// An image sent with a progress step.
#[derive(Clone)]
pub(super) struct Preview {
    pub(super) bytes: Vec<u8>,
    pub(super) png: bool,
}

impl Preview {
    /// A sampler-style preview: scaled into 512x512, JPEG at quality 95.
    fn jpeg(frame: &Frame) -> Option<Self> {
        let scale = 512.0 / f64::from(frame.width.max(frame.height));
        let (w, h) = (
            (f64::from(frame.width) * scale).round().max(1.0) as u64,
            (f64::from(frame.height) * scale).round().max(1.0) as u64,
        );
        let bytes = frame.resized(w, h).ok()?.to_jpeg(95).ok()?;
        Some(Self { bytes, png: false })
    }
}

#[allow(clippy::needless_pass_by_value, reason = "shaped for `map_err`")]
pub(super) fn fail(e: crate::image::ImageError) -> Stop {
    Stop::Failed {
        message: e.to_string(),
        kind: "ValueError".into(),
    }
}

/// A failure a save reports, as ComfyUI's generic `Exception`.
pub(super) fn exception(message: String) -> Stop {
    Stop::Failed {
        message,
        kind: "Exception".into(),
    }
}

/// A binary TEXT frame (event type 3).
pub(super) fn text_frame(node: &str, text: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + node.len() + text.len());
    b.put_u32(3);
    b.put_u32(node.len() as u32);
    b.put_slice(node.as_bytes());
    b.put_slice(text.as_bytes());
    b.freeze()
}
