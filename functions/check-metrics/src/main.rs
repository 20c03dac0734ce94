//! check-metrics: see `okra_aws::handlers::check`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use okra_aws::cloudwatch::CloudWatch;
use okra_aws::datadog::Datadog;
use okra_aws::handlers::check::handle;
use okra_aws::secrets::Secrets;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = okra_aws::aws_config().await;
    let cloudwatch = CloudWatch::new(aws_sdk_cloudwatch::Client::new(&config));
    let datadog = Datadog::from_env(Secrets::new(aws_sdk_secretsmanager::Client::new(&config)));
    run(service_fn(|event: LambdaEvent<serde_json::Value>| async {
        handle(&cloudwatch, &datadog, okra_aws::parse_input(event.payload)?).await
    }))
    .await
}
