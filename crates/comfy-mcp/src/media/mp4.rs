//! MP4 and QuickTime (ISO base media): the boxes a video's facts and
//! samples need (`mvhd`, `tkhd`, `mdhd`, `hdlr`, `stsd` with `avcC`,
//! `stts`, `stss`, `stsc`, `stsz`, `stco`/`co64`), read from a slice with
//! every size checked against its parent. Written here rather than taken
//! from a crate: the readers we looked at allocate what a box header says
//! before checking it against the file (see docs/architecture.md).

use super::read::{be16, be32, be64, slice};

/// Most samples a track's table is expanded to (16 bytes each).
pub(super) const MAX_SAMPLES: usize = 200_000;

/// The boxes directly inside `b`: `(type, body)`.
fn boxes(b: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let size = be32(b, at)?;
        let kind: [u8; 4] = slice(b, at + 4, 4)?.try_into().ok()?;
        let (header, len) = match size {
            0 => (8, b.len() - at),
            1 => (16, usize::try_from(be64(b, at + 8)?).ok()?),
            n => (8, usize::try_from(n).ok()?),
        };
        if len < header {
            return None;
        }
        let body = b.get(at + header..at.checked_add(len)?)?;
        at += len;
        Some((kind, body))
    })
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(b).find(|(k, _)| k == kind).map(|(_, body)| body)
}

/// A track of the movie.
#[derive(Debug, Default)]
pub(super) struct Track<'a> {
    /// `vide`, `soun`, ...
    pub handler: [u8; 4],
    pub timescale: u32,
    pub duration: u64,
    pub width: u32,
    pub height: u32,
    /// The sample entry's type: `avc1`, `hvc1`, `vp09`, `av01`, `mp4a`, ...
    pub codec: [u8; 4],
    /// The `avcC` record of an `avc1`/`avc3` entry.
    pub avcc: Option<&'a [u8]>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    stbl: &'a [u8],
}

/// The movie: its tracks and whether it is fragmented.
#[derive(Debug, Default)]
pub(super) struct Movie<'a> {
    pub timescale: u32,
    pub duration: u64,
    pub tracks: Vec<Track<'a>>,
    pub fragmented: bool,
}

/// Reads the movie header of an MP4 (`None` when `b` is not one: no
/// `ftyp` first, or no readable `moov`).
pub(super) fn movie(b: &[u8]) -> Option<Movie<'_>> {
    if slice(b, 4, 4)? != b"ftyp" {
        return None;
    }
    let mut m = Movie::default();
    let mut moov = None;
    for (kind, body) in boxes(b) {
        match &kind {
            b"moov" => moov = Some(body),
            b"moof" => m.fragmented = true,
            _ => {}
        }
    }
    let moov = moov?;
    for (kind, body) in boxes(moov).take(256) {
        match &kind {
            b"mvhd" => {
                let (ts, dur) = times(body)?;
                m.timescale = ts;
                m.duration = dur;
            }
            b"mvex" => m.fragmented = true,
            b"trak" => {
                if let Some(t) = track(body) {
                    m.tracks.push(t);
                }
            }
            _ => {}
        }
    }
    Some(m)
}

/// `(timescale, duration)` of an `mvhd` or `mdhd`.
fn times(b: &[u8]) -> Option<(u32, u64)> {
    if b.first()? == &1 {
        Some((be32(b, 20)?, be64(b, 24)?))
    } else {
        Some((be32(b, 12)?, u64::from(be32(b, 16)?)))
    }
}

fn track(trak: &[u8]) -> Option<Track<'_>> {
    let mut t = Track::default();
    if let Some(tkhd) = child(trak, b"tkhd") {
        // Width and height are 16.16 fixed point at the end.
        let n = tkhd.len();
        t.width = be32(tkhd, n.checked_sub(8)?)? >> 16;
        t.height = be32(tkhd, n.checked_sub(4)?)? >> 16;
    }
    let mdia = child(trak, b"mdia")?;
    let (ts, dur) = times(child(mdia, b"mdhd")?)?;
    t.timescale = ts;
    t.duration = dur;
    t.handler = slice(child(mdia, b"hdlr")?, 8, 4)?.try_into().ok()?;
    let stbl = child(child(mdia, b"minf")?, b"stbl")?;
    t.stbl = stbl;
    let stsd = child(stbl, b"stsd")?;
    // Version, flags, entry count, then the first sample entry (a box).
    if let Some((kind, entry)) = boxes(stsd.get(8..)?).next() {
        t.codec = kind;
        if t.handler == *b"vide" {
            // SampleEntry (8) + VisualSampleEntry fields up to depth (78).
            t.width = u32::from(be16(entry, 24)?);
            t.height = u32::from(be16(entry, 26)?);
            if matches!(&kind, b"avc1" | b"avc3") {
                t.avcc = entry.get(78..).and_then(|rest| child(rest, b"avcC"));
            }
        } else if t.handler == *b"soun" {
            t.channels = be16(entry, 16);
            t.sample_rate = be32(entry, 24).map(|r| r >> 16);
        }
    }
    Some(t)
}

