//! The vendor-neutral core: what ocrgate can do, in its own words.
//!
//! The gRPC edge (`api`) speaks to these traits only, and each vendor adapter (`providers::*`)
//! implements them. Nothing here knows about protobuf or any vendor's JSON.

mod error;
mod trail;

use std::{fmt, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;
use url::Url;

pub use error::{ErrorKind, ProviderError, VendorCode, vendor_text};
pub use trail::{Cached, Escalation, Provenance, Trail};

/// Reads bank card numbers from images.
#[async_trait]
pub trait BankCardRecognizer: Send + Sync + 'static {
    /// The provider's name as clients see it in responses and error details, e.g. `wechat`.
    fn name(&self) -> &'static str;

    async fn recognize_bank_card(
        &self,
        request: BankCardRequest,
        call: &CallContext,
    ) -> Result<BankCard, ProviderError>;
}

/// Reads invoice titles from the text of the QR code a user shows.
#[async_trait]
pub trait InvoiceTitleParser: Send + Sync + 'static {
    /// The provider's name as clients see it in responses and error details, e.g. `wechat`.
    fn name(&self) -> &'static str;

    async fn parse_invoice_title(
        &self,
        request: InvoiceTitleRequest,
        call: &CallContext,
    ) -> Result<InvoiceTitle, ProviderError>;
}

/// What a provider needs to know about the call it serves, beyond the request itself.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// When the client stops waiting. Everything downstream (token fetches, retries, the vendor
    /// call) must finish before it.
    pub deadline: Option<Instant>,
    /// Who calls, as metrics name callers (a configured name or `anonymous`); `None` where the
    /// server settles no caller (some tests build it without the auth layer).
    pub caller: Option<std::sync::Arc<str>>,
    /// What the layers above the provider note of the call: who answered, and how.
    pub trail: Trail,
}

impl CallContext {
    /// Time left before the deadline; `None` when the call has no deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

/// An image format the vendors accept, sniffed from the bytes themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Bmp,
    Gif,
    WebP,
}

impl ImageFormat {
    /// The format of `bytes`, or `None` when they are not one of the accepted formats.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        match infer::get(bytes)?.mime_type() {
            "image/jpeg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            "image/bmp" => Some(Self::Bmp),
            "image/gif" => Some(Self::Gif),
            "image/webp" => Some(Self::WebP),
            _ => None,
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Bmp => "image/bmp",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Bmp => "bmp",
            Self::Gif => "gif",
            Self::WebP => "webp",
        }
    }
}

/// An image to recognise: uploaded bytes, or a URL the provider fetches.
#[derive(Clone, PartialEq, Eq)]
pub enum ImageSource {
    Upload { bytes: Bytes, format: ImageFormat },
    Url(Url),
}

impl fmt::Debug for ImageSource {
    // The bytes of a card photo are as sensitive as the number on it: show their size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Upload { bytes, format } => f
                .debug_struct("Upload")
                .field("format", format)
                .field("len", &bytes.len())
                .finish(),
            Self::Url(url) => f.debug_tuple("Url").field(&url.as_str()).finish(),
        }
    }
}

/// How the image was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecognitionMode {
    #[default]
    Photo,
    Scan,
}

#[derive(Debug, Clone)]
pub struct BankCardRequest {
    pub image: ImageSource,
    pub mode: RecognitionMode,
    /// The configured vendor account to use; `None` for the default one.
    pub account: Option<String>,
    /// The provider the caller asks for by name; `None` lets the route choose. Only the route
    /// reads it: the provider it calls is the one named.
    pub provider: Option<String>,
}

/// A bank card number, digits only. Its `Debug` and `Display` show it masked.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    /// Keeps the digits of `raw`, dropping the spaces and dashes vendors put between groups.
    /// `None` when `raw` holds anything but digits, spaces and dashes, or no digit at all.
    pub fn parse(raw: &str) -> Option<Self> {
        let cleaned = raw.trim();
        if !cleaned
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
        {
            return None;
        }
        let digits: String = cleaned.chars().filter(char::is_ascii_digit).collect();
        (!digits.is_empty()).then_some(Self(digits))
    }

    /// The full number. Only the response to the client may carry it.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// First six and last four digits, the rest as `*`: safe to log.
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }
}

