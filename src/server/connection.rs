//! Client connections: how many may be open, and how long one may sit without a handshake or a
//! call. A connection past a limit is closed; nothing waits on a client that sends nothing.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use futures_core::Stream;
use http::{Request, Response};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
    time::{Instant, Sleep},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tonic::transport::server::Connected;
use tower::{Layer, Service};

use crate::{
    limits::LimitsConfig,
    telemetry::Metrics,
    transport::{Activity, ConnectionInfo},
};

/// The HTTP/2 client preface (24 bytes) and the header of the SETTINGS frame that must follow it.
const HANDSHAKE_BYTES: usize = 24 + 9;

/// After a failed accept (e.g. out of file descriptors), wait this long before the next one
/// instead of spinning on the same error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections from a listener, at most `max_connections` open at once (TLS handshakes
/// under way count), each within `handshake_timeout` of its accept.
pub struct Incoming {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    /// TLS handshakes under way, off the accept loop: a slow client holds up nobody else.
    handshakes: JoinSet<Option<Connection<ClientStream>>>,
    slots: Arc<Semaphore>,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    backoff: Option<Pin<Box<Sleep>>>,
    metrics: Metrics,
}

impl Incoming {
    pub fn new(
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        limits: &LimitsConfig,
        metrics: Metrics,
    ) -> Self {
        Self {
            listener,
            tls,
            handshakes: JoinSet::new(),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            handshake_timeout: limits.handshake_timeout,
            idle_timeout: limits.idle_timeout,
            backoff: None,
            metrics,
        }
    }
}

impl Stream for Incoming {
    type Item = io::Result<Connection<ClientStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(backoff) = &mut this.backoff {
            ready!(backoff.as_mut().poll(cx));
            this.backoff = None;
        }
        loop {
            if let Poll::Ready(Some(handshake)) = this.handshakes.poll_join_next(cx) {
                if let Ok(Some(connection)) = handshake {
                    return Poll::Ready(Some(Ok(connection)));
                }
                continue;
            }
            let (stream, remote) = match ready!(this.listener.poll_accept(cx)) {
                Ok(accepted) => accepted,
                Err(err) => {
                    this.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                    return Poll::Ready(Some(Err(err)));
                }
            };
            let Ok(slot) = Arc::clone(&this.slots).try_acquire_owned() else {
                // Closing at once tells the client to go elsewhere; a queue would hold its socket.
                this.metrics.connection_closed("max_connections");
                continue;
            };
            // Without TCP_NODELAY a response's last small frame waits for the client's delayed
            // ACK (40 ms on Linux) whenever a write is split.
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%err, "could not set TCP_NODELAY");
            }
            let opened = Opened {
                remote,
                slot,
                handshake_timeout: this.handshake_timeout,
                idle_timeout: this.idle_timeout,
                metrics: this.metrics.clone(),
            };
            match &this.tls {
                None => {
                    return Poll::Ready(Some(Ok(
                        opened.connection(ClientStream::Plain(stream), Arc::new([]))
                    )));
                }
                Some(acceptor) => {
                    this.handshakes
                        .spawn(opened.tls_handshake(acceptor.clone(), stream));
                }
            }
        }
    }
}

/// An accepted connection before its I/O is settled.
struct Opened {
    remote: SocketAddr,
    slot: OwnedSemaphorePermit,
    handshake_timeout: Duration,
    idle_timeout: Duration,
    metrics: Metrics,
}

impl Opened {
    fn connection(self, io: ClientStream, identities: Arc<[String]>) -> Connection<ClientStream> {
        Connection::new(io, self, identities)
    }

