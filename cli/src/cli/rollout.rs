//! `okra rollout`: status, watch, signals, retry, report.

use okra_aws::app::StartOutput;

use super::*;

pub(super) async fn id_of(client: &Client, r: &RolloutRef) -> Result<String, CliError> {
    match &r.id {
        Some(id) => Ok(id.clone()),
        None => client.newest(&r.cell).await,
    }
}

pub(super) async fn signal(
    client: &Client,
    out: Output,
    r: &RolloutRef,
    signal: Signal,
) -> Result<i32, CliError> {
    let action = signal.path_segment();
    let id = id_of(client, r).await?;
    let sent = client.signal(&r.cell, &id, signal).await?;
    print(out, &json_of(&sent)?, || {
        vec![format!(
            "rollout {id}: {action} sent; the state machine takes it at its next poll"
        )]
    });
    Ok(exit::OK)
}

pub(super) fn start_lines(s: &StartOutput) -> Vec<String> {
    let r = &s.result;
    vec![format!(
        "cell {}: {}{} — {}",
        r.cell,
        r.outcome,
        r.execution
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default(),
        r.reason
    )]
}

pub(super) async fn rollout(
    client: &Client,
    out: Output,
    r: RolloutCommand,
) -> Result<i32, CliError> {
    match r {
        RolloutCommand::Start { cell } => {
            let started = client.start(&cell).await?;
            print(out, &json_of(&started)?, || start_lines(&started));
            Ok(exit::OK)
        }
        RolloutCommand::Status(r) => {
            let id = id_of(client, &r).await?;
            let v = view::gather(client, &r.cell, &id).await?;
            print(out, &serde_json::to_value(&v).unwrap_or_default(), || {
                view::render(&v)
            });
            Ok(exit::OK)
        }
        RolloutCommand::Watch { r, interval } => {
            let id = id_of(client, &r).await?;
            let v = watch(
                client,
                &r.cell,
                &id,
                out,
                Duration::from_secs_f64(interval.max(0.1)),
            )
            .await?;
            Ok(if v.failed() {
                exit::ROLLOUT_FAILED
            } else {
                exit::OK
            })
        }
        RolloutCommand::Resume(r) => signal(client, out, &r, Signal::Resume).await,
        RolloutCommand::Promote { r, full } => {
            let s = if full {
                Signal::PromoteFull
            } else {
                Signal::Promote
            };
            signal(client, out, &r, s).await
        }
        RolloutCommand::Abort(r) => signal(client, out, &r, Signal::Abort).await,
        RolloutCommand::Retry(r) => {
            let id = id_of(client, &r).await?;
            let started = client.retry(&r.cell, &id).await?;
            print(out, &json_of(&started)?, || start_lines(&started));
            Ok(exit::OK)
        }
        RolloutCommand::Report { cell, id, html } => {
            let id = match id {
                Some(id) => id,
                None => client.newest(&cell).await?,
            };
            let v = view::gather(client, &cell, &id).await?;
            std::fs::write(&html, crate::report::html(&v))
                .map_err(|e| CliError::new(format!("cannot write {}: {e}", html.display())))?;
            print(
                out,
                &json!({"cell": cell, "rollout": id, "html": html}),
                || vec![format!("wrote {}", html.display())],
            );
            Ok(exit::OK)
        }
    }
}

/// Follows a rollout until it ends; returns its last view. A terminal gets live bars; anything
/// else gets a line per change.
pub async fn watch(
    client: &Client,
    cell: &str,
    id: &str,
    out: Output,
    interval: Duration,
) -> Result<View, CliError> {
    let live = out == Output::Text && std::io::stdout().is_terminal();
    let mut shown_history = 0;
    let mut last_line = String::new();
    let mut shown_samples = 0;
    // A rollout just started has no record until its first state ran.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !client.has_rollout(cell, id).await? {
        if std::time::Instant::now() > deadline {
            return Err(CliError::new(format!(
                "rollout {id} of cell {cell}: no record after 60 s"
            ))
            .hint("`okra rollout status <cell>` lists what there is; check the execution in Step Functions"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let multi = MultiProgress::new();
    let mut bars: Vec<(String, ProgressBar)> = Vec::new();
    let header = live.then(|| {
        let pb = multi.add(ProgressBar::new_spinner());
        pb.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    loop {
        let v = view::gather(client, cell, id).await?;
        let say = |line: String| {
            if live {
                multi.println(line).ok();
            } else if out == Output::Text {
                println!("{line}");
            }
        };
        for h in v.rollout.history.iter().skip(shown_history) {
            say(format!("  {}", view::history_line(h)));
        }
        shown_history = v.rollout.history.len();
        for s in v.samples.iter().skip(shown_samples) {
            say(format!("  analysis: {}", view::verdict_line(s)));
        }
        shown_samples = v.samples.len();
        let step = v
            .step
            .as_ref()
            .map(|(i, w)| format!("step {}/{} {w}", i + 1, v.step_count))
            .unwrap_or_else(|| "starting".into());
        let weights: Vec<String> = v
            .weights
            .iter()
            .map(|w| {
                format!(
                    "{} {} {:>3} %",
                    w.version,
                    view::bar(w.percent, 20),
                    w.percent
                )
            })
            .collect();
        if let Some(h) = &header {
            h.set_message(format!(
                "{cell} {} → {}  {step}  [{}]",
                v.rollout.from.as_deref().unwrap_or("(none)"),
                v.rollout.to,
                v.rollout.status
            ));
            for w in &v.weights {
                let pb = match bars.iter().find(|(ver, _)| *ver == w.version) {
                    Some((_, pb)) => pb.clone(),
                    None => {
                        let pb = multi.add(ProgressBar::new(100));
                        pb.set_style(
                            ProgressStyle::with_template(
                                "  {prefix:>8} {bar:30.cyan/blue} {pos:>3} %",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("█▉░"),
                        );
                        pb.set_prefix(w.version.clone());
                        bars.push((w.version.clone(), pb.clone()));
                        pb
                    }
                };
                pb.set_position(u64::from(w.percent));
            }
            for (ver, pb) in &bars {
                if !v.weights.iter().any(|w| &w.version == ver) {
                    pb.set_position(0);
                }
            }
        } else if out == Output::Text {
            let line = format!("  {step} | {}", weights.join(" | "));
            if line != last_line {
                println!("{line}");
                last_line = line;
            }
        }
        if v.done() {
            if let Some(h) = &header {
                h.finish_and_clear();
            }
            for (_, pb) in &bars {
                pb.abandon();
            }
            match out {
                Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
                }
                Output::Text => {
                    println!(
                        "rollout {id}: {}{}",
                        v.rollout.status,
                        v.verdict()
                            .map(|s| format!(" — last analysis {}", view::verdict_line(s)))
                            .unwrap_or_default()
                    );
                }
            }
            return Ok(v);
        }
        tokio::time::sleep(interval).await;
    }
}
