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
// Routes
// ---------------------------------------------------------------------------------------------

/// What a request asks, its path parameters checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /cells`.
    ListCells,
    /// `GET /cells/{cell}`.
    GetCell {
        /// The cell.
        cell: String,
    },
    /// `PUT /cells/{cell}`.
    PutCell {
        /// The cell.
        cell: String,
    },
    /// `DELETE /cells/{cell}`.
    DeleteCell {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/plan`.
    Plan {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/doctor`.
    Doctor {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/rollouts`.
    ListRollouts {
        /// The cell.
        cell: String,
    },
    /// `POST /cells/{cell}/rollouts`.
    StartRollout {
        /// The cell.
        cell: String,
    },
    /// `GET /cells/{cell}/rollouts/{id}`.
    GetRollout {
        /// The cell.
        cell: String,
        /// The rollout (its execution's name).
        id: String,
    },
    /// `POST /cells/{cell}/rollouts/{id}/resume|promote|promote-full|abort`.
    Signal {
        /// The cell.
        cell: String,
        /// The rollout.
        id: String,
        /// What to tell it.
        signal: Signal,
    },
    /// `POST /cells/{cell}/rollouts/{id}/retry`.
    Retry {
        /// The cell.
        cell: String,
        /// The rollout.
        id: String,
    },
}

impl Endpoint {
    /// The route's template, for logs (`PUT /cells/{cell}`): no parameter values.
    pub fn route(&self) -> &'static str {
        match self {
            Self::ListCells => "GET /cells",
            Self::GetCell { .. } => "GET /cells/{cell}",
            Self::PutCell { .. } => "PUT /cells/{cell}",
            Self::DeleteCell { .. } => "DELETE /cells/{cell}",
            Self::Plan { .. } => "GET /cells/{cell}/plan",
            Self::Doctor { .. } => "GET /cells/{cell}/doctor",
            Self::ListRollouts { .. } => "GET /cells/{cell}/rollouts",
            Self::StartRollout { .. } => "POST /cells/{cell}/rollouts",
            Self::GetRollout { .. } => "GET /cells/{cell}/rollouts/{id}",
            Self::Signal { signal, .. } => match signal {
                Signal::Resume => "POST /cells/{cell}/rollouts/{id}/resume",
                Signal::Promote => "POST /cells/{cell}/rollouts/{id}/promote",
                Signal::PromoteFull => "POST /cells/{cell}/rollouts/{id}/promote-full",
                Signal::Abort => "POST /cells/{cell}/rollouts/{id}/abort",
            },
            Self::Retry { .. } => "POST /cells/{cell}/rollouts/{id}/retry",
        }
    }
}

/// Why a request matches no endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No such path (404).
    NotFound,
    /// The path exists, the method does not (405); `allow` lists the methods that do.
    MethodNotAllowed {
        /// The path's methods.
        allow: &'static [&'static str],
    },
    /// A path parameter is not valid (400).
    BadParam {
        /// `path.cell` or `path.id`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Decodes `%XX` escapes (a `+` stays a `+`: this is a path, not a form).
///
/// # Errors
///
/// A `%` not followed by two hex digits, or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let byte = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "holds a `%` that is not followed by two hex digits".to_string())?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "holds percent-encoded bytes that are not UTF-8".to_string())
}

/// A value cut for an error message, quoted.
fn shown(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() > MAX {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}...")
    } else {
        format!("{s:?}")
    }
}

/// Checks a cell name of a path: `^[a-z][a-z0-9-]{0,31}$`.
fn cell_param(raw: &str) -> Result<String, RouteError> {
    let bad = |message: String| RouteError::BadParam {
        field: "path.cell",
        message,
    };
    let cell = percent_decode(raw).map_err(bad)?;
    let ok = cell.starts_with(|c: char| c.is_ascii_lowercase())
        && cell.len() <= MAX_CELL_NAME
        && cell
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(cell)
    } else {
        Err(bad(format!(
            "{} is not a cell name: 1-{MAX_CELL_NAME} characters of a-z, 0-9 and -, starting \
             with a letter",
            shown(&cell)
        )))
    }
}

/// Checks a rollout id of a path: an execution name of okra's, `^[A-Za-z0-9_-]{1,80}$`.
fn id_param(raw: &str) -> Result<String, RouteError> {
    let bad = |message: String| RouteError::BadParam {
        field: "path.id",
        message,
    };
    let id = percent_decode(raw).map_err(bad)?;
    let ok = !id.is_empty()
        && id.len() <= MAX_ROLLOUT_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id)
    } else {
        Err(bad(format!(
            "{} is not a rollout id: 1-{MAX_ROLLOUT_ID} characters of A-Z, a-z, 0-9, - and _",
            shown(&id)
        )))
    }
}

/// The endpoint of a method and a path. Trailing slashes are ignored, each segment is
/// percent-decoded (after the path is split, so `%2F` is part of a segment), and a query string
/// or fragment, if the path carries one, is ignored. Unknown paths are [`RouteError::NotFound`];
/// the method is checked before the parameters.
///
/// # Errors
///
/// [`RouteError`]: 404, 405 or 400.
pub fn route(method: &str, path: &str) -> Result<Endpoint, RouteError> {
    #[derive(Clone, Copy)]
    enum Shape {
        Cells,
        Cell,
        Plan,
        Doctor,
        Rollouts,
        Rollout,
        Action(Option<Signal>),
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let Some(rest) = path.strip_prefix('/') else {
        return Err(RouteError::NotFound);
    };
    let seg: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let lit = |i: usize, want: &str| {
        seg.get(i)
            .is_some_and(|s| percent_decode(s).is_ok_and(|s| s == want))
    };
    if !lit(0, "cells") {
        return Err(RouteError::NotFound);
    }
    let shape = match seg.len() {
        1 => Shape::Cells,
        2 => Shape::Cell,
        3 if lit(2, "plan") => Shape::Plan,
        3 if lit(2, "doctor") => Shape::Doctor,
        3 if lit(2, "rollouts") => Shape::Rollouts,
        4 if lit(2, "rollouts") => Shape::Rollout,
        5 if lit(2, "rollouts") => {
            let action = percent_decode(seg[4]).map_err(|_| RouteError::NotFound)?;
            Shape::Action(match action.as_str() {
                "retry" => None,
                other => Some(Signal::from_path_segment(other).ok_or(RouteError::NotFound)?),
            })
        }
        _ => return Err(RouteError::NotFound),
    };
    let allow: &'static [&'static str] = match shape {
        Shape::Cells | Shape::Plan | Shape::Doctor | Shape::Rollout => &["GET"],
        Shape::Cell => &["GET", "PUT", "DELETE"],
        Shape::Rollouts => &["GET", "POST"],
        Shape::Action(_) => &["POST"],
    };
    if !allow.contains(&method) {
        return Err(RouteError::MethodNotAllowed { allow });
    }
    if let Shape::Cells = shape {
        return Ok(Endpoint::ListCells);
    }
    let cell = cell_param(seg[1])?;
    Ok(match (shape, method) {
        (Shape::Cell, "GET") => Endpoint::GetCell { cell },
        (Shape::Cell, "PUT") => Endpoint::PutCell { cell },
        (Shape::Cell, _) => Endpoint::DeleteCell { cell },
        (Shape::Plan, _) => Endpoint::Plan { cell },
        (Shape::Doctor, _) => Endpoint::Doctor { cell },
        (Shape::Rollouts, "GET") => Endpoint::ListRollouts { cell },
        (Shape::Rollouts, _) => Endpoint::StartRollout { cell },
        (Shape::Rollout, _) => Endpoint::GetRollout {
            cell,
            id: id_param(seg[3])?,
        },
        (Shape::Action(Some(signal)), _) => Endpoint::Signal {
            cell,
            id: id_param(seg[3])?,
            signal,
        },
        (Shape::Action(None), _) => Endpoint::Retry {
            cell,
            id: id_param(seg[3])?,
        },
        (Shape::Cells, _) => Endpoint::ListCells,
    })
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/// An error's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// `InvalidInput`, `InvalidSpec`, `NotFound`, `MethodNotAllowed`, `Conflict`,
    /// `PayloadTooLarge`, `UnsupportedMediaType`, or an [`OkraError::error_type`].
    pub error: String,
    /// What went wrong, in words.
    pub message: String,
    /// The request part at fault: `path.cell`, `path.id`, `query.limit`, `body`,
    /// `header.if-match`, `header.content-type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A spec's errors, by the spec's field path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// `POST .../rollouts` that started nothing: the dispatcher's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<DispatchOutcome>,
    /// The execution concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

/// One cell of `GET /cells`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CellSummary {
    /// The cell.
    pub name: String,
    /// Its revision.
    pub revision: u64,
    /// RFC 3339.
    pub updated_at: String,
}

/// `GET /cells`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellList {
    /// By name.
    pub cells: Vec<CellSummary>,
}