impl Track<'_> {
    /// How many samples the track says it has (`stsz`).
    pub(super) fn sample_count(&self) -> Option<u32> {
        be32(child(self.stbl, b"stsz")?, 8)
    }

    /// The samples as `(offset, size, sync)` in decode order, at most
    /// [`MAX_SAMPLES`]; `None` when the tables disagree with each other
    /// or with the file.
    pub(super) fn samples(&self, file_len: usize) -> Option<Vec<(usize, usize, bool)>> {
        let stsz = child(self.stbl, b"stsz")?;
        let fixed = be32(stsz, 4)?;
        let count = usize::try_from(be32(stsz, 8)?).ok()?;
        if count > MAX_SAMPLES || (fixed == 0 && stsz.len() < 12 + count * 4) {
            return None;
        }
        let size_of = |i: usize| -> Option<usize> {
            if fixed == 0 {
                usize::try_from(be32(stsz, 12 + i * 4)?).ok()
            } else {
                usize::try_from(fixed).ok()
            }
        };
        let (offsets, wide) = match (child(self.stbl, b"stco"), child(self.stbl, b"co64")) {
            (Some(b), _) => (b, false),
            (None, Some(b)) => (b, true),
            (None, None) => return None,
        };
        let chunks = usize::try_from(be32(offsets, 4)?).ok()?;
        let width = if wide { 8 } else { 4 };
        if offsets.len() < 8 + chunks.checked_mul(width)? {
            return None;
        }
        let chunk_offset = |c: usize| -> Option<usize> {
            if wide {
                usize::try_from(be64(offsets, 8 + c * 8)?).ok()
            } else {
                usize::try_from(be32(offsets, 8 + c * 4)?).ok()
            }
        };
        let chunk_map = child(self.stbl, b"stsc")?;
        let entries = usize::try_from(be32(chunk_map, 4)?).ok()?;
        if chunk_map.len() < 8 + entries.checked_mul(12)? {
            return None;
        }
        let sync: Option<std::collections::BTreeSet<u32>> = child(self.stbl, b"stss").and_then(|s| {
            let n = usize::try_from(be32(s, 4)?).ok()?.min(count);
            (0..n).map(|i| be32(s, 8 + i * 4)).collect()
        });
        let mut out = Vec::with_capacity(count);
        let mut previous = None;
        for e in 0..entries {
            let first = usize::try_from(be32(chunk_map, 8 + e * 12)?).ok()?.checked_sub(1)?;
            // First chunks strictly increase, so the walk is at most one
            // pass over the chunks.
            if previous.is_some_and(|p| first <= p) {
                return None;
            }
            previous = Some(first);
            let per = usize::try_from(be32(chunk_map, 12 + e * 12)?).ok()?;
            let last = if e + 1 < entries {
                usize::try_from(be32(chunk_map, 8 + (e + 1) * 12)?)
                    .ok()?
                    .checked_sub(1)?
            } else {
                chunks
            };
            for c in first..last.min(chunks) {
                let mut at = chunk_offset(c)?;
                for _ in 0..per {
                    if out.len() == count {
                        return Some(out);
                    }
                    let i = out.len();
                    let size = size_of(i)?;
                    if at.checked_add(size)? > file_len {
                        return None;
                    }
                    let number = u32::try_from(i + 1).ok()?;
                    out.push((at, size, sync.as_ref().is_none_or(|s| s.contains(&number))));
                    at += size;
                }
            }
        }
        (out.len() == count).then_some(out)
    }
}

/// The four-character code as text (`avc1`).
pub(super) fn fourcc(k: [u8; 4]) -> String {
    k.iter()
        .map(|&c| if c.is_ascii_graphic() { c as char } else { '?' })
        .collect()
}
