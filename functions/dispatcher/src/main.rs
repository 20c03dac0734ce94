//! dispatcher: see `okra_aws::handlers::dispatch`. Environment: `TABLE_NAME`,
//! `STATE_MACHINE_ARN`, `EVENT_BUS_NAME`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use okra_aws::autoscaling::AutoScaling;
use okra_aws::dynamo::Dynamo;
use okra_aws::eks::Eks;
use okra_aws::elb::Elb;
use okra_aws::eventbridge::EventBridge;
use okra_aws::handlers::dispatch::{LifecyclePorts, handle};
use okra_aws::kube::Kube;
use okra_aws::sfn::Sfn;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = okra_aws::aws_config().await;
    let state = Dynamo::from_env(&config)?;
    let executions = Sfn::from_env(&config)?;
    let eks = Eks::from_config(&config);
    let elb = Elb::from_config(&config);
    let events = EventBridge::from_env(&config);
    let autoscaling = AutoScaling::new(aws_sdk_autoscaling::Client::new(&config));
    let hub = Kube::from_config(&config);
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let lifecycle = LifecyclePorts {
            autoscaling: &autoscaling,
            hub: &hub,
        };
        handle(
            &state,
            &executions,
            &eks,
            &elb,
            &events,
            lifecycle,
            event.payload,
        )
    }))
    .await
}
