//! `okra cell`: store, show, plan and list cells; their clusters and target groups.

use super::*;

pub(super) async fn cell(ctx: &Ctx, out: Output, c: CellCommand) -> Result<i32, CliError> {
    let okra = ctx.okra();
    match c {
        CellCommand::Apply { file } => {
            // Checked offline before any client was made (`dispatch`): this reads it again.
            let (text, _) = read_spec(&file)?;
            let cell = okra_core::validate::parse_and_validate(&text).map_err(|e| {
                CliError::new(format!("{}: {e}", file.display()))
                    .hint("fix every error listed above, then apply again")
            })?;
            let stored = ctx.answer(okra.put_cell(&cell, None).await)?;
            print(out, &json_of(&stored.output)?, || {
                vec![format!(
                    "cell {}: stored (revision {})",
                    stored.output.cell, stored.output.revision
                )]
            });
        }
        CellCommand::Get { cell } => {
            let v = ctx.answer(okra.get_cell(&cell).await)?;
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
            let v = ctx.answer(okra.list_cells().await)?;
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
            ctx.require_state_machine()?;
            ctx.answer(okra.delete_cell(&cell).await)?;
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

pub(super) async fn stored_spec(ctx: &Ctx, cell: &str) -> Result<CellSpec, CliError> {
    Ok(ctx.answer(ctx.okra().get_cell(cell).await)?.spec)
}

pub(super) async fn cell_clusters(
    ctx: &Ctx,
    spec: &CellSpec,
) -> Result<Vec<okra_core::model::Cluster>, CliError> {
    let mut out = Vec::new();
    for name in ctx
        .eks
        .find_clusters(&spec.cluster_selector.match_tags)
        .await?
    {
        if let Some(c) = ctx.eks.describe_cluster(&name).await?
            && spec.cluster_selector.matches(&c.tags)
        {
            out.push(c);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A cluster of `okra clusters`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterRow {
    name: String,
    status: String,
    version: Option<String>,
    vpc_id: Option<String>,
}

/// A target group of `okra target-groups`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetGroupRow {
    name: String,
    arn: String,
    version: String,
    cluster: String,
    weight: u32,
    healthy: u32,
    total: u32,
}

pub(super) async fn clusters(ctx: &Ctx, out: Output, cell: &str) -> Result<i32, CliError> {
    let spec = stored_spec(ctx, cell).await?;
    let rows: Vec<ClusterRow> = cell_clusters(ctx, &spec)
        .await?
        .into_iter()
        .map(|c| ClusterRow {
            status: format!("{:?}", c.status).to_uppercase(),
            version: c.tags.get(&spec.version_tag).cloned(),
            name: c.name,
            vpc_id: c.vpc_id,
        })
        .collect();
    print(
        out,
        &json!({"cell": cell, "clusters": json_of(&rows)?}),
        || {
            let mut lines = vec![format!(
                "{:<32} {:<10} {:<10} {}",
                "CLUSTER", "STATUS", "VERSION", "VPC"
            )];
            for r in &rows {
                lines.push(format!(
                    "{:<32} {:<10} {:<10} {}",
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
        },
    );
    Ok(exit::OK)
}

pub(super) async fn target_groups(ctx: &Ctx, out: Output, cell: &str) -> Result<i32, CliError> {
    let spec = stored_spec(ctx, cell).await?;
    let mut weights = std::collections::BTreeMap::new();
    if let Some((_, listener)) = spec.ingress.listener() {
        let owned = ctx
            .elb
            .read_action(listener, spec.ingress.rule_arn())
            .await?;
        if let okra_core::model::CurrentAction::Forward(fa) = owned.action {
            let total: u32 = fa.targets.iter().map(|t| t.weight).sum::<u32>().max(1);
            for t in fa.targets {
                weights.insert(t.target_group_arn, t.weight * 100 / total);
            }
        }
    }
    let arns: Vec<String> = weights.keys().cloned().collect();
    let groups = ctx.elb.find_target_groups(cell, &arns).await?;
    let mut rows = Vec::new();
    for g in groups {
        let health = ctx.elb.target_health(&g.arn).await?;
        rows.push(TargetGroupRow {
            weight: weights.get(&g.arn).copied().unwrap_or(0),
            healthy: health.healthy,
            total: health.total,
            name: g.name,
            arn: g.arn,
            version: g.version,
            cluster: g.cluster,
        });
    }
    print(
        out,
        &json!({"cell": cell, "targetGroups": json_of(&rows)?}),
        || {
            let mut lines = vec![format!(
                "{:<32} {:<10} {:<28} {:>6}  {}",
                "TARGET GROUP", "VERSION", "CLUSTER", "WEIGHT", "HEALTHY"
            )];
            for r in &rows {
                lines.push(format!(
                    "{:<32} {:<10} {:<28} {:>4} %  {}/{}",
                    r.name, r.version, r.cluster, r.weight, r.healthy, r.total
                ));
            }
            if rows.is_empty() {
                lines.push("(no target group of this cell yet)".into());
            }
            lines
        },
    );
    Ok(exit::OK)
}
