//! What the dispatcher is asked: an EventBridge event (a schedule, an EKS CloudTrail event) or an API request, read into a trigger, a [`Filter`] and labels; anything else is an error naming the field.

use super::*;

/// The EKS API calls whose CloudTrail events the dispatcher takes.
pub const EKS_EVENTS: [&str; 4] = [
    "CreateCluster",
    "TagResource",
    "UntagResource",
    "DeleteCluster",
];

pub use okra_core::dispatch::Filter;

/// What the dispatcher was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `schedule`, `eks-event`, `api`.
    pub trigger: String,
    /// Which cells.
    pub filter: Filter,
    /// Labels for the executions (the event's cluster and API call, the API caller).
    pub labels: BTreeMap<String, String>,
}

pub(super) fn invalid(field: &str, what: impl std::fmt::Display) -> OkraError {
    OkraError::InvalidInput(format!("{field}: {what}"))
}

pub(super) fn str_at<'a>(v: &'a Value, path: &[&str], field: &str) -> Result<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).ok_or_else(|| invalid(field, "missing"))?;
    }
    cur.as_str().ok_or_else(|| invalid(field, "not a string"))
}

pub(super) fn tags_at(v: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|s| (k.clone(), s.to_string()))
                    .ok_or_else(|| invalid(&format!("{field}.{k}"), "not a string"))
            })
            .collect(),
        Some(_) => Err(invalid(field, "not an object of strings")),
    }
}

use okra_core::arn::eks_cluster_name;

pub(super) fn parse_cloudtrail(detail: &Value) -> Result<(Filter, BTreeMap<String, String>)> {
    let source = str_at(detail, &["eventSource"], "detail.eventSource")?;
    if source != "eks.amazonaws.com" {
        return Err(invalid(
            "detail.eventSource",
            format!("expected eks.amazonaws.com, got {source}"),
        ));
    }
    let name = str_at(detail, &["eventName"], "detail.eventName")?;
    let mut labels = BTreeMap::from([("eventName".to_string(), name.to_string())]);
    if let Some(code) = detail.get("errorCode").and_then(Value::as_str) {
        return Ok((
            Filter::Nothing(format!("{name} failed ({code}): nothing changed")),
            labels,
        ));
    }
    let params = detail
        .get("requestParameters")
        .filter(|p| p.is_object())
        .ok_or_else(|| invalid("detail.requestParameters", "missing or not an object"))?;
    let filter = match name {
        "CreateCluster" | "DeleteCluster" => {
            let cluster = str_at(params, &["name"], "detail.requestParameters.name")?;
            labels.insert(discover::CLUSTER_LABEL.into(), cluster.to_string());
            if name == "DeleteCluster" {
                Filter::All
            } else {
                Filter::Tags(tags_at(
                    params.get("tags"),
                    "detail.requestParameters.tags",
                )?)
            }
        }
        "TagResource" | "UntagResource" => {
            let arn = str_at(
                params,
                &["resourceArn"],
                "detail.requestParameters.resourceArn",
            )?;
            let keys: BTreeSet<String> = if name == "TagResource" {
                tags_at(params.get("tags"), "detail.requestParameters.tags")?
                    .into_keys()
                    .collect()
            } else {
                match params.get("tagKeys") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|k| {
                            k.as_str().map(str::to_string).ok_or_else(|| {
                                invalid("detail.requestParameters.tagKeys", "not a list of strings")
                            })
                        })
                        .collect::<Result<_>>()?,
                    _ => {
                        return Err(invalid(
                            "detail.requestParameters.tagKeys",
                            "missing or not a list",
                        ));
                    }
                }
            };
            match eks_cluster_name(arn) {
                Some(c) => {
                    labels.insert(discover::CLUSTER_LABEL.into(), c.to_string());
                    Filter::Retagged {
                        cluster: c.to_string(),
                        keys,
                    }
                }
                None => Filter::Nothing(format!("{name} of {arn}, not a cluster")),
            }
        }
        other => {
            return Err(invalid(
                "detail.eventName",
                format!("{other} is not one of {}", EKS_EVENTS.join(", ")),
            ));
        }
    };
    Ok((filter, labels))
}

/// Reads the input: an EventBridge event or an API request.
pub fn parse_request(v: &Value) -> Result<Request> {
    let Some(obj) = v.as_object() else {
        return Err(OkraError::InvalidInput(
            "the input is not a JSON object".into(),
        ));
    };
    if obj.contains_key("detail-type") || obj.contains_key("source") {
        let ev: EventBridgeEvent<Value> = serde_json::from_value(v.clone())
            .map_err(|e| OkraError::InvalidInput(format!("event: {e}")))?;
        return match ev.detail_type.as_str() {
            "Scheduled Event" => Ok(Request {
                trigger: Trigger::Schedule.to_string(),
                filter: Filter::All,
                labels: ev
                    .resources
                    .unwrap_or_default()
                    .first()
                    .map(|r| BTreeMap::from([("rule".to_string(), r.clone())]))
                    .unwrap_or_default(),
            }),
            "AWS API Call via CloudTrail" => {
                let (filter, labels) = parse_cloudtrail(&ev.detail)?;
                Ok(Request {
                    trigger: Trigger::EksEvent.to_string(),
                    filter,
                    labels,
                })
            }
            other => Err(invalid(
                "detail-type",
                format!(
                    "{other:?} is neither \"Scheduled Event\" nor \"AWS API Call via CloudTrail\""
                ),
            )),
        };
    }
    let mut cells = None;
    let mut trigger = Trigger::Api.to_string();
    let mut labels = BTreeMap::new();
    for (k, val) in obj {
        match k.as_str() {
            "cells" => {
                let list = val
                    .as_array()
                    .ok_or_else(|| invalid("cells", "not a list of cell names"))?;
                cells = Some(
                    list.iter()
                        .enumerate()
                        .map(|(i, c)| {
                            c.as_str()
                                .filter(|c| !c.is_empty())
                                .map(str::to_string)
                                .ok_or_else(|| invalid(&format!("cells[{i}]"), "not a cell name"))
                        })
                        .collect::<Result<Vec<_>>>()?,
                );
            }
            "trigger" => {
                trigger = val
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| invalid("trigger", "not a non-empty string"))?
                    .to_string();
            }
            "labels" => labels = tags_at(Some(val), "labels")?,
            other => {
                return Err(invalid(
                    other,
                    "unknown field: expected an EventBridge event (detail-type, source, detail) or \
                     {\"cells\": [..], \"trigger\": \"api\", \"labels\": {..}}",
                ));
            }
        }
    }
    Ok(Request {
        trigger,
        filter: match cells {
            Some(c) => Filter::Named(c),
            None => Filter::All,
        },
        labels,
    })
}
