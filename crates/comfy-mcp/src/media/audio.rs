//! Audio files from their headers, without decoding: FLAC (STREAMINFO),
//! Ogg (Opus and Vorbis: the identification header and the last page's
//! granule position), MP3 (the first frame header, the Xing/Info or VBRI
//! frame count, else the constant bit rate) and WAV (`fmt ` and `data`).

use super::read::{be32, le16, le32, le64, slice, u8_at};
use super::{Info, Kind};

/// FLAC: `fLaC`, then metadata blocks; the first is STREAMINFO.
pub(super) fn flac(b: &[u8]) -> Option<Info> {
    if !b.starts_with(b"fLaC") {
        return None;
    }
    let header = u8_at(b, 4)?;
    if header & 0x7F != 0 {
        return None;
    }
    let si = slice(b, 8, 34)?;
    let rate = be32(si, 10)? >> 12;
    let channels = ((si[12] >> 1) & 0x07) + 1;
    let total = (u64::from(si[13] & 0x0F) << 32) | u64::from(be32(si, 14)?);
    let mut info = Info::new(Kind::Audio, "flac", "audio/flac", "flac");
    info.sample_rate = (rate > 0).then_some(rate);
    info.channels = Some(u16::from(channels));
    if rate > 0 && total > 0 {
        info.duration_s = Some(total as f64 / f64::from(rate));
    }
    Some(info)
}

/// One Ogg page: header type, granule position, serial, body.
struct Page<'a> {
    granule: u64,
    serial: u32,
    body: &'a [u8],
    len: usize,
}

fn ogg_page(b: &[u8], at: usize) -> Option<Page<'_>> {
    if slice(b, at, 4)? != b"OggS" {
        return None;
    }
    let granule = le64(b, at + 6)?;
    let serial = le32(b, at + 14)?;
    let segments = usize::from(u8_at(b, at + 26)?);
    let table = slice(b, at + 27, segments)?;
    let body_len: usize = table.iter().map(|&s| usize::from(s)).sum();
    let body = slice(b, at + 27 + segments, body_len)?;
    Some(Page {
        granule,
        serial,
        body,
        len: 27 + segments + body_len,
    })
}

/// Ogg with Opus or Vorbis in its first stream.
pub(super) fn ogg(b: &[u8]) -> Option<Info> {
    let first = ogg_page(b, 0)?;
    let (codec, rate, channels, pre_skip, clock) = if first.body.starts_with(b"OpusHead") {
        let channels = u16::from(u8_at(first.body, 9)?);
        let pre_skip = u64::from(le16(first.body, 10)?);
        let input_rate = le32(first.body, 12)?;
        // Opus granules count 48 kHz samples whatever the input rate.
        ("opus", input_rate, channels, pre_skip, 48_000u32)
    } else if first.body.starts_with(b"\x01vorbis") {
        let channels = u16::from(u8_at(first.body, 11)?);
        let rate = le32(first.body, 12)?;
        ("vorbis", rate, channels, 0, rate)
    } else {
        return None;
    };
    // Walk the pages (each is bounded by the file) for the stream's last
    // granule position.
    let mut at = first.len;
    let mut last = first.granule;
    let mut pages = 0usize;
    while let Some(p) = ogg_page(b, at) {
        if p.serial == first.serial && p.granule != u64::MAX {
            last = p.granule;
        }
        at += p.len;
        pages += 1;
        if pages > 1_000_000 {
            break;
        }
    }
    let mut info = Info::new(
        Kind::Audio,
        "ogg",
        if codec == "opus" {
            "audio/ogg; codecs=opus"
        } else {
            "audio/ogg"
        },
        codec,
    );
    info.sample_rate = (rate > 0).then_some(rate);
    info.channels = Some(channels);
    if clock > 0 && last > pre_skip {
        info.duration_s = Some((last - pre_skip) as f64 / f64::from(clock));
    }
    Some(info)
}

