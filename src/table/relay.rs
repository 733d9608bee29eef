//! The table relay: a local job process reaches the tables through the
//! service that already holds them open, over a Unix socket, instead of
//! opening their SQLite files itself.
//!
//! A one-item job child makes one or two calls on batchfan's table (read its
//! work item or the previous stage's result, store its result). Opening a
//! shard file for them — the connection, its pragmas, the schema check, a
//! write transaction, closing — cost about 2 ms per child, more than half of
//! what such a child cost in all. Through the relay the same calls cost a
//! socket round trip each; the service runs them on its open connections.
//!
//! A bulk writer gains too: two `orders` children writing one table from two
//! processes each found, at every transaction, that the other had written
//! the shard since, so SQLite threw its page cache for that file away and
//! read the index pages again, and they waited on each other's file locks.
//! Through the relay one process writes every table: the children parse in
//! parallel, the service's connections keep their caches.
//!
//! - [`RelayServer`] listens on a socket under the state directory (mode 0600
//!   in the 0700 state directory: only the owner may connect) and runs each
//!   request on the service's [`SqliteTable`]. The local backend starts one
//!   and passes its path to every job in [`crate::env::TABLE_SOCKET`].
//! - [`RelayTable`] is the job's [`Table`]: every call goes over the socket.
//!   When the socket cannot be reached at the first call (no service: the
//!   job was started by hand, or it outlived its service), it uses SQLite
//!   directly, which is what jobs did before the relay existed.
//!
//! The semantics are the table's: each request is one [`Table`] call, the
//! reply comes once it is stored. A connection lost in the middle of a call
//! is [`PortError::Unavailable`] (retryable), as a network error is from
//! DynamoDB: the write may or may not have happened. One job's calls take
//! turns on its one connection.
//!
//! The wire format is a 4-byte little-endian length, then that many bytes of
//! JSON ([`Request`] one way, [`Reply`] the other). [`Request::PutRows`] is
//! followed by its rows' packed buffer and offsets as raw bytes
//! ([`Rows::packed`]): a million rows are not worth escaping into JSON and
//! parsing back.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
    sync::Mutex,
    task::JoinHandle,
};
use tracing::debug;

use super::{sqlite::SqliteTable, Condition, Item, Key, Rows, Table, Written};
use crate::error::{PortError, PortResult};

/// Largest frame (and packed rows buffer) either side accepts: above any
/// batch a job sends (`orders` sends 50,000 rows, ~10 MB, at a time), small
/// enough that a stray writer cannot make the service allocate without
/// bound. A job's larger call goes to SQLite directly.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// The longest path a Unix socket address holds (`sun_path`, less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// One [`Table`] call.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    Put {
        table: String,
        item: Item,
        condition: Condition,
    },
    Get {
        table: String,
        key: Key,
    },
    PutBatch {
        table: String,
        items: Vec<Item>,
    },
    /// Followed by `buf_len` bytes of [`Rows::packed`]'s buffer, then its
    /// `ends` offsets, 4 bytes each, little-endian.
    PutRows {
        table: String,
        names: Vec<String>,
        buf_len: usize,
        ends: usize,
    },
    Query {
        table: String,
        pk: String,
        sk_prefix: String,
    },
    DeleteBatch {
        table: String,
        keys: Vec<Key>,
    },
}

/// The answer to one [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Written(Written),
    Item(Option<Item>),
    Items(Vec<Item>),
    Done,
    Failed { kind: ErrorKind, message: String },
}

/// A [`PortError`]'s kind, on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum ErrorKind {
    Invalid,
    NotFound,
    Throttled,
    Unavailable,
    Backend,
}

impl Reply {
    fn failed(e: &PortError) -> Reply {
        let kind = match e {
            PortError::Invalid(_) => ErrorKind::Invalid,
            PortError::NotFound(_) => ErrorKind::NotFound,
            PortError::Throttled(_) => ErrorKind::Throttled,
            PortError::Unavailable(_) => ErrorKind::Unavailable,
            PortError::Backend(_) => ErrorKind::Backend,
        };
        Reply::Failed { kind, message: e.message().to_owned() }
    }
}

