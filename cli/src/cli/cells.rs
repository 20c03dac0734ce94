//! `okra cell`: store, show, plan and list cells; their clusters and target groups.

use super::*;

pub(super) async fn cell(client: &Client, out: Output, c: CellCommand) -> Result<i32, CliError> {
    match c {
        CellCommand::Apply { file } => {
            // Checked offline before any client was made (`dispatch`): this reads it again.
            let (text, _) = read_spec(&file)?;
            let cell = okra_core::validate::parse_and_validate(&text).map_err(|e| {
                CliError::new(format!("{}: {e}", file.display()))
                    .hint("fix every error listed above, then apply again")
            })?;
            let stored = client.put_cell(&cell).await?;
            print(out, &json_of(&stored)?, || {
                vec![format!(
                    "cell {}: stored (revision {})",
                    stored.cell, stored.revision
                )]
            });
        }
        CellCommand::Get { cell } => {
            let v = client.get_cell(&cell).await?;
            // The spec as the API shows it (JSON's field order), as YAML.
            let spec = json_of(&v.spec)?;
            print(out, &json_of(&v)?, || {
                let mut lines = vec![format!(
                    "# cell {cell}, revision {}, updated {}",
                    v.revision, v.updated_at
                )];
                if let Some(lock) = &v.lock {
                    lines.push(format!(
                        "# locked by rollout {} ({})",
                        lock.execution, lock.version
                    ));
                }
                for b in &v.blocklist {
                    lines.push(format!(
                        "# blocked: {} ({})",
                        b.version,
                        view::one_line(&b.reason)
                    ));
                }
                lines.push(serde_yaml_ng::to_string(&spec).unwrap_or_default());
                lines
            });
        }
        CellCommand::List => {
            let v = client.list_cells().await?;
            print(out, &json_of(&v)?, || {
                if v.cells.is_empty() {
                    return vec!["no cells: add one with `okra cell apply -f cell.yaml`".into()];
                }
                let mut lines = vec![format!("{:<24} {:>8}  {}", "CELL", "REVISION", "UPDATED")];
                for c in &v.cells {
                    lines.push(format!(
                        "{:<24} {:>8}  {}",
                        c.name, c.revision, c.updated_at
                    ));
                }
                lines
            });
        }
        CellCommand::Delete { cell } => {
            client.delete_cell(&cell).await?;
            print(out, &json!({"cell": cell, "deleted": true}), || {
                vec![format!("cell {cell}: deleted")]
            });
        }
        // Answered offline in `dispatch`.
        CellCommand::Binding { .. }
        | CellCommand::Validate { .. }
        | CellCommand::Lint { .. }
        | CellCommand::Schema => {
            unreachable!("offline commands need no AWS")
        }
    }
    Ok(exit::OK)
}

pub(super) async fn clusters(client: &Client, out: Output, cell: &str) -> Result<i32, CliError> {
    let list = client.clusters(cell).await?;
    let rows = &list.clusters;
    print(out, &json_of(&list)?, || {
        let argocd = rows.iter().any(|r| r.argocd.is_some());
        let mut lines = vec![format!(
            "{:<32} {:<10} {:<10} {:<22}{}",
            "CLUSTER",
            "STATUS",
            "VERSION",
            "VPC",
            if argocd { " ARGO CD" } else { "" }
        )];
        for r in rows {
            let reg = match &r.argocd {
                None => String::new(),
                Some(a) => match (&a.secret, &a.reason) {
                    (Some(s), _) => format!(" {s} in {}", a.hub),
                    (None, Some(why)) => format!(" - ({why})"),
                    (None, None) => " -".to_string(),
                },
            };
            let retired = r
                .retired
                .as_deref()
                .map(|t| format!(" [retired {t}]"))
                .unwrap_or_default();
            lines.push(format!(
                "{:<32} {:<10} {:<10} {:<22}{reg}{retired}",
                r.name,
                r.status,
                r.version.as_deref().unwrap_or("-"),
                r.vpc_id.as_deref().unwrap_or("-")
            ));
        }
        if rows.is_empty() {
            lines.push("(no cluster matches the cell's clusterSelector)".into());
        }
        lines
    });
    Ok(exit::OK)
}

pub(super) async fn target_groups(
    client: &Client,
    out: Output,
    cell: &str,
) -> Result<i32, CliError> {
    let list = client.target_groups(cell).await?;
    let rows = &list.target_groups;
    print(out, &json_of(&list)?, || {
        let mut lines = vec![format!(
            "{:<32} {:<10} {:<28} {:>6}  {:<8} {}",
            "TARGET GROUP", "VERSION", "CLUSTER", "WEIGHT", "HEALTHY", "RETIREMENT"
        )];
        for r in rows {
            let retirement = match (&r.retirement, &r.retires_at) {
                (Some(f), Some(at)) => format!("{f} until {at}"),
                (Some(f), None) => f.clone(),
                (None, _) => "-".to_string(),
            };
            lines.push(format!(
                "{:<32} {:<10} {:<28} {:>4} %  {:<8} {retirement}",
                r.name,
                r.version,
                r.cluster,
                r.weight,
                format!("{}/{}", r.healthy, r.total)
            ));
        }
        if rows.is_empty() {
            lines.push("(no target group of this cell yet)".into());
        }
        lines
    });
    Ok(exit::OK)
}
