//! Dead letters: a refused message, why, and its bytes (bounded).

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};

/// Most payload bytes a dead letter carries: a larger payload is cut (its size and SHA-256
/// are kept), so the letter always fits the topic's message size.
pub const MAX_LETTER_PAYLOAD: usize = 64 * 1024;
/// Most bytes of the refused message's key and of the error text a dead letter carries.
const MAX_LETTER_TEXT: usize = 1024;

/// A dead-letter message: why, where from, and the original bytes (or, for a payload over
/// [`MAX_LETTER_PAYLOAD`], their beginning, size and hash).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct DeadLetter {
    pub error: String,
    pub reason: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// The original payload as text (lossy for non-UTF-8 bytes).
    pub payload: String,
    /// The original payload, exactly, in base64 (its first [`MAX_LETTER_PAYLOAD`] bytes).
    pub payload_base64: String,
    /// Size of the original payload in bytes.
    #[serde(default)]
    pub payload_bytes: usize,
    /// SHA-256 of the whole original payload, hex.
    #[serde(default)]
    pub payload_sha256: String,
    /// Whether `payload`/`payload_base64` hold only the beginning of it.
    #[serde(default)]
    pub truncated: bool,
    pub received_at: String,
}

/// Where a refused message came from: topic, partition, offset, key.
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl DeadLetter {
    /// A letter for `payload` from `origin`, refused for `reason` (a short label) because of
    /// `error`, stamped now.
    pub fn new(origin: Origin<'_>, payload: &[u8], error: &str, reason: &str) -> Self {
        use base64::Engine;
        use sha2::Digest;
        let kept = &payload[..payload.len().min(MAX_LETTER_PAYLOAD)];
        Self {
            error: cut(error.to_owned(), MAX_LETTER_TEXT),
            reason: reason.to_owned(),
            topic: origin.topic.to_owned(),
            partition: origin.partition,
            offset: origin.offset,
            key: origin.key.map(|k| cut(k, MAX_LETTER_TEXT)),
            payload: String::from_utf8_lossy(kept).into_owned(),
            payload_base64: base64::engine::general_purpose::STANDARD.encode(kept),
            payload_bytes: payload.len(),
            payload_sha256: format!("{:x}", sha2::Sha256::digest(payload)),
            truncated: kept.len() < payload.len(),
            received_at: Timestamp::from_datetime(&chrono::Utc::now()).to_rfc3339(),
        }
    }

    /// The letter's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // unwrap: a struct of strings and integers always serialises.
        serde_json::to_vec(self).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_of_a_huge_payload_fits_a_message_and_keeps_size_and_hash() {
        let huge = vec![b'x'; 1 << 20];
        let origin = || Origin {
            topic: "market.prices.raw",
            partition: 1,
            offset: 2,
            key: Some("k".repeat(5000)),
        };
        let letter = DeadLetter::new(origin(), &huge, &"e".repeat(10_000), "not_json");
        assert!(letter.to_json().len() < crate::kafka::config::MAX_MESSAGE_BYTES / 4);
        assert!(letter.truncated);
        assert_eq!(letter.payload_bytes, 1 << 20);
        assert_eq!(letter.payload.len(), MAX_LETTER_PAYLOAD);
        assert_eq!(letter.payload_sha256.len(), 64);
        assert!(letter.key.as_ref().unwrap().len() <= 1024 && letter.error.len() <= 1024);
        let small = DeadLetter::new(origin(), b"{\"a\":1}", "bad", "not_json");
        assert!(!small.truncated);
        assert_eq!(small.payload, "{\"a\":1}");
        assert_eq!(
            small.payload_sha256,
            "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
        );
    }
}
