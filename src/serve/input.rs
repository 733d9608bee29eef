//! Which inputs a run started from the status page or the JSON API may name:
//! an object of the local buckets (`s3://bucket/key`), or a file under one of
//! the directories `batchfan serve` was started with (`--allow-input DIR`) —
//! nothing else, so that the Run button cannot read any file the server can.
//!
//! A path is checked twice: as written (without touching the filesystem, so a
//! refused path tells nothing about what exists), then canonicalised (so a
//! symlink or `..` out of an allowed directory is refused too). What goes on
//! to be imported is the canonical path. `batchfan run` and `batchfan trigger`
//! (the user's own commands) take any local file; `trigger` imports it into the
//! local buckets itself and hands the service an `s3://` uri.

use std::path::{Component, Path, PathBuf};

use crate::objects::ObjectRef;

/// Why an input was refused.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A path outside every `--allow-input` directory (or none was given).
    #[error("input {input:?} is not allowed: the status page and the API take s3://bucket/key of the local buckets, or a file under a directory given with --allow-input DIR ({allowed}): put the file there, or start serve with --allow-input DIR")]
    NotAllowed {
        /// The value as given.
        input: String,
        /// The allowed directories, or "none was given".
        allowed: String,
    },
    /// A path inside an allowed directory as written, but a symlink leads out of it.
    #[error("input {input:?} resolves outside the --allow-input directories ({allowed}) (a symlink, or the directory itself): give a file under one of them")]
    LeadsOut {
        /// The value as given.
        input: String,
        /// The allowed directories.
        allowed: String,
    },
    /// A relative path: relative to what would be the server's guess.
    #[error("input {0:?} is a relative path: give an absolute path under an --allow-input directory, or s3://bucket/key")]
    Relative(String),
    /// An allowed path that cannot be read.
    #[error("input {input:?} cannot be read: {source}: check the path")]
    Unreadable {
        /// The value as given.
        input: String,
        #[source]
        source: std::io::Error,
    },
    /// An `s3://` uri that is not an object of the local buckets.
    #[error("{0}")]
    BadObject(String),
    /// An `--allow-input` directory that is not one (at start).
    #[error("--allow-input {dir}: {problem}: give an existing directory")]
    BadDir {
        /// The directory as given.
        dir: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl InputError {
    /// Whether the input was refused by the allow-list (rather than malformed).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, InputError::NotAllowed { .. } | InputError::LeadsOut { .. })
    }
}

/// The inputs the pages and the API may name.
#[derive(Debug, Clone)]
pub struct InputPolicy {
    /// Each allowed directory as given (absolute, `.`/`..` resolved) and canonical.
    dirs: Vec<(PathBuf, PathBuf)>,
    /// The local buckets' directory, canonical.
    buckets: PathBuf,
}

