//! [`DatadogPort`] over Datadog's HTTP API (`GET /api/v1/query`).
//!
//! The API and application keys come from Secrets Manager (a JSON secret
//! `{"apiKey": "...", "appKey": "..."}` named by `DATADOG_SECRET_ARN`), read once per container
//! and kept in memory. They are never logged: the client's `Debug` shows only whether they were
//! loaded, and error messages never include them.

use std::fmt;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use serde::Deserialize;
use tokio::sync::OnceCell;

use okra_core::analysis::probe::encode;

use crate::error::{OkraError, Result};
use crate::ports::{DatadogPort, HttpAnswer, SecretsPort};

/// The default Datadog site (US1).
pub const DEFAULT_SITE: &str = "https://api.datadoghq.com";
/// The environment variable that overrides the site, such as `https://api.datadoghq.eu`.
pub const ENV_SITE: &str = "DATADOG_SITE";
/// The environment variable that names the keys' secret.
pub const ENV_SECRET_ARN: &str = "DATADOG_SECRET_ARN";
/// How long one query may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The keys. No `Debug` derive: see the manual impl, which shows nothing.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    api_key: String,
    app_key: String,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// The Datadog adapter.
pub struct Datadog<S> {
    secrets: S,
    secret_id: Option<String>,
    site: String,
    keys: OnceCell<Keys>,
    http: crate::probe::LazyClient,
}

impl<S> fmt::Debug for Datadog<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datadog")
            .field("site", &self.site)
            .field("secret_id", &self.secret_id)
            .field("keys_loaded", &self.keys.initialized())
            .finish_non_exhaustive()
    }
}

impl<S: SecretsPort> Datadog<S> {
    /// A client of `site` (`https://…`, or `http://…` for tests) whose keys are in the secret
    /// `secret_id` (`None`: every query fails with `InvalidInput`). Never fails: without TLS
    /// roots, only the Datadog queries do, not a function whose metrics are all CloudWatch.
    pub fn new(secrets: S, secret_id: Option<String>, site: impl Into<String>) -> Self {
        let http = crate::probe::LazyClient::new();
        Self {
            secrets,
            secret_id: secret_id.filter(|s| !s.is_empty()),
            site: site.into().trim_end_matches('/').to_string(),
            keys: OnceCell::new(),
            http,
        }
    }

    /// A client configured from `DATADOG_SITE` and `DATADOG_SECRET_ARN`.
    pub fn from_env(secrets: S) -> Self {
        let site = std::env::var(ENV_SITE)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SITE.to_string());
        Self::new(secrets, std::env::var(ENV_SECRET_ARN).ok(), site)
    }

    /// The site queried.
    pub fn site(&self) -> &str {
        &self.site
    }

    async fn keys(&self) -> Result<&Keys> {
        self.keys
            .get_or_try_init(|| async {
                let id = self.secret_id.as_deref().ok_or_else(|| {
                    OkraError::InvalidInput(format!(
                        "a Datadog metric needs the keys' secret: set {ENV_SECRET_ARN}"
                    ))
                })?;
                let text = self.secrets.secret_string(id).await?;
                // Never echo the secret's text: serde's message could quote it.
                serde_json::from_str::<Keys>(&text).map_err(|_| {
                    OkraError::InvalidInput(format!(
                        "secret {id}: not JSON {{\"apiKey\": \"...\", \"appKey\": \"...\"}}"
                    ))
                })
            })
            .await
    }
}

#[derive(Deserialize)]
struct QueryResponse {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    series: Vec<SeriesOut>,
}

#[derive(Deserialize)]
struct SeriesOut {
    #[serde(default)]
    pointlist: Vec<Vec<Option<f64>>>,
}

/// The points of a `/api/v1/query` answer: the first series (a query grouped `by` something
/// should be aggregated to one series), oldest first, in epoch seconds.
pub fn parse_points(body: &[u8]) -> Result<Vec<(i64, f64)>> {
    let r: QueryResponse = serde_json::from_slice(body).map_err(|e| OkraError::Aws {
        code: "DatadogBadResponse".into(),
        message: format!("not a query answer: {e}"),
        cause: Some(Box::new(e)),
    })?;
    if r.status.as_deref() == Some("error") || r.error.is_some() {
        return Err(OkraError::Aws {
            code: "DatadogQueryError".into(),
            message: r.error.unwrap_or_else(|| "status error".into()),
            cause: None,
        });
    }
    if r.series.len() > 1 {
        tracing::warn!(
            series = r.series.len(),
            "Datadog query returned several series; using the first"
        );
    }
    let mut points: Vec<(i64, f64)> = r
        .series
        .first()
        .map(|s| {
            s.pointlist
                .iter()
                .filter_map(|p| match p.as_slice() {
                    [Some(ms), Some(v), ..] => Some(((ms / 1000.0) as i64, *v)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    points.sort_by_key(|(t, _)| *t);
    Ok(points)
}

/// Maps an HTTP status other than 200 (the body is Datadog's, never holds the keys).
fn status_error(status: u16, body: &[u8]) -> OkraError {
    let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
    let message = format!("Datadog answered {status}: {text}");
    match status {
        429 => OkraError::Throttled(message, None),
        401 | 403 => OkraError::AccessDenied(message, None),
        500..=599 => OkraError::AwsUnavailable(message, None),
        _ => OkraError::Aws {
            code: format!("Datadog{status}"),
            message,
            cause: None,
        },
    }
}

impl<S: SecretsPort> DatadogPort for Datadog<S> {
    async fn query(&self, query: &str, from: i64, to: i64) -> Result<Vec<(i64, f64)>> {
        let keys = self.keys().await?;
        let uri = format!(
            "{}/api/v1/query?from={from}&to={to}&query={}",
            self.site,
            encode(query)
        );
        let req = http::Request::get(&uri)
            .header("DD-API-KEY", &keys.api_key)
            .header("DD-APPLICATION-KEY", &keys.app_key)
            .header("Accept", "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| {
                OkraError::InvalidInput(format!("Datadog request to {}: {e}", self.site))
            })?;
        let what = format!("Datadog at {}", self.site);
        let HttpAnswer { status, body } =
            crate::probe::fetch(&self.http, req, TIMEOUT, &what).await?;
        if status != 200 {
            return Err(status_error(status, &body));
        }
        parse_points(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_queries() {
        assert_eq!(
            encode("sum:a.b{service:web}.as_count()"),
            "sum%3Aa.b%7Bservice%3Aweb%7D.as_count%28%29"
        );
    }

    #[test]
    fn parses_pointlists() {
        let body = br#"{"status":"ok","series":[{"pointlist":[[2000.0, 2.5],[1000.0, 1.0],[3000.0, null]]}]}"#;
        assert_eq!(
            parse_points(body).expect("parses"),
            vec![(1, 1.0), (2, 2.5)]
        );
        let err = parse_points(br#"{"status":"error","error":"bad query"}"#).expect_err("error");
        assert!(err.to_string().contains("bad query"));
        assert_eq!(status_error(429, b"").error_type(), "Throttled");
        assert_eq!(status_error(403, b"").error_type(), "AccessDenied");
        assert!(status_error(502, b"").is_transient());
    }
}
