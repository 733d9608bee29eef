//! Order IDs as hash keys: a string of digits, kept exact ("007" is not
//! "7"), packed into a `u64` when it has at most 17 digits (every real one),
//! so a map of a million IDs holds no strings.

use std::collections::HashMap;

use foldhash::fast::RandomState;

/// Digits that fit the packed form: 10^17 * 32 < 2^64.
const PACKED_DIGITS: usize = 17;

/// An Order ID as a hash key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdKey {
    /// value * 32 + number of digits.
    Packed(u64),
    /// Longer, or not only digits.
    Text(Box<str>),
}

impl IdKey {
    /// Which of `parts` shares this key falls in (the same for equal keys).
    pub fn part(&self, parts: usize) -> usize {
        let spread = match self {
            IdKey::Packed(v) => v >> 5,
            IdKey::Text(s) => s.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
        };
        (spread % parts.max(1) as u64) as usize
    }

    /// The key of `id`.
    pub fn of(id: &str) -> IdKey {
        if id.len() <= PACKED_DIGITS && !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
            let value = id.bytes().fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
            return IdKey::Packed(value * 32 + id.len() as u64);
        }
        IdKey::Text(id.into())
    }
}

/// A map keyed by Order ID, packed keys and text keys apart (a packed entry
/// takes 16 bytes of table). Hashed with foldhash, seeded per map: a few ns
/// per key where std's SipHash takes ~20, and a million keys go through the
/// children's maps and the aggregation's at 1M rows; the random seed keeps an
/// input from choosing colliding IDs.
#[derive(Debug, Clone)]
pub struct IdMap<V> {
    packed: HashMap<u64, V, RandomState>,
    text: HashMap<Box<str>, V, RandomState>,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap { packed: HashMap::default(), text: HashMap::default() }
    }
}

impl<V: Copy> IdMap<V> {
    /// The value of `key`, if any.
    pub fn get(&self, key: &IdKey) -> Option<V> {
        match key {
            IdKey::Packed(k) => self.packed.get(k).copied(),
            IdKey::Text(k) => self.text.get(k).copied(),
        }
    }

    /// Sets `key` to `value` unless it has one; returns the value it had.
    pub fn insert_first(&mut self, key: IdKey, value: V) -> Option<V> {
        match key {
            IdKey::Packed(k) => match self.packed.entry(k) {
                std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(value);
                    None
                }
            },
            IdKey::Text(k) => match self.text.entry(k) {
                std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(value);
                    None
                }
            },
        }
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: IdKey, value: V) {
        match key {
            IdKey::Packed(k) => self.packed.insert(k, value),
            IdKey::Text(k) => self.text.insert(k, value),
        };
    }

    /// Room for `n` more IDs.
    pub fn reserve(&mut self, n: usize) {
        self.packed.reserve(n);
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.packed.len() + self.text.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries with packed keys ([`IdKey::Packed`]'s value), in no order.
    pub fn packed_entries(&self) -> impl Iterator<Item = (u64, V)> + '_ {
        self.packed.iter().map(|(k, v)| (*k, *v))
    }

    /// The entries with text keys, in no order.
    pub fn text_entries(&self) -> impl Iterator<Item = (&str, V)> + '_ {
        self.text.iter().map(|(k, v)| (&**k, *v))
    }
}

/// The Order ID a packed key stands for (its digits, leading zeros kept).
pub fn unpack(key: u64) -> String {
    let digits = (key & 31) as usize;
    format!("{:0digits$}", key >> 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_ids_exact() {
        assert_eq!(IdKey::of("791862618"), IdKey::of("791862618"));
        assert_ne!(IdKey::of("007"), IdKey::of("7"));
        assert_ne!(IdKey::of("99999999999999999"), IdKey::of("99999999999999998"));
        assert!(matches!(IdKey::of("99999999999999999"), IdKey::Packed(_)));
        assert!(matches!(IdKey::of("123456789012345678"), IdKey::Text(_)));
        let mut m = IdMap::default();
        assert_eq!(m.insert_first(IdKey::of("123456789012345678"), 3), None);
        assert_eq!(m.insert_first(IdKey::of("123456789012345678"), 17), Some(3));
        assert_eq!(m.insert_first(IdKey::of("5"), 4), None);
        assert_eq!(m.get(&IdKey::of("05")), None);
        assert_eq!(m.len(), 2);
        for id in ["007", "0", "791862618", "99999999999999999", "00000000000000000"] {
            let IdKey::Packed(key) = IdKey::of(id) else { panic!("{id} packs") };
            assert_eq!(unpack(key), id);
        }
    }
}
