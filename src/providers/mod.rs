//! Providers behind the `provider` traits, one folder each: vendor adapters and the local engine.

pub mod local;
pub mod wechat;