/// `GET /cells/{cell}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CellView {
    /// The spec.
    pub spec: CellSpec,
    /// Its revision (send it as `If-Match` to update).
    pub revision: u64,
    /// RFC 3339.
    pub updated_at: String,
    /// The rollout holding the cell, if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<Lock>,
    /// The blocked versions.
    pub blocklist: Vec<Block>,
}

/// `PUT /cells/{cell}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutOutput {
    /// The cell.
    pub cell: String,
    /// The new revision.
    pub revision: u64,
}

/// `POST /cells/{cell}/rollouts` and `.../retry`: the dispatcher's result for the cell, and for
/// a retry the version's new attempt number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartOutput {
    /// What the dispatcher did for the cell.
    #[serde(flatten)]
    pub result: CellResult,
    /// `retry`: the version's new attempt number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// `GET /cells/{cell}/rollouts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutList {
    /// Newest first.
    pub rollouts: Vec<Rollout>,
}

/// `GET /cells/{cell}/rollouts/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutView {
    /// The record.
    pub rollout: Rollout,
    /// Its Step Functions execution (null: Step Functions no longer knows it).
    pub execution: Option<ExecutionInfo>,
}

/// `POST /cells/{cell}/rollouts/{id}/<signal>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalOutput {
    /// The cell.
    pub cell: String,
    /// The rollout.
    pub rollout: String,
    /// The signal left for it (the state machine takes it at its next poll).
    pub signal: Signal,
}

