//! `api`: okra's REST API (API Gateway REST API, IAM auth, Lambda proxy integration).
//!
//! | method | path | what | status |
//! |---|---|---|---|
//! | `GET` | `/cells` | every cell's name and revision | 200 |
//! | `GET` | `/cells/{cell}` | spec, revision, `updatedAt`, lock, blocklist | 200, 404 |
//! | `PUT` | `/cells/{cell}` | store a spec (JSON, or YAML by `Content-Type`); `If-Match: <revision>` | 201, 200, 400, 409 |
//! | `DELETE` | `/cells/{cell}` | delete the spec (not while a rollout runs) | 204, 404, 409 |
//! | `GET` | `/cells/{cell}/plan` | dry run: discovery and decision, nothing written or started | 200, 404 |
//! | `GET` | `/cells/{cell}/rollouts?limit=` | rollout records, newest first | 200, 404 |
//! | `POST` | `/cells/{cell}/rollouts` | start now (the dispatcher for this cell, trigger `api`) | 202, 200, 404, 409 |
//! | `GET` | `/cells/{cell}/rollouts/{id}` | the record and its execution | 200, 404 |
//! | `POST` | `/cells/{cell}/rollouts/{id}/resume\|promote\|promote-full\|abort` | leave a signal for a running rollout | 202, 404, 409 |
//! | `POST` | `/cells/{cell}/rollouts/{id}/retry` | unblock a rolled-back or failed rollout's version and start again | 202, 200, 404, 409 |
//!
//! The function never shifts traffic: it stores specs and signals and starts executions. Every
//! answer is JSON; an error is `{"error": <type>, "message": ..}`, with `field` naming the request
//! part at fault (`path.cell`, `path.id`, `query.limit`, `body`, `header.if-match`,
//! `header.content-type`) and, for a spec that does not validate, `errors: [{path, message}]` in
//! the spec's own field names. Nothing is written for a request answered 4xx.
//!
//! The caller (`requestContext.identity.userArn`, else `caller`) labels the executions the API
//! starts. Only the route and the status are logged: never bodies, headers or identities.

use std::collections::BTreeMap;

pub use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use http::header::{ALLOW, CONTENT_TYPE, ETAG, HeaderName, HeaderValue};
use okra_core::Cell;
use okra_core::record::{self, Holder};
use okra_core::spec::{CellSpec, ParseError};
use okra_core::validate::{FieldError, check_document, read_document};
use okra_core::vocab::Trigger;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::OkraError;
use crate::handlers::discover::{self, DiscoverInput};
use crate::handlers::dispatch::{self, CellResult, DispatchOutcome};
use crate::ports::{ClusterPort, LoadBalancerPort};
use crate::state::{
    Block, ExecutionInfo, ExecutionsPort, Lock, Rollout, RolloutStatus, Signal, StatePort,
};

mod answers;
mod request;
mod routes;

pub use answers::*;
use request::*;
pub use routes::*;

/// The largest request body taken, in bytes (after base64 decoding); larger → 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Rollouts listed when `?limit=` is absent.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `?limit=`.
pub const MAX_LIMIT: usize = 100;
/// The longest cell name in a path.
pub const MAX_CELL_NAME: usize = 32;
/// The longest rollout id (a Step Functions execution name).
pub const MAX_ROLLOUT_ID: usize = 80;

// ---------------------------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------------------------

struct Api<'a, S, X, C, L, D> {
    state: &'a S,
    executions: &'a X,
    eks: &'a C,
    elb: &'a L,
    doctor: &'a D,
}

/// The account checks of `GET /cells/{cell}/doctor` (`okra doctor`): the function's main gives
/// them ([`crate::handlers::doctor::Checker`]), tests a double.
pub trait Doctor: Send + Sync {
    /// Checks `cell` against the account (read only).
    fn check(
        &self,
        cell: &Cell,
    ) -> impl std::future::Future<Output = crate::Result<crate::handlers::doctor::DoctorReport>> + Send;
}

