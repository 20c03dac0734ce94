//! A local API Gateway front for okra's REST API: it authorizes each request as API Gateway's
//! `AWS_IAM` authorization does, then hands the `api` function a Lambda proxy event through the
//! local Lambda service, and answers with the function's response.
//!
//! What it models (API Gateway developer guide):
//! - "Control access to an API with IAM permissions": every route needs a SigV4 signature for
//!   service `execute-api` in the API's region ([`crate::sigv4`]: 403 "Missing Authentication
//!   Token" unsigned, 403 "The request signature we calculated does not match ..." for a bad
//!   signature, "The security token included in the request is invalid." for an unknown key),
//!   and the caller's identity-based policy must allow `execute-api:Invoke` on
//!   `arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH`. A denial is 403
//!   `{"Message": "User: ARN is not authorized to perform: execute-api:Invoke on resource: ARN"}`
//!   with `x-amzn-ErrorType: AccessDeniedException` (the account masked, as API Gateway masks
//!   it). The policies are template.yaml's own (`OperatorPolicy`, `ViewerPolicy`), evaluated by
//!   the strict moto's IAM authorizer (tools/local-aws/iam_enforce.py).
//! - The resources template.yaml gives the function (`GET /cells`, `ANY /cells/{proxy+}`); any
//!   other path is 403 "Missing Authentication Token", as API Gateway answers an unknown route.
//! - "Set up a proxy integration with a proxy resource" / "Input format of a Lambda function for
//!   proxy integration": `resource`, `path` (without the stage), `httpMethod`, `headers` and
//!   `multiValueHeaders`, `queryStringParameters` and their multi-value form (decoded),
//!   `pathParameters.proxy`, `requestContext` (`accountId`, `apiId`, `stage`, `resourcePath`,
//!   `path` with the stage, `requestId`, `identity.userArn`, `identity.accessKey`), `body`,
//!   `isBase64Encoded`. The function's `statusCode`, `headers` and `body` are the answer; a
//!   function error or a malformed response is 502 `{"message": "Internal server error"}`.
//!
//! Not modelled: resource policies, throttling and usage plans, API keys, the 29 s integration
//! time-out (the function's own time-out applies).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::sigv4::{Refusal, forbidden};

/// A caller of the API: an IAM user with one of template.yaml's managed policies attached.
#[derive(Debug, Clone)]
pub struct ApiIdentity {
    /// Its user name (its ARN is `arn:aws:iam::ACCOUNT:user/NAME`).
    pub user: String,
    /// Its access key id.
    pub access_key: String,
    /// Its secret.
    pub secret: String,
    /// The template's `AWS::IAM::ManagedPolicy` attached to it (`OperatorPolicy`,
    /// `ViewerPolicy`), or none.
    pub policy: Option<String>,
}

/// The front's settings.
#[derive(Debug, Clone)]
pub struct ApiFrontSettings {
    /// The REST API's id (template.yaml's `Api`, as the IAM evaluation resolves it).
    pub api_id: String,
    /// The stage (template.yaml's `StageName`).
    pub stage: String,
    /// The API's region.
    pub region: String,
    /// The account.
    pub account: String,
    /// Who may sign.
    pub identities: Vec<ApiIdentity>,
    /// The strict moto's endpoint (its IAM authorizer).
    pub iam: String,
    /// The local Lambda service's endpoint.
    pub lambda: String,
    /// The function behind the routes.
    pub function: String,
}

/// What the front did, for tests.
#[derive(Debug, Clone, Default)]
pub struct ApiFrontLog {
    /// Refusals: (status, message).
    pub refused: Vec<(u16, String)>,
    /// Requests handed to the function: (method, path, status).
    pub served: Vec<(String, String, u16)>,
}

/// A running local API front.
#[derive(Debug)]
pub struct ApiFront {
    addr: std::net::SocketAddr,
    stage: String,
    log: Arc<Mutex<ApiFrontLog>>,
    _server: crate::server::ServerThread,
}

