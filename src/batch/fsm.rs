//! The job state machine as data: AWS Batch's states, the events that move a
//! job between them, and one transition function.
//!
//! ```text
//! SUBMITTED ─deps pending─► PENDING ─deps met─► RUNNABLE ─scheduled─► STARTING ─started─► RUNNING
//!     │  └────────deps met──────────────────────────▲  ▲                  │                 │
//!     └─dep failed / cancel / terminate─► FAILED      └──retry / lost, retried─┴─────────────┤
//!                                                                                 exited ok ─► SUCCEEDED
//! ```

use super::JobStatus;

/// Something that happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The job's dependencies are not all met yet.
    DependenciesPending,
    /// Every dependency succeeded (or there were none).
    DependenciesMet,
    /// A dependency failed: the job never runs.
    DependencyFailed,
    /// Capacity was reserved for the job.
    Scheduled,
    /// The process started.
    Started,
    /// The process could not start (missing command, bad working directory);
    /// `retry` is the retry rules' verdict.
    LaunchFailed { retry: bool },
    /// The process exited; `success` when exit code 0, `retry` the rules' verdict otherwise.
    Exited { success: bool, retry: bool },
    /// The host that ran the attempt went away (engine killed or restarted); `retry`
    /// is the retry rules' verdict (the lost attempt counts, as on AWS).
    HostLost { retry: bool },
    /// CancelJob: stops a job that has not started.
    Cancel,
    /// TerminateJob: stops a job in any state; a running process is killed and
    /// then reports [`Event::Exited`] with `retry: false`.
    Terminate,
}

impl Event {
    /// Every event, for exhaustive tests.
    pub const ALL: [Event; 15] = [
        Event::DependenciesPending,
        Event::DependenciesMet,
        Event::DependencyFailed,
        Event::Scheduled,
        Event::Started,
        Event::LaunchFailed { retry: false },
        Event::LaunchFailed { retry: true },
        Event::Exited { success: true, retry: false },
        Event::Exited { success: false, retry: false },
        Event::Exited { success: false, retry: true },
        Event::HostLost { retry: false },
        Event::HostLost { retry: true },
        Event::Cancel,
        Event::Terminate,
        Event::Exited { success: true, retry: true },
    ];
}

/// An event that does not apply to the job's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("job in state {from} cannot take event {event:?}")]
pub struct InvalidTransition {
    pub from: JobStatus,
    pub event: Event,
}

/// The state after `event` in state `from`.
pub fn transition(from: JobStatus, event: Event) -> Result<JobStatus, InvalidTransition> {
    use Event as E;
    use JobStatus as S;
    let to = match (from, event) {
        (S::Submitted, E::DependenciesPending) => S::Pending,
        (S::Submitted | S::Pending, E::DependenciesMet) => S::Runnable,
        (S::Submitted | S::Pending, E::DependencyFailed) => S::Failed,
        (S::Runnable, E::Scheduled) => S::Starting,
        (S::Starting, E::Started) => S::Running,
        (S::Starting, E::LaunchFailed { retry: true }) => S::Runnable,
        (S::Starting, E::LaunchFailed { retry: false }) => S::Failed,
        (S::Running, E::Exited { success: true, .. }) => S::Succeeded,
        (S::Running, E::Exited { success: false, retry: true }) => S::Runnable,
        (S::Running, E::Exited { success: false, retry: false }) => S::Failed,
        (S::Starting | S::Running, E::HostLost { retry: true }) => S::Runnable,
        (S::Starting | S::Running, E::HostLost { retry: false }) => S::Failed,
        (S::Submitted | S::Pending | S::Runnable, E::Cancel | E::Terminate) => S::Failed,
        // A started job ignores Cancel, as on AWS; Terminate kills the process and
        // the job stays put until the process reports Exited.
        (S::Starting | S::Running, E::Cancel | E::Terminate) => from,
        _ => return Err(InvalidTransition { from, event }),
    };
    Ok(to)
}

