//! okra's end-to-end tests, in one test binary (one link of the AWS SDK instead of one per
//! suite): the real function binaries under the local Lambda service, the strict moto and the
//! shipped state machine. Each suite is a module (`cargo test -p okra-e2e --test e2e -- rollout::`);
//! suites that change what their local AWS does for every caller (throttling, the IAM template)
//! have a stack of their own.

// Test code: a panic with the failing line is the right report.
#![allow(clippy::unwrap_used)]

mod common;

mod api_calls;
mod callbacks;
mod continuation;
mod doctor;
mod examples;
mod functions;
mod hotswap;
mod iam;
mod kube_api;
mod notifications;
mod providers;
mod reliability;
mod rollout;
mod scheduled;
mod state_table;
mod strict_aws;
mod template;
mod throttling;
mod timeouts;
mod windows;
