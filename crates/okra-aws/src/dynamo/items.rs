//! The table's items, written and read attribute by attribute (the layout in the module's documentation); an item that does not read is an error naming the attribute.

use super::*;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(super) fn item(
    pk: &str,
    sk: &str,
    attrs: impl IntoIterator<Item = (&'static str, AttributeValue)>,
) -> Item {
    let mut it = key(pk, sk);
    it.extend(attrs.into_iter().map(|(k, v)| (k.to_string(), v)));
    it
}

pub(super) fn bad(item: &Item, what: &str) -> OkraError {
    let pk = get_s(item, "pk").unwrap_or_default();
    let sk = get_s(item, "sk").unwrap_or_default();
    OkraError::Aws {
        code: "MalformedItem".into(),
        message: format!("table item {pk}/{sk}: {what}"),
    }
}

pub(super) fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(super) fn req_s(item: &Item, name: &str) -> Result<String> {
    get_s(item, name)
        .ok_or_else(|| bad(item, &format!("attribute `{name}` missing or not a string")))
}

/// A string attribute that names one of the vocabulary's values.
pub(super) fn req_name<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T> {
    let text = req_s(item, name)?;
    text.parse()
        .map_err(|_| bad(item, &format!("attribute `{name}`: unknown value {text:?}")))
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
    matches!(e, OkraError::Conflict(_))
}

pub(super) fn cell_of(item: &Item) -> Result<StoredCell> {
    let name = req_s(item, "sk")?;
    let spec: CellSpec = serde_json::from_str(&req_s(item, "spec")?).map_err(|e| {
        OkraError::InvalidSpec(format!("cell {name}: the stored spec does not parse: {e}"))
    })?;
    Ok(StoredCell {
        spec,
        revision: get_n(item, "revision")?.unwrap_or(0),
        updated_at: get_s(item, "updatedAt").unwrap_or_default(),
    })
}

pub(super) fn lock_of(item: &Item) -> Result<Lock> {
    Ok(Lock {
        execution: req_s(item, "execution")?,
        version: get_s(item, "version").unwrap_or_default(),
        acquired_at: get_s(item, "acquiredAt").unwrap_or_default(),
    })
}

pub(super) fn block_of(item: &Item) -> Result<Block> {
    Ok(Block {
        version: req_s(item, "version")?,
        reason: get_s(item, "reason").unwrap_or_default(),
        execution: get_s(item, "execution").unwrap_or_default(),
        at: get_s(item, "at").unwrap_or_default(),
    })
}

pub(super) fn entry_av(e: &HistoryEntry) -> AttributeValue {
    let mut m: Item = HashMap::from([
        ("at".to_string(), s(&e.at)),
        ("event".to_string(), s(e.event.as_ref())),
    ]);
    if let Some(step) = e.step {
        m.insert("step".into(), n(step));
    }
    if let Some(w) = e.weight {
        m.insert("weight".into(), n(w));
    }
    if !e.detail.is_null() {
        m.insert("detail".into(), s(e.detail.to_string()));
    }
    AttributeValue::M(m)
}

pub(super) fn entry_of(item: &Item, av: &AttributeValue) -> Result<HistoryEntry> {
    let m = av
        .as_m()
        .map_err(|_| bad(item, "a history entry is not a map"))?;
    Ok(HistoryEntry {
        at: req_s(m, "at")?,
        event: req_name(m, "event")?,
        step: get_n(m, "step")?,
        weight: get_n(m, "weight")?,
        detail: match get_s(m, "detail") {
            Some(d) => serde_json::from_str(&d).unwrap_or(serde_json::Value::String(d)),
            None => serde_json::Value::Null,
        },
    })
}

pub(super) fn rollout_of(item: &Item) -> Result<Rollout> {
    let history = match item.get("history") {
        Some(AttributeValue::L(l)) => l.iter().map(|e| entry_of(item, e)).collect::<Result<_>>()?,
        _ => Vec::new(),
    };
    Ok(Rollout {
        execution: req_s(item, "execution")?,
        cell: req_s(item, "cell")?,
        from: get_s(item, "from"),
        to: get_s(item, "to").unwrap_or_default(),
        status: req_name(item, "status")?,
        weight: get_n(item, "weight")?.unwrap_or(0),
        history,
        started_at: get_s(item, "startedAt").unwrap_or_default(),
        updated_at: get_s(item, "updatedAt").unwrap_or_default(),
    })
}
