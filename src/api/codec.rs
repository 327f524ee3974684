//! The protobuf codec of `OcrService`: prost's, plus the checks protobuf itself cannot express.
//!
//! A `oneof` on the wire may carry several of its fields, and protobuf keeps the last one
//! silently. A client that sets both `image` and `image_url` has a bug worth hearing about, so
//! such a request is refused before it is decoded.

use std::marker::PhantomData;

use prost::{Message, bytes::Buf};
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstCodec;

use super::{
    pb,
    status::{self, InvalidRequest},
};

/// Rules a message's wire form must keep, checked before decoding.
pub trait WireRules {
    fn check(_wire: &[u8]) -> Result<(), Status> {
        Ok(())
    }
}

impl WireRules for pb::RecognizeBankCardRequest {
    fn check(wire: &[u8]) -> Result<(), Status> {
        const IMAGE: u32 = 1;
        const IMAGE_URL: u32 = 2;
        let tags = top_level_tags(wire);
        if tags.contains(&IMAGE) && tags.contains(&IMAGE_URL) {
            return Err(InvalidRequest::new(
                "image_url",
                "both `image` and `image_url` are set; send exactly one",
            )
            .into());
        }
        Ok(())
    }
}

impl WireRules for pb::RecognizeBankCardResponse {}
impl WireRules for pb::ParseInvoiceTitleRequest {}
impl WireRules for pb::ParseInvoiceTitleResponse {}

/// The field numbers present at the top level of an encoded message. Stops at the first
/// malformed byte: decoding proper reports that.
fn top_level_tags(mut wire: &[u8]) -> Vec<u32> {
    let mut tags = Vec::new();
    while wire.has_remaining() {
        let Ok(key) = prost::encoding::decode_varint(&mut wire) else {
            break;
        };
        let skip = match key & 0b111 {
            0 => prost::encoding::decode_varint(&mut wire).map(|_| 0).ok(),
            1 => Some(8),
            2 => prost::encoding::decode_varint(&mut wire)
                .ok()
                .and_then(|len| usize::try_from(len).ok()),
            5 => Some(4),
            _ => None,
        };
        match skip {
            Some(len) if len <= wire.len() => wire.advance(len),
            _ => break,
        }
        tags.push((key >> 3) as u32);
    }
    tags
}

/// [`ProstCodec`] whose decoder applies [`WireRules`] first.
#[derive(Debug)]
pub struct OcrCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for OcrCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for OcrCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + WireRules + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = OcrDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        OcrDecoder(PhantomData)
    }
}

#[derive(Debug)]
pub struct OcrDecoder<U>(PhantomData<U>);

impl<U: Message + Default + WireRules> Decoder for OcrDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let wire = buf.chunk();
        if wire.len() == buf.remaining() {
            U::check(wire)?;
        }
        U::decode(buf)
            .map(Some)
            .map_err(|err| status::malformed_request(format!("malformed message: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_of_every_wire_type_are_found() {
        let message = pb::ParseInvoiceTitleResponse {
            title_type: 1,
            title: "ACME".into(),
            provider: "wechat".into(),
            ..Default::default()
        };
        assert_eq!(top_level_tags(&message.encode_to_vec()), [1, 2, 8]);
    }

    #[test]
    fn truncated_message_stops_the_scan() {
        let wire = pb::ParseInvoiceTitleRequest {
            scan_text: "abcdef".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(top_level_tags(&wire[..4]), Vec::<u32>::new());
    }
}
