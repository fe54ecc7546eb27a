//! WebM and Matroska (EBML): duration, tracks (codec, size, frame
//! duration, sample rate) and the video track's block count. Only the
//! facts: VP8, VP9 and AV1 frames are not decoded here.

use std::collections::BTreeMap;

use super::read::{be32, be64, u8_at};
use super::{Info, Kind};

const EBML: u64 = 0x1A45_DFA3;
const SEGMENT: u64 = 0x1853_8067;
const INFO: u64 = 0x1549_A966;
const SCALE: u64 = 0x2A_D7B1;
const DURATION: u64 = 0x4489;
const TRACKS: u64 = 0x1654_AE6B;
const ENTRY: u64 = 0xAE;
const NUMBER: u64 = 0xD7;
const TYPE: u64 = 0x83;
const CODEC: u64 = 0x86;
const DEFAULT_DURATION: u64 = 0x23_E383;
const VIDEO: u64 = 0xE0;
const WIDTH: u64 = 0xB0;
const HEIGHT: u64 = 0xBA;
const AUDIO: u64 = 0xE1;
const RATE: u64 = 0xB5;
const CHANNELS: u64 = 0x9F;
const CLUSTER: u64 = 0x1F43_B675;
const SIMPLE_BLOCK: u64 = 0xA3;
const BLOCK_GROUP: u64 = 0xA0;
const BLOCK: u64 = 0xA1;

/// Most elements looked at in one file.
const MAX_ELEMENTS: usize = 2_000_000;

/// A variable-length integer at `at`: its value (with the length marker
/// kept for ids, removed for sizes; `None` for an unknown size) and length.
fn vint(b: &[u8], at: usize, id: bool) -> Option<(Option<u64>, usize)> {
    let first = u8_at(b, at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mask = (0xFFu32 >> len) as u8;
    let mut v = u64::from(if id { first } else { first & mask });
    let mut all_ones = v == u64::from(mask);
    for i in 1..len {
        let x = u8_at(b, at + i)?;
        all_ones &= x == 0xFF;
        v = v << 8 | u64::from(x);
    }
    Some(((id || !all_ones).then_some(v), len))
}

/// The elements directly in `b`: `(id, body)`; an unknown size runs to
/// the end of `b`.
fn elements(b: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let (id, n) = vint(b, at, true)?;
        let (size, m) = vint(b, at + n, false)?;
        let start = at + n + m;
        let end = match size {
            Some(s) => start.checked_add(usize::try_from(s).ok()?)?.min(b.len()),
            None => b.len(),
        };
        let body = b.get(start..end)?;
        at = end;
        Some((id?, body))
    })
}

fn uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |acc, &x| acc << 8 | u64::from(x))
}

fn float(b: &[u8]) -> Option<f64> {
    match b.len() {
        4 => Some(f64::from(f32::from_bits(be32(b, 0)?))),
        8 => Some(f64::from_bits(be64(b, 0)?)),
        _ => None,
    }
}

#[derive(Default)]
struct Track {
    number: u64,
    kind: u64,
    codec: String,
    frame_ns: u64,
    width: u32,
    height: u32,
    rate: Option<f64>,
    channels: Option<u16>,
}

