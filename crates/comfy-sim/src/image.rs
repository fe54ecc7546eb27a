//! The simulator's images: a batch of 8-bit RGB frames, and the codecs ComfyUI
//! uses on the wire (PNG with `tEXt` metadata, JPEG previews, WebP previews).
//!
//! ComfyUI keeps images as float tensors; the simulator keeps the 8-bit values
//! a save would produce, which is all a client can ever observe.

use std::io::Cursor;

/// Largest width or height the simulator will make or decode (ComfyUI's own
/// `MAX_RESOLUTION` is 16384).
pub(crate) const MAX_SIDE: u32 = 16_384;
/// Largest pixel count of one frame, to bound memory on hostile sizes.
const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// One RGB frame, 8 bits per channel, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) rgb: Vec<u8>,
    /// Optional alpha plane (`width * height` bytes), kept from loaded images.
    pub(crate) alpha: Option<Vec<u8>>,
}

/// Why an image could not be made or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    #[error("image size {width}x{height} is outside 1..={MAX_SIDE} or too many pixels")]
    Size { width: u64, height: u64 },
    #[error("cannot decode image: {0}")]
    Decode(String),
    #[error("cannot encode image: {0}")]
    Encode(String),
}

fn check_size(width: u64, height: u64) -> Result<(), ImageError> {
    if width == 0
        || height == 0
        || width > u64::from(MAX_SIDE)
        || height > u64::from(MAX_SIDE)
        || width * height > MAX_PIXELS
    {
        return Err(ImageError::Size { width, height });
    }
    Ok(())
}

impl Frame {
    /// A frame filled with one `0xRRGGBB` colour, as `EmptyImage` makes.
    pub(crate) fn solid(width: u64, height: u64, color: u32) -> Result<Self, ImageError> {
        check_size(width, height)?;
        let px = [(color >> 16) as u8, (color >> 8) as u8, color as u8];
        let n = (width * height) as usize;
        let mut rgb = Vec::with_capacity(n * 3);
        for _ in 0..n {
            rgb.extend_from_slice(&px);
        }
        Ok(Self {
            width: width as u32,
            height: height as u32,
            rgb,
            alpha: None,
        })
    }

