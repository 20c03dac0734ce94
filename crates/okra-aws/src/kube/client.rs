//! [`HubPort`] over typed Kubernetes API requests: the Argo CD hub's cluster secrets, over HTTPS
//! that trusts only the hub's own CA, with an EKS token of okra's credentials.
//!
//! okra sends its four requests (list, server-side apply and delete of secrets, read a namespace)
//! itself, typed, over the hyper/rustls stack the AWS SDK already links. kube-rs and k8s-openapi
//! would bring a generic client and generated types for the whole API into every function that
//! links this crate, for four calls: a larger zip and a slower cold start.
//!
//! The requests follow the Kubernetes API conventions (paths, `labelSelector`,
//! `application/apply-patch+yaml` with `fieldManager` and `force`); an error answer's `Status`
//! (`reason`, `message`, `code`) becomes an [`OkraError`].
//!
//! The token is never logged nor put in an error; a request's log line has its method, path and
//! status only.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use okra_core::argocd::{ClusterSecret, FIELD_MANAGER, StoredSecret};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;

use super::token::{TOKEN_LIFETIME, TokenError, eks_token};
use crate::error::{OkraError, Result};
use crate::ports::{Hub, HubPort};
use crate::probe::HttpClient;

/// The time a whole request may take (connection, TLS, answer): the SDK's attempt time-out
/// ([`crate::timeouts`]).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The time a TCP connection may take: the SDK's ([`crate::timeouts`]).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// How long before the end of its [`TOKEN_LIFETIME`] a token is made anew: one minute, as
/// aws-iam-authenticator's own client sets the token's expiry ("1 minute before the presigned URL
/// expires for some cushion", `pkg/token/token.go`, `GetWithSTS`).
pub const TOKEN_CUSHION: Duration = Duration::from_secs(60);

/// The server-side apply's content type (Kubernetes API conventions, "Server-Side Apply").
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// The Kubernetes API of okra's Argo CD hubs.
pub struct Kube {
    credentials: Option<SharedCredentialsProvider>,
    region: Option<String>,
    user_agent: String,
    timeout: Duration,
    /// Each hub's token (by cluster name), until [`TOKEN_CUSHION`] before it expires.
    tokens: tokio::sync::Mutex<HashMap<String, CachedToken>>,
    /// Each hub endpoint's client, with the CA data it trusts.
    clients: std::sync::Mutex<HashMap<String, (String, HttpClient)>>,
}

struct CachedToken {
    token: String,
    until: SystemTime,
}

