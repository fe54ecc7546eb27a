//! H.264 frames out of an MP4 track, decoded by OpenH264 (the `openh264`
//! crate, Cisco's decoder built from source).
//!
//! Before anything reaches the decoder, every sequence parameter set
//! (the `avcC` record's and any in the samples) is read here and its
//! picture size checked against the size the memory was budgeted for, so
//! a stream whose headers lie about its size is refused rather than
//! allowed to allocate. Samples are converted from length-prefixed to
//! Annex B; each decoded picture is offered to the contact sheet.

use super::read::{Bits, be16, u8_at};
use super::{MediaError, Picked};

/// The `avcC` record: NAL length size, parameter sets.
pub(super) struct Avcc {
    length_size: usize,
    sets: Vec<Vec<u8>>,
}

/// Reads an `avcC` record.
pub(super) fn avcc(b: &[u8]) -> Option<Avcc> {
    let length_size = usize::from(u8_at(b, 4)? & 3) + 1;
    let mut at = 5usize;
    let mut sets = Vec::new();
    for mask in [0x1F, 0xFF] {
        let n = u8_at(b, at)? & mask;
        at += 1;
        for _ in 0..n {
            let len = usize::from(be16(b, at)?);
            sets.push(b.get(at + 2..at + 2 + len)?.to_vec());
            at += 2 + len;
        }
    }
    Some(Avcc { length_size, sets })
}

/// What a sequence parameter set says of the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sps {
    /// Coded width and height (whole macroblocks).
    pub width: u32,
    pub height: u32,
    /// Reference frames the decoder keeps.
    pub refs: u32,
}

/// The payload of a NAL unit without emulation-prevention bytes.
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads a sequence parameter set NAL unit (header byte included).
pub(super) fn sps(nal: &[u8]) -> Option<Sps> {
    let data = rbsp(nal.get(1..)?);
    let mut r = Bits::new(&data);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // id
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma = r.ue()?;
        if chroma == 3 {
            r.bit()?;
        }
        r.ue()?;
        r.ue()?;
        r.bit()?;
        if r.bit()? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    let refs = r.ue()?;
    r.bit()?;
    let w = r.ue()?.checked_add(1)?;
    let h = r.ue()?.checked_add(1)?;
    let frame_only = r.bit()?;
    Some(Sps {
        width: w.checked_mul(16)?,
        height: h.checked_mul(16)?.checked_mul(2 - frame_only)?,
        refs: refs.min(16),
    })
}

/// The largest picture the parameter sets of `avcc` describe, refusing a
/// stream without one or one larger than `max` (width, height: what was
/// budgeted, rounded up to whole macroblocks).
pub(super) fn check_sets(avcc: &Avcc, max: (u32, u32)) -> Result<Sps, MediaError> {
    let mut found = None;
    for nal in &avcc.sets {
        if nal.first().map(|h| h & 0x1F) == Some(7) {
            let s = checked(nal, max)?;
            found = Some(s);
        }
    }
    found.ok_or_else(|| MediaError::Decode("the H.264 track has no sequence parameter set".to_owned()))
}

fn checked(nal: &[u8], max: (u32, u32)) -> Result<Sps, MediaError> {
    let s = sps(nal).ok_or_else(|| MediaError::Decode("an H.264 sequence parameter set does not parse".to_owned()))?;
    let round = |v: u32| v.div_ceil(16) * 16;
    if s.width > round(max.0) || s.height > round(max.1) {
        return Err(MediaError::Refused(format!(
            "the H.264 stream says its pictures are {}x{}, larger than the {}x{} its container declares",
            s.width, s.height, max.0, max.1
        )));
    }
    Ok(s)
}

/// Decodes `samples` (offset, size) of `file` in order and offers every
/// picture to `picked`, until it has what it wants. A sample that fails
/// to decode ends the walk: what was picked so far stands.
pub(super) fn frames(
    file: &[u8],
    samples: &[(usize, usize)],
    avcc: &Avcc,
    max: (u32, u32),
    picked: &mut Picked<'_>,
) -> Result<(), MediaError> {
    use openh264::formats::YUVSource as _;
    let broken = |e: openh264::Error| MediaError::Decode(format!("the H.264 stream does not decode: {e}"));
    // No flush after each packet: with B-frames a flush per packet empties
    // the picture buffers the next frames still refer to.
    let config = openh264::decoder::DecoderConfig::new().flush_after_decode(openh264::decoder::Flush::NoFlush);
    let mut decoder =
        openh264::decoder::Decoder::with_api_config(openh264::OpenH264API::from_source(), config).map_err(broken)?;
    let mut annexb = Vec::new();
    for nal in &avcc.sets {
        annexb.extend_from_slice(&[0, 0, 0, 1]);
        annexb.extend_from_slice(nal);
    }
    let to_rgb = |yuv: &openh264::decoder::DecodedYUV<'_>| -> Result<image::DynamicImage, MediaError> {
        let (w, h) = yuv.dimensions();
        let (w32, h32) = (
            u32::try_from(w).unwrap_or(u32::MAX),
            u32::try_from(h).unwrap_or(u32::MAX),
        );
        if w32 > max.0.div_ceil(16) * 16 || h32 > max.1.div_ceil(16) * 16 || w == 0 || h == 0 {
            return Err(MediaError::Refused(format!(
                "a decoded picture is {w}x{h}, larger than the {}x{} declared",
                max.0, max.1
            )));
        }
        let mut rgb = vec![0u8; w * h * 3];
        yuv.write_rgb8(&mut rgb);
        image::RgbImage::from_raw(w32, h32, rgb)
            .map(image::DynamicImage::ImageRgb8)
            .ok_or_else(|| MediaError::Decode("a decoded picture has the wrong size".to_owned()))
    };
    let mut first = true;
    for &(offset, size) in samples {
        if picked.done() {
            return Ok(());
        }
        let sample = file
            .get(offset..offset.saturating_add(size))
            .ok_or_else(|| MediaError::Decode("an H.264 sample lies outside the file".to_owned()))?;
        if !first {
            annexb.clear();
        }
        first = false;
        let mut at = 0usize;
        while at < sample.len() {
            let len = sample
                .get(at..at + avcc.length_size)
                .ok_or_else(|| MediaError::Decode("an H.264 sample is cut short".to_owned()))?
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
            let nal = sample
                .get(at + avcc.length_size..at + avcc.length_size + len)
                .ok_or_else(|| MediaError::Decode("an H.264 NAL unit runs past its sample".to_owned()))?;
            if nal.first().map(|h| h & 0x1F) == Some(7) {
                checked(nal, max)?;
            }
            annexb.extend_from_slice(&[0, 0, 0, 1]);
            annexb.extend_from_slice(nal);
            at += avcc.length_size + len;
        }
        match decoder.decode(&annexb) {
            Ok(Some(yuv)) => picked.offer(|| to_rgb(&yuv))?,
            Ok(None) => {}
            Err(e) if picked.count() == 0 => return Err(broken(e)),
            Err(_) => return Ok(()),
        }
    }
    if let Ok(rest) = decoder.flush_remaining() {
        for yuv in &rest {
            if picked.done() {
                break;
            }
            picked.offer(|| to_rgb(yuv))?;
        }
    }
    Ok(())
}
