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

/// Each rollout event kind's schema as checked in under `schema/events/`.
fn event_schema_text(kind: okra_core::vocab::RolloutEventKind) -> String {
    let mut text =
        serde_json::to_string_pretty(&canonical(okra_core::events::schema(kind))).expect("JSON");
    text.push('\n');
    text
}

const BEGIN: &str =
    "  # BEGIN event schemas: generated from okra_core::events by `make schema`; do not edit.\n";
const END: &str = "  # END event schemas\n";

/// template.yaml's schema registry and one `AWS::EventSchemas::Schema` per event kind, each
/// schema's content on one line (JSON in a single-quoted YAML scalar).
fn template_block() -> String {
    use strum::IntoEnumIterator as _;
    let mut out = String::from(BEGIN);
    out.push_str(
        "  EventSchemaRegistry:\n    Type: AWS::EventSchemas::Registry\n    Properties:\n      \
         RegistryName: !Sub ${AWS::StackName}-okra\n      Description: okra's rollout events \
         (source okra), one schema per detail-type.\n",
    );
    for kind in okra_core::vocab::RolloutEventKind::iter() {
        let logical = format!("{}Schema", kind.as_ref().replace(' ', ""));
        let content = serde_json::to_string(&canonical(okra_core::events::schema(kind)))
            .expect("JSON")
            .replace('\'', "''");
        out.push_str(&format!(
            "  {logical}:\n    Type: AWS::EventSchemas::Schema\n    Properties:\n      \
             RegistryName: !GetAtt EventSchemaRegistry.RegistryName\n      SchemaName: {}\n      \
             Type: JSONSchemaDraft4\n      Description: The \"{kind}\" event's detail (schema/events/{}).\n      \
             Content: '{content}'\n",
            okra_core::events::schema_name(kind),
            okra_core::events::schema_file(kind),
        ));
    }
    out.push_str(END);
    out
}

#[test]
fn checked_in_event_schemas_and_the_templates_registry_are_up_to_date() {
    use strum::IntoEnumIterator as _;
    let bless = std::env::var_os("OKRA_BLESS").is_some_and(|v| !v.is_empty() && v != "0");
    let dir = repo_root().join("schema/events");
    let mut stale = Vec::new();
    let mut files = std::collections::BTreeSet::new();
    for kind in okra_core::vocab::RolloutEventKind::iter() {
        let path = dir.join(okra_core::events::schema_file(kind));
        files.insert(okra_core::events::schema_file(kind));
        let text = event_schema_text(kind);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).unwrap_or_default() != text {
            stale.push(path.display().to_string());
        }
    }
    // No schema of a kind that is gone.
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !files.contains(&name) {
            if bless {
                std::fs::remove_file(dir.join(&name)).unwrap();
            } else {
                stale.push(format!("schema/events/{name} (no such event kind)"));
            }
        }
    }
    let template_path = repo_root().join("template.yaml");
    let template = std::fs::read_to_string(&template_path).unwrap();
    let (Some(a), Some(b)) = (template.find(BEGIN), template.find(END)) else {
        panic!(
            "template.yaml has no `{}` ... `{}` block",
            BEGIN.trim(),
            END.trim()
        );
    };
    let block = template_block();
    if bless {
        let new = format!("{}{block}{}", &template[..a], &template[b + END.len()..]);
        std::fs::write(&template_path, new).unwrap();
    } else if template[a..b + END.len()] != block {
        stale.push("template.yaml (its event schemas)".into());
    }
    assert!(
        stale.is_empty(),
        "not the schemas of okra_core::events any more: {stale:?}\n\
         Regenerate them with:  make schema  (OKRA_BLESS=1 cargo test -p okra-core --test schema)"
    );
}
