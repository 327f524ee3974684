//! Vendor adapters behind the `provider` traits, one folder each.

pub mod wechat;
