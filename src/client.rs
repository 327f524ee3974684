//! A typed client for other Rust services: the generated one, plus plain methods and errors that
//! carry ocrgate's error details.

use std::{collections::HashMap, path::Path, time::Duration};

use bytes::Bytes;
use tonic::{
    Code, Status,
    metadata::AsciiMetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};
use tonic_types::StatusExt as _;

use crate::api::pb::recognize_bank_card_request::Source;
pub use crate::api::pb::{
    CardExpiry, CardIssuer, CardNetwork, CardType, ImageWarning, ParseInvoiceTitleRequest,
    ParseInvoiceTitleResponse, RecognitionMode, RecognizeBankCardRequest,
    RecognizeBankCardResponse, TaxNumberFormat, TitleType, ocr_service_client::OcrServiceClient,
    recognize_bank_card_request as image_source,
};

/// A failed call: the gRPC code and message, and the `google.rpc.ErrorInfo` ocrgate attaches.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}{}: {message}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
pub struct CallError {
    pub code: Code,
    pub message: String,
    /// The stable reason, e.g. `WECHAT_QUOTA_EXHAUSTED`; `None` when the failure did not come
    /// from ocrgate (e.g. the connection broke).
    pub reason: Option<String>,
    /// `provider`, `errcode`, `retryable`, `field`, as the reason has them.
    pub metadata: HashMap<String, String>,
}

impl CallError {
    /// The vendor's own error code, when it sent one.
    pub fn errcode(&self) -> Option<&str> {
        self.metadata.get("errcode").map(String::as_str)
    }
}

impl From<Status> for CallError {
    fn from(status: Status) -> Self {
        let info = status.get_details_error_info();
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            reason: info.as_ref().map(|info| info.reason.clone()),
            metadata: info.map(|info| info.metadata).unwrap_or_default(),
        }
    }
}

/// ocrgate's API with plain arguments. Cheap to clone: clones share one connection.
#[derive(Debug, Clone)]
pub struct OcrClient {
    inner: OcrServiceClient<Channel>,
    timeout: Option<Duration>,
    /// `Bearer <key>`, sent with every call.
    authorization: Option<AsciiMetadataValue>,
}

/// How to reach a server over TLS: the CA that signed its certificate, and the client's own
/// certificate and key where the server asks for one (mTLS).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles<'a> {
    pub ca: Option<&'a Path>,
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
}

impl OcrClient {
    /// Connects to `address`, e.g. `http://127.0.0.1:50051`.
    pub async fn connect(address: impl Into<String>) -> Result<Self, ConnectError> {
        let channel = Channel::from_shared(address.into())?.connect().await?;
        Ok(Self::new(channel))
    }

    /// Connects to `address` (`https://…`) over TLS with these files.
    pub async fn connect_tls(
        address: impl Into<String>,
        files: &TlsFiles<'_>,
    ) -> Result<Self, ConnectError> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|err| ConnectError::File(format!("{}: {err}", path.display())))
        };
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = files.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (files.cert, files.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => {
                return Err(ConnectError::File(
                    "give both a certificate and its key".into(),
                ));
            }
        }
        let channel = Channel::from_shared(address.into())?
            .tls_config(tls)?
            .connect()
            .await?;
        Ok(Self::new(channel))
    }

    pub fn new(channel: Channel) -> Self {
        Self {
            inner: OcrServiceClient::new(channel),
            timeout: None,
            authorization: None,
        }
    }

    /// Every call made through the returned client carries this API key.
    pub fn with_api_key(mut self, key: &str) -> Result<Self, ConnectError> {
        let value = format!("Bearer {key}")
            .parse()
            // The key is not quoted: the error reaches logs and terminals.
            .map_err(|_| ConnectError::ApiKey)?;
        self.authorization = Some(value);
        Ok(self)
    }

    /// Every call made through the returned client has this deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The generated client, for what these methods do not cover.
    pub fn generated(&self) -> OcrServiceClient<Channel> {
        self.inner.clone()
    }

    /// Reads the card in an image file's bytes (JPEG, PNG, BMP, GIF or WebP, at most the gateway's
    /// `limits.max_image_bytes`, 10 MiB by default).
    pub async fn recognize_bank_card(
        &self,
        image: impl Into<Bytes>,
    ) -> Result<RecognizeBankCardResponse, CallError> {
        self.recognize(RecognizeBankCardRequest {
            source: Some(Source::Image(image.into())),
            ..Default::default()
        })
        .await
    }

    /// Reads the card in the image at `url`, which the vendor fetches (`local` does not fetch URLs).
    pub async fn recognize_bank_card_url(
        &self,
        url: impl Into<String>,
    ) -> Result<RecognizeBankCardResponse, CallError> {
        self.recognize(RecognizeBankCardRequest {
            source: Some(Source::ImageUrl(url.into())),
            ..Default::default()
        })
        .await
    }

    /// Any bank card request: mode, account, provider and all.
    pub async fn recognize(
        &self,
        request: RecognizeBankCardRequest,
    ) -> Result<RecognizeBankCardResponse, CallError> {
        let request = self.request(request);
        Ok(self
            .inner
            .clone()
            .recognize_bank_card(request)
            .await?
            .into_inner())
    }

    /// Reads the invoice title behind the text of a scanned QR code.
    pub async fn parse_invoice_title(
        &self,
        scan_text: impl Into<String>,
    ) -> Result<ParseInvoiceTitleResponse, CallError> {
        self.parse(ParseInvoiceTitleRequest {
            scan_text: scan_text.into(),
            ..Default::default()
        })
        .await
    }

    /// Reads the invoice title behind the QR code in an image file's bytes (a photo or a
    /// screenshot; JPEG, PNG, BMP, GIF or WebP), which the gateway decodes.
    pub async fn parse_invoice_title_image(
        &self,
        qr_image: impl Into<Bytes>,
    ) -> Result<ParseInvoiceTitleResponse, CallError> {
        self.parse(ParseInvoiceTitleRequest {
            qr_image: qr_image.into(),
            ..Default::default()
        })
        .await
    }

    /// Any invoice title request, account, provider and all.
    pub async fn parse(
        &self,
        request: ParseInvoiceTitleRequest,
    ) -> Result<ParseInvoiceTitleResponse, CallError> {
        let request = self.request(request);
        Ok(self
            .inner
            .clone()
            .parse_invoice_title(request)
            .await?
            .into_inner())
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(timeout) = self.timeout {
            request.set_timeout(timeout);
        }
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        request
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("not a valid server address: {0}")]
    Address(#[from] http::uri::InvalidUri),
    #[error("cannot connect: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot read a TLS file: {0}")]
    File(String),
    #[error("the API key holds characters a header cannot carry")]
    ApiKey,
}
