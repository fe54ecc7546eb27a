//! Workflows embedded in saved images.

use comfy_workflow::embedded::{EmbeddedError, read};
use comfy_workflow::{Limits, Workflow};

use crate::fixtures;

#[test]
fn reads_prompt_and_workflow_from_a_png_comfyui_saved() {
    let png = std::fs::read(fixtures().join("comfyui/png/ComfyUI_00001_.png")).unwrap();
    let found = read(&png, 1 << 20).unwrap();
    let prompt = Workflow::from_json(found.prompt.unwrap().as_bytes(), &Limits::DEFAULT).unwrap();
    assert_eq!(prompt.node("3").unwrap().class_type, "SaveImage");
    assert_eq!(
        found.workflow.unwrap(),
        r#"{"note": "fixture workflow placeholder", "nodes": [], "links": [], "version": 0.4}"#
    );
}

fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&[0, 0, 0, 0]);
    c
}

#[test]
fn reads_compressed_itxt_and_ztxt_chunks_within_the_limit() {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let z = miniz_oxide::deflate::compress_to_vec_zlib(br#"{"1": {"class_type": "A"}}"#, 6);
    let mut itxt = b"prompt\0\x01\0en\0\0".to_vec();
    itxt.extend_from_slice(&z);
    png.extend(chunk(b"iTXt", &itxt));
    let mut ztxt = b"workflow\0\0".to_vec();
    ztxt.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(b"{\"nodes\": []}", 6));
    png.extend(chunk(b"zTXt", &ztxt));
    png.extend(chunk(b"IEND", b""));
    let found = read(&png, 1 << 20).unwrap();
    assert_eq!(found.prompt.as_deref(), Some(r#"{"1": {"class_type": "A"}}"#));
    assert_eq!(found.workflow.as_deref(), Some("{\"nodes\": []}"));
    // A zip bomb stops at the limit.
    let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![b' '; 100_000], 9);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ztxt = b"prompt\0\0".to_vec();
    ztxt.extend_from_slice(&bomb);
    png.extend(chunk(b"zTXt", &ztxt));
    assert!(matches!(read(&png, 1000), Err(EmbeddedError::Compressed { .. })));
}

#[test]
fn reads_the_exif_form_of_a_webp() {
    // RIFF/WEBP with an EXIF chunk: little-endian TIFF, IFD0 with tags 0x0110 and 0x010F.
    let prompt = b"prompt:{\"1\": {\"class_type\": \"A\"}}\0";
    let workflow = b"workflow:{\"nodes\": []}\0";
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&2u16.to_le_bytes());
    let data_at = 8 + 2 + 2 * 12 + 4;
    for (tag, text, offset) in [
        (0x0110u16, &prompt[..], data_at),
        (0x010F, &workflow[..], data_at + prompt.len()),
    ] {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&(text.len() as u32).to_le_bytes());
        tiff.extend_from_slice(&(offset as u32).to_le_bytes());
    }
    tiff.extend_from_slice(&[0; 4]);
    tiff.extend_from_slice(prompt);
    tiff.extend_from_slice(workflow);
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"EXIF");
    body.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
    body.extend_from_slice(&tiff);
    if tiff.len() % 2 == 1 {
        body.push(0);
    }
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp.extend_from_slice(&body);
    let found = read(&webp, 1 << 20).unwrap();
    assert_eq!(found.prompt.as_deref(), Some(r#"{"1": {"class_type": "A"}}"#));
    assert_eq!(found.workflow.as_deref(), Some(r#"{"nodes": []}"#));
}

#[test]
fn truncated_and_foreign_files_are_errors_not_panics() {
    let png = std::fs::read(fixtures().join("comfyui/png/ComfyUI_00001_.png")).unwrap();
    assert!(matches!(
        read(&png[..60], 1 << 20),
        Err(EmbeddedError::Truncated { format: "PNG", .. })
    ));
    assert_eq!(read(b"GIF89a....", 1 << 20), Err(EmbeddedError::UnknownFormat));
    for cut in 0..png.len() {
        let _ = read(&png[..cut], 1 << 20);
    }
}

#[test]
fn every_text_is_found_and_the_front_ends_pick_is_named() {
    use comfy_workflow::embedded::{Keyword, frontend_choice, read_all};
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"tEXt", b"workflow\0{\"nodes\": [1]}"));
    png.extend(chunk(b"tEXt", b"prompt\0{\"1\": {\"class_type\": \"A\"}}"));
    let mut ztxt = b"prompt\0\0".to_vec();
    ztxt.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(
        b"{\"2\": {\"class_type\": \"Z\"}}",
        6,
    ));
    png.extend(chunk(b"zTXt", &ztxt));
    png.extend(chunk(b"tEXt", b"PROMPT\0{}"));
    png.extend(chunk(b"IEND", b""));
    // After IEND: image viewers stop, the front end does not.
    png.extend(chunk(b"iTXt", b"workflow\0\0\0\0\0{\"nodes\": [2]}"));
    png.extend_from_slice(b"\0\0\x10\0junk");
    let all = read_all(&png, 1 << 20).unwrap();
    let summary: Vec<(&str, &str, bool, bool)> = all
        .iter()
        .map(|c| (c.written.as_str(), c.container, c.after_end, c.frontend_reads))
        .collect();
    assert_eq!(
        summary,
        [
            ("workflow", "tEXt", false, true),
            ("prompt", "tEXt", false, true),
            ("prompt", "zTXt", false, false),
            ("PROMPT", "tEXt", false, false),
            ("workflow", "iTXt", true, true),
        ]
    );
    let pick = frontend_choice(&all).unwrap();
    assert_eq!(
        (all[pick].keyword, all[pick].text.as_str()),
        (Keyword::Workflow, "{\"nodes\": [2]}")
    );
    // The plain reader keeps its first-found, stop-at-IEND behaviour.
    assert_eq!(
        read(&png, 1 << 20).unwrap().workflow.as_deref(),
        Some("{\"nodes\": [1]}")
    );
}

#[test]
fn a_webp_s_first_exif_chunk_is_what_the_front_end_reads() {
    use comfy_workflow::embedded::{frontend_choice, read_all};
    fn exif(strings: &[&[u8]]) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&(strings.len() as u16).to_le_bytes());
        let mut data_at = 8 + 2 + strings.len() * 12 + 4;
        let mut data = Vec::new();
        for (i, s) in strings.iter().enumerate() {
            tiff.extend_from_slice(&(0x010Fu16 + i as u16).to_le_bytes());
            tiff.extend_from_slice(&2u16.to_le_bytes());
            tiff.extend_from_slice(&(s.len() as u32).to_le_bytes());
            tiff.extend_from_slice(&(data_at as u32).to_le_bytes());
            data_at += s.len();
            data.extend_from_slice(s);
        }
        tiff.extend_from_slice(&[0; 4]);
        tiff.extend(data);
        tiff
    }
    let mut body = b"WEBP".to_vec();
    for e in [
        exif(&[b"Workflow:{\"nodes\": [0]}\0", b"workflow:{\"nodes\": [1]}\0"]),
        exif(&[b"workflow:{\"nodes\": [9]}\0"]),
    ] {
        body.extend_from_slice(b"EXIF");
        body.extend_from_slice(&(e.len() as u32).to_le_bytes());
        body.extend_from_slice(&e);
        if e.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp.extend(body);
    let all = read_all(&webp, 1 << 20).unwrap();
    assert_eq!(all.len(), 3);
    let pick = frontend_choice(&all).unwrap();
    assert_eq!(all[pick].text, "{\"nodes\": [1]}");
}
