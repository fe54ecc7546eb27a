//! The facts and sheets of the real ComfyUI 0.33.0's outputs
//! (`fixtures/media/`, made by its `SaveVideo`, `SaveWEBM`,
//! `SaveAnimatedWEBP`, `SaveAnimatedPNG`, `SaveAudio`, `SaveAudioMP3` and
//! `SaveAudioOpus` nodes from six red then six blue 64x48 frames at 8 fps
//! and 1.5 s of silence at 22050 Hz), GIFs made here, and hostile files.

use proptest::prelude::*;

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/media/");
    std::fs::read(format!("{path}{name}")).unwrap_or_default()
}

const MIB: usize = 1 << 20;

/// A GIF of `frames` frames, `w`x`h`, alternating red and blue, 120 ms each.
pub(crate) fn gif(w: u32, h: u32, frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for i in 0..frames {
            let colour = if i % 2 == 0 { [255, 0, 0, 255] } else { [0, 0, 255, 255] };
            let buf = image::RgbaImage::from_pixel(w, h, image::Rgba(colour));
            let delay = image::Delay::from_numer_denom_ms(120, 1);
            let _ = enc.encode_frame(image::Frame::from_parts(buf, 0, 0, delay));
        }
    }
    out
}

#[test]
fn the_real_servers_video_outputs_are_described() {
    let mp4 = probe(&fixture("savevideo.mp4")).unwrap_or_else(|| Info::new(Kind::Audio, "", "", ""));
    assert_eq!(mp4.kind, Kind::Video);
    assert_eq!((mp4.container, mp4.codec.as_str()), ("mp4", "h264"));
    assert_eq!((mp4.width, mp4.height, mp4.frames), (Some(64), Some(48), Some(12)));
    assert_eq!(mp4.fps, Some(8.0));
    assert_eq!(mp4.duration_s, Some(1.5));
    assert_eq!(mp4.summary(), "H264 video in MP4, 64x48, 12 frames at 8 fps, 1.5 s");

    let webm = probe(&fixture("savewebm.webm")).unwrap_or_else(|| Info::new(Kind::Audio, "", "", ""));
    assert_eq!((webm.container, webm.codec.as_str()), ("webm", "vp9"));
    assert_eq!((webm.width, webm.height, webm.frames), (Some(64), Some(48), Some(12)));
    assert_eq!(webm.duration_s.map(|d| (d * 1000.0).round()), Some(1500.0));
    assert!(!webm.decodable());

    // Pillow merges equal frames: two frames of 0.75 s each.
    for (name, codec) in [("saveanimatedwebp.webp", "webp"), ("saveanimatedpng.png", "apng")] {
        let a = probe(&fixture(name)).unwrap_or_else(|| Info::new(Kind::Audio, "", "", ""));
        assert_eq!(a.codec, codec, "{name}");
        assert_eq!((a.width, a.height, a.frames), (Some(64), Some(48), Some(2)), "{name}");
        assert_eq!(a.duration_s, Some(1.5), "{name}");
    }
}

#[test]
fn the_real_servers_audio_outputs_are_described() {
    for (name, container, codec) in [
        ("saveaudio.flac", "flac", "flac"),
        ("saveaudiomp3.mp3", "mp3", "mp3"),
        ("saveaudioopus.opus", "ogg", "opus"),
    ] {
        let a = probe(&fixture(name)).unwrap_or_else(|| Info::new(Kind::Video, "", "", ""));
        assert_eq!(a.kind, Kind::Audio, "{name}");
        assert_eq!((a.container, a.codec.as_str()), (container, codec), "{name}");
        assert_eq!(a.channels, Some(1), "{name}");
        let d = a.duration_s.unwrap_or(0.0);
        // MP3 adds encoder delay and padding to whole frames.
        assert!((1.49..1.6).contains(&d), "{name}: {d}");
        // ComfyUI resamples to 24 kHz for Opus (a rate Opus supports).
        let rate = if codec == "opus" { 24_000 } else { 22_050 };
        assert_eq!(a.sample_rate, Some(rate), "{name}");
    }
}

#[test]
fn still_images_are_not_media() {
    assert!(probe(&gif(4, 4, 1)).is_none());
    let mut png = Vec::new();
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::new(4, 4));
    let _ = img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png);
    assert!(probe(&png).is_none());
    assert!(probe(b"not media at all").is_none());
}

fn sheet_of(bytes: &[u8]) -> Result<Sheet, MediaError> {
    let info = probe(bytes).ok_or_else(|| MediaError::Decode("not media".to_owned()))?;
    let plan = plan(&info, bytes)?;
    contact_sheet(&info, &plan, bytes, MIB, 64 * MIB)
}

