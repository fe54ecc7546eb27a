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
    /// More embedded texts than [`MAX_CHUNKS`].
    #[error("more than {max} embedded prompt or workflow texts")]
    TooMany {
        /// The limit.
        max: usize,
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
    let mut strings = Vec::new();
    exif_strings(tiff, &mut strings)?;
    for (keyword, json) in strings {
        if matches!(keyword.as_str(), "prompt" | "workflow") {
            keep(found, &keyword, json, max);
        }
    }
    Ok(())
}

/// Which text an embedded chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// The API-format prompt.
    Prompt,
    /// The editor-format workflow.
    Workflow,
}

impl Keyword {
    /// `prompt` or `workflow`.
    pub fn name(self) -> &'static str {
        match self {
            Keyword::Prompt => "prompt",
            Keyword::Workflow => "workflow",
        }
    }
}

/// One embedded `prompt` or `workflow` text, wherever it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Which text.
    pub keyword: Keyword,
    /// The keyword as written (`prompt`, `Prompt`, `PROMPT`, ...).
    pub written: String,
    /// The text (UTF-8, invalid bytes replaced, as the front end decodes it).
    pub text: String,
    /// Where it sits: `tEXt`, `iTXt`, `zTXt`, `comf` (PNG) or `EXIF` (WebP).
    pub container: &'static str,
    /// The byte offset of its chunk in the file.
    pub offset: usize,
    /// Whether it comes after the PNG's `IEND` (image viewers never get there).
    pub after_end: bool,
    /// Whether ComfyUI's front end reads this chunk when the file is
    /// dropped on it (see [`frontend_choice`]).
    pub frontend_reads: bool,
}

/// Most embedded texts collected from one file.
pub const MAX_CHUNKS: usize = 32;

/// Every `prompt` and `workflow` text of a PNG (`tEXt`, `iTXt`, `zTXt` and
/// the front end's `comf` chunks, before and after `IEND`; keywords in any
/// case) or a WebP (every `EXIF` chunk, every ASCII string of IFD0 written
/// `keyword:text`). `max_text` bounds each text; at most [`MAX_CHUNKS`]
/// are kept, more is an error.
///
/// # Errors
/// [`EmbeddedError`] for a file that is not a PNG or WebP, is truncated
/// before its `IEND`, holds broken compressed text, or too many texts.
pub fn read_all(bytes: &[u8], max_text: usize) -> Result<Vec<Chunk>, EmbeddedError> {
    let mut out = Vec::new();
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        all_png(bytes, max_text, &mut out)?;
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        all_webp(bytes, max_text, &mut out)?;
    } else {
        return Err(EmbeddedError::UnknownFormat);
    }
    Ok(out)
}

/// The chunk ComfyUI's front end (1.48, `getFromPngBuffer` and
/// `getWebpMetadata`) loads when the file is dropped on it: it reads the
/// PNG's `tEXt`, `iTXt` and `comf` chunks to the end of the file (past
/// `IEND`), ignores `zTXt`, keeps the *last* text of each exact keyword,
/// and loads the `workflow` when there is one, the `prompt` otherwise; of a
/// WebP it reads the first `EXIF` chunk only, the last string of each key,
/// `workflow` or `Workflow` before `prompt` or `Prompt`.
pub fn frontend_choice(chunks: &[Chunk]) -> Option<usize> {
    let last = |k: Keyword| chunks.iter().rposition(|c| c.frontend_reads && c.keyword == k);
    last(Keyword::Workflow).or_else(|| last(Keyword::Prompt))
}

fn keyword_of(written: &str) -> Option<Keyword> {
    if written.eq_ignore_ascii_case("prompt") {
        Some(Keyword::Prompt)
    } else if written.eq_ignore_ascii_case("workflow") {
        Some(Keyword::Workflow)
    } else {
        None
    }
}

fn push(out: &mut Vec<Chunk>, chunk: Chunk, max: usize) -> Result<(), EmbeddedError> {
    if chunk.text.len() > max {
        return Err(EmbeddedError::Compressed {
            keyword: chunk.written,
            max,
        });
    }
    if out.len() >= MAX_CHUNKS {
        return Err(EmbeddedError::TooMany { max: MAX_CHUNKS });
    }
    out.push(chunk);
    Ok(())
}

