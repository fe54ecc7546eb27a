//! Image memory: every decode has dimension and allocation limits, and all
//! image work at once shares one memory budget (`server.image_memory_mb`,
//! 256 MiB by default).
//!
//! Why: an image's file size says little about what decoding it costs. A
//! 2 MB interlaced 16384×16384 PNG decodes to 768 MiB of pixels; a few at
//! once over HTTP took the server to gigabytes. So before a decode, the
//! header says what it will allocate ([`decode_cost`]); the call then takes
//! that many bytes (plus the file's own) from a weighted semaphore
//! ([`ImageBudget`]). A call that does not fit waits, within its deadline;
//! one that could never fit, or whose wait runs out, gets an error naming
//! the budget. The decoder itself is held to the same bound (the `image`
//! crate's `Limits`), so a header that lies cannot allocate more.
//!
//! Used by uploads (decoded whole to prove they are the image they say)
//! and by `comfyui_get_image`'s previews of large images.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use image::{AnimationDecoder as _, ImageDecoder as _, ImageFormat};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest width or height decoded, pixels.
pub const MAX_SIDE: u32 = 16_384;

/// Default `server.image_memory_mb`.
pub const DEFAULT_BUDGET_MB: u64 = 256;

/// Most frames an animated upload may have.
pub const MAX_FRAMES: usize = 10_000;

/// The budget is counted in KiB (a semaphore's permits are `u32`-sized).
const UNIT: usize = 1024;

/// One memory budget for all image work at once.
#[derive(Debug)]
pub struct ImageBudget {
    semaphore: Arc<Semaphore>,
    units: usize,
}

/// What went wrong taking memory from the budget or decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The decode needs more than the whole budget.
    #[error(
        "decoding this image needs {need_mb} MiB, more than the image memory budget of {budget_mb} MiB \
         (server.image_memory_mb)"
    )]
    OverBudget {
        /// What it needs, MiB (rounded up).
        need_mb: usize,
        /// The budget, MiB.
        budget_mb: usize,
    },
    /// Other image work held the budget for the whole wait.
    #[error(
        "the server is busy with other images: {need_mb} MiB of the image memory budget of {budget_mb} MiB \
         (server.image_memory_mb) did not come free within {waited_s} s; try again"
    )]
    Busy {
        /// What it needs, MiB (rounded up).
        need_mb: usize,
        /// The budget, MiB.
        budget_mb: usize,
        /// How long it waited, seconds.
        waited_s: u64,
    },
    /// The image is not one, is broken, or is outside the limits.
    #[error("{0}")]
    Decode(String),
}

impl ImageBudget {
    /// A budget of `bytes`.
    #[must_use]
    pub fn new(bytes: usize) -> Self {
        let units = (bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Self {
            semaphore: Arc::new(Semaphore::new(units)),
            units,
        }
    }

    /// The whole budget, bytes.
    #[must_use]
    pub fn total(&self) -> usize {
        self.units * UNIT
    }

    /// What is free now, bytes.
    #[must_use]
    pub fn available(&self) -> usize {
        self.semaphore.available_permits() * UNIT
    }

    /// Takes `bytes` from the budget, waiting at most `wait` for them to
    /// come free. The memory returns when the permit is dropped.
    ///
    /// # Errors
    /// [`ImageError::OverBudget`] at once when `bytes` exceed the whole
    /// budget; [`ImageError::Busy`] when the wait runs out.
    pub async fn acquire(&self, bytes: usize, wait: Duration) -> Result<OwnedSemaphorePermit, ImageError> {
        let need = bytes.div_ceil(UNIT).max(1);
        let mb = |u: usize| (u * UNIT).div_ceil(1 << 20);
        if need > self.units {
            return Err(ImageError::OverBudget {
                need_mb: mb(need),
                budget_mb: mb(self.units),
            });
        }
        let n = u32::try_from(need).unwrap_or(u32::MAX);
        match tokio::time::timeout(wait, Arc::clone(&self.semaphore).acquire_many_owned(n)).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(ImageError::Busy {
                need_mb: mb(need),
                budget_mb: mb(self.units),
                waited_s: wait.as_secs(),
            }),
        }
    }
}

/// The server's one image budget, made from the first configuration that
/// asks for it (`server.image_memory_mb`).
pub fn global(budget_mb: u64) -> &'static ImageBudget {
    static BUDGET: OnceLock<ImageBudget> = OnceLock::new();
    BUDGET.get_or_init(|| ImageBudget::new(usize::try_from(budget_mb.max(1) << 20).unwrap_or(usize::MAX)))
}

/// Decoder limits: [`MAX_SIDE`] a side, at most `max_alloc` bytes.
#[must_use]
pub fn limits(max_alloc: usize) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(max_alloc as u64);
    l
}