/// MPEG audio layer III.
pub(super) fn mp3(b: &[u8]) -> Option<Info> {
    let mut at = 0usize;
    if b.starts_with(b"ID3") {
        let s = slice(b, 6, 4)?;
        let size = s.iter().fold(0usize, |acc, &x| (acc << 7) | usize::from(x & 0x7F));
        at = 10 + size + if u8_at(b, 5)? & 0x10 != 0 { 10 } else { 0 };
    }
    // The first frame header within the next 64 KiB.
    let end = b.len().min(at.saturating_add(65_536));
    let start = (at..end.saturating_sub(4))
        .find(|&i| b[i] == 0xFF && b[i + 1] & 0xE0 == 0xE0 && frame_header(be32(b, i).unwrap_or(0)).is_some())?;
    let h = be32(b, start)?;
    let (rate, bitrate_kbps, samples_per_frame, version1, mono) = frame_header(h)?;
    let mut info = Info::new(Kind::Audio, "mp3", "audio/mpeg", "mp3");
    info.sample_rate = Some(rate);
    info.channels = Some(if mono { 1 } else { 2 });
    // Xing/Info after the side information, or VBRI at 32.
    let side = match (version1, mono) {
        (true, false) => 32,
        (true, true) | (false, false) => 17,
        (false, true) => 9,
    };
    let frames = {
        let x = start + 4 + side;
        match slice(b, x, 4) {
            Some(b"Xing" | b"Info") if be32(b, x + 4).is_some_and(|f| f & 1 == 1) => be32(b, x + 8),
            _ if slice(b, start + 36, 4) == Some(b"VBRI") => be32(b, start + 36 + 14),
            _ => None,
        }
    };
    info.duration_s = match frames {
        Some(n) => Some(f64::from(n) * f64::from(samples_per_frame) / f64::from(rate)),
        None if bitrate_kbps > 0 => Some((b.len() - start) as f64 * 8.0 / (f64::from(bitrate_kbps) * 1000.0)),
        None => None,
    };
    Some(info)
}

const V1: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/// Bit rates (kbit/s) of MPEG-1 and MPEG-2 layer III.
/// A layer III frame header: sample rate, bit rate (kbit/s), samples per
/// frame, MPEG-1 or not, mono.
fn frame_header(h: u32) -> Option<(u32, u32, u32, bool, bool)> {
    if h >> 21 != 0x7FF {
        return None;
    }
    let version = (h >> 19) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    let layer = (h >> 17) & 3; // 1: layer III
    let bitrate_index = (h >> 12) & 0xF;
    let rate_index = (h >> 10) & 3;
    if version == 1 || layer != 1 || bitrate_index == 0xF || rate_index == 3 {
        return None;
    }
    let base = [44_100, 48_000, 32_000][rate_index as usize];
    let rate = match version {
        3 => base,
        2 => base / 2,
        _ => base / 4,
    };
    let bitrate = if version == 3 { V1 } else { V2 }[bitrate_index as usize];
    let mono = (h >> 6) & 3 == 3;
    Some((rate, bitrate, if version == 3 { 1152 } else { 576 }, version == 3, mono))
}

/// RIFF WAVE.
pub(super) fn wav(b: &[u8]) -> Option<Info> {
    if slice(b, 0, 4)? != b"RIFF" || slice(b, 8, 4)? != b"WAVE" {
        return None;
    }
    let mut info = Info::new(Kind::Audio, "wav", "audio/wav", "pcm");
    let mut at = 12usize;
    let mut byte_rate = 0u32;
    for _ in 0..64 {
        let Some(id) = slice(b, at, 4) else { break };
        let size = le32(b, at + 4)? as usize;
        match id {
            b"fmt " => {
                info.channels = le16(b, at + 10);
                info.sample_rate = le32(b, at + 12);
                byte_rate = le32(b, at + 16)?;
            }
            b"data" => {
                let size = size.min(b.len().saturating_sub(at + 8));
                if byte_rate > 0 {
                    info.duration_s = Some(size as f64 / f64::from(byte_rate));
                }
                break;
            }
            _ => {}
        }
        at = at.checked_add(8 + size + (size & 1))?;
    }
    Some(info)
}