/// An array parent's status, derived from its children's statuses.
///
/// SUCCEEDED when every child succeeded; FAILED once every child is done and
/// any failed; otherwise RUNNING once any child started or finished, RUNNABLE
/// when any child is runnable, PENDING when children wait on dependencies, and
/// SUBMITTED before that.
pub fn parent_status(children: impl IntoIterator<Item = JobStatus>) -> JobStatus {
    let mut counts = [0u32; 7];
    let mut total = 0u32;
    for st in children {
        counts[st as usize] += 1;
        total += 1;
    }
    let n = |s: JobStatus| counts[s as usize];
    let done = n(JobStatus::Succeeded) + n(JobStatus::Failed);
    if total > 0 && done == total {
        return if n(JobStatus::Failed) > 0 { JobStatus::Failed } else { JobStatus::Succeeded };
    }
    if n(JobStatus::Starting) + n(JobStatus::Running) + done > 0 {
        JobStatus::Running
    } else if n(JobStatus::Runnable) > 0 {
        JobStatus::Runnable
    } else if n(JobStatus::Pending) > 0 {
        JobStatus::Pending
    } else {
        JobStatus::Submitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus as S;

    /// The whole table: every (state, event) pair and what it must give.
    fn expected(from: S, e: Event) -> Option<S> {
        use Event as E;
        Some(match (from, e) {
            (S::Submitted, E::DependenciesPending) => S::Pending,
            (S::Submitted, E::DependenciesMet) => S::Runnable,
            (S::Submitted, E::DependencyFailed) => S::Failed,
            (S::Submitted, E::Cancel) => S::Failed,
            (S::Submitted, E::Terminate) => S::Failed,
            (S::Pending, E::DependenciesMet) => S::Runnable,
            (S::Pending, E::DependencyFailed) => S::Failed,
            (S::Pending, E::Cancel) => S::Failed,
            (S::Pending, E::Terminate) => S::Failed,
            (S::Runnable, E::Scheduled) => S::Starting,
            (S::Runnable, E::Cancel) => S::Failed,
            (S::Runnable, E::Terminate) => S::Failed,
            (S::Starting, E::Started) => S::Running,
            (S::Starting, E::LaunchFailed { retry: true }) => S::Runnable,
            (S::Starting, E::LaunchFailed { retry: false }) => S::Failed,
            (S::Starting, E::HostLost { retry: true }) => S::Runnable,
            (S::Starting, E::HostLost { retry: false }) => S::Failed,
            (S::Starting, E::Cancel) => S::Starting,
            (S::Starting, E::Terminate) => S::Starting,
            (S::Running, E::Exited { success: true, .. }) => S::Succeeded,
            (S::Running, E::Exited { success: false, retry: true }) => S::Runnable,
            (S::Running, E::Exited { success: false, retry: false }) => S::Failed,
            (S::Running, E::HostLost { retry: true }) => S::Runnable,
            (S::Running, E::HostLost { retry: false }) => S::Failed,
            (S::Running, E::Cancel) => S::Running,
            (S::Running, E::Terminate) => S::Running,
            _ => return None,
        })
    }

    #[test]
    fn every_state_event_pair() {
        let mut checked = 0;
        for from in S::ALL {
            for e in Event::ALL {
                let got = transition(from, e);
                match expected(from, e) {
                    Some(to) => assert_eq!(got, Ok(to), "{from} + {e:?}"),
                    None => assert_eq!(got, Err(InvalidTransition { from, event: e }), "{from} + {e:?}"),
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 7 * Event::ALL.len());
    }

    #[test]
    fn terminal_states_take_no_event() {
        for e in Event::ALL {
            assert!(transition(S::Succeeded, e).is_err());
            assert!(transition(S::Failed, e).is_err());
        }
    }

    #[test]
    fn invalid_transition_message_names_state_and_event() {
        let err = transition(S::Succeeded, Event::Started).unwrap_err();
        assert_eq!(err.to_string(), "job in state SUCCEEDED cannot take event Started");
    }

    #[test]
    fn parent_status_is_derived_from_children() {
        assert_eq!(parent_status([S::Succeeded, S::Succeeded]), S::Succeeded);
        assert_eq!(parent_status([S::Succeeded, S::Failed]), S::Failed);
        assert_eq!(parent_status([S::Failed, S::Running]), S::Running, "not FAILED until all are done");
        assert_eq!(parent_status([S::Succeeded, S::Pending]), S::Running);
        assert_eq!(parent_status([S::Runnable, S::Pending]), S::Runnable);
        assert_eq!(parent_status([S::Pending, S::Pending]), S::Pending);
        assert_eq!(parent_status([S::Submitted, S::Submitted]), S::Submitted);
    }
}
