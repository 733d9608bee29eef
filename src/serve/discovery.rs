//! How `batchfan trigger` finds a running `batchfan serve`: the service writes
//! `serve.json` (address, token, login URL, pid; readable by its user only) into
//! the state directory when it is ready and removes it when it stops. It also
//! keeps `pipelines.json` (pipeline name → spec file), so `batchfan trigger NAME`
//! can run a pipeline directly when no service is up.

use std::{
    collections::BTreeMap,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::ServeError;

/// File name of the running service's address and token.
pub const SERVE_FILE: &str = "serve.json";
/// File name of the served pipelines' spec files.
pub const PIPELINES_FILE: &str = "pipelines.json";

/// What `serve.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeInfo {
    pub pid: u32,
    /// `127.0.0.1:PORT`.
    pub address: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The login token: `Authorization: Bearer` of the JSON API.
    pub token: String,
    /// The URL that logs a browser in (`http://127.0.0.1:PORT/login?token=...`); none with `--no-auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    pub pipelines: Vec<String>,
    /// `http://127.0.0.1:PORT` of the AWS Batch API (`--batch-api`): no login, point `endpoint_url` here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_api_url: Option<String>,
}

impl ServeInfo {
    /// `auth`: whether the pages need the login (not with `--no-auth`).
    pub fn new<'a>(
        address: SocketAddr,
        token: &str,
        auth: bool,
        specs: impl Iterator<Item = &'a crate::spec::PipelineSpec>,
    ) -> ServeInfo {
        // A server on every interface is reached (and logged in to) through the loopback.
        let reach = if address.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), address.port())
        } else {
            address
        };
        ServeInfo {
            pid: std::process::id(),
            address,
            url: format!("http://{address}"),
            token: token.to_owned(),
            login_url: auth.then(|| format!("http://{reach}/login?token={token}")),
            pipelines: specs.map(|s| s.name.clone()).collect(),
            batch_api_url: None,
        }
    }
}

/// Writes `contents` to `path` atomically, readable by this user only.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Writes `serve.json` into the state directory `root`.
pub fn write(root: &Path, info: &ServeInfo) -> Result<(), ServeError> {
    let path = root.join(SERVE_FILE);
    let text = serde_json::to_vec_pretty(info)
        .map_err(|e| ServeError::File { path: path.clone(), source: e.into() })?;
    write_private(&path, &text).map_err(|source| ServeError::File { path, source })
}

/// Removes `serve.json` if it is still this process's.
pub fn remove(root: &Path, info: &ServeInfo) {
    if read(root).is_some_and(|on_disk| on_disk.pid == info.pid && on_disk.token == info.token) {
        let _ = std::fs::remove_file(root.join(SERVE_FILE));
    }
}

/// The `serve.json` of a state directory, if there is a readable one.
pub fn read(root: &Path) -> Option<ServeInfo> {
    let text = std::fs::read(root.join(SERVE_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Records which spec file each pipeline comes from (merged with what is there).
pub fn write_pipelines(root: &Path, files: &BTreeMap<String, PathBuf>) -> Result<(), ServeError> {
    let mut all = read_pipelines(root);
    all.extend(files.iter().map(|(k, v)| (k.clone(), v.clone())));
    let path = root.join(PIPELINES_FILE);
    let text = serde_json::to_vec_pretty(&all)
        .map_err(|e| ServeError::File { path: path.clone(), source: e.into() })?;
    write_private(&path, &text).map_err(|source| ServeError::File { path, source })
}

/// Pipeline name → spec file, as recorded by earlier `batchfan serve` runs.
pub fn read_pipelines(root: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::read(root.join(PIPELINES_FILE))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_json_is_private_and_removed_only_by_its_writer() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let info = ServeInfo {
            pid: std::process::id(),
            address: "127.0.0.1:4567".parse().unwrap(),
            url: "http://127.0.0.1:4567".into(),
            token: "t1".into(),
            login_url: Some("http://127.0.0.1:4567/login?token=t1".into()),
            pipelines: vec!["orders".into()],
            batch_api_url: Some("http://127.0.0.1:4568".into()),
        };
        write(dir.path(), &info).unwrap();
        assert_eq!(read(dir.path()), Some(info.clone()));
        let mode = std::fs::metadata(dir.path().join(SERVE_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = ServeInfo { token: "t2".into(), ..info.clone() };
        remove(dir.path(), &other);
        assert!(read(dir.path()).is_some(), "another process's file stays");
        remove(dir.path(), &info);
        assert!(read(dir.path()).is_none());
    }

    #[test]
    fn pipelines_json_merges() {
        let dir = tempfile::tempdir().unwrap();
        write_pipelines(dir.path(), &BTreeMap::from([("a".into(), PathBuf::from("/x/a.toml"))])).unwrap();
        write_pipelines(dir.path(), &BTreeMap::from([("b".into(), PathBuf::from("/x/b.toml"))])).unwrap();
        assert_eq!(read_pipelines(dir.path()).len(), 2);
    }
}
