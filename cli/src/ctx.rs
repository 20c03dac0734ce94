//! The AWS side of the CLI: okra-aws's adapters over SDK clients built from the standard
//! credential chain and region, and in-process calls of the API handler.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_lambda_events::encodings::Body;
use okra_aws::dynamo::Dynamo;
use okra_aws::eks::Eks;
use okra_aws::elb::Elb;
use okra_aws::handlers::api::{self, ApiGatewayProxyRequest};
use okra_aws::sfn::Sfn;
use serde_json::Value;

use crate::error::CliError;

/// Where the CLI's AWS is.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `--region` (else the standard chain: `AWS_REGION`, the profile).
    pub region: Option<String>,
    /// `--endpoint-url`: every service at this URL (an emulator).
    pub endpoint_url: Option<String>,
    /// `--sfn-endpoint-url`: Step Functions elsewhere (the local Step Functions service).
    pub sfn_endpoint_url: Option<String>,
    /// `--table`.
    pub table: Option<String>,
    /// `--state-machine-arn`.
    pub state_machine_arn: Option<String>,
}

/// The clients and adapters of one CLI run.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The table.
    pub state: Dynamo,
    /// The state machine's executions.
    pub executions: Sfn,
    /// EKS.
    pub eks: Eks,
    /// ELBv2.
    pub elb: Elb,
    /// The account checks (`okra doctor`, `GET /cells/{cell}/doctor`).
    pub doctor: okra_aws::handlers::doctor::Checker,
    /// Step Functions (execution history).
    pub sfn: aws_sdk_sfn::Client,
    /// The state machine, if one was named.
    pub state_machine_arn: Option<String>,
    /// The table's name.
    pub table: String,
}

/// The AWS configuration of `target`: the standard chain, `--region` and `--endpoint-url` over it.
/// A usage error when no region is known.
pub async fn load_config(target: &Target) -> Result<SdkConfig, CliError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &target.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &target.endpoint_url {
        loader = loader.endpoint_url(e.clone());
    }
    let conf = loader.load().await;
    if conf.region().is_none() {
        return Err(CliError::usage(
            "no AWS region: give --region or set AWS_REGION (or a region in your AWS profile)",
        ));
    }
    Ok(conf)
}

/// A placeholder for commands that start no execution and read none.
const NO_STATE_MACHINE: &str = "arn:aws:states:us-east-1:000000000000:stateMachine:unset";

impl Ctx {
    /// Loads the AWS configuration and builds the adapters.
    pub async fn new(target: &Target) -> Result<Self, CliError> {
        Self::from_config(&load_config(target).await?, target)
    }

    /// Builds the adapters over a loaded configuration.
    pub fn from_config(conf: &SdkConfig, target: &Target) -> Result<Self, CliError> {
        if conf.region().is_none() {
            return Err(CliError::usage(
                "no AWS region: give --region or set AWS_REGION (or a region in your AWS profile)",
            ));
        }
        let table = target.table.clone().ok_or_else(|| {
            CliError::usage(
                "no table: give --table or set OKRA_TABLE (the stack's StateTable output)",
            )
        })?;
        let sfn = match &target.sfn_endpoint_url {
            Some(url) => aws_sdk_sfn::Client::from_conf(
                aws_sdk_sfn::config::Builder::from(conf)
                    .endpoint_url(url.clone())
                    .build(),
            ),
            None => aws_sdk_sfn::Client::new(conf),
        };
        Ok(Self {
            state: Dynamo::new(aws_sdk_dynamodb::Client::new(conf), table.clone()),
            executions: Sfn::new(
                sfn.clone(),
                target
                    .state_machine_arn
                    .clone()
                    .unwrap_or_else(|| NO_STATE_MACHINE.to_owned()),
            ),
            eks: Eks::from_config(conf),
            elb: Elb::from_config(conf),
            doctor: okra_aws::handlers::doctor::Checker::from_config(
                conf,
                std::env::var("OKRA_DATADOG_SECRET_ARN").ok(),
            ),
            sfn,
            state_machine_arn: target.state_machine_arn.clone(),
            table,
        })
    }

    /// The state machine's ARN, or the usage error that asks for it.
    pub fn require_state_machine(&self) -> Result<&str, CliError> {
        self.state_machine_arn.as_deref().ok_or_else(|| {
            CliError::usage(
                "no state machine: give --state-machine-arn or set OKRA_STATE_MACHINE_ARN (the \
                 stack's RolloutStateMachine output)",
            )
        })
    }

    /// One request to okra's API handler, in-process (the same code the `api` function runs):
    /// the answer's JSON body, or the error it answered.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<(String, &str)>,
    ) -> Result<Value, CliError> {
        let mut req = ApiGatewayProxyRequest::default();
        req.http_method = http::Method::from_bytes(method.as_bytes())
            .map_err(|e| CliError::internal(format!("method {method}: {e}")))?;
        req.path = Some(path.to_owned());
        req.request_context.identity.caller = Some("okra-cli".to_owned());
        if let Some((text, content_type)) = body {
            req.body = Some(text);
            if let Ok(v) = http::HeaderValue::from_str(content_type) {
                req.headers.insert(http::header::CONTENT_TYPE, v);
            }
        }
        let ports = api::Ports {
            state: &self.state,
            executions: &self.executions,
            eks: &self.eks,
            elb: &self.elb,
            doctor: &self.doctor,
        };
        let res = api::handle(&ports, req).await;
        let text = match res.body {
            Some(Body::Text(t)) => t,
            Some(Body::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        };
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .map_err(|e| CliError::internal(format!("the API answered non-JSON: {e}")))?
        };
        if res.status_code >= 400 {
            return Err(CliError::from_api(res.status_code, &value, &self.table));
        }
        Ok(value)
    }
}

/// Labels from `key=value` pairs.
pub fn labels(pairs: &[String]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
