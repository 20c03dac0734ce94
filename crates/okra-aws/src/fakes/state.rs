//! The state table in memory.

use super::*;

pub(super) type CellKey = (String, String);

pub(super) fn ck(cell: &str, x: &str) -> CellKey {
    (cell.to_string(), x.to_string())
}

#[derive(Debug, Default)]
pub(super) struct StateData {
    pub(super) cells: BTreeMap<String, StoredCell>,
    pub(super) locks: BTreeMap<String, Lock>,
    pub(super) blocks: BTreeMap<CellKey, Block>,
    pub(super) attempts: BTreeMap<CellKey, u32>,
    /// Failed automatic attempts, and the executions counted.
    pub(super) failures: BTreeMap<CellKey, (Failures, BTreeSet<String>)>,
    pub(super) generations: BTreeMap<String, u64>,
    /// The record and the keys of its entries.
    pub(super) rollouts: BTreeMap<CellKey, (Rollout, BTreeSet<String>)>,
    pub(super) signals: BTreeMap<CellKey, Signal>,
    pub(super) waits: BTreeMap<CellKey, Wait>,
}

/// The okra table in memory, with the adapter's conditions (the lock, revisions, one history
/// entry per key). API counts are DynamoDB operations (`"GetItem"`, `"PutItem"`, `"Query"`, ...),
/// one per port call except where the adapter needs two (a replayed `record`, `unblock`).
#[derive(Debug, Default)]
pub struct FakeState {
    data: Mutex<StateData>,
    /// Counts and faults.
    pub meter: Meter,
}

impl FakeState {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a version's failed automatic attempts as they are (a last failure long ago, say).
    pub fn set_failures(&self, cell: &str, version: &str, failures: Failures) {
        lock(&self.data)
            .failures
            .insert(ck(cell, version), (failures, BTreeSet::new()));
    }

    /// Stores a cell as is (no validation, no revision check): a spec stored by an older okra
    /// that no longer validates, say.
    pub fn insert_cell(&self, spec: okra_core::spec::CellSpec) -> &Self {
        let mut d = lock(&self.data);
        let revision = d.cells.get(&spec.name).map_or(1, |c| c.revision + 1);
        d.cells.insert(
            spec.name.clone(),
            StoredCell {
                spec,
                revision,
                updated_at: "2026-01-01T00:00:00.000Z".to_string(),
            },
        );
        self
    }

    /// Every rollout record of a cell, by execution.
    pub fn rollouts(&self, cell: &str) -> Vec<Rollout> {
        lock(&self.data)
            .rollouts
            .iter()
            .filter(|((c, _), _)| c == cell)
            .map(|(_, (r, _))| r.clone())
            .collect()
    }

    /// The lock as stored.
    pub fn lock_of(&self, cell: &str) -> Option<Lock> {
        lock(&self.data).locks.get(cell).cloned()
    }

    /// Sets (or, with `None`, removes) the lock as someone else would.
    pub fn set_lock(&self, cell: &str, l: Option<Lock>) {
        let mut d = lock(&self.data);
        match l {
            Some(l) => d.locks.insert(cell.to_string(), l),
            None => d.locks.remove(cell),
        };
    }
}

impl StatePort for FakeState {
    async fn list_cells(&self) -> Result<Vec<StoredCell>> {
        self.meter.enter("list_cells")?;
        Ok(lock(&self.data).cells.values().cloned().collect())
    }

    async fn get_cell(&self, cell: &str) -> Result<Option<StoredCell>> {
        self.meter.enter("get_cell")?;
        Ok(lock(&self.data).cells.get(cell).cloned())
    }

    async fn put_cell(
        &self,
        spec: &okra_core::spec::CellSpec,
        expected_revision: Option<u64>,
    ) -> Result<u64> {
        self.meter.enter("put_cell")?;
        let mut d = lock(&self.data);
        let current = d.cells.get(&spec.name).map(|c| c.revision);
        if current != expected_revision {
            return Err(OkraError::Conflict(
                format!(
                    "cell {}: revision {current:?}, expected {expected_revision:?}",
                    spec.name
                ),
                None,
            ));
        }
        let revision = expected_revision.map_or(1, |r| r + 1);
        d.cells.insert(
            spec.name.clone(),
            StoredCell {
                spec: spec.clone(),
                revision,
                updated_at: crate::state::rfc3339(std::time::SystemTime::now()),
            },
        );
        Ok(revision)
    }

