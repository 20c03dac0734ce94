//! The commands.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use okra_aws::ports::{ClusterPort, LoadBalancerPort};
use okra_aws::state::StatePort as _;
use okra_core::spec::CellSpec;
use okra_core::vocab::{Signal, StepKind};
use serde_json::{Value, json};

use crate::ctx::{Ctx, Target};
use crate::error::{CliError, exit};
use crate::view::{self, View};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  an error (the message says what happened and what to do)
  2  bad usage: unknown command or option, missing argument or setting
  3  `okra rollout watch`: the rollout ended rolled back or failed

Against AWS: the standard credential chain and region (AWS_PROFILE, AWS_REGION, SSO, instance
roles); --table and --state-machine-arn are the stack's StateTable and RolloutStateMachine
outputs. Against the local emulator: --endpoint-url http://127.0.0.1:PORT.";

mod args;
mod cells;
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
    let ctx = Ctx::new(&cli.global.target()).await?;
    match cli.command {
        Command::Cell(c) => cell(&ctx, out, c).await,
        Command::Plan { cell } => {
            let v = ctx.api("GET", &format!("/cells/{cell}/plan"), None).await?;
            print(out, &v, || plan_lines(&v));
            Ok(exit::OK)
        }
        Command::Rollout(r) => rollout(&ctx, out, r).await,
        Command::Clusters { cell } => clusters(&ctx, out, &cell).await,
        Command::TargetGroups { cell } => target_groups(&ctx, out, &cell).await,
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

fn plan_lines(v: &Value) -> Vec<String> {
    let d = &v["decision"];
    let mut lines = vec![format!(
        "cell {}: {}",
        v["cell"].as_str().unwrap_or_default(),
        d["kind"].as_str().unwrap_or("?")
    )];
    if let Some(reason) = d["reason"].as_str() {
        lines.push(format!("  {reason}"));
    }
    for (side, label) in [
        ("stable", "stable"),
        ("canary", "canary"),
        ("target", "target"),
    ] {
        if let Some(s) = d.get(side).filter(|s| !s.is_null()) {
            lines.push(format!(
                "  {label}: {} ({} clusters)",
                s["version"].as_str().unwrap_or("?"),
                s["members"].as_array().map_or(0, Vec::len)
            ));
        }
    }
    if let Some(steps) = d["plan"]["steps"].as_array() {
        let s: Vec<String> = steps
            .iter()
            .map(|s| match s["type"].as_str() {
                Some(t) if t == StepKind::SetWeight.as_ref() => format!("{} %", s["weight"]),
                Some(t) => t.to_owned(),
                None => "?".into(),
            })
            .collect();
        lines.push(format!("  steps: {}", s.join(" → ")));
    }
    if let Some(versions) = v["versions"].as_object() {
        let s: Vec<String> = versions.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        lines.push(format!("  serving clusters: {}", s.join(", ")));
    }
    for p in v["pending"].as_array().into_iter().flatten() {
        lines.push(format!("  pending: {p}"));
    }
    for i in v["ignored"].as_array().into_iter().flatten() {
        lines.push(format!("  ignored: {i}"));
    }
    lines
}
