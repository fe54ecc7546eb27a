//! The images family of the hostile corpus (`fixtures/inspector/hostile/
//! images/`): PNG and WebP files whose embedded texts hide or disagree,
//! built here byte by byte (so the corpus can be regenerated and checked),
//! and linted by the built binary: each file's expected rule must be among
//! its findings, in audit and in enforce mode.
//!
//! `COMFY_WRITE_IMAGE_CORPUS=1 cargo test -p comfy-lint --test images`
//! rewrites the files; without it the committed files must equal what the
//! builders make.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/inspector/hostile/images")
}

const BENIGN: &str =
    r#"{"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}}}"#;
const EVAL: &str = r#"{"1": {"class_type": "KY_Eval_Python", "inputs": {"code": "print(1)"}}}"#;
const EDITOR: &str =
    r#"{"nodes": [{"id": 1, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [512, 512, 1]}], "links": []}"#;
const EDITOR_EVAL: &str =
    r#"{"nodes": [{"id": 1, "type": "KY_Eval_Python", "mode": 0, "widgets_values": ["print(1)"]}], "links": []}"#;

fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    // The CRC over type and data, as a real PNG has it.
    let mut crc = 0xffff_ffffu32;
    for &b in kind.iter().chain(data) {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                0xedb8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    c.extend_from_slice(&(!crc).to_be_bytes());
    c
}

fn text(keyword: &str, body: &str) -> Vec<u8> {
    chunk(b"tEXt", format!("{keyword}\0{body}").as_bytes())
}

/// A 1×1 grey PNG holding `before` chunks ahead of the image data and
/// `after` past `IEND`.
fn png(before: &[Vec<u8>], after: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]));
    for c in before {
        out.extend_from_slice(c);
    }
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x01, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", b""));
    for c in after {
        out.extend_from_slice(c);
    }
    out
}

fn exif(strings: &[String]) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&(strings.len() as u16).to_le_bytes());
    let mut data_at = 8 + 2 + strings.len() * 12 + 4;
    let mut data = Vec::new();
    for (i, s) in strings.iter().enumerate() {
        let bytes = format!("{s}\0").into_bytes();
        tiff.extend_from_slice(&(0x010Fu16 + i as u16).to_le_bytes());
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        tiff.extend_from_slice(&(data_at as u32).to_le_bytes());
        data_at += bytes.len();
        data.extend(bytes);
    }
    tiff.extend_from_slice(&[0; 4]);
    tiff.extend(data);
    tiff
}

/// A WebP (a lossless 1×1 VP8L image) with one EXIF chunk per entry.
fn webp(exifs: &[Vec<String>]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    let vp8l = [0x2f, 0, 0, 0, 0, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0];
    body.extend_from_slice(b"VP8L");
    body.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    body.extend_from_slice(&vp8l);
    for strings in exifs {
        let e = exif(strings);
        body.extend_from_slice(b"EXIF");
        body.extend_from_slice(&(e.len() as u32).to_le_bytes());
        body.extend_from_slice(&e);
        if e.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

fn zlib(s: &str) -> Vec<u8> {
    // Stored (uncompressed) deflate blocks: valid zlib without a compressor.
    let data = s.as_bytes();
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(65535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// Every image of the family, by file name.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let fetch = r#"{"1": {"class_type": "Fetcher", "inputs": {"url": "http://169.254.169.254/latest/meta-data/"}}}"#;
    let pickle = r#"{"1": {"class_type": "LoadCustomModel", "inputs": {"model_file": "evil.pkl"}}}"#;
    let code = r#"{"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "__import__('os').system('id')"}}}"#;
    let mut ztxt = b"prompt\0\0".to_vec();
    ztxt.extend(zlib(EVAL));
    let mut itxt = b"prompt\0\x01\0\0\0".to_vec();
    itxt.extend(zlib(code));
    vec![
        (
            "png_prompt_after_iend.png",
            png(&[text("prompt", BENIGN)], &[text("prompt", EVAL)]),
        ),
        (
            "png_ztxt_prompt_beside_text.png",
            png(&[text("prompt", BENIGN), chunk(b"zTXt", &ztxt)], &[]),
        ),
        (
            "png_two_workflow_chunks.png",
            png(&[text("workflow", EDITOR), text("workflow", EDITOR_EVAL)], &[]),
        ),
        (
            "png_prompt_runs_what_the_workflow_hides.png",
            png(&[text("prompt", EVAL), text("workflow", EDITOR)], &[]),
        ),
        (
            "png_uppercase_keyword.png",
            png(&[text("prompt", BENIGN), text("PROMPT", EVAL)], &[]),
        ),
        (
            "png_comf_chunk_workflow.png",
            png(
                &[
                    text("workflow", EDITOR),
                    chunk(b"comf", format!("workflow\0{EDITOR_EVAL}").as_bytes()),
                ],
                &[],
            ),
        ),
        ("png_compressed_itxt_code.png", png(&[chunk(b"iTXt", &itxt)], &[])),
        ("png_prompt_fetches_metadata.png", png(&[text("prompt", fetch)], &[])),
        (
            "webp_second_exif_chunk.webp",
            webp(&[vec![format!("prompt:{BENIGN}")], vec![format!("prompt:{EVAL}")]]),
        ),
        (
            "webp_workflow_key_case.webp",
            webp(&[vec![format!("Workflow:{EDITOR_EVAL}"), format!("workflow:{EDITOR}")]]),
        ),
        ("webp_pickle_loader.webp", webp(&[vec![format!("prompt:{pickle}")]])),
    ]
}

#[test]
fn the_committed_images_are_what_the_builders_make() {
    let write = std::env::var_os("COMFY_WRITE_IMAGE_CORPUS").is_some();
    for (name, bytes) in corpus() {
        let path = dir().join(name);
        if write {
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{name}: rerun with COMFY_WRITE_IMAGE_CORPUS=1"
        );
    }
}

#[test]
fn every_image_case_is_reported_with_its_rule_in_both_modes() {
    let cases: Vec<Value> = serde_json::from_slice(&std::fs::read(dir().join("cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 10);
    let built: Vec<&str> = corpus().iter().map(|(n, _)| *n).collect();
    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let rule = case["rule"].as_str().unwrap();
        assert!(built.contains(&file), "{file} is not built by this test");
        for mode in ["audit", "enforce"] {
            let out = Command::new(env!("CARGO_BIN_EXE_comfy-lint"))
                .args(["--format", "json", "--mode", mode, file])
                .current_dir(dir())
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(1),
                "{file} ({mode}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            let rules: Vec<&str> = report[0]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|f| f["rule"].as_str())
                .collect();
            assert!(rules.contains(&rule), "{file} ({mode}): expected {rule}, got {rules:?}");
        }
    }
    // The note names the text the front end would load.
    let out = Command::new(env!("CARGO_BIN_EXE_comfy-lint"))
        .args(["--format", "json", "png_prompt_after_iend.png"])
        .current_dir(dir())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let note = report[0]["note"].as_str().unwrap_or_default();
    assert!(note.contains("front end would load the tEXt prompt at"), "{report}");
    assert!(note.contains("(after IEND)"), "{report}");
}
