//! Where `batchfan logs` reads a job's attempts from: the engine's log files
//! in the state directory, or CloudWatch Logs on AWS. Both give the job's
//! status, how many attempts have begun, and an attempt's new lines since the
//! last read — what printing once and following (`--follow`) need.

use std::{collections::BTreeMap, io::Read as _, path::PathBuf, time::Duration};

use async_trait::async_trait;

use crate::{
    aws::job_logs::{CloudWatchLogs, JobStreams},
    batch::JobStatus,
    engine::{log_path, peek},
};

/// Looks at one ended attempt whose stream CloudWatch does not show yet
/// (batch-api ships a log when the attempt ends; AWS lags a few seconds).
const SETTLE_LOOKS: u32 = 30;
const SETTLE_PAUSE: Duration = Duration::from_millis(500);

/// What a look at the job found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// `None` while the backend does not know the job yet.
    pub status: Option<JobStatus>,
    /// Attempts begun, numbered 1..=attempts; each has a log (locally, no
    /// file when it printed nothing: an empty log).
    pub attempts: u32,
}

/// A job's logs on one backend.
#[async_trait]
pub trait Source: Send {
    /// The job's status and attempts now.
    async fn look(&mut self) -> anyhow::Result<Look>;
    /// The lines of `attempt` not read yet. `ended`: the attempt is over, so
    /// everything (a last line without a newline too) is there, or soon will be.
    async fn read(&mut self, attempt: u32, ended: bool) -> anyhow::Result<Vec<String>>;
    /// Where attempt `n`'s log is, for the header.
    fn place(&self, attempt: u32) -> String;
}

/// The embedded backend: `STATE/logs/...` files, the status from `engine.sqlite`.
pub struct LocalSource {
    state: PathBuf,
    job_id: String,
    /// Per attempt: bytes read so far, and a line read without its newline yet.
    read: BTreeMap<u32, (u64, Vec<u8>)>,
}

impl LocalSource {
    pub fn new(state: PathBuf, job_id: String) -> LocalSource {
        LocalSource { state, job_id, read: BTreeMap::new() }
    }
}

#[async_trait]
impl Source for LocalSource {
    async fn look(&mut self) -> anyhow::Result<Look> {
        // The status first: a job seen ended has written all of its logs.
        let status = peek::unit_status(&self.state, &self.job_id)?;
        let attempts = peek::attempts_begun(&self.state, &self.job_id)?;
        Ok(Look { status, attempts })
    }

    async fn read(&mut self, attempt: u32, ended: bool) -> anyhow::Result<Vec<String>> {
        let path = log_path(&self.state, &self.job_id, attempt);
        let (offset, partial) = self.read.entry(attempt).or_default();
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(*offset))?;
        let mut bytes = std::mem::take(partial);
        let got = file.read_to_end(&mut bytes)?;
        *offset += got as u64;
        let complete = match bytes.iter().rposition(|b| *b == b'\n') {
            _ if ended => bytes.len(),
            Some(end) => end + 1,
            None => 0,
        };
        *partial = bytes.split_off(complete);
        Ok(String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect())
    }

    fn place(&self, attempt: u32) -> String {
        log_path(&self.state, &self.job_id, attempt).display().to_string()
    }
}

/// AWS: DescribeJobs for the status and streams, GetLogEvents for the lines.
pub struct AwsSource {
    logs: CloudWatchLogs,
    job_id: String,
    job: Option<JobStreams>,
    group: Option<String>,
    /// Per attempt: the forward token of the next read, and whether any line came.
    read: BTreeMap<u32, (Option<String>, bool)>,
}

impl AwsSource {
    pub fn new(logs: CloudWatchLogs, job_id: String) -> AwsSource {
        AwsSource { logs, job_id, job: None, group: None, read: BTreeMap::new() }
    }

    fn stream(&self, attempt: u32) -> Option<&str> {
        let job = self.job.as_ref()?;
        job.streams.get(attempt.checked_sub(1)? as usize)?.as_deref()
    }
}

#[async_trait]
impl Source for AwsSource {
    async fn look(&mut self) -> anyhow::Result<Look> {
        let job = self.logs.job_streams(&self.job_id).await?;
        if self.group.is_none() {
            self.group = Some(self.logs.log_group(&job.job_definition).await?);
        }
        let look = Look { status: Some(job.status), attempts: job.streams.len() as u32 };
        self.job = Some(job);
        Ok(look)
    }

    async fn read(&mut self, attempt: u32, ended: bool) -> anyhow::Result<Vec<String>> {
        let (Some(stream), Some(group)) = (self.stream(attempt).map(str::to_owned), self.group.clone())
        else {
            return Ok(Vec::new());
        };
        let (token, seen) = self.read.entry(attempt).or_default().clone();
        let mut page = self.logs.read(&group, &stream, token.clone()).await?;
        // An ended attempt's lines may not be in CloudWatch yet: wait a little
        // for its first ones (an attempt that printed nothing waits the whole while).
        let mut looks = 1;
        while ended && !seen && page.lines.is_empty() && looks < SETTLE_LOOKS {
            tokio::time::sleep(SETTLE_PAUSE).await;
            page = self.logs.read(&group, &stream, token.clone()).await?;
            looks += 1;
        }
        self.read.insert(attempt, (page.next, seen || !page.lines.is_empty()));
        Ok(page.lines)
    }

    fn place(&self, attempt: u32) -> String {
        format!(
            "CloudWatch Logs {} {}",
            self.group.as_deref().unwrap_or("?"),
            self.stream(attempt).unwrap_or("(no stream)")
        )
    }
}
