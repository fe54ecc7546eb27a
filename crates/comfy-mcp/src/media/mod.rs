//! Video and audio outputs as an assistant can see them: what a file is
//! (container, codec, size, frame rate, frame count, duration, sample
//! rate and channels), read from its headers, and for the formats decoded
//! in-process a contact sheet: evenly spaced frames on one JPEG.
//!
//! What each format needs:
//! - MP4/MOV: the boxes are read here (`mp4`); H.264 (`avc1`/`avc3`)
//!   frames are decoded by OpenH264 (`h264`); H.265, VP9, AV1 and
//!   fragmented files get their facts only.
//! - WebM/Matroska: the EBML elements are read here (`webm`); VP8, VP9
//!   and AV1 are not decoded (facts only).
//! - Animated GIF, WebP and PNG: their structure is walked here and their
//!   frames decoded by the `image` crate's decoders (`anim`).
//! - FLAC, MP3, Ogg (Opus, Vorbis), WAV: headers only (`audio`).
//!
//! Everything is bounded: the file is in memory within the image memory
//! budget ([`crate::images`]); a sheet's decoding takes its memory (frame
//! buffers, the decoder's reference pictures, the sheet) from the same
//! budget, as the headers declare it, and headers that lie beyond that are
//! refused (`h264::check_sets`, the `image` decoder limits); at most
//! [`MAX_FRAMES`] frames are walked and [`MAX_DECODE_PIXELS`] pixels
//! decoded for one sheet (past that, an H.264 sheet uses key frames only).
//! A file we cannot decode still gets its facts; a file we cannot read at
//! all is described by its size and type alone, never an error.

mod anim;
mod audio;
mod h264;
mod mp4;
mod read;
mod webm;

use serde_json::{Map, Value, json};

/// Most frames walked in one file.
pub const MAX_FRAMES: usize = 10_000;

/// Frames on a contact sheet.
pub const SHEET_FRAMES: usize = 9;

/// Largest side of a contact sheet.
const SHEET_SIDE: u32 = 1024;

/// Most pixels decoded for one contact sheet (about 2 s of 1080p work).
pub const MAX_DECODE_PIXELS: u64 = 1 << 29;

/// Largest declared picture side decoded.
const MAX_SIDE: u32 = crate::images::MAX_SIDE;

/// Video or audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Moving pictures (animated images included).
    Video,
    /// Sound only.
    Audio,
}

/// The facts of a video or audio file.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// Video or audio.
    pub kind: Kind,
    /// `mp4`, `webm`, `gif`, `flac`, ...
    pub container: &'static str,
    /// Its MIME type.
    pub mime: &'static str,
    /// `h264`, `vp9`, `opus`, ...
    pub codec: String,
    /// Picture width and height.
    pub width: Option<u32>,
    /// Picture height.
    pub height: Option<u32>,
    /// Frames (video).
    pub frames: Option<u64>,
    /// Frames per second (video).
    pub fps: Option<f64>,
    /// Duration, seconds.
    pub duration_s: Option<f64>,
    /// Samples per second (audio).
    pub sample_rate: Option<u32>,
    /// Channels (audio).
    pub channels: Option<u16>,
}

impl Info {
    fn new(kind: Kind, container: &'static str, mime: &'static str, codec: &str) -> Self {
        Self {
            kind,
            container,
            mime,
            codec: codec.to_owned(),
            width: None,
            height: None,
            frames: None,
            fps: None,
            duration_s: None,
            sample_rate: None,
            channels: None,
        }
    }

    fn set_frames(&mut self, width: u32, height: u32, frames: u64, seconds: Option<f64>) {
        self.width = (width > 0).then_some(width);
        self.height = (height > 0).then_some(height);
        self.frames = Some(frames);
        self.duration_s = seconds;
        self.fps = seconds.filter(|s| *s > 0.0 && frames > 0).map(|s| frames as f64 / s);
    }

    /// Whether this file's frames are decoded here.
    #[must_use]
    pub fn decodable(&self) -> bool {
        matches!(self.codec.as_str(), "h264" | "gif" | "webp" | "apng") && self.container != "webm"
    }