    async fn delete_cell(&self, cell: &str) -> Result<bool> {
        self.meter.enter("delete_cell")?;
        Ok(lock(&self.data).cells.remove(cell).is_some())
    }

    async fn acquire_lock(&self, cell: &str, l: &Lock) -> Result<std::result::Result<(), Lock>> {
        self.meter.enter("acquire_lock")?;
        let mut d = lock(&self.data);
        match d.locks.get(cell) {
            Some(holder) if holder.execution != l.execution => Ok(Err(holder.clone())),
            _ => {
                d.locks.insert(cell.to_string(), l.clone());
                Ok(Ok(()))
            }
        }
    }

    async fn release_lock(&self, cell: &str, execution: &str) -> Result<()> {
        self.meter.enter("release_lock")?;
        let mut d = lock(&self.data);
        if d.locks.get(cell).is_some_and(|l| l.execution == execution) {
            d.locks.remove(cell);
            *d.generations.entry(cell.to_string()).or_default() += 1;
        }
        Ok(())
    }

    async fn generation(&self, cell: &str) -> Result<u64> {
        self.meter.enter("generation")?;
        Ok(lock(&self.data).generations.get(cell).copied().unwrap_or(0))
    }

    async fn advance_generation(&self, cell: &str, seen: u64) -> Result<u64> {
        self.meter.enter("advance_generation")?;
        let mut d = lock(&self.data);
        let g = d.generations.entry(cell.to_string()).or_default();
        if *g == seen {
            *g += 1;
        }
        Ok(*g)
    }

    async fn get_lock(&self, cell: &str) -> Result<Option<Lock>> {
        self.meter.enter("get_lock")?;
        Ok(lock(&self.data).locks.get(cell).cloned())
    }

    async fn blocklist(&self, cell: &str) -> Result<Vec<Block>> {
        self.meter.enter("blocklist")?;
        Ok(lock(&self.data)
            .blocks
            .iter()
            .filter(|((c, _), _)| c == cell)
            .map(|(_, b)| b.clone())
            .collect())
    }

    async fn block(&self, cell: &str, block: &Block) -> Result<()> {
        self.meter.enter("block")?;
        lock(&self.data)
            .blocks
            .entry(ck(cell, &block.version))
            .or_insert_with(|| block.clone());
        Ok(())
    }

    async fn unblock(&self, cell: &str, version: &str) -> Result<u32> {
        self.meter.enter("unblock")?;
        let mut d = lock(&self.data);
        d.blocks.remove(&ck(cell, version));
        d.failures.remove(&ck(cell, version));
        let a = d.attempts.entry(ck(cell, version)).or_default();
        *a += 1;
        Ok(*a)
    }

    async fn record_failure(
        &self,
        cell: &str,
        version: &str,
        execution: &str,
        reason: &str,
    ) -> Result<Failures> {
        self.meter.enter("record_failure")?;
        let mut d = lock(&self.data);
        let (f, seen) = d.failures.entry(ck(cell, version)).or_insert_with(|| {
            (
                Failures {
                    count: 0,
                    last_at: String::new(),
                    last_reason: String::new(),
                },
                BTreeSet::new(),
            )
        });
        if seen.insert(execution.to_string()) {
            f.count += 1;
            f.last_at = crate::state::rfc3339(std::time::SystemTime::now());
            f.last_reason = reason.to_string();
        }
        Ok(f.clone())
    }

    async fn blocks_and_failures(
        &self,
        cell: &str,
    ) -> Result<(Vec<Block>, BTreeMap<String, Failures>)> {
        self.meter.enter("blocks_and_failures")?;
        let d = lock(&self.data);
        let blocks = d
            .blocks
            .iter()
            .filter(|((c, _), _)| c == cell)
            .map(|(_, b)| b.clone())
            .collect();
        let failures = d
            .failures
            .iter()
            .filter(|((c, _), _)| c == cell)
            .map(|((_, v), (f, _))| (v.clone(), f.clone()))
            .collect();
        Ok((blocks, failures))
    }

