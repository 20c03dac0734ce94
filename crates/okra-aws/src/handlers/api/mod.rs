//! `api`: okra's REST API (API Gateway REST API, IAM auth, Lambda proxy integration).
//!
//! | method | path | what | status |
//! |---|---|---|---|
//! | `GET` | `/cells` | every cell's name and revision | 200 |
//! | `GET` | `/cells/{cell}` | spec, revision, `updatedAt`, lock, blocklist | 200, 404 |
//! | `PUT` | `/cells/{cell}` | store a spec (JSON, or YAML by `Content-Type`); `If-Match: <revision>` | 201, 200, 400, 409 |
//! | `DELETE` | `/cells/{cell}` | delete the spec (not while a rollout runs) | 204, 404, 409 |
//! | `GET` | `/cells/{cell}/plan` | dry run: discovery and decision, nothing written or started | 200, 404 |
//! | `GET` | `/cells/{cell}/doctor` | the account checks of the cell (read only) | 200, 404 |
//! | `GET` | `/cells/{cell}/clusters` | the clusters the cell's selector finds: status, version, VPC | 200, 404 |
//! | `GET` | `/cells/{cell}/target-groups` | the cell's target groups: version, cluster, weight, health | 200, 404 |
//! | `GET` | `/cells/{cell}/rollouts?limit=` | rollout records, newest first | 200, 404 |
//! | `POST` | `/cells/{cell}/rollouts` | start now (the dispatcher for this cell, trigger `api`) | 202, 200, 404, 409 |
//! | `GET` | `/cells/{cell}/rollouts/{id}` | the record, its execution, where it waits, the listener's weights by version, the analysis samples | 200, 404 |
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
use okra_core::spec::ParseError;
use okra_core::validate::{FieldError, check_document, read_document};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::app::{
    AppError, CellList, CellSummary, CellView, Doctor, Okra, PutOutput, RolloutList, RolloutView,
    SignalOutput, StartOutput,
};
use crate::error::OkraError;
use crate::handlers::dispatch::DispatchOutcome;
use crate::ports::{ClusterPort, LoadBalancerPort};
use crate::state::{ExecutionsPort, Signal, StatePort};

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

/// The ports the API answers from: okra's application layer ([`crate::app::Okra`]).
pub type Ports<'a, S, X, C, L, D> = Okra<'a, S, X, C, L, D>;

/// Answers one API Gateway REST proxy request. Never fails: every error is an answer.
pub async fn handle<S, X, C, L, D>(
    okra: &Okra<'_, S, X, C, L, D>,
    req: ApiGatewayProxyRequest,
) -> ApiGatewayProxyResponse
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    D: Doctor,
{
    let (route, reply) = match route(req.http_method.as_str(), &request_path(&req)) {
        Err(e) => ("unmatched", route_error(e)),
        Ok(ep) => {
            let name = ep.route();
            let reply = match too_large(&req) {
                Some(too_large) => too_large,
                None => serve(okra, ep, &req).await.unwrap_or_else(|e| e),
            };
            (name, reply)
        }
    };
    tracing::info!(route, status = reply.status, "api");
    reply.into_response()
}

/// One endpoint: the request read, okra asked, the answer written.
async fn serve<S, X, C, L, D>(
    okra: &Okra<'_, S, X, C, L, D>,
    ep: Endpoint,
    req: &ApiGatewayProxyRequest,
) -> Answer
where
    S: StatePort,
    X: ExecutionsPort,
    C: ClusterPort,
    L: LoadBalancerPort,
    D: Doctor,
{
    let etag = |revision: u64| format!("\"{revision}\"");
    match ep {
        Endpoint::ListCells => Ok(Reply::json(200, &okra.list_cells().await?)),
        Endpoint::GetCell { cell } => {
            let view = okra.get_cell(&cell).await?;
            let tag = etag(view.revision);
            Ok(Reply::json(200, &view).with_header(ETAG, tag))
        }
        Endpoint::PutCell { cell } => {
            let expected = if_match(req)?;
            let spec = read_spec(req, &cell)?;
            let stored = okra.put_cell(&spec, expected).await?;
            let status = if stored.created { 201 } else { 200 };
            let tag = etag(stored.output.revision);
            Ok(Reply::json(status, &stored.output).with_header(ETAG, tag))
        }
        Endpoint::DeleteCell { cell } => {
            okra.delete_cell(&cell).await?;
            Ok(Reply::empty(204))
        }
        Endpoint::Plan { cell } => Ok(Reply::json(200, &okra.plan(&cell).await?)),
        Endpoint::Doctor { cell } => Ok(Reply::json(200, &okra.doctor(&cell).await?)),
        Endpoint::Clusters { cell } => Ok(Reply::json(200, &okra.clusters(&cell).await?)),
        Endpoint::TargetGroups { cell } => Ok(Reply::json(200, &okra.target_groups(&cell).await?)),
        Endpoint::ListRollouts { cell } => Ok(Reply::json(
            200,
            &okra.list_rollouts(&cell, limit(req)?).await?,
        )),
        Endpoint::StartRollout { cell } => started(okra.start(&cell, labels(req)).await?),
        Endpoint::GetRollout { cell, id } => {
            Ok(Reply::json(200, &okra.get_rollout(&cell, &id).await?))
        }
        Endpoint::Signal { cell, id, signal } => {
            Ok(Reply::json(202, &okra.signal(&cell, &id, signal).await?))
        }
        Endpoint::Retry { cell, id } => started(okra.retry(&cell, &id, labels(req)).await?),
    }
}

/// 202 for a rollout started (or already running), 200 when there is nothing to do.
fn started(out: StartOutput) -> Answer {
    let status = match out.result.outcome {
        DispatchOutcome::NothingToDo => 200,
        _ => 202,
    };
    Ok(Reply::json(status, &out))
}
