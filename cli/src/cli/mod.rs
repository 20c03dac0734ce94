//! The commands.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use okra_aws::ports::{ClusterPort, LoadBalancerPort};
use okra_core::vocab::{Signal, StepKind};
use serde_json::{Value, json};

use okra_aws::handlers::discover::DiscoverOutput;

use crate::client::Client;
use crate::ctx::{Ctx, Target};
use crate::error::{CliError, exit};
use crate::view::{self, View};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  an error (the message says what happened and what to do)
  2  bad usage: unknown command or option, missing argument or setting
  3  `okra rollout watch`: the rollout ended rolled back or failed

Through the API (a team's everyday use): --api-url is the stack's ApiUrl output; your
credentials (the standard chain: AWS_PROFILE, SSO, ...) need only the stack's okra-operator or
okra-viewer policy. `okra init` and `okra doctor -f` read the account with your own rights.

In process (administrators, the local stack): the standard credential chain and region;
--table and --state-machine-arn are the stack's StateTableName and RolloutStateMachineArn
outputs. Against the local emulator: --endpoint-url http://127.0.0.1:PORT.";

mod args;
mod cells;
mod events;
mod files;
mod rollout;
mod setup;

pub use args::*;
use cells::*;
use files::*;
pub use rollout::*;
use setup::*;

/// Runs the CLI; returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            e.report();
            e.code
        }
    }
}

/// A value as one line of JSON.
fn compact(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// An answer as JSON (`--output json`).
fn json_of(value: &impl serde::Serialize) -> Result<Value, CliError> {
    serde_json::to_value(value)
        .map_err(|e| CliError::internal(format!("the answer does not serialize: {e}")))
}

fn print(output: Output, value: &Value, text: impl FnOnce() -> Vec<String>) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Text => {
            for l in text() {
                println!("{l}");
            }
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32, CliError> {
    let out = cli.global.output;
    // Offline commands need no AWS configuration.
    if let Command::Cell(CellCommand::Binding {
        file,
        cluster,
        service,
        service_port,
        namespace,
    }) = &cli.command
    {
        let (text, _) = read_spec(file)?;
        let spec = okra_core::validate::parse_and_validate(&text).map_err(|e| {
            CliError::new(format!("{}: {e}", file.display()))
                .hint("fix the spec first (every error is listed above)")
        })?;
        let manifest = binding_manifest(&spec, cluster, service, *service_port, namespace);
        match out {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(&manifest).unwrap_or_default()
            ),
            Output::Text => print!(
                "# okra cell {}, cluster {cluster}: register the Service in okra's target group.\n{}",
                spec.name,
                serde_yaml_ng::to_string(&manifest).unwrap_or_default()
            ),
        }
        return Ok(exit::OK);
    }
    match &cli.command {
        Command::Cell(CellCommand::Validate { files }) => return check_files(out, files.clone()),
        Command::Cell(CellCommand::Schema) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&okra_core::spec::json_schema()).unwrap_or_default()
            );
            return Ok(exit::OK);
        }
        Command::Init {
            name,
            listener,
            rule,
            selector,
            version_tag,
            port,
            schema,
            output_file,
        } => {
            let selector = selector
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .ok_or_else(|| CliError::usage(format!("--selector {kv}: not KEY=VALUE")))
                })
                .collect::<Result<_, _>>()?;
            let opts = okra_core::init::InitOptions {
                name: name.clone(),
                listener_arn: listener.clone(),
                rule_arn: rule.clone(),
                selector,
                version_tag: version_tag.clone(),
                port: *port,
                schema: schema.clone(),
            };
            return init(&cli.global, &opts, output_file.as_ref()).await;
        }
        Command::Cell(CellCommand::Lint { paths }) => {
            let roots = if paths.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                paths.clone()
            };
            return check_files(out, spec_files(&roots)?);
        }
        // A spec with mistakes is refused before anything asks for a region or a table.
        Command::Cell(CellCommand::Apply { file }) => {
            let report = check_file(file);
            if !report.errors.is_empty() {
                report_lines(&report).iter().for_each(|l| eprintln!("{l}"));
                return Err(CliError::new(format!(
                    "{}: not applied ({} {})",
                    file.display(),
                    report.errors.len(),
                    plural(report.errors.len(), "error", "errors")
                ))
                .hint("fix every error listed above, then apply again (`okra cell validate -f` checks offline)"));
            }
        }
        Command::Doctor {
            cell,
            file,
            datadog_secret_arn,
        } => {
            return doctor(
                &cli.global,
                out,
                cell.as_deref(),
                file.as_ref(),
                datadog_secret_arn.as_deref(),
            )
            .await;
        }
        _ => {}
    }
    let client = Client::new(cli.global.api_url.as_deref(), &cli.global.target()).await?;
    match cli.command {
        Command::Cell(c) => cell(&client, out, c).await,
        Command::Plan { cell } => {
            let plan = client.plan(&cell).await?;
            print(out, &json_of(&plan)?, || plan_lines(&plan));
            Ok(exit::OK)
        }
        Command::Rollout(r) => rollout(&client, out, r).await,
        Command::Events {
            cell,
            rollouts,
            follow,
            interval,
        } => events::events(&client, out, &cell, rollouts, follow, interval).await,
        Command::Clusters { cell } => clusters(&client, out, &cell).await,
        Command::TargetGroups { cell } => target_groups(&client, out, &cell).await,
        Command::Doctor { .. } | Command::Init { .. } => {
            unreachable!("doctor and init build their own clients")
        }
    }
}