    /// The facts as JSON (absent facts left out; seconds and rates
    /// rounded to milliseconds).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        m.insert(
            "kind".to_owned(),
            json!(if self.kind == Kind::Video { "video" } else { "audio" }),
        );
        m.insert("container".to_owned(), json!(self.container));
        m.insert("mime_type".to_owned(), json!(self.mime));
        m.insert("codec".to_owned(), json!(self.codec));
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put("width", self.width.map(Value::from));
        put("height", self.height.map(Value::from));
        put("frames", self.frames.map(Value::from));
        put("fps", self.fps.filter(|f| f.is_finite()).map(|f| json!(round(f))));
        put(
            "duration_seconds",
            self.duration_s.filter(|f| f.is_finite()).map(|f| json!(round(f))),
        );
        put("sample_rate", self.sample_rate.map(Value::from));
        put("channels", self.channels.map(Value::from));
        Value::Object(m)
    }

    /// One line for the assistant: `H.264 video in MP4, 64x48, 12 frames
    /// at 8 fps, 1.5 s`.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut parts = vec![format!(
            "{} {} in {}",
            self.codec.to_uppercase(),
            if self.kind == Kind::Video { "video" } else { "audio" },
            self.container.to_uppercase()
        )];
        if let (Some(w), Some(h)) = (self.width, self.height) {
            parts.push(format!("{w}x{h}"));
        }
        match (self.frames, self.fps) {
            (Some(n), Some(f)) => parts.push(format!("{n} frames at {} fps", (f * 100.0).round() / 100.0)),
            (Some(n), None) => parts.push(format!("{n} frames")),
            _ => {}
        }
        if let Some(d) = self.duration_s {
            parts.push(format!("{} s", (d * 1000.0).round() / 1000.0));
        }
        if let Some(r) = self.sample_rate {
            parts.push(format!("{r} Hz"));
        }
        if let Some(c) = self.channels {
            parts.push(format!("{c} channel{}", if c == 1 { "" } else { "s" }));
        }
        parts.join(", ")
    }
}

/// Why a contact sheet could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The frames do not decode.
    #[error("{0}")]
    Decode(String),
    /// The file is outside the limits or its headers contradict each other.
    #[error("{0}")]
    Refused(String),
}

/// What `bytes` are, when they are a video, an animation or audio
/// (`None` for a still image or anything else).
#[must_use]
pub fn probe(bytes: &[u8]) -> Option<Info> {
    if let Some(m) = mp4::movie(bytes) {
        return Some(mp4_info(&m));
    }
    if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return webm::webm(bytes);
    }
    if let Some(g) = anim::gif(bytes) {
        return (g.frames.unwrap_or(0) > 1).then_some(g);
    }
    anim::webp(bytes)
        .or_else(|| anim::apng(bytes))
        .or_else(|| audio::flac(bytes))
        .or_else(|| audio::ogg(bytes))
        .or_else(|| audio::wav(bytes))
        .or_else(|| {
            let sync = bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0;
            (bytes.starts_with(b"ID3") || sync).then(|| audio::mp3(bytes)).flatten()
        })
}

fn mp4_info(m: &mp4::Movie<'_>) -> Info {
    let codec_of = |k: [u8; 4]| match &k {
        b"avc1" | b"avc3" => "h264".to_owned(),
        b"hvc1" | b"hev1" => "hevc".to_owned(),
        b"vp09" => "vp9".to_owned(),
        b"av01" => "av1".to_owned(),
        b"mp4v" => "mpeg4".to_owned(),
        b"mp4a" => "aac".to_owned(),
        b"Opus" => "opus".to_owned(),
        b"fLaC" => "flac".to_owned(),
        other => mp4::fourcc(*other),
    };
    let seconds = |dur: u64, ts: u32| (ts > 0 && dur > 0).then(|| dur as f64 / f64::from(ts));
    let movie_seconds = seconds(m.duration, m.timescale);
    let audio = m.tracks.iter().find(|t| t.handler == *b"soun");
    let mut info = if let Some(v) = m.tracks.iter().find(|t| t.handler == *b"vide") {
        let mut info = Info::new(Kind::Video, "mp4", "video/mp4", &codec_of(v.codec));
        let frames = u64::from(v.sample_count().unwrap_or(0));
        info.set_frames(
            v.width,
            v.height,
            frames,
            seconds(v.duration, v.timescale).or(movie_seconds),
        );
        info
    } else {
        let codec = audio.map_or_else(|| "unknown".to_owned(), |a| codec_of(a.codec));
        let mut info = Info::new(Kind::Audio, "mp4", "audio/mp4", &codec);
        info.duration_s = audio.and_then(|a| seconds(a.duration, a.timescale)).or(movie_seconds);
        info
    };
    if m.fragmented {
        info.container = "mp4 (fragmented)";
    }
    if let Some(a) = audio {
        info.sample_rate = a.sample_rate.filter(|r| *r > 0);
        info.channels = a.channels;
    }
    info
}

/// A contact sheet: the JPEG and which frames it shows.
#[derive(Debug, Clone)]
pub struct Sheet {
    /// The JPEG.
    pub jpeg: Vec<u8>,
    /// Its width and height.
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// The frames shown, 0-based, in the order decoded.
    pub frames: Vec<u64>,
    /// Only key frames were decoded (the video was too long to decode
    /// whole).
    pub key_frames_only: bool,
}

