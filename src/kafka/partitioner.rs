//! The home partition of a symbol: where every one of its trades is processed.
//!
//! Kafka keeps order only within a partition, and one instance reads each partition, so a
//! symbol's trades must meet in one partition to be aggregated in order by one owner. That
//! partition is `murmur2(symbol) mod partitions` — the Java client's default for keyed
//! messages (also aiokafka's, kafka-python's, and librdkafka's `murmur2_random`, which
//! tickflow's own producers use). Trades a producer puts elsewhere (no key, another key,
//! librdkafka's CRC32 default) are routed to their home by the pipeline
//! (`pipeline::routing`).
//!
//! Written here rather than taken from a crate: the hash is 20 lines, and it must be exactly
//! the Java client's (a test compares it with librdkafka's partitioner over a real broker).

use crate::domain::Symbol;

/// Kafka's murmur2 (the Java client's `Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    // `as u32`: Java hashes the length as an int; keys here are far below 2^31 bytes.
    let mut h = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        // unwrap: chunks_exact yields 4-byte slices.
        let mut k = u32::from_le_bytes(chunk.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition a message keyed `key` lands on among `partitions` (Java's
/// `toPositive(murmur2(key)) % partitions`).
///
/// # Panics
/// When `partitions` is not positive.
pub fn partition_of_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    // `as i32`: masked to 31 bits first, so it is a non-negative i32.
    ((murmur2(key) & 0x7fff_ffff) as i32) % partitions
}

/// The home partition of `symbol` among `partitions`.
///
/// # Panics
/// When `partitions` is not positive.
pub fn home_partition(symbol: Symbol, partitions: i32) -> i32 {
    partition_of_key(symbol.as_str().as_bytes(), partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_equals_librdkafkas_reference_values() {
        // The expected hashes of librdkafka's own unit test (src/rdmurmur2.c), which checks
        // them against the Java client's.
        let cases: [(&[u8], u32); 7] = [
            (b"kafka", 0xd067_cf64),
            (b"giberish123456789", 0x8f55_2b0c),
            (b"1234", 0x9fc9_7b14),
            (b"234", 0xe7c0_09ca),
            (b"34", 0x8739_30da),
            (b"4", 0x5a4b_5ca1),
            (b"", 0x106e_08d9),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input), want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn every_partition_count_gets_a_partition_in_range() {
        for n in 1..=64 {
            for s in ["AAPL", "MSFT", "BTC-USD", "X", "BRK.B"] {
                let p = home_partition(Symbol::parse(s).unwrap(), n);
                assert!((0..n).contains(&p), "{s} {n} {p}");
            }
        }
    }
}
