//! `ocrgate card` and `ocrgate title`: call a running server and print the answer for people.

use std::{path::Path, process::ExitCode, time::Duration};

use ocrgate::client::{
    CallError, CardNetwork, CardType, ImageWarning, OcrClient, ParseInvoiceTitleRequest,
    ParseInvoiceTitleResponse, RecognitionMode, RecognizeBankCardRequest,
    RecognizeBankCardResponse, TaxNumberFormat, TitleType, TlsFiles, image_source,
};
use serde_json::{Value, json};

/// Where and how to call the server.
#[derive(Debug, clap::Args)]
pub struct CallOptions {
    /// The server's address (`https://…` with TLS).
    #[arg(long, env = "OCRGATE_ADDR", default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// The API key to call with (sent as `authorization: Bearer <key>`).
    #[arg(long, env = "OCRGATE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// PEM CA certificate that signed the server's certificate; connects over TLS.
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// PEM client certificate, for a server that asks for one (mTLS); with --key.
    #[arg(long, requires = "key")]
    cert: Option<std::path::PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<std::path::PathBuf>,
    /// The configured vendor account to use (default: the server's default account).
    #[arg(long)]
    account: Option<String>,
    /// Ask this provider only, e.g. `local` or `wechat` (default: the server's routing).
    #[arg(long)]
    provider: Option<String>,
    /// How long to wait for the answer, e.g. `10s` or `500ms`.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the answer (or the error) as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// A photo taken with a camera.
    Photo,
    /// A flatbed scan.
    Scan,
}

pub async fn card(image: &str, mode: Mode, options: &CallOptions) -> ExitCode {
    let source = if image.starts_with("http://") || image.starts_with("https://") {
        image_source::Source::ImageUrl(image.to_owned())
    } else {
        match std::fs::read(Path::new(image)) {
            Ok(bytes) => image_source::Source::Image(bytes.into()),
            Err(err) => {
                eprintln!("error: cannot read {image}: {err}");
                return ExitCode::FAILURE;
            }
        }
    };
    let request = RecognizeBankCardRequest {
        source: Some(source),
        mode: match mode {
            Mode::Photo => RecognitionMode::Photo,
            Mode::Scan => RecognitionMode::Scan,
        }
        .into(),
        account: options.account.clone().unwrap_or_default(),
        provider: options.provider.clone().unwrap_or_default(),
    };
    let Some(client) = connect(options).await else {
        return ExitCode::FAILURE;
    };
    finish(
        client.recognize(request).await,
        options,
        card_json,
        print_card,
    )
}

/// The title behind `scan_text`, or behind the QR code in the `image` file.
pub async fn title(
    scan_text: Option<String>,
    image: Option<&Path>,
    options: &CallOptions,
) -> ExitCode {
    let qr_image = match image {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) => {
                eprintln!("error: cannot read {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Vec::new(),
    };
    let Some(client) = connect(options).await else {
        return ExitCode::FAILURE;
    };
    let request = ParseInvoiceTitleRequest {
        scan_text: scan_text.unwrap_or_default(),
        account: options.account.clone().unwrap_or_default(),
        provider: options.provider.clone().unwrap_or_default(),
        qr_image: qr_image.into(),
    };
    finish(
        client.parse(request).await,
        options,
        title_json,
        print_title,
    )
}

async fn connect(options: &CallOptions) -> Option<OcrClient> {
    let tls =
        options.tls_ca.is_some() || options.cert.is_some() || options.addr.starts_with("https://");
    let connected = if tls {
        let files = TlsFiles {
            ca: options.tls_ca.as_deref(),
            cert: options.cert.as_deref(),
            key: options.key.as_deref(),
        };
        OcrClient::connect_tls(options.addr.clone(), &files).await
    } else {
        OcrClient::connect(options.addr.clone()).await
    };
    let client = connected.and_then(|client| match &options.api_key {
        Some(key) => client.with_api_key(key),
        None => Ok(client),
    });
    match client {
        Ok(client) => Some(client.with_timeout(options.timeout)),
        Err(err) => {
            eprintln!("error: {}: {err}", options.addr);
            None
        }
    }
}

fn finish<T>(
    reply: Result<T, CallError>,
    options: &CallOptions,
    to_json: fn(&T) -> Value,
    print: fn(&T),
) -> ExitCode {
    match (reply, options.json) {
        (Ok(reply), true) => {
            println!("{:#}", to_json(&reply));
            ExitCode::SUCCESS
        }
        (Ok(reply), false) => {
            print(&reply);
            ExitCode::SUCCESS
        }
        (Err(err), json) => {
            let code = code_name(err.code);
            if json {
                println!(
                    "{:#}",
                    json!({"error": {
                        "code": code,
                        "reason": err.reason,
                        "message": err.message,
                        "metadata": err.metadata,
                    }})
                );
            } else {
                let reason = err
                    .reason
                    .as_deref()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default();
                let errcode = err
                    .errcode()
                    .map(|c| format!(" (errcode {c})"))
                    .unwrap_or_default();
                eprintln!("error: {code}{reason}: {}{errcode}", err.message);
            }
            ExitCode::FAILURE
        }
    }
}

fn card_json(card: &RecognizeBankCardResponse) -> Value {
    json!({
        "card_number": card.card_number,
        "masked_number": card.masked_number,
        "luhn_valid": card.luhn_valid,
        "issuer": card.issuer.as_ref().map(|issuer| json!({
            "bank_name": issuer.bank_name,
            "bank_code": issuer.bank_code,
            "card_type": card_type(issuer.card_type()),
        })),
        "network": network(card.network()),
        "expiry": card.expiry.map(|expiry| format!("{:02}/{}", expiry.month, expiry.year)),
        "warnings": warnings(card),
        "quality": card.quality,
        "confidence": card.confidence,
        "card_name": (!card.card_name.is_empty()).then_some(&card.card_name),
        "provider": card.provider,
    })
}

fn warnings(card: &RecognizeBankCardResponse) -> Vec<&'static str> {
    card.warnings()
        .map(|warning| match warning {
            ImageWarning::Unspecified => "unspecified",
            ImageWarning::Photocopy => "photocopy",
            ImageWarning::Reshoot => "reshoot",
            ImageWarning::BorderIncomplete => "border incomplete",
            ImageWarning::Glare => "glare",
            ImageWarning::Blurry => "blurry",
            ImageWarning::ExpiryInvalid => "expiry invalid",
            ImageWarning::LowConfidence => "low confidence",
        })
        .collect()
}

