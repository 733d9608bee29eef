//! The log port: the end of a job attempt's log (a file locally; on AWS a
//! pointer to its CloudWatch Logs stream, [`crate::aws::CloudWatchPointer`]).

use async_trait::async_trait;

use crate::error::PortResult;

/// Reads the end of a job attempt's log (a file locally, CloudWatch on AWS).
#[async_trait]
pub trait LogTail: Send + Sync {
    /// The last `lines` lines of `log_stream`.
    async fn tail(&self, log_stream: &str, lines: usize) -> PortResult<String>;
}

/// Log tails from local files.
pub struct FileLogTail;

#[async_trait]
impl LogTail for FileLogTail {
    async fn tail(&self, log_stream: &str, lines: usize) -> PortResult<String> {
        let text = match tokio::fs::read(log_stream).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(e.into()),
        };
        let from = text.len().saturating_sub(16 * 1024);
        let text = String::from_utf8_lossy(&text[from..]);
        let all: Vec<&str> = text.lines().collect();
        Ok(all[all.len().saturating_sub(lines)..].join("\n"))
    }
}