/// `digits` (ASCII digits only) with all but the first six and last four as `*`; all of them
/// when there are ten or fewer.
pub(crate) fn mask_digits(digits: &str) -> String {
    let n = digits.len();
    if n <= 10 {
        return "*".repeat(n);
    }
    format!("{}{}{}", &digits[..6], "*".repeat(n - 10), &digits[n - 4..])
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CardNumber").field(&self.masked()).finish()
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// What a provider read from a card. Everything but the number is optional: each provider gives
/// what it can.
#[derive(Debug, Clone, PartialEq)]
pub struct BankCard {
    pub number: CardNumber,
    /// The expiry printed on the card.
    pub expiry: Option<CardExpiry>,
    /// What is wrong with the image, from the vendor's checks and ocrgate's own rules.
    pub warnings: Vec<ImageWarning>,
    /// Image quality, 0 (unreadable) to 100.
    pub quality: Option<u8>,
    /// The card product's name as the vendor read it, e.g. `招商银行一卡通`.
    pub card_name: Option<String>,
    /// The issuing bank's name as the vendor gave it.
    pub bank_name: Option<String>,
    /// The kind of card as the vendor gave it.
    pub card_type: Option<CardType>,
    /// The provider's estimate, from 0 to 1, that the whole number is exactly right; `None` when
    /// the provider gives nothing to base one on.
    pub confidence: Option<f32>,
}

impl BankCard {
    /// A card of which only the number is known.
    pub fn new(number: CardNumber) -> Self {
        Self {
            number,
            expiry: None,
            warnings: Vec::new(),
            quality: None,
            card_name: None,
            bank_name: None,
            card_type: None,
            confidence: None,
        }
    }

    /// Adds `warning` unless it is there already.
    pub fn warn(&mut self, warning: ImageWarning) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// Applies ocrgate's own rules to what the provider gave: a quality below
    /// [`BLURRY_BELOW`] is `Blurry`.
    pub fn with_own_rules(mut self) -> Self {
        if self.quality.is_some_and(|quality| quality < BLURRY_BELOW) {
            self.warn(ImageWarning::Blurry);
        }
        self
    }
}

/// Quality scores below this are too blurry to trust (Tencent's own threshold).
pub const BLURRY_BELOW: u8 = 50;

/// The month and year a card expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardExpiry {
    /// 1 to 12.
    pub month: u8,
    /// Four digits.
    pub year: u16,
}

impl CardExpiry {
    /// `MM/YYYY` or `MM/YY` (the year taken as 20YY); `None` for anything else, or a month that
    /// does not exist.
    pub fn parse(text: &str) -> Option<Self> {
        let (month, year) = text.trim().split_once('/')?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(month) || month.len() > 2 || !digits(year) {
            return None;
        }
        let month: u8 = month.parse().ok()?;
        let year: u16 = match year.len() {
            2 => 2000 + year.parse::<u16>().ok()?,
            4 => year.parse().ok()?,
            _ => return None,
        };
        (1..=12).contains(&month).then_some(Self { month, year })
    }
}

/// Something about the image that makes its reading less trustworthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageWarning {
    /// A photocopy, not the card itself.
    Photocopy,
    /// A photo of a screen or of a print.
    Reshoot,
    /// Part of the card's border is covered or outside the image.
    BorderIncomplete,
    /// Glare or reflection over the card.
    Glare,
    /// Too blurry to trust.
    Blurry,
    /// The expiry on the card is not a valid date.
    ExpiryInvalid,
    /// The number's confidence is under the routing threshold and no further provider replaced
    /// it: worth asking for another photo.
    LowConfidence,
}

/// An answer its provider may be unsure of, as routing weighs it.
pub trait Graded {
    /// The provider's estimate, from 0 to 1, that the answer is exactly right; `None` when it
    /// gives none, which routing takes as trusted.
    fn confidence(&self) -> Option<f32>;

    /// Marks an answer kept although its confidence is under the routing threshold.
    fn mark_low_confidence(&mut self);
}