    /// The connection once its TLS handshake is done; `None` when it failed or took too long.
    async fn tls_handshake(
        self,
        acceptor: TlsAcceptor,
        stream: TcpStream,
    ) -> Option<Connection<ClientStream>> {
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                let identities: Arc<[String]> = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(super::tls::identities)
                    .unwrap_or_default()
                    .into();
                Some(self.connection(ClientStream::Tls(Box::new(tls)), identities))
            }
            Ok(Err(err)) => {
                tracing::debug!(remote = %self.remote, %err, "TLS handshake failed");
                None
            }
            Err(_) => {
                self.metrics.connection_closed("handshake_timeout");
                None
            }
        }
    }
}

/// A client's byte stream: plain TCP, or TLS over it.
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(io) => io.is_write_vectored(),
            Self::Tls(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The id the next connection accepted gets.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An accepted connection. Its reads fail, which closes it, when the HTTP/2 handshake has not
/// arrived within the handshake timeout, or when no call has been open for the idle timeout.
pub struct Connection<IO> {
    io: IO,
    id: u64,
    remote: Option<SocketAddr>,
    identities: Arc<[String]>,
    activity: Arc<Activity>,
    /// Handshake bytes still expected; 0 once the client has sent its preface and SETTINGS.
    handshake_left: usize,
    idle_timeout: Duration,
    timer: Pin<Box<Sleep>>,
    metrics: Metrics,
    _slot: OwnedSemaphorePermit,
}

impl<IO> Connection<IO> {
    fn new(io: IO, opened: Opened, identities: Arc<[String]>) -> Self {
        opened.metrics.connection_opened(1);
        Self {
            io,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            remote: Some(opened.remote),
            identities,
            activity: Arc::new(Activity::new()),
            handshake_left: HANDSHAKE_BYTES,
            idle_timeout: opened.idle_timeout,
            timer: Box::pin(tokio::time::sleep(opened.handshake_timeout)),
            metrics: opened.metrics,
            _slot: opened.slot,
        }
    }

    /// Pending while the connection may stay; an error once it must close.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.timer.as_mut().poll(cx).is_ready() {
            if self.handshake_left > 0 {
                return Poll::Ready(Err(self.closed(
                    "handshake_timeout",
                    "no HTTP/2 handshake within the handshake timeout",
                )));
            }
            let next = match self.activity.idle_deadline(self.idle_timeout) {
                None => Instant::now() + self.idle_timeout,
                Some(deadline) if deadline <= Instant::now() => {
                    return Poll::Ready(Err(
                        self.closed("idle_timeout", "no call within the idle timeout")
                    ));
                }
                Some(deadline) => deadline,
            };
            self.timer.as_mut().reset(next);
        }
        Poll::Pending
    }

    fn closed(&self, limit: &'static str, why: &'static str) -> io::Error {
        tracing::debug!(remote = ?self.remote, limit, "closing a client connection: {why}");
        self.metrics.connection_closed(limit);
        io::Error::new(io::ErrorKind::TimedOut, why)
    }
}

impl<IO> Drop for Connection<IO> {
    fn drop(&mut self) {
        self.metrics.connection_opened(-1);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Connection<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        if let Poll::Ready(result) = Pin::new(&mut this.io).poll_read(cx, buf) {
            let read = buf.filled().len() - before;
            this.handshake_left = this.handshake_left.saturating_sub(read);
            return Poll::Ready(result);
        }
        // The server always has a read pending, so its timer is polled here too.
        this.poll_timer(cx)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Connection<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<IO> Connected for Connection<IO> {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            id: self.id,
            remote: self.remote,
            identities: Arc::clone(&self.identities),
            activity: Arc::clone(&self.activity),
        }
    }
}

/// Counts each call as open on its connection until its response is ready, so a connection
/// busy with a long call is never closed as idle.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenCallsLayer;

impl<S> Layer<S> for OpenCallsLayer {
    type Service = OpenCalls<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OpenCalls { inner }
    }
}

#[derive(Debug, Clone)]
pub struct OpenCalls<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OpenCalls<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let open = request
            .extensions()
            .get::<ConnectionInfo>()
            .map(|info| info.activity.call_started());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(open);
            response
        })
    }
}
