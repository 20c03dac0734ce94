//! `okra cell`: store, show, plan and list cells; their clusters and target groups.

use super::*;

pub(super) async fn cell(ctx: &Ctx, out: Output, c: CellCommand) -> Result<i32, CliError> {
    match c {
        CellCommand::Apply { file } => {
            let (text, media) = read_spec(&file)?;
            let doc: Value = serde_yaml_ng::from_str(&text).map_err(|e| {
                CliError::new(format!("{}: not YAML or JSON: {e}", file.display()))
                    .hint("fix the file's syntax and apply again")
            })?;
            let name = doc["name"].as_str().ok_or_else(|| {
                CliError::new(format!("{}: name: missing", file.display()))
                    .hint("a cell spec starts with `name: <cell>`")
            })?;
            let v = ctx
                .api(
                    "PUT",
                    &format!("/cells/{name}"),
                    Some((text.clone(), media)),
                )
                .await?;
            print(out, &v, || {
                vec![format!(
                    "cell {name}: stored (revision {})",
                    v["revision"].as_u64().unwrap_or(0)
                )]
            });
        }
        CellCommand::Get { cell } => {
            let v = ctx.api("GET", &format!("/cells/{cell}"), None).await?;
            print(out, &v, || {
                let mut lines = vec![format!(
                    "# cell {cell}, revision {}, updated {}",
                    v["revision"],
                    v["updatedAt"].as_str().unwrap_or_default()
                )];
                if let Some(lock) = v.get("lock").filter(|l| !l.is_null()) {
                    lines.push(format!(
                        "# locked by rollout {} ({})",
                        lock["execution"].as_str().unwrap_or_default(),
                        lock["version"].as_str().unwrap_or_default()
                    ));
                }
                for b in v["blocklist"].as_array().into_iter().flatten() {
                    lines.push(format!(
                        "# blocked: {} ({})",
                        b["version"].as_str().unwrap_or_default(),
                        view::one_line(b["reason"].as_str().unwrap_or_default())
                    ));
                }
                lines.push(serde_yaml_ng::to_string(&v["spec"]).unwrap_or_default());
                lines
            });
        }
        CellCommand::List => {
            let v = ctx.api("GET", "/cells", None).await?;
            print(out, &v, || {
                let cells = v["cells"].as_array().cloned().unwrap_or_default();
                if cells.is_empty() {
                    return vec!["no cells: add one with `okra cell apply -f cell.yaml`".into()];
                }
                let mut lines = vec![format!("{:<24} {:>8}  {}", "CELL", "REVISION", "UPDATED")];
                for c in cells {
                    lines.push(format!(
                        "{:<24} {:>8}  {}",
                        c["name"].as_str().unwrap_or_default(),
                        c["revision"],
                        c["updatedAt"].as_str().unwrap_or_default()
                    ));
                }
                lines
            });
        }
        CellCommand::Delete { cell } => {
            ctx.require_state_machine()?;
            ctx.api("DELETE", &format!("/cells/{cell}"), None).await?;
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
    let v = ctx.api("GET", &format!("/cells/{cell}"), None).await?;
    serde_json::from_value(v["spec"].clone())
        .map_err(|e| CliError::internal(format!("the stored spec does not read: {e}")))
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

pub(super) async fn clusters(ctx: &Ctx, out: Output, cell: &str) -> Result<i32, CliError> {
    let spec = stored_spec(ctx, cell).await?;
    let list = cell_clusters(ctx, &spec).await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({"name": c.name, "status": format!("{:?}", c.status).to_uppercase(),
                   "version": c.tags.get(&spec.version_tag), "vpcId": c.vpc_id})
        })
        .collect();
    let v = json!({"cell": cell, "clusters": rows});
    print(out, &v, || {
        let mut lines = vec![format!(
            "{:<32} {:<10} {:<10} {}",
            "CLUSTER", "STATUS", "VERSION", "VPC"
        )];
        for r in &rows {
            lines.push(format!(
                "{:<32} {:<10} {:<10} {}",
                r["name"].as_str().unwrap_or_default(),
                r["status"].as_str().unwrap_or_default(),
                r["version"].as_str().unwrap_or("-"),
                r["vpcId"].as_str().unwrap_or("-")
            ));
        }
        if rows.is_empty() {
            lines.push("(no cluster matches the cell's clusterSelector)".into());
        }
        lines
    });
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
    for g in &groups {
        let health = ctx.elb.target_health(&g.arn).await?;
        rows.push(
            json!({"name": g.name, "arn": g.arn, "version": g.version, "cluster": g.cluster,
                         "weight": weights.get(&g.arn).copied().unwrap_or(0),
                         "healthy": health.healthy, "total": health.total}),
        );
    }
    let v = json!({"cell": cell, "targetGroups": rows});
    print(out, &v, || {
        let mut lines = vec![format!(
            "{:<32} {:<10} {:<28} {:>6}  {}",
            "TARGET GROUP", "VERSION", "CLUSTER", "WEIGHT", "HEALTHY"
        )];
        for r in &rows {
            lines.push(format!(
                "{:<32} {:<10} {:<28} {:>4} %  {}/{}",
                r["name"].as_str().unwrap_or_default(),
                r["version"].as_str().unwrap_or_default(),
                r["cluster"].as_str().unwrap_or_default(),
                r["weight"],
                r["healthy"],
                r["total"]
            ));
        }
        if rows.is_empty() {
            lines.push("(no target group of this cell yet)".into());
        }
        lines
    });
    Ok(exit::OK)
}
