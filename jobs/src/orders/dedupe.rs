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
    /// A finder with room for `ids` Order IDs (the children's row count): the
    /// map is not rehashed as outputs are fed.
    fn with_capacity(ids: usize) -> Self {
        let mut finder = DuplicateFinder::default();
        finder.first.reserve(ids);
        finder
    }

    /// Feeds child `child`'s output (`OrderId,ConfirmationId` lines) to one
    /// map: the one-thread pass, kept as the tests' reference for [`find`].
    ///
    /// [`find`]: DuplicateFinder::find
    #[cfg(test)]
    fn add_output(&mut self, child: u64, output: &[u8]) {
        self.first.reserve(output.len() / 48);
        for_each_id(output, |_, id| {
            let id = String::from_utf8_lossy(id);
            if let Some(d) = self.feed(child, IdKey::of(&id), id) {
                self.found.push(d);
            }
        });
    }

    /// Records `id` (whose key is `key`) of child `child`; the duplicate if
    /// an earlier child had it.
    fn feed(&mut self, child: u64, key: IdKey, id: std::borrow::Cow<'_, str>) -> Option<Duplicate> {
        match self.first.insert_first(key, child) {
            Some(first_child) if first_child != child => {
                Some(Duplicate { child, order_id: id.into_owned(), first_child })
            }
            _ => None,
        }
    }

    /// The duplicates across `outputs` (child, output, in child order): what
    /// feeding each output in turn to one map finds, in the same order, on
    /// `threads` threads: each keeps the Order IDs of its share of the keys
    /// ([`IdKey::part`]) in a map of its own. A map of a million IDs does not
    /// fit the CPU's caches, so each insert waits on memory: at 1M rows this
    /// pass was the aggregation's largest cost, done alone while the other
    /// core idled. `ids`: the IDs to make room for (the children's row count).
    pub fn find(outputs: &[(u64, Vec<u8>)], ids: usize, threads: usize) -> DuplicateFinder {
        let threads = threads.max(1);
        let shares: Vec<Vec<(usize, usize, Duplicate)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|part| {
                    scope.spawn(move || {
                        let mut finder = DuplicateFinder::with_capacity(ids / threads + 1);
                        let mut found = Vec::new();
                        for (n, (child, output)) in outputs.iter().enumerate() {
                            for_each_id(output, |at, id| {
                                let id = String::from_utf8_lossy(id);
                                let key = IdKey::of(&id);
                                if key.part(threads) == part {
                                    if let Some(d) = finder.feed(*child, key, id) {
                                        found.push((n, at, d));
                                    }
                                }
                            });
                        }
                        found
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let mut found: Vec<(usize, usize, Duplicate)> = shares.into_iter().flatten().collect();
        found.sort_by_key(|(n, at, _)| (*n, *at));
        DuplicateFinder {
            found: found.into_iter().map(|(_, _, d)| d).collect(),
            ..DuplicateFinder::default()
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

/// Calls `f(offset, id)` for the Order ID of each line of `output` (the text
/// before its first comma) that has one.
fn for_each_id(output: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut at = 0;
    while at < output.len() {
        let rest = &output[at..];
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        let id = &line[..memchr::memchr(b',', line).unwrap_or(line.len())];
        if !id.is_empty() {
            f(at, id);
        }
        at += end + 1;
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

    #[test]
    fn finding_on_threads_finds_what_feeding_in_turn_finds_in_the_same_order() {
        // 6 children of 3,000 lines; IDs drawn from 5,000, so many repeat
        // across children; some are not digits, some have leading zeros.
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        let outputs: Vec<(u64, Vec<u8>)> = (0..6)
            .map(|child| {
                let mut seen = BTreeSet::new();
                let mut text = String::new();
                for _ in 0..3_000 {
                    let n = next() % 5_000;
                    let id = match n % 7 {
                        0 => format!("x{n}"),
                        1 => format!("00{n}"),
                        _ => n.to_string(),
                    };
                    // A child's own output never repeats an ID.
                    if seen.insert(id.clone()) {
                        text.push_str(&format!("{id},c{child}\n"));
                    }
                }
                (child * 2, text.into_bytes())
            })
            .collect();
        let mut fed = DuplicateFinder::default();
        for (child, output) in &outputs {
            fed.add_output(*child, output);
        }
        assert!(fed.found.len() > 1_000, "the data repeats IDs: {}", fed.found.len());
        for threads in [1, 2, 3] {
            assert_eq!(
                DuplicateFinder::find(&outputs, 18_000, threads).found,
                fed.found,
                "{threads} threads"
            );
        }
    }
}