/// An answer before it becomes the proxy response.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Option<String>,
    headers: Vec<(HeaderName, String)>,
}

type Answer = std::result::Result<Reply, Reply>;

impl Reply {
    fn json(status: u16, body: &impl Serialize) -> Self {
        match serde_json::to_string(body) {
            Ok(b) => Self {
                status,
                body: Some(b),
                headers: Vec::new(),
            },
            Err(e) => Self::error(
                500,
                "InternalError",
                format!("the answer does not serialize: {e}"),
            ),
        }
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            body: None,
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn err(status: u16, mut body: ErrorBody) -> Self {
        for e in &mut body.errors {
            e.message = cut(std::mem::take(&mut e.message));
        }
        Self::json(status, &body)
    }

    fn error(status: u16, error: &str, message: impl Into<String>) -> Self {
        Self::err(status, error_body(error, message))
    }

    fn bad(field: &str, message: impl std::fmt::Display) -> Self {
        Self::err(
            400,
            ErrorBody {
                field: Some(field.to_string()),
                ..error_body("InvalidInput", format!("{field}: {message}"))
            },
        )
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::error(404, "NotFound", message)
    }

    fn conflict(message: impl Into<String>) -> Self {
        Self::error(409, "Conflict", message)
    }

    fn into_response(self) -> ApiGatewayProxyResponse {
        let mut r = ApiGatewayProxyResponse::default();
        r.status_code = i64::from(self.status);
        r.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers.insert(name, v);
            }
        }
        r.body = self.body.map(Body::Text);
        r
    }
}

/// The longest message of an answer, in characters: a message may quote the request, and the
/// request may be large.
pub const MAX_MESSAGE: usize = 2000;

/// A message cut to [`MAX_MESSAGE`] characters.
fn cut(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE {
        return message;
    }
    let mut m: String = message.chars().take(MAX_MESSAGE).collect();
    m.push_str("...");
    m
}

fn error_body(error: &str, message: impl Into<String>) -> ErrorBody {
    ErrorBody {
        error: error.to_string(),
        message: cut(message.into()),
        field: None,
        errors: Vec::new(),
        outcome: None,
        execution: None,
    }
}

