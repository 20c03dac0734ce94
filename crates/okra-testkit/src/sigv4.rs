//! SigV4 as an AWS endpoint checks it, for the local endpoints that stand in for AWS services
//! the emulators lack (the AMP workspace, API Gateway's IAM authorization).
//!
//! What it models (AWS General Reference, "Signature Version 4 signing process", "Elements of an
//! AWS API request signature" and "Troubleshooting signatures"; the API Gateway developer guide,
//! "Control access to an API with IAM permissions"):
//! - no `Authorization` header: 403 "Missing Authentication Token";
//! - a header without `Credential`, `SignedHeaders` and `Signature`: 403 with the message AWS
//!   gives;
//! - a credential scoped to another service or region, or a date other than `X-Amz-Date`'s: 403;
//!   an `X-Amz-Date` more than 5 minutes from now: 403 "Signature expired";
//! - the signature is recomputed over the request as received (method, path, query, the signed
//!   headers, the body) with the key's secret; a mismatch is 403 "The request signature we
//!   calculated does not match the signature you provided ...".

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use hyper::StatusCode;

/// How far a request's `X-Amz-Date` may be from now (AWS: 5 minutes).
const MAX_SKEW: Duration = Duration::from_secs(300);

/// A refusal: the status, an error type (`__type` / `x-amzn-ErrorType`) and the message.
pub type Refusal = (StatusCode, Option<&'static str>, String);

/// 403 with `message`.
pub fn forbidden(message: impl Into<String>) -> Refusal {
    (StatusCode::FORBIDDEN, None, message.into())
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=HEX`.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The access key id.
    pub key: String,
    /// The credential scope's date (yyyyMMdd).
    pub date: String,
    /// The scope's region.
    pub region: String,
    /// The scope's service.
    pub service: String,
    /// The signed headers' names.
    pub signed_headers: Vec<String>,
    /// The signature (hex).
    pub signature: String,
}

fn parse(text: &str) -> Option<Authorization> {
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

/// The request's `Authorization`, read.
///
/// # Errors
///
/// None, or not a SigV4 header: 403.
pub fn authorization(parts: &http::request::Parts) -> Result<Authorization, Refusal> {
    let Some(auth) = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(forbidden("Missing Authentication Token"));
    };
    parse(auth).ok_or_else(|| {
        forbidden(format!(
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization={auth}"
        ))
    })
}

/// Checks the request's scope, date and signature with the key's `secret` (and session
/// `token`), for `service` in `region`.
///
/// # Errors
///
/// 403 with AWS's message for each fault.
pub fn verify(
    parts: &http::request::Parts,
    body: &[u8],
    auth: &Authorization,
    secret: &str,
    token: Option<&str>,
    service: &str,
    region: &str,
) -> Result<(), Refusal> {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    if auth.service != service {
        return Err(forbidden(format!(
            "Credential should be scoped to correct service: '{service}'. (it names '{}')",
            auth.service
        )));
    }
    if auth.region != region {
        return Err(forbidden(format!(
            "Credential should be scoped to a valid region. (the endpoint is in '{region}', not '{}')",
            auth.region
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
        secret.to_owned(),
        header("x-amz-security-token").and(token.map(str::to_owned)),
        None,
        "local-endpoint",
    );
    let identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(service)
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
    Ok(())
}
