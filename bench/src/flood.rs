//! The flood: how well-behaved callers fare while another client on the same address (a mesh
//! sidecar's, an ingress's) holds as many unfinished uploads as the gateway lets it. Each gateway
//! (this build, and an earlier one with `--flood-baseline`) runs with its default limits and two
//! API-key callers; the well-behaved calls are measured quiet, during a flood by one of those
//! callers, and during an anonymous flood, all from 127.0.0.1.

use std::{
    future::{Future, poll_fn},
    net::SocketAddr,
    path::Path,
    time::Duration,
};

use bytes::Bytes;
use ocrgate::api::pb::{
    ParseInvoiceTitleRequest, RecognizeBankCardRequest, ocr_service_client::OcrServiceClient,
    recognize_bank_card_request::Source,
};
use tokio::{net::TcpStream, task::JoinSet};
use tonic::{metadata::MetadataValue, service::Interceptor, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use vendor_sim::Simulator;

use crate::{Args, Error, Gateway, SCAN_TEXT, Stats, measure};

/// The flooding caller's API key and the well-behaved one's.
const FLOODER_KEY: &str = "flooder-key-0123456789";
const NEIGHBOUR_KEY: &str = "neighbour-key-0123456789";
/// Connections the flood opens, and unfinished uploads on each (the gateway allows 100 streams a
/// connection by default).
const FLOOD_CONNECTIONS: usize = 3;
const FLOOD_STREAMS: usize = 90;
/// What the flood's uploads declare, in turn: the largest image the gateway takes by default, and
/// smaller ones that fill what the large ones leave of a share.
const FLOOD_MESSAGES: [u32; 3] = [10 << 20, 1 << 20, 64 << 10];
/// A flood stream answered (refused, or reset by the body timeout) opens again after this long, so
/// the flood holds what it can without turning into a storm of refusals.
const FLOOD_PAUSE: Duration = Duration::from_millis(100);
/// The well-behaved card upload: about the size of a phone's card photo after compression.
const PHOTO_BYTES: usize = 200 * 1024;
/// Tasks sending each kind of well-behaved call at once.
const CONCURRENCY: usize = 2;

/// Who floods, in each measured condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    None,
    /// An API-key caller other than the measured one.
    Caller,
    /// Calls without a credential.
    Anonymous,
}

impl Flood {
    const ALL: [Self; 3] = [Self::None, Self::Caller, Self::Anonymous];

    fn label(self) -> &'static str {
        match self {
            Self::None => "quiet",
            Self::Caller => "flood by another caller",
            Self::Anonymous => "anonymous flood",
        }
    }
}

/// The well-behaved calls measured in each condition.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// A card photo from an API-key caller other than the flooding one.
    Card,
    /// A title from that caller.
    Title,
    /// A title without a credential.
    AnonymousTitle,
    /// The gRPC health check, as a probe sends it.
    Health,
}

impl Call {
    const ALL: [Self; 4] = [Self::Card, Self::Title, Self::AnonymousTitle, Self::Health];

    fn label(self) -> &'static str {
        match self {
            Self::Card => "card, own API key",
            Self::Title => "title, own API key",
            Self::AnonymousTitle => "title, anonymous",
            Self::Health => "health check",
        }
    }
}

struct Cell {
    gateway: String,
    flood: Flood,
    call: Call,
    stats: Stats,
}

/// Measures each gateway in each condition, and prints the table.
pub async fn measure_all(args: &Args, sim: &Simulator) -> Result<(), Error> {
    let mut gateways = vec![("this build".to_owned(), args.gateway.clone())];
    if let Some(baseline) = &args.flood_baseline {
        gateways.insert(0, (baseline.display().to_string(), baseline.clone()));
    }
    let photo = photo();
    let mut cells = Vec::new();
    for (name, binary) in &gateways {
        for flood in Flood::ALL {
            cells.extend(
                measure_one(args, sim, binary, flood, &photo)
                    .await?
                    .into_iter()
                    .map(|(call, stats)| Cell {
                        gateway: name.clone(),
                        flood,
                        call,
                        stats,
                    }),
            );
        }
    }
    print(&cells);
    Ok(())
}