/// How a sheet of `bytes` will be decoded, and what it costs.
#[derive(Debug)]
pub struct Plan {
    /// Memory the decode takes, bytes (frame buffers, the decoder's
    /// pictures, the sheet).
    pub cost: usize,
    key_frames_only: bool,
}

/// Plans a contact sheet of `bytes` (described by `info`): checks the
/// declared size and the work against the limits and says what the decode
/// will take from the memory budget.
///
/// # Errors
/// [`MediaError::Refused`] when the file is outside the limits;
/// [`MediaError::Decode`] when its frames are not decoded here.
pub fn plan(info: &Info, bytes: &[u8]) -> Result<Plan, MediaError> {
    if !info.decodable() {
        return Err(MediaError::Decode(format!(
            "{} frames are not decoded here",
            info.codec.to_uppercase()
        )));
    }
    let (w, h) = (info.width.unwrap_or(0), info.height.unwrap_or(0));
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(MediaError::Refused(format!(
            "the frames are {w}x{h}; frames from 1 to {MAX_SIDE} pixels a side are decoded"
        )));
    }
    let frames = info.frames.unwrap_or(0);
    if frames == 0 {
        return Err(MediaError::Decode("the file has no frames".to_owned()));
    }
    let pixels = u64::from(w) * u64::from(h);
    let sheet = u64::from(SHEET_SIDE) * u64::from(SHEET_SIDE) * 3 * 2;
    let (per_frame, mut key_frames_only) = if info.codec == "h264" {
        let (_, avcc, _) = h264_parts(bytes)?;
        let sps = h264::check_sets(&avcc, (w, h))?;
        let mb = u64::from(sps.width) * u64::from(sps.height);
        // The decoder's pictures (4:2:0) and one RGB copy.
        (mb * 3 / 2 * u64::from(sps.refs + 3) + pixels * 3, false)
    } else {
        // The canvas, the previous one and the frame (RGBA), and its
        // RGB thumbnail's source.
        (pixels * 4 * 3, false)
    };
    // Frames decoded: all of them up to the last shown.
    if frames.saturating_mul(pixels) > MAX_DECODE_PIXELS {
        if info.codec == "h264" {
            key_frames_only = true;
        } else {
            return Err(MediaError::Refused(format!(
                "{frames} frames of {w}x{h} are more than one contact sheet decodes ({} megapixels)",
                MAX_DECODE_PIXELS >> 20
            )));
        }
    }
    Ok(Plan {
        cost: usize::try_from(per_frame.saturating_add(sheet)).unwrap_or(usize::MAX),
        key_frames_only,
    })
}

#[allow(clippy::type_complexity)]
fn h264_parts(bytes: &[u8]) -> Result<(Vec<(usize, usize, bool)>, h264::Avcc, (u32, u32)), MediaError> {
    let no = |why: &str| MediaError::Decode(why.to_owned());
    let m = mp4::movie(bytes).ok_or_else(|| no("the MP4 boxes do not read"))?;
    if m.fragmented {
        return Err(no("fragmented MP4 files are not decoded here"));
    }
    let v = m
        .tracks
        .iter()
        .find(|t| t.handler == *b"vide")
        .ok_or_else(|| no("the MP4 has no video track"))?;
    let avcc = v
        .avcc
        .and_then(h264::avcc)
        .ok_or_else(|| no("the H.264 track has no readable avcC record"))?;
    let samples = v.samples(bytes.len()).ok_or_else(|| {
        no("the MP4 sample tables do not agree with each other or with the file (or list too many samples)")
    })?;
    Ok((samples, avcc, (v.width, v.height)))
}

/// `n` evenly spaced indices of `0..total`, the first and last included.
fn spaced(total: u64, n: usize) -> Vec<u64> {
    let n = (n as u64).min(total);
    match n {
        0 => Vec::new(),
        1 => vec![0],
        _ => (0..n).map(|i| i * (total - 1) / (n - 1)).collect(),
    }
}

/// The frames a sheet wants, in the order they come.
pub(crate) struct Picked<'a> {
    wanted: &'a [u64],
    next: usize,
    seen: u64,
    cell: (u32, u32),
    cells: Vec<(u64, image::RgbImage)>,
}

impl<'a> Picked<'a> {
    /// Nothing picked yet: `wanted` frames, each scaled to `cell`.
    fn new(wanted: &'a [u64], cell: (u32, u32)) -> Self {
        Self {
            wanted,
            next: 0,
            seen: 0,
            cell,
            cells: Vec::new(),
        }
    }

    fn done(&self) -> bool {
        self.next >= self.wanted.len()
    }

