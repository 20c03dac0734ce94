//! okra's AWS side: ports (one small trait per service), their aws-sdk adapters, and the Lambda
//! handlers written over the ports.
//!
//! The decisions live in `okra-core`; this crate only reads AWS, hands what it read to the core,
//! and writes back what the core decided.

pub mod autoscaling;
pub mod cloudwatch;
pub mod datadog;
pub mod dynamo;
pub mod eks;
pub mod elb;
pub mod error;
pub mod eventbridge;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod handlers;
pub mod ports;
pub mod secrets;
pub mod sfn;
pub mod state;

pub use error::{OkraError, Result};

/// The shared AWS configuration of a function: region, credentials and endpoint from the
/// environment (`AWS_ENDPOINT_URL` points the functions at the local emulator in tests).
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A variable the function cannot start without (set by template.yaml), or an error naming it.
pub fn required_env(name: &str) -> std::result::Result<String, lambda_runtime::Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}
