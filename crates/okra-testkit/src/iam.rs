//! The strict moto's IAM authorizer (`POST /_okra/iam/authorize`, tools/local-aws/iam_enforce.py)
//! for the testkit's own servers (the local Lambda service, the local AMP endpoint), whose
//! requests never reach moto.

/// The caller a request names: the `app/NAME` of its user agent (okra's functions give their
/// name there, as the SDK's clients do).
pub(crate) fn caller_of(user_agent: Option<&str>) -> Option<String> {
    user_agent?
        .split_whitespace()
        .find_map(|w| w.strip_prefix("app/"))
        .map(str::to_owned)
}

/// Whether `caller` may do `action` on `resource`: the authorizer's answer (`allowed`,
/// `function`, `reason`), or `None` when it did not answer.
pub(crate) async fn authorize(
    endpoint: &str,
    caller: &str,
    action: &str,
    resource: &str,
) -> Option<serde_json::Value> {
    let url = format!("{endpoint}/_okra/iam/authorize");
    let body = serde_json::json!({
        "caller": caller, "action": action, "resources": [resource], "context": {}});
    tokio::task::spawn_blocking(move || {
        ureq::post(&url)
            .send_json(body)
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<serde_json::Value>().ok())
    })
    .await
    .ok()
    .flatten()
}

/// An assumed-role session the strict moto's STS issued under `access_key`
/// (`GET /_okra/sts/credentials`): its secret, session token and role ARN.
pub(crate) async fn session(endpoint: &str, access_key: &str) -> Option<(String, String, String)> {
    let url = format!("{endpoint}/_okra/sts/credentials?accessKeyId={access_key}");
    let v = tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<serde_json::Value>().ok())
    })
    .await
    .ok()
    .flatten()?;
    Some((
        v["secretAccessKey"].as_str()?.to_owned(),
        v["sessionToken"].as_str()?.to_owned(),
        v["roleArn"].as_str()?.to_owned(),
    ))
}