impl fmt::Debug for Kube {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kube")
            .field("region", &self.region)
            .field("user_agent", &self.user_agent)
            .field("signs", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

/// `okra/VERSION app/NAME` (the function's name, as the SDK's user agent carries it), or
/// `okra/VERSION` without one.
pub fn user_agent(app: Option<&str>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match app {
        Some(app) => format!("okra/{version} app/{app}"),
        None => format!("okra/{version}"),
    }
}

impl Kube {
    /// Tokens signed with `credentials` for STS in `region`; `app` in the user agent.
    pub fn new(
        credentials: SharedCredentialsProvider,
        region: impl Into<String>,
        app: Option<&str>,
    ) -> Self {
        Self::build(Some(credentials), Some(region.into()), app)
    }

    /// The SDK configuration's credentials and region; the user agent names the Lambda function
    /// (`AWS_LAMBDA_FUNCTION_NAME`, else the configuration's app name).
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        let app = crate::app_name(std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok().as_deref())
            .or_else(|| config.app_name().cloned());
        Self::build(
            config.credentials_provider(),
            config.region().map(|r| r.to_string()),
            app.as_ref().map(|a| a.as_ref()),
        )
    }

    fn build(
        credentials: Option<SharedCredentialsProvider>,
        region: Option<String>,
        app: Option<&str>,
    ) -> Self {
        Self {
            credentials,
            region,
            user_agent: user_agent(app),
            timeout: REQUEST_TIMEOUT,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
            clients: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The hub's token at `now`: the cached one, or one made with fresh credentials, kept until
    /// [`TOKEN_CUSHION`] before the end of its [`TOKEN_LIFETIME`] (or until the credentials
    /// expire, if sooner).
    async fn token(&self, cluster: &str, now: SystemTime) -> Result<String> {
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(cluster).filter(|t| now < t.until) {
            return Ok(t.token.clone());
        }
        let provider = self.credentials.as_ref().ok_or_else(|| {
            OkraError::AccessDenied(
                format!("hub {cluster}: okra has no AWS credentials to make an EKS token with"),
                None,
            )
        })?;
        let region = self.region.as_deref().ok_or_else(|| OkraError::Aws {
            code: "NoRegion".into(),
            message: format!("hub {cluster}: no AWS region to sign an EKS token for"),
            cause: None,
        })?;
        let creds = provider.provide_credentials().await.map_err(|e| {
            OkraError::AccessDenied(format!("hub {cluster}: no AWS credentials: {e}"), None)
                .caused_by(Box::new(e))
        })?;
        let token = eks_token(&creds, region, cluster, now).map_err(|e| token_error(cluster, e))?;
        let mut until = now + TOKEN_LIFETIME - TOKEN_CUSHION;
        if let Some(expiry) = creds.expiry() {
            until = until.min(expiry);
        }
        tokens.insert(
            cluster.to_string(),
            CachedToken {
                token: token.clone(),
                until,
            },
        );
        Ok(token)
    }

    /// Forgets the hub's token (the hub refused it).
    async fn forget_token(&self, cluster: &str) {
        self.tokens.lock().await.remove(cluster);
    }

    /// The endpoint's client, trusting only `ca_data` (made once per endpoint, again when its CA
    /// changes).
    fn client(&self, hub: &Hub) -> Result<HttpClient> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((ca, client)) = clients.get(&hub.endpoint)
            && *ca == hub.ca_data
        {
            return Ok(client.clone());
        }
        let client = https_client(&hub.ca_data).map_err(|e| OkraError::Aws {
            code: "KubernetesCa".into(),
            message: format!(
                "hub {}: its certificateAuthority.data is not a base64 PEM bundle of \
                 certificates: {e}",
                hub.cluster
            ),
            cause: None,
        })?;
        clients.insert(hub.endpoint.clone(), (hub.ca_data.clone(), client.clone()));
        Ok(client)
    }

    /// Sends `req` to the hub and reads the whole answer: its status and body. Only a request
    /// that got no answer is an error here.
    async fn send(&self, hub: &Hub, req: &ApiRequest, call: &Call<'_>) -> Result<(u16, Bytes)> {
        let base = base_url(hub)?;
        let client = self.client(hub)?;
        let token = self.token(&hub.cluster, SystemTime::now()).await?;
        let request = req.to_http(&base, &token, &self.user_agent).map_err(|e| {
            OkraError::InvalidInput(format!("{call}: {} {}: {e}", req.method, req.path))
        })?;
        let answer = async {
            let resp = client
                .request(request)
                .await
                .map_err(|e| transport_error(call, &req.path, Box::new(e)))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| transport_error(call, &req.path, Box::new(e)))?
                .to_bytes();
            Ok::<_, OkraError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, answer)
            .await
            .map_err(|_| {
                OkraError::AwsUnavailable(
                    format!(
                        "{call}: no answer from {} in {}s",
                        hub.endpoint,
                        self.timeout.as_secs_f64()
                    ),
                    None,
                )
            })??;
        tracing::debug!(hub = %hub.cluster, method = %req.method, path = %req.path, status, "kubernetes");
        if status == 401 {
            self.forget_token(&hub.cluster).await;
        }
        Ok((status, body))
    }

    /// Sends `req`; the body of a 2xx answer, else the answer's `Status` as an error.
    async fn call(&self, hub: &Hub, req: &ApiRequest, call: &Call<'_>) -> Result<Bytes> {
        let (status, body) = self.send(hub, req, call).await?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(status_error(status, &body, call))
        }
    }
}

impl HubPort for Kube {
    async fn list_secrets(
        &self,
        hub: &Hub,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<StoredSecret>> {
        let call = Call::new(hub, namespace, "list secrets".into());
        let body = self
            .call(hub, &list_secrets(namespace, selector), &call)
            .await?;
        parse_list(&body).map_err(|e| OkraError::Aws {
            code: "KubernetesBadAnswer".into(),
            message: format!("{call}: the answer is not a SecretList: {e}"),
            cause: Some(Box::new(e)),
        })
    }

    async fn apply_secret(&self, hub: &Hub, secret: &ClusterSecret) -> Result<()> {
        let call = Call::new(
            hub,
            &secret.namespace,
            format!("apply secret {}", secret.name),
        );
        self.call(hub, &apply_secret(secret), &call).await?;
        Ok(())
    }

    async fn delete_secret(&self, hub: &Hub, namespace: &str, name: &str) -> Result<bool> {
        let call = Call::new(hub, namespace, format!("delete secret {name}"));
        let (status, body) = self
            .send(hub, &delete_secret(namespace, name), &call)
            .await?;
        match status {
            200..300 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error(status, &body, &call)),
        }
    }

