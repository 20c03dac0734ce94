//! Every error of a spec in one run: a document with shape errors (missing fields, wrong types,
//! numbers out of a type's range) still has its rules checked. Each field in error is set, in a
//! copy of the document, to the value a valid placeholder spec has at the same place (an unknown
//! field is dropped), so the rest can be read and checked; the rules' errors about the replaced
//! fields themselves are left out, as those fields are reported already.

use serde_json::{Value, json};

use super::FieldError;

/// A valid spec with every kind of field a placeholder can be taken from (an array's items from
/// its first item).
fn placeholder() -> Value {
    json!({
        "name": "placeholder",
        "ingress": {"alb": {
            "listenerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/placeholder/0123456789abcdef/0123456789abcdef"
        }},
        "clusterSelector": {"matchTags": {"okra.io/cell": "placeholder"}},
        "replicas": 1,
        "targetGroup": {"port": 30080, "healthCheck": {"path": "/"}},
        "readiness": {"minHealthyPercent": 100, "timeout": "10m"},
        "stickiness": {"enabled": false},
        "canary": {"steps": [{"setWeight": 100}]},
        "analysisTemplates": [{
            "name": "placeholder",
            "args": [{"name": "placeholder"}],
            "metrics": [{
                "name": "placeholder",
                "successCondition": "result < 1.0",
                "provider": {"cloudwatch": {"metricDataQueries": [{
                    "id": "placeholder",
                    "metricStat": {"namespace": "N", "metricName": "M", "stat": "Sum"}
                }]}}
            }]
        }],
    })
}

/// `canary.steps[1].setWeight` as JSON Pointer tokens: `canary`, `steps`, `1`, `setWeight`.
fn tokens(path: &str) -> Vec<String> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .flat_map(|part| {
            let mut out = Vec::new();
            let (name, rest) = part.split_once('[').unwrap_or((part, ""));
            if !name.is_empty() {
                out.push(name.to_string());
            }
            for index in rest.split('[') {
                let index = index.trim_end_matches(']');
                if !index.is_empty() {
                    out.push(index.to_string());
                }
            }
            out
        })
        .collect()
}

/// The placeholder's value at `path`, array indices taken as 0.
fn placeholder_at(path: &[String]) -> Option<Value> {
    let mut at = placeholder();
    for t in path {
        at = match at {
            Value::Object(mut m) => m.remove(t)?,
            Value::Array(mut a) if t.bytes().all(|b| b.is_ascii_digit()) && !a.is_empty() => {
                a.swap_remove(0)
            }
            _ => return None,
        };
    }
    Some(at)
}

/// Sets (or, with `None`, removes) the value at `path` in `doc`; whether it could.
fn put(doc: &mut Value, path: &[String], value: Option<Value>) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let mut at = doc;
    for t in parent {
        at = match at {
            Value::Object(m) => match m.get_mut(t) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(a) => match t.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (at, value) {
        (Value::Object(m), Some(v)) => {
            m.insert(last.clone(), v);
            true
        }
        (Value::Object(m), None) => m.remove(last).is_some(),
        (Value::Array(a), Some(v)) => match last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
            Some(slot) => {
                *slot = v;
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// `doc` with every field of `errors` replaced by the placeholder's (unknown or unplaceable
/// fields removed); `None` when nothing could be changed.
pub(super) fn repaired(doc: &Value, errors: &[FieldError]) -> Option<Value> {
    let mut out = doc.clone();
    let mut changed = false;
    for e in errors {
        let path = tokens(&e.path);
        let value = if e.message.starts_with("unknown field") {
            None
        } else {
            placeholder_at(&path)
        };
        changed |= put(&mut out, &path, value);
    }
    changed.then_some(out)
}

/// Whether a rule's error is about a field already reported: the field itself, inside it, or
/// the object holding it (a step whose misspelt `setWeigth` was dropped sets no kind).
pub(super) fn under(path: &str, reported: &[FieldError]) -> bool {
    let inside = |inner: &str, outer: &str| {
        outer.is_empty()
            || inner == outer
            || inner.starts_with(&format!("{outer}."))
            || inner.starts_with(&format!("{outer}["))
    };
    reported
        .iter()
        .any(|r| inside(path, &r.path) || (!path.is_empty() && inside(&r.path, path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_pointer_tokens() {
        assert_eq!(
            tokens("canary.steps[1].setWeight"),
            ["canary", "steps", "1", "setWeight"]
        );
        assert_eq!(tokens("a[0][2]"), ["a", "0", "2"]);
        assert_eq!(tokens("name"), ["name"]);
    }

    #[test]
    fn placeholders_come_from_the_first_item_of_arrays() {
        let p = placeholder_at(&tokens("analysisTemplates[3].metrics[2].name"));
        assert_eq!(p, Some(json!("placeholder")));
        assert_eq!(placeholder_at(&tokens("nothing.here")), None);
    }

    #[test]
    fn the_placeholder_is_a_valid_spec() {
        let checked = super::super::check_document(&placeholder());
        assert!(checked.is_ok(), "{checked:?}");
    }
}
