//! The checked-in JSON Schema (`schema/cell.schema.json`) matches the spec types, and the
//! checked-in examples (`examples/cells/*.yaml`) are valid specs.
//!
//! After changing `spec.rs`, regenerate the schema with
//! `OKRA_BLESS=1 cargo test -p okra-core --test schema`.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A JSON value with every object's keys sorted: the same text whether or not serde_json's
/// `preserve_order` feature is on (a workspace build unifies features, and some dependency turns
/// it on, so `cargo test -p okra-core` and `cargo test --workspace` would order keys differently).
fn canonical(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let sorted: std::collections::BTreeMap<String, serde_json::Value> =
                m.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(canonical).collect())
        }
        other => other,
    }
}

/// The schema as checked in: keys sorted, pretty-printed, with a trailing newline.
fn generated_schema() -> String {
    let mut text =
        serde_json::to_string_pretty(&canonical(okra_core::spec::json_schema())).expect("JSON");
    text.push('\n');
    text
}

#[test]
fn checked_in_schema_is_up_to_date() {
    let path = repo_root().join("schema/cell.schema.json");
    let generated = generated_schema();
    if std::env::var_os("OKRA_BLESS").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(&checked_in).unwrap_or_default();
    assert!(
        canonical(parsed) == canonical(okra_core::spec::json_schema()) && checked_in == generated,
        "{} is not the schema of okra_core::spec::CellSpec any more (or is missing).\n\
         Regenerate it with:  OKRA_BLESS=1 cargo test -p okra-core --test schema\n\
         and commit the result.",
        path.display()
    );
}

#[test]
fn schema_describes_the_spec() {
    let schema = okra_core::spec::json_schema();
    assert_eq!(schema["title"], "CellSpec");
    let required = schema["required"].as_array().unwrap();
    for field in ["name", "ingress", "clusterSelector", "targetGroup"] {
        assert!(
            required.iter().any(|r| r == field),
            "{field} is not required: {required:?}"
        );
    }
    assert_eq!(schema["additionalProperties"], false);
}

#[test]
fn example_cells_are_valid() {
    let dir = repo_root().join("examples/cells");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 2,
        "expected the example cells in {}",
        dir.display()
    );
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = okra_core::validate::parse_and_validate(&text) {
            panic!("{}: {e}", path.display());
        }
    }
}
