//! Previews of images over the inline budget: a JPEG at most 1024 px a
//! side and under the budget, made within the image memory budget. A
//! non-interlaced PNG is scaled down while it is decoded, so the full-size
//! pixels are never held.

use crate::tools::impls::ToolError;

/// A JPEG preview of an image, at most 1024 px a side and under `budget`.
pub(super) struct Made {
    pub(super) jpeg: Vec<u8>,
    pub(super) width: u32,
    pub(super) height: u32,
}

/// Largest side of a preview.
const PREVIEW_SIDE: u32 = 1024;

/// A non-interlaced PNG scaled down to at most [`PREVIEW_SIDE`] a side
/// while it is decoded, row by row, with a box filter: the full-size
/// pixels are never held, so returning a large image costs little more
/// than its file. `None` for other images (decoded whole instead).
fn png_downscaled(bytes: &[u8]) -> Option<image::RgbImage> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().ok()?;
    let (w, h) = (reader.info().width, reader.info().height);
    if reader.info().interlaced || w == 0 || h == 0 || w > 16_384 || h > 16_384 {
        return None;
    }
    let channels: usize = match reader.output_color_type() {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => 1,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => 2,
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        _ => return None,
    };
    let scale = f64::from(w.max(h)) / f64::from(PREVIEW_SIDE);
    let (tw, th) = if scale <= 1.0 {
        (w, h)
    } else {
        (
            ((f64::from(w) / scale).round() as u32).max(1),
            ((f64::from(h) / scale).round() as u32).max(1),
        )
    };
    let mut out = image::RgbImage::new(tw, th);
    // Sums of the source pixels falling in each target pixel of the
    // target row being filled, and how many there were.
    let mut sums = vec![[0u32; 3]; tw as usize];
    let mut counts = vec![0u32; tw as usize];
    let col_of: Vec<usize> = (0..w)
        .map(|x| (u64::from(x) * u64::from(tw) / u64::from(w)) as usize)
        .collect();
    let mut current_row = 0u32;
    let flush = |out: &mut image::RgbImage, row: u32, sums: &mut [[u32; 3]], counts: &mut [u32]| {
        for (x, (sum, n)) in sums.iter_mut().zip(counts.iter_mut()).enumerate() {
            let n1 = (*n).max(1);
            out.put_pixel(
                x as u32,
                row,
                image::Rgb([(sum[0] / n1) as u8, (sum[1] / n1) as u8, (sum[2] / n1) as u8]),
            );
            *sum = [0; 3];
            *n = 0;
        }
    };
    for y in 0..h {
        let row = reader.next_row().ok()??;
        let data = row.data();
        if data.len() < w as usize * channels {
            return None;
        }
        let target = (u64::from(y) * u64::from(th) / u64::from(h)) as u32;
        if target != current_row {
            flush(&mut out, current_row, &mut sums, &mut counts);
            current_row = target;
        }
        for (x, px) in data.chunks_exact(channels).take(w as usize).enumerate() {
            let rgb = match channels {
                1 | 2 => [px[0]; 3],
                _ => [px[0], px[1], px[2]],
            };
            let t = col_of[x];
            for (sum, v) in sums[t].iter_mut().zip(rgb) {
                *sum += u32::from(v);
            }
            counts[t] += 1;
        }
    }
    flush(&mut out, current_row, &mut sums, &mut counts);
    Some(out)
}

/// What making a preview of `bytes` allocates: for a non-interlaced
/// 8-bit-or-less PNG, scaled while decoded, two rows and the preview;
/// otherwise the whole decoded image, as its header says.
pub(super) fn preview_cost(bytes: &[u8]) -> Result<usize, crate::images::ImageError> {
    let format = image::guess_format(bytes)
        .map_err(|e| crate::images::ImageError::Decode(format!("cannot tell the image's format: {e}")))?;
    let (w, _, pixels) = crate::images::decode_cost(format, bytes)?;
    // IHDR: width, height, bit depth, colour type, compression, filter,
    // interlace (byte 28 of the file).
    let streamed = format == image::ImageFormat::Png && bytes.get(28) == Some(&0);
    let cost = if streamed {
        u64::from(w) * 16 + u64::from(PREVIEW_SIDE) * u64::from(PREVIEW_SIDE) * 3
    } else {
        pixels
    };
    Ok(usize::try_from(cost).unwrap_or(usize::MAX))
}