fn all_png(bytes: &[u8], max: usize, out: &mut Vec<Chunk>) -> Result<(), EmbeddedError> {
    let mut at = 8;
    let mut after_end = false;
    while at + 8 <= bytes.len() {
        let len = be32(bytes, at).map_or(usize::MAX, |l| l as usize);
        let kind = &bytes[at + 4..at + 8];
        let Some(data) = at.checked_add(8 + len).and_then(|end| bytes.get(at + 8..end)) else {
            // Past `IEND` anything goes: a broken tail holds no chunk.
            if after_end {
                break;
            }
            return Err(EmbeddedError::Truncated {
                format: "PNG",
                offset: at,
            });
        };
        let nul = data.iter().position(|&c| c == 0);
        let container: Option<&'static str> = match kind {
            b"tEXt" => Some("tEXt"),
            b"iTXt" => Some("iTXt"),
            b"zTXt" => Some("zTXt"),
            b"comf" => Some("comf"),
            _ => None,
        };
        if let (Some(container), Some(nul)) = (container, nul) {
            let written = latin1(&data[..nul]);
            if let Some(keyword) = keyword_of(&written) {
                let text = match container {
                    "zTXt" => {
                        String::from_utf8_lossy(&inflate(&written, data.get(nul + 2..).unwrap_or_default(), max)?)
                            .into_owned()
                    }
                    "iTXt" => {
                        let compressed = data.get(nul + 1) == Some(&1);
                        let rest = data.get(nul + 3..).unwrap_or_default();
                        let text_at = rest
                            .iter()
                            .position(|&c| c == 0)
                            .and_then(|l| rest[l + 1..].iter().position(|&c| c == 0).map(|t| l + 1 + t + 1))
                            .unwrap_or(rest.len());
                        let raw = &rest[text_at..];
                        if compressed {
                            String::from_utf8_lossy(&inflate(&written, raw, max)?).into_owned()
                        } else {
                            String::from_utf8_lossy(raw).into_owned()
                        }
                    }
                    _ => String::from_utf8_lossy(&data[nul + 1..]).into_owned(),
                };
                let frontend_reads = container != "zTXt" && written == keyword.name();
                push(
                    out,
                    Chunk {
                        keyword,
                        written,
                        text,
                        container,
                        offset: at,
                        after_end,
                        frontend_reads,
                    },
                    max,
                )?;
            }
        }
        if kind == b"IEND" {
            after_end = true;
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    Ok(())
}

fn all_webp(bytes: &[u8], max: usize, out: &mut Vec<Chunk>) -> Result<(), EmbeddedError> {
    let mut at = 12;
    let mut first_exif = true;
    while at + 8 <= bytes.len() {
        let truncated = EmbeddedError::Truncated {
            format: "WebP",
            offset: at,
        };
        let len = le32(bytes, at + 4).ok_or(truncated.clone())? as usize;
        let data = at
            .checked_add(8 + len)
            .and_then(|end| bytes.get(at + 8..end))
            .ok_or(truncated)?;
        if &bytes[at..at + 4] == b"EXIF" {
            let mut found = Vec::new();
            exif_strings(data.strip_prefix(b"Exif\0\0").unwrap_or(data), &mut found)?;
            // Within one chunk the front end keeps the last string of a key.
            let read_keys: Vec<usize> = if first_exif {
                // `workflow || Workflow`, `prompt || Prompt`.
                let last = |k: &str| found.iter().rposition(|(w, t)| w == k && !t.is_empty());
                [("workflow", "Workflow"), ("prompt", "Prompt")]
                    .iter()
                    .filter_map(|(a, b)| last(a).or_else(|| last(b)))
                    .collect()
            } else {
                Vec::new()
            };
            for (i, (written, text)) in found.into_iter().enumerate() {
                let Some(keyword) = keyword_of(&written) else { continue };
                push(
                    out,
                    Chunk {
                        keyword,
                        written,
                        text,
                        container: "EXIF",
                        offset: at,
                        after_end: false,
                        frontend_reads: read_keys.contains(&i),
                    },
                    max,
                )?;
            }
            first_exif = false;
        }
        at = at.saturating_add(8).saturating_add(len).saturating_add(len & 1);
    }
    Ok(())
}

/// Every ASCII string of IFD0, split at its first `:` into key and text.
fn exif_strings(tiff: &[u8], out: &mut Vec<(String, String)>) -> Result<(), EmbeddedError> {
    let truncated = |offset| EmbeddedError::Truncated { format: "EXIF", offset };
    let little = match tiff.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Err(truncated(0)),
    };
    let u16_at = |at: usize| tiff_word(tiff, at, little).map(u16::from_be_bytes);
    let u32_at = |at: usize| tiff_word(tiff, at, little).map(u32::from_be_bytes);
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
        if let Some((key, rest)) = text.split_once(':') {
            out.push((key.to_owned(), rest.to_owned()));
        }
    }
    Ok(())
}

/// The `N` bytes at `at` of a TIFF block, most significant first (turned
/// round when the block is little-endian, `II`).
fn tiff_word<const N: usize>(tiff: &[u8], at: usize, little: bool) -> Option<[u8; N]> {
    let mut b: [u8; N] = tiff.get(at..at.checked_add(N)?)?.try_into().ok()?;
    if little {
        b.reverse();
    }
    Some(b)
}
