//! [`HttpPort`] over hyper (the HTTP stack the SDK already links): Prometheus, Amazon Managed
//! Service for Prometheus (SigV4, service `aps`, with the function's own credentials) and web
//! metrics.
//!
//! Secret header values come from Secrets Manager, read once per container and kept in memory;
//! they are never logged (the adapter's `Debug` shows only how many are cached, and errors name
//! the secret's ARN, never its value). A request carries the user agent `okra app/FUNCTION`, as
//! the SDK's clients do, so that the local AWS can tell which function's role signed it.

use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use okra_core::analysis::probe::{HeaderValue, Request};
use okra_core::spec::WebMethod;
use tokio::sync::Mutex;

use crate::error::{OkraError, Result};
use crate::ports::{HttpAnswer, HttpPort, SecretsPort};

/// The HTTPS client okra's own HTTP adapters share (Datadog, Prometheus, web).
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An adapter's HTTPS client, made at its first request (reading the machine's TLS roots is
/// no work for a function's start-up, nor for a sample that reaches only AWS).
pub(crate) type LazyClient = std::sync::OnceLock<std::result::Result<HttpClient, String>>;

/// A client over the machine's TLS roots (HTTP/1; http:// allowed for local servers). Never
/// fails: without TLS roots only the requests do.
fn client() -> std::result::Result<HttpClient, String> {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map(|b| {
            Client::builder(TokioExecutor::new()).build(b.https_or_http().enable_http1().build())
        })
        .map_err(|e| format!("no TLS root certificates: {e}"))
}

/// Sends `request` and reads the whole answer within `timeout`. No client (no TLS roots) is
/// `Tls`; no answer is `AwsUnavailable` naming `what`.
pub(crate) async fn fetch(
    http: &LazyClient,
    request: http::Request<Full<Bytes>>,
    timeout: std::time::Duration,
    what: &str,
) -> Result<HttpAnswer> {
    let http = http
        .get_or_init(client)
        .as_ref()
        .map_err(|e| OkraError::Aws {
            code: "Tls".into(),
            message: e.clone(),
            cause: None,
        })?;
    let unavailable =
        |e: &dyn fmt::Display| OkraError::AwsUnavailable(format!("{what}: {e}"), None);
    let answer = async {
        let resp = http.request(request).await.map_err(|e| unavailable(&e))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unavailable(&e))?
            .to_bytes();
        Ok::<_, OkraError>(HttpAnswer {
            status,
            body: body.to_vec(),
        })
    };
    tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| unavailable(&format!("no answer in {}s", timeout.as_secs_f64())))?
}

/// The HTTP providers' adapter.
pub struct Probe<S> {
    secrets: S,
    credentials: Option<SharedCredentialsProvider>,
    /// The SDK configuration that assumes `sigv4.roleArn` roles (STS AssumeRole).
    config: Option<aws_config::SdkConfig>,
    user_agent: String,
    cache: Mutex<HashMap<String, String>>,
    /// Assumed roles' credentials, until they are 5 minutes from expiring.
    roles: Mutex<HashMap<String, Credentials>>,
    http: LazyClient,
}

/// The session name okra's assumed roles carry (CloudTrail shows it).
pub const ROLE_SESSION: &str = "okra-check-metrics";

