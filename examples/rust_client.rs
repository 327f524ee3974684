//! Calling ocrgate from another Rust service with the crate's typed client.
//!
//! ```sh
//! cargo run --example rust_client -- http://127.0.0.1:50051 card.jpg 'https://mp.weixin.qq.com/…'
//! cargo run --example rust_client -- http://127.0.0.1:50051 card.jpg qr-screenshot.png
//! ```
//!
//! The title comes from the QR code's text, or from a photo or screenshot of the code, which the
//! gateway decodes.

use std::time::Duration;

use ocrgate::client::OcrClient;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(image), Some(scan_text)) = (args.next(), args.next(), args.next())
    else {
        return Err("usage: rust_client ADDRESS IMAGE_FILE SCAN_TEXT_OR_QR_IMAGE_FILE".into());
    };
    let client = OcrClient::connect(address)
        .await?
        .with_timeout(Duration::from_secs(10));

    match client.recognize_bank_card(std::fs::read(image)?).await {
        Ok(card) => {
            println!("card {} ({})", card.masked_number, card.provider);
            // What the provider read beyond the number: each is unset when it gave none.
            if let Some(expiry) = card.expiry {
                println!("expires {:02}/{}", expiry.month, expiry.year);
            }
            let warnings: Vec<_> = card.warnings().map(|w| w.as_str_name()).collect();
            if !warnings.is_empty() {
                println!("warnings {}", warnings.join(", "));
            }
            if let Some(quality) = card.quality {
                println!("quality {quality}");
            }
        }
        // Branch on the stable reason, never on the message.
        Err(err)
            if err
                .reason
                .as_deref()
                .is_some_and(|r| r.ends_with("_NOT_FOUND")) =>
        {
            println!("no card in the image")
        }
        Err(err) => return Err(err.into()),
    }
    let title = if std::path::Path::new(&scan_text).is_file() {
        client
            .parse_invoice_title_image(std::fs::read(scan_text)?)
            .await?
    } else {
        client.parse_invoice_title(scan_text).await?
    };
    println!("title {} / tax number {}", title.title, title.tax_number);
    Ok(())
}
