//! shift-weights: see `okra_aws::handlers::shift`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use okra_aws::eks::Eks;
use okra_aws::elb::Elb;
use okra_aws::handlers::shift::handle;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = okra_aws::aws_config().await;
    let elb = Elb::from_config(&config);
    let eks = Eks::from_config(&config);
    run(service_fn(|event: LambdaEvent<serde_json::Value>| async {
        handle(&elb, &eks, okra_aws::parse_input(event.payload)?).await
    }))
    .await
}
