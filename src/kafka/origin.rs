//! The `tickflow-origin` header: the identity of a trade forwarded to its symbol's home
//! partition (see `pipeline::routing`).
//!
//! A forwarded trade keeps the identity it had where it was first produced — its raw
//! partition and offset — so a trade forwarded twice, or redelivered, is recognised as one
//! trade. That identity decides what is skipped as already applied, so it must not be
//! forgeable: a producer that wrote such a header itself (by mistake, or copying one from
//! another message) could otherwise make every later trade of a symbol look redelivered. The
//! header therefore carries an HMAC of the identity and the payload, keyed by a secret that
//! only tickflow instances hold (kept in the database beside the broker epoch, never on
//! Kafka, where any client could read it): `epoch:partition:offset:mac`.

use hmac::{Hmac, Mac};
use rdkafka::message::{Header, OwnedHeaders};
use sha2::Sha256;

/// The header's name.
pub const ORIGIN_HEADER: &str = "tickflow-origin";

/// Bytes of the HMAC kept in the header (128 bits).
const MAC_BYTES: usize = 16;

/// The secret that signs forwarded trades, shared by the instances of one deployment.
#[derive(Clone)]
pub struct ForwardKey(Vec<u8>);

impl std::fmt::Debug for ForwardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardKey(..)")
    }
}

impl ForwardKey {
    /// A new random key (256 bits).
    pub fn random() -> Self {
        Self(rand::random::<[u8; 32]>().to_vec())
    }

    /// A key from its stored text (hex).
    ///
    /// # Errors
    /// When the text is not hex.
    pub fn from_hex(text: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            text.len() >= 32 && text.len().is_multiple_of(2),
            "a forward key is at least 16 bytes of hex"
        );
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map(Self)
            .map_err(|e| anyhow::anyhow!("a forward key is hex: {e}"))
    }

    /// The key as stored (hex).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    fn mac(&self, epoch: &str, partition: i32, offset: i64, payload: &[u8]) -> [u8; MAC_BYTES] {
        // unwrap: HMAC takes keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).unwrap();
        mac.update(epoch.as_bytes());
        mac.update(&partition.to_be_bytes());
        mac.update(&offset.to_be_bytes());
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut out = [0; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }
}

/// The header value for a trade first read at `partition:offset` on broker `epoch`, whose
/// message is `payload`.
fn header_value(
    key: &ForwardKey,
    epoch: &str,
    partition: i32,
    offset: i64,
    payload: &[u8],
) -> String {
    let mac = hex(&key.mac(epoch, partition, offset, payload));
    format!("{epoch}:{partition}:{offset}:{mac}")
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            // unwrap: writing to a String cannot fail.
            write!(out, "{b:02x}").unwrap();
            out
        })
}

/// Headers carrying the origin of a forwarded trade.
pub fn origin_headers(
    key: &ForwardKey,
    epoch: &str,
    partition: i32,
    offset: i64,
    payload: &[u8],
) -> OwnedHeaders {
    let value = header_value(key, epoch, partition, offset, payload);
    OwnedHeaders::new().insert(Header {
        key: ORIGIN_HEADER,
        value: Some(value.as_bytes()),
    })
}

/// What a message's [`ORIGIN_HEADER`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginHeader {
    /// No such header: the message is a trade as first produced.
    Absent,
    /// Forwarded by tickflow on this broker: the trade's identity is `(partition, offset)`.
    Forwarded(i32, i64),
    /// A header tickflow did not write (unsigned or badly signed, another broker's, naming
    /// the partition the message is on, on another payload): ignored, the message is a trade
    /// of its own.
    Ignored,
}

/// Where a message was read, and what it carries: what [`origin_of`] judges.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub partition: i32,
    /// Partitions of the raw topic.
    pub partitions: i32,
    pub payload: &'a [u8],
}

/// Reads a message's origin header: trusted only when signed with `key` for this payload,
/// written against broker `epoch`, and naming another partition of the raw topic than the
/// one the message is on (a forward always moves a trade to another partition).
pub fn origin_of(
    headers: Option<&rdkafka::message::BorrowedHeaders>,
    key: &ForwardKey,
    epoch: &str,
    arrival: Arrival<'_>,
) -> OriginHeader {
    use rdkafka::message::Headers;
    let mut found = headers
        .into_iter()
        .flat_map(|h| h.iter())
        .filter(|h| h.key == ORIGIN_HEADER);
    let Some(first) = found.next() else {
        return OriginHeader::Absent;
    };
    if found.next().is_some() {
        // tickflow writes one; two are someone else's doing.
        return OriginHeader::Ignored;
    }
    judge(first.value.unwrap_or_default(), key, epoch, arrival)
}

fn judge(value: &[u8], key: &ForwardKey, epoch: &str, arrival: Arrival<'_>) -> OriginHeader {
    let Some(text) = std::str::from_utf8(value).ok() else {
        return OriginHeader::Ignored;
    };
    let mut parts = text.split(':');
    let (Some(e), Some(p), Some(o), Some(_mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return OriginHeader::Ignored;
    };
    let (Ok(p), Ok(o)) = (p.parse::<i32>(), o.parse::<i64>()) else {
        return OriginHeader::Ignored;
    };
    let genuine = e == epoch
        && p != arrival.partition
        && (0..arrival.partitions).contains(&p)
        && o >= 0
        // Constant-time comparison is not needed: the MAC is recomputed, not searched.
        && header_value(key, epoch, p, o, arrival.payload) == text;
    if genuine {
        OriginHeader::Forwarded(p, o)
    } else {
        OriginHeader::Ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(payload: &[u8]) -> Arrival<'_> {
        Arrival {
            partition: 2,
            partitions: 6,
            payload,
        }
    }

    #[test]
    fn only_a_header_tickflow_signed_for_this_payload_is_trusted() {
        let key = ForwardKey::random();
        let payload = br#"{"symbol":"AAPL","price":1,"timestamp":1,"volume":1}"#;
        let genuine = header_value(&key, "e1", 0, 17, payload);
        assert_eq!(
            judge(genuine.as_bytes(), &key, "e1", arrival(payload)),
            OriginHeader::Forwarded(0, 17)
        );
        let other_key = ForwardKey::random();
        let forged = [
            // Signed by someone else (another deployment, or a guess).
            header_value(&other_key, "e1", 0, 17, payload),
            // The epoch is public: without the MAC it proves nothing.
            "e1:0:999999999999".to_owned(),
            "e1:0:999999999999:00000000000000000000000000000000".to_owned(),
            // A genuine header copied onto another trade.
            header_value(&key, "e1", 0, 17, b"another trade"),
            // Another broker's, or naming the partition the message is on.
            header_value(&key, "e0", 0, 17, payload),
            header_value(&key, "e1", 2, 17, payload),
            header_value(&key, "e1", 6, 17, payload),
            "0:17".to_owned(),
            String::new(),
        ];
        for value in forged {
            assert_eq!(
                judge(value.as_bytes(), &key, "e1", arrival(payload)),
                OriginHeader::Ignored,
                "{value:?}"
            );
        }
        assert_eq!(
            judge(&[0xff, 0xfe], &key, "e1", arrival(payload)),
            OriginHeader::Ignored
        );
    }

    #[test]
    fn a_key_survives_its_stored_form() {
        let key = ForwardKey::random();
        let again = ForwardKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(key.mac("e", 1, 2, b"x"), again.mac("e", 1, 2, b"x"));
        assert!(ForwardKey::from_hex("zz").is_err());
        assert!(
            ForwardKey::from_hex("00").is_err(),
            "too short to be a secret"
        );
    }
}
