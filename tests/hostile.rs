//! Clients and upstreams that mean harm: every bound the gateway keeps, attacked, with what a
//! well-behaved caller still gets while the attack runs. Memory is read from the gateway's own
//! process (`/proc/PID/status`), so only its bytes count.

mod common;

use std::{
    future::poll_fn,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use bytes::Bytes;
use common::{
    APP_ID, APP_SECRET, Gateway, GatewayProcess, assert_reason, error_info, key_hash, png, sample,
    upload,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream},
};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use vendor_sim::{Endpoint, Fault, SimConfig, Simulator};

const NUMBER: &str = "6222020200112345678";
const BANK_CARD: &str = "/ocrgate.v1.OcrService/RecognizeBankCard";
/// Where the attacker connects from: a loopback address of its own, so it is another client.
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// The bound the issue sets for the gateway under the unfinished-upload attack, defaults on.
const ATTACK_RSS_LIMIT_MIB: u64 = 400;

/// A kind of memory figure of a process: `VmRSS` (now) or `VmHWM` (the peak so far), in MiB.
fn memory_mib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    kib / 1024
}

/// An HTTP/2 connection from `from`, driven in the background.
async fn h2_connection(to: SocketAddr, from: IpAddr) -> h2::client::SendRequest<Bytes> {
    h2_connection_and_driver(to, from).await.0
}

/// An HTTP/2 connection, and the task driving it, which ends when the connection closes.
async fn h2_connection_and_driver(
    to: SocketAddr,
    from: IpAddr,
) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    let tcp = socket.connect(to).await.expect("connects");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let driver = tokio::spawn(async move {
        connection.await.ok();
    });
    (client, driver)
}

async fn metrics_page(admin: SocketAddr) -> String {
    reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("admin port answers")
        .text()
        .await
        .expect("page")
}

fn grpc_request(to: SocketAddr, path: &str, content_type: &str) -> http::Request<()> {
    http::Request::post(format!("http://{to}{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(())
        .expect("request")
}

/// The 5-byte gRPC prefix of an uncompressed message of `length` bytes.
fn message_prefix(length: u32) -> Bytes {
    let mut prefix = vec![0];
    prefix.extend_from_slice(&length.to_be_bytes());
    prefix.into()
}

/// Sends `len` zero bytes as the server's flow control allows; false once the stream is closed.
async fn send_zeros(stream: &mut h2::SendStream<Bytes>, mut len: usize) -> bool {
    const CHUNK: usize = 64 * 1024;
    let zeros = Bytes::from(vec![0; CHUNK]);
    while len > 0 {
        stream.reserve_capacity(len.min(CHUNK));
        match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(0)) => {}
            Some(Ok(granted)) => {
                let n = granted.min(len);
                if stream.send_data(zeros.slice(..n), false).is_err() {
                    return false;
                }
                len -= n;
            }
            _ => return false,
        }
    }
    true
}

/// The gRPC status of a raw HTTP/2 response: from its headers (trailers-only) or its trailers.
async fn grpc_status(response: h2::client::ResponseFuture) -> Status {
    let response = response.await.expect("a response");
    assert_eq!(response.status(), 200, "gRPC answers HTTP 200");
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body");
        body.flow_control().release_capacity(chunk.len()).ok();
    }
    let trailers = body.trailers().await.expect("trailers").expect("trailers");
    Status::from_header_map(&trailers).expect("grpc-status in trailers")
}

/// A simulator that knows the test app.
async fn simulator() -> Simulator {
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    sim.add_app(APP_ID, APP_SECRET);
    sim
}

async fn simulator_with_card() -> (Simulator, Vec<u8>) {
    let sim = simulator().await;
    let image = png(7);
    sim.add_card_image(image.clone(), NUMBER);
    (sim, image)
}

/// Opens a stream declaring `declared` bytes, sends all of them but 100, says so on `sent`,
/// and returns the status the stream is finally answered with.
async fn unfinished_upload(
    client: h2::client::SendRequest<Bytes>,
    to: SocketAddr,
    declared: u32,
    sent: tokio::sync::mpsc::Sender<()>,
) -> Status {
    unfinished_upload_with(client, to, declared, &[], sent).await
}