    async fn failures(&self, cell: &str, version: &str) -> Result<Option<Failures>> {
        self.meter.enter("failures")?;
        Ok(lock(&self.data)
            .failures
            .get(&ck(cell, version))
            .map(|(f, _)| f.clone()))
    }

    async fn attempt(&self, cell: &str, version: &str) -> Result<u32> {
        self.meter.enter("attempt")?;
        Ok(lock(&self.data)
            .attempts
            .get(&ck(cell, version))
            .copied()
            .unwrap_or(0))
    }

    async fn start_rollout(&self, rollout: &Rollout) -> Result<()> {
        self.meter.enter("start_rollout")?;
        let seen = rollout.history.iter().map(HistoryEntry::key).collect();
        lock(&self.data)
            .rollouts
            .entry(ck(&rollout.cell, &rollout.execution))
            .or_insert_with(|| (rollout.clone(), seen));
        Ok(())
    }

    async fn record(
        &self,
        cell: &str,
        execution: &str,
        entry: &HistoryEntry,
        status: Option<RolloutStatus>,
    ) -> Result<()> {
        self.meter.enter("record")?;
        let mut d = lock(&self.data);
        let Some((r, seen)) = d.rollouts.get_mut(&ck(cell, execution)) else {
            return Err(OkraError::NotFound(format!(
                "rollout {execution} of cell {cell}"
            )));
        };
        if !seen.insert(entry.key()) {
            return Ok(());
        }
        r.history.push(entry.clone());
        r.updated_at = entry.at.clone();
        if let Some(s) = status {
            r.status = s;
        }
        if let Some(w) = entry.weight {
            r.weight = w;
        }
        Ok(())
    }

    async fn get_rollout(&self, cell: &str, execution: &str) -> Result<Option<Rollout>> {
        self.meter.enter("get_rollout")?;
        Ok(lock(&self.data)
            .rollouts
            .get(&ck(cell, execution))
            .map(|(r, _)| r.clone()))
    }

    async fn list_rollouts(&self, cell: &str, limit: usize) -> Result<Vec<Rollout>> {
        self.meter.enter("list_rollouts")?;
        Ok(crate::state::newest_first(self.rollouts(cell), limit))
    }

    async fn put_signal(&self, cell: &str, execution: &str, signal: Signal) -> Result<()> {
        self.meter.enter("put_signal")?;
        lock(&self.data).signals.insert(ck(cell, execution), signal);
        Ok(())
    }

    async fn put_wait(&self, cell: &str, execution: &str, wait: &Wait) -> Result<Option<Signal>> {
        self.meter.enter("put_wait")?;
        let mut d = lock(&self.data);
        d.waits.insert(ck(cell, execution), wait.clone());
        Ok(d.signals.get(&ck(cell, execution)).copied())
    }

    async fn get_wait(&self, cell: &str, execution: &str) -> Result<Option<Wait>> {
        self.meter.enter("get_wait")?;
        Ok(lock(&self.data).waits.get(&ck(cell, execution)).cloned())
    }

    async fn record_sample(
        &self,
        cell: &str,
        execution: &str,
        token: &str,
        samples: &WaitSamples,
    ) -> Result<bool> {
        self.meter.enter("record_sample")?;
        let mut d = lock(&self.data);
        let Some(w) = d.waits.get_mut(&ck(cell, execution)) else {
            return Ok(false);
        };
        let later = match (&w.samples, &samples.last) {
            (_, None) => false,
            (Some(old), Some(new)) => old.last.as_ref().is_none_or(|o| o < new),
            (None, Some(_)) => true,
        };
        if w.token != token || !later {
            return Ok(false);
        }
        w.samples = Some(samples.clone());
        Ok(true)
    }

    async fn end_wait(&self, cell: &str, execution: &str) -> Result<()> {
        self.meter.enter("end_wait")?;
        lock(&self.data).waits.remove(&ck(cell, execution));
        Ok(())
    }

    async fn take_signal(&self, cell: &str, execution: &str) -> Result<Option<Signal>> {
        self.meter.enter("take_signal")?;
        Ok(lock(&self.data).signals.remove(&ck(cell, execution)))
    }
}
