//! The bearer token of an EKS cluster's Kubernetes API, made as `aws eks get-token` and
//! aws-iam-authenticator make it.
//!
//! The token is `k8s-aws-v1.` followed by the unpadded base64url encoding of a presigned STS
//! `GetCallerIdentity` URL:
//!
//! ```text
//! https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15
//!     &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={key}%2F{date}%2F{region}%2Fsts%2Faws4_request
//!     &X-Amz-Date={yyyyMMddTHHmmssZ}&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id
//!     [&X-Amz-Security-Token={session token}]&X-Amz-Signature={hex}
//! ```
//!
//! signed with SigV4 in the query string (service `sts`) over a `GET` whose signed headers are
//! `host` and `x-k8s-aws-id: {cluster name}`. The cluster's authenticator calls that URL with the
//! same `x-k8s-aws-id` header: STS answers with the caller's ARN only if the signature holds, so a
//! token made for another cluster is refused. The authenticator refuses a URL whose
//! `X-Amz-Date` is more than 15 minutes old whatever `X-Amz-Expires` says (it only checks that it
//! is 0-900; 60 is what the CLI and the authenticator send).
//!
//! AWS pages followed: the EKS user guide, "Connect kubectl to an EKS cluster by creating a
//! kubeconfig file" (the kubeconfig runs `aws eks get-token`) and "Grant IAM users access to
//! Kubernetes with EKS access entries" (the principal the token authenticates is the one an
//! access entry maps); the AWS CLI reference, `aws eks get-token` ("Get a token for
//! authentication with an Amazon EKS cluster"). The format and the server-side checks are
//! aws-iam-authenticator's (`pkg/token/token.go`: `v1Prefix`, `clusterIDHeader`,
//! `presignedURLExpiration`, `Verify`), and the unit tests compare this module's URL with the one
//! the AWS CLI's own `TokenGenerator` (awscli `customizations/eks/get_token.py`) makes for the same
//! credentials and time.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

/// What every EKS token starts with (aws-iam-authenticator's `v1Prefix`).
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// The signed header that names the cluster (aws-iam-authenticator's `clusterIDHeader`).
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";

/// `X-Amz-Expires` of the presigned URL: 60 s, as `aws eks get-token` and aws-iam-authenticator
/// send it (STS ignores it; the authenticator accepts a token for 15 minutes after its date).
pub const URL_EXPIRES: Duration = Duration::from_secs(60);

/// How long after its `X-Amz-Date` the cluster accepts a token (aws-iam-authenticator's
/// `presignedURLExpiration`).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// An empty cluster name: the token would name no cluster.
    #[error("the cluster name is empty")]
    EmptyCluster,
    /// A region that is not an AWS region identifier (`us-east-1`).
    #[error("{0:?} is not an AWS region")]
    InvalidRegion(String),
    /// The signer refused the request (a cluster name that is not a valid header value, ...).
    #[error("signing the STS GetCallerIdentity URL failed: {0}")]
    Signing(String),
}