/// The ports the API answers from.
#[allow(missing_debug_implementations)]
pub struct Ports<'a, S, X, C, L, D> {
    /// The table.
    pub state: &'a S,
    /// The state machine's executions.
    pub executions: &'a X,
    /// EKS.
    pub eks: &'a C,
    /// ELB.
    pub elb: &'a L,
    /// The account checks.
    pub doctor: &'a D,
}

/// Answers one API Gateway REST proxy request. Never fails: every error is an answer.
pub async fn handle<S, X, C, L, D>(
    ports: &Ports<'_, S, X, C, L, D>,
    req: ApiGatewayProxyRequest,
) -> ApiGatewayProxyResponse
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    D: Doctor,
{
    let api = Api {
        state: ports.state,
        executions: ports.executions,
        eks: ports.eks,
        elb: ports.elb,
        doctor: ports.doctor,
    };
    let (route, reply) = match route(req.http_method.as_str(), &request_path(&req)) {
        Err(e) => ("unmatched", route_error(e)),
        Ok(ep) => {
            let name = ep.route();
            let reply = match too_large(&req) {
                Some(too_large) => too_large,
                None => api.serve(ep, &req).await.unwrap_or_else(|e| e),
            };
            (name, reply)
        }
    };
    tracing::info!(route, status = reply.status, "api");
    reply.into_response()
}

