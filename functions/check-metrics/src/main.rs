//! check-metrics: see `okra_aws::handlers::check` (the state machine's samples) and
//! `okra_aws::handlers::background` (a schedule's samples during a wait). Environment:
//! `DATADOG_SECRET_ARN`, `DATADOG_SITE`, `TABLE_NAME`, `STATE_MACHINE_ARN`,
//! `SAMPLE_SCHEDULE_GROUP`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use okra_aws::cloudwatch::CloudWatch;
use okra_aws::datadog::Datadog;
use okra_aws::dynamo::Dynamo;
use okra_aws::handlers::background::{self, CheckAnswer, CheckRequest};
use okra_aws::handlers::check::{Providers, handle};
use okra_aws::lambda::Lambda;
use okra_aws::probe::Probe;
use okra_aws::scheduler::Scheduler;
use okra_aws::secrets::Secrets;
use okra_aws::sfn::Sfn;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = okra_aws::aws_config().await;
    let secrets = Secrets::new(aws_sdk_secretsmanager::Client::new(&config));
    let cloudwatch = CloudWatch::new(aws_sdk_cloudwatch::Client::new(&config));
    let datadog = Datadog::from_env(secrets.clone());
    let http = Probe::from_config(secrets, &config);
    let lambda = Lambda::new(aws_sdk_lambda::Client::new(&config));
    let providers = Providers {
        metrics: &cloudwatch,
        datadog: &datadog,
        http: &http,
        lambda: &lambda,
    };
    let state = Dynamo::from_env(&config)?;
    let executions = Sfn::from_env(&config)?;
    let schedules = Scheduler::for_deleting(
        aws_sdk_scheduler::Client::new(&config),
        okra_aws::required_env("SAMPLE_SCHEDULE_GROUP")?,
    );
    run(service_fn(|event: LambdaEvent<serde_json::Value>| async {
        Ok::<_, okra_aws::error::OkraError>(match background::parse(event.payload)? {
            CheckRequest::Sample(input) => {
                CheckAnswer::Sample(Box::new(handle(&providers, *input).await?))
            }
            CheckRequest::Scheduled(s) => CheckAnswer::Scheduled(
                background::sample(&providers, &state, &executions, &schedules, s).await?,
            ),
        })
    }))
    .await
}
