//! okra's core: every rollout decision, with no AWS SDK and no I/O.
//!
//! The Lambda functions read AWS through small ports (`okra-aws`), hand what they read to this
//! crate, and write back what it decides. Everything here is deterministic: the same inputs give
//! the same answer, so a task that Step Functions runs twice decides the same thing twice.
//!
//! - [`spec`]: the cell spec (YAML/JSON) and its JSON Schema;
//! - [`cell`]: a validated cell: the spec with its ARNs, durations and plan read once;
//! - [`validate`]: field-path errors for bad specs, AWS limits included;
//! - [`arn`]: ARNs, read by one parser;
//! - [`duration`]: `30s`, `5m`, `1h`;
//! - [`model`]: what discovery reads (clusters, target groups, the forward action);
//! - [`versions`]: semver grouping, replicas threshold, blocklist, pinned version;
//! - [`weights`]: the forward action for "the new version gets W %";
//! - [`shift`]: a step's write: in place, drift, verified;
//! - [`record`]: the lock's holder, a rollout's versions, history details, reasons in one line;
//! - [`decision`]: nothing to do / start / resume / rollback / scale-out;
//! - [`dispatch`]: which cells an event concerns;
//! - [`naming`]: deterministic target-group and execution names;
//! - [`nodes`]: a cluster's EC2 nodes: instance registration and the load balancer's way in;
//! - [`doctor`]: what a cell needs from the account, checked before the first rollout;
//! - [`init`]: a starter cell spec from what the account has;
//! - [`vocab`]: every name the functions, the state machine, the API and the CLI share.

pub mod analysis;
pub mod answer;
pub mod argocd;
pub mod arn;
pub mod attempts;
pub mod cell;
pub mod decision;
pub mod dispatch;
pub mod doctor;
pub mod duration;
pub mod events;
pub mod health;
pub mod history;
pub mod init;
pub mod model;
pub mod naming;
pub mod nodes;
pub mod owner;
pub mod record;
pub mod retire;
pub mod schedule;
pub mod shift;
pub mod spec;
pub mod standby;
pub mod validate;
pub mod versions;
pub mod vocab;
pub mod weights;
pub mod windows;

pub use cell::Cell;
pub use decision::{Decision, decide};
pub use spec::CellSpec;
