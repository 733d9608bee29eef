//! The S3-put trigger on the local object store: which objects under a
//! pipeline's bucket/prefix are new and complete. Pure logic over listings;
//! [`super::s3_put_task`] polls the store and starts the runs.
//!
//! - An object starts one run per content: the run's idempotency key is
//!   `s3:{bucket}/{key}#{etag}` (the local etag changes whenever the file is
//!   replaced or its size or modification time changes), so seeing the same
//!   object again, or after a restart, finds the same run. A new content under
//!   the same key (an overwrite) is a new put and starts a new run, as on S3.
//! - Only complete files count. batchfan's own writes are atomic (a temp file
//!   in the bucket's hidden `.batchfan-tmp/`, never listed, then a rename).
//!   A file another program drops in must keep the same size and modification
//!   time for `settle_seconds` (observed, not trusted from the clock alone), and
//!   names that look like work in progress are ignored: a hidden segment
//!   (`.name`, as rsync and many editors write), or a name ending in `.tmp`,
//!   `.part`, `.partial`, `.crdownload`, `.download`, `.filepart`, `._COPYING_`,
//!   `.swp` or `~`. Rename the finished file into place and it is picked up.
//! - Objects that were already in the bucket the first time the pipeline was
//!   served are the baseline: they start nothing (S3 notifies new puts only).
//!   Objects put while the service was down start their runs when it is back.
//! - A symbolic link is never an object (it could point out of the bucket),
//!   and a name that is not UTF-8 is not an S3 key: such an entry under the
//!   prefix (not hidden or partial-looking) starts nothing and is reported
//!   once while it stays there ([`Watch::newly_skipped`]), not at every poll.

use std::collections::{HashMap, HashSet};

use crate::{
    objects::{dir::links::Skipped, ObjectMeta},
    spec::S3Trigger,
};

/// Name endings of files still being written by common tools.
pub const PARTIAL_SUFFIXES: [&str; 10] = [
    ".tmp",
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".filepart",
    "._COPYING_",
    ".swp",
    "~",
    ".batchfan-partial",
];

