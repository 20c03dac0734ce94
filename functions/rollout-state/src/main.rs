//! rollout-state: see `okra_aws::handlers::state`. Environment: `TABLE_NAME`,
//! `STATE_MACHINE_ARN`, `EVENT_BUS_NAME` (default `default`), and for the waits' background
//! samples `SAMPLE_SCHEDULE_GROUP`, `CHECK_METRICS_FUNCTION_ARN`, `SAMPLE_SCHEDULE_ROLE_ARN`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use okra_aws::dynamo::Dynamo;
use okra_aws::eventbridge::EventBridge;
use okra_aws::handlers::state::{handle, parse};
use okra_aws::scheduler::Scheduler;
use okra_aws::sfn::Sfn;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = okra_aws::aws_config().await;
    let state = Dynamo::from_env(&config)?;
    let executions = Sfn::from_env(&config)?;
    let events = EventBridge::from_env(&config);
    let schedules = Scheduler::from_env(&config)?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| async {
        let input = parse(event.payload)?;
        handle(
            &state,
            &executions,
            &events,
            &schedules,
            input,
            std::time::SystemTime::now(),
        )
        .await
    }))
    .await
}