/// [`unfinished_upload`] with these request headers too.
async fn unfinished_upload_with(
    mut client: h2::client::SendRequest<Bytes>,
    to: SocketAddr,
    declared: u32,
    headers: &[(&'static str, String)],
    sent: tokio::sync::mpsc::Sender<()>,
) -> Status {
    client = client.ready().await.expect("a stream may open");
    let mut request = grpc_request(to, BANK_CARD, "application/grpc");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().expect("header value"));
    }
    let (response, mut stream) = client.send_request(request, false).expect("stream opens");
    if stream.send_data(message_prefix(declared), false).is_ok() {
        send_zeros(&mut stream, declared as usize - 100).await;
    }
    sent.send(()).await.expect("test waits");
    // The stream stays open (its sending half alive) until it is answered.
    let status = grpc_status(response).await;
    drop(stream);
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_uploads_stay_within_the_memory_budget_while_a_good_caller_is_served() {
    let (sim, image) = simulator_with_card().await;
    // Defaults, but for a short body timeout so the held streams end within the test.
    let gateway = GatewayProcess::start(&sim, &[("OCRGATE_LIMITS__BODY_TIMEOUT", "5s")]).await;
    let pid = gateway.child.id().expect("running");
    let to = gateway.address;

    // Five connections of 90 streams each (the server allows 100 per connection), every stream
    // declaring a message of the largest image the API accepts (10 MiB) and never finishing it;
    // two a connection declare 12 MiB.
    const CONNECTIONS: usize = 5;
    const STREAMS: usize = CONNECTIONS * 90;
    let (sent, mut all_sent) = tokio::sync::mpsc::channel(STREAMS);
    let mut attack = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = h2_connection(to, ATTACKER).await;
        for stream in 0..90 {
            let declared = if stream % 50 == 0 { 12 << 20 } else { 10 << 20 };
            attack.push(tokio::spawn(unfinished_upload(
                client.clone(),
                to,
                declared,
                sent.clone(),
            )));
        }
    }
    for _ in 0..STREAMS {
        all_sent.recv().await.expect("every stream sends");
    }

    // At the attack's height, a caller from another address is served.
    let answer = gateway
        .client()
        .await
        .recognize_bank_card(upload(image))
        .await
        .expect("a well-behaved caller is served during the attack")
        .into_inner();
    assert_eq!(answer.card_number, NUMBER);
    let peak = memory_mib(pid, "VmHWM");
    eprintln!("peak RSS under attack: {peak} MiB");
    assert!(
        peak < ATTACK_RSS_LIMIT_MIB,
        "peak RSS {peak} MiB under attack"
    );

    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for stream in attack {
        let status = stream.await.expect("attack task");
        let (reason, _) = error_info(&status);
        let code = match reason.as_str() {
            "MESSAGE_TOO_LARGE" | "REQUEST_MEMORY_EXHAUSTED" => Code::ResourceExhausted,
            _ => Code::DeadlineExceeded,
        };
        assert_eq!(status.code(), code, "{status:?}");
        if reason == "REQUEST_MEMORY_EXHAUSTED" {
            assert!(status.get_details_retry_info().is_some(), "{status:?}");
        }
        *reasons.entry(reason).or_default() += 1;
    }
    // Every 12 MiB message is refused; the client's 32 MiB share holds 3 uploads of 10 MiB, whose
    // bodies are reset when they stop arriving; every other stream is refused at once.
    let count = |reason: &str| reasons.get(reason).copied().unwrap_or(0);
    let too_large = 2 * CONNECTIONS;
    assert_eq!(count("MESSAGE_TOO_LARGE"), too_large, "{reasons:?}");
    assert_eq!(count("REQUEST_BODY_TIMEOUT"), 3, "{reasons:?}");
    assert_eq!(
        count("REQUEST_MEMORY_EXHAUSTED"),
        STREAMS - too_large - 3,
        "{reasons:?}"
    );

    let metrics = metrics_page(gateway.admin_address).await;
    assert_eq!(
        sample(
            &metrics,
            "ocrgate_requests_refused_total",
            &[("rule", "request_memory_per_client")]
        ),
        Some((STREAMS - too_large - 3) as f64)
    );
}

