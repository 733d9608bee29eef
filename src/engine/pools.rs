//! Capacity pools: AWS Batch's per-queue capacity on one machine.
//!
//! On AWS a job runs on one of its queue's compute environments (CEs), tried
//! in `computeEnvironmentOrder`, and only while that CE is ENABLED and has
//! room under its `maxvCpus`; a CE shared by two queues is one pool of vCPUs
//! for both. [`CapacityPools`] describes that layout to the engine
//! ([`LocalEngine::set_capacity_pools`]); each started unit is charged to the
//! CE it was placed on until it stops. The engine's own `vcpus`/`memory_mib`
//! stay a cap over everything (the machine).
//!
//! Without pools (the embedded backend) nothing changes: one FIFO queue over
//! the machine's capacity. With pools, a unit whose queue has no room waits
//! RUNNABLE without holding back the units of other queues behind it.
//!
//! Pools are not persisted: the owner (`batchfan batch-api`) sets them after
//! opening the engine; units recovered as running are not charged to a CE.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{
    model::mcpu,
    state::{State, UnitIx},
    LocalEngine,
};

/// One compute environment's capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolEnvironment {
    /// `maxvCpus`; `None`: bounded only by the engine's capacity (e.g. UNMANAGED).
    pub max_vcpus: Option<f64>,
    /// ENABLED (and not INVALID): the scheduler may place jobs on it.
    pub usable: bool,
}

/// One job queue: the environments it places jobs on, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolQueue {
    pub environments: Vec<String>,
}

/// The compute environments and queues that give each queue its capacity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapacityPools {
    /// By compute environment name.
    pub environments: BTreeMap<String, PoolEnvironment>,
    /// By queue name. A queue missing here (e.g. the embedded backend's, when
    /// one engine serves both doors) has only the engine's capacity.
    pub queues: BTreeMap<String, PoolQueue>,
}

/// The engine's pool bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    layout: Option<CapacityPools>,
    /// Milli-vCPUs in use per environment.
    used: HashMap<String, u64>,
    /// The environment and milli-vCPUs each started unit is charged to.
    held: HashMap<UnitIx, (String, u64)>,
}

impl Pools {
    /// The first environment of `queue` with room for `need` milli-vCPUs.
    /// `Ok(None)`: no pool applies (none configured, or not for this queue).
    /// `Err(())`: the queue has no room now.
    fn place(&self, queue: &str, need: u64) -> Result<Option<&str>, ()> {
        let Some(layout) = &self.layout else { return Ok(None) };
        let Some(q) = layout.queues.get(queue) else { return Ok(None) };
        for name in &q.environments {
            let Some(env) = layout.environments.get(name).filter(|e| e.usable) else { continue };
            let used = self.used.get(name).copied().unwrap_or(0);
            if env.max_vcpus.is_none_or(|max| used + need <= mcpu(max)) {
                return Ok(Some(name));
            }
        }
        Err(())
    }

    /// Gives back what `u` holds, if anything.
    pub(crate) fn release(&mut self, u: UnitIx) {
        if let Some((env, need)) = self.held.remove(&u) {
            if let Some(used) = self.used.get_mut(&env) {
                *used = used.saturating_sub(need);
            }
        }
    }

    /// The compute environment a started unit was placed on (its `AWS_BATCH_CE_NAME`).
    pub(crate) fn placed_on(&self, u: UnitIx) -> Option<&str> {
        self.held.get(&u).map(|(env, _)| env.as_str())
    }

    fn take(&mut self, u: UnitIx, env: String, need: u64) {
        *self.used.entry(env.clone()).or_default() += need;
        self.held.insert(u, (env, need));
    }
}

impl State {
    /// The next runnable unit after `after` (FIFO) that may start now, and
    /// charges it to its pool. Without pools: the first runnable unit if it
    /// fits the free capacity (so a big job at the head waits for room, as
    /// before). With pools: units of a queue without room are skipped (their
    /// queue is added to `blocked`, keeping FIFO within it); the machine's
    /// capacity still stops the scan at the first unit it cannot hold.
    pub(crate) fn next_startable(
        &mut self,
        after: Option<UnitIx>,
        blocked: &mut BTreeSet<String>,
    ) -> Option<UnitIx> {
        let start = after.map_or(0, |u| u + 1);
        let mut chosen = None;
        for &u in self.runnable.range(start..) {
            let job = self.job_of(u);
            if blocked.contains(&job.queue) {
                continue;
            }
            if job.mcpu > self.free_mcpu || job.mem > self.free_mem {
                return None;
            }
            match self.pools.place(&job.queue, job.mcpu) {
                Ok(env) => {
                    chosen = Some((u, env.map(str::to_string), job.mcpu));
                    break;
                }
                Err(()) => {
                    blocked.insert(job.queue.clone());
                }
            }
        }
        let (u, env, need) = chosen?;
        if let Some(env) = env {
            self.pools.take(u, env, need);
        }
        Some(u)
    }
}

impl LocalEngine {
    /// Sets (or with `None` removes) the capacity pools; jobs already started
    /// keep what they hold until they stop. Wakes the scheduler, so jobs a
    /// new or enabled environment has room for start at once.
    pub fn set_capacity_pools(&self, pools: Option<CapacityPools>) {
        {
            let mut state = self.inner.shared.lock();
            state.pools.layout = pools;
        }
        self.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> CapacityPools {
        let env = |max: Option<f64>, usable| PoolEnvironment { max_vcpus: max, usable };
        let queue = |envs: &[&str]| PoolQueue { environments: envs.iter().map(|s| s.to_string()).collect() };
        CapacityPools {
            environments: BTreeMap::from([
                ("small".into(), env(Some(1.0), true)),
                ("off".into(), env(None, false)),
                ("big".into(), env(Some(2.0), true)),
            ]),
            queues: BTreeMap::from([
                ("a".into(), queue(&["off", "small", "big"])),
                ("b".into(), queue(&["off"])),
            ]),
        }
    }

    #[test]
    fn units_fill_environments_in_order_and_release_them() {
        let mut pools = Pools { layout: Some(layout()), ..Pools::default() };
        let mut placed = Vec::new();
        for u in 0..3 {
            let env = pools.place("a", 1000).expect("room").expect("pools set").to_string();
            placed.push(env.clone());
            pools.take(u, env, 1000);
        }
        assert_eq!(placed, ["small", "big", "big"], "the disabled environment is skipped");
        assert_eq!(pools.place("a", 1000), Err(()), "every environment of a is full");
        assert_eq!(pools.place("b", 1), Err(()), "b's only environment is disabled");
        assert_eq!(pools.place("other", 1), Ok(None), "a queue the pools do not know: the engine's capacity");
        assert_eq!(pools.placed_on(1), Some("big"));
        pools.release(1);
        pools.release(1);
        assert_eq!(pools.placed_on(1), None);
        assert_eq!(pools.place("a", 1000), Ok(Some("big")));
        assert_eq!(Pools::default().place("any", u64::MAX), Ok(None), "no pools: no limit here");
    }
}