/// The colour in the middle of cell `i` of a sheet with `cols` columns.
fn cell_colour(sheet: &Sheet, i: u32, cols: u32, rows: u32) -> [u8; 3] {
    let img = image::load_from_memory(&sheet.jpeg)
        .map(|i| i.to_rgb8())
        .unwrap_or_default();
    let (cw, ch) = (img.width() / cols, img.height() / rows);
    img.get_pixel_checked((i % cols) * cw + cw / 2, (i / cols) * ch + ch / 2)
        .map_or([0; 3], |p| p.0)
}

#[test]
fn an_h264_mp4_from_the_real_server_gives_a_sheet_of_evenly_spaced_frames() {
    let sheet = sheet_of(&fixture("savevideo.mp4")).map_err(|e| e.to_string());
    let sheet = sheet.unwrap_or_else(|e| panic!("{e}"));
    // Nine of twelve frames: 0, 1, 2, 4, 5, 6, 8, 9, 11.
    assert_eq!(sheet.frames, vec![0, 1, 2, 4, 5, 6, 8, 9, 11]);
    assert!(!sheet.key_frames_only);
    // The first frames are red, the last blue.
    let first = cell_colour(&sheet, 0, 3, 3);
    let last = cell_colour(&sheet, 8, 3, 3);
    assert!(first[0] > 180 && first[2] < 80, "{first:?}");
    assert!(last[2] > 180 && last[0] < 80, "{last:?}");
}

#[test]
fn animated_webp_png_and_gif_give_sheets() {
    for name in ["saveanimatedwebp.webp", "saveanimatedpng.png"] {
        let sheet = sheet_of(&fixture(name)).map_err(|e| format!("{name}: {e}"));
        let sheet = sheet.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sheet.frames, vec![0, 1], "{name}");
        let (a, b) = (cell_colour(&sheet, 0, 2, 1), cell_colour(&sheet, 1, 2, 1));
        assert!(a[0] > 180 && b[2] > 180, "{name}: {a:?} {b:?}");
    }
    let g = gif(32, 24, 20);
    let info = probe(&g).unwrap_or_else(|| Info::new(Kind::Audio, "", "", ""));
    assert_eq!(
        (info.codec.as_str(), info.frames, info.fps),
        ("gif", Some(20), Some(100.0 / 12.0))
    );
    let sheet = sheet_of(&g).map_err(|e| e.to_string());
    assert_eq!(sheet.map(|s| s.frames), Ok(vec![0, 2, 4, 7, 9, 11, 14, 16, 19]));
}

#[test]
fn the_sheet_fits_the_inline_budget() {
    let bytes = fixture("savevideo.mp4");
    let info = probe(&bytes).unwrap_or_else(|| Info::new(Kind::Audio, "", "", ""));
    let plan = plan(&info, &bytes).map_err(|e| e.to_string());
    let plan = plan.unwrap_or_else(|e| panic!("{e}"));
    let small = contact_sheet(&info, &plan, &bytes, 6_000, 64 * MIB).map_err(|e| e.to_string());
    let small = small.unwrap_or_else(|e| panic!("{e}"));
    assert!(small.jpeg.len().div_ceil(3) * 4 <= 6_000);
    assert!(small.width < 1024);
    assert!(matches!(
        contact_sheet(&info, &plan, &bytes, 100, 64 * MIB),
        Err(MediaError::Refused(_))
    ));
}

#[test]
fn an_mp4_whose_container_understates_the_picture_is_refused_before_decoding() {
    // The avc1 entry says 16x16; the stream's parameter set says 64x48.
    let mut bytes = fixture("savevideo.mp4");
    // The sample entry (the ftyp box also names the avc1 brand).
    let stsd = bytes.windows(4).position(|w| w == b"stsd").unwrap_or(0);
    let i = stsd + bytes[stsd..].windows(4).position(|w| w == b"avc1").unwrap_or(0);
    bytes[i + 4 + 24..i + 4 + 28].copy_from_slice(&[0, 16, 0, 16]);
    let info = probe(&bytes).unwrap_or_else(|| Info::new(Kind::Audio, "", "", ""));
    assert_eq!((info.width, info.height), (Some(16), Some(16)));
    let e = plan(&info, &bytes).map(|_| ()).map_err(|e| e.to_string());
    assert!(
        e.as_ref().is_err_and(|e| e.contains("64x48") && e.contains("16x16")),
        "{e:?}"
    );
}

#[test]
fn huge_declared_pictures_and_too_much_work_are_refused() {
    // A GIF claiming 65535x65535.
    let mut g = gif(4, 4, 3);
    g[6..10].copy_from_slice(&[0xFF; 4]);
    let info = probe(&g).unwrap_or_else(|| Info::new(Kind::Audio, "", "", ""));
    assert!(matches!(plan(&info, &g), Err(MediaError::Refused(_))));
    // 600 frames of 1024x1024: more than a sheet decodes.
    let mut info = info;
    info.width = Some(1024);
    info.height = Some(1024);
    info.frames = Some(600);
    assert!(matches!(plan(&info, &g), Err(MediaError::Refused(_))));
}

