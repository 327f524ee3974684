//! The service around the API: no-credential start, health, reflection.

mod common;

use common::{Gateway, png, upload};
use tokio_stream::StreamExt as _;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn without_credentials_calls_fail_with_failed_precondition_saying_what_to_set() {
    let gateway = Gateway::start_without_credentials().await;

    let card = gateway
        .recognize(upload(png(1)))
        .await
        .expect_err("not configured");
    let title = gateway
        .parse_title("text")
        .await
        .expect_err("not configured");

    for status in [card, title] {
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(
            status.message().contains("OCRGATE_WECHAT_APP_ID"),
            "{}",
            status.message()
        );
        assert!(
            status.message().contains("OCRGATE_WECHAT_APP_SECRET"),
            "{}",
            status.message()
        );
        assert_eq!(common::error_info(&status).0, "WECHAT_MISCONFIGURED");
    }
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn without_credentials_health_still_reports_serving() {
    let gateway = Gateway::start_without_credentials().await;
    let mut health = HealthClient::new(gateway.channel());

    for service in ["", "ocrgate.v1.OcrService"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner();
        assert_eq!(
            reply.status(),
            ServingStatus::Serving,
            "service {service:?}"
        );
    }
}

#[tokio::test]
async fn reflection_v1_lists_the_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let gateway = Gateway::start().await;
    let mut client = ServerReflectionClient::new(gateway.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let reply = replies.next().await.expect("one reply").expect("ok");

    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reply {reply:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"ocrgate.v1.OcrService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}

#[tokio::test]
async fn reflection_v1alpha_describes_the_api_file() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let gateway = Gateway::start().await;
    let mut client = ServerReflectionClient::new(gateway.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "ocrgate.v1.OcrService".into(),
        )),
    };

    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let reply = replies.next().await.expect("one reply").expect("ok");

    let Some(MessageResponse::FileDescriptorResponse(files)) = reply.message_response else {
        panic!("unexpected reply {reply:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    let text = String::from_utf8_lossy(&files.file_descriptor_proto[0]);
    assert!(text.contains("ocrgate/v1/ocrgate.proto") && text.contains("RecognizeBankCard"));
}
