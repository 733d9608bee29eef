//! FANOUT-N: the yardstick orchestrators are compared on. A[i] hashes
//! "item-<i>" 1000 times with SHA-256; B[i] doubles the first 8 hex digits of
//! A[i]'s hash; the aggregation sums every B.

use sha2::{Digest, Sha256};

/// Hash rounds of stage A.
pub const ROUNDS: usize = 1000;

/// Stage A's work for item `i`: h = "item-<i>", then 1000 times h = hex(sha256(h)).
pub fn stage_a(i: u64) -> String {
    let mut h = format!("item-{i}");
    let mut buf = [0u8; 64];
    for _ in 0..ROUNDS {
        let d = Sha256::digest(h.as_bytes());
        hex::encode_to_slice(d, &mut buf).expect("64 bytes hold a 32-byte digest in hex");
        h.clear();
        h.push_str(std::str::from_utf8(&buf).expect("hex is ascii"));
    }
    h
}

/// Why stage B cannot read a hash of stage A.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("hash {0:?} is shorter than 8 characters")]
    Short(String),
    #[error("hash {hash:?} is not hex: {source}")]
    NotHex {
        hash: String,
        #[source]
        source: std::num::ParseIntError,
    },
}

/// Stage B's work: 2 × (the first 8 hex digits of h as an integer).
pub fn stage_b(h: &str) -> Result<u64, HashError> {
    let head = h.get(..8).ok_or_else(|| HashError::Short(h.to_owned()))?;
    u64::from_str_radix(head, 16)
        .map(|v| 2 * v)
        .map_err(|source| HashError::NotHex { hash: h.to_owned(), source })
}

/// The whole of FANOUT-N in a plain loop (the baseline).
pub fn plain_loop(n: u64) -> u64 {
    (0..n).map(|i| stage_b(&stage_a(i)).expect("stage_a gives hex")).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let one = {
            let d = Sha256::digest(b"item-0");
            hex::encode(d)
        };
        // One round by hand matches the first step.
        assert_eq!(one.len(), 64);
        let h = stage_a(0);
        assert_eq!(h.len(), 64);
        assert_eq!(stage_b("0000000a").unwrap(), 20);
        assert_eq!(stage_b("xyz"), Err(HashError::Short("xyz".into())));
        let err = stage_b("zzzzzzzz").unwrap_err();
        assert!(std::error::Error::source(&err).is_some(), "the ParseIntError stays its source: {err}");
        assert_eq!(plain_loop(3), (0..3).map(|i| stage_b(&stage_a(i)).unwrap()).sum::<u64>());
    }
}
