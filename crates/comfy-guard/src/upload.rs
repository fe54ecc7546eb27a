//! The upload structure check: where an image file ends, by walking its
//! format's structure, so that data after the image is refused.
//!
//! Why: a check of the first bytes lets polyglots through (`GIF89a`
//! followed by a pickle is "a GIF"); ComfyUI stores the file as it is, and
//! whatever reads it later sees the rest. This module finds the image's
//! end from the format itself, without decoding pixels (the server then
//! decodes the image whole, within its memory limits):
//!
//! - PNG: chunks from the signature to `IEND` (the first chunk must be
//!   `IHDR`);
//! - GIF: header, screen descriptor, colour table, then extension and image
//!   blocks (their sub-block chains) to the trailer `0x3B`;
//! - WebP: the RIFF container's own size;
//! - JPEG: marker segments and entropy-coded data from `SOI` to the first
//!   `EOI`; what follows is accepted only where the file's MPF index (an
//!   `APP2` "Multi-Picture Format" segment, as phones write for their
//!   secondary images) places a secondary image, each one a JPEG itself,
//!   with nothing but zero or `0xFF` padding between them. Anything else
//!   after the first image (a motion-photo video included) is refused.
//!
//! Every offset is bounds-checked; the walk is linear in the file size.

use std::fmt;

/// The image formats uploads may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// PNG.
    Png,
    /// JPEG (`.jpg`, `.jpeg`).
    Jpeg,
    /// WebP.
    Webp,
    /// GIF (87a or 89a).
    Gif,
}

impl ImageKind {
    /// The kind a file extension names (with or without its dot, any
    /// case), or `None` for a non-image extension.
    #[must_use]
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "png" => Some(Self::Png),
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "webp" => Some(Self::Webp),
            "gif" => Some(Self::Gif),
            _ => None,
        }
    }
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Webp => "WebP",
            Self::Gif => "GIF",
        })
    }
}

/// The rule a rejected upload broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UploadRule {
    /// The file does not start as its extension says.
    Signature,
    /// The format's structure is broken or cut short.
    Structure,
    /// Bytes after the image's end that the format does not account for.
    TrailingData,
}

impl UploadRule {
    /// The rule's stable id (`upload.trailing-data`, ...).
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Self::Signature => "upload.signature",
            Self::Structure => "upload.structure",
            Self::TrailingData => "upload.trailing-data",
        }
    }
}

impl fmt::Display for UploadRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A rejected upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upload rejected ({rule}): {detail}")]
pub struct UploadError {
    /// The rule it broke.
    pub rule: UploadRule,
    /// What exactly was wrong.
    pub detail: String,
}

fn fail(rule: UploadRule, detail: impl Into<String>) -> UploadError {
    UploadError {
        rule,
        detail: detail.into(),
    }
}

fn cut(kind: ImageKind) -> UploadError {
    fail(
        UploadRule::Structure,
        format!("the {kind} structure is broken or cut short"),
    )
}

/// Checks that `bytes` are one `kind` image and nothing after it (for
/// JPEG: and the secondary images its MPF index places).
///
/// # Errors
/// [`UploadError`] naming the rule.
///
/// ```
/// use comfy_guard::upload::{ImageKind, UploadRule, check_image_structure};
/// let mut gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00".to_vec();
/// gif.extend_from_slice(b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;");
/// assert!(check_image_structure(ImageKind::Gif, &gif).is_ok());
/// gif.extend_from_slice(b"\x80\x04cos\nsystem\n");
/// assert_eq!(check_image_structure(ImageKind::Gif, &gif).unwrap_err().rule, UploadRule::TrailingData);
/// ```
pub fn check_image_structure(kind: ImageKind, bytes: &[u8]) -> Result<(), UploadError> {
    let end = match kind {
        ImageKind::Png => png_end(bytes)?,
        ImageKind::Gif => gif_end(bytes)?,
        ImageKind::Webp => webp_end(bytes)?,
        ImageKind::Jpeg => return jpeg_check(bytes),
    };
    if end < bytes.len() {
        return Err(trailing(kind, bytes.len() - end));
    }
    Ok(())
}

