//! Duplicate Order IDs across children. Each child rejects the later copies
//! of an Order ID within its own range; the aggregation reads the children's
//! outputs in child order (that is, in line order) and finds the IDs that an
//! earlier child already confirmed. The first copy wins whatever order the
//! children ran in: the later child's output line is dropped, a reject names
//! both lines, and the first copy's row is written to the table again (the
//! later child may have overwritten it).

use std::collections::{BTreeMap, BTreeSet};

use super::{IdKey, IdMap};

/// An Order ID in child `child`'s output that child `first_child` (earlier) has too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duplicate {
    pub child: u64,
    pub order_id: String,
    pub first_child: u64,
}

/// Finds duplicates across child outputs fed in child order.
#[derive(Debug, Default)]
pub struct DuplicateFinder {
    first: IdMap<u64>,
    /// Duplicates found so far, in the order fed.
    pub found: Vec<Duplicate>,
}

impl DuplicateFinder {
    /// Feeds child `child`'s output (`OrderId,ConfirmationId` lines).
    pub fn add_output(&mut self, child: u64, output: &[u8]) {
        self.first.reserve(output.len() / 48);
        for line in output.split(|&b| b == b'\n') {
            let id = line.split(|&b| b == b',').next().unwrap_or_default();
            if id.is_empty() {
                continue;
            }
            let id = String::from_utf8_lossy(id);
            match self.first.insert_first(IdKey::of(&id), child) {
                Some(first_child) if first_child != child => {
                    self.found.push(Duplicate { child, order_id: id.into_owned(), first_child });
                }
                _ => {}
            }
        }
    }

    /// Order IDs to look up, by child: each duplicate's child and first child.
    pub fn wanted(&self) -> BTreeMap<u64, BTreeSet<&str>> {
        let mut wanted: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
        for d in &self.found {
            wanted.entry(d.child).or_default().insert(&d.order_id);
            wanted.entry(d.first_child).or_default().insert(&d.order_id);
        }
        wanted
    }

    /// Duplicates by the child whose output holds the later copy.
    pub fn by_child(&self) -> BTreeMap<u64, Vec<&Duplicate>> {
        let mut by: BTreeMap<u64, Vec<&Duplicate>> = BTreeMap::new();
        for d in &self.found {
            by.entry(d.child).or_default().push(d);
        }
        by
    }
}

/// `output` without the lines whose Order ID is in `ids`.
pub fn without_ids(output: &[u8], ids: &BTreeSet<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(output.len());
    for line in output.split_inclusive(|&b| b == b'\n') {
        let id = line.split(|&b| b == b',' || b == b'\n').next().unwrap_or_default();
        if !ids.contains(String::from_utf8_lossy(id).as_ref()) {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_children_hold_the_duplicates() {
        let mut f = DuplicateFinder::default();
        f.add_output(0, b"11,a\n22,b\n");
        f.add_output(1, b"33,c\n22,b\n");
        f.add_output(2, b"22,b\n11,a\n44,d\n");
        let found: Vec<(u64, &str, u64)> =
            f.found.iter().map(|d| (d.child, d.order_id.as_str(), d.first_child)).collect();
        assert_eq!(found, [(1, "22", 0), (2, "22", 0), (2, "11", 0)]);
        let wanted = f.wanted();
        assert_eq!(wanted[&0], BTreeSet::from(["11", "22"]));
        assert_eq!(wanted[&2], BTreeSet::from(["11", "22"]));
        assert_eq!(f.by_child()[&2].len(), 2);
        assert_eq!(without_ids(b"22,b\n11,a\n44,d\n", &wanted[&2]), b"44,d\n");
        assert_eq!(without_ids(b"22,b\n44,d", &BTreeSet::from(["44"])), b"22,b\n");
    }
}