/// Decodes `bytes` (bounded: 16384 px a side, `max_alloc` bytes) and
/// re-encodes it smaller until it fits `budget`. PNGs are scaled down
/// while they are decoded ([`png_downscaled`]).
pub(super) fn make_preview(bytes: &[u8], budget: usize, max_alloc: usize) -> Result<Made, ToolError> {
    if let Some(small) = png_downscaled(bytes) {
        return encode_preview(&image::DynamicImage::ImageRgb8(small), budget);
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ToolError::failed(format!("cannot read the image: {e}")))?;
    reader.limits(crate::images::limits(max_alloc));
    let full = reader
        .decode()
        .map_err(|e| ToolError::failed(format!("cannot decode the image for a preview: {e}")))?;
    encode_preview(&full, budget)
}

/// JPEG at 85 %, at most 1024 px a side and smaller until under `budget`.
fn encode_preview(full: &image::DynamicImage, budget: usize) -> Result<Made, ToolError> {
    for side in [PREVIEW_SIDE, 768, 512, 256, 128] {
        let small = full.thumbnail(side, side).to_rgb8();
        let mut jpeg = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85);
        encoder
            .encode_image(&small)
            .map_err(|e| ToolError::failed(format!("cannot encode the preview: {e}")))?;
        // Base64 grows by a third; keep the inline content under budget.
        if jpeg.len() / 3 * 4 <= budget || side == 128 {
            return Ok(Made {
                jpeg,
                width: small.width(),
                height: small.height(),
            });
        }
    }
    Err(ToolError::failed("cannot make a preview small enough"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(img: &image::DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap_or_default();
        out
    }

    #[test]
    fn pngs_are_scaled_while_decoded_to_what_a_full_decode_gives() {
        // A horizontal gradient, 2048x1024: the preview is 1024x512 and
        // each pixel the mean of the 2x2 block it stands for.
        let img = image::RgbImage::from_fn(2048, 1024, |x, y| image::Rgb([(x / 8) as u8, (y / 4) as u8, 200]));
        let bytes = png_of(&image::DynamicImage::ImageRgb8(img.clone()));
        let small = png_downscaled(&bytes).unwrap_or_default();
        assert_eq!(small.dimensions(), (1024, 512));
        for (x, y) in [(0, 0), (511, 255), (1023, 511), (100, 400)] {
            let p = small.get_pixel(x, y);
            let src = img.get_pixel(x * 2, y * 2);
            for c in 0..3 {
                assert!(p[c].abs_diff(src[c]) <= 1, "({x},{y}) {p:?} vs {src:?}");
            }
        }
        // The same size as the whole-image path gives.
        let full = image::DynamicImage::ImageRgb8(img).thumbnail(PREVIEW_SIDE, PREVIEW_SIDE);
        assert_eq!(full.width(), 1024);
    }

    #[test]
    fn other_pixel_formats_and_small_images() {
        let gray16 = image::DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(300, 200, |x, _| {
            image::Luma([(x * 200) as u16])
        }));
        let s = png_downscaled(&png_of(&gray16)).unwrap_or_default();
        assert_eq!(s.dimensions(), (300, 200), "small images keep their size");
        let rgba =
            image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(3000, 10, image::Rgba([10, 20, 30, 0])));
        let s = png_downscaled(&png_of(&rgba)).unwrap_or_default();
        assert_eq!(s.dimensions(), (1024, 3));
        assert_eq!(s.get_pixel(5, 1), &image::Rgb([10, 20, 30]));
        // Not a PNG, or a broken one: the whole-image path decides.
        assert!(png_downscaled(b"GIF89a....").is_none());
        let mut cut = png_of(&rgba);
        cut.truncate(cut.len() / 2);
        assert!(png_downscaled(&cut).is_none());
        // make_preview takes either path and stays under its budget.
        let made = make_preview(&png_of(&rgba), 1 << 20, 64 << 20).map(|m| (m.width, m.height));
        assert_eq!(made.ok(), Some((1024, 3)));
    }
}
