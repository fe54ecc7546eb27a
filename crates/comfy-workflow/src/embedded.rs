//! Workflows embedded in the images ComfyUI saves: PNG `tEXt`, `iTXt` and
//! `zTXt` chunks named `prompt` and `workflow` (`SaveImage`), and the WebP
//! EXIF form (`SaveAnimatedWEBP`: tag 0x0110 `prompt:{...}`, tag 0x010F
//! `workflow:{...}`).
//!
//! Reads are bounded: chunk lengths are checked against the input, and
//! compressed text inflates to at most the text limit.

/// The metadata texts found in an image. Each is the JSON text as stored;
/// parse it with [`crate::Workflow::from_json`] (the `prompt`) or as an
/// editor-format workflow (the `workflow`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Embedded {
    /// The API-format prompt.
    pub prompt: Option<String>,
    /// The editor-format workflow.
    pub workflow: Option<String>,
}

/// Why an image's metadata could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// Neither a PNG nor a WebP.
    #[error("not a PNG or WebP image")]
    UnknownFormat,
    /// The file ends inside a structure.
    #[error("truncated {format} data at byte {offset}")]
    Truncated {
        /// `PNG`, `WebP` or `EXIF`.
        format: &'static str,
        /// Where.
        offset: usize,
    },
    /// A text inflates past the limit, or is not valid zlib.
    #[error("compressed `{keyword}` text is invalid or larger than {max} bytes")]
    Compressed {
        /// The chunk keyword.
        keyword: String,
        /// The limit.
        max: usize,
    },
}

/// Reads the `prompt` and `workflow` texts from a PNG or WebP image.
/// `max_text` bounds each text (after decompression).
///
/// # Errors
/// [`EmbeddedError`] for a file that is not a PNG or WebP, is truncated,
/// or holds broken compressed text.
///
/// # Examples
/// ```
/// let png = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/comfyui/http/get_view_output_png.body.png")).unwrap();
/// let found = comfy_workflow::embedded::read(&png, 1 << 20).unwrap();
/// assert!(found.prompt.unwrap().contains("SaveImage"));
/// ```
pub fn read(bytes: &[u8], max_text: usize) -> Result<Embedded, EmbeddedError> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        read_png(bytes, max_text)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        read_webp(bytes, max_text)
    } else {
        Err(EmbeddedError::UnknownFormat)
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn keep(found: &mut Embedded, keyword: &str, text: String, max: usize) {
    if text.len() > max {
        return;
    }
    match keyword {
        "prompt" if found.prompt.is_none() => found.prompt = Some(text),
        "workflow" if found.workflow.is_none() => found.workflow = Some(text),
        _ => {}
    }
}

fn inflate(keyword: &str, data: &[u8], max: usize) -> Result<Vec<u8>, EmbeddedError> {
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, max).map_err(|_| EmbeddedError::Compressed {
        keyword: keyword.to_owned(),
        max,
    })
}

fn read_png(bytes: &[u8], max: usize) -> Result<Embedded, EmbeddedError> {
    let mut found = Embedded::default();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let truncated = EmbeddedError::Truncated {
            format: "PNG",
            offset: at,
        };
        let len = be32(bytes, at).ok_or(truncated.clone())? as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = bytes.get(at + 8..at + 8 + len).ok_or(truncated)?;
        match kind {
            b"tEXt" => {
                if let Some(nul) = data.iter().position(|&c| c == 0) {
                    keep(&mut found, &latin1(&data[..nul]), latin1(&data[nul + 1..]), max);
                }
            }
            b"zTXt" => {
                if let Some(nul) = data.iter().position(|&c| c == 0) {
                    let keyword = latin1(&data[..nul]);
                    if matches!(keyword.as_str(), "prompt" | "workflow") {
                        let text = inflate(&keyword, data.get(nul + 2..).unwrap_or_default(), max)?;
                        keep(&mut found, &keyword, latin1(&text), max);
                    }
                }
            }
            b"iTXt" => {
                if let Some(nul) = data.iter().position(|&c| c == 0) {
                    let keyword = latin1(&data[..nul]);
                    let compressed = data.get(nul + 1) == Some(&1);
                    // Skip the compression method, then language and translated keyword.
                    let rest = data.get(nul + 3..).unwrap_or_default();
                    let text_at = rest
                        .iter()
                        .position(|&c| c == 0)
                        .and_then(|l| rest[l + 1..].iter().position(|&c| c == 0).map(|t| l + 1 + t + 1));
                    if let Some(text_at) = text_at.filter(|_| matches!(keyword.as_str(), "prompt" | "workflow")) {
                        let raw = &rest[text_at..];
                        let text = if compressed {
                            inflate(&keyword, raw, max)?
                        } else {
                            raw.to_vec()
                        };
                        keep(&mut found, &keyword, String::from_utf8_lossy(&text).into_owned(), max);
                    }
                }
            }
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    Ok(found)
}

fn read_webp(bytes: &[u8], max: usize) -> Result<Embedded, EmbeddedError> {
    let mut found = Embedded::default();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let len = le32(bytes, at + 4).ok_or(EmbeddedError::Truncated {
            format: "WebP",
            offset: at,
        })? as usize;
        let data = bytes.get(at + 8..at + 8 + len).ok_or(EmbeddedError::Truncated {
            format: "WebP",
            offset: at,
        })?;
        if &bytes[at..at + 4] == b"EXIF" {
            read_exif(data.strip_prefix(b"Exif\0\0").unwrap_or(data), max, &mut found)?;
        }
        at += 8 + len + (len & 1);
    }
    Ok(found)
}

/// Reads the ASCII strings of IFD0 that start with `prompt:` or
/// `workflow:`.
fn read_exif(tiff: &[u8], max: usize, found: &mut Embedded) -> Result<(), EmbeddedError> {
    let truncated = |offset| EmbeddedError::Truncated { format: "EXIF", offset };
    let little = match tiff.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Err(truncated(0)),
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = u32_at(4).ok_or(truncated(4))? as usize;
    let count = usize::from(u16_at(ifd).ok_or(truncated(ifd))?);
    for i in 0..count {
        let entry = ifd + 2 + i * 12;
        let (Some(kind), Some(n)) = (u16_at(entry + 2), u32_at(entry + 4)) else {
            return Err(truncated(entry));
        };
        if kind != 2 {
            continue;
        }
        let n = n as usize;
        let data = if n <= 4 {
            tiff.get(entry + 8..entry + 8 + n)
        } else {
            u32_at(entry + 8).and_then(|off| tiff.get(off as usize..(off as usize).checked_add(n)?))
        };
        let Some(data) = data else { return Err(truncated(entry)) };
        let text = String::from_utf8_lossy(data.strip_suffix(b"\0").unwrap_or(data)).into_owned();
        if let Some((keyword, json)) = text.split_once(':')
            && matches!(keyword, "prompt" | "workflow")
        {
            keep(found, keyword, json.to_owned(), max);
        }
    }
    Ok(())
}