    async fn read_namespace(&self, hub: &Hub, namespace: &str) -> Result<()> {
        let call = Call::new(hub, namespace, "read the namespace".into());
        self.call(hub, &read_namespace(namespace), &call).await?;
        Ok(())
    }
}

/// What a request is about, for messages: `hub H, namespace N: WHAT`.
#[derive(Debug)]
struct Call<'a> {
    hub: &'a str,
    namespace: &'a str,
    what: String,
}

impl<'a> Call<'a> {
    fn new(hub: &'a Hub, namespace: &'a str, what: String) -> Self {
        Self {
            hub: &hub.cluster,
            namespace,
            what,
        }
    }
}

impl fmt::Display for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hub {}, namespace {}: {}",
            self.hub, self.namespace, self.what
        )
    }
}

/// One Kubernetes API request, before the hub's address and the token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiRequest {
    method: Method,
    /// The path and query.
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl ApiRequest {
    fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            content_type: None,
            body: Vec::new(),
        }
    }

    /// The HTTP request to `base` (`https://host[:port]`).
    fn to_http(
        &self,
        base: &str,
        token: &str,
        user_agent: &str,
    ) -> std::result::Result<http::Request<Full<Bytes>>, http::Error> {
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(format!("{base}{}", self.path))
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, user_agent);
        if let Some(ct) = self.content_type {
            builder = builder.header(http::header::CONTENT_TYPE, ct);
        }
        builder.body(Full::new(Bytes::from(self.body.clone())))
    }
}

fn secrets_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{}/secrets", encode(namespace))
}

/// `GET /api/v1/namespaces/{ns}/secrets?labelSelector=...`.
fn list_secrets(namespace: &str, selector: &str) -> ApiRequest {
    ApiRequest::new(
        Method::GET,
        format!(
            "{}?labelSelector={}",
            secrets_path(namespace),
            encode(selector)
        ),
    )
}

/// Server-side apply: `PATCH .../secrets/{name}?fieldManager=okra&force=true`, the manifest as
/// JSON (valid YAML) in `application/apply-patch+yaml`.
fn apply_secret(secret: &ClusterSecret) -> ApiRequest {
    ApiRequest {
        content_type: Some(APPLY_PATCH),
        body: secret.manifest().to_string().into_bytes(),
        ..ApiRequest::new(
            Method::PATCH,
            format!(
                "{}/{}?fieldManager={}&force=true",
                secrets_path(&secret.namespace),
                encode(&secret.name),
                encode(FIELD_MANAGER)
            ),
        )
    }
}

/// `DELETE .../secrets/{name}`.
fn delete_secret(namespace: &str, name: &str) -> ApiRequest {
    ApiRequest::new(
        Method::DELETE,
        format!("{}/{}", secrets_path(namespace), encode(name)),
    )
}

/// `GET /api/v1/namespaces/{ns}`.
fn read_namespace(namespace: &str) -> ApiRequest {
    ApiRequest::new(
        Method::GET,
        format!("/api/v1/namespaces/{}", encode(namespace)),
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a path segment or a query
/// value).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The hub's `https://host[:port]`; any other scheme is refused (EKS endpoints are always
/// HTTPS, and the token must never travel in clear).
fn base_url(hub: &Hub) -> Result<String> {
    let invalid = |why: &str| {
        OkraError::InvalidInput(format!(
            "hub {}: endpoint {:?} {why}",
            hub.cluster, hub.endpoint
        ))
    };
    let uri: http::Uri = hub.endpoint.parse().map_err(|_| invalid("is not a URL"))?;
    if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
        return Err(invalid(
            "is not https://: okra sends its EKS token to a Kubernetes API only over TLS",
        ));
    }
    let authority = uri.authority().ok_or_else(|| invalid("has no host"))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid("has a path; an EKS endpoint is https://HOST"));
    }
    Ok(format!("https://{authority}"))
}