fn print_card(card: &RecognizeBankCardResponse) {
    println!("card number   {}", card.card_number);
    println!("masked        {}", card.masked_number);
    println!(
        "luhn check    {}",
        if card.luhn_valid {
            "passes"
        } else {
            "fails (some valid UnionPay cards do)"
        }
    );
    match &card.issuer {
        Some(issuer) => println!(
            "issuer        {} ({}), {}",
            issuer.bank_name,
            issuer.bank_code,
            card_type(issuer.card_type())
        ),
        None => println!("issuer        unknown"),
    }
    println!("network       {}", network(card.network()));
    if let Some(expiry) = card.expiry {
        println!("expiry        {:02}/{}", expiry.month, expiry.year);
    }
    if !card.card_name.is_empty() {
        println!("card name     {}", card.card_name);
    }
    if let Some(quality) = card.quality {
        println!("quality       {quality}/100");
    }
    if let Some(confidence) = card.confidence {
        println!("confidence    {confidence:.3}");
    }
    let warnings = warnings(card);
    if !warnings.is_empty() {
        println!("warnings      {}", warnings.join(", "));
    }
    println!("provider      {}", card.provider);
}

fn title_json(title: &ParseInvoiceTitleResponse) -> Value {
    json!({
        "title_type": title_type(title.title_type()),
        "title": title.title,
        "tax_number": title.tax_number,
        "tax_number_format": tax_format(title.tax_number_format()),
        "tax_number_valid": title.tax_number_valid,
        "address": title.address,
        "phone": title.phone,
        "bank_name": title.bank_name,
        "bank_account": title.bank_account,
        "provider": title.provider,
    })
}

fn print_title(title: &ParseInvoiceTitleResponse) {
    let check = match (title.tax_number_format(), title.tax_number_valid) {
        (TaxNumberFormat::Unspecified, _) => String::new(),
        (format, valid) => format!(
            " ({}, {})",
            tax_format(format),
            if valid { "valid" } else { "check fails" }
        ),
    };
    println!(
        "title         {} [{}]",
        title.title,
        title_type(title.title_type())
    );
    println!("tax number    {}{check}", title.tax_number);
    println!("address       {}", title.address);
    println!("phone         {}", title.phone);
    println!("bank          {} {}", title.bank_name, title.bank_account);
    println!("provider      {}", title.provider);
}

fn card_type(card_type: CardType) -> &'static str {
    match card_type {
        CardType::Unspecified => "unknown",
        CardType::Debit => "debit",
        CardType::Credit => "credit",
        CardType::SemiCredit => "semi-credit",
        CardType::Prepaid => "prepaid",
    }
}

fn network(network: CardNetwork) -> &'static str {
    match network {
        CardNetwork::Unspecified => "unknown",
        CardNetwork::Unionpay => "UnionPay",
        CardNetwork::Visa => "Visa",
        CardNetwork::Mastercard => "Mastercard",
        CardNetwork::Jcb => "JCB",
        CardNetwork::Amex => "American Express",
        CardNetwork::Discover => "Discover",
    }
}

fn title_type(title_type: TitleType) -> &'static str {
    match title_type {
        TitleType::Unspecified => "unspecified",
        TitleType::Organization => "organization",
        TitleType::Individual => "individual",
    }
}

fn tax_format(format: TaxNumberFormat) -> &'static str {
    match format {
        TaxNumberFormat::Unspecified => "unrecognised",
        TaxNumberFormat::UnifiedSocialCreditCode => "unified social credit code",
        TaxNumberFormat::Taxpayer15 => "15-character taxpayer number",
        TaxNumberFormat::Taxpayer17 => "17-character taxpayer number",
        TaxNumberFormat::Taxpayer18 => "18-character taxpayer number",
        TaxNumberFormat::Taxpayer20 => "20-character taxpayer number",
    }
}

/// The canonical name of a gRPC code, as every gRPC library prints it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
