//! Message payloads. Each starts with a 16-byte header so a consumer can measure end-to-end
//! latency without a side channel:
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | magic `FJLT` |
//! | 4..8 | producer index, big-endian u32 |
//! | 8..16 | send time, microseconds since the Unix epoch, big-endian u64 |
//!
//! The rest is `randomBytesRatio` random bytes followed by zeros, so compression sees data about
//! as compressible as the workload asks.

use rand::Rng;

use crate::workload::HEADER_LEN;

const MAGIC: &[u8; 4] = b"FJLT";

/// A producer's pool of payloads; the header is rewritten in place before each send.
#[derive(Debug)]
pub struct PayloadPool {
    payloads: Vec<Vec<u8>>,
    next: usize,
}

impl PayloadPool {
    /// `count` payloads of `size` bytes (at least [`HEADER_LEN`]) for producer `producer`.
    pub fn new(
        rng: &mut impl Rng,
        count: usize,
        size: usize,
        random_ratio: f64,
        producer: u32,
    ) -> PayloadPool {
        let size = size.max(HEADER_LEN as usize);
        let body = size - HEADER_LEN as usize;
        let random = ((body as f64) * random_ratio.clamp(0.0, 1.0)).round() as usize;
        let payloads = (0..count.max(1))
            .map(|_| {
                let mut p = vec![0u8; size];
                p[..4].copy_from_slice(MAGIC);
                p[4..8].copy_from_slice(&producer.to_be_bytes());
                let start = HEADER_LEN as usize;
                rng.fill_bytes(&mut p[start..start + random]);
                p
            })
            .collect();
        PayloadPool { payloads, next: 0 }
    }

    /// The next payload, stamped with `now_us` (microseconds since the Unix epoch).
    pub fn next(&mut self, now_us: u64) -> &[u8] {
        let i = self.next;
        self.next = (self.next + 1) % self.payloads.len();
        let p = &mut self.payloads[i];
        p[8..16].copy_from_slice(&now_us.to_be_bytes());
        p
    }
}

/// The send time (µs since the Unix epoch) stamped in `payload`, if it carries our header.
pub fn sent_at_us(payload: &[u8]) -> Option<u64> {
    if payload.len() < HEADER_LEN as usize || &payload[..4] != MAGIC {
        return None;
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&payload[8..16]);
    Some(u64::from_be_bytes(ts))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn header_round_trips_and_ratio_holds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut pool = PayloadPool::new(&mut rng, 2, 1024, 0.5, 3);
        let p = pool.next(1_700_000_000_123_456).to_vec();
        assert_eq!(p.len(), 1024);
        assert_eq!(sent_at_us(&p), Some(1_700_000_000_123_456));
        assert_eq!(&p[4..8], &3u32.to_be_bytes());
        // The second half of the body is zeros; the first half is (almost surely) not.
        let body = &p[16..];
        assert!(body[504..].iter().all(|&b| b == 0));
        assert!(body[..504].iter().filter(|&&b| b != 0).count() > 400);
        // The pool cycles and restamps.
        let q = pool.next(5).to_vec();
        assert_eq!(sent_at_us(&q), Some(5));
        assert_ne!(q[16..], p[16..]);
        assert_eq!(sent_at_us(pool.next(9)), Some(9));
    }

    #[test]
    fn foreign_payloads_have_no_timestamp() {
        assert_eq!(sent_at_us(b"short"), None);
        assert_eq!(sent_at_us(&[0u8; 32]), None);
    }
}
