//! Request rules, checked before any provider is called. Each failure names the field.

use bytes::Bytes;
use url::Url;

use super::{pb, status::InvalidRequest};
use crate::provider::{
    BankCardRequest, ImageFormat, ImageSource, InvoiceTitleRequest, RecognitionMode,
};

/// Longest image URL accepted.
pub const MAX_IMAGE_URL_BYTES: usize = 2048;
/// Longest QR code text accepted (a QR code holds at most 2,953 bytes).
pub const MAX_SCAN_TEXT_BYTES: usize = 4096;

/// The request a provider gets, from a client's; an upload may hold at most `max_image_bytes`
/// (`limits.max_image_bytes`).
pub fn bank_card_request(
    request: pb::RecognizeBankCardRequest,
    max_image_bytes: usize,
) -> Result<BankCardRequest, InvalidRequest> {
    use pb::recognize_bank_card_request::Source;

    let mode = match pb::RecognitionMode::try_from(request.mode) {
        Ok(pb::RecognitionMode::Unspecified | pb::RecognitionMode::Photo) => RecognitionMode::Photo,
        Ok(pb::RecognitionMode::Scan) => RecognitionMode::Scan,
        Err(_) => {
            return Err(InvalidRequest::new(
                "mode",
                format!("unknown recognition mode {}", request.mode),
            ));
        }
    };
    let image = match request.source {
        None => {
            return Err(InvalidRequest::new(
                "image",
                "no image: set `image` (the file's bytes) or `image_url`",
            ));
        }
        Some(Source::Image(bytes)) => {
            let format = upload("image", &bytes, max_image_bytes)?;
            ImageSource::Upload { bytes, format }
        }
        Some(Source::ImageUrl(url)) => ImageSource::Url(image_url(&url)?),
    };
    Ok(BankCardRequest {
        image,
        mode,
        account: optional(request.account),
        provider: optional(request.provider),
    })
}

/// A title request whose QR code is still to be read from its image, or already its text.
#[derive(Debug)]
pub enum TitleRequest {
    Ready(InvoiceTitleRequest),
    /// The image's bytes, and the request its decoded text completes.
    QrImage(Bytes, InvoiceTitleRequest),
}

/// The request a provider gets, from a client's: the QR code's text, or an image of at most
/// `max_image_bytes` to read it from. Exactly one of the two.
pub fn invoice_title_request(
    request: pb::ParseInvoiceTitleRequest,
    max_image_bytes: usize,
) -> Result<TitleRequest, InvalidRequest> {
    let pb::ParseInvoiceTitleRequest {
        scan_text,
        account,
        provider,
        qr_image,
    } = request;
    let scan_text = scan_text.trim();
    let title = |scan_text: String| InvoiceTitleRequest {
        scan_text,
        account: optional(account),
        provider: optional(provider),
    };
    match (scan_text.is_empty(), qr_image.is_empty()) {
        (true, true) => Err(InvalidRequest::new(
            "scan_text",
            "empty: pass the text of the scanned QR code, or its image as `qr_image`",
        )),
        (false, false) => Err(InvalidRequest::new(
            "qr_image",
            "set either `scan_text` or `qr_image`, not both",
        )),
        (false, true) if scan_text.len() > MAX_SCAN_TEXT_BYTES => Err(InvalidRequest::new(
            "scan_text",
            format!(
                "{} bytes; the limit is {MAX_SCAN_TEXT_BYTES} bytes",
                scan_text.len()
            ),
        )),
        (false, true) => Ok(TitleRequest::Ready(title(scan_text.to_owned()))),
        (true, false) => {
            upload("qr_image", &qr_image, max_image_bytes)?;
            Ok(TitleRequest::QrImage(qr_image, title(String::new())))
        }
    }
}

/// An uploaded image's size and format checked: not empty, at most `max_image_bytes`, and one of
/// the formats the gateway decodes.
fn upload(
    field: &'static str,
    bytes: &[u8],
    max_image_bytes: usize,
) -> Result<ImageFormat, InvalidRequest> {
    if bytes.is_empty() {
        return Err(InvalidRequest::new(field, "the image is empty"));
    }
    if bytes.len() > max_image_bytes {
        return Err(InvalidRequest::new(
            field,
            format!(
                "the image is {} bytes; the limit is {max_image_bytes} bytes ({})",
                bytes.len(),
                bytesize::ByteSize(max_image_bytes as u64)
            ),
        ));
    }
    ImageFormat::sniff(bytes).ok_or_else(|| {
        InvalidRequest::new(
            field,
            "the bytes are not a JPEG, PNG, BMP, GIF or WebP image",
        )
    })
}

fn image_url(raw: &str) -> Result<Url, InvalidRequest> {
    let invalid = |why: String| InvalidRequest::new("image_url", why);
    if raw.len() > MAX_IMAGE_URL_BYTES {
        return Err(invalid(format!(
            "{} bytes; the limit is {MAX_IMAGE_URL_BYTES} bytes",
            raw.len()
        )));
    }
    let url = Url::parse(raw.trim())
        .map_err(|err| invalid(format!("not an absolute http(s) URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "scheme `{}` is not allowed; use http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    Ok(url)
}

/// A name field: `None` when empty or blank.
pub fn optional(name: String) -> Option<String> {
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}
