//! Images as providers take them: decoded within bounds and upright, and fitted to a vendor's
//! size limit and formats only when they do not fit already.
//!
//! Phones save 3-8 MB photos with an EXIF orientation instead of upright pixels. An upload a
//! vendor takes as it is goes to it byte for byte, never decoded nor copied. One it does not take
//! (too large, or in a format it refuses) is decoded, turned upright, and re-encoded as JPEG,
//! downscaled (never upscaled) until it fits.

use std::{io::Cursor, sync::LazyLock, time::Instant};

use bytes::Bytes;
use image::{
    DynamicImage, ImageDecoder as _, ImageReader, Limits, codecs::jpeg::JpegEncoder,
    metadata::Orientation,
};
use tokio::sync::Semaphore;

use crate::provider::{ErrorKind, ImageFormat, ProviderError};

/// What a provider takes as it is.
#[derive(Debug, Clone, Copy)]
pub struct Accepts {
    /// The largest file, in bytes.
    pub max_bytes: usize,
    /// The formats it reads.
    pub formats: &'static [ImageFormat],
}

/// Why an image could not be decoded or fitted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImageError {
    #[error("the image could not be decoded: {0}")]
    Undecodable(String),
    #[error(
        "the image is {width}×{height} pixels ({:.1} megapixels); at most {:.1} megapixels are \
         decoded",
        pixels(*width, *height) as f64 / 1e6,
        *max_pixels as f64 / 1e6
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error(
        "the image could not be made to fit {max_bytes} bytes without shrinking it past legibility"
    )]
    CannotFit { max_bytes: usize },
    #[error("the image task failed: {0}")]
    Task(String),
}

impl ImageError {
    /// Whose fault it is: the client's image, or (for a failed task) ours.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Task(_) => ErrorKind::Unknown,
            Self::Undecodable(_) | Self::TooManyPixels { .. } | Self::CannotFit { .. } => {
                ErrorKind::InvalidInput
            }
        }
    }

    /// The error `provider` answers with.
    pub fn into_provider_error(self, provider: &'static str) -> ProviderError {
        ProviderError::new(provider, self.kind(), self.to_string())
    }
}

fn pixels(width: u32, height: u32) -> u64 {
    u64::from(width) * u64::from(height)
}

/// Decodes an image of at most `max_pixels` (checked from its header, before any pixel is
/// decoded, and with the decoder's allocations capped to match) and turns it upright by its EXIF
/// orientation. Blocking: call it on the blocking pool.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, ImageError> {
    let undecodable = |err: image::ImageError| ImageError::Undecodable(err.to_string());
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|err| undecodable(err.into()))?;
    let mut limits = Limits::default();
    // The widest pixel an image format holds: 16-bit RGBA.
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let (width, height) = decoder.dimensions();
    if pixels(width, height) > max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            max_pixels,
        });
    }
    // A missing or unreadable orientation leaves the pixels as they are stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Conversions running at once, across every provider: each holds a decoded photo (up to
/// `max_pixels` × 4 bytes and a scaled copy), so at most one per core.
static CONVERSIONS: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
});

/// The upload as `accepts` takes it: the same bytes when it takes them, or else a JPEG that fits,
/// made on the blocking pool. The `image.fit` span records the original and the sent sizes.
pub async fn fit(
    bytes: Bytes,
    format: ImageFormat,
    accepts: Accepts,
    max_pixels: u64,
) -> Result<(Bytes, ImageFormat), ImageError> {
    if bytes.len() <= accepts.max_bytes && accepts.formats.contains(&format) {
        return Ok((bytes, format));
    }
    let span = tracing::info_span!(
        "image.fit",
        image.original_bytes = bytes.len(),
        image.original_format = format.extension(),
        image.sent_bytes = tracing::field::Empty,
        image.sent_width = tracing::field::Empty,
        image.sent_height = tracing::field::Empty,
        image.cpu_ms = tracing::field::Empty,
    );
    let work = span.clone();
    let jpeg = on_blocking_pool(move || {
        work.in_scope(|| fit_as_jpeg(&bytes, accepts.max_bytes, max_pixels))
    })
    .await?;
    span.record("image.sent_bytes", jpeg.len());
    Ok((jpeg, ImageFormat::Jpeg))
}

/// Runs `work` on the blocking pool once one of the conversion slots (one per core, shared by
/// every decode of an image) is free. The slot is held until the work ends, even when the caller
/// stops waiting for it.
pub async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    let permit = CONVERSIONS
        .acquire()
        .await
        .map_err(|err| ImageError::Task(err.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|err| ImageError::Task(err.to_string()))?
}

/// JPEG quality of a re-encoded photo: text stays crisp at a third of the size of quality 95.
const JPEG_QUALITY: u8 = 85;
/// A fitted image keeps at least this many pixels on its shorter side, or the fit fails: below
/// it a card's digits are no longer legible.
const MIN_SHORT_SIDE: u32 = 320;
/// Encodings tried before giving up; each estimates the scale from the last one's size.
const MAX_ATTEMPTS: usize = 6;

