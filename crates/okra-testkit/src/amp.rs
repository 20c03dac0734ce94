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
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// How far a request's `X-Amz-Date` may be from now (AWS: 5 minutes).
const MAX_SKEW: Duration = Duration::from_secs(300);

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
            serve(listener, ws, l, stopped)
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

async fn serve(
    listener: std::net::TcpListener,
    ws: AmpWorkspace,
    log: Arc<Mutex<AmpLog>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let ws = Arc::new(ws);
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (ws, log) = (Arc::clone(&ws), Arc::clone(&log));
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let (ws, log) = (Arc::clone(&ws), Arc::clone(&log));
                async move { Ok::<_, std::convert::Infallible>(handle(req, &ws, &log).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
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

type Refusal = (StatusCode, Option<&'static str>, String);

fn forbidden(message: impl Into<String>) -> Refusal {
    (StatusCode::FORBIDDEN, None, message.into())
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=HEX`.
struct Authorization {
    key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(text: &str) -> Option<Authorization> {
    let rest = text.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut fields = BTreeMap::new();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        fields.insert(k.to_string(), v.to_string());
    }
    let cred: Vec<&str> = fields.get("Credential")?.split('/').collect();
    let [key, date, region, service, "aws4_request"] = cred.as_slice() else {
        return None;
    };
    Some(Authorization {
        key: (*key).to_string(),
        date: (*date).to_string(),
        region: (*region).to_string(),
        service: (*service).to_string(),
        signed_headers: fields
            .get("SignedHeaders")?
            .split(';')
            .map(str::to_string)
            .collect(),
        signature: fields.get("Signature")?.clone(),
    })
}

async fn check(
    parts: &http::request::Parts,
    body: &[u8],
    ws: &AmpWorkspace,
) -> Result<(), Refusal> {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return Err(forbidden("Missing Authentication Token"));
    };
    let auth = parse_authorization(auth).ok_or_else(|| {
        forbidden("Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'")
    })?;
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
    let (secret, token) = (&secret, &token);
    if auth.service != "aps" {
        return Err(forbidden(format!(
            "Credential should be scoped to correct service: 'aps'. (it names '{}')",
            auth.service
        )));
    }
    if auth.region != ws.region {
        return Err(forbidden(format!(
            "Credential should be scoped to a valid region. (the workspace is in '{}', not '{}')",
            ws.region, auth.region
        )));
    }
    let stamp = header("x-amz-date").ok_or_else(|| forbidden("Missing X-Amz-Date"))?;
    let when = humantime::parse_rfc3339(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        stamp.get(0..4).unwrap_or(""),
        stamp.get(4..6).unwrap_or(""),
        stamp.get(6..8).unwrap_or(""),
        stamp.get(9..11).unwrap_or(""),
        stamp.get(11..13).unwrap_or(""),
        stamp.get(13..15).unwrap_or(""),
    ))
    .map_err(|_| forbidden(format!("X-Amz-Date {stamp} is not yyyyMMddTHHmmssZ")))?;
    if !stamp.starts_with(&auth.date) {
        return Err(forbidden(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            auth.date,
            stamp.get(0..8).unwrap_or("")
        )));
    }
    let now = SystemTime::now();
    let skew = now
        .duration_since(when)
        .or_else(|_| when.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(forbidden(format!(
            "Signature expired: {stamp} is now earlier than {} ({} - 5 min.)",
            humantime::format_rfc3339_seconds(now - MAX_SKEW),
            humantime::format_rfc3339_seconds(now)
        )));
    }
    // Recompute the signature over what was received.
    let host = header("host").unwrap_or_default().to_string();
    let signed: Vec<(String, String)> = auth
        .signed_headers
        .iter()
        .filter(|h| !matches!(h.as_str(), "x-amz-date" | "x-amz-security-token"))
        .map(|h| {
            let v = if h == "host" {
                host.clone()
            } else {
                header(h).unwrap_or_default().to_string()
            };
            (h.clone(), v)
        })
        .collect();
    let creds = Credentials::new(
        auth.key.clone(),
        secret.clone(),
        header("x-amz-security-token").and(token.clone()),
        None,
        "local-amp",
    );
    let identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name("aps")
        .time(when)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| forbidden(e.to_string()))?
        .into();
    let uri = format!(
        "http://{host}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let signable = SignableRequest::new(
        parts.method.as_str(),
        uri.as_str(),
        signed.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| forbidden(e.to_string()))?;
    let (_, expected) = sign(signable, &params)
        .map_err(|e| forbidden(e.to_string()))?
        .into_parts();
    if expected != auth.signature {
        return Err(forbidden(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
        ));
    }
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