#[tokio::test]
async fn invented_method_names_do_not_grow_the_metrics() {
    let gateway = Gateway::start().await;
    let client = h2_connection(gateway.address, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let calls = (0..2000).map(|i| {
        let client = client.clone();
        let to = gateway.address;
        async move {
            let mut client = client.ready().await.expect("ready");
            let path = format!("/ocrgate.v1.OcrService/X{i}");
            let (response, mut body) = client
                .send_request(grpc_request(to, &path, "application/grpc"), false)
                .expect("sent");
            body.send_data(message_prefix(0), true).expect("body");
            grpc_status(response).await.code()
        }
    });
    let codes = futures_util::future::join_all(calls).await;
    assert!(codes.iter().all(|code| *code == Code::Unimplemented));

    let (_, page) = gateway.admin_get("/metrics").await;
    assert!(!page.contains("X1"), "an invented name reached /metrics");
    assert_eq!(
        sample(
            &page,
            "rpc_server_call_duration_seconds_count",
            &[("rpc_method", "other"), ("rpc_grpc_status_code", "12")]
        ),
        Some(2000.0)
    );
    let series = page.lines().filter(|line| !line.starts_with('#')).count();
    assert!(series < 100, "{series} series after 2,000 invented methods");
}

#[tokio::test]
async fn an_endless_upstream_reply_is_cut_at_the_cap_and_never_buffered() {
    let sim = simulator().await;
    let gateway = GatewayProcess::start(&sim, &[]).await;
    let pid = gateway.child.id().expect("running");
    let before = memory_mib(pid, "VmHWM");
    sim.inject(Endpoint::ScanTitle, Fault::OversizedBody(100 << 20), 1);

    let status = gateway
        .client()
        .await
        .parse_invoice_title(ocrgate::api::pb::ParseInvoiceTitleRequest {
            scan_text: "https://example.com/title".into(),
            ..Default::default()
        })
        .await
        .expect_err("a 100 MB reply is refused");
    assert_reason(&status, Code::Unknown, "WECHAT_UNKNOWN");
    assert!(status.message().contains("longer than"), "{status:?}");
    let grown = memory_mib(pid, "VmHWM").saturating_sub(before);
    assert!(grown < 32, "reading the reply grew the peak by {grown} MiB");
}

#[tokio::test]
async fn a_card_number_in_an_upstream_reply_never_leaks_in_full() {
    let sim = simulator().await;
    let gateway = GatewayProcess::start(&sim, &[("OCRGATE_LOG_LEVEL", "debug")]).await;
    let mut client = gateway.client().await;

    // WeChat sends the number as a JSON integer: every digit kept.
    sim.inject(
        Endpoint::BankCard,
        Fault::Body(format!(
            r#"{{"errcode":0,"errmsg":"ok","number":{NUMBER}}}"#
        )),
        1,
    );
    let answer = client
        .recognize_bank_card(upload(png(1)))
        .await
        .expect("read")
        .into_inner();
    assert_eq!(answer.card_number, NUMBER);

    // A reply of an unexpected shape around the number.
    sim.inject(
        Endpoint::BankCard,
        Fault::Body(format!(r#"{{"errcode":0,"number":[{NUMBER}]}}"#)),
        1,
    );
    let status = client
        .recognize_bank_card(upload(png(2)))
        .await
        .expect_err("not a number");
    assert_reason(&status, Code::Unknown, "WECHAT_UNKNOWN");
    assert!(!status.message().contains(NUMBER), "{status:?}");

    // The vendor's message quotes the number.
    sim.inject(
        Endpoint::BankCard,
        Fault::errcode(101000, &format!("card {NUMBER} could not be read")),
        1,
    );
    let status = client
        .recognize_bank_card(upload(png(3)))
        .await
        .expect_err("vendor error");
    assert!(!status.message().contains(NUMBER), "{status:?}");
    assert!(
        status.message().contains("622202*********5678"),
        "{status:?}"
    );

    let logs = gateway.stop().await;
    assert!(logs.iter().any(|line| line.contains("622202*********5678")));
    // A failed call's audit line names the account it would have billed.
    assert!(
        logs.iter().any(|line| line.contains("ocrgate::audit")
            && line.contains("call failed")
            && line.contains(r#""account":"default""#)),
        "no audit line for a failed call with its account"
    );
    let leaked: Vec<_> = logs.iter().filter(|line| line.contains(NUMBER)).collect();
    assert!(leaked.is_empty(), "full card number logged: {leaked:?}");
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once() {
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.limits.max_connections = 8;
        config.limits.handshake_timeout = Duration::from_secs(60);
    })
    .await;
    // The gateway's own test client holds one connection; seven more fit.
    let mut open = Vec::new();
    for _ in 0..10 {
        open.push(TcpStream::connect(gateway.address).await.expect("connects"));
    }
    for tcp in &mut open[7..] {
        let mut buf = [0; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("closed without waiting");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    let (_, page) = gateway.admin_get("/metrics").await;
    assert_eq!(
        sample(
            &page,
            "ocrgate_connections_closed_total",
            &[("limit", "max_connections")]
        ),
        Some(3.0)
    );
    assert_eq!(sample(&page, "ocrgate_connections_open", &[]), Some(8.0));
    drop(open);
}

#[tokio::test]
async fn connections_without_a_handshake_are_closed_after_the_handshake_timeout() {
    let gateway = Gateway::start_with(SimConfig::default(), |config| {
        config.limits.handshake_timeout = Duration::from_millis(300);
    })
    .await;
    let silent = TcpStream::connect(gateway.address).await.expect("connects");
    let mut preface_only = TcpStream::connect(gateway.address).await.expect("connects");
    preface_only
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    for mut tcp in [silent, preface_only] {
        let mut buf = Vec::new();
        // The server's own SETTINGS may come first; then the connection ends (an orderly close
        // or a reset, either way closed).
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf))
            .await
            .expect("closed by the server")
            .ok();
    }
    let (_, page) = gateway.admin_get("/metrics").await;
    assert_eq!(
        sample(
            &page,
            "ocrgate_connections_closed_total",
            &[("limit", "handshake_timeout")]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn idle_connections_close_but_one_with_a_call_open_stays() {
    let (sim, image) = simulator_with_card().await;
    let mut config = common::config_for(&sim);
    config.limits.idle_timeout = Duration::from_millis(500);
    let gateway = Gateway::serve(sim, config).await;
    gateway.sim.inject(Endpoint::BankCard, Fault::Hold, 1);

    // A call held upstream keeps its connection busy.
    let busy = {
        let mut client =
            ocrgate::api::pb::ocr_service_client::OcrServiceClient::new(gateway.channel());
        tokio::spawn(async move { client.recognize_bank_card(upload(image)).await })
    };
    gateway.sim.wait_for_requests(Endpoint::BankCard, 1).await;
    // A connection opened after it, with no call, is closed once the idle timeout passes...
    let (_idle, driver) =
        h2_connection_and_driver(gateway.address, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("the idle connection is closed")
        .expect("driver");
    // ...while the busy one, idle as long by then had it no call, still answers.
    gateway.sim.release_held(1);
    let answer = busy.await.expect("task").expect("answered").into_inner();
    assert_eq!(answer.card_number, NUMBER);
    let (_, page) = gateway.admin_get("/metrics").await;
    assert!(
        sample(
            &page,
            "ocrgate_connections_closed_total",
            &[("limit", "idle_timeout")]
        )
        .is_some_and(|closed| closed >= 1.0)
    );
}

#[tokio::test]
async fn an_oversized_message_is_resource_exhausted_with_error_info() {
    let gateway = Gateway::start().await;
    let status = gateway
        .recognize(upload(vec![0; 11 << 20]))
        .await
        .expect_err("over the limit");
    assert_reason(&status, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");
    let (_, metadata) = error_info(&status);
    assert_eq!(
        metadata.get("limit_bytes").map(String::as_str),
        Some(
            ocrgate::limits::LimitsConfig::default()
                .max_message_bytes()
                .to_string()
                .as_str()
        )
    );
}

#[tokio::test]
async fn empty_and_cut_bodies_are_the_clients_mistake() {
    let gateway = Gateway::start().await;
    let client = h2_connection(gateway.address, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    for body in [Bytes::new(), Bytes::from_static(&[0, 0, 0]), {
        let mut cut = message_prefix(10).to_vec();
        cut.extend_from_slice(b"abc");
        Bytes::from(cut)
    }] {
        let mut client = client.clone().ready().await.expect("ready");
        let (response, mut stream) = client
            .send_request(
                grpc_request(gateway.address, BANK_CARD, "application/grpc"),
                false,
            )
            .expect("sent");
        stream.send_data(body, true).expect("body");
        let status = grpc_status(response).await;
        assert_reason(&status, Code::InvalidArgument, "MALFORMED_REQUEST");
    }
}

#[tokio::test]
async fn a_content_type_that_is_not_grpc_is_refused_with_415() {
    let gateway = Gateway::start().await;
    let mut client = h2_connection(gateway.address, IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .ready()
        .await
        .expect("ready");
    let (response, mut stream) = client
        .send_request(
            grpc_request(gateway.address, BANK_CARD, "application/json"),
            false,
        )
        .expect("sent");
    stream
        .send_data(
            Bytes::from_static(b"{\"image_url\":\"https://example.com\"}"),
            true,
        )
        .expect("body");
    let response = response.await.expect("response");
    assert_eq!(response.status(), 415);
    assert_eq!(gateway.sim.count(Endpoint::BankCard), 0);
}

#[tokio::test]
async fn a_call_without_a_deadline_ends_at_the_gateways_own() {
    let (sim, image) = simulator_with_card().await;
    let mut config = common::config_for(&sim);
    config.limits.max_call_duration = Duration::from_millis(500);
    let gateway = Gateway::serve(sim, config).await;
    gateway.sim.inject(Endpoint::BankCard, Fault::Hold, 1);

    // The hyper client sets no deadline of its own, and the request carries none.
    let status = gateway
        .client_without_local_deadline()
        .recognize_bank_card(upload(image))
        .await
        .expect_err("the upstream never answers");
    assert_reason(&status, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    gateway.sim.release_held(1);
}

/// A gateway whose bank cards are read by the local provider, one image at a time.
async fn local_gateway(models: &std::path::Path) -> Gateway {
    Gateway::start_with(SimConfig::default(), |config| {
        config.routing.bank_card = common::route(&["local"]);
        common::with_local_models(config, models);
        config.providers.set("local.concurrency", 1);
    })
    .await
}

/// A JPEG of 16 cards in a 4×4 grid: a hundred lines of text, most of them digits.
fn dense_image() -> Vec<u8> {
    let cards: Vec<image::RgbImage> = common::ordinary_cards(200, 16)
        .iter()
        .map(|card| {
            image::load_from_memory(&card.jpeg)
                .expect("card")
                .into_rgb8()
        })
        .collect();
    let (width, height) = cards[0].dimensions();
    let mut grid = image::RgbImage::new(width * 4, height * 4);
    for (i, card) in cards.iter().enumerate() {
        let card =
            image::imageops::resize(card, width, height, image::imageops::FilterType::Triangle);
        image::imageops::replace(
            &mut grid,
            &card,
            i64::from(width * (i as u32 % 4)),
            i64::from(height * (i as u32 / 4)),
        );
    }
    let mut jpeg = std::io::Cursor::new(Vec::new());
    grid.write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .expect("encodes");
    jpeg.into_inner()
}

fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

#[tokio::test]
async fn an_expensive_image_stops_at_the_callers_deadline_and_frees_its_slot() {
    let Some(models) = common::local_models() else {
        return;
    };
    let gateway = local_gateway(&models).await;
    // 16 cards of text: detection alone takes longer than the hostile deadline.
    let dense = dense_image();
    let card = common::ordinary_cards(100, 1).remove(0);
    let mut hostile = gateway.client_without_local_deadline();
    let mut client = gateway.client.clone();
    for round in 0..3 {
        let status = hostile
            .recognize_bank_card(with_timeout(
                upload(dense.clone()),
                Duration::from_millis(100),
            ))
            .await
            .expect_err("too short a deadline");
        assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
        // The one engine slot is free again...
        let answer = client
            .recognize_bank_card(with_timeout(
                upload(card.jpeg.clone()),
                Duration::from_secs(10),
            ))
            .await
            .expect("the slot was freed")
            .into_inner();
        assert_eq!(answer.card_number, card.number);
        // ...because the dense read stopped (counted before its slot is released), not because
        // it ran to its end.
        let (_, page) = gateway.admin_get("/metrics").await;
        assert_eq!(
            sample(&page, "ocrgate_local_reads_stopped_total", &[]),
            Some(f64::from(round + 1))
        );
    }
}

#[tokio::test]
async fn a_huge_picture_in_a_small_file_is_refused_before_it_is_decoded() {
    let Some(models) = common::local_models() else {
        return;
    };
    let sim = simulator().await;
    let models = models.display().to_string();
    let gateway = GatewayProcess::start(
        &sim,
        &[
            ("OCRGATE_ROUTING__BANK_CARD", r#"["local"]"#),
            ("OCRGATE_LOCAL__MODELS_DIR", &models),
            ("OCRGATE_LOCAL__CONCURRENCY", "1"),
            // This test weighs memory, not time: a debug build reading 16 megapixels while the
            // other tests load both cores may take longer than the default 15 s.
            ("OCRGATE_LIMITS__MAX_CALL_DURATION", "120s"),
        ],
    )
    .await;
    let pid = gateway.child.id().expect("running");

    // Both pictures are made before connecting: encoding them blocks this test's one thread,
    // which would leave the connection's keepalive PINGs unanswered.
    // 8000×5000 of one colour: 40 megapixels in a file of about 150 KB.
    let mut huge = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(8000, 5000, image::Rgb([200, 200, 200]))
        .write_to(&mut huge, image::ImageFormat::Png)
        .expect("encodes");
    let huge = huge.into_inner();
    assert!(huge.len() < 2 << 20);
    // The largest picture read, with an alpha channel: its decoding is what one read may cost.
    let mut largest = std::io::Cursor::new(Vec::new());
    image::RgbaImage::from_pixel(4000, 4000, image::Rgba([90, 120, 200, 255]))
        .write_to(&mut largest, image::ImageFormat::Png)
        .expect("encodes");
    let mut client = gateway.client().await;
    let before = memory_mib(pid, "VmHWM");
    let status = client
        .recognize_bank_card(upload(huge))
        .await
        .expect_err("too many pixels");
    assert_reason(&status, Code::InvalidArgument, "LOCAL_INVALID_INPUT");
    assert!(status.message().contains("megapixels"), "{status:?}");
    let grown = memory_mib(pid, "VmHWM").saturating_sub(before);
    assert!(grown < 16, "refusing it grew the peak by {grown} MiB");

    // The largest picture it reads: its decoding is what one read may cost.
    let status = client
        .recognize_bank_card(upload(largest.into_inner()))
        .await
        .expect_err("no card in it");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let peak = memory_mib(pid, "VmHWM");
    eprintln!("peak RSS reading a 16-megapixel RGBA image: {peak} MiB (before: {before} MiB)");
    assert!(peak < LOCAL_READ_RSS_LIMIT_MIB, "peak RSS {peak} MiB");
}

/// The stated peak of a gateway reading the largest image it accepts with one engine slot.
const LOCAL_READ_RSS_LIMIT_MIB: u64 = 320;

/// The largest image these tests' gateways take, and the share that holds exactly two of the
/// largest messages (the image, 16 KiB of other fields and the 5-byte prefix): one connection may
/// hold one of them, so two connections fill a share to the byte.
const SMALL_MAX_IMAGE: &str = "4 MiB";
const LARGEST_MESSAGE: u32 = (4 << 20) + 16 * 1024;
const SHARE: &str = "8421386 B";

/// A gateway process whose shares hold two of the largest messages, with `env` too.
async fn gateway_with_small_shares(sim: &Simulator, env: &[(&str, &str)]) -> GatewayProcess {
    let mut all = vec![
        ("OCRGATE_LIMITS__BODY_TIMEOUT", "10s"),
        ("OCRGATE_LIMITS__MAX_IMAGE_BYTES", SMALL_MAX_IMAGE),
        ("OCRGATE_LIMITS__REQUEST_MEMORY_PER_CLIENT", SHARE),
    ];
    all.extend_from_slice(env);
    GatewayProcess::start(sim, &all).await
}

/// How many unfinished uploads of the largest message fill a share (`SHARE`).
const FLOOD_UPLOADS: usize = 2;

/// One share held full: `FLOOD_UPLOADS` connections from `from`, each with one upload of the
/// largest message left unfinished, sent with `headers`.
struct Flood {
    to: SocketAddr,
    from: IpAddr,
    headers: Vec<(&'static str, String)>,
    /// Each ends with the status its stream is answered with (the body timeout).
    uploads: Vec<tokio::task::JoinHandle<Status>>,
    /// How many uploads were refused and sent again (`refill`).
    resent: usize,
}

impl Flood {
    /// Fills the share; returns once both uploads are sent.
    async fn fill(to: SocketAddr, from: IpAddr, headers: &[(&'static str, String)]) -> Self {
        let mut flood = Self {
            to,
            from,
            headers: headers.to_vec(),
            uploads: Vec::new(),
            resent: 0,
        };
        for _ in 0..FLOOD_UPLOADS {
            flood.upload().await;
        }
        flood
    }

    /// One more unfinished upload, once it is sent.
    async fn upload(&mut self) {
        let (sent, mut all_sent) = tokio::sync::mpsc::channel(1);
        let client = h2_connection(self.to, self.from).await;
        let (to, headers) = (self.to, self.headers.clone());
        self.uploads.push(tokio::spawn(async move {
            unfinished_upload_with(client, to, LARGEST_MESSAGE, &headers, sent).await
        }));
        all_sent.recv().await.expect("the upload sends");
    }

    /// Sent is not yet read: when the gateway reads another call's message length first, that
    /// call takes part of the share, and a flood upload whose length comes after it is refused.
    /// Such an upload is sent again, so the share is full once more.
    async fn refill(&mut self) {
        let mut held = Vec::new();
        for upload in std::mem::take(&mut self.uploads) {
            if upload.is_finished() {
                let status = upload.await.expect("flood task");
                assert_reason(&status, Code::ResourceExhausted, "REQUEST_MEMORY_EXHAUSTED");
            } else {
                held.push(upload);
            }
        }
        let refused = FLOOD_UPLOADS - held.len();
        self.uploads = held;
        self.resent += refused;
        for _ in 0..refused {
            self.upload().await;
        }
    }

    /// Waits for each upload's end, which must be the body timeout.
    async fn body_timed_out(self) {
        for upload in self.uploads {
            let status = upload.await.expect("flood task");
            assert_reason(&status, Code::DeadlineExceeded, "REQUEST_BODY_TIMEOUT");
        }
    }
}

/// A photo of about `kib` KiB (noise does not compress).
fn photo_of(kib: usize) -> Vec<u8> {
    let side = ((kib * 1024 / 3) as f64).sqrt() as u32;
    let mut seed = 7u32;
    let image = image::RgbImage::from_fn(side, side, |_, _| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let [a, b, c, _] = seed.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encoded");
    png.into_inner()
}

/// A simulator that knows a 200 KB card photo, and the invoice title behind the scan `scan`.
async fn simulator_with_photo_and_title() -> (Simulator, Vec<u8>) {
    let sim = simulator().await;
    let photo = photo_of(200);
    sim.add_card_image(photo.clone(), NUMBER);
    sim.add_invoice_title(
        "scan",
        serde_json::json!({"title_type": 0, "title": "ACME"}),
    );
    (sim, photo)
}

/// Uploads `photo` until the gateway refuses it, and the refusal; fails the test, saying `why`
/// it should be refused, after 100 uploads served. The flood's bytes are sent before this is
/// called, but the gateway takes a share as it reads a message's length, so a first upload may
/// still find room, and a flood upload be refused instead: it is sent again (`Flood::refill`).
async fn refused_upload(
    gateway: &GatewayProcess,
    photo: &[u8],
    metadata: &[(&'static str, &str)],
    why: &str,
    flood: &mut Flood,
) -> Status {
    for _ in 0..100 {
        if let Err(status) = upload_with(gateway, photo, metadata).await {
            return status;
        }
        flood.refill().await;
    }
    panic!("never refused, though {why}");
}

/// A card upload of `photo` over gRPC from the loopback, with `metadata`.
async fn upload_with(
    gateway: &GatewayProcess,
    photo: &[u8],
    metadata: &[(&'static str, &str)],
) -> Result<String, Status> {
    let mut request = tonic::Request::new(upload(photo.to_vec()));
    for (name, value) in metadata {
        request
            .metadata_mut()
            .insert(*name, value.parse().expect("metadata value"));
    }
    let reply = gateway.client().await.recognize_bank_card(request).await?;
    Ok(reply.into_inner().card_number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_behind_one_address_each_keep_their_share() {
    let (sim, photo) = simulator_with_photo_and_title().await;
    let (flooder, neighbour) = ("flooder-key-0123456789", "neighbour-key-0123456789");
    let (flooder_hash, neighbour_hash) = (key_hash(flooder), key_hash(neighbour));
    let gateway = gateway_with_small_shares(
        &sim,
        &[
            ("OCRGATE_CALLERS__FLOODER__API_KEY_SHA256", &flooder_hash),
            (
                "OCRGATE_CALLERS__NEIGHBOUR__API_KEY_SHA256",
                &neighbour_hash,
            ),
        ],
    )
    .await;
    let pid = gateway.child.id().expect("running");
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let bearer = |key: &str| format!("Bearer {key}");

    // One caller holds its whole share, from the address every caller comes from (a sidecar's).
    let mut flood = Flood::fill(
        gateway.address,
        loopback,
        &[("authorization", bearer(flooder))],
    )
    .await;
    let refused = refused_upload(
        &gateway,
        &photo,
        &[("authorization", &bearer(flooder))],
        "the flooder's share is full",
        &mut flood,
    )
    .await;
    assert_reason(
        &refused,
        Code::ResourceExhausted,
        "REQUEST_MEMORY_EXHAUSTED",
    );

    // The other caller's 200 KB photo and its title are served meanwhile.
    let number = upload_with(&gateway, &photo, &[("authorization", &bearer(neighbour))])
        .await
        .expect("the neighbour's share is its own");
    assert_eq!(number, NUMBER);
    let mut title = tonic::Request::new(ocrgate::api::pb::ParseInvoiceTitleRequest {
        scan_text: "scan".into(),
        ..Default::default()
    });
    title.metadata_mut().insert(
        "authorization",
        bearer(neighbour).parse().expect("metadata"),
    );
    gateway
        .client()
        .await
        .parse_invoice_title(title)
        .await
        .expect("the neighbour's title is served");
    let peak = memory_mib(pid, "VmHWM");
    assert!(peak < ATTACK_RSS_LIMIT_MIB, "peak RSS {peak} MiB");

    // The refusal above, and one for each flood upload refused and sent again.
    let metrics = metrics_page(gateway.admin_address).await;
    assert_eq!(
        sample(
            &metrics,
            "ocrgate_requests_refused_total",
            &[
                ("rule", "request_memory_per_caller"),
                ("ocrgate_caller", "flooder")
            ]
        ),
        Some(1.0 + flood.resent as f64),
        "{metrics}"
    );
    flood.body_timed_out().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_from_one_address_leaves_its_titles_and_health_checks_served() {
    let (sim, photo) = simulator_with_photo_and_title().await;
    let gateway = gateway_with_small_shares(&sim, &[]).await;
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);

    let mut flood = Flood::fill(gateway.address, loopback, &[]).await;
    let refused = refused_upload(
        &gateway,
        &photo,
        &[],
        "the address's share is full",
        &mut flood,
    )
    .await;
    assert_reason(
        &refused,
        Code::ResourceExhausted,
        "REQUEST_MEMORY_EXHAUSTED",
    );

    // Small calls from the same address come from an allowance uploads cannot take.
    let title = gateway
        .client()
        .await
        .parse_invoice_title(ocrgate::api::pb::ParseInvoiceTitleRequest {
            scan_text: "scan".into(),
            ..Default::default()
        })
        .await
        .expect("a title is served during the flood")
        .into_inner();
    assert_eq!(title.title, "ACME");
    let health = tonic_health::pb::health_client::HealthClient::new(gateway.channel())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("the health check is answered during the flood")
        .into_inner();
    assert_eq!(
        health.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    flood.body_timed_out().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_behind_a_trusted_proxy_get_their_own_shares_and_a_forged_header_changes_nothing() {
    let sim = simulator().await;
    let photo = photo_of(200);
    sim.add_card_image(photo.clone(), NUMBER);
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let forwarded = |client: &str| vec![("x-forwarded-for", client.to_owned())];

    // The loopback is the proxy: what it forwards is believed.
    let behind_proxy = gateway_with_small_shares(
        &sim,
        &[("OCRGATE_LIMITS__TRUSTED_PROXIES", r#"["127.0.0.0/8"]"#)],
    )
    .await;
    let mut flood = Flood::fill(behind_proxy.address, loopback, &forwarded("203.0.113.1")).await;
    let same_client = refused_upload(
        &behind_proxy,
        &photo,
        &[("x-forwarded-for", "203.0.113.1")],
        "that client's share is full",
        &mut flood,
    )
    .await;
    assert_reason(
        &same_client,
        Code::ResourceExhausted,
        "REQUEST_MEMORY_EXHAUSTED",
    );
    let other_client = upload_with(&behind_proxy, &photo, &[("x-forwarded-for", "203.0.113.2")])
        .await
        .expect("another client behind the proxy has its own share");
    assert_eq!(other_client, NUMBER);
    flood.body_timed_out().await;

    // Nothing trusted: the header is the client's own word, and the share is the address's.
    let direct = gateway_with_small_shares(&sim, &[]).await;
    let mut flood = Flood::fill(direct.address, loopback, &forwarded("203.0.113.1")).await;
    let forged = refused_upload(
        &direct,
        &photo,
        &[("x-forwarded-for", "203.0.113.2")],
        "a forged x-forwarded-for changes no share",
        &mut flood,
    )
    .await;
    assert_reason(&forged, Code::ResourceExhausted, "REQUEST_MEMORY_EXHAUSTED");
    flood.body_timed_out().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_could_not_be_done_by_their_deadline_are_refused_at_once_not_held() {
    let Some(models) = common::local_models() else {
        return;
    };
    let gateway = local_gateway(&models).await;
    let deadline = Duration::from_secs(3);
    // Forty card photos at once for one engine, each with three seconds to be read.
    let reads: Vec<_> = common::ordinary_cards(200, 40)
        .into_iter()
        .map(|card| {
            let mut client = gateway.client_without_local_deadline();
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let result = client
                    .recognize_bank_card(with_timeout(upload(card.jpeg), deadline))
                    .await
                    .map(|reply| reply.into_inner().card_number == card.number);
                (result, started.elapsed())
            })
        })
        .collect();

    let (mut read, mut refused) = (0, 0);
    for task in reads {
        let (result, took) = task.await.expect("read task");
        // Every call is over by its deadline, and a little scheduling.
        assert!(
            took < deadline + Duration::from_millis(500),
            "{took:?}: {result:?}"
        );
        match result {
            Ok(right) => {
                assert!(right, "read wrong");
                read += 1;
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                let (reason, _) = error_info(&status);
                assert_eq!(reason, "LOCAL_BUSY", "{status:?}");
                assert!(status.get_details_retry_info().is_some(), "{status:?}");
                // Refused once it is known that it could not be done: a fraction of the wait.
                assert!(took < deadline * 3 / 4, "refused only after {took:?}");
                refused += 1;
            }
            Err(status) => assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}"),
        }
    }
    assert!(read > 0, "no card was read");
    assert!(refused > 0, "none was refused");
    eprintln!(
        "of 40 reads with 3 s deadlines on one engine: {read} read, {refused} refused at once"
    );
    // Each refusal is counted, with why and for whom.
    let (_, page) = gateway.admin_get("/metrics").await;
    let counted: f64 = ["queue_full", "deadline"]
        .iter()
        .filter_map(|why| {
            sample(
                &page,
                "ocrgate_local_refused_total",
                &[("why", why), ("ocrgate_caller", "anonymous")],
            )
        })
        .sum();
    assert_eq!(counted, f64::from(refused), "{page}");
}

#[tokio::test]
async fn a_call_whose_client_goes_away_mid_upload_is_recorded_as_cancelled() {
    let sim = simulator().await;
    let gateway = GatewayProcess::start(&sim, &[]).await;
    let (client, driver) =
        h2_connection_and_driver(gateway.address, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let (client, response, mut stream) = open_card_upload(client, gateway.address).await;
    stream
        .send_data(message_prefix(1000), false)
        .expect("prefix");
    assert!(send_zeros(&mut stream, 10).await);
    // The client stops, as a load generator does: its connection goes with the upload half sent.
    drop((client, stream, response));
    driver.abort();

    let recorded = async {
        loop {
            let page = metrics_page(gateway.admin_address).await;
            let count = |code: &str| {
                sample(
                    &page,
                    "rpc_server_call_duration_seconds_count",
                    &[
                        ("rpc_method", "RecognizeBankCard"),
                        ("rpc_grpc_status_code", code),
                    ],
                )
            };
            for code in ["2", "13"] {
                assert_eq!(
                    count(code),
                    None,
                    "a cancelled call recorded as {code}: {page}"
                );
            }
            if count("1") == Some(1.0) {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), recorded)
        .await
        .expect("the call is recorded as CANCELLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_client_resets_its_stream_mid_upload_ends_at_once() {
    let sim = simulator().await;
    let gateway = GatewayProcess::start(&sim, &[]).await;
    let client = h2_connection(gateway.address, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let (client, response, mut stream) = open_card_upload(client, gateway.address).await;
    stream
        .send_data(message_prefix(8 << 20), false)
        .expect("prefix");
    assert!(send_zeros(&mut stream, 1 << 20).await);
    // The client gives up on this call alone, 1 MiB into an 8 MiB upload; its connection stays.
    stream.send_reset(h2::Reason::CANCEL);
    drop(response);
    // Well before the body timeout (10 s) could end it: the reset itself does.
    ended_as_cancelled(&gateway).await;
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_client_resets_its_stream_while_the_vendor_works_ends_at_once() {
    let (sim, image) = simulator_with_card().await;
    sim.inject(Endpoint::BankCard, Fault::Hold, 1);
    let gateway = GatewayProcess::start(&sim, &[]).await;
    let client = h2_connection(gateway.address, IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let (client, response, mut stream) = open_card_upload(client, gateway.address).await;
    let message = prost::Message::encode_to_vec(&upload(image));
    let mut body = message_prefix(u32::try_from(message.len()).expect("small")).to_vec();
    body.extend_from_slice(&message);
    stream
        .send_data(body.into(), true)
        .expect("the whole request");
    sim.wait_for_requests(Endpoint::BankCard, 1).await;
    // The vendor holds the photo; the client gives up on the call, its connection stays open.
    stream.send_reset(h2::Reason::CANCEL);
    drop(response);
    // Long before the gateway's own deadline (15 s): the reset ends the call.
    ended_as_cancelled(&gateway).await;
    sim.release_held(1);
    drop(client);
    // The call has its audit line, as every call does.
    let cancelled = common::audit_lines(&gateway.stop().await)
        .into_iter()
        .find(|entry| entry["rpc"] == "RecognizeBankCard")
        .expect("an audit line for the call");
    assert_eq!(cancelled["code"], "Cancelled", "{cancelled}");
    assert_eq!(cancelled["caller"], "anonymous", "{cancelled}");
}

/// Opens a RecognizeBankCard stream to `to` on `client`, its request body left to send: the
/// client (to keep its connection), the response to come and the body's sending half.
async fn open_card_upload(
    client: h2::client::SendRequest<Bytes>,
    to: SocketAddr,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::client::ResponseFuture,
    h2::SendStream<Bytes>,
) {
    let mut client = client.ready().await.expect("a stream may open");
    let (response, stream) = client
        .send_request(grpc_request(to, BANK_CARD, "application/grpc"), false)
        .expect("stream opens");
    (client, response, stream)
}

/// Waits, 5 s at most, until the gateway's one RecognizeBankCard call is recorded as CANCELLED,
/// made by the anonymous caller, and no longer counted in flight.
async fn ended_as_cancelled(gateway: &GatewayProcess) {
    let ended = async {
        loop {
            let page = metrics_page(gateway.admin_address).await;
            let done = sample(
                &page,
                "rpc_server_call_duration_seconds_count",
                &[
                    ("rpc_method", "RecognizeBankCard"),
                    ("rpc_grpc_status_code", "1"),
                    ("ocrgate_caller", "anonymous"),
                ],
            );
            let in_flight = sample(
                &page,
                "ocrgate_rpc_in_flight",
                &[("rpc_method", "RecognizeBankCard")],
            );
            if done == Some(1.0) && in_flight == Some(0.0) {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), ended)
        .await
        .is_err()
    {
        let page = metrics_page(gateway.admin_address).await;
        panic!("the call is not recorded as CANCELLED or still in flight: {page}");
    }
}