/// Decodes `bytes` upright and encodes it as a JPEG of at most `max_bytes`: at its own size when
/// that fits, else scaled down by the square root of how far the last try overshot, with margin.
/// Blocking.
pub fn fit_as_jpeg(bytes: &[u8], max_bytes: usize, max_pixels: u64) -> Result<Bytes, ImageError> {
    let started = Instant::now();
    let image = DynamicImage::ImageRgb8(decode(bytes, max_pixels)?.into_rgb8());
    let (width, height) = (image.width(), image.height());
    let mut scale = 1.0_f64;
    for _ in 0..MAX_ATTEMPTS {
        let (w, h) = (scaled(width, scale), scaled(height, scale));
        if w.min(h) < MIN_SHORT_SIDE.min(width.min(height)) {
            break;
        }
        let resized;
        let source = if (w, h) == (width, height) {
            &image
        } else {
            // Area averaging: the right filter to shrink, and it needs no buffer beyond its output.
            resized = image.thumbnail_exact(w, h);
            &resized
        };
        let mut jpeg = Vec::with_capacity(max_bytes.min(bytes.len()));
        source
            .write_with_encoder(JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY))
            .map_err(|err| ImageError::Task(format!("JPEG encoding failed: {err}")))?;
        if jpeg.len() <= max_bytes {
            let span = tracing::Span::current();
            span.record("image.sent_width", w);
            span.record("image.sent_height", h);
            span.record("image.cpu_ms", started.elapsed().as_millis() as u64);
            return Ok(Bytes::from(jpeg));
        }
        // JPEG size follows the pixel count: shrink the area by the overshoot, and 10% more.
        scale *= (max_bytes as f64 / jpeg.len() as f64).sqrt() * 0.9;
    }
    Err(ImageError::CannotFit { max_bytes })
}

/// `side` pixels scaled by `scale`, at least one.
pub fn scaled(side: u32, scale: f64) -> u32 {
    ((f64::from(side) * scale).round() as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[ImageFormat] = &[ImageFormat::Jpeg, ImageFormat::Png];

    /// A photo-like image: smooth gradients under fine noise, which JPEG cannot shrink much.
    fn noisy(width: u32, height: u32) -> DynamicImage {
        let mut seed = 0x9e37_79b9_u32;
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = (seed % 64) as u8;
            image::Rgb([(x % 192) as u8 + noise, (y % 192) as u8 + noise, noise * 2])
        }))
    }

    fn encoded(image: &DynamicImage, format: image::ImageFormat) -> Bytes {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encodes");
        Bytes::from(out.into_inner())
    }

    #[tokio::test]
    async fn an_image_that_fits_goes_as_it_is() {
        let png = encoded(&noisy(64, 48), image::ImageFormat::Png);
        let accepts = Accepts {
            max_bytes: png.len(),
            formats: ALL,
        };
        let (sent, format) = fit(png.clone(), ImageFormat::Png, accepts, 10_000)
            .await
            .expect("fits");
        assert_eq!(format, ImageFormat::Png);
        // The same allocation, not a copy.
        assert_eq!(sent.as_ptr(), png.as_ptr());
    }

    #[tokio::test]
    async fn a_large_image_is_downscaled_to_a_jpeg_that_fits() {
        let png = encoded(&noisy(1600, 1000), image::ImageFormat::Png);
        let max_bytes = 200_000;
        assert!(png.len() > max_bytes);
        let accepts = Accepts {
            max_bytes,
            formats: ALL,
        };
        let (sent, format) = fit(png, ImageFormat::Png, accepts, 2_000_000)
            .await
            .expect("fits");
        assert_eq!(format, ImageFormat::Jpeg);
        assert!(sent.len() <= max_bytes, "{} bytes", sent.len());
        let decoded = image::load_from_memory(&sent).expect("a JPEG");
        assert!(decoded.width() < 1600 && decoded.width() >= MIN_SHORT_SIDE);
        // The aspect ratio is kept.
        let ratio = f64::from(decoded.width()) / f64::from(decoded.height());
        assert!((ratio - 1.6).abs() < 0.01, "{ratio}");
    }

    #[tokio::test]
    async fn a_refused_format_is_converted_without_upscaling() {
        let gif = encoded(&noisy(40, 30), image::ImageFormat::Gif);
        let accepts = Accepts {
            max_bytes: 1 << 20,
            formats: &[ImageFormat::Jpeg],
        };
        let (sent, format) = fit(gif, ImageFormat::Gif, accepts, 10_000)
            .await
            .expect("converts");
        assert_eq!(format, ImageFormat::Jpeg);
        let decoded = image::load_from_memory(&sent).expect("a JPEG");
        assert_eq!((decoded.width(), decoded.height()), (40, 30));
    }

    #[tokio::test]
    async fn pixels_over_the_limit_are_refused_before_decoding() {
        let png = encoded(&noisy(100, 100), image::ImageFormat::Png);
        let accepts = Accepts {
            max_bytes: 10,
            formats: ALL,
        };
        let err = fit(png, ImageFormat::Png, accepts, 9_999)
            .await
            .expect_err("over the pixel limit");
        assert!(matches!(
            err,
            ImageError::TooManyPixels {
                width: 100,
                height: 100,
                ..
            }
        ));
        assert_eq!(
            err.into_provider_error("test").kind,
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn an_image_that_cannot_shrink_enough_is_refused() {
        let png = encoded(&noisy(400, 400), image::ImageFormat::Png);
        let err = fit_as_jpeg(&png, 100, 1_000_000).expect_err("100 bytes hold no photo");
        assert!(matches!(err, ImageError::CannotFit { max_bytes: 100 }));
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 4×2 JPEG whose EXIF says "rotate 90° clockwise to view" (orientation 6).
        let stored = encoded(&noisy(4, 2), image::ImageFormat::Jpeg);
        let jpeg = ocrgate_cardgen::with_exif_orientation(&stored, 6);
        let upright = decode(&jpeg, 100).expect("decodes");
        assert_eq!((upright.width(), upright.height()), (2, 4));
        let as_stored = decode(&stored, 100).expect("decodes");
        assert_eq!((as_stored.width(), as_stored.height()), (4, 2));
    }
}
