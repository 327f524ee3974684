//! Wiring: providers, the gRPC services, health, reflection and graceful shutdown.

use std::{future::Future, sync::Arc};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::{
    api::{DeadlineLayer, OcrApi, pb},
    config::Config,
    providers::wechat::{self, WechatProvider},
};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Wechat(#[from] wechat::BuildError),
    #[error("could not build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("could not read the listener's address: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves on `listener` until `shutdown` completes, then drains: health turns NOT_SERVING, new
/// connections stop after `drain_delay`, in-flight calls get `shutdown_grace` to finish.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let wechat = Arc::new(WechatProvider::new(&config.wechat)?);
    let accounts: Vec<&str> = wechat.account_names().collect();
    if accounts.is_empty() {
        tracing::warn!(
            "no WeChat account configured: calls will fail with FAILED_PRECONDITION until \
             OCRGATE_WECHAT_APP_ID and OCRGATE_WECHAT_APP_SECRET are set"
        );
    } else {
        tracing::info!(?accounts, "WeChat accounts configured");
    }
    let api = OcrApi::new(wechat.clone(), wechat);

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::ocr_service_server::OcrServiceServer<OcrApi>>()
        .await;
    health.set_service_status("", ServingStatus::Serving).await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // So reflection clients can decode the ErrorInfo and BadRequest details of errors.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };

    let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
    let address = listener.local_addr()?;
    let server = Server::builder()
        .layer(DeadlineLayer)
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(api.into_server())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            stopped.await.ok();
        });
    tokio::pin!(server);
    tracing::info!(%address, "listening");

    tokio::select! {
        result = &mut server => return Ok(result?),
        () = shutdown => {}
    }
    tracing::info!(drain_delay = ?config.drain_delay, "shutting down: health is NOT_SERVING");
    health
        .set_not_serving::<pb::ocr_service_server::OcrServiceServer<OcrApi>>()
        .await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    tokio::time::sleep(config.drain_delay).await;
    stop_accepting.send(()).ok();
    match tokio::time::timeout(config.shutdown_grace, server).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!(
            grace = ?config.shutdown_grace,
            "in-flight calls did not finish within the shutdown grace; exiting anyway"
        ),
    }
    tracing::info!("stopped");
    Ok(())
}
