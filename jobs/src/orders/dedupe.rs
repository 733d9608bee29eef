//! Duplicate Order IDs across children. Each child rejects the later copies
//! of an Order ID within its own range; the aggregation reads the children's
//! outputs in child order (that is, in line order) and finds the IDs that an
//! earlier child already confirmed. The first copy wins whatever order the
//! children ran in: the later child's output line is dropped, a reject names
//! both lines, and the first copy's row is written to the table again (the
//! later child may have overwritten it).
//!
//! Each child also stores its accepted Order IDs sorted, with their lines
//! ([`IdList`]); the aggregation merges those lists ([`DuplicateFinder::find_sorted`])
//! instead of parsing every output and hashing a million IDs, and parses the
//! outputs ([`DuplicateFinder::find`]) only when a list is missing.

use std::{
    cmp::Reverse,
    collections::{binary_heap::PeekMut, BTreeMap, BTreeSet, BinaryHeap, HashMap},
};

use super::{ids::unpack, IdKey, IdMap};

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

    /// What [`DuplicateFinder::find`] finds in the outputs, from the
    /// children's ID lists (child, list, in child order): the lists are
    /// sorted, so each of `threads` threads merges one range of IDs across
    /// all of them, reading each list once, in order, with no map at all.
    pub fn find_sorted(lists: &[(u64, IdList)], threads: usize) -> DuplicateFinder {
        let bounds = splitters(lists, threads.max(1));
        let ranges: Vec<(u64, Option<u64>)> = std::iter::once(0)
            .chain(bounds.iter().copied())
            .zip(bounds.iter().copied().map(Some).chain([None]))
            .collect();
        let mut found: Vec<(usize, u64, Duplicate)> = std::thread::scope(|scope| {
            let workers: Vec<_> =
                ranges.iter().map(|&(lo, hi)| scope.spawn(move || merge_range(lists, lo, hi))).collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (n, (child, list)) in lists.iter().enumerate() {
            for (id, line) in &list.text {
                match first.entry(id) {
                    std::collections::hash_map::Entry::Occupied(e) => found.push((
                        n,
                        *line,
                        Duplicate { child: *child, order_id: id.to_string(), first_child: lists[*e.get()].0 },
                    )),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(n);
                    }
                }
            }
        }
        found.sort_by_key(|(n, line, _)| (*n, *line));
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

/// `parts - 1` packed keys that cut the keys of `lists` into about equal
/// parts, ascending (from a sample of each list).
fn splitters(lists: &[(u64, IdList)], parts: usize) -> Vec<u64> {
    const SAMPLES_PER_LIST: usize = 64;
    let mut sample: Vec<u64> = lists
        .iter()
        .flat_map(|(_, list)| {
            let keys = &list.packed;
            let step = (keys.len() / SAMPLES_PER_LIST).max(1);
            keys.iter().step_by(step).map(|e| e.0)
        })
        .collect();
    if sample.is_empty() {
        return Vec::new();
    }
    sample.sort_unstable();
    (1..parts).map(|i| sample[i * sample.len() / parts]).collect()
}

/// The duplicates among the packed keys in `lo..hi` (no end: `None`) of
/// `lists`: (list, line, duplicate). A k-way merge: of equal keys, the one
/// from the earliest list comes out first and is the first copy.
fn merge_range(lists: &[(u64, IdList)], lo: u64, hi: Option<u64>) -> Vec<(usize, u64, Duplicate)> {
    let slices: Vec<&[(u64, u64)]> = lists
        .iter()
        .map(|(_, list)| {
            let keys = &list.packed[..];
            let end = hi.map_or(keys.len(), |hi| keys.partition_point(|e| e.0 < hi));
            &keys[keys[..end].partition_point(|e| e.0 < lo)..end]
        })
        .collect();
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> =
        slices.iter().enumerate().filter_map(|(n, s)| s.first().map(|e| Reverse((e.0, n)))).collect();
    let mut at = vec![0usize; slices.len()];
    let mut first: Option<(u64, usize)> = None;
    let mut found = Vec::new();
    while let Some(mut top) = heap.peek_mut() {
        let Reverse((key, n)) = *top;
        match first {
            Some((k, f)) if k == key => found.push((
                n,
                slices[n][at[n]].1,
                Duplicate { child: lists[n].0, order_id: unpack(key), first_child: lists[f].0 },
            )),
            _ => first = Some((key, n)),
        }
        at[n] += 1;
        match slices[n].get(at[n]) {
            Some(e) => *top = Reverse((e.0, n)),
            None => drop(PeekMut::pop(top)),
        }
    }
    found
}

/// One child's accepted Order IDs, each with its line, sorted by ID: what the
/// aggregation merges ([`DuplicateFinder::find_sorted`]). The confirm child
/// stores it beside its output ([`crate::orders::ids_ref`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdList {
    /// (packed key, line), ascending by key, no key twice.
    packed: Vec<(u64, u64)>,
    /// (Order ID, line) of the IDs that do not pack, ascending, no ID twice.
    text: Vec<(Box<str>, u64)>,
}

/// The first bytes of an encoded [`IdList`].
const ID_LIST_MAGIC: &[u8] = b"batchfan orders id list v1\n";

impl IdList {
    /// The list of the IDs in `seen` (Order ID → line).
    pub fn from_map(seen: &IdMap<u64>) -> IdList {
        let mut packed: Vec<(u64, u64)> = seen.packed_entries().collect();
        packed.sort_unstable_by_key(|e| e.0);
        let mut text: Vec<(Box<str>, u64)> =
            seen.text_entries().map(|(id, line)| (id.into(), line)).collect();
        text.sort_unstable();
        IdList { packed, text }
    }

    /// IDs in the list.
    pub fn len(&self) -> usize {
        self.packed.len() + self.text.len()
    }

    /// No IDs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored form: the magic line, then little-endian counts and
    /// entries — `u64` key and line for each packed ID; `u64` line, `u32`
    /// length and the bytes for each other one.
    pub fn encode(&self) -> Vec<u8> {
        let text_bytes: usize = self.text.iter().map(|(id, _)| 12 + id.len()).sum();
        let mut out = Vec::with_capacity(ID_LIST_MAGIC.len() + 16 + self.packed.len() * 16 + text_bytes);
        out.extend_from_slice(ID_LIST_MAGIC);
        out.extend_from_slice(&(self.packed.len() as u64).to_le_bytes());
        for (key, line) in &self.packed {
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(&line.to_le_bytes());
        }
        out.extend_from_slice(&(self.text.len() as u64).to_le_bytes());
        for (id, line) in &self.text {
            out.extend_from_slice(&line.to_le_bytes());
            out.extend_from_slice(&(id.len() as u32).to_le_bytes());
            out.extend_from_slice(id.as_bytes());
        }
        out
    }

    /// Reads what [`IdList::encode`] wrote; an error names what is wrong
    /// with `bytes` (truncated, unsorted, an ID that is not one).
    pub fn decode(bytes: &[u8]) -> Result<IdList, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(ID_LIST_MAGIC.len())? != ID_LIST_MAGIC {
            return Err("it does not start with the ID list's magic line".into());
        }
        let count = r.count(16)?;
        let mut packed = Vec::with_capacity(count);
        for _ in 0..count {
            let (key, line) = (r.u64()?, r.u64()?);
            let digits = (key & 31) as u32;
            if !(1..=17).contains(&digits) || key >> 5 >= 10u64.pow(digits) {
                return Err(format!("{key} is not a packed Order ID"));
            }
            if packed.last().is_some_and(|&(prev, _)| prev >= key) {
                return Err(format!("packed Order ID {key} is out of order"));
            }
            packed.push((key, line));
        }
        let count = r.count(12)?;
        let mut text: Vec<(Box<str>, u64)> = Vec::with_capacity(count);
        for _ in 0..count {
            let line = r.u64()?;
            let len = r.u32()? as usize;
            let id =
                std::str::from_utf8(r.take(len)?).map_err(|e| format!("an Order ID is not UTF-8: {e}"))?;
            if matches!(IdKey::of(id), IdKey::Packed(_)) {
                return Err(format!("Order ID {id:?} is listed as text but packs"));
            }
            if text.last().is_some_and(|(prev, _)| **prev >= *id) {
                return Err(format!("Order ID {id:?} is out of order"));
            }
            text.push((id.into(), line));
        }
        if r.at != bytes.len() {
            return Err(format!("{} bytes follow the last ID", bytes.len() - r.at));
        }
        Ok(IdList { packed, text })
    }
}