impl Graded for BankCard {
    fn confidence(&self) -> Option<f32> {
        self.confidence
    }

    fn mark_low_confidence(&mut self) {
        self.warn(ImageWarning::LowConfidence);
    }
}

/// Invoice titles are decoded from a QR code's text, which is either read or not.
impl Graded for InvoiceTitle {
    fn confidence(&self) -> Option<f32> {
        None
    }

    fn mark_low_confidence(&mut self) {}
}

/// The kind of account behind a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardType {
    Debit,
    Credit,
    SemiCredit,
    Prepaid,
}

#[derive(Debug, Clone)]
pub struct InvoiceTitleRequest {
    /// The text of the scanned QR code, trimmed and non-empty.
    pub scan_text: String,
    /// The configured vendor account to use; `None` for the default one.
    pub account: Option<String>,
    /// The provider the caller asks for by name; `None` lets the route choose. Only the route
    /// reads it: the provider it calls is the one named.
    pub provider: Option<String>,
}

/// Whom an invoice is made out to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TitleType {
    #[default]
    Unspecified,
    Organization,
    Individual,
}

/// An invoice title as the user shared it. Empty strings mean the user left a field blank.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvoiceTitle {
    pub title_type: TitleType,
    pub title: String,
    pub phone: String,
    pub tax_number: String,
    pub address: String,
    pub bank_name: String,
    pub bank_account: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_read_as_month_and_four_digit_year() {
        assert_eq!(
            CardExpiry::parse("07/2023"),
            Some(CardExpiry {
                month: 7,
                year: 2023
            })
        );
        assert_eq!(
            CardExpiry::parse(" 12/29 "),
            Some(CardExpiry {
                month: 12,
                year: 2029
            })
        );
        for invalid in [
            "13/2023", "00/2023", "7-2023", "07/", "/2023", "07/123", "ab/cd", "",
        ] {
            assert_eq!(CardExpiry::parse(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn low_quality_is_blurry_once() {
        let mut card = BankCard::new(CardNumber::parse("6222020200112345678").expect("digits"));
        card.quality = Some(49);
        card.warnings = vec![ImageWarning::Blurry];
        assert_eq!(
            card.clone().with_own_rules().warnings,
            [ImageWarning::Blurry]
        );
        card.warnings.clear();
        assert_eq!(
            card.clone().with_own_rules().warnings,
            [ImageWarning::Blurry]
        );
        card.quality = Some(50);
        assert!(card.with_own_rules().warnings.is_empty());
    }

    #[test]
    fn card_number_keeps_digits_and_drops_group_separators() {
        let number = CardNumber::parse(" 6222 0202-0011 2345 678 ").expect("digits");
        assert_eq!(number.digits(), "6222020200112345678");
    }

    #[test]
    fn card_number_rejects_text_that_is_not_a_number() {
        assert_eq!(CardNumber::parse("6222x0202"), None);
        assert_eq!(CardNumber::parse(" - "), None);
        assert_eq!(CardNumber::parse(""), None);
    }

    #[test]
    fn card_number_shows_only_first_six_and_last_four_when_formatted() {
        let number = CardNumber::parse("6222020200112345678").expect("digits");
        assert_eq!(number.masked(), "622202*********5678");
        assert_eq!(format!("{number}"), "622202*********5678");
        assert!(!format!("{number:?}").contains("6222020200112345678"));
    }

    #[test]
    fn short_card_number_is_masked_whole() {
        let number = CardNumber::parse("1234567890").expect("digits");
        assert_eq!(number.masked(), "**********");
    }

    #[test]
    fn image_formats_are_sniffed_from_magic_bytes() {
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"GIF89a\x01\0\x01\0"),
            Some(ImageFormat::Gif)
        );
        assert_eq!(
            ImageFormat::sniff(b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0"),
            Some(ImageFormat::Bmp)
        );
        assert_eq!(
            ImageFormat::sniff(b"RIFF\x1a\0\0\0WEBPVP8 "),
            Some(ImageFormat::WebP)
        );
        assert_eq!(ImageFormat::sniff(b"%PDF-1.7\n"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
    }
}