/// What decoding `bytes` as `format` costs, from its header: width,
/// height, and the bytes its pixels take.
///
/// # Errors
/// [`ImageError::Decode`] when the header is unreadable or over
/// [`MAX_SIDE`].
pub fn decode_cost(format: ImageFormat, bytes: &[u8]) -> Result<(u32, u32, u64), ImageError> {
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    reader.limits(limits(usize::MAX));
    let decoder = reader
        .into_decoder()
        .map_err(|e| ImageError::Decode(format!("cannot read the image header: {e}")))?;
    let (w, h) = decoder.dimensions();
    Ok((w, h, decoder.total_bytes()))
}

/// Decodes `bytes` whole as `format` (every frame of a GIF), allocating at
/// most `max_alloc`, and discards the pixels: proof that the file is the
/// image it says, whole. Blocking; run it off the async workers.
///
/// # Errors
/// [`ImageError::Decode`] naming what failed.
pub fn decode_whole(format: ImageFormat, bytes: &[u8], max_alloc: usize) -> Result<(), ImageError> {
    let bad = |e: image::ImageError| ImageError::Decode(format!("the file does not decode as a whole image: {e}"));
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    reader.limits(limits(max_alloc));
    if format == ImageFormat::Gif {
        let mut decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).map_err(bad)?;
        decoder.set_limits(limits(max_alloc)).map_err(bad)?;
        let mut n = 0usize;
        for frame in decoder.into_frames() {
            frame.map_err(bad)?;
            n += 1;
            if n > MAX_FRAMES {
                return Err(ImageError::Decode(format!("the GIF has more than {MAX_FRAMES} frames")));
            }
        }
        return Ok(());
    }
    reader.decode().map(drop).map_err(bad)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const MIB: usize = 1 << 20;

    #[tokio::test]
    async fn over_the_whole_budget_is_refused_at_once() {
        let b = ImageBudget::new(64 * MIB);
        let started = std::time::Instant::now();
        let e = b.acquire(768 * MIB, Duration::from_secs(30)).await.err();
        assert_eq!(
            e,
            Some(ImageError::OverBudget {
                need_mb: 768,
                budget_mb: 64
            })
        );
        assert!(started.elapsed() < Duration::from_secs(1), "no wait for the impossible");
    }

    /// On the paused clock, the sleep below ends only once every task is
    /// idle: the waiter is parked on the budget when the memory comes back.
    #[tokio::test(start_paused = true)]
    async fn a_call_waits_for_memory_within_its_wait_and_then_gets_it() {
        let b = Arc::new(ImageBudget::new(64 * MIB));
        let held = b.acquire(48 * MIB, Duration::from_secs(1)).await.ok();
        assert_eq!(b.available(), 16 * MIB);
        let busy = b.acquire(32 * MIB, Duration::from_millis(50)).await.err();
        assert!(matches!(busy, Some(ImageError::Busy { need_mb: 32, .. })), "{busy:?}");
        let waiter = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.acquire(32 * MIB, Duration::from_secs(5)).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert!(waiter.await.unwrap_or(false));
        assert_eq!(b.available(), 64 * MIB, "every permit came back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_work_never_holds_more_than_the_budget() {
        let b = Arc::new(ImageBudget::new(100 * MIB));
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (b, now, peak) = (Arc::clone(&b), Arc::clone(&now), Arc::clone(&peak));
            tasks.push(tokio::spawn(async move {
                let need = (30 + i) * MIB;
                let Ok(permit) = b.acquire(need, Duration::from_secs(10)).await else {
                    return false;
                };
                let held = now.fetch_add(need, Ordering::SeqCst) + need;
                peak.fetch_max(held, Ordering::SeqCst);
                // Time is the subject: each task holds its permit a while.
                tokio::time::sleep(Duration::from_millis(20)).await;
                now.fetch_sub(need, Ordering::SeqCst);
                drop(permit);
                true
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap_or(false), "every call got its memory in time");
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= 100 * MIB, "peak {peak}");
        assert!(peak >= 60 * MIB, "work ran side by side: peak {peak}");
    }

    #[test]
    fn the_header_says_what_a_decode_costs() {
        // An interlaced 16384x16384 RGB PNG: a header is enough to know
        // it needs 768 MiB.
        let png = hostile_png(16_384);
        let cost = decode_cost(ImageFormat::Png, &png).ok();
        assert_eq!(cost, Some((16_384, 16_384, 16_384 * 16_384 * 3)));
        assert!(
            decode_cost(ImageFormat::Png, &hostile_png(16_385)).is_err(),
            "over MAX_SIDE"
        );
    }

    /// A PNG header for a `side`×`side` interlaced RGB image with an empty
    /// image data chunk.
    pub(crate) fn hostile_png(side: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&side.to_be_bytes());
        ihdr.extend_from_slice(&side.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 1]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &[0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
}
