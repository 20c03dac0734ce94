//! `okra cell validate -f` / `lint`: spec files checked offline, every error with its path.

use super::*;

/// What `validate` found in one file.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FileReport {
    /// The file.
    pub(super) file: String,
    /// The cell's name, when the file names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cell: Option<String>,
    /// Whether the file is a valid cell spec.
    pub(super) valid: bool,
    /// Every error, with its field path (`path` is empty for the file as a whole).
    pub(super) errors: Vec<okra_core::validate::FieldError>,
}

pub(super) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Every error of one spec file, offline.
pub(super) fn check_file(file: &PathBuf) -> FileReport {
    use okra_core::validate::{FieldError, check_document, read_document};
    let whole = |message: String| FieldError {
        path: String::new(),
        message,
    };
    let (cell, errors) = match read_spec(file) {
        Err(e) => (None, vec![whole(e.to_string())]),
        Ok((text, _)) => match read_document(&text) {
            Err(e) => (None, vec![whole(format!("not YAML or JSON: {e}"))]),
            Ok(doc) => (
                doc.get("name").and_then(Value::as_str).map(str::to_owned),
                check_document(&doc)
                    .err()
                    .map(|e| e.errors)
                    .unwrap_or_default(),
            ),
        },
    };
    FileReport {
        file: file.display().to_string(),
        cell,
        valid: errors.is_empty(),
        errors,
    }
}

pub(super) fn report_lines(r: &FileReport) -> Vec<String> {
    if r.valid {
        return vec![format!(
            "{}: ok (cell {})",
            r.file,
            r.cell.as_deref().unwrap_or("?")
        )];
    }
    let mut lines = vec![format!(
        "{}: {} {}",
        r.file,
        r.errors.len(),
        plural(r.errors.len(), "error", "errors")
    )];
    lines.extend(r.errors.iter().map(|e| {
        if e.path.is_empty() {
            format!("  {}", e.message)
        } else {
            format!("  {}: {}", e.path, e.message)
        }
    }));
    lines
}

/// `okra cell validate` / `lint`: every file's errors; exit 1 when any file has one.
pub(super) fn check_files(out: Output, files: Vec<PathBuf>) -> Result<i32, CliError> {
    if files.is_empty() {
        return Err(CliError::new("no cell spec found (*.yaml, *.yml, *.json)")
            .hint("name spec files or folders that hold them"));
    }
    let reports: Vec<FileReport> = files.iter().map(check_file).collect();
    let valid = reports.iter().all(|r| r.valid);
    let v = json!({"valid": valid, "files": reports});
    print(out, &v, || {
        let mut lines: Vec<String> = reports.iter().flat_map(report_lines).collect();
        let bad = reports.iter().filter(|r| !r.valid).count();
        if reports.len() > 1 {
            lines.push(format!(
                "{} {} checked, {bad} with errors",
                reports.len(),
                plural(reports.len(), "spec", "specs")
            ));
        }
        lines
    });
    Ok(if valid { exit::OK } else { exit::ERROR })
}

/// The spec files under `roots` (folders walked, sorted; files as given).
pub(super) fn spec_files(roots: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    pub(super) fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for p in entries {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else if p
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for r in roots {
        if r.is_dir() {
            walk(r, &mut out)
                .map_err(|e| CliError::new(format!("cannot read {}: {e}", r.display())))?;
        } else {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// Reads a spec file's text and its media type.
pub(super) fn read_spec(file: &PathBuf) -> Result<(String, &'static str), CliError> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::new(format!("reading standard input: {e}")))?
    } else {
        std::fs::read_to_string(file).map_err(|e| {
            CliError::new(format!("cannot read {}: {e}", file.display()))
                .hint("give the path of a cell spec (YAML or JSON) with -f")
        })?
    };
    let json = file.extension().is_some_and(|e| e == "json");
    Ok((
        text,
        if json {
            "application/json"
        } else {
            "application/yaml"
        },
    ))
}