/// The HTTP status of an [`OkraError::error_type`].
pub fn status_of(error_type: &str) -> u16 {
    match error_type {
        "InvalidInput" | "InvalidSpec" => 400,
        "AccessDenied" => 403,
        "NotFound" => 404,
        "Conflict" => 409,
        "Throttled" => 429,
        "AwsUnavailable" => 503,
        _ => 502,
    }
}

impl From<OkraError> for Reply {
    fn from(e: OkraError) -> Self {
        Self::error(status_of(e.error_type()), e.error_type(), e.to_string())
    }
}

fn route_error(e: RouteError) -> Reply {
    match e {
        RouteError::NotFound => Reply::not_found("no such resource"),
        RouteError::MethodNotAllowed { allow } => Reply::error(
            405,
            "MethodNotAllowed",
            format!("this resource takes {}", allow.join(", ")),
        )
        .with_header(ALLOW, allow.join(", ")),
        RouteError::BadParam { field, message } => Reply::bad(field, message),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the request
// ---------------------------------------------------------------------------------------------

/// A header's value (the single-value map first, then the multi-value one).
fn header(req: &ApiGatewayProxyRequest, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .or_else(|| req.multi_value_headers.get(name))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The body's size in bytes (after base64 decoding; estimated from the text, without decoding).
fn body_size(req: &ApiGatewayProxyRequest) -> usize {
    let Some(body) = req.body.as_deref() else {
        return 0;
    };
    if req.is_base64_encoded {
        let b = body.trim();
        // Four characters of base64 make three bytes; `=` pads.
        (b.len() / 4 * 3).saturating_sub(b.bytes().rev().take_while(|c| *c == b'=').count())
    } else {
        body.len()
    }
}

/// 413 for a body over [`MAX_BODY_BYTES`], whatever the route.
fn too_large(req: &ApiGatewayProxyRequest) -> Option<Reply> {
    (body_size(req) > MAX_BODY_BYTES).then(|| {
        Reply::err(
            413,
            ErrorBody {
                field: Some("body".into()),
                ..error_body(
                    "PayloadTooLarge",
                    format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                )
            },
        )
    })
}

/// The body's bytes, base64-decoded when API Gateway encoded them (empty: no body).
fn body_bytes(req: &ApiGatewayProxyRequest) -> std::result::Result<Vec<u8>, Reply> {
    if let Some(r) = too_large(req) {
        return Err(r);
    }
    match req.body.as_deref() {
        None => Ok(Vec::new()),
        Some(body) if req.is_base64_encoded => aws_smithy_types::base64::decode(body.trim())
            .map_err(|e| Reply::bad("body", format!("not valid base64: {e}"))),
        Some(body) => Ok(body.as_bytes().to_vec()),
    }
}

/// How a spec body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

fn format_of(req: &ApiGatewayProxyRequest) -> std::result::Result<Format, Reply> {
    let Some(ct) = header(req, "content-type") else {
        return Ok(Format::Json);
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "" | "application/json" | "text/json" => Ok(Format::Json),
        m if m.starts_with("application/") && m.ends_with("+json") => Ok(Format::Json),
        "application/yaml" | "text/yaml" | "application/x-yaml" | "text/x-yaml" => Ok(Format::Yaml),
        other => Err(Reply::err(
            415,
            ErrorBody {
                field: Some("header.content-type".into()),
                ..error_body(
                    "UnsupportedMediaType",
                    format!(
                        "header.content-type: {} is neither JSON (application/json) nor YAML \
                         (application/yaml, text/yaml)",
                        shown(other)
                    ),
                )
            },
        )),
    }
}

/// `If-Match`: a revision (`3`, `"3"` or `W/"3"`).
fn if_match(req: &ApiGatewayProxyRequest) -> std::result::Result<Option<u64>, Reply> {
    let Some(v) = header(req, "if-match") else {
        return Ok(None);
    };
    let t = v.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    let t = t
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t);
    if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reply::bad(
            "header.if-match",
            format!("{} is not a revision number", shown(&v)),
        ));
    }
    t.parse::<u64>()
        .map(Some)
        .map_err(|e| Reply::bad("header.if-match", e))
}

