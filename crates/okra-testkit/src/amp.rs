//! A local Amazon Managed Service for Prometheus workspace endpoint: it checks each query's
//! SigV4 signature as AMP does, then forwards it to a real Prometheus server.
//!
//! What it models (AMP user guide, "Query your Prometheus metrics" and "Signing requests with
//! SigV4"; AWS General Reference, "Signature Version 4 signing process" and "Troubleshooting
//! signatures"):
//! - the query API is the workspace's `/workspaces/WORKSPACE_ID/api/v1/query` (and the rest of
//!   Prometheus' HTTP API under that prefix), signed for service `aps` in the workspace's region;
//! - an unsigned request is 403 `{"message": "Missing Authentication Token"}`;
//! - a credential of an unknown access key, or scoped to another region, service or date, is 403
//!   with the message AWS gives; a request whose `X-Amz-Date` is more than 5 minutes away from now
//!   is 403 "Signature expired";
//! - the signature is recomputed for the request as received (method, path, query, the signed
//!   headers, the body) with the key's secret, and a mismatch is 403 "The request signature we
//!   calculated does not match the signature you provided";
//! - the caller's role must allow `aps:QueryMetrics` on the workspace ARN: the strict moto's IAM
//!   authorizer (`/_okra/iam/authorize`) decides for the function named in the user agent, and a
//!   denial is 403 `AccessDeniedException`;
//! - a key the workspace does not know may be a session the strict moto's STS issued
//!   (AssumeRole, `sigv4.roleArn`): its secret and token come from `/_okra/sts/credentials`, and
//!   the request is the assumed role's (a role outside template.yaml: its own policy, the user's,
//!   is not modelled).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

/// The workspace's settings.
#[derive(Debug, Clone)]
pub struct AmpWorkspace {
    /// Such as `ws-okra-e2e`.
    pub id: String,
    /// Such as `us-east-1`.
    pub region: String,
    /// The account in its ARN.
    pub account: String,
    /// Known keys: access key id → (secret, session token).
    pub keys: BTreeMap<String, (String, Option<String>)>,
    /// Where queries go once allowed: a Prometheus base URL.
    pub upstream: String,
    /// The strict moto's endpoint, whose IAM authorizer decides `aps:QueryMetrics` (`None`: no
    /// IAM check).
    pub iam: Option<String>,
}

impl AmpWorkspace {
    /// The workspace's ARN.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:aps:{}:{}:workspace/{}",
            self.region, self.account, self.id
        )
    }
}

/// What the endpoint refused, for tests.
#[derive(Debug, Clone, Default)]
pub struct AmpLog {
    /// Refusals: (status, message).
    pub refused: Vec<(u16, String)>,
    /// Queries forwarded.
    pub forwarded: u64,
}

/// A running local AMP workspace endpoint.
#[derive(Debug)]
pub struct AmpEndpoint {
    addr: std::net::SocketAddr,
    workspace: AmpWorkspace,
    log: Arc<Mutex<AmpLog>>,
    _server: crate::server::ServerThread,
}

impl AmpEndpoint {
    /// Starts it on 127.0.0.1.
    pub fn start(workspace: AmpWorkspace) -> anyhow::Result<Self> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the AMP endpoint")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(AmpLog::default()));
        let (ws, l) = (workspace.clone(), Arc::clone(&log));
        let server = crate::server::ServerThread::spawn("okra-amp", move |stopped| {
            let ws = Arc::new(ws);
            crate::server::serve_http(listener, stopped, move |req| {
                let (ws, log) = (Arc::clone(&ws), Arc::clone(&l));
                async move { handle(req, &ws, &log).await }
            })
        })?;
        Ok(Self {
            addr,
            workspace,
            log,
            _server: server,
        })
    }

    /// The workspace's URL, as a `prometheus` metric's `address`:
    /// `http://127.0.0.1:PORT/workspaces/ID`.
    pub fn address(&self) -> String {
        format!("http://{}/workspaces/{}", self.addr, self.workspace.id)
    }

    /// What it refused and forwarded so far.
    pub fn log(&self) -> AmpLog {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    ws: &AmpWorkspace,
    log: &Mutex<AmpLog>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return answer(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"message": "bad body"}),
            );
        }
    };
    match check(&parts, &body, ws).await {
        Ok(()) => {}
        Err((status, kind, message)) => {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .refused
                .push((status.as_u16(), message.clone()));
            let mut doc = serde_json::json!({"message": message});
            if let Some(kind) = kind {
                doc["__type"] = serde_json::json!(kind);
            }
            return answer(status, doc);
        }
    }
    let prefix = format!("/workspaces/{}", ws.id);
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Some(rest) = path_and_query.strip_prefix(&prefix) else {
        return answer(
            StatusCode::NOT_FOUND,
            serde_json::json!({"message": format!("no workspace at {path_and_query}")}),
        );
    };
    let url = format!("{}{rest}", ws.upstream.trim_end_matches('/'));
    let forwarded = tokio::task::spawn_blocking(move || {
        let resp = ureq::get(&url)
            .config()
            .http_status_as_error(false)
            .build()
            .call();
        resp.map(|mut r| {
            let status = r.status().as_u16();
            (status, r.body_mut().read_to_string().unwrap_or_default())
        })
    })
    .await;
    log.lock().unwrap_or_else(PoisonError::into_inner).forwarded += 1;
    match forwarded {
        Ok(Ok((status, text))) => {
            let mut r = Response::new(Full::new(Bytes::from(text)));
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            r
        }
        _ => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"message": "the workspace's query service is unavailable"}),
        ),
    }
}

use crate::sigv4::{Refusal, forbidden};

async fn check(
    parts: &http::request::Parts,
    body: &[u8],
    ws: &AmpWorkspace,
) -> Result<(), Refusal> {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let auth = crate::sigv4::authorization(parts)?;
    // A key of the workspace's own, or a session STS issued (an assumed role: the request is the
    // role's, whatever the user agent says).
    let (secret, token, role) = match ws.keys.get(&auth.key) {
        Some((secret, token)) => (secret.clone(), token.clone(), None),
        None => {
            let session = match &ws.iam {
                Some(iam) => crate::iam::session(iam, &auth.key).await,
                None => None,
            };
            let Some((secret, token, role)) = session else {
                return Err(forbidden(
                    "The security token included in the request is invalid.",
                ));
            };
            (secret, Some(token), Some(role))
        }
    };
    crate::sigv4::verify(
        parts,
        body,
        &auth,
        &secret,
        token.as_deref(),
        "aps",
        &ws.region,
    )?;
    // IAM: the caller's role must allow aps:QueryMetrics on the workspace.
    if let Some(iam) = &ws.iam {
        let caller = match &role {
            Some(arn) => arn.rsplit('/').next().unwrap_or_default().to_owned(),
            None => crate::iam::caller_of(header("user-agent")).unwrap_or_default(),
        };
        let decided = crate::iam::authorize(iam, &caller, "aps:QueryMetrics", &ws.arn()).await;
        match decided {
            Some(d) if d["allowed"] == true => {}
            Some(d) => {
                return Err((
                    StatusCode::FORBIDDEN,
                    Some("AccessDeniedException"),
                    format!(
                        "User: {} is not authorized to perform: aps:QueryMetrics on resource: {} ({})",
                        d["function"].as_str().unwrap_or("the caller"),
                        ws.arn(),
                        d["reason"]
                            .as_str()
                            .unwrap_or("no identity-based policy allows it")
                    ),
                ));
            }
            None => {
                return Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "the IAM authorizer did not answer".into(),
                ));
            }
        }
    }
    Ok(())
}
