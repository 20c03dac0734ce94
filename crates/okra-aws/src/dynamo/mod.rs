//! [`StatePort`] over aws-sdk-dynamodb: one table, keys as in [`crate::state::keys`].
//!
//! Item attributes (besides `pk` and `sk`), all plain DynamoDB types:
//!
//! | item | attributes |
//! |---|---|
//! | cell | `spec` (S, the spec as JSON), `revision` (N), `updatedAt` (S) |
//! | lock | `execution` (S), `version` (S), `acquiredAt` (S) |
//! | block | `version`, `reason`, `execution`, `at` (S) |
//! | attempt | `attempt` (N) |
//! | generation | `generation` (N) |
//! | rollout | `execution`, `cell`, `from`?, `to`, `status` (S), `weight` (N), `history` (L of M: `at`, `event` S, `step`? `weight`? N, `detail`? S as JSON), `seen` (SS of [`HistoryEntry::key`]), `startedAt`, `updatedAt` (S) |
//! | signal | `signal` (S), `at` (S) |
//! | wait | `token` (S), `at` (S) |
//!
//! Every write that could race is conditional; a lost condition is [`OkraError::Conflict`] where
//! the caller must know, and a no-op where the port promises idempotence.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb as ddb;
use ddb::types::{AttributeValue, ReturnValue};
use okra_core::spec::CellSpec;

use crate::error::{OkraError, Result};
use crate::state::{
    Block, Failures, HistoryEntry, Lock, Rollout, RolloutStatus, Signal, StatePort, StoredCell,
    Wait, WaitSamples, keys, rfc3339,
};

mod items;

use items::*;

/// A failures item read.
fn failures_of(it: &Item) -> Result<Failures> {
    let text = |k: &str| match it.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => String::new(),
    };
    Ok(Failures {
        count: get_n(it, "count")?.unwrap_or(0),
        last_at: text("lastAt"),
        last_reason: text("lastReason"),
    })
}

type Item = HashMap<String, AttributeValue>;

/// The DynamoDB adapter.
#[derive(Debug, Clone)]
pub struct Dynamo {
    client: ddb::Client,
    table: String,
}

impl Dynamo {
    /// Wraps a client and names the table (the functions read it from `TABLE_NAME`).
    pub fn new(client: ddb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The functions' table: `TABLE_NAME` from the environment.
    pub fn from_env(
        config: &aws_config::SdkConfig,
    ) -> std::result::Result<Self, lambda_runtime::Error> {
        Ok(Self::new(
            ddb::Client::new(config),
            crate::required_env("TABLE_NAME")?,
        ))
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with the key layout this adapter needs (`pk`, `sk` strings, on demand):
    /// what template.yaml's `StateTable` declares, for a local stack (the demo, the tests).
    pub async fn create_table(&self) -> Result<()> {
        use ddb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let built = |e: aws_smithy_types::error::operation::BuildError| OkraError::Aws {
            code: "BuildError".into(),
            message: e.to_string(),
            cause: Some(Box::new(e)),
        };
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(built)
        };
        let key = |n: &str, t| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .map_err(built)
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(out.item().cloned())
    }

    /// Every item of partition `pk` whose sort key starts with `prefix` (all pages).
    async fn query_prefix(&self, pk: &str, prefix: Option<&str>) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take());
            q = match prefix {
                Some(p) => q
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", "sk")
                    .expression_attribute_values(":prefix", s(p)),
                None => q.key_condition_expression("#pk = :pk"),
            };
            let page = q.send().await.map_err(OkraError::from_sdk)?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(items)
    }
}

impl StatePort for Dynamo {
    async fn list_cells(&self) -> Result<Vec<StoredCell>> {
        let mut cells = Vec::new();
        for it in self.query_prefix(keys::CELLS, None).await? {
            match cell_of(&it) {
                Ok(c) => cells.push(c),
                // One bad item must not hide every other cell.
                Err(e) => tracing::warn!(error = %e, "skipping a cell item"),
            }
        }
        cells.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(cells)
    }

    async fn get_cell(&self, cell: &str) -> Result<Option<StoredCell>> {
        self.get(keys::CELLS, cell)
            .await?
            .as_ref()
            .map(cell_of)
            .transpose()
    }