impl<S> fmt::Debug for Probe<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("user_agent", &self.user_agent)
            .field("signs", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: SecretsPort> Probe<S> {
    /// A client that reads secrets with `secrets`, signs with `credentials` (`None`: a request
    /// that asks for SigV4 fails) and names `app` in its user agent (the Lambda function, as the
    /// SDK's clients do).
    pub fn new(
        secrets: S,
        credentials: Option<SharedCredentialsProvider>,
        app: Option<&str>,
    ) -> Self {
        Self {
            secrets,
            credentials,
            config: None,
            roles: Mutex::new(HashMap::new()),
            user_agent: format!(
                "okra/{} app/{}",
                env!("CARGO_PKG_VERSION"),
                app.unwrap_or_default()
            ),
            cache: Mutex::new(HashMap::new()),
            http: LazyClient::new(),
        }
    }

    /// A client with the SDK configuration's credentials and app name
    /// ([`crate::aws_config`]'s).
    pub fn from_config(secrets: S, config: &aws_config::SdkConfig) -> Self {
        Self {
            config: Some(config.clone()),
            ..Self::new(
                secrets,
                config.credentials_provider(),
                config.app_name().map(|a| a.as_ref()),
            )
        }
    }

    /// `role`'s credentials (STS AssumeRole with the function's own), kept until 5 minutes
    /// before they expire. A role the function may not assume is `AccessDenied`: an Error
    /// sample, as for any provider that refuses.
    async fn role_credentials(&self, role: &str) -> Result<Credentials> {
        let mut roles = self.roles.lock().await;
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|e| e > SystemTime::now() + std::time::Duration::from_secs(300))
        };
        if let Some(c) = roles.get(role).filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let config = self.config.as_ref().ok_or_else(|| {
            OkraError::InvalidInput(format!(
                "sigv4.roleArn {role}: this caller has no AWS configuration to assume it with"
            ))
        })?;
        let provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name(ROLE_SESSION)
            .configure(config)
            .build()
            .await;
        let creds = provider.provide_credentials().await.map_err(|e| {
            OkraError::AccessDenied(
                format!(
                    "sigv4.roleArn {role}: cannot assume it: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ),
                None,
            )
        })?;
        roles.insert(role.to_string(), creds.clone());
        Ok(creds)
    }

    async fn header_value(&self, name: &str, v: &HeaderValue) -> Result<String> {
        let (arn, key) = match v {
            HeaderValue::Plain(s) => return Ok(s.clone()),
            HeaderValue::Secret { arn, key } => (arn, key),
        };
        let mut cache = self.cache.lock().await;
        let text = match cache.get(arn) {
            Some(t) => t.clone(),
            None => {
                let t = self.secrets.secret_string(arn).await?;
                cache.insert(arn.clone(), t.clone());
                t
            }
        };
        drop(cache);
        let Some(key) = key else {
            return Ok(text.trim().to_string());
        };
        // Never echo the secret's text: serde's message could quote it.
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            OkraError::InvalidInput(format!(
                "header {name}: secret {arn} is not a JSON object, so it has no key `{key}`"
            ))
        })?;
        doc.get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                OkraError::InvalidInput(format!(
                    "header {name}: secret {arn} has no string at key `{key}`"
                ))
            })
    }

    async fn build(&self, req: &Request) -> Result<http::Request<Full<Bytes>>> {
        let invalid = |e: &dyn fmt::Display| {
            OkraError::InvalidInput(format!("request to {}: {e}", redacted(&req.url)))
        };
        let mut headers: Vec<(String, String)> = Vec::with_capacity(req.headers.len() + 2);
        for (name, value) in &req.headers {
            headers.push((
                name.to_ascii_lowercase(),
                self.header_value(name, value).await?,
            ));
        }
        headers.push(("user-agent".into(), self.user_agent.clone()));
        headers.push(("accept".into(), "application/json".into()));
        let body = req.body.clone().unwrap_or_default().into_bytes();
        let method = match req.method {
            WebMethod::Get => "GET",
            WebMethod::Post => "POST",
        };
        let mut builder = http::Request::builder().method(method).uri(&req.url);
        for (n, v) in &headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        let mut request = builder
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| invalid(&e))?;
        if let Some(scope) = &req.sigv4 {
            let creds = match &scope.role_arn {
                Some(role) => self.role_credentials(role).await?,
                None => {
                    let provider = self.credentials.as_ref().ok_or_else(|| {
                        OkraError::InvalidInput("sigv4: the function has no AWS credentials".into())
                    })?;
                    provider.provide_credentials().await.map_err(|e| {
                        OkraError::AccessDenied(format!("sigv4: no credentials: {e}"), None)
                    })?
                }
            };
            sign_request(
                &mut request,
                &headers,
                &body,
                creds,
                &scope.region,
                &scope.service,
            )
            .map_err(|e| invalid(&e))?;
        }
        Ok(request)
    }
}

/// Signs `request` (SigV4, in its headers) for `service` in `region` with `creds`. `headers`
/// are the request's own (lower-case names), `body` its body; the host is signed too.
///
/// # Errors
///
/// A request that cannot be signed (a URL or header the signer refuses).
pub fn sign_request(
    request: &mut http::Request<Full<Bytes>>,
    headers: &[(String, String)],
    body: &[u8],
    creds: Credentials,
    region: &str,
    service: &str,
) -> std::result::Result<(), String> {
    let identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    let mut signed_headers = headers.to_vec();
    signed_headers.push(("host".into(), host));
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri.as_str(),
        signed_headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// An HTTPS client that signs each request with SigV4 for one service and region, with the
/// credentials of an SDK configuration (the standard chain): the CLI's client of okra's API
/// (`execute-api`).
pub struct SignedClient {
    credentials: SharedCredentialsProvider,
    region: String,
    service: String,
    user_agent: String,
    http: LazyClient,
}

impl fmt::Debug for SignedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedClient")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl SignedClient {
    /// Signs for `service` in `region` with `credentials`; `user_agent` names the caller.
    pub fn new(
        credentials: SharedCredentialsProvider,
        region: impl Into<String>,
        service: impl Into<String>,
        user_agent: impl Into<String>,
    ) -> Self {
        Self {
            credentials,
            region: region.into(),
            service: service.into(),
            user_agent: user_agent.into(),
            http: LazyClient::new(),
        }
    }

    /// Sends `method url` with `headers` (lower-case names) and `body`, signed, and reads the
    /// whole answer within `timeout`.
    ///
    /// # Errors
    ///
    /// No credentials (`AccessDenied`), a request that cannot be built or signed
    /// (`InvalidInput`), no answer (`AwsUnavailable`).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: std::time::Duration,
    ) -> Result<HttpAnswer> {
        let invalid = |e: &dyn fmt::Display| {
            OkraError::InvalidInput(format!("request to {}: {e}", redacted(url)))
        };
        let creds = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| OkraError::AccessDenied(format!("no AWS credentials: {e}"), None))?;
        let mut headers = headers.to_vec();
        headers.push(("user-agent".into(), self.user_agent.clone()));
        let mut builder = http::Request::builder().method(method).uri(url);
        for (n, v) in &headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        let mut request = builder
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| invalid(&e))?;
        sign_request(
            &mut request,
            &headers,
            &body,
            creds,
            &self.region,
            &self.service,
        )
        .map_err(|e| invalid(&e))?;
        fetch(&self.http, request, timeout, redacted(url)).await
    }
}

/// The URL without its query string, for messages (a query may hold a token).
fn redacted(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

impl<S: SecretsPort> HttpPort for Probe<S> {
    async fn send(&self, req: &Request) -> Result<HttpAnswer> {
        let request = self.build(req).await?;
        fetch(&self.http, request, req.timeout, redacted(&req.url)).await
    }
}