/// `path` with `.` and `..` resolved by name only (no filesystem access).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl InputPolicy {
    /// Checks the `--allow-input` directories; `buckets` is the local buckets' directory.
    pub fn new(dirs: &[PathBuf], buckets: &Path) -> Result<InputPolicy, InputError> {
        let mut checked = Vec::new();
        for dir in dirs {
            let bad = |problem: String| InputError::BadDir { dir: dir.display().to_string(), problem };
            let canonical = dir.canonicalize().map_err(|e| bad(e.to_string()))?;
            if !canonical.is_dir() {
                return Err(bad("not a directory".into()));
            }
            let absolute = std::path::absolute(dir).map_err(|e| bad(e.to_string()))?;
            checked.push((lexical(&absolute), canonical));
        }
        let buckets = buckets.canonicalize().unwrap_or_else(|_| buckets.to_path_buf());
        Ok(InputPolicy { dirs: checked, buckets })
    }

    /// The allowed directories, for messages and the page.
    pub fn allowed(&self) -> String {
        if self.dirs.is_empty() {
            return "none was given".into();
        }
        let dirs: Vec<String> = self.dirs.iter().map(|(_, c)| c.display().to_string()).collect();
        dirs.join(", ")
    }

    /// What the Run button's input field takes.
    pub fn hint(&self) -> String {
        if self.dirs.is_empty() {
            "s3://bucket/key".into()
        } else {
            format!("s3://bucket/key, or a file under {}", self.allowed())
        }
    }

    /// Checks an input; returns what to import: the `s3://` uri, or the file's canonical path.
    pub fn check(&self, raw: &str) -> Result<String, InputError> {
        if raw.starts_with("s3://") {
            return self.check_object(raw);
        }
        let path = Path::new(raw.strip_prefix("file://").unwrap_or(raw));
        if !path.is_absolute() {
            return Err(InputError::Relative(raw.to_owned()));
        }
        let not_allowed = || InputError::NotAllowed { input: raw.to_owned(), allowed: self.allowed() };
        let written = lexical(path);
        if !self
            .dirs
            .iter()
            .any(|(given, canonical)| written.starts_with(given) || written.starts_with(canonical))
        {
            return Err(not_allowed());
        }
        let canonical =
            path.canonicalize().map_err(|source| InputError::Unreadable { input: raw.to_owned(), source })?;
        if !self.dirs.iter().any(|(_, dir)| canonical.starts_with(dir) && canonical != *dir) {
            return Err(InputError::LeadsOut { input: raw.to_owned(), allowed: self.allowed() });
        }
        Ok(canonical.to_string_lossy().into_owned())
    }

    /// An object of the local buckets, whose file (if there) is inside them.
    fn check_object(&self, raw: &str) -> Result<String, InputError> {
        let object: ObjectRef = raw.parse().map_err(InputError::BadObject)?;
        if object.key.starts_with('/') || object.key.split('/').any(|s| s == "." || s == "..") {
            return Err(InputError::BadObject(format!(
                "object key {:?} of input {raw:?} has a '.' or '..' segment or starts with '/': name an object of the local buckets",
                object.key
            )));
        }
        let file = self.buckets.join(&object.bucket).join(&object.key);
        if let Ok(canonical) = file.canonicalize() {
            if !canonical.starts_with(&self.buckets) {
                return Err(InputError::BadObject(format!(
                    "input {raw:?} leads out of the local buckets through a symlink: put the object itself there"
                )));
            }
        }
        Ok(raw.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, InputPolicy) {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        let buckets = dir.path().join("state/buckets");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::create_dir_all(buckets.join("in-bucket")).unwrap();
        std::fs::write(allowed.join("sub/in.csv"), "a\n").unwrap();
        std::fs::write(dir.path().join("secret.csv"), "s\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.csv"), allowed.join("link.csv")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.csv"), buckets.join("in-bucket/link")).unwrap();
        let policy = InputPolicy::new(&[allowed], &buckets).unwrap();
        (dir, policy)
    }

    #[test]
    fn a_file_under_an_allowed_directory_is_taken_by_its_canonical_path() {
        let (dir, policy) = setup();
        let root = dir.path().canonicalize().unwrap();
        let given = format!("{}/allowed/sub/../sub/in.csv", dir.path().display());
        assert_eq!(policy.check(&given).unwrap(), format!("{}/allowed/sub/in.csv", root.display()));
        assert_eq!(policy.check("s3://in-bucket/x.csv").unwrap(), "s3://in-bucket/x.csv");
    }

    #[test]
    fn paths_out_of_the_allowed_directories_are_refused_naming_the_value_and_the_fix() {
        let (dir, policy) = setup();
        let base = dir.path().display();
        for (raw, forbidden) in [
            ("/etc/shadow".to_owned(), true),
            ("file:///etc/passwd".to_owned(), true),
            (format!("{base}/allowed/../secret.csv"), true),
            (format!("{base}/allowed/link.csv"), true),
            (format!("{base}/allowed"), true),
            ("relative/in.csv".to_owned(), false),
            (format!("{base}/allowed/missing.csv"), false),
            ("s3://in-bucket/link".to_owned(), false),
            ("s3://in-bucket/../../../../etc/shadow".to_owned(), false),
        ] {
            let e = policy.check(&raw).expect_err(&raw);
            assert_eq!(e.is_forbidden(), forbidden, "{raw}: {e}");
            let text = e.to_string();
            assert!(text.contains(&format!("{raw:?}")), "{text}");
            if forbidden {
                assert!(text.contains("--allow-input"), "{text}");
            }
        }
    }

    #[test]
    fn without_allow_input_no_path_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let policy = InputPolicy::new(&[], &dir.path().join("buckets")).unwrap();
        let e = policy.check("/etc/shadow").unwrap_err();
        assert!(e.to_string().contains("(none was given)"), "{e}");
        assert_eq!(policy.hint(), "s3://bucket/key");
        let e = InputPolicy::new(&[dir.path().join("nope")], dir.path()).unwrap_err();
        assert!(e.to_string().starts_with("--allow-input "), "{e}");
    }
}
