//! check-metrics: see `okra_aws::handlers::check`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use okra_aws::cloudwatch::CloudWatch;
use okra_aws::datadog::Datadog;
use okra_aws::handlers::check::{Providers, handle};
use okra_aws::lambda::Lambda;
use okra_aws::probe::Probe;
use okra_aws::secrets::Secrets;

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
    run(service_fn(|event: LambdaEvent<serde_json::Value>| async {
        handle(&providers, okra_aws::parse_input(event.payload)?).await
    }))
    .await
}