/// A fresh gateway `binary`, flooded as `flood` says while each well-behaved call is measured.
async fn measure_one(
    args: &Args,
    sim: &Simulator,
    binary: &Path,
    flood: Flood,
    photo: &Bytes,
) -> Result<Vec<(Call, Stats)>, Error> {
    let sha256 = |key: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key));
    let gateway = Gateway::spawn_binary(
        args,
        sim,
        binary,
        vec![
            (
                "OCRGATE_CALLERS__FLOODER__API_KEY_SHA256".into(),
                sha256(FLOODER_KEY),
            ),
            (
                "OCRGATE_CALLERS__NEIGHBOUR__API_KEY_SHA256".into(),
                sha256(NEIGHBOUR_KEY),
            ),
            ("OCRGATE_AUTH__ANONYMOUS".into(), "true".into()),
            ("OCRGATE_CACHE__TTL".into(), "0s".into()),
        ],
    )
    .await?;
    let address: SocketAddr = gateway.address.parse()?;
    let channel = Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let neighbour = OcrServiceClient::with_interceptor(channel.clone(), Bearer(NEIGHBOUR_KEY))
        .max_encoding_message_size(16 << 20);
    let anonymous = OcrServiceClient::new(channel.clone());
    let health = HealthClient::new(channel);

    let mut flooding = JoinSet::new();
    let key = match flood {
        Flood::None => None,
        Flood::Caller => Some(FLOODER_KEY),
        Flood::Anonymous => Some(""),
    };
    if let Some(key) = key {
        for _ in 0..FLOOD_CONNECTIONS {
            let connection = h2_connection(address).await?;
            for stream in 0..FLOOD_STREAMS {
                let declared = FLOOD_MESSAGES[stream % FLOOD_MESSAGES.len()];
                flooding.spawn(hold_uploads(connection.clone(), address, key, declared));
            }
        }
    }

    let window = Duration::from_secs_f64(args.seconds);
    let mut results = Vec::new();
    for call in Call::ALL {
        let stats = match call {
            Call::Card => {
                let (client, photo) = (neighbour.clone(), photo.clone());
                timed(window, &gateway, move || {
                    let mut client = client.clone();
                    let request = RecognizeBankCardRequest {
                        source: Some(Source::Image(photo.clone())),
                        ..Default::default()
                    };
                    async move { client.recognize_bank_card(request).await.is_ok() }
                })
                .await
            }
            Call::Title => {
                let client = neighbour.clone();
                timed(window, &gateway, move || {
                    let mut client = client.clone();
                    async move { client.parse_invoice_title(title()).await.is_ok() }
                })
                .await
            }
            Call::AnonymousTitle => {
                let client = anonymous.clone();
                timed(window, &gateway, move || {
                    let mut client = client.clone();
                    async move { client.parse_invoice_title(title()).await.is_ok() }
                })
                .await
            }
            Call::Health => {
                let client = health.clone();
                timed(window, &gateway, move || {
                    let mut client = client.clone();
                    async move { client.check(HealthCheckRequest::default()).await.is_ok() }
                })
                .await
            }
        };
        results.push((call, stats));
    }
    flooding.abort_all();
    gateway.stop().await;
    Ok(results)
}

async fn timed<F, Fut>(window: Duration, gateway: &Gateway, call: F) -> Stats
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    measure(CONCURRENCY, window, Some(&gateway.process), call).await
}

fn title() -> ParseInvoiceTitleRequest {
    ParseInvoiceTitleRequest {
        scan_text: SCAN_TEXT.into(),
        ..Default::default()
    }
}

/// A PNG signature and header padded to `PHOTO_BYTES`: the simulator reads any image as its card.
fn photo() -> Bytes {
    let mut image = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    image.resize(PHOTO_BYTES, 7);
    image.into()
}

/// Sends `authorization: Bearer <key>` with every call.
#[derive(Clone)]
struct Bearer(&'static str);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let value = MetadataValue::try_from(format!("Bearer {}", self.0))
            .map_err(|_| tonic::Status::internal("an API key that is not a header value"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

async fn h2_connection(to: SocketAddr) -> Result<h2::client::SendRequest<Bytes>, Error> {
    let (client, connection) = h2::client::handshake(TcpStream::connect(to).await?).await?;
    tokio::spawn(async move {
        connection.await.ok();
    });
    Ok(client)
}

/// One flood stream, again and again: an upload that declares `declared` bytes, sends all but 100
/// of them as the gateway's flow control allows, and waits to be answered. `key` is the API key it
/// sends; empty sends none.
async fn hold_uploads(
    mut client: h2::client::SendRequest<Bytes>,
    to: SocketAddr,
    key: &str,
    declared: u32,
) {
    loop {
        let Ok(ready) = client.ready().await else {
            return;
        };
        client = ready;
        let mut request = http::Request::post(format!(
            "http://{to}/ocrgate.v1.OcrService/RecognizeBankCard"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
        if !key.is_empty() {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let Ok(request) = request.body(()) else {
            return;
        };
        let Ok((response, mut stream)) = client.send_request(request, false) else {
            return;
        };
        let mut prefix = vec![0];
        prefix.extend_from_slice(&declared.to_be_bytes());
        if stream.send_data(prefix.into(), false).is_ok() {
            send_zeros(&mut stream, declared as usize - 100).await;
        }
        // The stream stays open, its sending half alive, until it is answered.
        response.await.ok();
        drop(stream);
        tokio::time::sleep(FLOOD_PAUSE).await;
    }
}

/// Sends `len` zero bytes as the server's flow control allows, until the stream closes.
async fn send_zeros(stream: &mut h2::SendStream<Bytes>, mut len: usize) {
    const CHUNK: usize = 64 * 1024;
    let zeros = Bytes::from(vec![0; CHUNK]);
    while len > 0 {
        stream.reserve_capacity(len.min(CHUNK));
        match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(granted)) if granted > 0 => {
                let n = granted.min(len);
                if stream.send_data(zeros.slice(..n), false).is_err() {
                    return;
                }
                len -= n;
            }
            Some(Ok(_)) => {}
            _ => return,
        }
    }
}

fn print(cells: &[Cell]) {
    println!();
    println!(
        "flood: {FLOOD_CONNECTIONS} connections x {FLOOD_STREAMS} unfinished uploads of 10 MiB, \
         1 MiB and 64 KiB in turn from 127.0.0.1, the measured calls from the same address, \
         {CONCURRENCY} at a time each; default limits"
    );
    println!(
        "{:<34} {:<24} {:<19} | {:>7} {:>7} {:>9} {:>9}",
        "gateway", "condition", "call", "calls", "served", "p50 us", "p99 us"
    );
    for cell in cells {
        let served = cell.stats.requests - cell.stats.errors;
        println!(
            "{:<34} {:<24} {:<19} | {:>7} {:>6.1}% {:>9} {:>9}",
            cell.gateway,
            cell.flood.label(),
            cell.call.label(),
            cell.stats.requests,
            100.0 * served as f64 / cell.stats.requests.max(1) as f64,
            cell.stats.p50(),
            cell.stats.p99(),
        );
    }
    println!("(latency of every call measured, served or refused)");
}
