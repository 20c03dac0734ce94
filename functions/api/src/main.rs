//! api: see `okra_aws::handlers::api`. Environment: `TABLE_NAME`, `STATE_MACHINE_ARN`,
//! `DATADOG_SECRET_ARN` (optional: the doctor checks it can be read), `DISPATCHER_ROLE_ARN`
//! (optional: the doctor checks its access entry on each Argo CD hub).

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use okra_aws::app::Okra;
use okra_aws::dynamo::Dynamo;
use okra_aws::eks::Eks;
use okra_aws::elb::Elb;
use okra_aws::handlers::api::{ApiGatewayProxyRequest, handle};
use okra_aws::handlers::doctor::Checker;
use okra_aws::sfn::Sfn;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = okra_aws::aws_config().await;
    let state = Dynamo::from_env(&config)?;
    let executions = Sfn::from_env(&config)?;
    let eks = Eks::from_config(&config);
    let elb = Elb::from_config(&config);
    let doctor = Checker::from_config(&config, std::env::var("DATADOG_SECRET_ARN").ok())
        .with_dispatcher_role(std::env::var("DISPATCHER_ROLE_ARN").ok());
    let okra = Okra {
        state: &state,
        executions: &executions,
        eks: &eks,
        elb: &elb,
        doctor: &doctor,
    };
    let okra = &okra;
    run(service_fn(
        move |event: LambdaEvent<ApiGatewayProxyRequest>| async move {
            Ok::<_, Error>(handle(okra, event.payload).await)
        },
    ))
    .await
}
