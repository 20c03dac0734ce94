//! okra's AWS side: ports (one small trait per service), their aws-sdk adapters, and the Lambda
//! handlers written over the ports.
//!
//! The decisions live in `okra-core`; this crate only reads AWS, hands what it read to the core,
//! and writes back what the core decided.

pub mod app;
pub mod autoscaling;
pub mod cloudtrail;
pub mod cloudwatch;
pub mod datadog;
pub mod dynamo;
pub mod ec2;
pub mod eks;
pub mod elb;
pub mod error;
pub mod eventbridge;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod handlers;
pub mod kube;
pub mod lambda;
pub mod ports;
pub mod probe;
pub mod scheduler;
pub mod secrets;
pub mod sfn;
pub mod state;
pub mod tagging;

pub use error::{OkraError, Result};

/// The shared AWS configuration of a function: region, credentials and endpoint from the
/// environment (`AWS_ENDPOINT_URL` points the functions at the local emulator in tests). The
/// function's name goes into the SDK's user agent (`app/NAME`): CloudTrail's `userAgent` says
/// which okra function made a call, and the local AWS counts calls per function (the IAM test).
///
/// The SDK's behaviour is pinned ([`behavior_version`]: a new SDK release does not change
/// defaults such as retries or checksums under a deployed function), and every call has
/// [`timeouts`] below the functions' own Lambda time-outs (29 s for the API), so a call that
/// hangs fails as a typed transient error the state machine retries, instead of the whole
/// invocation timing out with nothing said.
pub async fn aws_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(behavior_version()).timeout_config(timeouts());
    if let Some(app) = app_name(std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok().as_deref()) {
        loader = loader.app_name(app);
    }
    loader.load().await
}

/// The SDK behaviour version okra is tested with.
pub fn behavior_version() -> aws_config::BehaviorVersion {
    aws_config::BehaviorVersion::v2026_01_12()
}

/// Time-outs of every AWS call: 3.1 s to connect, 10 s per attempt, 20 s per operation (its
/// retries included) — under every function's Lambda time-out (template.yaml: 29 s to 300 s).
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_millis(3100))
        .operation_attempt_timeout(std::time::Duration::from_secs(10))
        .operation_timeout(std::time::Duration::from_secs(20))
        .build()
}

/// The user agent's app name for a Lambda function's name (None outside Lambda, or for a name
/// the SDK refuses).
fn app_name(function: Option<&str>) -> Option<aws_config::AppName> {
    aws_config::AppName::new(function?.to_string()).ok()
}

/// A variable the function cannot start without (set by template.yaml), or an error naming it.
pub fn required_env(name: &str) -> std::result::Result<String, lambda_runtime::Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

/// The longest error message a function returns about its input: Step Functions keeps it in the
/// execution history (and a bad input could be large).
pub const MAX_INPUT_ERROR: usize = 300;

/// Reads a function's input, naming the field that does not fit (`side.members[1].vpcId:
/// invalid type ...`) in a message short enough for an execution history, whatever the input's
/// size. The Lambda runtime's own error would repeat the whole input.
pub fn parse_input<T: serde::de::DeserializeOwned>(input: serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let mut message = e.into_inner().to_string();
        if message.len() > MAX_INPUT_ERROR {
            let mut cut = MAX_INPUT_ERROR;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        OkraError::InvalidInput(if path == "." {
            message
        } else {
            format!("{path}: {message}")
        })
    })
}

#[cfg(test)]
mod input_tests {
    use super::*;

    #[test]
    fn every_call_is_bounded_below_the_shortest_function_time_out() {
        let t = timeouts();
        let api_lambda_timeout = std::time::Duration::from_secs(29); // template.yaml, ApiFunction
        assert!(
            t.operation_timeout()
                .is_some_and(|d| d < api_lambda_timeout)
        );
        assert!(t.operation_attempt_timeout() < t.operation_timeout());
        assert!(t.connect_timeout().is_some());
    }

    #[tokio::test]
    async fn the_sdk_behaviour_is_pinned_and_the_time_outs_applied() {
        let conf = aws_config().await;
        assert_eq!(
            format!("{:?}", conf.behavior_version()),
            format!("{:?}", Some(aws_config::BehaviorVersion::v2026_01_12()))
        );
        let t = conf.timeout_config().expect("a timeout config");
        assert_eq!(t.operation_timeout(), timeouts().operation_timeout());
    }

    #[test]
    fn the_function_name_is_the_app_name() {
        let app = app_name(Some("okra-EnsureTargetGroupsFunction-1A2B3C")).expect("valid");
        assert_eq!(app.as_ref(), "okra-EnsureTargetGroupsFunction-1A2B3C");
        assert!(app_name(None).is_none());
        assert!(
            app_name(Some("not valid")).is_none(),
            "spaces are not allowed"
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        weight: u32,
    }

    #[test]
    fn a_bad_input_names_the_field_briefly() {
        let huge = "x".repeat(100_000);
        let v = serde_json::json!({"name": "a", "items": [{"weight": 1}, {"weight": huge}]});
        let e = parse_input::<Input>(v).unwrap_err();
        assert_eq!(e.error_type(), "InvalidInput");
        let m = e.to_string();
        assert!(m.contains("items[1].weight"), "{m}");
        assert!(m.len() < MAX_INPUT_ERROR + 100, "{} bytes", m.len());
        let ok = parse_input::<Input>(serde_json::json!({"name": "a", "items": []})).unwrap();
        assert_eq!(ok.name, "a");
    }
}