/// `?limit=`.
fn limit(req: &ApiGatewayProxyRequest) -> std::result::Result<usize, Reply> {
    match req.query_string_parameters.first("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Reply::bad(
                    "query.limit",
                    format!("{} is not a number in 1..={MAX_LIMIT}", shown(s)),
                )
            }),
    }
}

/// Splits a serde message `path: message` (serde names a path below the root) and completes the
/// path of a missing or unknown field.
fn parse_error_path(msg: &str) -> (String, String) {
    let (path, rest) = match msg.split_once(": ") {
        Some((p, r)) if !p.is_empty() && !p.contains(char::is_whitespace) && !p.contains('`') => {
            (p.to_string(), r.to_string())
        }
        _ => (String::new(), msg.to_string()),
    };
    let named = |prefix: &str| {
        rest.strip_prefix(prefix)
            .and_then(|r| r.split('`').next())
            .map(str::to_string)
    };
    let path = match named("missing field `").or_else(|| named("unknown field `")) {
        Some(f) if path.is_empty() || path == "." => f,
        Some(f) if path.ends_with(&format!(".{f}")) || path == f => path,
        Some(f) => format!("{path}.{f}"),
        None if path.is_empty() || path == "." => "body".to_string(),
        None => path,
    };
    (path, rest)
}

fn unreadable_spec(e: &ParseError) -> Reply {
    let msg = e.to_string();
    let (path, message) = parse_error_path(&msg);
    Reply::err(
        400,
        ErrorBody {
            field: Some("body".into()),
            errors: vec![FieldError { path, message }],
            ..error_body("InvalidSpec", format!("the body is not a cell spec: {msg}"))
        },
    )
}

fn invalid_spec(errors: Vec<FieldError>) -> Reply {
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    Reply::err(
        400,
        ErrorBody {
            field: Some("body".into()),
            errors,
            ..error_body(
                "InvalidSpec",
                format!("the cell spec is invalid:\n{message}"),
            )
        },
    )
}

