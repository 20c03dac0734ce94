//! The CLI over okra's API (`--api-url`, `OKRA_API_URL`: the stack's `ApiUrl` output): each
//! command is one or more HTTPS requests, SigV4-signed for `execute-api` with the caller's own
//! credentials (the SDK's standard chain). The caller needs `execute-api:Invoke` on the routes it
//! calls, which the stack's `okra-operator` (every route) and `okra-viewer` (GET routes) policies
//! give, and no other AWS right.
//!
//! Answers are the API's JSON, read into the same types the in-process mode returns; an error is
//! the API's `{"error", "message", "errors"}`, reported with the same message and hint as in
//! process ([`CliError::from_answer`]). API Gateway's own refusals (a bad signature, no
//! `execute-api:Invoke` on the route: 403 `{"message"}`) say which policy gives the route.

use std::time::Duration;

use aws_config::SdkConfig;
use okra_aws::probe::SignedClient;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::CliError;

/// How long one request may take (API Gateway's own integration limit is 29 s).
const TIMEOUT: Duration = Duration::from_secs(35);

/// okra's API, signed with the caller's credentials.
#[derive(Debug)]
pub struct ApiClient {
    /// The stage's URL, without a trailing slash (`https://ID.execute-api.REGION.amazonaws.com/v1`).
    base: String,
    http: SignedClient,
}

/// The region of an API Gateway URL (`https://ID.execute-api.REGION.amazonaws.com/...`).
pub fn region_of_url(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut parts = host.split('.');
    let (_id, service, region) = (parts.next()?, parts.next()?, parts.next()?);
    (service == "execute-api" && !region.is_empty()).then(|| region.to_owned())
}

impl ApiClient {
    /// A client of the API at `url` with `conf`'s credentials, signing for the URL's region
    /// (else `conf`'s).
    pub fn new(url: &str, conf: &SdkConfig) -> Result<Self, CliError> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(CliError::usage(format!(
                "--api-url {url}: not an http(s) URL (the stack's ApiUrl output, \
                 https://ID.execute-api.REGION.amazonaws.com/v1)"
            )));
        }
        let region = region_of_url(url)
            .or_else(|| conf.region().map(|r| r.as_ref().to_owned()))
            .ok_or_else(|| {
                CliError::usage(
                    "no AWS region to sign for: give --region or set AWS_REGION (the API's region)",
                )
            })?;
        let credentials = conf.credentials_provider().ok_or_else(|| {
            CliError::usage("no AWS credentials: set AWS_PROFILE or the standard AWS variables")
        })?;
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            http: SignedClient::new(
                credentials,
                region,
                "execute-api",
                format!("okra-cli/{}", env!("CARGO_PKG_VERSION")),
            ),
        })
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.call("GET", path, None).await
    }

    /// `POST path` with an empty JSON body.
    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.call("POST", path, Some(Value::Object(Default::default())))
            .await
    }

    /// `PUT path` with `body` as JSON.
    pub async fn put<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, CliError> {
        self.call("PUT", path, Some(body)).await
    }

    /// `DELETE path` (204: no answer).
    pub async fn delete(&self, path: &str) -> Result<(), CliError> {
        self.send("DELETE", path, None).await.map(|_| ())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, CliError> {
        let text = self.send(method, path, body).await?;
        serde_json::from_slice(&text).map_err(|e| {
            CliError::internal(format!(
                "{method} {path}: the API's answer does not read: {e}"
            ))
        })
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Vec<u8>, CliError> {
        let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
        let bytes = match body {
            Some(b) => {
                headers.push(("content-type".to_owned(), "application/json".to_owned()));
                serde_json::to_vec(&b).unwrap_or_default()
            }
            None => Vec::new(),
        };
        let url = format!("{}{path}", self.base);
        let answer = self
            .http
            .send(method, &url, &headers, bytes, TIMEOUT)
            .await
            .map_err(|e| {
                CliError::from(e).hint(
                    "the API did not answer: check --api-url (the stack's ApiUrl output) and \
                     your network",
                )
            })?;
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        Err(refusal(method, path, answer.status, &answer.body))
    }
}

/// An answer that is not 2xx, as the CLI reports it.
pub fn refusal(method: &str, path: &str, status: u16, body: &[u8]) -> CliError {
    let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    // okra's own errors: the same report as in process.
    if let Some(kind) = doc["error"].as_str() {
        let message = doc["message"].as_str().unwrap_or_default();
        let mut e = CliError::from_answer(kind, message, None);
        e.details = doc["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                format!(
                    "{}: {}",
                    f["path"].as_str().unwrap_or("?"),
                    f["message"].as_str().unwrap_or_default()
                )
            })
            .collect();
        return e;
    }
    // API Gateway's own answer (`{"message"}`, or `{"Message"}` for an IAM denial).
    let message = doc["message"]
        .as_str()
        .or_else(|| doc["Message"].as_str())
        .map_or_else(
            || String::from_utf8_lossy(body).trim().to_owned(),
            str::to_owned,
        );
    let e = CliError::new(format!("{method} {path}: HTTP {status}: {message}"));
    match status {
        403 if message.contains("not authorized") => e.hint(if method == "GET" {
            "your identity may not read okra: attach the stack's okra-viewer policy (output \
             ViewerPolicyArn) or okra-operator policy (OperatorPolicyArn) to it"
        } else {
            "your identity may not change okra: attach the stack's okra-operator policy (output \
             OperatorPolicyArn) to it; okra-viewer allows GET routes only"
        }),
        403 => e.hint(
            "the API refused the request's signature: check your AWS credentials and that \
             --api-url is the stack's ApiUrl output (region and stage included)",
        ),
        429 => e.hint("the API throttled the request: try again in a moment"),
        _ => e.hint("see the message"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_api_gateway_url() {
        assert_eq!(
            region_of_url("https://abc123.execute-api.eu-west-1.amazonaws.com/v1").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of_url("http://127.0.0.1:4567/v1"), None);
    }

    #[test]
    fn okra_errors_read_as_in_process_and_denials_name_the_policy() {
        let e = refusal(
            "GET",
            "/cells/web",
            404,
            br#"{"error":"NotFound","message":"cell web"}"#,
        );
        assert_eq!(e.message, "NotFound: cell web");
        assert!(e.hint.unwrap_or_default().contains("okra cell list"));
        let e = refusal(
            "POST",
            "/cells/web/rollouts/x/abort",
            403,
            br#"{"Message":"User: arn:aws:iam::1:user/v is not authorized to perform: execute-api:Invoke on resource: arn"}"#,
        );
        assert!(e.message.contains("HTTP 403"), "{}", e.message);
        assert!(e.hint.unwrap_or_default().contains("okra-operator"));
        let e = refusal(
            "PUT",
            "/cells/web",
            400,
            br#"{"error":"InvalidSpec","message":"2 errors","errors":[{"path":"replicas","message":"must be at least 1"}]}"#,
        );
        assert_eq!(e.details, ["replicas: must be at least 1"]);
    }
}
