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
//!
//! And a presigned URL's query signature ([`verify_presigned`], "Authenticating Requests: Using
//! Query Parameters"), for the EKS bearer tokens of the local Kubernetes API.

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
    let when = parse_amz_date(stamp)
        .ok_or_else(|| forbidden(format!("X-Amz-Date {stamp} is not yyyyMMddTHHmmssZ")))?;
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

/// An `X-Amz-Date` (`yyyyMMddTHHmmssZ`) as a time.
pub fn parse_amz_date(stamp: &str) -> Option<SystemTime> {
    if stamp.len() != 16 || !stamp.is_ascii() || &stamp[8..9] != "T" || !stamp.ends_with('Z') {
        return None;
    }
    humantime::parse_rfc3339(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15],
    ))
    .ok()
}

/// A presigned URL (SigV4 in the query string: `X-Amz-Algorithm`, `X-Amz-Credential`,
/// `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Security-Token`,
/// `X-Amz-Signature`) checked as the service checks it when the URL is called with `method` and
/// `headers` (besides `host`): the algorithm, the credential's scope (`service`, `region`, the
/// date of `X-Amz-Date`), and the signature recomputed with the key's `secret` over the URL's
/// other parameters, `host` and `headers` (AWS General Reference, "Authenticating Requests:
/// Using Query Parameters (AWS Signature Version 4)"). `params` are the URL's query parameters,
/// decoded, in any case. The expiry is the caller's (STS ignores `X-Amz-Expires`).
///
/// # Errors
///
/// `(status and AWS error code, message)`, as the service answers.
pub fn verify_presigned(
    method: &str,
    host: &str,
    params: &[(String, String)],
    headers: &[(&str, &str)],
    secret: &str,
    service: &str,
    region: &str,
) -> Result<(), (String, String)> {
    let get = |n: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    let incomplete = |m: String| Err(("400 IncompleteSignature".to_owned(), m));
    let mismatch = |m: String| Err(("403 SignatureDoesNotMatch".to_owned(), m));
    if get("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") {
        return incomplete("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".into());
    }
    let credential = get("X-Amz-Credential").unwrap_or_default();
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, scope_region, scope_service, "aws4_request"] = scope.as_slice() else {
        return incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        ));
    };
    if *scope_service != service {
        return mismatch(format!(
            "Credential should be scoped to correct service: '{service}'. "
        ));
    }
    if *scope_region != region {
        return mismatch(format!(
            "Credential should be scoped to a valid region, not '{scope_region}'. "
        ));
    }
    let stamp = get("X-Amz-Date").unwrap_or_default();
    let Some(when) = parse_amz_date(stamp) else {
        return incomplete(format!("X-Amz-Date {stamp} is not yyyyMMddTHHmmssZ"));
    };
    if !stamp.starts_with(date) {
        return mismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}'",
            &stamp[0..8]
        ));
    }
    let Some(expires) = get("X-Amz-Expires").and_then(|e| e.parse::<u64>().ok()) else {
        return incomplete("X-Amz-Expires must be a non-negative integer".into());
    };
    let signature = get("X-Amz-Signature").unwrap_or_default();
    let query: Vec<String> = params
        .iter()
        .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("x-amz-"))
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect();
    let url = format!("https://{host}/?{}", query.join("&"));
    let creds = Credentials::new(
        (*key).to_owned(),
        secret.to_owned(),
        get("X-Amz-Security-Token").map(str::to_owned),
        None,
        "local-endpoint",
    );
    let identity = creds.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    let signing = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(when)
        .settings(settings)
        .build()
        .map_err(|e| ("400 IncompleteSignature".to_owned(), e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| ("400 IncompleteSignature".to_owned(), e.to_string()))?;
    let (_, expected) = sign(signable, &signing)
        .map_err(|e| ("400 IncompleteSignature".to_owned(), e.to_string()))?
        .into_parts();
    if expected != signature {
        return mismatch(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
                .into(),
        );
    }
    Ok(())
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (SigV4's `UriEncode`).
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