/// Reads and validates the spec of `PUT /cells/{cell}`, whose `name` must be `cell`.
fn read_spec(req: &ApiGatewayProxyRequest, cell: &str) -> std::result::Result<CellSpec, Reply> {
    let format = format_of(req)?;
    let bytes = body_bytes(req)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|e| Reply::bad("body", format!("not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Err(Reply::bad("body", "missing: send the cell spec"));
    }
    // Either format is read into one document (a JSON body as JSON, so that its syntax errors
    // carry JSON's line and column), then checked whole: every error at once.
    let doc = match format {
        Format::Json if !text.trim_start().starts_with('{') => {
            return Err(Reply::bad("body", "not JSON: a cell spec is a JSON object"));
        }
        Format::Json | Format::Yaml => read_document(text).map_err(|p| unreadable_spec(&p))?,
    };
    let name = doc.get("name").and_then(Value::as_str).map(str::to_string);
    let (spec, mut errors) = match check_document(&doc) {
        Ok(spec) => (Some(spec), Vec::new()),
        Err(e) => (None, e.errors),
    };
    if name.as_deref() != Some(cell) {
        errors.push(FieldError {
            path: "name".into(),
            message: format!(
                "{} must equal the cell of the path, {cell:?}",
                shown(name.as_deref().unwrap_or_default())
            ),
        });
    }
    match spec {
        Some(spec) if errors.is_empty() => Ok(spec),
        _ => Err(invalid_spec(errors)),
    }
}

/// The path routed: the request's `path` (without the stage), else the context's.
fn request_path(req: &ApiGatewayProxyRequest) -> String {
    req.path
        .clone()
        .or_else(|| req.request_context.path.clone())
        .unwrap_or_default()
}

/// Labels of the executions the API starts: who asked, and the API request.
fn labels(req: &ApiGatewayProxyRequest) -> BTreeMap<String, String> {
    let id = &req.request_context.identity;
    let mut labels = BTreeMap::new();
    if let Some(caller) = id
        .user_arn
        .as_deref()
        .or(id.caller.as_deref())
        .filter(|c| !c.is_empty())
    {
        labels.insert("caller".to_string(), caller.to_string());
    }
    if let Some(rid) = req
        .request_context
        .request_id
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        labels.insert("requestId".to_string(), rid.to_string());
    }
    labels
}

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
        cell: &CellSpec,
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
        let revision = self.state.put_cell(&spec, expected).await?;
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
    async fn listener_free(&self, spec: &CellSpec) -> std::result::Result<(), Reply> {
        let Some((_, listener)) = spec.ingress.listener() else {
            return Ok(());
        };
        let rule = spec.ingress.rule_arn();
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
        let report = self.doctor.check(&stored.spec).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, path: &str) -> Endpoint {
        route(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
    }

    fn cell(c: &str) -> String {
        c.to_string()
    }

    #[test]
    fn every_route() {
        let id = "web--1-1-0--0".to_string();
        assert_eq!(ok("GET", "/cells"), Endpoint::ListCells);
        assert_eq!(
            ok("GET", "/cells/web"),
            Endpoint::GetCell { cell: cell("web") }
        );
        assert_eq!(
            ok("PUT", "/cells/web"),
            Endpoint::PutCell { cell: cell("web") }
        );
        assert_eq!(
            ok("DELETE", "/cells/web"),
            Endpoint::DeleteCell { cell: cell("web") }
        );
        assert_eq!(
            ok("GET", "/cells/web/plan"),
            Endpoint::Plan { cell: cell("web") }
        );
        assert_eq!(
            ok("GET", "/cells/web/rollouts"),
            Endpoint::ListRollouts { cell: cell("web") }
        );
        assert_eq!(
            ok("POST", "/cells/web/rollouts"),
            Endpoint::StartRollout { cell: cell("web") }
        );
        assert_eq!(
            ok("GET", "/cells/web/rollouts/web--1-1-0--0"),
            Endpoint::GetRollout {
                cell: cell("web"),
                id: id.clone()
            }
        );
        for (action, signal) in [
            ("resume", Signal::Resume),
            ("promote", Signal::Promote),
            ("promote-full", Signal::PromoteFull),
            ("abort", Signal::Abort),
        ] {
            let ep = ok("POST", &format!("/cells/web/rollouts/{id}/{action}"));
            assert_eq!(
                ep,
                Endpoint::Signal {
                    cell: cell("web"),
                    id: id.clone(),
                    signal
                }
            );
            assert!(ep.route().ends_with(action), "{}", ep.route());
        }
        assert_eq!(
            ok("POST", &format!("/cells/web/rollouts/{id}/retry")),
            Endpoint::Retry {
                cell: cell("web"),
                id: id.clone()
            }
        );
    }

    #[test]
    fn trailing_slashes_and_queries_are_ignored() {
        assert_eq!(ok("GET", "/cells/"), Endpoint::ListCells);
        assert_eq!(ok("GET", "/cells//"), Endpoint::ListCells);
        assert_eq!(
            ok("GET", "/cells/web/"),
            Endpoint::GetCell { cell: cell("web") }
        );
        assert_eq!(
            ok("GET", "/cells/web/rollouts/?limit=3"),
            Endpoint::ListRollouts { cell: cell("web") }
        );
        assert_eq!(
            ok("POST", "/cells/web/rollouts/x1/abort/"),
            Endpoint::Signal {
                cell: cell("web"),
                id: "x1".into(),
                signal: Signal::Abort
            }
        );
    }

    #[test]
    fn parameters_are_percent_decoded() {
        assert_eq!(
            ok("GET", "/cells/web%2Deu/plan"),
            Endpoint::Plan {
                cell: cell("web-eu")
            }
        );
        assert_eq!(
            ok("GET", "/%63ells/web"),
            Endpoint::GetCell { cell: cell("web") }
        );
        assert_eq!(
            ok("POST", "/cells/web/rollouts/web--1-2-0--0/promote%2Dfull"),
            Endpoint::Signal {
                cell: cell("web"),
                id: "web--1-2-0--0".into(),
                signal: Signal::PromoteFull
            }
        );
        let field = |m: &str, p: &str| match route(m, p) {
            Err(RouteError::BadParam { field, .. }) => field,
            other => panic!("{m} {p}: {other:?}"),
        };
        // An encoded slash stays inside the segment (and is no cell name).
        assert_eq!(field("GET", "/cells/a%2Fb"), "path.cell");
        assert_eq!(field("GET", "/cells/w%C3%A9b"), "path.cell");
        assert_eq!(field("GET", "/cells/web%zz"), "path.cell");
        assert_eq!(field("GET", "/cells/web%E9"), "path.cell");
        assert_eq!(field("GET", "/cells/Web"), "path.cell");
        assert_eq!(field("GET", "/cells/9web"), "path.cell");
        assert_eq!(
            field("GET", &format!("/cells/{}", "a".repeat(33))),
            "path.cell"
        );
        assert_eq!(field("GET", "/cells/web/rollouts/a.b"), "path.id");
        assert_eq!(field("GET", "/cells/web/rollouts/a%20b"), "path.id");
        assert_eq!(
            field(
                "POST",
                &format!("/cells/web/rollouts/{}/abort", "x".repeat(81))
            ),
            "path.id"
        );
        assert_eq!(field("GET", "/cells//rollouts"), "path.cell");
        assert!(route("GET", &format!("/cells/{}", "a".repeat(32))).is_ok());
    }

    #[test]
    fn unknown_paths_and_methods() {
        for p in [
            "",
            "/",
            "cells",
            "/cell",
            "/cells/web/x",
            "/cells/web/rollouts/x/y",
            "/cells/web/rollouts/x/retry/again",
            "/Cells",
            "/v1/cells",
            "/cells/web/plan/x",
            "/cells/web/rollouts/x/%zz",
        ] {
            assert_eq!(route("GET", p), Err(RouteError::NotFound), "{p}");
            assert_eq!(route("POST", p), Err(RouteError::NotFound), "{p}");
        }
        let allow = |m: &str, p: &str| match route(m, p) {
            Err(RouteError::MethodNotAllowed { allow }) => allow,
            other => panic!("{m} {p}: {other:?}"),
        };
        assert_eq!(allow("POST", "/cells"), ["GET"]);
        assert_eq!(allow("PATCH", "/cells/web"), ["GET", "PUT", "DELETE"]);
        assert_eq!(allow("DELETE", "/cells/web/rollouts"), ["GET", "POST"]);
        assert_eq!(allow("POST", "/cells/web/plan"), ["GET"]);
        assert_eq!(allow("PUT", "/cells/web/rollouts/x"), ["GET"]);
        assert_eq!(allow("GET", "/cells/web/rollouts/x/abort"), ["POST"]);
        assert_eq!(allow("HEAD", "/cells"), ["GET"]);
        // The method is checked before the parameters.
        assert_eq!(allow("PATCH", "/cells/BAD"), ["GET", "PUT", "DELETE"]);
    }

    #[test]
    fn serde_paths() {
        assert_eq!(
            parse_error_path("canary.steps[0].setWeight: invalid type: string \"x\", expected u32"),
            (
                "canary.steps[0].setWeight".into(),
                "invalid type: string \"x\", expected u32".into()
            )
        );
        assert_eq!(parse_error_path("missing field `ingress`").0, "ingress");
        assert_eq!(
            parse_error_path("targetGroup: unknown field `prt`, expected one of `port`").0,
            "targetGroup.prt"
        );
        assert_eq!(
            parse_error_path("invalid type: sequence, expected struct CellSpec").0,
            "body"
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(status_of("InvalidSpec"), 400);
        assert_eq!(status_of("InvalidInput"), 400);
        assert_eq!(status_of("NotFound"), 404);
        assert_eq!(status_of("Conflict"), 409);
        assert_eq!(status_of("Throttled"), 429);
        assert_eq!(status_of("AwsUnavailable"), 503);
        assert_eq!(status_of("AccessDenied"), 403);
        assert_eq!(status_of("DriftDetected"), 502);
        assert_eq!(status_of("AwsError"), 502);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Db+c").as_deref(), Ok("a-b+c"));
        assert!(percent_decode("%").is_err());
        assert!(percent_decode("%4").is_err());
        assert!(percent_decode("%+1").is_err());
        assert!(percent_decode("%ff").is_err());
        assert_eq!(percent_decode("%C3%A9").as_deref(), Ok("é"));
    }
}
