//! ocrgate: one gRPC service for bank card OCR and invoice titles, whichever vendor is behind it.
//!
//! Data flows one way: [`api`] (the gRPC edge) calls the [`provider`] traits, which the vendor
//! adapters in [`providers`] implement.

// Request paths answer with typed errors, never a panic.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod admin;
pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod enrich;
pub mod limits;
pub mod provider;
pub mod providers;
pub mod qr;
pub mod result_cache;
pub mod routing;
pub mod secret;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod transport;
