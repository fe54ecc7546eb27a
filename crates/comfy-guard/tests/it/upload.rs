//! The upload structure check: real images pass, polyglots and appended
//! data do not, phones' MPF secondary images do.

use comfy_guard::upload::{ImageKind, UploadRule, check_image_structure};
use proptest::prelude::*;

fn encoded(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])
    }));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), format).unwrap();
    out
}

const PICKLE: &[u8] = b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.";

fn rule(kind: ImageKind, bytes: &[u8]) -> Option<UploadRule> {
    check_image_structure(kind, bytes).err().map(|e| e.rule)
}

#[test]
fn real_images_pass_and_appended_data_is_refused() {
    for (kind, format) in [
        (ImageKind::Png, image::ImageFormat::Png),
        (ImageKind::Jpeg, image::ImageFormat::Jpeg),
        (ImageKind::Webp, image::ImageFormat::WebP),
        (ImageKind::Gif, image::ImageFormat::Gif),
    ] {
        let img = encoded(format, 33, 17);
        assert_eq!(rule(kind, &img), None, "{kind}");
        let mut polyglot = img.clone();
        polyglot.extend_from_slice(PICKLE);
        assert_eq!(rule(kind, &polyglot), Some(UploadRule::TrailingData), "{kind}");
        let cut = &img[..img.len() - 3];
        assert_eq!(rule(kind, cut), Some(UploadRule::Structure), "{kind} cut short");
        assert_eq!(rule(kind, b"nothing"), Some(UploadRule::Signature), "{kind}");
    }
}

#[test]
fn a_gif_signature_followed_by_a_pickle_is_no_gif() {
    let mut bytes = b"GIF89a".to_vec();
    bytes.extend_from_slice(PICKLE);
    assert!(rule(ImageKind::Gif, &bytes).is_some());
}

/// A JPEG whose MPF index (APP2) places `second` right after it.
fn with_mpf(first: &[u8], second: &[u8], extra_offset: usize) -> Vec<u8> {
    // APP2: "MPF\0", a little-endian TIFF header, one IFD with the
    // MPEntry tag pointing at two 16-byte entries.
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    let entries_at = 8 + 2 + 12 + 4;
    tiff.extend_from_slice(&0xB002u16.to_le_bytes());
    tiff.extend_from_slice(&7u16.to_le_bytes());
    tiff.extend_from_slice(&32u32.to_le_bytes());
    tiff.extend_from_slice(&(entries_at as u32).to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let segment_len = 2 + 4 + tiff.len() + 32;
    let total_first = first.len() + 2 + segment_len;
    // The TIFF header starts after SOI, the APP2 marker and length, "MPF\0".
    let tiff_at = 2 + 2 + 2 + 4;
    let second_offset = total_first - tiff_at + extra_offset;
    for (size, offset) in [(total_first, 0usize), (second.len(), second_offset)] {
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(&(size as u32).to_le_bytes());
        tiff.extend_from_slice(&(offset as u32).to_le_bytes());
        tiff.extend_from_slice(&[0; 4]);
    }
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE2];
    out.extend_from_slice(&(segment_len as u16).to_be_bytes());
    out.extend_from_slice(b"MPF\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&first[2..]);
    out.extend(std::iter::repeat_n(0u8, extra_offset));
    out.extend_from_slice(second);
    out
}

#[test]
fn jpeg_mpf_secondary_images_pass_and_anything_else_is_refused() {
    let first = encoded(image::ImageFormat::Jpeg, 40, 30);
    let second = encoded(image::ImageFormat::Jpeg, 8, 6);
    let phone = with_mpf(&first, &second, 0);
    assert_eq!(rule(ImageKind::Jpeg, &phone), None);
    assert_eq!(
        rule(ImageKind::Jpeg, &with_mpf(&first, &second, 16)),
        None,
        "zero padding"
    );
    let mut more = phone.clone();
    more.extend_from_slice(PICKLE);
    assert_eq!(rule(ImageKind::Jpeg, &more), Some(UploadRule::TrailingData));
    // The index names a JPEG, the file holds a pickle there.
    let mut fake = PICKLE.to_vec();
    fake.resize(second.len(), b'x');
    assert!(rule(ImageKind::Jpeg, &with_mpf(&first, &fake, 0)).is_some());
    // No index: anything after the first image is refused.
    let mut two = first.clone();
    two.extend_from_slice(&second);
    assert_eq!(rule(ImageKind::Jpeg, &two), Some(UploadRule::TrailingData));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), k in 0usize..4) {
        let kind = [ImageKind::Png, ImageKind::Jpeg, ImageKind::Webp, ImageKind::Gif][k];
        let _ = check_image_structure(kind, &bytes);
        let mut prefixed = match kind {
            ImageKind::Png => b"\x89PNG\r\n\x1a\n".to_vec(),
            ImageKind::Jpeg => vec![0xFF, 0xD8],
            ImageKind::Webp => b"RIFF\x10\x00\x00\x00WEBP".to_vec(),
            ImageKind::Gif => b"GIF89a".to_vec(),
        };
        prefixed.extend_from_slice(&bytes);
        let _ = check_image_structure(kind, &prefixed);
    }
}
