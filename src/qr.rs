//! Invoice title QR codes read from a photo or a screenshot, so that no caller decodes them
//! itself. The image is decoded within the same bounds as every image the gateway decodes
//! (pixels checked from its header, EXIF orientation honoured, one decode per core on the
//! blocking pool), and its QR codes are read with rxing (ZXing in Rust), whose port of
//! zxing-cpp's QR reader finds every code in one image. The WeChat invoice title's is taken.
//!
//! The decoded text carries the user's `invoice_key`: it is never logged nor put in an error.

use std::time::Instant;

use bytes::Bytes;
use image::{GrayImage, imageops};
use rxing::{
    BinaryBitmap, DecodeHintValue, DecodeHints, Luma8LuminanceSource, common::HybridBinarizer,
    multi::MultipleBarcodeReader as _, qrcode::cpp_port::QrReader,
};
use url::Url;

use crate::providers::images::{self, ImageError};

/// The largest image decoded, as for bank card photos.
pub const MAX_PIXELS: u64 = 16_000_000;

/// Why no invoice title came out of an image.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("no QR code was found in the image")]
    NotFound,
    #[error(
        "the image holds {codes} QR code(s), none of them a WeChat invoice title's (an http(s) \
         URL on mp.weixin.qq.com under /intp/invoice/ with an invoice_key)"
    )]
    NotInvoiceTitle { codes: usize },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("the call's deadline ran out while its QR code was being read")]
    DeadlineExceeded,
}

/// The text of the invoice title code in `image`, decoded on the blocking pool. The wait, for a
/// slot and for the decode, ends at `deadline`; a decode already started ends in its slot. The
/// `qr.decode` span records the codes found and the time, never a text.
pub async fn invoice_title_text(
    image: Bytes,
    deadline: Option<tokio::time::Instant>,
) -> Result<String, QrError> {
    let span = tracing::info_span!(
        "qr.decode",
        qr.image_bytes = image.len(),
        qr.codes = tracing::field::Empty,
        qr.decode_ms = tracing::field::Empty,
    );
    let work = span.clone();
    let decoded = images::on_blocking_pool(move || {
        work.in_scope(|| {
            let started = Instant::now();
            let texts = texts(&image, MAX_PIXELS);
            let span = tracing::Span::current();
            span.record("qr.decode_ms", started.elapsed().as_millis() as u64);
            if let Ok(texts) = &texts {
                span.record("qr.codes", texts.len());
            }
            texts
        })
    });
    let texts = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, decoded)
            .await
            .map_err(|_| QrError::DeadlineExceeded)??,
        None => decoded.await?,
    };
    pick(texts)
}

/// The invoice title's text among the codes found.
fn pick(texts: Vec<String>) -> Result<String, QrError> {
    let codes = texts.len();
    texts
        .into_iter()
        .find(|text| is_invoice_title(text))
        .ok_or(if codes == 0 {
            QrError::NotFound
        } else {
            QrError::NotInvoiceTitle { codes }
        })
}

/// The texts of the QR codes in the image file `bytes`, of at most `max_pixels`. Blocking.
///
/// rxing's port of zxing-cpp's QR reader finds every code in one pass over the binarised image;
/// on the benchmark's images it reads as many as ZXing's generic multiple-code reader, in half the
/// time. A code whose modules are a pixel or two wide is lost in binarising, so an image in which
/// no code is found is read once more enlarged, up to twice its size within `max_pixels`
/// (BENCHMARKS.md, *QR codes*).
pub fn texts(bytes: &[u8], max_pixels: u64) -> Result<Vec<String>, ImageError> {
    let luma = images::decode(bytes, max_pixels)?.into_luma8();
    let found = read(&luma);
    if !found.is_empty() {
        return Ok(found);
    }
    let (width, height) = luma.dimensions();
    let scale = (max_pixels as f64 / (f64::from(width) * f64::from(height)))
        .sqrt()
        .min(MAX_ENLARGEMENT);
    if scale < MIN_ENLARGEMENT {
        return Ok(found);
    }
    let enlarged = imageops::resize(
        &luma,
        images::scaled(width, scale),
        images::scaled(height, scale),
        imageops::FilterType::Triangle,
    );
    Ok(read(&enlarged))
}

/// The second look at an image with no code found enlarges it at most this much...
const MAX_ENLARGEMENT: f64 = 2.0;
/// ...and is not taken when the pixel bound leaves less room than this.
const MIN_ENLARGEMENT: f64 = 1.2;

/// The texts of the QR codes in `luma`.
fn read(luma: &GrayImage) -> Vec<String> {
    let (width, height) = luma.dimensions();
    let Ok(source) = Luma8LuminanceSource::new(luma.as_raw().clone(), width, height) else {
        // Only an empty image has no luminance source: it holds no code.
        return Vec::new();
    };
    let hints = DecodeHints::default().with(DecodeHintValue::TryHarder(true));
    // rxing answers "no code" as an error: any failure to find one is no code.
    let found = QrReader
        .decode_multiple_with_hints(&mut BinaryBitmap::new(HybridBinarizer::new(source)), &hints)
        .unwrap_or_default();
    let mut texts: Vec<String> = found
        .into_iter()
        .map(|result| result.getText().to_owned())
        .collect();
    texts.dedup();
    texts
}

/// Whether `text` is a WeChat invoice title code's: an http(s) URL on `mp.weixin.qq.com` under
/// `/intp/invoice/`, with a non-empty `invoice_key`.
pub fn is_invoice_title(text: &str) -> bool {
    Url::parse(text.trim()).is_ok_and(|url| {
        matches!(url.scheme(), "https" | "http")
            && url.host_str() == Some("mp.weixin.qq.com")
            && url.path().starts_with("/intp/invoice/")
            && url
                .query_pairs()
                .any(|(key, value)| key == "invoice_key" && !value.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoice_title_is_a_weixin_url_under_intp_invoice_with_a_key() {
        for text in [
            "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?action=list_auth&invoice_key=abc",
            "http://mp.weixin.qq.com/intp/invoice/usertitle?invoice_key=k",
        ] {
            assert!(is_invoice_title(text), "{text}");
        }
        for text in [
            "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?action=list_auth",
            "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?invoice_key=",
            "https://mp.weixin.qq.com.evil.example/intp/invoice/x?invoice_key=k",
            "https://evil.example/intp/invoice/x?invoice_key=k",
            "https://mp.weixin.qq.com/a/~abcdef?invoice_key=k",
            "wxp://f2f0abcdef",
            "WIFI:S:Guest;T:WPA;P:secret;;",
            "",
        ] {
            assert!(!is_invoice_title(text), "{text}");
        }
    }

    #[test]
    fn the_invoice_title_is_taken_among_several_codes() {
        let title = "https://mp.weixin.qq.com/intp/invoice/usertitlewxa?invoice_key=k";
        let texts = vec!["wxp://f2f0abc".to_owned(), title.to_owned()];
        assert_eq!(pick(texts).expect("found"), title);
        assert!(matches!(pick(Vec::new()), Err(QrError::NotFound)));
        assert!(matches!(
            pick(vec!["wxp://f2f0abc".to_owned()]),
            Err(QrError::NotInvoiceTitle { codes: 1 })
        ));
    }
}
