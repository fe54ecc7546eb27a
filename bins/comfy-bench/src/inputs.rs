//! What the benchmarks feed the server: workflows of a given size and
//! large or hostile PNG files.

use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

/// A workflow of `n` nodes shaped like the peer's measurement: a loader and
/// a chain of text encoders, each with its own text, ending in a save.
pub(crate) fn workflow(n: usize) -> String {
    let mut nodes = serde_json::Map::new();
    nodes.insert(
        "1".into(),
        json!({"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}}),
    );
    for i in 2..n {
        nodes.insert(
            i.to_string(),
            json!({"class_type": "CLIPTextEncode", "inputs": {"text": format!("a lighthouse, detail {i}"), "clip": ["1", 1]}}),
        );
    }
    nodes.insert(
        n.to_string(),
        json!({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}),
    );
    nodes.insert(
        (n + 1).to_string(),
        json!({"class_type": "SaveImage", "inputs": {"images": [n.to_string(), 0], "filename_prefix": "bench"}}),
    );
    Value::Object(nodes).to_string()
}

/// A 4096×4096 PNG of noise (so it does not compress away), in `dir`.
pub(crate) fn big_png(dir: &Path) -> Result<u64> {
    let side = 4096u32;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut px = vec![0u8; (side * side * 3) as usize];
    for b in &mut px {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = (state >> 24) as u8;
    }
    let path = dir.join("bench_4096.png");
    let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        file,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::NoFilter,
    );
    image::ImageEncoder::write_image(encoder, &px, side, side, image::ExtendedColorType::Rgb8)?;
    Ok(std::fs::metadata(&path)?.len())
}

/// A hostile PNG in `dir`: 2 MiB on disk whose header claims an
/// interlaced 16384×16384 RGB image (768 MiB of pixels once decoded), the
/// kind that took the server to 833 MB before decodes had a budget.
pub(crate) fn hostile_png(dir: &Path) -> Result<u64> {
    pub(crate) fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) -> Result<()> {
        out.extend_from_slice(&u32::try_from(data.len())?.to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
        Ok(())
    }
    let side = 16_384u32;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 1]);
    chunk(&mut out, b"IHDR", &ihdr)?;
    // 2 MiB, as the real ones are (of compressed zeros): over the inline
    // budget, so the server must look inside it.
    let mut comment = b"Comment\0".to_vec();
    comment.resize(2 << 20, b'x');
    chunk(&mut out, b"tEXt", &comment)?;
    chunk(&mut out, b"IDAT", &[0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])?;
    chunk(&mut out, b"IEND", &[])?;
    let path = dir.join("bench_hostile.png");
    std::fs::write(&path, &out)?;
    Ok(out.len() as u64)
}
