//! Animated GIF, WebP and PNG: frame count, canvas and delays from a walk
//! of their structure (GIF blocks, RIFF chunks, PNG chunks), and frames
//! through the `image` crate's animation decoders (`gif`, `image-webp`,
//! `png`), held to the image decoder limits.

use image::AnimationDecoder as _;

use super::read::{be16, be32, le16, le24, slice, u8_at};
use super::{Info, Kind, MAX_FRAMES, MediaError, Picked};

/// A GIF: its frames (image descriptors) and their delays.
pub(super) fn gif(b: &[u8]) -> Option<Info> {
    if !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return None;
    }
    let width = u32::from(le16(b, 6)?);
    let height = u32::from(le16(b, 8)?);
    let flags = u8_at(b, 10)?;
    let mut at = 13usize;
    if flags & 0x80 != 0 {
        at += 3 << ((flags & 7) + 1);
    }
    let mut frames = 0u64;
    let mut centis = 0u64;
    let skip_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let n = usize::from(u8_at(b, at)?);
            at += 1 + n;
            if n == 0 {
                return Some(at);
            }
        }
    };
    loop {
        match u8_at(b, at) {
            Some(0x21) => {
                let label = u8_at(b, at + 1)?;
                if label == 0xF9 {
                    centis += u64::from(le16(b, at + 4)?);
                }
                at = skip_blocks(at + 2)?;
            }
            Some(0x2C) => {
                let f = u8_at(b, at + 9)?;
                at += 10;
                if f & 0x80 != 0 {
                    at += 3 << ((f & 7) + 1);
                }
                at = skip_blocks(at + 1)?;
                frames += 1;
                if frames > MAX_FRAMES as u64 {
                    break;
                }
            }
            // The trailer, or a file cut short: what was read counts.
            _ => break,
        }
    }
    let mut info = Info::new(Kind::Video, "gif", "image/gif", "gif");
    info.set_frames(width, height, frames, (centis > 0).then(|| centis as f64 / 100.0));
    Some(info)
}

/// A WebP; `None` unless it is animated (VP8X with the animation flag).
pub(super) fn webp(b: &[u8]) -> Option<Info> {
    if slice(b, 0, 4)? != b"RIFF" || slice(b, 8, 4)? != b"WEBP" || slice(b, 12, 4)? != b"VP8X" {
        return None;
    }
    if u8_at(b, 20)? & 0x02 == 0 {
        return None;
    }
    let width = le24(b, 24)? + 1;
    let height = le24(b, 27)? + 1;
    let end = (usize::try_from(super::read::le32(b, 4)?).ok()?.saturating_add(8)).min(b.len());
    let mut at = 12usize;
    let (mut frames, mut millis) = (0u64, 0u64);
    while at + 8 <= end {
        let id = slice(b, at, 4)?;
        let size = usize::try_from(super::read::le32(b, at + 4)?).ok()?;
        if id == b"ANMF" {
            frames += 1;
            millis += u64::from(le24(b, at + 8 + 12).unwrap_or(0));
            if frames > MAX_FRAMES as u64 {
                break;
            }
        }
        at = at.saturating_add(8).saturating_add(size).saturating_add(size & 1);
    }
    let mut info = Info::new(Kind::Video, "webp", "image/webp", "webp");
    info.set_frames(width, height, frames, (millis > 0).then(|| millis as f64 / 1000.0));
    Some(info)
}

#[allow(clippy::while_let_loop)]
/// A PNG; `None` unless it is animated (an `acTL` chunk).
pub(super) fn apng(b: &[u8]) -> Option<Info> {
    if !b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return None;
    }
    let mut at = 8usize;
    let (mut width, mut height) = (0, 0);
    let mut animated = false;
    let (mut frames, mut seconds) = (0u64, 0f64);
    loop {
        let Some(len) = be32(b, at).and_then(|l| usize::try_from(l).ok()) else {
            break;
        };
        let Some(kind) = slice(b, at + 4, 4) else { break };
        let data = at + 8;
        match kind {
            b"IHDR" => {
                width = be32(b, data)?;
                height = be32(b, data + 4)?;
            }
            b"acTL" => animated = true,
            b"fcTL" => {
                frames += 1;
                let num = f64::from(be16(b, data + 20).unwrap_or(0));
                let den = match be16(b, data + 22).unwrap_or(0) {
                    0 => 100.0,
                    d => f64::from(d),
                };
                seconds += num / den;
                if frames > MAX_FRAMES as u64 {
                    break;
                }
            }
            b"IEND" => break,
            _ => {}
        }
        at = match data.checked_add(len).and_then(|e| e.checked_add(4)) {
            Some(next) if next <= b.len() => next,
            _ => break,
        };
    }
    if !animated {
        return None;
    }
    let mut info = Info::new(Kind::Video, "png", "image/png", "apng");
    info.set_frames(width, height, frames, (seconds > 0.0).then_some(seconds));
    Some(info)
}

/// Decodes the frames of an animated GIF, WebP or PNG in order, up to
/// the last index in `picked`, and hands each picked one to `keep`.
pub(super) fn frames(codec: &str, b: &[u8], limits: image::Limits, picked: &mut Picked<'_>) -> Result<(), MediaError> {
    let bad = |e: image::ImageError| MediaError::Decode(format!("the {codec} frames do not decode: {e}"));
    let cursor = std::io::Cursor::new(b);
    let frames: image::Frames<'_> = match codec {
        "gif" => {
            let mut d = image::codecs::gif::GifDecoder::new(cursor).map_err(bad)?;
            image::ImageDecoder::set_limits(&mut d, limits).map_err(bad)?;
            d.into_frames()
        }
        "webp" => {
            let mut d = image::codecs::webp::WebPDecoder::new(cursor).map_err(bad)?;
            image::ImageDecoder::set_limits(&mut d, limits).map_err(bad)?;
            d.into_frames()
        }
        "apng" => image::codecs::png::PngDecoder::with_limits(cursor, limits)
            .map_err(bad)?
            .apng()
            .map_err(bad)?
            .into_frames(),
        other => return Err(MediaError::Decode(format!("{other} frames are not decoded here"))),
    };
    for frame in frames {
        if picked.done() {
            break;
        }
        let frame = frame.map_err(bad)?;
        picked.offer(|| Ok(image::DynamicImage::ImageRgba8(frame.into_buffer())))?;
    }
    Ok(())
}
