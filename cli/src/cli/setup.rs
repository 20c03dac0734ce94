//! `okra init` and `okra doctor`: a starter spec from the account, and what a cell needs from it.

use super::*;

/// `okra init`.
pub(super) async fn init(
    global: &Global,
    opts: &okra_core::init::InitOptions,
    output_file: Option<&PathBuf>,
) -> Result<i32, CliError> {
    if let Some(f) = output_file
        && f.exists()
    {
        return Err(CliError::new(format!("{} exists", f.display()))
            .hint("choose another file; okra init never overwrites one"));
    }
    let conf = crate::ctx::load_config(&global.target()).await?;
    let eks = okra_aws::eks::Eks::from_config(&conf);
    let elb = okra_aws::elb::Elb::from_config(&conf);
    // The listener must exist (one read, nothing written).
    elb.read_action(&opts.listener_arn, opts.rule_arn.as_deref())
        .await?;
    let mut clusters = Vec::new();
    for n in eks.find_clusters(&opts.selector).await? {
        clusters.extend(eks.describe_cluster(&n).await?);
    }
    let starter = okra_core::init::starter(opts, &clusters);
    // What init writes must validate (a bug of okra otherwise).
    okra_core::validate::read_document(&starter.yaml)
        .map_err(|e| e.to_string())
        .and_then(|d| okra_core::validate::check_document(&d).map_err(|e| e.to_string()))
        .map_err(|e| CliError::internal(format!("the starter spec does not validate: {e}")))?;
    match output_file {
        Some(f) => {
            std::fs::write(f, &starter.yaml)
                .map_err(|e| CliError::new(format!("cannot write {}: {e}", f.display())))?;
            eprintln!("wrote {}", f.display());
            for n in &starter.notes {
                eprintln!("note: {n}");
            }
        }
        None => print!("{}", starter.yaml),
    }
    Ok(exit::OK)
}

/// `okra doctor`.
pub(super) async fn doctor(
    global: &Global,
    out: Output,
    cell: Option<&str>,
    file: Option<&PathBuf>,
    datadog_secret_arn: Option<&str>,
) -> Result<i32, CliError> {
    use okra_aws::app::Doctor as _;
    use okra_aws::handlers::doctor::{Checker, DoctorReport};
    use okra_core::doctor::Level;
    let target = global.target();
    let datadog = datadog_secret_arn.map(str::to_owned);
    let report: DoctorReport = match (file, cell) {
        (Some(file), _) => {
            let report = check_file(file);
            if !report.errors.is_empty() {
                report_lines(&report).iter().for_each(|l| eprintln!("{l}"));
                return Err(
                    CliError::new(format!("{}: not a valid cell spec", file.display()))
                        .hint("fix every error listed above first"),
                );
            }
            let (text, _) = read_spec(file)?;
            let spec = okra_core::validate::parse_and_validate(&text)
                .map_err(|e| CliError::internal(format!("the spec checked fine once: {e}")))?;
            let conf = crate::ctx::load_config(&target).await?;
            Checker::from_config(&conf, datadog).check(&spec).await?
        }
        // A stored cell: the API's route, as every other command.
        (None, Some(cell)) => match &global.api_url {
            // The API's function checks with its own role and Datadog secret.
            Some(url) => {
                crate::client::Client::api(url, &target)
                    .await?
                    .doctor(cell)
                    .await?
            }
            None => {
                let mut ctx = Ctx::new(&target).await?;
                ctx.doctor = ctx.doctor.clone().with_datadog_secret(datadog);
                ctx.answer(ctx.okra().doctor(cell).await)?
            }
        },
        (None, None) => return Err(CliError::usage("give a cell, or a spec with -f")),
    };
    let v = serde_json::to_value(&report)
        .map_err(|e| CliError::internal(format!("the report does not serialize: {e}")))?;
    print(out, &v, || {
        let mut lines = vec![format!(
            "okra doctor: cell {} in {}",
            report.cell, report.region
        )];
        for c in &report.checks {
            let level = match c.level {
                Level::Ok => "ok",
                Level::Info => "info",
                Level::Warning => "warning",
                Level::Error => "error",
            };
            lines.push(format!("{level:<8} {:<28} {}", c.id, c.summary));
            if let Some(fix) = &c.fix {
                lines.push(format!("{:<8} {:<28} -> {fix}", "", ""));
            }
        }
        lines
    });
    Ok(if report.level == Level::Error {
        exit::ERROR
    } else {
        exit::OK
    })
}
