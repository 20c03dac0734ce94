//! The table's items: each record (a lock, a block, a rollout and its history entries, a
//! signal, a wait, a cell) is written and read by serde_dynamo as the table's layout has it (the
//! module's documentation): camelCase attribute names, strings as S, numbers as N, an absent
//! option left out, the spec and a history entry's detail as JSON text. An item that does not
//! read is an error naming the item and the attribute.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::*;
use crate::state::{HistoryEvent, WaitKind};

/// A record as an item: its key, then the record's attributes.
pub(super) fn record_item<T: Serialize>(pk: &str, sk: &str, record: &T) -> Result<Item> {
    let mut it: Item = serde_dynamo::to_item(record).map_err(|e| OkraError::Aws {
        code: "MalformedItem".into(),
        message: format!("table item {pk}/{sk} does not serialize: {e}"),
        cause: Some(Box::new(e)),
    })?;
    it.extend(key(pk, sk));
    Ok(it)
}

/// An item read as a record; `what` names the record in the error.
pub(super) fn record_of<T: DeserializeOwned>(item: &Item, what: &str) -> Result<T> {
    serde_dynamo::from_item(item.clone()).map_err(|e| bad(item, &format!("not a {what}: {e}")))
}

/// A cell item: the spec as JSON text.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CellItem {
    pub(super) spec: String,
    #[serde(default)]
    pub(super) revision: u64,
    #[serde(default)]
    pub(super) updated_at: String,
}

/// A signal left for a rollout.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SignalItem {
    pub(super) signal: Signal,
    #[serde(default)]
    pub(super) at: String,
}

/// A wait: its latest task token, its kind, step and end.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WaitItem {
    pub(super) token: String,
    #[serde(default)]
    pub(super) at: String,
    /// Items from before waits had kinds were waits for a person.
    #[serde(default = "person")]
    pub(super) kind: WaitKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) step: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) until: Option<String>,
    /// The background samples ([`crate::state::WaitSamples`]) as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) samples: Option<String>,
    /// The latest sample's due time, beside the JSON for record_sample's condition.
    #[serde(default, rename = "sampledAt", skip_serializing_if = "Option::is_none")]
    pub(super) sampled_at: Option<String>,
}

impl WaitItem {
    /// The samples as the item keeps them.
    pub(super) fn samples_text(
        samples: Option<&crate::state::WaitSamples>,
    ) -> Result<(Option<String>, Option<String>)> {
        let Some(s) = samples else {
            return Ok((None, None));
        };
        let text = serde_json::to_string(s).map_err(|e| OkraError::Aws {
            code: "MalformedItem".into(),
            message: format!("a wait's samples do not serialize: {e}"),
            cause: Some(Box::new(e)),
        })?;
        Ok((Some(text), s.last.clone()))
    }

    /// The samples read back.
    pub(super) fn samples(&self) -> Result<Option<crate::state::WaitSamples>> {
        self.samples
            .as_deref()
            .map(|t| {
                serde_json::from_str(t).map_err(|e| OkraError::Aws {
                    code: "MalformedItem".into(),
                    message: format!("a wait's samples do not read: {e}"),
                    cause: Some(Box::new(e)),
                })
            })
            .transpose()
    }
}

fn person() -> WaitKind {
    WaitKind::Person
}

/// A history entry as the table keeps it: its detail as JSON text.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EntryItem {
    at: String,
    event: HistoryEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl From<&HistoryEntry> for EntryItem {
    fn from(e: &HistoryEntry) -> Self {
        Self {
            at: e.at.clone(),
            event: e.event,
            step: e.step,
            weight: e.weight,
            detail: (!e.detail.is_null()).then(|| e.detail.to_string()),
        }
    }
}

impl From<EntryItem> for HistoryEntry {
    fn from(e: EntryItem) -> Self {
        Self {
            at: e.at,
            event: e.event,
            step: e.step,
            weight: e.weight,
            detail: match e.detail {
                Some(d) => serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d)),
                None => serde_json::Value::Null,
            },
        }
    }
}

/// A rollout item (its `seen` set aside: the keys of the entries recorded).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RolloutItem {
    execution: String,
    cell: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default)]
    to: String,
    status: RolloutStatus,
    #[serde(default)]
    weight: u32,
    #[serde(default)]
    history: Vec<EntryItem>,
    #[serde(default)]
    started_at: String,
    #[serde(default)]
    updated_at: String,
}

impl From<&Rollout> for RolloutItem {
    fn from(r: &Rollout) -> Self {
        Self {
            execution: r.execution.clone(),
            cell: r.cell.clone(),
            from: r.from.clone(),
            to: r.to.clone(),
            status: r.status,
            weight: r.weight,
            history: r.history.iter().map(EntryItem::from).collect(),
            started_at: r.started_at.clone(),
            updated_at: r.updated_at.clone(),
        }
    }
}

impl From<RolloutItem> for Rollout {
    fn from(r: RolloutItem) -> Self {
        Self {
            execution: r.execution,
            cell: r.cell,
            from: r.from,
            to: r.to,
            status: r.status,
            weight: r.weight,
            history: r.history.into_iter().map(HistoryEntry::from).collect(),
            started_at: r.started_at,
            updated_at: r.updated_at,
        }
    }
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(super) fn bad(item: &Item, what: &str) -> OkraError {
    let pk = get_s(item, "pk").unwrap_or_default();
    let sk = get_s(item, "sk").unwrap_or_default();
    OkraError::Aws {
        code: "MalformedItem".into(),
        message: format!("table item {pk}/{sk}: {what}"),
        cause: None,
    }
}

pub(super) fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(super) fn req_s(item: &Item, name: &str) -> Result<String> {
    get_s(item, name)
        .ok_or_else(|| bad(item, &format!("attribute `{name}` missing or not a string")))
}

pub(super) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
            bad(
                item,
                &format!("attribute `{name}` is not a number in range: {v}"),
            )
        }),
        Some(_) => Err(bad(item, &format!("attribute `{name}` is not a number"))),
    }
}

pub(super) fn is_conflict(e: &OkraError) -> bool {
    matches!(e, OkraError::Conflict(..))
}

pub(super) fn cell_of(item: &Item) -> Result<StoredCell> {
    let name = req_s(item, "sk")?;
    let c: CellItem = record_of(item, "cell")?;
    let spec: CellSpec = serde_json::from_str(&c.spec).map_err(|e| {
        OkraError::InvalidSpec(format!("cell {name}: the stored spec does not parse: {e}"))
    })?;
    Ok(StoredCell {
        spec,
        revision: c.revision,
        updated_at: c.updated_at,
    })
}

/// A history entry as an attribute (an element of a rollout's `history` list).
pub(super) fn entry_av(e: &HistoryEntry) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(EntryItem::from(e)).map_err(|err| OkraError::Aws {
        code: "MalformedItem".into(),
        message: format!("a history entry does not serialize: {err}"),
        cause: Some(Box::new(err)),
    })
}

pub(super) fn rollout_of(item: &Item) -> Result<Rollout> {
    record_of::<RolloutItem>(item, "rollout").map(Rollout::from)
}