fn trailing(kind: ImageKind, n: usize) -> UploadError {
    fail(
        UploadRule::TrailingData,
        format!("{n} bytes follow the end of the {kind} image"),
    )
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at.checked_add(2)?).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// The offset just past `IEND`'s CRC.
fn png_end(b: &[u8]) -> Result<usize, UploadError> {
    const K: ImageKind = ImageKind::Png;
    if !b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(fail(UploadRule::Signature, "not a PNG signature"));
    }
    let mut pos = 8usize;
    let mut first = true;
    loop {
        let len = be32(b, pos).ok_or_else(|| cut(K))?;
        if len > 0x7FFF_FFFF {
            return Err(cut(K));
        }
        let kind = b.get(pos + 4..pos + 8).ok_or_else(|| cut(K))?;
        if first && kind != b"IHDR" {
            return Err(fail(UploadRule::Structure, "a PNG must start with its IHDR chunk"));
        }
        first = false;
        let next = pos
            .checked_add(12)
            .and_then(|p| p.checked_add(len as usize))
            .filter(|&p| p <= b.len())
            .ok_or_else(|| cut(K))?;
        if kind == b"IEND" {
            return Ok(next);
        }
        pos = next;
    }
}

/// The offset just past the trailer byte.
fn gif_end(b: &[u8]) -> Result<usize, UploadError> {
    const K: ImageKind = ImageKind::Gif;
    if !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return Err(fail(UploadRule::Signature, "not a GIF signature"));
    }
    let packed = *b.get(10).ok_or_else(|| cut(K))?;
    let mut pos = 13usize;
    if packed & 0x80 != 0 {
        pos += 3 << ((packed & 7) + 1);
    }
    let sub_blocks = |mut pos: usize| -> Result<usize, UploadError> {
        loop {
            let n = *b.get(pos).ok_or_else(|| cut(K))? as usize;
            pos += 1 + n;
            if n == 0 {
                return Ok(pos);
            }
        }
    };
    loop {
        match *b.get(pos).ok_or_else(|| cut(K))? {
            0x3B => return Ok(pos + 1),
            0x21 => {
                b.get(pos + 1).ok_or_else(|| cut(K))?;
                pos = sub_blocks(pos + 2)?;
            }
            0x2C => {
                let packed = *b.get(pos + 9).ok_or_else(|| cut(K))?;
                pos += 10;
                if packed & 0x80 != 0 {
                    pos += 3 << ((packed & 7) + 1);
                }
                // The LZW minimum code size, then the data.
                b.get(pos).ok_or_else(|| cut(K))?;
                pos = sub_blocks(pos + 1)?;
            }
            other => {
                return Err(fail(
                    UploadRule::Structure,
                    format!("an unknown GIF block 0x{other:02X}"),
                ));
            }
        }
    }
}

/// The end of the RIFF container (its size, padded to even).
fn webp_end(b: &[u8]) -> Result<usize, UploadError> {
    const K: ImageKind = ImageKind::Webp;
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WEBP" {
        return Err(fail(UploadRule::Signature, "not a WebP (RIFF ... WEBP) header"));
    }
    let size = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    let end = 8usize
        .checked_add(size)
        .and_then(|e| e.checked_add(size & 1))
        .ok_or_else(|| cut(K))?;
    if size < 4 || end > b.len() {
        // An odd final chunk may lack its pad byte.
        if end == b.len() + 1 && size >= 4 {
            return Ok(b.len());
        }
        return Err(cut(K));
    }
    Ok(end)
}

/// Where an MPF index was found: its TIFF header's offset in the file,
/// and the (offset, size) of each secondary image it lists, offsets
/// relative to that header.
struct Mpf {
    base: usize,
    images: Vec<(usize, usize)>,
}