/// An HTTPS-only client (HTTP/1) whose only trusted root is the CA in `ca_data` (base64 of a PEM
/// bundle, as DescribeCluster's `certificateAuthority.data`).
fn https_client(ca_data: &str) -> std::result::Result<HttpClient, String> {
    let pem =
        aws_smithy_types::base64::decode(ca_data.trim()).map_err(|e| format!("not base64: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no CERTIFICATE in it".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// A request that got no answer: `AwsUnavailable` (retry), but a hub whose certificate does not
/// verify against its CA is `KubernetesTls` (retrying cannot help).
fn transport_error(call: &Call<'_>, path: &str, e: crate::error::Cause) -> OkraError {
    let detail = chain(&*e);
    if let Some(tls) = tls_error(&*e) {
        return OkraError::Aws {
            code: "KubernetesTls".into(),
            message: format!(
                "{call}: the hub's certificate does not verify against its CA \
                 (DescribeCluster's certificateAuthority): {tls}"
            ),
            cause: Some(e),
        };
    }
    OkraError::AwsUnavailable(format!("{call}: {path}: {detail}"), Some(e))
}

/// The error and its sources, joined by `: `.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let _ = write!(out, ": {s}");
        next = s.source();
    }
    out
}

/// A certificate error of rustls in `e`'s chain (hyper-rustls and tokio-rustls wrap it in
/// `io::Error`s, whose `source` skips it).
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(r) = e.downcast_ref::<rustls::Error>() {
        return matches!(
            r,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        )
        .then_some(r);
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        && let Some(r) = tls_error(inner)
    {
        return Some(r);
    }
    e.source().and_then(tls_error)
}

/// A Kubernetes `Status`: the body of an error answer.
#[derive(Debug, Default, Deserialize)]
struct Status {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
}

/// The longest part of a body that is not a `Status` kept in a message.
const MAX_BODY_IN_MESSAGE: usize = 200;

/// An error answer as an [`OkraError`], by its HTTP status: 401/403 `AccessDenied` (saying what
/// to check), 404 `NotFound`, 409 `Conflict`, 429 and 5xx `AwsUnavailable`, others
/// `Kubernetes<Reason>`.
fn status_error(status: u16, body: &[u8], call: &Call<'_>) -> OkraError {
    let s: Status = serde_json::from_slice(body).unwrap_or_default();
    let reason = if s.reason.is_empty() {
        http::StatusCode::from_u16(status)
            .ok()
            .and_then(|c| c.canonical_reason())
            .unwrap_or_default()
            .replace(' ', "")
    } else {
        s.reason
    };
    let message = if s.message.is_empty() {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let mut cut = text.len().min(MAX_BODY_IN_MESSAGE);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("HTTP {status} {reason} {}", &text[..cut])
            .trim_end()
            .to_string()
    } else {
        s.message
    };
    let check = || {
        format!(
            "okra's role needs an EKS access entry on hub {hub} with an access policy covering \
             secrets in namespace {ns} (AmazonEKSEditPolicy with a namespace access scope of \
             {ns}, as template.yaml's ArgoCdHubAccessEntry makes)",
            hub = call.hub,
            ns = call.namespace
        )
    };
    match status {
        401 => OkraError::AccessDenied(
            format!(
                "{call}: the hub did not accept okra's EKS token ({message}); {}, and the \
                 hub's authentication mode must allow access entries (API or \
                 API_AND_CONFIG_MAP)",
                check()
            ),
            None,
        ),
        403 => OkraError::AccessDenied(format!("{call}: {message}; {}", check()), None),
        404 => OkraError::NotFound(format!("{call}: {message}")),
        409 => OkraError::Conflict(format!("{call}: {message}"), None),
        429 | 500..=599 => {
            OkraError::AwsUnavailable(format!("{call}: HTTP {status} {reason}: {message}"), None)
        }
        _ => OkraError::Aws {
            code: format!(
                "Kubernetes{}",
                if reason.is_empty() {
                    status.to_string()
                } else {
                    reason
                }
            ),
            message: format!("{call}: {message}"),
            cause: None,
        },
    }
}

fn token_error(cluster: &str, e: TokenError) -> OkraError {
    let message = format!("hub {cluster}: cannot make its EKS token: {e}");
    match e {
        TokenError::EmptyCluster | TokenError::InvalidRegion(_) => OkraError::InvalidInput(message),
        TokenError::Signing(_) => OkraError::Aws {
            code: "EksToken".into(),
            message,
            cause: Some(Box::new(e)),
        },
    }
}

/// `{"items":[{"metadata":{...},"data":{...}}]}`.
#[derive(Debug, Deserialize)]
struct SecretList {
    #[serde(default)]
    items: Option<Vec<SecretItem>>,
}

#[derive(Debug, Deserialize)]
struct SecretItem {
    metadata: Metadata,
    #[serde(default)]
    data: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// The secrets of a list answer, their data decoded (values that are not base64 of UTF-8 are
/// left out).
fn parse_list(body: &[u8]) -> serde_json::Result<Vec<StoredSecret>> {
    let list: SecretList = serde_json::from_slice(body)?;
    Ok(list
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| StoredSecret {
            name: item.metadata.name,
            labels: item.metadata.labels.unwrap_or_default(),
            annotations: item.metadata.annotations.unwrap_or_default(),
            data: item
                .data
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| {
                    let bytes = aws_smithy_types::base64::decode(v).ok()?;
                    Some((k, String::from_utf8(bytes).ok()?))
                })
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_credential_types::Credentials;
    use aws_credential_types::provider::future;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use rustls::pki_types::PrivateKeyDer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::token::TOKEN_PREFIX;
    use super::*;

    // ---- credentials that count how often they are asked for ----

    #[derive(Debug)]
    struct Counting {
        calls: AtomicUsize,
        expiry: Option<SystemTime>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("AKID{n}"),
                "secret",
                None,
                self.expiry,
                "test",
            )))
        }
    }

    fn counting(expiry: Option<SystemTime>) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            expiry,
        })
    }

    fn kube_with(creds: Arc<Counting>) -> Kube {
        Kube::new(
            SharedCredentialsProvider::new(ArcProvider(creds)),
            "eu-west-1",
            Some("okra-ApplyFunction-1"),
        )
    }

    #[derive(Debug)]
    struct ArcProvider(Arc<Counting>);

    impl ProvideCredentials for ArcProvider {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.provide_credentials()
        }
    }

    fn t0() -> SystemTime {
        humantime::parse_rfc3339("2026-01-02T03:04:05Z").unwrap()
    }

    #[tokio::test]
    async fn a_token_is_kept_until_a_minute_before_its_15_minutes_end() {
        let creds = counting(None);
        let kube = kube_with(creds.clone());
        let a = kube.token("hub", t0()).await.unwrap();
        assert!(a.starts_with(TOKEN_PREFIX));
        let later = t0() + Duration::from_secs(14 * 60 - 1);
        assert_eq!(kube.token("hub", later).await.unwrap(), a);
        assert_eq!(creds.calls.load(Ordering::SeqCst), 1);
        // 14 minutes on: a new token, with fresh credentials.
        let b = kube
            .token("hub", t0() + Duration::from_secs(14 * 60))
            .await
            .unwrap();
        assert_ne!(a, b);
        assert_eq!(creds.calls.load(Ordering::SeqCst), 2);
        // Another hub has its own token.
        let c = kube.token("other", t0()).await.unwrap();
        assert_ne!(a, c);
        assert_eq!(creds.calls.load(Ordering::SeqCst), 3);
        // A refused token is forgotten.
        kube.forget_token("other").await;
        kube.token("other", t0()).await.unwrap();
        assert_eq!(creds.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_token_is_not_kept_past_its_credentials() {
        let creds = counting(Some(t0() + Duration::from_secs(300)));
        let kube = kube_with(creds.clone());
        let a = kube.token("hub", t0()).await.unwrap();
        let just_before = t0() + Duration::from_secs(299);
        assert_eq!(kube.token("hub", just_before).await.unwrap(), a);
        kube.token("hub", t0() + Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(creds.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_user_agent_names_the_function() {
        let v = env!("CARGO_PKG_VERSION");
        assert_eq!(
            user_agent(Some("okra-F-1")),
            format!("okra/{v} app/okra-F-1")
        );
        assert_eq!(user_agent(None), format!("okra/{v}"));
    }

    // ---- requests ----

    fn secret() -> ClusterSecret {
        ClusterSecret {
            name: "okra-web-web-1".into(),
            namespace: "argocd".into(),
            labels: BTreeMap::from([("okra.io/cell".into(), "web".into())]),
            annotations: BTreeMap::from([("okra.io/cluster".into(), "web-1".into())]),
            string_data: BTreeMap::from([("name".into(), "web-1".into())]),
        }
    }

    #[test]
    fn requests_follow_the_api_conventions() {
        let r = list_secrets("argocd", &okra_core::argocd::selector("web"));
        assert_eq!(r.method, Method::GET);
        assert_eq!(
            r.path,
            "/api/v1/namespaces/argocd/secrets?labelSelector=\
             app.kubernetes.io%2Fmanaged-by%3Dokra%2Cokra.io%2Fcell%3Dweb"
        );
        assert!(r.body.is_empty() && r.content_type.is_none());

        let r = apply_secret(&secret());
        assert_eq!(r.method, Method::PATCH);
        assert_eq!(
            r.path,
            "/api/v1/namespaces/argocd/secrets/okra-web-web-1?fieldManager=okra&force=true"
        );
        assert_eq!(r.content_type, Some("application/apply-patch+yaml"));
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, secret().manifest());

        let r = delete_secret("argocd", "okra-web-web-1");
        assert_eq!(r.method, Method::DELETE);
        assert_eq!(r.path, "/api/v1/namespaces/argocd/secrets/okra-web-web-1");

        let r = read_namespace("argocd");
        assert_eq!(r.method, Method::GET);
        assert_eq!(r.path, "/api/v1/namespaces/argocd");
        // A name cannot leave its path segment.
        assert_eq!(
            delete_secret("a/../b", "x?y").path,
            "/api/v1/namespaces/a%2F..%2Fb/secrets/x%3Fy"
        );
    }

    fn hub(endpoint: &str, ca_data: &str) -> Hub {
        Hub {
            cluster: "hub".into(),
            endpoint: endpoint.into(),
            ca_data: ca_data.into(),
        }
    }

    #[test]
    fn only_https_endpoints_are_used() {
        assert_eq!(
            base_url(&hub("https://ABC.gr7.eu-west-1.eks.amazonaws.com", "")).unwrap(),
            "https://ABC.gr7.eu-west-1.eks.amazonaws.com"
        );
        assert_eq!(
            base_url(&hub("https://127.0.0.1:6443/", "")).unwrap(),
            "https://127.0.0.1:6443"
        );
        for bad in [
            "http://127.0.0.1:6443",
            "ftp://x",
            "127.0.0.1",
            "https://x/api",
        ] {
            let e = base_url(&hub(bad, "")).unwrap_err();
            assert_eq!(e.error_type(), "InvalidInput", "{bad}");
        }
        let e = base_url(&hub("http://127.0.0.1:6443", "")).unwrap_err();
        assert!(e.to_string().contains("not https://"), "{e}");
    }

    #[tokio::test]
    async fn an_http_endpoint_is_refused_before_any_token_or_connection() {
        let creds = counting(None);
        let kube = kube_with(creds.clone());
        let e = kube
            .read_namespace(&hub("http://127.0.0.1:1", "eA=="), "argocd")
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "InvalidInput");
        assert!(e.to_string().contains("hub hub"), "{e}");
        assert_eq!(creds.calls.load(Ordering::SeqCst), 0);
    }

    // ---- Status -> OkraError ----

    fn status(code: u16, reason: &str, message: &str) -> Vec<u8> {
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": reason, "message": message, "code": code,
        })
        .to_string()
        .into_bytes()
    }

    fn call() -> Call<'static> {
        Call {
            hub: "hub",
            namespace: "argocd",
            what: "list secrets".into(),
        }
    }

    #[test]
    fn statuses_map_to_okra_errors() {
        let forbidden = status(
            403,
            "Forbidden",
            "secrets is forbidden: User \"okra\" cannot list resource \"secrets\"",
        );
        let e = status_error(403, &forbidden, &call());
        assert_eq!(e.error_type(), "AccessDenied");
        let m = e.to_string();
        for part in [
            "hub hub, namespace argocd: list secrets",
            "cannot list resource",
            "EKS access entry on hub hub",
            "secrets in namespace argocd",
            "AmazonEKSEditPolicy",
            "ArgoCdHubAccessEntry",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
        let e = status_error(401, &status(401, "Unauthorized", "Unauthorized"), &call());
        assert_eq!(e.error_type(), "AccessDenied");
        assert!(e.to_string().contains("did not accept okra's EKS token"));

        let t = |code: u16, reason: &str| {
            status_error(code, &status(code, reason, "m"), &call()).error_type()
        };
        assert_eq!(t(404, "NotFound"), "NotFound");
        assert_eq!(t(409, "Conflict"), "Conflict");
        assert_eq!(t(429, "TooManyRequests"), "AwsUnavailable");
        assert_eq!(t(500, "InternalError"), "AwsUnavailable");
        assert_eq!(t(503, "ServiceUnavailable"), "AwsUnavailable");
        assert!(status_error(503, b"", &call()).is_transient());

        match status_error(422, &status(422, "Invalid", "Secret is invalid"), &call()) {
            OkraError::Aws { code, message, .. } => {
                assert_eq!(code, "KubernetesInvalid");
                assert_eq!(
                    message,
                    "hub hub, namespace argocd: list secrets: Secret is invalid"
                );
            }
            e => panic!("{e:?}"),
        }
        // Not a Status (a proxy's page): the HTTP reason, and the start of the body.
        match status_error(400, b"<html>bad</html>", &call()) {
            OkraError::Aws { code, message, .. } => {
                assert_eq!(code, "KubernetesBadRequest");
                assert!(
                    message.ends_with("HTTP 400 BadRequest <html>bad</html>"),
                    "{message}"
                );
            }
            e => panic!("{e:?}"),
        }
        let long = "é".repeat(1000);
        let e = status_error(418, long.as_bytes(), &call());
        assert!(e.to_string().len() < 400, "{e}");
    }

    #[test]
    fn a_list_answer_is_decoded() {
        let body = serde_json::json!({
            "kind": "SecretList",
            "items": [
                {
                    "metadata": {
                        "name": "okra-web-web-1",
                        "labels": {"okra.io/cell": "web"},
                        "annotations": {"okra.io/cluster": "web-1"},
                    },
                    "data": {
                        "name": aws_smithy_types::base64::encode("web-1"),
                        "bin": aws_smithy_types::base64::encode([0xff, 0xfe]),
                        "bad": "%%%",
                    },
                },
                {"metadata": {"name": "bare", "labels": null}},
            ],
        });
        let got = parse_list(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            got,
            vec![
                StoredSecret {
                    name: "okra-web-web-1".into(),
                    labels: BTreeMap::from([("okra.io/cell".into(), "web".into())]),
                    annotations: BTreeMap::from([("okra.io/cluster".into(), "web-1".into())]),
                    data: BTreeMap::from([("name".into(), "web-1".into())]),
                },
                StoredSecret {
                    name: "bare".into(),
                    ..StoredSecret::default()
                },
            ]
        );
        assert!(parse_list(br#"{"items": null}"#).unwrap().is_empty());
        assert!(parse_list(br#"{"items": 5}"#).is_err());
    }

    #[test]
    fn bad_ca_data_is_refused() {
        assert!(https_client("not base64!").is_err());
        assert!(https_client(&aws_smithy_types::base64::encode("no pem")).is_err());
    }

    // ---- over TLS, against a local server ----

    struct Ca {
        issuer: CertifiedIssuer<'static, KeyPair>,
    }

    impl Ca {
        fn new() -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let issuer =
                CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
            Self { issuer }
        }

        /// `certificateAuthority.data`: base64 of the PEM.
        fn data(&self) -> String {
            aws_smithy_types::base64::encode(self.issuer.pem())
        }

        /// A serving certificate for 127.0.0.1 and its key.
        fn serving(&self) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
            let key = KeyPair::generate().unwrap();
            let params =
                CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()]).unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            (
                cert.der().clone(),
                PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
        }
    }

    /// A request the server saw.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    type Log = Arc<std::sync::Mutex<Vec<Seen>>>;

    /// An HTTPS server with `ca`'s serving certificate that answers each request (one per
    /// connection) with the next of `answers`.
    async fn server(ca: &Ca, answers: Vec<(u16, String)>) -> (String, Log) {
        let (cert, key) = ca.serving();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log: Log = Arc::default();
        let seen = log.clone();
        tokio::spawn(async move {
            let mut answers = answers.into_iter();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let Some(req) = read_request(&mut tls).await else {
                    continue;
                };
                seen.lock().unwrap().push(req);
                let (status, body) = answers.next().unwrap_or((500, String::new()));
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        (format!("https://127.0.0.1:{port}"), log)
    }

    async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<Seen> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
        };
        let head = String::from_utf8(buf[..end].to_vec()).ok()?;
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_string();
        let target = first.next()?.to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[end + 4..].to_vec();
        while body.len() < len {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Seen {
            method,
            target,
            headers,
            body,
        })
    }

    #[tokio::test]
    async fn each_call_sends_its_request_over_tls_trusting_the_hub_ca() {
        let ca = Ca::new();
        let list = serde_json::json!({"items": [{
            "metadata": {"name": "okra-web-web-1", "labels": {"okra.io/cell": "web"}},
            "data": {"name": aws_smithy_types::base64::encode("web-1")},
        }]});
        let (endpoint, log) = server(
            &ca,
            vec![
                (200, list.to_string()),
                (200, secret().manifest().to_string()),
                (200, "{}".into()),
                (
                    404,
                    String::from_utf8(status(404, "NotFound", "not found")).unwrap(),
                ),
                (200, r#"{"kind":"Namespace"}"#.into()),
            ],
        )
        .await;
        let hub = hub(&endpoint, &ca.data());
        let creds = counting(None);
        let kube = kube_with(creds.clone());

        let got = kube
            .list_secrets(&hub, "argocd", "okra.io/cell=web")
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data["name"], "web-1");
        kube.apply_secret(&hub, &secret()).await.unwrap();
        assert!(kube.delete_secret(&hub, "argocd", "a").await.unwrap());
        assert!(!kube.delete_secret(&hub, "argocd", "b").await.unwrap());
        kube.read_namespace(&hub, "argocd").await.unwrap();

        let seen = log.lock().unwrap().clone();
        let lines: Vec<(&str, &str)> = seen
            .iter()
            .map(|s| (s.method.as_str(), s.target.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    "GET",
                    "/api/v1/namespaces/argocd/secrets?labelSelector=okra.io%2Fcell%3Dweb"
                ),
                (
                    "PATCH",
                    "/api/v1/namespaces/argocd/secrets/okra-web-web-1?fieldManager=okra&force=true"
                ),
                ("DELETE", "/api/v1/namespaces/argocd/secrets/a"),
                ("DELETE", "/api/v1/namespaces/argocd/secrets/b"),
                ("GET", "/api/v1/namespaces/argocd"),
            ]
        );
        let token = seen[0].header("authorization").unwrap();
        assert!(token.starts_with("Bearer k8s-aws-v1."), "{token}");
        for s in &seen {
            assert_eq!(s.header("authorization"), Some(token), "one cached token");
            assert_eq!(s.header("accept"), Some("application/json"));
            assert_eq!(
                s.header("user-agent"),
                Some(user_agent(Some("okra-ApplyFunction-1")).as_str())
            );
        }
        assert_eq!(creds.calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            seen[1].header("content-type"),
            Some("application/apply-patch+yaml")
        );
        let body: serde_json::Value = serde_json::from_slice(&seen[1].body).unwrap();
        assert_eq!(body, secret().manifest());
        // One client for the endpoint.
        assert_eq!(kube.clients.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_error_status_is_an_okra_error_and_a_401_drops_the_token() {
        let ca = Ca::new();
        let body = |c: u16, r: &str| String::from_utf8(status(c, r, "no")).unwrap();
        let (endpoint, _log) = server(
            &ca,
            vec![
                (403, body(403, "Forbidden")),
                (401, body(401, "Unauthorized")),
                (409, body(409, "Conflict")),
                (503, body(503, "ServiceUnavailable")),
            ],
        )
        .await;
        let hub = hub(&endpoint, &ca.data());
        let creds = counting(None);
        let kube = kube_with(creds.clone());
        let e = kube.list_secrets(&hub, "argocd", "a=b").await.unwrap_err();
        assert_eq!(e.error_type(), "AccessDenied");
        assert!(e.to_string().contains("AmazonEKSEditPolicy"), "{e}");
        let e = kube.read_namespace(&hub, "argocd").await.unwrap_err();
        assert_eq!(e.error_type(), "AccessDenied");
        assert_eq!(
            kube.tokens.lock().await.len(),
            0,
            "the refused token is dropped"
        );
        let e = kube.apply_secret(&hub, &secret()).await.unwrap_err();
        assert_eq!(e.error_type(), "Conflict");
        let e = kube.delete_secret(&hub, "argocd", "x").await.unwrap_err();
        assert_eq!(e.error_type(), "AwsUnavailable");
        assert_eq!(creds.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_server_signed_by_another_ca_is_refused() {
        let theirs = Ca::new();
        let (endpoint, log) = server(&theirs, vec![(200, "{}".into())]).await;
        let kube = kube_with(counting(None));
        let e = kube
            .read_namespace(&hub(&endpoint, &Ca::new().data()), "argocd")
            .await
            .unwrap_err();
        match &e {
            OkraError::Aws { code, message, .. } => {
                assert_eq!(code, "KubernetesTls");
                assert!(
                    message.contains("does not verify against its CA"),
                    "{message}"
                );
            }
            e => panic!("{e:?}"),
        }
        assert!(!e.is_transient());
        assert!(log.lock().unwrap().is_empty(), "no request was sent");
    }

    #[tokio::test]
    async fn no_answer_in_time_is_transient() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and then says nothing (no TLS handshake).
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((c, _)) = listener.accept().await {
                conns.push(c);
            }
        });
        let kube = Kube {
            timeout: Duration::from_millis(300),
            ..kube_with(counting(None))
        };
        let e = kube
            .read_namespace(
                &hub(&format!("https://127.0.0.1:{port}"), &Ca::new().data()),
                "argocd",
            )
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "AwsUnavailable");
        assert!(e.to_string().contains("no answer"), "{e}");
        held.abort();
        // Nobody listening: a connection error, transient too.
        let e = kube
            .read_namespace(&hub("https://127.0.0.1:1", &Ca::new().data()), "argocd")
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "AwsUnavailable", "{e}");
    }
}