/// The TargetGroupBinding of aws-load-balancer-controller (`elbv2.k8s.aws/v1beta1`) that registers
/// `service`'s endpoints in the target group okra makes for `cluster`, named by `targetGroupName`
/// (deterministic: [`okra_core::naming::target_group_name`]).
pub fn binding_manifest(
    spec: &okra_core::spec::CellSpec,
    cluster: &str,
    service: &str,
    port: u16,
    namespace: &str,
) -> Value {
    let target_type = match spec.target_group.target_type {
        okra_core::spec::TargetType::Instance => "instance",
        okra_core::spec::TargetType::Ip => "ip",
    };
    serde_json::json!({
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {
            "name": format!("okra-{}", spec.name),
            "namespace": namespace,
            "labels": {"okra.io/cell": spec.name, "okra.io/cluster": cluster},
        },
        "spec": {
            "serviceRef": {"name": service, "port": port},
            "targetGroupName": okra_core::naming::target_group_name(&spec.name, cluster),
            "targetType": target_type,
        },
    })
}

fn plan_lines(o: &DiscoverOutput) -> Vec<String> {
    use okra_core::decision::{Decision, PlanStep};
    let d = &o.outcome.decision;
    let mut lines = vec![format!("cell {}: {}", o.cell, d.kind())];
    let (reason, sides, plan) = match d {
        Decision::NothingToDo { reason } | Decision::Rollback { reason, .. } => {
            (Some(reason), vec![], None)
        }
        Decision::Initialize { target } => (None, vec![("target", target)], None),
        Decision::StartRollout {
            stable,
            canary,
            plan,
        }
        | Decision::ResumeRollout {
            stable,
            canary,
            plan,
            ..
        } => (
            None,
            vec![("stable", stable), ("canary", canary)],
            Some(plan),
        ),
        Decision::ScaleOut { serving, added, .. } => {
            lines.push(format!("  joining: {}", added.join(", ")));
            (None, vec![("serving", serving)], None)
        }
        Decision::ScaleIn { serving, .. } => (None, vec![("serving", serving)], None),
    };
    if let Decision::ScaleOut { left, .. } | Decision::ScaleIn { left, .. } = d {
        for l in left {
            lines.push(format!("  leaving: {} ({})", l.target_group_arn, l.reason));
        }
    }
    if let Some(reason) = reason {
        lines.push(format!("  {reason}"));
    }
    for (label, side) in sides {
        lines.push(format!(
            "  {label}: {} ({} clusters)",
            side.version.as_deref().unwrap_or("?"),
            side.members.len()
        ));
    }
    if let Some(plan) = plan {
        let steps: Vec<String> = plan
            .steps
            .iter()
            .map(|s| match s {
                PlanStep::SetWeight { weight } => format!("{weight} %"),
                other => StepKind::from(other).to_string(),
            })
            .collect();
        lines.push(format!("  steps: {}", steps.join(" → ")));
    }
    if let Some(w) = &o.window {
        lines.push(match (w.open, &w.opens) {
            (true, _) => "  deployment window: open".to_owned(),
            (false, Some(t)) => format!(
                "  deployment window: closed; the next weight step may run at {t}{}",
                humantime::parse_rfc3339(t)
                    .ok()
                    .and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
                    .map(|d| format!(" (in {})", view::human_seconds(d.as_secs())))
                    .unwrap_or_default()
            ),
            (false, None) => {
                "  deployment window: closed, and it does not open in the next 400 days".to_owned()
            }
        });
    }
    for r in &o.retirement {
        let what = match (r.fate.as_str(), &r.at) {
            ("baking", Some(at)) => format!("retires at {at}"),
            ("retire", _) => "retires at the next reconcile".to_owned(),
            ("kept", _) => "kept for a pin-back".to_owned(),
            ("pending", _) => "may still roll out: left".to_owned(),
            ("foreign", _) => "not made by okra: never touched".to_owned(),
            (f, _) => f.to_owned(),
        };
        lines.push(format!(
            "  target group {} ({} on {}): {what}",
            r.target_group, r.version, r.cluster
        ));
    }
    let s: Vec<String> = o
        .outcome
        .versions
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect();
    lines.push(format!("  serving clusters: {}", s.join(", ")));
    // Pending and ignored clusters as one line of JSON each.
    for p in &o.outcome.pending {
        lines.push(format!("  pending: {}", compact(p)));
    }
    for i in &o.outcome.ignored {
        lines.push(format!("  ignored: {}", compact(i)));
    }
    lines
}