/// Whether a key looks like a file that is still being written (or is hidden).
pub fn looks_partial(key: &str) -> bool {
    key.split('/').any(|seg| seg.starts_with('.')) || PARTIAL_SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// The idempotency key of an object's run.
pub fn object_key(bucket: &str, meta: &ObjectMeta) -> String {
    format!("s3:{bucket}/{}#{}", meta.key, meta.etag)
}

#[derive(Debug, Clone)]
struct Pending {
    etag: String,
    /// When this content was first observed (ms).
    since: i64,
}

/// What is known about one watched bucket/prefix.
#[derive(Debug, Clone)]
pub struct Watch {
    pub bucket: String,
    pub prefix: String,
    pub suffix: String,
    /// Milliseconds a dropped file must stay unchanged.
    pub settle_ms: i64,
    /// key → etag of the content that already started its run (or was the baseline).
    done: HashMap<String, String>,
    pending: HashMap<String, Pending>,
    /// Entries already reported as skipped (and still there).
    reported: HashSet<Skipped>,
}

impl Watch {
    /// A watch that has already handled `done` (key → etag), loaded from the state.
    pub fn new(trigger: &S3Trigger, done: HashMap<String, String>) -> Watch {
        Watch {
            bucket: trigger.bucket.clone(),
            prefix: trigger.prefix.clone(),
            suffix: trigger.suffix.clone(),
            settle_ms: i64::try_from(trigger.settle_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            done,
            pending: HashMap::new(),
            reported: HashSet::new(),
        }
    }

    fn wanted(&self, key: &str) -> bool {
        key.starts_with(&self.prefix) && key.ends_with(&self.suffix) && !looks_partial(key)
    }

    /// The baseline: every wanted object of the first listing ever, handled without a run.
    pub fn baseline(&mut self, listing: &[ObjectMeta]) -> Vec<(String, String)> {
        let out: Vec<(String, String)> =
            listing.iter().filter(|m| self.wanted(&m.key)).map(|m| (m.key.clone(), m.etag.clone())).collect();
        self.done.extend(out.iter().cloned());
        out
    }

    /// Objects of `listing` (taken at `now_ms`) that are complete and have not
    /// started a run. They stay ready until [`Watch::started`] is called for them.
    pub fn observe(&mut self, listing: &[ObjectMeta], now_ms: i64) -> Vec<ObjectMeta> {
        let mut ready = Vec::new();
        let mut present = HashMap::with_capacity(listing.len());
        let wanted: Vec<&ObjectMeta> = listing.iter().filter(|m| self.wanted(&m.key)).collect();
        for m in wanted {
            present.insert(m.key.as_str(), ());
            if self.done.get(&m.key) == Some(&m.etag) {
                self.pending.remove(&m.key);
                continue;
            }
            let p = self
                .pending
                .entry(m.key.clone())
                .or_insert_with(|| Pending { etag: m.etag.clone(), since: now_ms });
            if p.etag != m.etag {
                // Changed since the last look: still being written.
                *p = Pending { etag: m.etag.clone(), since: now_ms };
            }
            let stable_for = now_ms - p.since;
            let untouched_for = now_ms - m.last_modified;
            if self.settle_ms == 0 || (stable_for >= self.settle_ms && untouched_for >= self.settle_ms) {
                ready.push(m.clone());
            }
        }
        self.pending.retain(|k, _| present.contains_key(k.as_str()));
        ready
    }

    /// Records that `meta`'s content started its run (or was refused for good).
    pub fn started(&mut self, meta: &ObjectMeta) {
        self.pending.remove(&meta.key);
        self.done.insert(meta.key.clone(), meta.etag.clone());
    }

    /// The entries of `skipped` (a listing's links and non-UTF-8 names) to
    /// report now: those under the prefix not reported before. One that goes
    /// away is forgotten, so putting it back is reported again.
    pub fn newly_skipped(&mut self, skipped: &[Skipped]) -> Vec<Skipped> {
        let present: Vec<&Skipped> =
            skipped.iter().filter(|s| s.key.starts_with(&self.prefix) && !looks_partial(&s.key)).collect();
        self.reported.retain(|r| present.contains(&r));
        present.into_iter().filter(|s| self.reported.insert((*s).clone())).cloned().collect()
    }

    /// How many objects are waiting to settle.
    pub fn settling(&self) -> usize {
        self.pending.len()
    }

    /// The keys waiting to settle, sorted.
    pub fn settling_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.pending.keys().cloned().collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::dir::links::SkipReason;

    fn trigger(settle_secs: u64) -> S3Trigger {
        S3Trigger { bucket: "inbox".into(), prefix: "in/".into(), suffix: ".csv".into(), settle_secs }
    }

    fn obj(key: &str, etag: &str, modified: i64) -> ObjectMeta {
        ObjectMeta { key: key.into(), size: 10, etag: etag.into(), last_modified: modified }
    }

    fn keys(v: &[ObjectMeta]) -> Vec<&str> {
        v.iter().map(|m| m.key.as_str()).collect()
    }

    #[test]
    fn partial_looking_names_are_ignored() {
        for k in [
            "in/.a.csv.x1y2",
            "in/a.csv.part",
            "in/a.csv.tmp",
            "in/a.csv~",
            "in/.hidden/a.csv",
            "in/a.csv._COPYING_",
        ] {
            assert!(looks_partial(k), "{k}");
        }
        for k in ["in/a.csv", "in/sub/b.csv", "in/a.b.csv"] {
            assert!(!looks_partial(k), "{k}");
        }
    }

    #[test]
    fn an_atomic_put_is_ready_at_once_without_a_settle_time() {
        let mut w = Watch::new(&trigger(0), HashMap::new());
        let listing =
            [obj("in/a.csv", "e1", 1000), obj("in/b.txt", "e2", 1000), obj("other/c.csv", "e3", 1000)];
        assert_eq!(keys(&w.observe(&listing, 1000)), ["in/a.csv"], "prefix and suffix filter");
        assert_eq!(keys(&w.observe(&listing, 1100)), ["in/a.csv"], "ready until started");
        w.started(&listing[0]);
        assert!(w.observe(&listing, 1200).is_empty(), "one content, one run");
    }

    #[test]
    fn a_growing_file_waits_until_it_stays_unchanged_for_the_settle_time() {
        let mut w = Watch::new(&trigger(2), HashMap::new());
        // Being written: a new etag and a fresh mtime at every look.
        assert!(w.observe(&[obj("in/a.csv", "e1", 0)], 0).is_empty());
        assert!(w.observe(&[obj("in/a.csv", "e2", 900)], 1000).is_empty());
        assert!(w.observe(&[obj("in/a.csv", "e3", 1900)], 2000).is_empty());
        // Finished at 1900: unchanged since, but not yet for 2 s.
        assert!(w.observe(&[obj("in/a.csv", "e3", 1900)], 3000).is_empty());
        assert!(w.observe(&[obj("in/a.csv", "e3", 1900)], 3999).is_empty());
        assert_eq!(w.observe(&[obj("in/a.csv", "e3", 1900)], 4000).len(), 1);
        assert_eq!(w.settling(), 1);
    }

    #[test]
    fn an_old_mtime_alone_is_not_enough_the_content_must_be_seen_unchanged() {
        // `cp -p` sets an old mtime at the end of a copy: the etag changes, the clock restarts.
        let mut w = Watch::new(&trigger(2), HashMap::new());
        assert!(w.observe(&[obj("in/a.csv", "e1", 10)], 100_000).is_empty());
        assert!(w.observe(&[obj("in/a.csv", "e1", 10)], 101_000).is_empty());
        assert_eq!(w.observe(&[obj("in/a.csv", "e1", 10)], 102_000).len(), 1);
    }

    #[test]
    fn an_overwrite_is_a_new_put_and_a_known_content_is_not() {
        let done = HashMap::from([("in/a.csv".to_owned(), "e1".to_owned())]);
        let mut w = Watch::new(&trigger(0), done);
        assert!(w.observe(&[obj("in/a.csv", "e1", 0)], 10).is_empty(), "started before a restart");
        let ready = w.observe(&[obj("in/a.csv", "e2", 5)], 10);
        assert_eq!(ready.len(), 1);
        assert_eq!(object_key("inbox", &ready[0]), "s3:inbox/in/a.csv#e2");
    }

    #[test]
    fn the_baseline_starts_nothing_and_a_vanished_file_is_forgotten() {
        let mut w = Watch::new(&trigger(1), HashMap::new());
        let base = w.baseline(&[obj("in/old.csv", "e0", 0), obj("in/.x.csv", "e9", 0)]);
        assert_eq!(base, [("in/old.csv".to_owned(), "e0".to_owned())]);
        assert!(w.observe(&[obj("in/old.csv", "e0", 0), obj("in/new.csv", "e1", 0)], 5000).is_empty());
        assert_eq!(w.settling(), 1);
        assert!(w.observe(&[obj("in/old.csv", "e0", 0)], 5500).is_empty());
        assert_eq!(w.settling(), 0, "deleted while settling");
    }

    fn skip(key: &str, reason: SkipReason) -> Skipped {
        Skipped { key: key.into(), reason }
    }

    /// Issue 10, finding 9: a non-UTF-8 name logged a WARN at every poll and never showed.
    #[test]
    fn a_skipped_entry_is_reported_once_while_it_stays() {
        let mut w = Watch::new(&trigger(0), HashMap::new());
        let listing = [
            skip("in/caf\u{FFFD}.csv", SkipReason::NotUtf8),
            skip("in/link.csv", SkipReason::Symlink),
            skip("in/.hidden-link", SkipReason::Symlink),
            skip("other/link.csv", SkipReason::Symlink),
        ];
        let first: Vec<String> = w.newly_skipped(&listing).into_iter().map(|s| s.key).collect();
        assert_eq!(first, ["in/caf\u{FFFD}.csv", "in/link.csv"], "under the prefix, not hidden");
        for _ in 0..5 {
            assert!(w.newly_skipped(&listing).is_empty(), "reported once, not at every poll");
        }
        // The link goes away, then comes back: reported again; the other one is not.
        assert!(w.newly_skipped(&listing[..1]).is_empty());
        assert_eq!(w.newly_skipped(&listing), [listing[1].clone()]);
    }
}
