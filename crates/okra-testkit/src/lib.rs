//! okra's local AWS for tests.
//!
//! [`LocalAws`] starts, on 127.0.0.1 and free ports, a moto server (the AWS APIs) and a
//! `cargo lambda watch` (the Lambda Invoke API) that runs the workspace's **real** function
//! binaries (`functions/<name>`, binary name = package name) under the real Lambda Runtime API,
//! their AWS SDK clients pointed at moto through their environment. State machines run through
//! `tools/sfn-runner/run.mjs` (aws-local-stepfunctions on the project's Node 22), whose Task
//! states invoke those same binaries. Tools come from the project's `.tools/` and
//! `tools/local-aws/node/` (installed by `tools/local-aws/install.sh`, or `make setup`); when they
//! are missing, [`LocalAws::start`] fails with that advice: tests never skip.
//!
//! ```no_run
//! use okra_testkit::{LocalAws, RunRequest};
//! use serde_json::json;
//!
//! let aws = LocalAws::shared()?; // one stack per test binary, killed when the process exits
//! let (vpc, subnets) = aws.create_vpc_with_subnets()?;
//! let out = aws.invoke("discover-clusters", &json!({"vpc": vpc}))?.into_value()?;
//! let exec = aws.run_state_machine(
//!     &RunRequest::from_path("statemachine/rollout.asl.json")
//!         .substitution("DiscoverClustersFunctionArn", okra_testkit::lambda_arn("discover-clusters"))
//!         .function("DiscoverClustersFunctionArn", "discover-clusters")
//!         .input(json!({"cell": LocalAws::unique("cell")})),
//! )?;
//! assert_eq!(exec.states_entered()[0], "Start the counters");
//! # let _ = (subnets, out);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Isolation: moto is shared by all the tests of a process, so each test names its own resources
//! with [`LocalAws::unique`]. See `docs/local-aws.md` for the emulators' known gaps.

mod amp;
mod api_front;
mod backend;
mod ec2;
mod emulator;
mod faults;
mod hub;
mod iam;
mod kube_api;
mod lambda;
mod local_lambda;
mod prometheus;
mod server;
mod sfn;
mod sigv4;
mod stack;
pub mod template;

pub use amp::{AmpEndpoint, AmpLog, AmpWorkspace};
pub use api_front::{ApiFront, ApiFrontLog, ApiFrontSettings, ApiIdentity};
pub use backend::{Backend, BackendMode};
pub use ec2::{form_encode, xml_values};
pub use emulator::Emulator;
pub use faults::{FaultCounts, FaultKind, FaultPlan, FaultProxy};
pub use hub::{HUB_ADMIN_ARN, HUB_ADMIN_KEY, HUB_ADMIN_SECRET, HUB_NAMESPACE};
pub use kube_api::{
    AccessEntry, AccessPolicy, KubeApi, KubeApiSettings, KubeLog, KubeRefusal, KubeRequest,
};
pub use lambda::Invocation;
pub use local_lambda::{LambdaSettings, LambdaStats, LocalLambda};
pub use prometheus::{Prometheus, ScrapeTarget};
pub use sfn::{Execution, ExecutionStatus, RunRequest};
pub use stack::{LocalAws, LocalAwsBuilder, SAMPLE_SCHEDULE_GROUP, SAMPLE_SCHEDULE_ROLE_ARN};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Region of the local stack.
pub const REGION: &str = "us-east-1";
/// Account id moto uses (and the ARNs in tests should use).
pub const ACCOUNT_ID: &str = "123456789012";

/// The workspace root: `$OKRA_ROOT` when set, else this crate's `../..`.
pub fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("OKRA_ROOT") {
        return PathBuf::from(root);
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// `arn:aws:lambda:us-east-1:123456789012:function:NAME`, the ARN a SAM template's
/// `!GetAtt Fn.Arn` would give, for DefinitionSubstitutions.
pub fn lambda_arn(function: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}")
}

/// A name unique to this process and call: `prefix-<pid><seq><time>` in lowercase base 36
/// (at most 10 characters after the prefix and hyphen), valid for ALB, target group, EKS,
/// DynamoDB and most other AWS resource names when `prefix` is.
pub fn unique_name(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()) ^ d.as_secs())
        .unwrap_or(0);
    format!(
        "{prefix}-{}{}{}",
        base36(u64::from(std::process::id()) % 36u64.pow(4)),
        base36(seq),
        base36(nanos % 36u64.pow(3)),
    )
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[usize::try_from(n % 36).unwrap_or(0)]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_short() {
        let a = unique_name("cell");
        let b = unique_name("cell");
        assert_ne!(a, b);
        assert!(a.starts_with("cell-"));
        assert!(a.len() <= "cell-".len() + 10, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn arn_shape() {
        assert_eq!(
            lambda_arn("shift-weights"),
            "arn:aws:lambda:us-east-1:123456789012:function:shift-weights"
        );
    }
}