    /// A deterministic picture standing in for a decoded latent: smooth
    /// gradients whose colours depend on `seed`.
    pub(crate) fn generated(width: u64, height: u64, seed: u64) -> Result<Self, ImageError> {
        check_size(width, height)?;
        let (w, h) = (width as u32, height as u32);
        let mix = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (r0, g0, b0) = ((mix >> 8) as u8, (mix >> 24) as u8, (mix >> 40) as u8);
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let fx = (x * 255 / w.max(1)) as u8;
                let fy = (y * 255 / h.max(1)) as u8;
                rgb.extend_from_slice(&[r0.wrapping_add(fx), g0.wrapping_add(fy), b0 ^ fx ^ fy]);
            }
        }
        Ok(Self {
            width: w,
            height: h,
            rgb,
            alpha: None,
        })
    }

    /// `1 - x` on every channel, as `ImageInvert` does.
    pub(crate) fn inverted(&self) -> Self {
        Self {
            width: self.width,
            height: self.height,
            rgb: self.rgb.iter().map(|v| 255 - v).collect(),
            alpha: self.alpha.clone(),
        }
    }

    /// Nearest-neighbour resize to `width` x `height`.
    pub(crate) fn resized(&self, width: u64, height: u64) -> Result<Self, ImageError> {
        check_size(width, height)?;
        let (w, h) = (width as u32, height as u32);
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..h {
            let sy = (u64::from(y) * u64::from(self.height) / u64::from(h)) as u32;
            for x in 0..w {
                let sx = (u64::from(x) * u64::from(self.width) / u64::from(w)) as u32;
                let i = ((sy * self.width + sx) * 3) as usize;
                rgb.extend_from_slice(&self.rgb[i..i + 3]);
            }
        }
        Ok(Self {
            width: w,
            height: h,
            rgb,
            alpha: None,
        })
    }

    /// The frame as PNG, with `tEXt` chunks in the given order.
    pub(crate) fn to_png(&self, texts: &[(String, String)]) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_compression(png::Compression::Fast);
            for (k, v) in texts {
                enc.add_text_chunk(k.clone(), v.clone())
                    .map_err(|e| ImageError::Encode(e.to_string()))?;
            }
            let mut w = enc.write_header().map_err(|e| ImageError::Encode(e.to_string()))?;
            w.write_image_data(&self.rgb)
                .map_err(|e| ImageError::Encode(e.to_string()))?;
            w.finish().map_err(|e| ImageError::Encode(e.to_string()))?;
        }
        Ok(out)
    }

    /// The frame with its alpha plane (opaque if none) as RGBA PNG.
    pub(crate) fn to_png_rgba(&self, texts: &[(String, String)]) -> Result<Vec<u8>, ImageError> {
        let n = (self.width * self.height) as usize;
        let mut rgba = Vec::with_capacity(n * 4);
        for i in 0..n {
            rgba.extend_from_slice(&self.rgb[i * 3..i * 3 + 3]);
            rgba.push(self.alpha.as_ref().and_then(|a| a.get(i).copied()).unwrap_or(255));
        }
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            for (k, v) in texts {
                enc.add_text_chunk(k.clone(), v.clone())
                    .map_err(|e| ImageError::Encode(e.to_string()))?;
            }
            let mut w = enc.write_header().map_err(|e| ImageError::Encode(e.to_string()))?;
            w.write_image_data(&rgba)
                .map_err(|e| ImageError::Encode(e.to_string()))?;
            w.finish().map_err(|e| ImageError::Encode(e.to_string()))?;
        }
        Ok(out)
    }

    /// The frame as baseline JPEG at `quality` (1..=100).
    pub(crate) fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::new();
        let w = u16::try_from(self.width).map_err(|_| ImageError::Encode("too wide for JPEG".into()))?;
        let h = u16::try_from(self.height).map_err(|_| ImageError::Encode("too tall for JPEG".into()))?;
        jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
            .encode(&self.rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .map_err(|e| ImageError::Encode(e.to_string()))?;
        Ok(out)
    }

    /// The frame as WebP.
    pub(crate) fn to_webp(&self) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::new();
        image_webp::WebPEncoder::new(&mut out)
            .encode(&self.rgb, self.width, self.height, image_webp::ColorType::Rgb8)
            .map_err(|e| ImageError::Encode(e.to_string()))?;
        Ok(out)
    }

    /// The alpha plane as a grey PNG (`channel=a` on `/view`); opaque when the
    /// frame has no alpha.
    pub(crate) fn alpha_png(&self) -> Result<Vec<u8>, ImageError> {
        let n = (self.width * self.height) as usize;
        let alpha = self.alpha.clone().unwrap_or_else(|| vec![255; n]);
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            let mut rgba = Vec::with_capacity(n * 4);
            for a in alpha {
                rgba.extend_from_slice(&[0, 0, 0, a]);
            }
            let mut w = enc.write_header().map_err(|e| ImageError::Encode(e.to_string()))?;
            w.write_image_data(&rgba)
                .map_err(|e| ImageError::Encode(e.to_string()))?;
            w.finish().map_err(|e| ImageError::Encode(e.to_string()))?;
        }
        Ok(out)
    }

    /// Decodes a PNG (any colour type, 8 or 16 bit) into an RGB frame,
    /// keeping the alpha plane if there is one.
    pub(crate) fn from_png(bytes: &[u8]) -> Result<Self, ImageError> {
        let limits = png::Limits {
            bytes: (MAX_PIXELS * 4) as usize,
        };
        let mut dec = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
        dec.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = dec.read_info().map_err(|e| ImageError::Decode(e.to_string()))?;
        let (width, height) = reader.info().size();
        check_size(u64::from(width), u64::from(height))?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| ImageError::Decode("image too large".into()))?;
        let mut buf = vec![0; size];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| ImageError::Decode(e.to_string()))?;
        buf.truncate(info.buffer_size());
        let n = (width * height) as usize;
        let mut rgb = Vec::with_capacity(n * 3);
        let mut alpha = None;
        match info.color_type {
            png::ColorType::Rgb => rgb = buf,
            png::ColorType::Rgba => {
                let mut a = Vec::with_capacity(n);
                for px in buf.chunks_exact(4) {
                    rgb.extend_from_slice(&px[..3]);
                    a.push(px[3]);
                }
                alpha = Some(a);
            }
            png::ColorType::Grayscale => {
                for &v in &buf {
                    rgb.extend_from_slice(&[v, v, v]);
                }
            }
            png::ColorType::GrayscaleAlpha => {
                let mut a = Vec::with_capacity(n);
                for px in buf.chunks_exact(2) {
                    rgb.extend_from_slice(&[px[0], px[0], px[0]]);
                    a.push(px[1]);
                }
                alpha = Some(a);
            }
            png::ColorType::Indexed => return Err(ImageError::Decode("unexpanded palette".into())),
        }
        if rgb.len() != n * 3 {
            return Err(ImageError::Decode("short image data".into()));
        }
        Ok(Self {
            width,
            height,
            rgb,
            alpha,
        })
    }
}

/// Reads the `tEXt` chunks of a PNG, in file order.
pub(crate) fn png_texts(bytes: &[u8]) -> Result<Vec<(String, String)>, ImageError> {
    let dec = png::Decoder::new(Cursor::new(bytes));
    let reader = dec.read_info().map_err(|e| ImageError::Decode(e.to_string()))?;
    Ok(reader
        .info()
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{Frame, png_texts};

    #[test]
    fn png_round_trips_pixels_and_text_chunks_in_order() {
        let f = Frame::solid(4, 2, 0x00ff_8000).unwrap();
        let texts = vec![
            ("prompt".to_owned(), "{}".to_owned()),
            ("workflow".to_owned(), "[1]".to_owned()),
        ];
        let png = f.to_png(&texts).unwrap();
        let back = Frame::from_png(&png).unwrap();
        assert_eq!(back, f);
        assert_eq!(png_texts(&png).unwrap(), texts);
    }

    #[test]
    fn invert_and_resize() {
        let f = Frame::solid(2, 2, 0x0000_00ff).unwrap().inverted();
        assert_eq!(&f.rgb[..3], &[255, 255, 0]);
        let r = f.resized(4, 3).unwrap();
        assert_eq!((r.width, r.height, r.rgb.len()), (4, 3, 36));
    }

    #[test]
    fn rejects_hostile_sizes() {
        assert!(Frame::solid(0, 10, 0).is_err());
        assert!(Frame::solid(16_385, 10, 0).is_err());
        assert!(Frame::generated(16_384, 16_384, 1).is_err());
    }

    #[test]
    fn encodes_previews() {
        let f = Frame::generated(16, 8, 7).unwrap();
        assert_eq!(&f.to_jpeg(80).unwrap()[..2], &[0xff, 0xd8]);
        assert_eq!(&f.to_webp().unwrap()[..4], b"RIFF");
    }
}