impl ErrorKind {
    fn error(self, message: String) -> PortError {
        match self {
            ErrorKind::Invalid => PortError::invalid(message),
            ErrorKind::NotFound => PortError::not_found(message),
            ErrorKind::Throttled => PortError::throttled(message),
            ErrorKind::Unavailable => PortError::unavailable(message),
            ErrorKind::Backend => PortError::backend(message),
        }
    }
}

/// `value` as a frame: its length, then its JSON; `None` when it is over `limit` bytes.
fn encode_frame(value: &impl Serialize, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let Some(len) = u32::try_from(body.len()).ok().filter(|&n| n as usize <= limit) else { return Ok(None) };
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(Some(frame))
}

/// Whether `rows` fit what the relay's other side accepts.
fn rows_fit(rows: &Rows, limit: usize) -> bool {
    let (_, buf, ends) = rows.packed();
    buf.len() <= limit && ends.len().saturating_mul(4) <= limit
}

/// Writes what follows a [`Request::PutRows`]: the packed buffer, then the offsets.
async fn write_rows(stream: &mut UnixStream, rows: &Rows) -> std::io::Result<()> {
    let (_, buf, ends) = rows.packed();
    stream.write_all(buf.as_bytes()).await?;
    let mut raw = Vec::with_capacity(ends.len() * 4);
    ends.iter().for_each(|e| raw.extend_from_slice(&e.to_le_bytes()));
    stream.write_all(&raw).await
}

/// Reads one frame; `None` at a clean end of stream before it.
async fn read_frame<T: for<'de> Deserialize<'de>>(stream: &mut UnixStream) -> std::io::Result<Option<T>> {
    read_frame_within(stream, MAX_FRAME).await
}

/// Reads one frame of at most `limit` bytes; `None` at a clean end of stream before it.
async fn read_frame_within<T: for<'de> Deserialize<'de>>(
    stream: &mut UnixStream,
    limit: usize,
) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is over the relay's {limit}"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Reads the raw rows that follow a [`Request::PutRows`] header: `Ok(Err)`
/// when they were read but are not valid rows (the connection stays usable).
async fn read_rows(
    stream: &mut UnixStream,
    names: Vec<String>,
    buf_len: usize,
    ends: usize,
    limit: usize,
) -> std::io::Result<Result<Rows, PortError>> {
    let too_big = |what: &str, n: usize| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("rows with {what} {n} are over the relay's {limit} bytes"),
        )
    };
    if buf_len > limit {
        return Err(too_big("a buffer of", buf_len));
    }
    if ends.saturating_mul(4) > limit {
        return Err(too_big("offsets", ends));
    }
    let mut buf = vec![0u8; buf_len];
    stream.read_exact(&mut buf).await?;
    let mut raw = vec![0u8; ends * 4];
    stream.read_exact(&mut raw).await?;
    let ends = raw.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok(match String::from_utf8(buf) {
        Ok(buf) => Rows::from_packed(names, buf, ends),
        Err(e) => Err(PortError::invalid(format!("packed rows are not UTF-8: {e}"))),
    })
}

/// Runs one request on `table` (a [`Request::PutRows`] with its `rows`).
async fn answer(table: &SqliteTable, request: Request, rows: Option<Result<Rows, PortError>>) -> Reply {
    let out = match request {
        Request::Put { table: t, item, condition } => {
            table.put(&t, item, condition).await.map(Reply::Written)
        }
        Request::Get { table: t, key } => table.get(&t, &key).await.map(Reply::Item),
        Request::PutBatch { table: t, items } => table.put_batch(&t, items).await.map(|()| Reply::Done),
        Request::Query { table: t, pk, sk_prefix } => {
            table.query(&t, &pk, &sk_prefix).await.map(Reply::Items)
        }
        Request::DeleteBatch { table: t, keys } => table.delete_batch(&t, keys).await.map(|()| Reply::Done),
        Request::PutRows { table: t, .. } => match rows {
            Some(Ok(rows)) => table.put_rows(&t, rows).await.map(|()| Reply::Done),
            Some(Err(e)) => Err(e),
            None => Err(PortError::invalid("PutRows came without its rows")),
        },
    };
    out.unwrap_or_else(|e| Reply::failed(&e))
}