/// The STS host of `region`: `sts.{region}.amazonaws.com` (`.amazonaws.com.cn` in the China
/// regions), the regional endpoint the SDKs and the CLI presign for.
///
/// # Errors
///
/// [`TokenError::InvalidRegion`] for a string that is not a region identifier.
pub fn sts_host(region: &str) -> Result<String, TokenError> {
    if !is_region(region) {
        return Err(TokenError::InvalidRegion(region.to_owned()));
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Ok(format!("sts.{region}.{suffix}"))
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`: lower-case words joined by `-`, the last a
/// number.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && parts[..parts.len() - 1]
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The presigned STS `GetCallerIdentity` URL the token carries (before encoding).
///
/// # Errors
///
/// As [`eks_token`].
pub fn presigned_url(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, TokenError> {
    if cluster.is_empty() {
        return Err(TokenError::EmptyCluster);
    }
    let host = sts_host(region)?;
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(URL_EXPIRES);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into();
    // `host` is signed from the URL; the cluster's header is the other signed one.
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::once((CLUSTER_ID_HEADER, cluster)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| TokenError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into_parts();
    // The signing parameters in the order the AWS CLI and the Go SDK write them (the session
    // token before the signature; the order is not signed).
    let mut signing: Vec<(&str, &str)> = instructions
        .params()
        .iter()
        .map(|(k, v)| (*k, v.as_ref()))
        .collect();
    signing.sort_by_key(|(k, _)| *k == "X-Amz-Signature");
    let mut url = url;
    for (k, v) in signing {
        url.push('&');
        url.push_str(&uri_encode(k));
        url.push('=');
        url.push_str(&uri_encode(v));
    }
    Ok(url)
}

/// RFC 3986 percent-encoding of all but the unreserved characters (SigV4's `UriEncode`).
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The token for `cluster`, signed now with `credentials` in `region`.
///
/// # Errors
///
/// [`TokenError::EmptyCluster`], [`TokenError::InvalidRegion`], or [`TokenError::Signing`] when
/// the signer refuses the request.
pub fn eks_token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, TokenError> {
    let url = presigned_url(credentials, region, cluster, now)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64url_unpadded(url.as_bytes())
    ))
}

/// base64url (RFC 4648 §5) without `=` padding, as Go's `base64.RawURLEncoding`.
fn base64url_unpadded(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(bytes)
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-02T03:04:05Z.
    fn fixed_time() -> SystemTime {
        humantime::parse_rfc3339("2026-01-02T03:04:05Z").unwrap()
    }

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn decode(token: &str) -> String {
        let body = token.strip_prefix(TOKEN_PREFIX).expect("the prefix");
        assert!(!body.contains('='), "no padding: {body}");
        assert!(
            !body.contains('+') && !body.contains('/'),
            "url-safe: {body}"
        );
        let std: String = body
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        let padded = format!("{std}{}", "=".repeat((4 - std.len() % 4) % 4));
        String::from_utf8(aws_smithy_types::base64::decode(padded).unwrap()).unwrap()
    }

    // The AWS CLI's own `aws eks get-token` (awscli 1.46.3, TokenGenerator over botocore 1.44.5)
    // for the same key, secret, region, cluster `okra-hub` and time gives exactly these URLs.
    const CLI_URL: &str = "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Feu-west-1%2Fsts%2Faws4_request&X-Amz-Date=20260102T030405Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=74628327b496ee1b7d545da279f887240311977511352acf0c076075bf0fa1e4";
    const CLI_URL_WITH_SESSION: &str = "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20260102%2Feu-west-1%2Fsts%2Faws4_request&X-Amz-Date=20260102T030405Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE%2Ftoken%2B%3D&X-Amz-Signature=782ecf14b91bef8d371f90ab8dc8ff597c02c8cbcffa3a7f2f8ae36f141d06e4";

    #[test]
    fn the_url_is_the_one_aws_eks_get_token_makes() {
        let token = eks_token(&creds(None), "eu-west-1", "okra-hub", fixed_time()).unwrap();
        assert_eq!(decode(&token), CLI_URL);
        let token = eks_token(
            &creds(Some("FwoGZXIvYXdzEXAMPLE/token+=")),
            "eu-west-1",
            "okra-hub",
            fixed_time(),
        )
        .unwrap();
        assert_eq!(decode(&token), CLI_URL_WITH_SESSION);
    }

    #[test]
    fn the_query_names_the_call_the_scope_and_the_signed_cluster_header() {
        let token = eks_token(&creds(Some("session")), "us-east-1", "hub", fixed_time()).unwrap();
        assert!(token.starts_with("k8s-aws-v1."));
        let url = decode(&token);
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "https://sts.us-east-1.amazonaws.com/");
        let params: Vec<(&str, &str)> = query
            .split('&')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        let names: Vec<&str> = params.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "Action",
                "Version",
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-SignedHeaders",
                "X-Amz-Security-Token",
                "X-Amz-Signature"
            ]
        );
        let get = |k: &str| params.iter().find(|(n, _)| *n == k).unwrap().1;
        assert_eq!(get("Action"), "GetCallerIdentity");
        assert_eq!(get("Version"), "2011-06-15");
        assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(
            get("X-Amz-Credential"),
            "AKIDEXAMPLE%2F20260102%2Fus-east-1%2Fsts%2Faws4_request"
        );
        assert_eq!(get("X-Amz-Date"), "20260102T030405Z");
        assert_eq!(get("X-Amz-Expires"), "60");
        assert_eq!(get("X-Amz-SignedHeaders"), "host%3Bx-k8s-aws-id");
        assert_eq!(get("X-Amz-Security-Token"), "session");
        assert_eq!(get("X-Amz-Signature").len(), 64);
    }

    #[test]
    fn another_cluster_or_time_signs_differently() {
        let a = eks_token(&creds(None), "us-east-1", "hub", fixed_time()).unwrap();
        let b = eks_token(&creds(None), "us-east-1", "other", fixed_time()).unwrap();
        let c = eks_token(
            &creds(None),
            "us-east-1",
            "hub",
            fixed_time() + Duration::from_secs(1),
        )
        .unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            a,
            eks_token(&creds(None), "us-east-1", "hub", fixed_time()).unwrap()
        );
    }

    #[test]
    fn hosts_and_refusals() {
        assert_eq!(
            sts_host("us-east-1").unwrap(),
            "sts.us-east-1.amazonaws.com"
        );
        assert_eq!(
            sts_host("us-gov-west-1").unwrap(),
            "sts.us-gov-west-1.amazonaws.com"
        );
        assert_eq!(
            sts_host("cn-north-1").unwrap(),
            "sts.cn-north-1.amazonaws.com.cn"
        );
        for bad in ["", "us-east", "US-EAST-1", "us-east-1.evil.com/", "us--1"] {
            assert!(
                matches!(sts_host(bad), Err(TokenError::InvalidRegion(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            eks_token(&creds(None), "us-east-1", "", fixed_time()),
            Err(TokenError::EmptyCluster)
        ));
        assert!(matches!(
            eks_token(&creds(None), "us-east-1", "bad\nname", fixed_time()),
            Err(TokenError::Signing(_))
        ));
    }

    #[test]
    fn base64url_has_no_padding_and_no_standard_alphabet() {
        assert_eq!(base64url_unpadded(b"\xfb\xff"), "-_8");
        assert_eq!(base64url_unpadded(b"a"), "YQ");
        assert_eq!(base64url_unpadded(b"ab"), "YWI");
        assert_eq!(base64url_unpadded(b"abc"), "YWJj");
    }
}