/// Walks one JPEG from `start` (its `SOI`) to just past its first `EOI`;
/// returns that offset and the MPF index, if the image carries one.
fn jpeg_end(b: &[u8], start: usize) -> Result<(usize, Option<Mpf>), UploadError> {
    const K: ImageKind = ImageKind::Jpeg;
    if b.get(start..start + 2) != Some(&[0xFF, 0xD8][..]) {
        return Err(fail(UploadRule::Signature, "not a JPEG (no SOI marker)"));
    }
    let mut pos = start + 2;
    let mut mpf = None;
    loop {
        if *b.get(pos).ok_or_else(|| cut(K))? != 0xFF {
            return Err(fail(UploadRule::Structure, "a JPEG marker was expected"));
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *b.get(pos).ok_or_else(|| cut(K))?;
        pos += 1;
        match marker {
            0xD9 => return Ok((pos, mpf)),
            0xD0..=0xD7 | 0x01 => {}
            0x00 | 0xD8 => {
                return Err(fail(UploadRule::Structure, "a misplaced JPEG marker"));
            }
            _ => {
                let len = be16(b, pos).ok_or_else(|| cut(K))? as usize;
                if len < 2 || pos + len > b.len() {
                    return Err(cut(K));
                }
                let data = &b[pos + 2..pos + len];
                if marker == 0xE2 && data.starts_with(b"MPF\0") && mpf.is_none() {
                    mpf = Some(mpf_index(data, pos + 2 + 4)?);
                }
                pos += len;
                if marker == 0xDA {
                    // Entropy-coded data: up to the next marker that is
                    // neither a stuffed zero nor a restart.
                    loop {
                        let ff = b[pos..].iter().position(|&x| x == 0xFF).ok_or_else(|| cut(K))?;
                        pos += ff;
                        match b.get(pos + 1) {
                            Some(0x00 | 0xD0..=0xD7 | 0xFF) => pos += 1,
                            Some(_) => break,
                            None => return Err(cut(K)),
                        }
                    }
                }
            }
        }
    }
}

/// Parses an MPF segment's data after `MPF\0` (a TIFF structure) at
/// file offset `base`.
fn mpf_index(seg: &[u8], base: usize) -> Result<Mpf, UploadError> {
    let bad = || fail(UploadRule::Structure, "a broken MPF index");
    let tiff = seg.get(4..).ok_or_else(bad)?;
    let le = match tiff.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return Err(bad()),
    };
    let u16_at = |at: usize| -> Option<u16> {
        let s = tiff.get(at..at.checked_add(2)?)?;
        Some(if le {
            u16::from_le_bytes([s[0], s[1]])
        } else {
            u16::from_be_bytes([s[0], s[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let s = tiff.get(at..at.checked_add(4)?)?;
        Some(if le {
            u32::from_le_bytes([s[0], s[1], s[2], s[3]])
        } else {
            u32::from_be_bytes([s[0], s[1], s[2], s[3]])
        })
    };
    let ifd = u32_at(4).ok_or_else(bad)? as usize;
    let count = u16_at(ifd).ok_or_else(bad)? as usize;
    let mut images = Vec::new();
    for i in 0..count.min(64) {
        let e = ifd + 2 + i * 12;
        if u16_at(e).ok_or_else(bad)? != 0xB002 {
            continue;
        }
        let bytes = u32_at(e + 4).ok_or_else(bad)? as usize;
        let at = u32_at(e + 8).ok_or_else(bad)? as usize;
        if !bytes.is_multiple_of(16) || bytes / 16 > 64 {
            return Err(bad());
        }
        for n in 0..bytes / 16 {
            let entry = at + n * 16;
            let size = u32_at(entry + 4).ok_or_else(bad)? as usize;
            let offset = u32_at(entry + 8).ok_or_else(bad)? as usize;
            // Offset 0 is the first image itself.
            if offset != 0 {
                images.push((offset, size));
            }
        }
    }
    Ok(Mpf { base, images })
}

/// A JPEG, then only what its MPF index accounts for.
fn jpeg_check(b: &[u8]) -> Result<(), UploadError> {
    const K: ImageKind = ImageKind::Jpeg;
    let (end, mpf) = jpeg_end(b, 0)?;
    if end == b.len() {
        return Ok(());
    }
    let Some(mpf) = mpf else {
        return Err(trailing(K, b.len() - end));
    };
    let mut regions: Vec<(usize, usize)> = mpf
        .images
        .iter()
        .filter_map(|&(off, size)| {
            let start = mpf.base.checked_add(off)?;
            Some((start, start.checked_add(size)?))
        })
        .collect();
    regions.sort_unstable();
    let padding = |s: &[u8]| s.iter().all(|&x| x == 0 || x == 0xFF);
    let mut pos = end;
    for (start, stop) in regions {
        if start < pos || stop > b.len() || !padding(&b[pos..start]) {
            return Err(fail(
                UploadRule::TrailingData,
                "the MPF index places a secondary image where the file has something else",
            ));
        }
        let (inner_end, _) = jpeg_end(b, start)?;
        if inner_end > stop || !padding(&b[inner_end..stop]) {
            return Err(fail(
                UploadRule::TrailingData,
                "a secondary MPF image holds more than one JPEG",
            ));
        }
        pos = stop;
    }
    if !padding(&b[pos..]) {
        return Err(trailing(K, b.len() - pos));
    }
    Ok(())
}
