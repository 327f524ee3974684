//! `ocrgate-passthrough`: the floor the gateway is measured against. The same API on the same
//! stack (a tonic server, a reqwest client to WeChat) with nothing else: no validation, callers,
//! limits, telemetry, retries or token cache; one token fetched at start. Whatever the gateway
//! spends beyond this process is the price of what it adds.
//!
//! It prints `listening <address>` on standard output once it accepts calls.

use std::{net::SocketAddr, sync::Arc};

use clap::Parser;
use ocrgate::api::pb::{
    ParseInvoiceTitleRequest, ParseInvoiceTitleResponse, RecognizeBankCardRequest,
    RecognizeBankCardResponse,
    ocr_service_server::{OcrService, OcrServiceServer},
    recognize_bank_card_request::Source,
};
use serde_json::{Value, json};
use tonic::{Request, Response, Status, transport::server::TcpIncoming};

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Where to accept gRPC calls.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The WeChat API (the simulator), ending in `/`.
    #[arg(long)]
    base_url: String,
    #[arg(long)]
    app_id: String,
    #[arg(long)]
    app_secret: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let reply: Value = http
        .post(format!("{}cgi-bin/stable_token", args.base_url))
        .json(&json!({"grant_type": "client_credential", "appid": args.app_id, "secret": args.app_secret}))
        .send()
        .await?
        .json()
        .await?;
    let token = reply["access_token"].as_str().ok_or("no access token")?;
    let passthrough = Passthrough {
        http,
        bank_card: format!("{}cv/ocr/bankcard?access_token={token}", args.base_url).into(),
        scan_title: format!(
            "{}card/invoice/scantitle?access_token={token}",
            args.base_url
        )
        .into(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(OcrServiceServer::new(passthrough))
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await?;
    Ok(())
}

struct Passthrough {
    http: reqwest::Client,
    bank_card: Arc<str>,
    scan_title: Arc<str>,
}

impl Passthrough {
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, Status> {
        let reply: Value = request
            .send()
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?
            .json()
            .await
            .map_err(|err| Status::internal(err.to_string()))?;
        if reply["errcode"] == 0 {
            Ok(reply)
        } else {
            Err(Status::unknown(reply["errmsg"].to_string()))
        }
    }
}

fn text(reply: &Value, field: &str) -> String {
    reply[field].as_str().unwrap_or_default().to_owned()
}

#[tonic::async_trait]
impl OcrService for Passthrough {
    async fn recognize_bank_card(
        &self,
        request: Request<RecognizeBankCardRequest>,
    ) -> Result<Response<RecognizeBankCardResponse>, Status> {
        let Some(Source::Image(image)) = request.into_inner().source else {
            return Err(Status::invalid_argument("only images"));
        };
        let length = image.len() as u64;
        let part =
            reqwest::multipart::Part::stream_with_length(image, length).file_name("image.jpg");
        let form = reqwest::multipart::Form::new().part("img", part);
        let reply = self
            .call(self.http.post(&*self.bank_card).multipart(form))
            .await?;
        Ok(Response::new(RecognizeBankCardResponse {
            card_number: text(&reply, "number"),
            provider: "wechat".into(),
            ..Default::default()
        }))
    }

    async fn parse_invoice_title(
        &self,
        request: Request<ParseInvoiceTitleRequest>,
    ) -> Result<Response<ParseInvoiceTitleResponse>, Status> {
        let scan_text = request.into_inner().scan_text;
        let reply = self
            .call(
                self.http
                    .post(&*self.scan_title)
                    .json(&json!({ "scan_text": scan_text })),
            )
            .await?;
        Ok(Response::new(ParseInvoiceTitleResponse {
            title: text(&reply, "title"),
            phone: text(&reply, "phone"),
            tax_number: text(&reply, "tax_no"),
            address: text(&reply, "addr"),
            bank_name: text(&reply, "bank_type"),
            bank_account: text(&reply, "bank_no"),
            provider: "wechat".into(),
            ..Default::default()
        }))
    }
}