impl<S, X, C, L, D> Api<'_, S, X, C, L, D>
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    D: Doctor,
{
    async fn serve(&self, ep: Endpoint, req: &ApiGatewayProxyRequest) -> Answer {
        match ep {
            Endpoint::ListCells => self.list_cells().await,
            Endpoint::GetCell { cell } => self.get_cell(&cell).await,
            Endpoint::PutCell { cell } => self.put_cell(&cell, req).await,
            Endpoint::DeleteCell { cell } => self.delete_cell(&cell).await,
            Endpoint::Plan { cell } => self.plan(&cell).await,
            Endpoint::Doctor { cell } => self.doctor(&cell).await,
            Endpoint::ListRollouts { cell } => self.list_rollouts(&cell, limit(req)?).await,
            Endpoint::StartRollout { cell } => self.start(&cell, labels(req), None).await,
            Endpoint::GetRollout { cell, id } => self.get_rollout(&cell, &id).await,
            Endpoint::Signal { cell, id, signal } => self.signal(&cell, &id, signal).await,
            Endpoint::Retry { cell, id } => self.retry(&cell, &id, req).await,
        }
    }

    async fn list_cells(&self) -> Answer {
        let mut cells: Vec<CellSummary> = self
            .state
            .list_cells()
            .await?
            .into_iter()
            .map(|c| CellSummary {
                name: c.spec.name,
                revision: c.revision,
                updated_at: c.updated_at,
            })
            .collect();
        cells.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Reply::json(200, &CellList { cells }))
    }

    async fn get_cell(&self, cell: &str) -> Answer {
        let stored = self
            .state
            .get_cell(cell)
            .await?
            .ok_or_else(|| Reply::not_found(format!("cell {cell}")))?;
        let lock = self.state.get_lock(cell).await?;
        let blocklist = self.state.blocklist(cell).await?;
        let revision = stored.revision;
        Ok(Reply::json(
            200,
            &CellView {
                spec: stored.spec,
                revision,
                updated_at: stored.updated_at,
                lock,
                blocklist,
            },
        )
        .with_header(ETAG, format!("\"{revision}\"")))
    }

    async fn put_cell(&self, cell: &str, req: &ApiGatewayProxyRequest) -> Answer {
        let expected = if_match(req)?;
        let spec = read_spec(req, cell)?;
        let (expected, created) = match expected {
            Some(n) => (Some(n), false),
            None => {
                let current = self.state.get_cell(cell).await?.map(|c| c.revision);
                (current, current.is_none())
            }
        };
        self.listener_free(&spec).await?;
        let revision = self.state.put_cell(spec.spec(), expected).await?;
        let status = if created { 201 } else { 200 };
        Ok(Reply::json(
            status,
            &PutOutput {
                cell: cell.to_string(),
                revision,
            },
        )
        .with_header(ETAG, format!("\"{revision}\"")))
    }

    /// Two cells writing the same forward action would undo each other's steps (each would see
    /// the other's write as drift, or worse, overwrite it): a spec whose listener (and rule) another
    /// stored cell already owns is refused with 409. The check is made against the table before
    /// the write; two `PUT`s racing for the same listener can both pass it (the window is one
    /// request), which the state machine's drift check then stops at the first step.
    async fn listener_free(&self, spec: &Cell) -> std::result::Result<(), Reply> {
        let listener = spec.ingress().listener().as_str();
        let rule = spec.ingress().rule().map(|r| r.as_str());
        let owner = self.state.list_cells().await?.into_iter().find(|c| {
            c.spec.name != spec.name
                && c.spec
                    .ingress
                    .listener()
                    .is_some_and(|(_, l)| l == listener)
                && c.spec.ingress.rule_arn() == rule
        });
        match owner {
            None => Ok(()),
            Some(c) => Err(Reply::err(
                409,
                ErrorBody {
                    field: Some("body".into()),
                    ..error_body(
                        "Conflict",
                        format!(
                            "ingress: cell {} already owns {}; two cells cannot share one \
                             forward action",
                            c.spec.name,
                            rule.map_or_else(
                                || format!("listener {listener}"),
                                |r| format!("rule {r}")
                            ),
                        ),
                    )
                },
            )),
        }
    }

    /// The execution holding the cell's lock, if it is running.
    async fn running_holder(&self, cell: &str) -> crate::Result<Option<String>> {
        let Some(lock) = self.state.get_lock(cell).await? else {
            return Ok(None);
        };
        let info = self.executions.describe(&lock.execution).await?;
        let live = record::holder(info.as_ref().map(|i| i.status.as_str())) == Holder::Live;
        Ok(live.then_some(lock.execution))
    }

    async fn delete_cell(&self, cell: &str) -> Answer {
        if let Some(holder) = self.running_holder(cell).await? {
            return Err(Reply::conflict(format!(
                "cell {cell}: rollout {holder} is running; abort it or wait for it to end"
            )));
        }
        if !self.state.delete_cell(cell).await? {
            return Err(Reply::not_found(format!("cell {cell}")));
        }
        Ok(Reply::empty(204))
    }

    async fn plan(&self, cell: &str) -> Answer {
        let stored = self
            .state
            .get_cell(cell)
            .await?
            .ok_or_else(|| Reply::not_found(format!("cell {cell}")))?;
        let blocklist = self
            .state
            .blocklist(cell)
            .await?
            .into_iter()
            .map(|b| b.version)
            .collect();
        let out = discover::handle(
            self.eks,
            self.elb,
            DiscoverInput {
                cell: stored.spec,
                blocklist,
                labels: BTreeMap::new(),
            },
        )
        .await?;
        Ok(Reply::json(200, &out))
    }

    async fn doctor(&self, cell: &str) -> Answer {
        let stored = self
            .state
            .get_cell(cell)
            .await?
            .ok_or_else(|| Reply::not_found(format!("cell {cell}")))?;
        let cell = stored.spec.validate().map_err(OkraError::from)?;
        let report = self.doctor.check(&cell).await?;
        Ok(Reply::json(200, &report))
    }

    async fn list_rollouts(&self, cell: &str, limit: usize) -> Answer {
        let rollouts = self.state.list_rollouts(cell, limit).await?;
        // History outlives a deleted cell; an unknown cell without history is a 404.
        if rollouts.is_empty() && self.state.get_cell(cell).await?.is_none() {
            return Err(Reply::not_found(format!("cell {cell}")));
        }
        Ok(Reply::json(200, &RolloutList { rollouts }))
    }

    async fn rollout(&self, cell: &str, id: &str) -> std::result::Result<Rollout, Reply> {
        self.state
            .get_rollout(cell, id)
            .await?
            .ok_or_else(|| Reply::not_found(format!("rollout {id} of cell {cell}")))
    }

    async fn get_rollout(&self, cell: &str, id: &str) -> Answer {
        let rollout = self.rollout(cell, id).await?;
        let execution = self.executions.describe(id).await?;
        Ok(Reply::json(200, &RolloutView { rollout, execution }))
    }

    async fn signal(&self, cell: &str, id: &str, signal: Signal) -> Answer {
        let rollout = self.rollout(cell, id).await?;
        if rollout.status != RolloutStatus::Running {
            return Err(Reply::conflict(format!(
                "rollout {id} is {}: only a running rollout takes signals",
                rollout.status
            )));
        }
        // Only a live execution can act on a signal: one that ended outside its own ends (the
        // finalizer records it soon) would take it and do nothing.
        match self.executions.describe(id).await? {
            Some(i) if i.is_running() => {}
            other => {
                return Err(Reply::conflict(format!(
                    "rollout {id} has no running execution ({}): nothing would act on the \
                     signal; `okra rollout retry` starts a new execution once the rollout is \
                     recorded as failed",
                    other.map_or_else(|| "not found".to_string(), |i| i.status)
                )));
            }
        }
        self.state.put_signal(cell, id, signal).await?;
        // A wait for a person is a callback task: answer it (the state machine then takes the
        // signal). A wait that ended already, or none yet, leaves the signal for the next poll.
        if let Some(token) = self.state.get_wait(cell, id).await? {
            self.executions
                .send_task_success(&token, &json!({ "signal": signal }))
                .await?;
        }
        Ok(Reply::json(
            202,
            &SignalOutput {
                cell: cell.to_string(),
                rollout: id.to_string(),
                signal,
            },
        ))
    }

    async fn retry(&self, cell: &str, id: &str, req: &ApiGatewayProxyRequest) -> Answer {
        let rollout = self.rollout(cell, id).await?;
        // A record still `running` whose execution ended (the finalizer has not recorded it yet)
        // is as good as failed.
        let dead = rollout.status == RolloutStatus::Running
            && self
                .executions
                .describe(id)
                .await?
                .is_none_or(|i| !i.is_running());
        if !dead && !rollout.status.is_failure() {
            return Err(Reply::conflict(format!(
                "rollout {id} is {}: only a rolled-back or failed rollout can be retried",
                rollout.status
            )));
        }
        if self.state.get_cell(cell).await?.is_none() {
            return Err(Reply::not_found(format!("cell {cell}")));
        }
        if let Some(holder) = self.running_holder(cell).await? {
            return Err(Reply::conflict(format!(
                "cell {cell}: rollout {holder} is running; retry when it has ended"
            )));
        }
        let attempt = self.state.unblock(cell, &rollout.to).await?;
        let mut labels = labels(req);
        labels.insert("retryOf".into(), id.to_string());
        self.start(cell, labels, Some(attempt)).await
    }

    /// The dispatcher for one cell, trigger `api`.
    async fn start(
        &self,
        cell: &str,
        labels: BTreeMap<String, String>,
        attempt: Option<u32>,
    ) -> Answer {
        let event = json!({"cells": [cell], "trigger": Trigger::Api, "labels": labels});
        let out = dispatch::handle(self.state, self.executions, self.eks, self.elb, event).await?;
        let Some(r) = out.results.into_iter().find(|r| r.cell == cell) else {
            return Err(Reply::error(
                500,
                "InternalError",
                format!("the dispatcher did not look at cell {cell}"),
            ));
        };
        let ok = |status| {
            Ok(Reply::json(
                status,
                &StartOutput {
                    result: r.clone(),
                    attempt,
                },
            ))
        };
        match r.outcome {
            DispatchOutcome::Started | DispatchOutcome::AlreadyRunning => ok(202),
            DispatchOutcome::NothingToDo => ok(200),
            DispatchOutcome::Skipped => Err(Reply::err(
                409,
                ErrorBody {
                    outcome: Some(r.outcome),
                    execution: r.execution.clone(),
                    ..error_body("Conflict", r.reason.clone())
                },
            )),
            DispatchOutcome::Error => {
                let error_type = r.error_type.as_deref().unwrap_or("AwsError");
                Err(Reply::err(
                    status_of(error_type),
                    ErrorBody {
                        outcome: Some(r.outcome),
                        ..error_body(error_type, r.reason.clone())
                    },
                ))
            }
        }
    }
}