impl ApiFront {
    /// Starts it on 127.0.0.1.
    pub fn start(settings: ApiFrontSettings) -> anyhow::Result<Self> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding the API front")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(ApiFrontLog::default()));
        let stage = settings.stage.clone();
        let (s, l) = (Arc::new(settings), Arc::clone(&log));
        let server = crate::server::ServerThread::spawn("okra-api-front", move |stopped| {
            crate::server::serve_http(listener, stopped, move |req| {
                let (s, log) = (Arc::clone(&s), Arc::clone(&l));
                async move { handle(req, &s, &log).await }
            })
        })?;
        Ok(Self {
            addr,
            stage,
            log,
            _server: server,
        })
    }

    /// The stage's URL, as the stack's `ApiUrl` output: `http://127.0.0.1:PORT/STAGE`.
    pub fn url(&self) -> String {
        format!("http://{}/{}", self.addr, self.stage)
    }

    /// What it refused and served so far.
    pub fn log(&self) -> ApiFrontLog {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn answer(status: StatusCode, kind: Option<&str>, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(kind) = kind.and_then(|k| http::HeaderValue::from_str(k).ok()) {
        r.headers_mut().insert("x-amzn-errortype", kind);
    }
    r
}

static REQUESTS: AtomicU64 = AtomicU64::new(1);

async fn handle(
    req: Request<Incoming>,
    s: &ApiFrontSettings,
    log: &Mutex<ApiFrontLog>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return answer(
            StatusCode::BAD_REQUEST,
            None,
            &json!({"message": "bad body"}),
        );
    };
    let refused = |r: Refusal, doc_key: &str| {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refused
            .push((r.0.as_u16(), r.2.clone()));
        answer(r.0, r.1, &json!({ doc_key: r.2 }))
    };
    // The stage's resources: GET /cells and ANY /cells/{proxy+}.
    let full_path = parts.uri.path().to_owned();
    let Some(path) = full_path
        .strip_prefix(&format!("/{}", s.stage))
        .filter(|p| p.starts_with('/'))
        .map(str::to_owned)
    else {
        return refused(forbidden("Missing Authentication Token"), "message");
    };
    let method = parts.method.as_str().to_owned();
    let trimmed = path.trim_end_matches('/');
    let (resource, proxy) = if trimmed == "/cells" && method == "GET" {
        ("/cells", None)
    } else if let Some(p) = trimmed.strip_prefix("/cells/").filter(|p| !p.is_empty()) {
        ("/cells/{proxy+}", Some(p.to_owned()))
    } else {
        return refused(forbidden("Missing Authentication Token"), "message");
    };
    // SigV4, then IAM.
    let identity = match authenticate(&parts, &body, s) {
        Ok(i) => i,
        Err(r) => return refused(r, "message"),
    };
    let user_arn = format!("arn:aws:iam::{}:user/{}", s.account, identity.user);
    let resource_arn = format!(
        "arn:aws:execute-api:{}:{}:{}/{}/{method}/{}",
        s.region,
        s.account,
        s.api_id,
        s.stage,
        path.trim_start_matches('/')
    );
    if !allowed(s, identity, &resource_arn).await {
        let masked = format!(
            "arn:aws:execute-api:{}:********{}:{}/{}/{method}/{}",
            s.region,
            &s.account[s.account.len().saturating_sub(4)..],
            s.api_id,
            s.stage,
            path.trim_start_matches('/')
        );
        return refused(
            (
                StatusCode::FORBIDDEN,
                Some("AccessDeniedException"),
                format!(
                    "User: {user_arn} is not authorized to perform: execute-api:Invoke on \
                     resource: {masked}"
                ),
            ),
            "Message",
        );
    }
    let event = proxy_event(
        &parts,
        &body,
        s,
        (&method, &path, resource, proxy),
        (&user_arn, identity),
    );
    let url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        s.lambda.trim_end_matches('/'),
        s.function
    );
    let invoked = tokio::task::spawn_blocking(move || {
        let mut r = ureq::post(&url)
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(event)
            .ok()?;
        let failed = r.headers().contains_key("x-amz-function-error");
        let doc = r.body_mut().read_json::<Value>().ok()?;
        (!failed).then_some(doc)
    })
    .await
    .ok()
    .flatten();
    let Some(doc) = invoked else {
        return internal_error(log, &method, &path);
    };
    let Some(status) = doc["statusCode"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
    else {
        return internal_error(log, &method, &path);
    };
    let text = doc["body"].as_str().unwrap_or_default();
    let bytes = if doc["isBase64Encoded"] == true {
        match aws_smithy_types::base64::decode(text) {
            Ok(b) => b,
            Err(_) => return internal_error(log, &method, &path),
        }
    } else {
        text.as_bytes().to_vec()
    };
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    for (k, v) in doc["headers"].as_object().into_iter().flatten() {
        if let (Ok(k), Some(Ok(v))) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            v.as_str().map(http::HeaderValue::from_str),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .served
        .push((method, path, status.as_u16()));
    r
}

fn internal_error(log: &Mutex<ApiFrontLog>, method: &str, path: &str) -> Response<Full<Bytes>> {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .served
        .push((method.to_owned(), path.to_owned(), 502));
    answer(
        StatusCode::BAD_GATEWAY,
        None,
        &json!({"message": "Internal server error"}),
    )
}

/// The signer's identity, its signature checked.
fn authenticate<'a>(
    parts: &http::request::Parts,
    body: &[u8],
    s: &'a ApiFrontSettings,
) -> Result<&'a ApiIdentity, Refusal> {
    let auth = crate::sigv4::authorization(parts)?;
    let identity = s
        .identities
        .iter()
        .find(|i| i.access_key == auth.key)
        .ok_or_else(|| forbidden("The security token included in the request is invalid."))?;
    crate::sigv4::verify(
        parts,
        body,
        &auth,
        &identity.secret,
        None,
        "execute-api",
        &s.region,
    )?;
    Ok(identity)
}