#[test]
fn an_mp4_claiming_a_huge_picture_or_frame_count_is_refused_before_allocation() {
    let whole = fixture("savevideo.mp4");
    let stsd = whole.windows(4).position(|w| w == b"stsd").unwrap_or(0);
    let avc1 = stsd + whole[stsd..].windows(4).position(|w| w == b"avc1").unwrap_or(0);

    // 65535x65535 in the sample entry: over MAX_SIDE, refused by the plan.
    let mut big = whole.clone();
    big[avc1 + 4 + 24..avc1 + 4 + 28].copy_from_slice(&[0xFF; 4]);
    let info = probe(&big).unwrap_or_else(|| Info::new(Kind::Audio, "", "", ""));
    assert_eq!((info.width, info.height), (Some(65_535), Some(65_535)));
    let e = plan(&info, &big).map(|p| p.cost);
    assert!(matches!(e, Err(MediaError::Refused(_))), "{e:?}");

    // Four thousand million samples in `stsz`: described as claimed, and
    // the sample table is refused before anything is allocated for it.
    let mut many = whole.clone();
    let sizes = many.windows(4).position(|w| w == b"stsz").unwrap_or(0);
    // stsz: type, version+flags (4), fixed size (4), count (4).
    many[sizes + 12..sizes + 16].copy_from_slice(&[0xFF; 4]);
    let info = probe(&many).unwrap_or_else(|| Info::new(Kind::Audio, "", "", ""));
    assert_eq!(info.frames, Some(u64::from(u32::MAX)));
    let sheet = plan(&info, &many).and_then(|p| contact_sheet(&info, &p, &many, MIB, 64 * MIB));
    assert!(
        matches!(&sheet, Err(MediaError::Decode(why)) if why.contains("too many samples")),
        "{:?}",
        sheet.map(|s| s.frames)
    );
}

#[test]
fn truncated_files_are_described_or_refused_without_panicking() {
    for name in [
        "savevideo.mp4",
        "savewebm.webm",
        "saveanimatedwebp.webp",
        "saveanimatedpng.png",
        "saveaudio.flac",
        "saveaudiomp3.mp3",
        "saveaudioopus.opus",
    ] {
        let whole = fixture(name);
        for cut in [0, 1, 4, 12, 40, 100, whole.len() / 3, whole.len() / 2, whole.len() - 1] {
            let part = &whole[..cut.min(whole.len())];
            if let Some(info) = probe(part)
                && let Ok(plan) = plan(&info, part)
            {
                let _ = contact_sheet(&info, &plan, part, MIB, 64 * MIB);
            }
        }
    }
}

#[test]
fn sps_sizes_are_read() {
    // Baseline 64x48 (4x3 macroblocks).
    let mut w = Vec::new();
    let bits = "1" // id 0
        .to_owned()
        + "1" // log2_max_frame_num_minus4 0
        + "1" // poc type 0
        + "1" // log2_max_poc_lsb_minus4 0
        + "011" // refs 2
        + "0" // gaps
        + "00100" // width in mbs - 1 = 3
        + "011" // height in map units - 1 = 2
        + "1" // frame_mbs_only
        + "1";
    let mut byte = 0u8;
    for (i, c) in bits.chars().enumerate() {
        byte = byte << 1 | u8::from(c == '1');
        if i % 8 == 7 {
            w.push(byte);
            byte = 0;
        }
    }
    let rem = bits.len() % 8;
    if rem != 0 {
        w.push(byte << (8 - rem));
    }
    let mut nal = vec![0x67, 66, 0, 30];
    nal.extend(w);
    assert_eq!(
        h264::sps(&nal),
        Some(h264::Sps {
            width: 64,
            height: 48,
            refs: 2
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_are_probed_and_planned_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Some(info) = probe(&bytes) {
            let _ = plan(&info, &bytes);
        }
    }

    #[test]
    fn corrupted_fixtures_never_panic(which in 0usize..7, flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let name = ["savevideo.mp4", "savewebm.webm", "saveanimatedwebp.webp", "saveanimatedpng.png",
                    "saveaudio.flac", "saveaudiomp3.mp3", "saveaudioopus.opus"][which];
        let mut bytes = fixture(name);
        if bytes.is_empty() { return Ok(()); }
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if let Some(info) = probe(&bytes)
            && let Ok(plan) = plan(&info, &bytes)
        {
            let _ = contact_sheet(&info, &plan, &bytes, MIB, 64 * MIB);
        }
    }
}
