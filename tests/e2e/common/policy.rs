//! template.yaml read as data: its resources and the IAM statements of its functions, for the
//! tests that hold it to its promises (template.rs) and to the calls the functions make
//! (iam.rs).

use std::path::Path;

use serde_yaml_ng::Value;

pub fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

pub fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml is YAML")
}

pub fn resources(t: &Value) -> Vec<(String, &Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v))
        .collect()
}

pub fn of_type<'a>(t: &'a Value, ty: &str) -> Vec<(String, &'a Value)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .collect()
}

/// Every IAM statement of every function and state machine (inline `Statement` lists, also
/// inside `!If`).
pub fn statements(t: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    fn walk(owner: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Mapping(m) => {
                if let Some(Value::Sequence(stmts)) = m.get("Statement") {
                    for s in stmts {
                        out.push((owner.to_string(), s.clone()));
                    }
                }
                for (_, v) in m {
                    walk(owner, v, out);
                }
            }
            Value::Sequence(s) => s.iter().for_each(|v| walk(owner, v, out)),
            Value::Tagged(t) => walk(owner, &t.value, out),
            _ => {}
        }
    }
    for (name, r) in resources(t) {
        walk(&name, &r["Properties"]["Policies"], &mut out);
    }
    out
}

pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(s) => s.iter().flat_map(strings).collect(),
        Value::Tagged(t) => strings(&t.value),
        _ => Vec::new(),
    }
}

/// The functions `sam build` makes, from the root Makefile's `build-<LogicalId>: PKG = <package>`
/// lines (template.yaml builds every function with it): (logical id, package).
pub fn sam_build_targets() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("Makefile")).expect("Makefile");
    text.lines()
        .filter_map(|l| {
            let (target, pkg) = l.strip_prefix("build-")?.split_once(": PKG = ")?;
            Some((target.to_string(), pkg.trim().to_string()))
        })
        .collect()
}

/// The logical id of the function built from `functions/<package>`.
pub fn function_of_package(package: &str) -> Option<String> {
    sam_build_targets()
        .into_iter()
        .find(|(_, p)| p == package)
        .map(|(id, _)| id)
}

/// Whether `pattern` (an IAM action, `*` any run of characters) matches `action`,
/// case-insensitively as IAM compares actions.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| glob(rest, &a[i..])),
            Some((c, rest)) => a.first() == Some(c) && glob(rest, &a[1..]),
        }
    }
    glob(
        pattern.to_ascii_lowercase().as_bytes(),
        action.to_ascii_lowercase().as_bytes(),
    )
}

/// The actions `owner`'s `Allow` statements name.
pub fn allowed_actions(t: &Value, owner: &str) -> Vec<String> {
    statements(t)
        .into_iter()
        .filter(|(o, s)| o == owner && s["Effect"].as_str() == Some("Allow"))
        .flat_map(|(_, s)| strings(&s["Action"]))
        .collect()
}
