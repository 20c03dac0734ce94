//! The AWS side of the CLI: okra-aws's adapters over SDK clients built from the standard
//! credential chain and region, and okra's application layer over them (what the API answers
//! with, called in-process).

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use okra_aws::app::{AppResult, Okra};
use okra_aws::dynamo::Dynamo;
use okra_aws::eks::Eks;
use okra_aws::elb::Elb;
use okra_aws::handlers::doctor::Checker;
use okra_aws::sfn::Sfn;

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
    pub doctor: Checker,
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
                "no table: give --table or set OKRA_TABLE (the stack's StateTableName output)",
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
            doctor: Checker::from_config(conf, std::env::var("OKRA_DATADOG_SECRET_ARN").ok()),
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
                 stack's RolloutStateMachineArn output)",
            )
        })
    }

    /// okra's application layer over this run's adapters: the same code the `api` function
    /// runs behind its routes.
    pub fn okra(&self) -> Okra<'_, Dynamo, Sfn, Eks, Elb, Checker> {
        Okra {
            state: &self.state,
            executions: &self.executions,
            eks: &self.eks,
            elb: &self.elb,
            doctor: &self.doctor,
        }
    }

    /// okra's answer, or its refusal as the CLI reports it (with advice by its type).
    pub fn answer<T>(&self, r: AppResult<T>) -> Result<T, CliError> {
        r.map_err(|e| CliError::from_app(&e, &self.table))
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