/// A cursor over an encoded [`IdList`].
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let rest = &self.bytes[self.at..];
        let taken =
            rest.get(..n).ok_or_else(|| format!("it ends {} bytes in, inside an entry", self.bytes.len()))?;
        self.at += n;
        Ok(taken)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count of entries of at least `min_size` bytes each, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.u64()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left / min_size as u64 {
            return Err(format!("it counts {n} entries but holds {left} more bytes"));
        }
        Ok(n as usize)
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
        // The same children's ID lists (a line is the output line's number),
        // through their stored form, merged on 1 to 5 threads.
        let lists: Vec<(u64, IdList)> = outputs
            .iter()
            .map(|(child, output)| {
                let mut seen = IdMap::default();
                for (line, text) in output.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
                    let id = std::str::from_utf8(text).unwrap().split(',').next().unwrap();
                    seen.insert(IdKey::of(id), line as u64 + 100);
                }
                let list = IdList::from_map(&seen);
                assert_eq!(IdList::decode(&list.encode()).as_ref(), Ok(&list));
                (*child, list)
            })
            .collect();
        assert!(lists.iter().all(|(_, l)| !l.text.is_empty() && !l.packed.is_empty()), "both kinds of ID");
        for threads in [1, 2, 3, 5] {
            assert_eq!(DuplicateFinder::find_sorted(&lists, threads).found, fed.found, "{threads} threads");
        }
        assert!(DuplicateFinder::find_sorted(&[], 2).found.is_empty());
    }

    #[test]
    fn a_damaged_id_list_is_refused_with_what_is_wrong() {
        let mut seen = IdMap::default();
        for (id, line) in [("791862618", 2), ("12", 3), ("007", 4), ("123456789012345678", 5)] {
            seen.insert(IdKey::of(id), line);
        }
        let list = IdList::from_map(&seen);
        assert_eq!(list.len(), 4);
        let bytes = list.encode();
        let err = |bytes: &[u8]| IdList::decode(bytes).unwrap_err();
        assert!(err(b"orders").contains("ends"), "{}", err(b"orders"));
        assert!(err(&bytes[1..]).contains("magic"));
        assert!(err(&bytes[..bytes.len() - 1]).contains("ends"));
        assert!(err(&[&bytes[..], b"x"].concat()).contains("1 bytes follow"));
        let head = ID_LIST_MAGIC.len();
        // A count larger than the bytes that follow: refused before any allocation.
        let mut huge = bytes.clone();
        huge[head..head + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(err(&huge).contains("entries"), "{}", err(&huge));
        // The first two packed keys swapped.
        let mut swapped = bytes.clone();
        let (a, b) = (head + 8, head + 24);
        let first: Vec<u8> = swapped[a..b].to_vec();
        swapped.copy_within(b..b + 16, a);
        swapped[b..b + 16].copy_from_slice(&first);
        assert!(err(&swapped).contains("out of order"), "{}", err(&swapped));
        // A key with 0 digits is no packed Order ID.
        let mut zero = bytes;
        zero[head + 8..head + 16].copy_from_slice(&(7u64 << 5).to_le_bytes());
        assert!(err(&zero).contains("not a packed Order ID"), "{}", err(&zero));
    }
}