/// The listening side: serves [`Request`]s on the local service's table.
/// Dropping it stops listening and removes the socket file.
pub struct RelayServer {
    path: PathBuf,
    accept: JoinHandle<()>,
    calls: Arc<AtomicU64>,
}

impl RelayServer {
    /// Listens in `dir` (created, mode 0700) on a socket of its own, named by
    /// process and sequence so that two services on one state directory never
    /// share one. Sockets left by processes that died are removed. `None` when
    /// the path would be too long for a Unix socket address: jobs then open
    /// the table themselves.
    pub fn start(dir: &Path, table: SqliteTable) -> std::io::Result<Option<RelayServer>> {
        RelayServer::start_within(dir, table, MAX_FRAME)
    }

    /// [`RelayServer::start`], taking and giving frames of at most `limit` bytes.
    fn start_within(dir: &Path, table: SqliteTable, limit: usize) -> std::io::Result<Option<RelayServer>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("table-{}-{}.sock", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(name);
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            debug!(path = %path.display(), "no table relay: the path is too long for a Unix socket");
            return Ok(None);
        }
        std::fs::create_dir_all(dir)?;
        set_mode(dir, 0o700)?;
        remove_dead_sockets(dir);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        set_mode(&path, 0o600)?;
        let calls = Arc::new(AtomicU64::new(0));
        let counter = calls.clone();
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        drop(tokio::spawn(serve_connection(stream, table.clone(), counter.clone(), limit)))
                    }
                    // Out of file descriptors, say: jobs wait in connect's backlog meanwhile.
                    Err(e) => {
                        debug!("table relay: accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        });
        Ok(Some(RelayServer { path, accept, calls }))
    }

    /// The socket jobs connect to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Table calls answered so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Drop for RelayServer {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Removes the sockets in `dir` nobody listens on any more.
fn remove_dead_sockets(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "sock")
            && std::os::unix::net::UnixStream::connect(&path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

async fn serve_connection(mut stream: UnixStream, table: SqliteTable, calls: Arc<AtomicU64>, limit: usize) {
    loop {
        let request = match read_frame_within::<Request>(&mut stream, limit).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(e) => {
                debug!("table relay: dropping a connection: {e}");
                return;
            }
        };
        let rows = match &request {
            Request::PutRows { names, buf_len, ends, .. } => {
                match read_rows(&mut stream, names.clone(), *buf_len, *ends, limit).await {
                    Ok(rows) => Some(rows),
                    Err(e) => {
                        debug!("table relay: dropping a connection: {e}");
                        return;
                    }
                }
            }
            _ => None,
        };
        let reply = answer(&table, request, rows).await;
        calls.fetch_add(1, Ordering::Relaxed);
        let too_big = || {
            Reply::Failed {
            kind: ErrorKind::Invalid,
            message: format!("the answer is over the relay's {limit} bytes: ask for less at a time (a narrower sort key prefix)"),
        }
        };
        let frame = match encode_frame(&reply, limit) {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => encode_frame(&too_big(), MAX_FRAME).map(Option::unwrap_or_default),
            Err(e) => Err(e),
        };
        let sent = match frame {
            Ok(frame) => stream.write_all(&frame).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            debug!("table relay: a job went away before its reply: {e}");
            return;
        }
    }
}

/// A job's [`Table`] over the relay: every call goes to the service, or to
/// SQLite directly when the service cannot be reached.
pub struct RelayTable {
    socket: PathBuf,
    direct: SqliteTable,
    /// The connection; `Err(())` once connecting failed (SQLite directly from then on).
    conn: Mutex<Option<Result<UnixStream, ()>>>,
    /// Largest frame or rows buffer sent ([`MAX_FRAME`]).
    limit: usize,
}

impl RelayTable {
    /// Calls go to the service listening on `socket`, or to `direct` if none does.
    pub fn new(socket: impl Into<PathBuf>, direct: SqliteTable) -> RelayTable {
        RelayTable { socket: socket.into(), direct, conn: Mutex::new(None), limit: MAX_FRAME }
    }

    /// Sends `request` (then `rows`, packed) if the service is there;
    /// `Ok(None)`: the caller goes to SQLite directly — also for a request
    /// larger than the relay takes ([`MAX_FRAME`]), which SQLite still stores.
    async fn call(
        &self,
        request: impl FnOnce() -> Request,
        rows: Option<&Rows>,
    ) -> PortResult<Option<Reply>> {
        let mut conn = self.conn.lock().await;
        if conn.is_none() {
            *conn = Some(UnixStream::connect(&self.socket).await.map_err(|e| {
                debug!(socket = %self.socket.display(), "no table relay ({e}): using SQLite directly");
            }));
        }
        let Some(Ok(stream)) = conn.as_mut() else { return Ok(None) };
        let encoded = encode_frame(&request(), self.limit)
            .map_err(|e| PortError::invalid(format!("cannot encode a table call: {e}")).caused_by(e))?;
        let Some(frame) = encoded.filter(|_| rows.is_none_or(|rows| rows_fit(rows, self.limit))) else {
            return Ok(None);
        };
        let lost = |e: std::io::Error| {
            PortError::unavailable(format!(
                "the local service's table relay {} went away during a call ({e}); the call may or may not have been applied",
                self.socket.display()
            ))
            .caused_by(e)
        };
        let mut sent = stream.write_all(&frame).await;
        if let (Ok(()), Some(rows)) = (&sent, rows) {
            sent = write_rows(stream, rows).await;
        }
        let reply = match sent {
            Ok(()) => read_frame::<Reply>(stream).await,
            Err(e) => Err(e),
        };
        match reply {
            Ok(Some(Reply::Failed { kind, message })) => Err(kind.error(message)),
            Ok(Some(reply)) => Ok(Some(reply)),
            Ok(None) => {
                *conn = None;
                Err(lost(std::io::ErrorKind::UnexpectedEof.into()))
            }
            Err(e) => {
                *conn = None;
                Err(lost(e))
            }
        }
    }
}

fn unexpected(reply: Reply) -> PortError {
    PortError::backend(format!("the table relay answered with {reply:?}, which does not fit the call"))
}

#[async_trait]
impl Table for RelayTable {
    async fn put(&self, table: &str, item: Item, condition: Condition) -> PortResult<Written> {
        let mut pending = Some((item, condition));
        let request = || {
            let (item, condition) = pending.take().expect("one request per call");
            Request::Put { table: table.to_owned(), item, condition }
        };
        match self.call(request, None).await? {
            Some(Reply::Written(w)) => Ok(w),
            Some(other) => Err(unexpected(other)),
            None => {
                let (item, condition) = pending.expect("not sent");
                self.direct.put(table, item, condition).await
            }
        }
    }

    async fn get(&self, table: &str, key: &Key) -> PortResult<Option<Item>> {
        match self.call(|| Request::Get { table: table.to_owned(), key: key.clone() }, None).await? {
            Some(Reply::Item(item)) => Ok(item),
            Some(other) => Err(unexpected(other)),
            None => self.direct.get(table, key).await,
        }
    }

    async fn put_batch(&self, table: &str, items: Vec<Item>) -> PortResult<()> {
        let mut pending = Some(items);
        let request =
            || Request::PutBatch { table: table.to_owned(), items: pending.take().expect("one request") };
        match self.call(request, None).await? {
            Some(Reply::Done) => Ok(()),
            Some(other) => Err(unexpected(other)),
            None => self.direct.put_batch(table, pending.expect("not sent")).await,
        }
    }

    async fn put_rows(&self, table: &str, rows: Rows) -> PortResult<()> {
        let (names, buf, ends) = rows.packed();
        let request = || Request::PutRows {
            table: table.to_owned(),
            names: names.to_vec(),
            buf_len: buf.len(),
            ends: ends.len(),
        };
        match self.call(request, Some(&rows)).await? {
            Some(Reply::Done) => Ok(()),
            Some(other) => Err(unexpected(other)),
            None => self.direct.put_rows(table, rows).await,
        }
    }

    async fn query(&self, table: &str, pk: &str, sk_prefix: &str) -> PortResult<Vec<Item>> {
        let request =
            || Request::Query { table: table.to_owned(), pk: pk.to_owned(), sk_prefix: sk_prefix.to_owned() };
        match self.call(request, None).await? {
            Some(Reply::Items(items)) => Ok(items),
            Some(other) => Err(unexpected(other)),
            None => self.direct.query(table, pk, sk_prefix).await,
        }
    }

    async fn delete(&self, table: &str, key: &Key) -> PortResult<()> {
        self.delete_batch(table, vec![key.clone()]).await
    }

    async fn delete_batch(&self, table: &str, keys: Vec<Key>) -> PortResult<()> {
        let mut pending = Some(keys);
        let request =
            || Request::DeleteBatch { table: table.to_owned(), keys: pending.take().expect("one request") };
        match self.call(request, None).await? {
            Some(Reply::Done) => Ok(()),
            Some(other) => Err(unexpected(other)),
            None => self.direct.delete_batch(table, pending.expect("not sent")).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::table::Cell;

    async fn write_frame(stream: &mut UnixStream, value: &impl Serialize) -> std::io::Result<()> {
        stream.write_all(&encode_frame(value, MAX_FRAME)?.expect("a small frame")).await
    }

    fn item(pk: &str, sk: &str) -> Item {
        Item::new(Key::new(pk, sk)).with("v", 1)
    }

    async fn served(dir: &Path) -> (RelayServer, RelayTable, SqliteTable) {
        let tables = SqliteTable::open(&dir.join("tables")).unwrap();
        let server = RelayServer::start(&dir.join("relay"), tables.clone()).unwrap().expect("a short path");
        let client = RelayTable::new(server.path(), SqliteTable::open(&dir.join("tables")).unwrap());
        (server, client, tables)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_call_goes_through_the_service() {
        let dir = tempfile::tempdir().unwrap();
        let (server, client, tables) = served(dir.path()).await;
        assert_eq!(
            client.put("batchfan", item("run#1", "a"), Condition::NotExists).await.unwrap(),
            Written::Yes
        );
        assert!(matches!(
            client.put("batchfan", item("run#1", "a"), Condition::NotExists).await.unwrap(),
            Written::ConditionFailed(Some(_))
        ));
        assert_eq!(tables.get("batchfan", &Key::new("run#1", "a")).await.unwrap(), Some(item("run#1", "a")));
        assert_eq!(client.query("batchfan", "run#1", "").await.unwrap().len(), 1);
        assert_eq!(server.calls(), 3);
        // A job's own table and a bulk write too: the rows go packed.
        let mut rows = Rows::new(["v", "note"]).unwrap();
        for i in 0..1000 {
            rows.push(&format!("o#{i}"), "x", [Cell::Json(&serde_json::json!(i)), Cell::Str("é\"")]).unwrap();
        }
        let items = rows.to_items().unwrap();
        client.put_rows("Orders", rows).await.unwrap();
        assert_eq!(server.calls(), 4);
        assert_eq!(tables.query("Orders", "o#999", "").await.unwrap(), vec![items[999].clone()]);
        client.delete("batchfan", &Key::new("run#1", "a")).await.unwrap();
        assert_eq!(tables.get("batchfan", &Key::new("run#1", "a")).await.unwrap(), None);
        // Errors keep their kind across the socket.
        let err = client.put("batchfan", Item::new(Key::new("", "a")), Condition::None).await.unwrap_err();
        assert!(matches!(err, PortError::Invalid(_)), "{err:?}");
        assert_eq!(server.calls(), 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_is_over_the_frame_limit_is_stored_directly_or_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let tables = SqliteTable::open(&dir.path().join("tables")).unwrap();
        let server =
            RelayServer::start_within(&dir.path().join("relay"), tables.clone(), 4096).unwrap().unwrap();
        let client = RelayTable { limit: 4096, ..RelayTable::new(server.path(), tables.clone()) };
        // A write larger than the relay takes: SQLite stores it, not the service.
        let mut rows = Rows::new(["v"]).unwrap();
        for i in 0..200 {
            rows.push("run#1", &format!("item#{i:04}"), [Cell::Str("a value of some length")]).unwrap();
        }
        client.put_rows("batchfan", rows).await.unwrap();
        assert_eq!(server.calls(), 0);
        // An answer larger than the relay gives: refused, naming the fix.
        let big = RelayTable::new(server.path(), tables.clone());
        let err = big.query("batchfan", "run#1", "item#").await.unwrap_err();
        assert!(matches!(err, PortError::Invalid(_)) && err.message().contains("narrower"), "{err}");
        assert_eq!(big.query("batchfan", "run#1", "item#0001").await.unwrap().len(), 1);
        assert_eq!(server.calls(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_socket_is_private_and_goes_with_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let relay = dir.path().join("relay");
        std::fs::create_dir_all(&relay).unwrap();
        // A socket a dead process left behind is removed; a live one is not.
        let stale = relay.join("table-1-0.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let (server, _client, _) = served(dir.path()).await;
        assert!(!stale.exists(), "a dead socket is removed");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&relay), mode(server.path())), (0o700, 0o600));
        let (second, _, _) = served(dir.path()).await;
        assert!(server.path().exists() && second.path() != server.path(), "two servers, two sockets");
        let path = server.path().to_path_buf();
        drop(server);
        assert!(!path.exists(), "dropping the server removes its socket");
        assert!(second.path().exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_service_the_job_opens_the_table_itself() {
        let dir = tempfile::tempdir().unwrap();
        let direct = SqliteTable::open(&dir.path().join("tables")).unwrap();
        let client = RelayTable::new(dir.path().join("relay/gone.sock"), direct.clone());
        client.put("batchfan", item("run#1", "a"), Condition::None).await.unwrap();
        assert_eq!(direct.get("batchfan", &Key::new("run#1", "a")).await.unwrap(), Some(item("run#1", "a")));
        assert!(
            RelayServer::start(&dir.path().join("x".repeat(120)), direct).unwrap().is_none(),
            "too long a path"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_lost_mid_call_is_retryable_and_the_server_survives_garbage() {
        let dir = tempfile::tempdir().unwrap();
        // A "service" that reads the request and hangs up without answering.
        let path = dir.path().join("rude.sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = read_frame::<Request>(&mut s).await;
            }
        });
        let client = RelayTable::new(&path, SqliteTable::open(&dir.path().join("t")).unwrap());
        let err = client.get("batchfan", &Key::new("run#1", "a")).await.unwrap_err();
        assert!(err.retryable() && err.message().contains("went away"), "{err:?}");

        // A frame over the limit or not JSON closes that connection only.
        let (server, client, _) = served(dir.path()).await;
        for garbage in [u32::MAX.to_le_bytes().to_vec(), [&3u32.to_le_bytes()[..], b"{x]"].concat()] {
            let mut raw = UnixStream::connect(server.path()).await.unwrap();
            raw.write_all(&garbage).await.unwrap();
            let mut rest = Vec::new();
            raw.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "no answer to garbage");
        }
        client.put("batchfan", item("run#1", "a"), Condition::None).await.unwrap();
        assert_eq!(server.calls(), 1);

        // Rows that are not valid are refused by name, and the connection goes on.
        let mut raw = UnixStream::connect(server.path()).await.unwrap();
        let header =
            Request::PutRows { table: "Orders".into(), names: vec!["v".into()], buf_len: 3, ends: 3 };
        write_frame(&mut raw, &header).await.unwrap();
        raw.write_all(b"p\xffv").await.unwrap();
        raw.write_all(&[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]).await.unwrap();
        match read_frame::<Reply>(&mut raw).await.unwrap() {
            Some(Reply::Failed { kind: ErrorKind::Invalid, message }) => {
                assert!(message.contains("UTF-8"), "{message}")
            }
            other => panic!("expected an invalid-request reply, got {other:?}"),
        }
        write_frame(&mut raw, &Request::Get { table: "batchfan".into(), key: Key::new("run#1", "a") })
            .await
            .unwrap();
        assert!(matches!(read_frame::<Reply>(&mut raw).await.unwrap(), Some(Reply::Item(Some(_)))));
    }
}
