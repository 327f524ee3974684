//! The `[limits]` section: every resource a client can make the gateway hold has a bound here.

use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

/// Bounds on what clients may make the gateway hold: connections, streams, request bodies, time.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open client connections; a connection past this is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams (calls) per connection, advertised as MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
    /// A new connection that has not sent the HTTP/2 preface and its SETTINGS by then is closed.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// A connection with no call open for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How often an HTTP/2 PING checks that a connection's peer is still there.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// A request body that sends nothing for this long is reset.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Request bytes held at once across every call of the process; a call that would pass it is
    /// refused with RESOURCE_EXHAUSTED before its body is buffered.
    pub request_memory: ByteSize,
    /// The share of `request_memory` one client may hold, so that no client can take the whole
    /// budget from the others: a known caller's own, else an anonymous client address's (see
    /// `api::shares`). Messages of at most 64 KiB of calls other than image uploads come from an
    /// allowance of their own instead.
    pub request_memory_per_client: ByteSize,
    /// Proxies (CIDRs) whose `x-forwarded-for` or `forwarded` header names the client an
    /// anonymous call's share is keyed by; none is believed by default.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The longest a call may take: its deadline when the client sets none or a later one.
    #[serde(with = "humantime_serde")]
    pub max_call_duration: Duration,
    /// The largest image a client may upload. A provider that takes less gets it fitted (see
    /// `providers::images`); the gRPC message limit and the HTTP/2 windows follow it.
    pub max_image_bytes: ByteSize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_concurrent_streams: 100,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_memory: ByteSize::mib(128),
            request_memory_per_client: ByteSize::mib(32),
            trusted_proxies: Vec::new(),
            max_call_duration: Duration::from_secs(15),
            max_image_bytes: ByteSize::mib(10),
        }
    }
}

impl LimitsConfig {
    /// Refuses settings that would leave a resource unbounded or the server unable to serve.
    pub fn check(&self) -> Result<(), String> {
        let zero = [
            ("max_connections", self.max_connections == 0),
            ("max_concurrent_streams", self.max_concurrent_streams == 0),
            ("handshake_timeout", self.handshake_timeout.is_zero()),
            ("idle_timeout", self.idle_timeout.is_zero()),
            ("keepalive_interval", self.keepalive_interval.is_zero()),
            ("keepalive_timeout", self.keepalive_timeout.is_zero()),
            ("body_timeout", self.body_timeout.is_zero()),
            ("request_memory", self.request_memory.as_u64() == 0),
            (
                "request_memory_per_client",
                self.request_memory_per_client.as_u64() == 0,
            ),
            ("max_call_duration", self.max_call_duration.is_zero()),
            ("max_image_bytes", self.max_image_bytes.as_u64() == 0),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, zero)| *zero) {
            return Err(format!("limits.{name} must be more than zero"));
        }
        if self.request_memory.as_u64() > MAX_REQUEST_MEMORY {
            return Err(format!(
                "limits.request_memory must be at most {}",
                ByteSize(MAX_REQUEST_MEMORY)
            ));
        }
        if self.request_memory_per_client > self.request_memory {
            return Err(
                "limits.request_memory_per_client must not exceed limits.request_memory".into(),
            );
        }
        if self.max_image_bytes.as_u64() > MAX_IMAGE_BYTES {
            return Err(format!(
                "limits.max_image_bytes must be at most {}",
                ByteSize(MAX_IMAGE_BYTES)
            ));
        }
        if self.max_message_bytes() > self.request_memory_per_client_bytes() {
            return Err(format!(
                "limits.max_image_bytes ({}) and the rest of a request must fit in \
                 limits.request_memory_per_client ({}), or no such image could ever be taken",
                self.max_image_bytes, self.request_memory_per_client
            ));
        }
        Ok(())
    }

    /// [`Self::max_image_bytes`] in bytes.
    pub fn max_image_bytes(&self) -> usize {
        bytes(self.max_image_bytes)
    }

    /// The largest request message: the largest image and room for the other fields.
    pub fn max_message_bytes(&self) -> usize {
        self.max_image_bytes().saturating_add(MESSAGE_FIELDS_BYTES)
    }

    /// [`Self::request_memory`] in bytes, as the budget's semaphore counts it.
    pub fn request_memory_bytes(&self) -> usize {
        bytes(self.request_memory)
    }

    /// [`Self::request_memory_per_client`] in bytes.
    pub fn request_memory_per_client_bytes(&self) -> usize {
        bytes(self.request_memory_per_client)
    }
}

fn bytes(size: ByteSize) -> usize {
    usize::try_from(size.as_u64()).unwrap_or(usize::MAX)
}

/// Room in a request message for the fields beside the image (mode, account, provider, framing).
const MESSAGE_FIELDS_BYTES: usize = 16 * 1024;

/// HTTP/2 windows are 31-bit; an image limit past this is a typo.
const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// A tokio semaphore holds at most `usize::MAX >> 3` permits; a byte budget this large is a typo.
const MAX_REQUEST_MEMORY: u64 = 64 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bounded() {
        assert_eq!(LimitsConfig::default().check(), Ok(()));
    }

    #[test]
    fn a_zero_bound_is_refused_by_name() {
        let limits = LimitsConfig {
            body_timeout: Duration::ZERO,
            ..LimitsConfig::default()
        };
        assert_eq!(
            limits.check(),
            Err("limits.body_timeout must be more than zero".into())
        );
    }

    #[test]
    fn an_image_limit_no_client_share_could_hold_is_refused() {
        let limits = LimitsConfig {
            max_image_bytes: ByteSize::mib(32),
            ..LimitsConfig::default()
        };
        let err = limits
            .check()
            .expect_err("32 MiB and its fields exceed a 32 MiB share");
        assert!(err.contains("limits.request_memory_per_client"), "{err}");
        let limits = LimitsConfig {
            max_image_bytes: ByteSize::mib(32),
            request_memory_per_client: ByteSize::mib(40),
            ..LimitsConfig::default()
        };
        assert_eq!(limits.check(), Ok(()));
        assert_eq!(limits.max_message_bytes(), (32 << 20) + 16 * 1024);
    }
}