    async fn put_cell(&self, spec: &CellSpec, expected_revision: Option<u64>) -> Result<u64> {
        let revision = expected_revision.map_or(1, |r| r + 1);
        let json = serde_json::to_string(spec)
            .map_err(|e| OkraError::InvalidSpec(format!("the spec does not serialize: {e}")))?;
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(
                keys::CELLS,
                &spec.name,
                &CellItem {
                    spec: json,
                    revision,
                    updated_at: rfc3339(std::time::SystemTime::now()),
                },
            )?));
        // DynamoDB refuses names and values that the expressions do not use.
        let req = match expected_revision {
            None => req
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", "pk"),
            Some(r) => req
                .condition_expression("#revision = :expected")
                .expression_attribute_names("#revision", "revision")
                .expression_attribute_values(":expected", n(r)),
        };
        match req.send().await.map_err(OkraError::from_sdk) {
            Ok(_) => Ok(revision),
            Err(e) if is_conflict(&e) => Err(OkraError::Conflict(
                match expected_revision {
                    None => format!("cell {} exists already", spec.name),
                    Some(r) => format!(
                        "cell {} changed since revision {r} (or is gone): read it again",
                        spec.name
                    ),
                },
                None,
            )),
            Err(e) => Err(e),
        }
    }

    async fn delete_cell(&self, cell: &str) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::CELLS, cell)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn acquire_lock(&self, cell: &str, lock: &Lock) -> Result<std::result::Result<(), Lock>> {
        let pk = keys::cell(cell);
        // A holder seen by the condition may release before we read it: try again, a few times.
        for _ in 0..3 {
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(record_item(&pk, keys::LOCK, lock)?))
                .condition_expression("attribute_not_exists(#pk) OR #execution = :me")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#execution", "execution")
                .expression_attribute_values(":me", s(&lock.execution))
                .send()
                .await
                .map_err(OkraError::from_sdk);
            match res {
                Ok(_) => return Ok(Ok(())),
                Err(e) if is_conflict(&e) => {
                    if let Some(holder) = self.get_lock(cell).await? {
                        return Ok(Err(holder));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(OkraError::Conflict(
            format!("the lock of cell {cell} keeps changing hands"),
            None,
        ))
    }

    async fn release_lock(&self, cell: &str, execution: &str) -> Result<()> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::cell(cell), keys::LOCK)))
            .condition_expression("#execution = :me")
            .expression_attribute_names("#execution", "execution")
            .expression_attribute_values(":me", s(execution))
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            // Released already, or held by another execution: not ours to release.
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(e),
            Ok(_) => {
                // A release that fails here leaves the generation behind; the dispatcher moves it
                // on when a start finds the name taken by a closed execution.
                let seen = self.generation(cell).await?;
                self.advance_generation(cell, seen).await.map(|_| ())
            }
        }
    }

    async fn generation(&self, cell: &str) -> Result<u64> {
        match self.get(&keys::cell(cell), keys::GENERATION).await? {
            Some(it) => Ok(get_n(&it, "generation")?.unwrap_or(0)),
            None => Ok(0),
        }
    }

    async fn advance_generation(&self, cell: &str, seen: u64) -> Result<u64> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::cell(cell), keys::GENERATION)))
            .update_expression("SET #generation = :next")
            .expression_attribute_names("#generation", "generation")
            .expression_attribute_values(":next", n(seen + 1));
        req = if seen == 0 {
            req.condition_expression("attribute_not_exists(#generation) OR #generation = :seen")
        } else {
            req.condition_expression("#generation = :seen")
        }
        .expression_attribute_values(":seen", n(seen));
        match req.send().await.map_err(OkraError::from_sdk) {
            Ok(_) => Ok(seen + 1),
            Err(e) if is_conflict(&e) => self.generation(cell).await,
            Err(e) => Err(e),
        }
    }

    async fn get_lock(&self, cell: &str) -> Result<Option<Lock>> {
        self.get(&keys::cell(cell), keys::LOCK)
            .await?
            .as_ref()
            .map(|it| record_of::<Lock>(it, "lock"))
            .transpose()
    }

    async fn blocklist(&self, cell: &str) -> Result<Vec<Block>> {
        Ok(self.blocks_and_failures(cell).await?.0)
    }

    async fn blocks_and_failures(
        &self,
        cell: &str,
    ) -> Result<(Vec<Block>, BTreeMap<String, Failures>)> {
        let items = self
            .query_prefix(&keys::cell(cell), Some(&keys::block("")))
            .await?;
        let (mut blocks, mut failures) = (Vec::new(), BTreeMap::new());
        for it in &items {
            let sk = match it.get("sk") {
                Some(AttributeValue::S(sk)) => sk.as_str(),
                _ => "",
            };
            match sk
                .strip_prefix(&keys::block(""))
                .and_then(|v| v.strip_suffix(keys::FAILURES_SUFFIX))
            {
                Some(version) => {
                    failures.insert(version.to_string(), failures_of(it)?);
                }
                None => blocks.push(record_of::<Block>(it, "block")?),
            }
        }
        blocks.sort_by(|a, b| a.version.cmp(&b.version));
        Ok((blocks, failures))
    }

    async fn block(&self, cell: &str, block: &Block) -> Result<()> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(
                &keys::cell(cell),
                &keys::block(&block.version),
                block,
            )?))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk")
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            // Blocked already: the first reason stays.
            Err(e) if is_conflict(&e) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    async fn unblock(&self, cell: &str, version: &str) -> Result<u32> {
        let pk = keys::cell(cell);
        for sk in [keys::block(version), keys::failures(version)] {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(&pk, &sk)))
                .send()
                .await
                .map_err(OkraError::from_sdk)?;
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&pk, &keys::attempt(version))))
            .update_expression("ADD #attempt :one")
            .expression_attribute_names("#attempt", "attempt")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        Ok(get_n(&attrs, "attempt")?.unwrap_or(1))
    }

    async fn record_failure(
        &self,
        cell: &str,
        version: &str,
        execution: &str,
        reason: &str,
    ) -> Result<Failures> {
        // One conditional update: the count grows only for an execution not counted yet.
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::cell(cell), &keys::failures(version))))
            .update_expression(
                "ADD #count :one, #executions :execution SET #lastAt = :at, #lastReason = :reason",
            )
            .condition_expression(
                "attribute_not_exists(#executions) OR NOT contains(#executions, :name)",
            )
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#executions", "executions")
            .expression_attribute_names("#lastAt", "lastAt")
            .expression_attribute_names("#lastReason", "lastReason")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(
                ":execution",
                AttributeValue::Ss(vec![execution.to_string()]),
            )
            .expression_attribute_values(":name", s(execution))
            .expression_attribute_values(":at", s(rfc3339(std::time::SystemTime::now())))
            .expression_attribute_values(":reason", s(reason))
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            Ok(_) => {}
            Err(e) if is_conflict(&e) => {}
            Err(e) => return Err(e),
        }
        self.failures(cell, version)
            .await?
            .ok_or_else(|| OkraError::NotFound(format!("the failures of {version} in cell {cell}")))
    }

    async fn failures(&self, cell: &str, version: &str) -> Result<Option<Failures>> {
        self.get(&keys::cell(cell), &keys::failures(version))
            .await?
            .as_ref()
            .map(failures_of)
            .transpose()
    }

    async fn attempt(&self, cell: &str, version: &str) -> Result<u32> {
        match self.get(&keys::cell(cell), &keys::attempt(version)).await? {
            Some(it) => Ok(get_n(&it, "attempt")?.unwrap_or(0)),
            None => Ok(0),
        }
    }

    async fn start_rollout(&self, rollout: &Rollout) -> Result<()> {
        let mut attrs = record_item(
            &keys::cell(&rollout.cell),
            &keys::rollout(&rollout.execution),
            &RolloutItem::from(rollout),
        )?;
        let mut seen: Vec<String> = rollout.history.iter().map(HistoryEntry::key).collect();
        seen.sort();
        seen.dedup();
        if !seen.is_empty() {
            // A string set may not be empty.
            attrs.insert("seen".into(), AttributeValue::Ss(seen));
        }
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk")
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            Err(e) if is_conflict(&e) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    async fn record(
        &self,
        cell: &str,
        execution: &str,
        entry: &HistoryEntry,
        status: Option<RolloutStatus>,
    ) -> Result<()> {
        let mut set = vec![
            "#history = list_append(if_not_exists(#history, :empty), :entry)",
            "#updatedAt = :at",
        ];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::cell(cell), &keys::rollout(execution))))
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#history", "history")
            .expression_attribute_names("#updatedAt", "updatedAt")
            .expression_attribute_names("#seen", "seen")
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":entry", AttributeValue::L(vec![entry_av(entry)?]))
            .expression_attribute_values(":at", s(&entry.at))
            .expression_attribute_values(":key", s(entry.key()))
            .expression_attribute_values(":keys", AttributeValue::Ss(vec![entry.key()]));
        if let Some(st) = status {
            set.push("#status = :status");
            req = req
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(st.as_ref()));
        }
        if let Some(w) = entry.weight {
            set.push("#weight = :weight");
            req = req
                .expression_attribute_names("#weight", "weight")
                .expression_attribute_values(":weight", n(w));
        }
        let res = req
            .update_expression(format!("SET {} ADD #seen :keys", set.join(", ")))
            .condition_expression("attribute_exists(#pk) AND NOT contains(#seen, :key)")
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => {
                // A replay (no-op), or no such rollout.
                if self
                    .get(&keys::cell(cell), &keys::rollout(execution))
                    .await?
                    .is_some()
                {
                    Ok(())
                } else {
                    Err(OkraError::NotFound(format!(
                        "rollout {execution} of cell {cell}"
                    )))
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn get_rollout(&self, cell: &str, execution: &str) -> Result<Option<Rollout>> {
        self.get(&keys::cell(cell), &keys::rollout(execution))
            .await?
            .as_ref()
            .map(rollout_of)
            .transpose()
    }

    async fn list_rollouts(&self, cell: &str, limit: usize) -> Result<Vec<Rollout>> {
        let rollouts: Vec<Rollout> = self
            .query_prefix(&keys::cell(cell), Some(&keys::rollout("")))
            .await?
            .iter()
            .map(rollout_of)
            .collect::<Result<_>>()?;
        Ok(crate::state::newest_first(rollouts, limit))
    }

    async fn put_signal(&self, cell: &str, execution: &str, signal: Signal) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(
                &keys::cell(cell),
                &keys::signal(execution),
                &SignalItem {
                    signal,
                    at: rfc3339(std::time::SystemTime::now()),
                },
            )?))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn put_wait(&self, cell: &str, execution: &str, wait: &Wait) -> Result<Option<Signal>> {
        let (samples, sampled_at) = WaitItem::samples_text(wait.samples.as_ref())?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(
                &keys::cell(cell),
                &keys::wait(execution),
                &WaitItem {
                    token: wait.token.clone(),
                    at: rfc3339(std::time::SystemTime::now()),
                    kind: wait.kind,
                    step: wait.step,
                    until: wait.until.clone(),
                    samples,
                    sampled_at,
                },
            )?))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        self.get(&keys::cell(cell), &keys::signal(execution))
            .await?
            .as_ref()
            .map(|i| record_of::<SignalItem>(i, "signal").map(|s| s.signal))
            .transpose()
    }

    async fn get_wait(&self, cell: &str, execution: &str) -> Result<Option<Wait>> {
        self.get(&keys::cell(cell), &keys::wait(execution))
            .await?
            .as_ref()
            .map(|it| {
                let w = record_of::<WaitItem>(it, "wait")?;
                Ok(Wait {
                    samples: w.samples()?,
                    token: w.token,
                    kind: w.kind,
                    step: w.step,
                    until: w.until,
                })
            })
            .transpose()
    }

    async fn record_sample(
        &self,
        cell: &str,
        execution: &str,
        token: &str,
        samples: &WaitSamples,
    ) -> Result<bool> {
        let (text, at) = WaitItem::samples_text(Some(samples))?;
        let (Some(text), Some(at)) = (text, at) else {
            return Err(OkraError::InvalidInput(
                "a sample to record has no due time".into(),
            ));
        };
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::cell(cell), &keys::wait(execution))))
            .update_expression("SET #samples = :samples, #sampledAt = :at")
            .condition_expression(
                "#token = :token AND (attribute_not_exists(#sampledAt) OR #sampledAt < :at)",
            )
            .expression_attribute_names("#samples", "samples")
            .expression_attribute_names("#sampledAt", "sampledAt")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":samples", s(&text))
            .expression_attribute_values(":at", s(&at))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map_err(OkraError::from_sdk);
        match res {
            Ok(_) => Ok(true),
            // Another wait's callback now, no wait, or this due time recorded already.
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn end_wait(&self, cell: &str, execution: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::cell(cell), &keys::wait(execution))))
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        Ok(())
    }

    async fn take_signal(&self, cell: &str, execution: &str) -> Result<Option<Signal>> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::cell(cell), &keys::signal(execution))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(OkraError::from_sdk)?;
        match out.attributes() {
            Some(a) if !a.is_empty() => {
                record_of::<SignalItem>(a, "signal").map(|s| Some(s.signal))
            }
            _ => Ok(None),
        }
    }
}