/// Whether the identity's policy allows `execute-api:Invoke` on `resource` (the strict moto's
/// authorizer over template.yaml's managed policy; no policy, or no answer: denied).
async fn allowed(s: &ApiFrontSettings, identity: &ApiIdentity, resource: &str) -> bool {
    let Some(policy) = &identity.policy else {
        return false;
    };
    // The authorizer holds a principal named `...-LogicalId-...` to that resource's statements.
    let caller = format!("{}-{policy}-1", identity.user);
    crate::iam::authorize(&s.iam, &caller, "execute-api:Invoke", resource)
        .await
        .is_some_and(|d| d["allowed"] == true && d["function"].as_str() == Some(policy.as_str()))
}

/// The Lambda proxy integration's input.
fn proxy_event(
    parts: &http::request::Parts,
    body: &[u8],
    s: &ApiFrontSettings,
    (method, path, resource, proxy): (&str, &str, &str, Option<String>),
    (user_arn, identity): (&str, &ApiIdentity),
) -> Value {
    let mut headers = serde_json::Map::new();
    let mut multi_headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &parts.headers {
        let v = v.to_str().unwrap_or_default().to_owned();
        headers.insert(k.as_str().to_owned(), Value::from(v.clone()));
        multi_headers
            .entry(k.as_str().to_owned())
            .or_default()
            .push(v);
    }
    let mut query = serde_json::Map::new();
    let mut multi_query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in parts.uri.query().unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        query.insert(k.clone(), Value::from(v.clone()));
        multi_query.entry(k).or_default().push(v);
    }
    let text = std::str::from_utf8(body).ok();
    let (body_field, base64) = match (body.is_empty(), text) {
        (true, _) => (Value::Null, false),
        (false, Some(t)) => (Value::from(t), false),
        (false, None) => (Value::from(aws_smithy_types::base64::encode(body)), true),
    };
    let n = REQUESTS.fetch_add(1, Ordering::Relaxed);
    json!({
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "multiValueQueryStringParameters": if multi_query.is_empty() { Value::Null } else { json!(multi_query) },
        "pathParameters": proxy.map(|p| json!({"proxy": p})),
        "stageVariables": null,
        "requestContext": {
            "accountId": s.account,
            "apiId": s.api_id,
            "stage": s.stage,
            "resourcePath": resource,
            "httpMethod": method,
            "path": format!("/{}{path}", s.stage),
            "requestId": format!("00000000-0000-4000-8000-{n:012}"),
            "protocol": "HTTP/1.1",
            "identity": {
                "userArn": user_arn,
                "user": identity.user,
                "caller": identity.user,
                "accessKey": identity.access_key,
                "accountId": s.account,
                "sourceIp": "127.0.0.1",
            },
        },
        "body": body_field,
        "isBase64Encoded": base64,
    })
}

/// Percent-decoding of a query component (`+` is a space, as API Gateway reads a query).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => match b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_api_gateway_reads_them() {
        assert_eq!(decode("a%20b+c%2F"), "a b c/");
        assert_eq!(decode("100%"), "100%");
    }
}