/// Reads a WebM or Matroska file's facts (`None` when it is not one).
pub(super) fn webm(b: &[u8]) -> Option<Info> {
    let mut top = elements(b);
    let (id, header) = top.next()?;
    if id != EBML {
        return None;
    }
    let doc = elements(header)
        .find(|(id, _)| *id == 0x4282)
        .map(|(_, d)| String::from_utf8_lossy(d).trim_end_matches('\0').to_owned())
        .unwrap_or_default();
    let segment = top.find(|(id, _)| *id == SEGMENT)?.1;
    let mut scale = 1_000_000u64;
    let mut duration = None;
    let mut tracks: Vec<Track> = Vec::new();
    let mut blocks: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seen = 0usize;
    for (id, body) in elements(segment) {
        seen += 1;
        if seen > MAX_ELEMENTS {
            break;
        }
        match id {
            INFO => {
                for (id, v) in elements(body) {
                    match id {
                        SCALE => scale = uint(v).max(1),
                        DURATION => duration = float(v),
                        _ => {}
                    }
                }
            }
            TRACKS => {
                for (_, entry) in elements(body).filter(|(id, _)| *id == ENTRY).take(64) {
                    tracks.push(track(entry));
                }
            }
            CLUSTER => count_blocks(body, &mut blocks, &mut seen, 0),
            _ => {}
        }
    }
    let video = tracks.iter().find(|t| t.kind == 1);
    let audio = tracks.iter().find(|t| t.kind == 2);
    let chosen = video.or(audio)?;
    let codec = match chosen.codec.as_str() {
        "V_VP8" => "vp8",
        "V_VP9" => "vp9",
        "V_AV1" => "av1",
        "V_MPEG4/ISO/AVC" => "h264",
        "V_MPEGH/ISO/HEVC" => "hevc",
        "A_OPUS" => "opus",
        "A_VORBIS" => "vorbis",
        other => other,
    };
    let container = if doc == "webm" { "webm" } else { "matroska" };
    let seconds = duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .map(|d| d * scale as f64 / 1e9);
    let mut info = if let Some(v) = video {
        let mut info = Info::new(
            Kind::Video,
            container,
            if doc == "webm" {
                "video/webm"
            } else {
                "video/x-matroska"
            },
            codec,
        );
        let frames = blocks.get(&v.number).copied().unwrap_or(0);
        info.set_frames(v.width, v.height, frames, seconds);
        if v.frame_ns > 0 {
            info.fps = Some(1e9 / v.frame_ns as f64);
        }
        info
    } else {
        let mut info = Info::new(
            Kind::Audio,
            container,
            if doc == "webm" {
                "audio/webm"
            } else {
                "audio/x-matroska"
            },
            codec,
        );
        info.duration_s = seconds;
        info
    };
    if let Some(a) = audio {
        info.sample_rate = a
            .rate
            .filter(|r| r.is_finite() && *r > 0.0 && *r < 1e7)
            .map(|r| r as u32);
        info.channels = a.channels;
    }
    Some(info)
}

fn track(entry: &[u8]) -> Track {
    let mut t = Track::default();
    for (id, v) in elements(entry) {
        match id {
            NUMBER => t.number = uint(v),
            TYPE => t.kind = uint(v),
            CODEC => {
                t.codec = String::from_utf8_lossy(v)
                    .trim_end_matches('\0')
                    .chars()
                    .take(64)
                    .collect();
            }
            DEFAULT_DURATION => t.frame_ns = uint(v),
            VIDEO => {
                for (id, v) in elements(v) {
                    match id {
                        WIDTH => t.width = u32::try_from(uint(v)).unwrap_or(0),
                        HEIGHT => t.height = u32::try_from(uint(v)).unwrap_or(0),
                        _ => {}
                    }
                }
            }
            AUDIO => {
                for (id, v) in elements(v) {
                    match id {
                        RATE => t.rate = float(v),
                        CHANNELS => t.channels = u16::try_from(uint(v)).ok(),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    t
}

/// The track number of every block in a cluster (and in clusters an
/// unknown-size cluster swallowed).
fn count_blocks(cluster: &[u8], out: &mut BTreeMap<u64, u64>, seen: &mut usize, depth: usize) {
    if depth > 4 {
        return;
    }
    for (id, body) in elements(cluster) {
        *seen += 1;
        if *seen > MAX_ELEMENTS {
            return;
        }
        match id {
            SIMPLE_BLOCK => count(out, body),
            BLOCK_GROUP => {
                if let Some((_, block)) = elements(body).find(|(id, _)| *id == BLOCK) {
                    count(out, block);
                }
            }
            CLUSTER => count_blocks(body, out, seen, depth + 1),
            _ => {}
        }
    }
}

/// Counts a block for its track (the first number of its body), in at
/// most 64 tracks.
fn count(out: &mut BTreeMap<u64, u64>, block: &[u8]) {
    if let Some((Some(n), _)) = vint(block, 0, false)
        && (out.len() < 64 || out.contains_key(&n))
    {
        *out.entry(n).or_default() += 1;
    }
}