    fn count(&self) -> usize {
        self.cells.len()
    }

    /// The next frame in order: kept (as a thumbnail) when wanted.
    fn offer(&mut self, make: impl FnOnce() -> Result<image::DynamicImage, MediaError>) -> Result<(), MediaError> {
        let i = self.seen;
        self.seen += 1;
        if self.wanted.get(self.next) == Some(&i) {
            let frame = make()?;
            self.cells
                .push((i, frame.thumbnail(self.cell.0, self.cell.1).to_rgb8()));
            self.next += 1;
        }
        Ok(())
    }
}

/// Decodes the sheet's frames of `bytes` as `plan` says and lays them out
/// on one JPEG whose base64 fits `inline` bytes. Blocking (run it off the
/// async workers); `max_alloc` bounds the image decoders.
///
/// # Errors
/// [`MediaError`] when no frame decodes or the headers lie.
#[allow(clippy::many_single_char_names)]
pub fn contact_sheet(
    info: &Info,
    plan: &Plan,
    bytes: &[u8],
    inline: usize,
    max_alloc: usize,
) -> Result<Sheet, MediaError> {
    let (w, h) = (info.width.unwrap_or(1).max(1), info.height.unwrap_or(1).max(1));
    let frames = info.frames.unwrap_or(0).min(MAX_FRAMES as u64);
    let n = SHEET_FRAMES.min(usize::try_from(frames).unwrap_or(SHEET_FRAMES)).max(1);
    let cols = (n as f64).sqrt().ceil() as u32;
    let rows = (n as u32).div_ceil(cols);
    let gap = 4u32;
    let cell_w = ((SHEET_SIDE - gap * (cols - 1)) / cols).max(8);
    let cell_h = ((u64::from(cell_w) * u64::from(h) / u64::from(w)) as u32).clamp(8, SHEET_SIDE / rows);
    let (wanted, key_frames_only) = if info.codec == "h264" {
        let (samples, avcc, declared) = h264_parts(bytes)?;
        let chosen: Vec<(usize, usize)> = if plan.key_frames_only {
            samples.iter().filter(|s| s.2).map(|s| (s.0, s.1)).collect()
        } else {
            samples.iter().map(|s| (s.0, s.1)).collect()
        };
        let wanted = spaced(chosen.len() as u64, n);
        let mut picked = Picked::new(&wanted, (cell_w, cell_h));
        h264::frames(bytes, &chosen, &avcc, declared, &mut picked)?;
        (picked.cells, plan.key_frames_only)
    } else {
        let wanted = spaced(frames, n);
        let mut picked = Picked::new(&wanted, (cell_w, cell_h));
        anim::frames(&info.codec, bytes, crate::images::limits(max_alloc), &mut picked)?;
        (picked.cells, false)
    };
    if wanted.is_empty() {
        return Err(MediaError::Decode("no frame decoded".to_owned()));
    }
    let mut sheet = image::RgbImage::from_pixel(
        cols * cell_w + gap * (cols - 1),
        rows * cell_h + gap * (rows - 1),
        image::Rgb([32, 32, 32]),
    );
    for (i, (_, cell)) in wanted.iter().enumerate() {
        let (c, r) = (i as u32 % cols, i as u32 / cols);
        let x = c * (cell_w + gap) + (cell_w - cell.width().min(cell_w)) / 2;
        let y = r * (cell_h + gap) + (cell_h - cell.height().min(cell_h)) / 2;
        image::imageops::overlay(&mut sheet, cell, i64::from(x), i64::from(y));
    }
    let (jpeg, width, height) = fit_jpeg(&image::DynamicImage::ImageRgb8(sheet), inline)?;
    Ok(Sheet {
        jpeg,
        width,
        height,
        frames: wanted.iter().map(|(i, _)| *i).collect(),
        key_frames_only,
    })
}

/// JPEG at 80 %, smaller until its base64 fits `inline` bytes.
fn fit_jpeg(img: &image::DynamicImage, inline: usize) -> Result<(Vec<u8>, u32, u32), MediaError> {
    for side in [SHEET_SIDE, 768, 512, 384, 256, 128] {
        let small = if img.width().max(img.height()) > side {
            img.thumbnail(side, side)
        } else {
            img.clone()
        };
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
            .encode_image(&small.to_rgb8())
            .map_err(|e| MediaError::Decode(format!("cannot encode the contact sheet: {e}")))?;
        if jpeg.len().div_ceil(3) * 4 <= inline {
            return Ok((jpeg, small.width(), small.height()));
        }
    }
    Err(MediaError::Refused(format!(
        "no contact sheet fits the inline budget of {inline} bytes (server.max_inline_bytes)"
    )))
}

#[cfg(test)]
mod tests;
