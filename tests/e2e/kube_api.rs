//! The local Kubernetes API (`okra_testkit::KubeApi`) proven with real clients: Rust requests
//! over HTTPS trusting its CA with EKS tokens made by okra (`okra_aws::kube::token`), Debian's
//! `kubectl`, and the official Kubernetes Python client; and the strict moto's routes that tie it
//! to the local stack (`/_okra/iam/principal`, `/_okra/eks/endpoint`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use okra_aws::kube::token::eks_token;
use okra_testkit::{AccessEntry, AccessPolicy, KubeApi, KubeApiSettings, KubeRefusal};
use serde_json::{Value, json};

const CLUSTER: &str = "okra-hub";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// (access key, secret, session token, principal, policies as (name, namespaces)).
type Identity = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static [(&'static str, Option<&'static [&'static str]>)],
);

const ADMIN: Identity = (
    "AKIDADMIN000000000001",
    "admin-secret",
    None,
    "arn:aws:iam::123456789012:role/hub-admin",
    &[("AmazonEKSClusterAdminPolicy", None)],
);
const EDITOR: Identity = (
    "ASIDEDITOR0000000001",
    "editor-secret",
    Some("editor-session-token"),
    "arn:aws:iam::123456789012:role/okra-DispatcherFunctionRole-X",
    &[("AmazonEKSEditPolicy", Some(&["argocd"]))],
);
const VIEWER: Identity = (
    "AKIDVIEWER0000000001",
    "viewer-secret",
    None,
    "arn:aws:iam::123456789012:user/viewer",
    &[("AmazonEKSViewPolicy", None)],
);
const STRANGER: Identity = (
    "AKIDSTRANGER00000001",
    "stranger-secret",
    None,
    "arn:aws:iam::123456789012:user/stranger",
    &[],
);

fn policy_arn(name: &str) -> String {
    format!("arn:aws:eks::aws:cluster-access-policy/{name}")
}

fn settings() -> KubeApiSettings {
    let mut s = KubeApiSettings {
        cluster: CLUSTER.into(),
        region: REGION.into(),
        account: ACCOUNT.into(),
        namespaces: vec!["argocd".into(), "default".into(), "kube-system".into()],
        ..KubeApiSettings::default()
    };
    for (key, secret, token, principal, policies) in [ADMIN, EDITOR, VIEWER, STRANGER] {
        s.keys
            .insert(key.into(), (secret.into(), token.map(str::to_owned)));
        s.principals.insert(key.into(), principal.into());
        if !policies.is_empty() {
            s.access_entries.push(AccessEntry {
                principal_arn: principal.into(),
                policies: policies
                    .iter()
                    .map(|(name, nss)| AccessPolicy {
                        policy_arn: policy_arn(name),
                        namespaces: nss.map(|n| n.iter().map(|s| (*s).to_owned()).collect()),
                    })
                    .collect(),
            });
        }
    }
    s
}

fn token_of(who: Identity, cluster: &str, at: SystemTime) -> String {
    let (key, secret, token, _, _) = who;
    let creds = Credentials::new(key, secret, token.map(str::to_owned), None, "test");
    eks_token(&creds, REGION, cluster, at).expect("a token")
}

fn token(who: Identity) -> String {
    token_of(who, CLUSTER, SystemTime::now())
}

// ------------------------------------------------------------------ a Rust client over HTTPS

struct Http {
    rt: tokio::runtime::Runtime,
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
    base: String,
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    headers: http::HeaderMap,
}

impl Http {
    /// A client that trusts only `api`'s CA.
    fn new(api: &KubeApi) -> Self {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(api.ca_pem().as_bytes()).expect("the CA's PEM");
        roots.add(ca).expect("the CA");
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Self {
            rt,
            client,
            base: api.endpoint(),
        }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: &str,
        user_agent: Option<&str>,
    ) -> Reply {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/json");
        // A token, or a whole Authorization value (one with a space: `Basic ...`).
        if let Some(t) = token {
            let value = if t.contains(' ') {
                t.to_owned()
            } else {
                format!("Bearer {t}")
            };
            req = req.header("authorization", value);
        }
        if let Some(c) = content_type {
            req = req.header("content-type", c);
        }
        if let Some(ua) = user_agent {
            req = req.header("user-agent", ua);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("a request");
        self.rt.block_on(async {
            let resp = self.client.request(req).await.expect("an answer");
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
            let body = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            Reply {
                status,
                body,
                headers,
            }
        })
    }

    fn get(&self, path: &str, who: Identity) -> Reply {
        self.send("GET", path, Some(&token(who)), None, "", None)
    }

    fn json(&self, method: &str, path: &str, who: Identity, body: &Value) -> Reply {
        self.send(
            method,
            path,
            Some(&token(who)),
            Some("application/json"),
            &body.to_string(),
            None,
        )
    }
}

/// Asserts a Status refusal: its code, reason and message.
#[track_caller]
fn assert_status(r: &Reply, code: u16, reason: &str, message: &str) {
    assert_eq!(r.status, code, "{r:?}");
    assert_eq!(r.body["kind"], "Status", "{r:?}");
    assert_eq!(r.body["apiVersion"], "v1");
    assert_eq!(r.body["status"], "Failure");
    assert_eq!(r.body["code"], code);
    assert_eq!(r.body["reason"], reason, "{r:?}");
    assert_eq!(r.body["message"], message, "{r:?}");
}

fn b64(s: &str) -> String {
    aws_smithy_types::base64::encode(s.as_bytes())
}

fn unb64(s: &Value) -> String {
    let bytes = aws_smithy_types::base64::decode(s.as_str().expect("a string")).expect("base64");
    String::from_utf8(bytes).expect("UTF-8")
}

const SECRETS: &str = "/api/v1/namespaces/argocd/secrets";

fn cluster_secret(name: &str, cell: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "labels": {
            "argocd.argoproj.io/secret-type": "cluster", "okra.io/cell": cell}},
        "type": "Opaque",
        "stringData": {"name": name, "server": format!("https://{name}.example")},
    })
}

// ------------------------------------------------------------------ Secrets

#[test]
fn secrets_are_created_read_listed_updated_and_deleted_as_the_api_does() {
    let api = KubeApi::start(settings()).unwrap();
    let http = Http::new(&api);

    // Create: 201, the object as the API returns it; stringData merged into data.
    let r = http.json("POST", SECRETS, ADMIN, &cluster_secret("web-a", "web"));
    assert_eq!(r.status, 201, "{r:?}");
    let a = r.body;
    assert_eq!(a["apiVersion"], "v1");
    assert_eq!(a["kind"], "Secret");
    assert_eq!(a["type"], "Opaque");
    assert_eq!(a["metadata"]["name"], "web-a");
    assert_eq!(a["metadata"]["namespace"], "argocd");
    assert_eq!(a["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        a["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(a["metadata"]["labels"]["okra.io/cell"], "web");
    assert_eq!(unb64(&a["data"]["server"]), "https://web-a.example");
    assert!(a.get("stringData").is_none());
    let rv_a: u64 = a["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(a["metadata"]["managedFields"][0]["operation"], "Update");

    let r = http.json("POST", SECRETS, ADMIN, &cluster_secret("api-a", "api"));
    assert_eq!(r.status, 201);
    let rv_b: u64 = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv_b > rv_a, "a cluster-wide counter");

    // Get, list, selectors.
    let r = http.get(&format!("{SECRETS}/web-a"), ADMIN);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, a);
    let r = http.get(SECRETS, ADMIN);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["kind"], "SecretList");
    assert_eq!(r.body["apiVersion"], "v1");
    assert_eq!(r.body["metadata"]["resourceVersion"], rv_b.to_string());
    let names = |r: &Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&r), ["api-a", "web-a"]);
    assert!(
        r.body["items"][0].get("kind").is_none(),
        "items carry no kind"
    );
    for (selector, want) in [
        ("okra.io/cell%3Dweb", vec!["web-a"]),
        ("okra.io/cell%3D%3Dweb", vec!["web-a"]),
        ("okra.io/cell!%3Dweb", vec!["api-a"]),
        ("okra.io/cell", vec!["api-a", "web-a"]),
        ("!okra.io/cell", vec![]),
        ("okra.io/cell%20in%20(api,web)", vec!["api-a", "web-a"]),
        (
            "okra.io/cell%20notin%20(web),argocd.argoproj.io/secret-type%3Dcluster",
            vec!["api-a"],
        ),
    ] {
        let r = http.get(&format!("{SECRETS}?labelSelector={selector}"), ADMIN);
        assert_eq!(r.status, 200, "{selector}: {r:?}");
        assert_eq!(names(&r), want, "{selector}");
    }
    let r = http.get(
        &format!("{SECRETS}?fieldSelector=metadata.name%3Dapi-a"),
        ADMIN,
    );
    assert_eq!(names(&r), ["api-a"]);
    // Chunks.
    let r = http.get(&format!("{SECRETS}?limit=1"), ADMIN);
    assert_eq!(names(&r), ["api-a"]);
    assert_eq!(r.body["metadata"]["remainingItemCount"], 1);
    let next = r.body["metadata"]["continue"].as_str().unwrap().to_owned();
    let r = http.get(&format!("{SECRETS}?limit=1&continue={next}"), ADMIN);
    assert_eq!(names(&r), ["web-a"]);
    assert!(r.body["metadata"].get("continue").is_none());

    // Update with the current resourceVersion; then a stale one: 409.
    let mut changed = a.clone();
    changed["data"]["config"] = json!(b64("{}"));
    let r = http.json("PUT", &format!("{SECRETS}/web-a"), ADMIN, &changed);
    assert_eq!(r.status, 200, "{r:?}");
    let rv_c = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rv_c, rv_a.to_string());
    assert_eq!(unb64(&r.body["data"]["config"]), "{}");
    let r = http.json("PUT", &format!("{SECRETS}/web-a"), ADMIN, &changed);
    assert_status(
        &r,
        409,
        "Conflict",
        "Operation cannot be fulfilled on secrets \"web-a\": the object has been modified; please apply your changes to the latest version and try again",
    );
    assert_eq!(
        r.body["details"],
        json!({"name": "web-a", "kind": "secrets"})
    );
    // Without a resourceVersion: unconditional.
    let mut unconditional = changed.clone();
    unconditional["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    unconditional["data"]["config"] = json!(b64("{\"tls\":true}"));
    let r = http.json("PUT", &format!("{SECRETS}/web-a"), ADMIN, &unconditional);
    assert_eq!(r.status, 200, "{r:?}");
    let rv_d = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    // A write that changes nothing keeps the resourceVersion.
    let r = http.json("PUT", &format!("{SECRETS}/web-a"), ADMIN, &unconditional);
    assert_eq!(r.body["metadata"]["resourceVersion"], rv_d.as_str());
    // Secrets are not created by PUT.
    let r = http.json(
        "PUT",
        &format!("{SECRETS}/nope"),
        ADMIN,
        &cluster_secret("nope", "x"),
    );
    assert_status(&r, 404, "NotFound", "secrets \"nope\" not found");
    let r = http.json(
        "PUT",
        &format!("{SECRETS}/web-a"),
        ADMIN,
        &cluster_secret("other", "x"),
    );
    assert_status(
        &r,
        400,
        "BadRequest",
        "the name of the object (other) does not match the name on the URL (web-a)",
    );

    // Merge patch: labels and data merged, null removes; a stale resourceVersion is 409.
    let r = http.send(
        "PATCH",
        &format!("{SECRETS}/web-a"),
        Some(&token(ADMIN)),
        Some("application/merge-patch+json"),
        &json!({"metadata": {"labels": {"okra.io/cell": null, "tier": "1"}},
                "data": {"config": null}})
        .to_string(),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["metadata"]["labels"],
        json!({"argocd.argoproj.io/secret-type": "cluster", "tier": "1"})
    );
    assert!(r.body["data"].get("config").is_none());
    let r = http.send(
        "PATCH",
        &format!("{SECRETS}/web-a"),
        Some(&token(ADMIN)),
        Some("application/merge-patch+json"),
        &json!({"metadata": {"resourceVersion": rv_d}, "data": {"x": b64("y")}}).to_string(),
        None,
    );
    assert_eq!(r.status, 409, "{r:?}");
    let r = http.send(
        "PATCH",
        &format!("{SECRETS}/nope"),
        Some(&token(ADMIN)),
        Some("application/merge-patch+json"),
        "{}",
        None,
    );
    assert_status(&r, 404, "NotFound", "secrets \"nope\" not found");

    // generateName.
    let r = http.json(
        "POST",
        SECRETS,
        ADMIN,
        &json!({"metadata": {"generateName": "cluster-"}, "data": {}}),
    );
    assert_eq!(r.status, 201);
    let generated = r.body["metadata"]["name"].as_str().unwrap();
    assert!(
        generated.starts_with("cluster-") && generated.len() == 13,
        "{generated}"
    );

    // Delete: a Status Success; then 404.
    let uid = a["metadata"]["uid"].clone();
    let r = http.send(
        "DELETE",
        &format!("{SECRETS}/web-a"),
        Some(&token(ADMIN)),
        None,
        "",
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": "web-a", "kind": "secrets", "uid": uid}})
    );
    let r = http.get(&format!("{SECRETS}/web-a"), ADMIN);
    assert_status(&r, 404, "NotFound", "secrets \"web-a\" not found");
    assert_eq!(
        r.body["details"],
        json!({"name": "web-a", "kind": "secrets"})
    );
    let r = http.send(
        "DELETE",
        &format!("{SECRETS}/web-a"),
        Some(&token(ADMIN)),
        None,
        "",
        None,
    );
    assert_status(&r, 404, "NotFound", "secrets \"web-a\" not found");

    // What the test can read directly.
    let stored: Vec<String> = api
        .secrets("argocd")
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stored.len(), 2);
    assert!(stored.contains(&"api-a".to_owned()));
    assert!(api.secrets("default").is_empty());

    // Namespaces and discovery.
    let r = http.get("/api/v1/namespaces/argocd", ADMIN);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["kind"], "Namespace");
    assert_eq!(r.body["status"]["phase"], "Active");
    let r = http.get("/api/v1/namespaces/nope", ADMIN);
    assert_status(&r, 404, "NotFound", "namespaces \"nope\" not found");
    assert_eq!(http.get("/version", ADMIN).body["major"], "1");
    assert_eq!(http.get("/api", ADMIN).body["versions"], json!(["v1"]));
    assert_eq!(http.get("/apis", ADMIN).body["kind"], "APIGroupList");
    let r = http.get("/api/v1/namespaces/argocd/configmaps", ADMIN);
    assert_status(
        &r,
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
}

#[test]
fn invalid_objects_and_requests_are_refused_with_the_api_s_statuses() {
    let api = KubeApi::start(settings()).unwrap();
    let http = Http::new(&api);
    let r = http.json("POST", SECRETS, ADMIN, &cluster_secret("Bad_Name", "web"));
    assert_status(
        &r,
        422,
        "Invalid",
        "Secret \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
    assert_eq!(r.body["details"]["name"], "Bad_Name");
    assert_eq!(r.body["details"]["kind"], "Secret");
    assert_eq!(
        r.body["details"]["causes"],
        json!([{"reason": "FieldValueInvalid", "field": "metadata.name",
                "message": "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"}])
    );
    let long = "a".repeat(254);
    let r = http.json("POST", SECRETS, ADMIN, &cluster_secret(&long, "web"));
    assert_eq!(r.status, 422);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("must be no more than 253 characters")
    );

    let mut bad_labels = cluster_secret("labels", "web");
    bad_labels["metadata"]["labels"] =
        json!({"bad key": "v", "ok": "-bad", "long": "x".repeat(64)});
    let r = http.json("POST", SECRETS, ADMIN, &bad_labels);
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.body["reason"], "Invalid");
    let causes = r.body["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 3, "{causes:?}");
    assert!(
        causes
            .iter()
            .all(|c| c["field"] == "metadata.labels" && c["reason"] == "FieldValueInvalid")
    );
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Secret \"labels\" is invalid: [metadata.labels: Invalid value: "),
        "{message}"
    );
    assert!(
        message.contains("name part must consist of alphanumeric characters"),
        "{message}"
    );
    assert!(
        message.contains("must be no more than 63 characters"),
        "{message}"
    );
    assert!(
        message.contains("a valid label must be an empty string"),
        "{message}"
    );

    let mut bad_key = cluster_secret("keys", "web");
    bad_key["data"] = json!({"a/b": b64("x")});
    let r = http.json("POST", SECRETS, ADMIN, &bad_key);
    assert_eq!(r.status, 422);
    assert_eq!(r.body["details"]["causes"][0]["field"], "data[a/b]");

    let mut bad_data = cluster_secret("data", "web");
    bad_data["data"] = json!({"k": "not base64!"});
    let r = http.json("POST", SECRETS, ADMIN, &bad_data);
    assert_status(
        &r,
        400,
        "BadRequest",
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3",
    );

    let r = http.json(
        "POST",
        "/api/v1/namespaces/nope/secrets",
        ADMIN,
        &cluster_secret("x", "web"),
    );
    assert_status(&r, 404, "NotFound", "namespaces \"nope\" not found");
    assert_eq!(
        r.body["details"],
        json!({"name": "nope", "kind": "namespaces"})
    );

    assert_eq!(
        http.json("POST", SECRETS, ADMIN, &cluster_secret("dup", "web"))
            .status,
        201
    );
    let r = http.json("POST", SECRETS, ADMIN, &cluster_secret("dup", "web"));
    assert_status(&r, 409, "AlreadyExists", "secrets \"dup\" already exists");
    assert_eq!(r.body["details"], json!({"name": "dup", "kind": "secrets"}));

    let mut other_ns = cluster_secret("ns", "web");
    other_ns["metadata"]["namespace"] = json!("default");
    let r = http.json("POST", SECRETS, ADMIN, &other_ns);
    assert_status(
        &r,
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
    );
    let r = http.json("POST", SECRETS, ADMIN, &json!({"metadata": {}}));
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["details"]["causes"][0]["reason"],
        "FieldValueRequired"
    );

    // Unknown fields: a warning by default, refused when Strict.
    let mut unknown = cluster_secret("unknown", "web");
    unknown["spec"] = json!({});
    let r = http.json(
        "POST",
        &format!("{SECRETS}?fieldValidation=Strict"),
        ADMIN,
        &unknown,
    );
    assert_status(
        &r,
        400,
        "BadRequest",
        "strict decoding error: unknown field \"spec\"",
    );
    let r = http.json("POST", SECRETS, ADMIN, &unknown);
    assert_eq!(r.status, 201);
    assert_eq!(r.headers["warning"], "299 - \"unknown field \\\"spec\\\"\"");

    // Type is immutable.
    let mut typed = r.body.clone();
    typed["type"] = json!("kubernetes.io/tls");
    let r = http.json("PUT", &format!("{SECRETS}/unknown"), ADMIN, &typed);
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["details"]["causes"],
        json!([{"reason": "FieldValueInvalid", "field": "type",
                "message": "Invalid value: \"kubernetes.io/tls\": field is immutable"}])
    );

    // Selectors: malformed ones are 400.
    for (selector, message) in [
        (
            "a%20in%20b",
            "unable to parse requirement: found 'b' expected: '('",
        ),
        (
            "a%20b",
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
        ),
        ("a%3Db%20c", "found 'c', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        (
            "%3Dx",
            "found '=', expected: !, identifier, or 'end of string'",
        ),
    ] {
        let r = http.get(&format!("{SECRETS}?labelSelector={selector}"), ADMIN);
        assert_status(&r, 400, "BadRequest", message);
    }
    let r = http.get(&format!("{SECRETS}?fieldSelector=spec.x%3D1"), ADMIN);
    assert_status(&r, 400, "BadRequest", "field label not supported: spec.x");
    // Not modelled.
    let r = http.get(&format!("{SECRETS}?watch=true"), ADMIN);
    assert_eq!(r.status, 400);
    let r = http.send(
        "PATCH",
        &format!("{SECRETS}/dup"),
        Some(&token(ADMIN)),
        Some("application/json-patch+json"),
        "[]",
        None,
    );
    assert_eq!(r.status, 415);
    // Every refusal is in the log.
    let log = api.log();
    assert!(
        log.refused
            .iter()
            .any(|r| r.code == 422 && r.reason == "Invalid")
    );
    assert!(
        log.refused
            .iter()
            .all(|r| r.principal.as_deref() == Some(ADMIN.3))
    );
}

#[test]
fn server_side_apply_creates_replaces_its_own_fields_and_conflicts_with_other_managers() {
    let api = KubeApi::start(settings()).unwrap();
    let http = Http::new(&api);
    let apply = |manager: Option<&str>, force: bool, doc: &Value| {
        let mut path = format!("{SECRETS}/hub-web");
        if let Some(m) = manager {
            path.push_str(&format!("?fieldManager={m}"));
            if force {
                path.push_str("&force=true");
            }
        }
        let yaml = serde_yaml_ng::to_string(doc).unwrap();
        http.send(
            "PATCH",
            &path,
            Some(&token(ADMIN)),
            Some("application/apply-patch+yaml"),
            &yaml,
            None,
        )
    };
    let doc = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hub-web", "labels": {"okra.io/cell": "web", "okra.io/old": "1"}},
        "stringData": {"server": "https://a"}});
    let r = apply(None, false, &doc);
    assert_status(
        &r,
        400,
        "BadRequest",
        "fieldManager is required for apply requests",
    );
    let r = apply(Some("okra"), false, &doc);
    assert_eq!(r.status, 201, "apply creates: {r:?}");
    let rv = r.body["metadata"]["resourceVersion"].clone();
    let managed = &r.body["metadata"]["managedFields"][0];
    assert_eq!(managed["manager"], "okra");
    assert_eq!(managed["operation"], "Apply");
    assert_eq!(managed["fieldsType"], "FieldsV1");
    assert_eq!(managed["fieldsV1"]["f:data"]["f:server"], json!({}));
    assert_eq!(
        managed["fieldsV1"]["f:metadata"]["f:labels"]["f:okra.io/cell"],
        json!({})
    );
    // The same apply again changes nothing.
    let r = apply(Some("okra"), false, &doc);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["metadata"]["resourceVersion"], rv);
    // Another writer (an Update) adds a label of its own.
    let r = http.send(
        "PATCH",
        &format!("{SECRETS}/hub-web?fieldManager=argocd"),
        Some(&token(ADMIN)),
        Some("application/merge-patch+json"),
        &json!({"metadata": {"labels": {"argocd": "yes"}}}).to_string(),
        None,
    );
    assert_eq!(r.status, 200);
    // The manager stops sending okra.io/old: it goes; argocd's label stays.
    let mut next = doc.clone();
    next["metadata"]["labels"] = json!({"okra.io/cell": "web"});
    next["stringData"] = json!({"server": "https://b"});
    let r = apply(Some("okra"), false, &next);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["metadata"]["labels"],
        json!({"okra.io/cell": "web", "argocd": "yes"})
    );
    assert_eq!(unb64(&r.body["data"]["server"]), "https://b");
    // Another manager applying okra's field at another value: a conflict, unless forced.
    let theirs = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hub-web"},
                        "stringData": {"server": "https://c"}});
    let r = apply(Some("intruder"), false, &theirs);
    assert_status(
        &r,
        409,
        "Conflict",
        "Apply failed with 1 conflict: conflict with \"okra\" using v1: .data.server",
    );
    assert_eq!(
        r.body["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"okra\" using v1",
                "field": ".data.server"}])
    );
    // The same value is shared, not a conflict.
    let same = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hub-web"},
                      "stringData": {"server": "https://b"}});
    assert_eq!(apply(Some("sharer"), false, &same).status, 200);
    let r = apply(Some("intruder"), true, &theirs);
    assert_eq!(r.status, 200, "force takes the field over: {r:?}");
    assert_eq!(unb64(&r.body["data"]["server"]), "https://c");
    // okra no longer owns .data.server: its next apply of another value conflicts with the
    // intruder.
    let r = apply(Some("okra"), false, &next);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("conflict with \"intruder\"")
    );
    // Apply into a namespace that does not exist.
    let r = http.send(
        "PATCH",
        "/api/v1/namespaces/nope/secrets/hub-web?fieldManager=okra",
        Some(&token(ADMIN)),
        Some("application/apply-patch+yaml"),
        &serde_yaml_ng::to_string(&doc).unwrap(),
        None,
    );
    assert_status(&r, 404, "NotFound", "namespaces \"nope\" not found");
}

#[test]
fn delete_preconditions_are_checked() {
    let api = KubeApi::start(settings()).unwrap();
    let http = Http::new(&api);
    let r = http.json("POST", SECRETS, ADMIN, &cluster_secret("gone", "web"));
    let rv = r.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let uid = r.body["metadata"]["uid"].as_str().unwrap().to_owned();
    let del = |body: Value| {
        http.send(
            "DELETE",
            &format!("{SECRETS}/gone"),
            Some(&token(ADMIN)),
            Some("application/json"),
            &body.to_string(),
            None,
        )
    };
    let r = del(json!({"kind": "DeleteOptions", "apiVersion": "v1",
                       "preconditions": {"resourceVersion": "1"}}));
    assert_status(
        &r,
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on secrets \"gone\": the ResourceVersion in the precondition (1) does not match the ResourceVersion in record ({rv}). The object might have been modified"
        ),
    );
    let r = del(json!({"preconditions": {"uid": "other"}}));
    assert_eq!(r.status, 409);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("Precondition failed: UID in precondition: other")
    );
    let r = del(
        json!({"preconditions": {"resourceVersion": rv, "uid": uid}, "propagationPolicy": "Background"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "Success");
}

// ------------------------------------------------------------------ authentication

/// The presigned URL a token carries.
fn url_of(token: &str) -> String {
    let body = token.strip_prefix("k8s-aws-v1.").expect("the prefix");
    let std: String = body
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let padded = format!("{std}{}", "=".repeat((4 - std.len() % 4) % 4));
    String::from_utf8(aws_smithy_types::base64::decode(padded).expect("base64")).expect("UTF-8")
}

/// A token carrying `url`.
fn token_for(url: &str) -> String {
    let b64: String = aws_smithy_types::base64::encode(url.as_bytes())
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    format!("k8s-aws-v1.{b64}")
}

/// The last refusal the API logged.
fn last_refusal(api: &KubeApi) -> KubeRefusal {
    api.log().refused.last().cloned().expect("a refusal")
}

#[test]
fn every_authentication_fault_is_401_and_the_log_says_why() {
    let api = KubeApi::start(settings()).unwrap();
    let http = Http::new(&api);
    let good = token(ADMIN);
    assert_eq!(
        http.send("GET", SECRETS, Some(&good), None, "", None)
            .status,
        200
    );
    let url = url_of(&good);
    let sixteen_minutes_ago = SystemTime::now() - Duration::from_secs(16 * 60);
    let tampered = {
        let (head, sig) = url.rsplit_once("X-Amz-Signature=").unwrap();
        let flipped: String = sig
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    if c == '0' { '1' } else { '0' }
                } else {
                    c
                }
            })
            .collect();
        format!("{head}X-Amz-Signature={flipped}")
    };
    let unknown_key: Identity = ("AKIDUNKNOWN000000001", "whatever", None, "", &[]);
    let wrong_session: Identity = (EDITOR.0, EDITOR.1, Some("not-the-session"), "", &[]);
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "no bearer token"),
        (
            "not a bearer token",
            Some("Basic Zm9vOmJhcg==".into()),
            "not a bearer token",
        ),
        (
            "another cluster",
            Some(token_of(ADMIN, "other-cluster", SystemTime::now())),
            "SignatureDoesNotMatch",
        ),
        (
            "expired",
            Some(token_of(ADMIN, CLUSTER, sixteen_minutes_ago)),
            "X-Amz-Date parameter is expired (15 minute expiration)",
        ),
        (
            "unknown key",
            Some(token(unknown_key)),
            "InvalidClientTokenId",
        ),
        (
            "tampered signature",
            Some(token_for(&tampered)),
            "SignatureDoesNotMatch",
        ),
        (
            "wrong session token",
            Some(token(wrong_session)),
            "InvalidClientTokenId",
        ),
        (
            "no access entry",
            Some(token(STRANGER)),
            "ARN is not mapped: arn:aws:iam::123456789012:user/stranger",
        ),
        (
            "wrong prefix",
            Some(good.replacen("k8s-aws-v1.", "k8s-aws-v2.", 1)),
            "token is missing expected \"k8s-aws-v1.\" prefix",
        ),
        ("padded", Some(format!("{good}=")), "illegal base64 data"),
        (
            "another host",
            Some(token_for(&url.replacen(
                "sts.us-east-1.amazonaws.com",
                "sts.example.com",
                1,
            ))),
            "unexpected hostname \"sts.example.com\" in pre-signed URL",
        ),
        (
            "http",
            Some(token_for(&url.replacen("https://", "http://", 1))),
            "unexpected scheme \"http\" in pre-signed URL",
        ),
        (
            "another path",
            Some(token_for(&url.replacen(".com/?", ".com/x?", 1))),
            "unexpected path in pre-signed URL",
        ),
        (
            "another action",
            Some(token_for(&url.replacen(
                "Action=GetCallerIdentity",
                "Action=AssumeRole",
                1,
            ))),
            "unexpected action parameter in pre-signed URL",
        ),
        (
            "an extra parameter",
            Some(token_for(&format!("{url}&Foo=bar"))),
            "non-whitelisted query parameter \"Foo\"",
        ),
        (
            "a repeated parameter",
            Some(token_for(&format!("{url}&action=GetCallerIdentity"))),
            "duplicate query parameter found: \"action\"",
        ),
        (
            "the cluster unsigned",
            Some(token_for(&url.replacen(
                "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
                "X-Amz-SignedHeaders=host",
                1,
            ))),
            "client did not sign the x-k8s-aws-id header in the pre-signed URL",
        ),
        (
            "expires out of range",
            Some(token_for(&url.replacen(
                "X-Amz-Expires=60",
                "X-Amz-Expires=901",
                1,
            ))),
            "invalid X-Amz-Expires parameter in pre-signed URL: 901",
        ),
        (
            "too large",
            Some(format!("k8s-aws-v1.{}", "A".repeat(4100))),
            "token is too large",
        ),
    ];
    for (what, tok, why) in cases {
        let r = http.send("GET", SECRETS, tok.as_deref(), None, "", None);
        assert_status(&r, 401, "Unauthorized", "Unauthorized");
        let refusal = last_refusal(&api);
        assert_eq!(refusal.code, 401, "{what}");
        assert!(refusal.detail.contains(why), "{what}: {}", refusal.detail);
        assert_eq!(refusal.principal, None);
    }
    // The health endpoints need no token; discovery does.
    let r = http.send("GET", "/healthz", None, None, "", None);
    assert_eq!((r.status, r.body), (200, Value::String("ok".into())));
    assert_eq!(
        http.send("GET", "/version", None, None, "", None).status,
        401
    );
    // A session's key with its session token is accepted.
    assert_eq!(
        http.get("/api/v1/namespaces/argocd/secrets", EDITOR).status,
        200
    );
}

#[test]
fn access_policies_authorize_as_eks_access_entries_do() {
    let api = KubeApi::start(settings()).unwrap();
    let http = Http::new(&api);
    // The view policy reads namespaces but not secrets.
    let r = http.get(SECRETS, VIEWER);
    assert_status(
        &r,
        403,
        "Forbidden",
        "secrets is forbidden: User \"arn:aws:iam::123456789012:user/viewer\" cannot list resource \"secrets\" in API group \"\" in the namespace \"argocd\"",
    );
    assert_eq!(r.body["details"], json!({"kind": "secrets"}));
    let r = http.get(&format!("{SECRETS}/x"), VIEWER);
    assert_status(
        &r,
        403,
        "Forbidden",
        "secrets \"x\" is forbidden: User \"arn:aws:iam::123456789012:user/viewer\" cannot get resource \"secrets\" in API group \"\" in the namespace \"argocd\"",
    );
    assert_eq!(http.get("/api/v1/namespaces/argocd", VIEWER).status, 200);
    // The edit policy scoped to argocd: secrets there, nothing elsewhere.
    let r = http.json("POST", SECRETS, EDITOR, &cluster_secret("edited", "web"));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(
        http.send(
            "DELETE",
            &format!("{SECRETS}/edited"),
            Some(&token(EDITOR)),
            None,
            "",
            None
        )
        .status,
        200
    );
    let r = http.json(
        "POST",
        "/api/v1/namespaces/default/secrets",
        EDITOR,
        &cluster_secret("edited", "web"),
    );
    assert_status(
        &r,
        403,
        "Forbidden",
        &format!(
            "secrets is forbidden: User \"{}\" cannot create resource \"secrets\" in API group \"\" in the namespace \"default\"",
            EDITOR.3
        ),
    );
    let r = http.get("/api/v1/namespaces/default", EDITOR);
    assert_status(
        &r,
        403,
        "Forbidden",
        &format!(
            "namespaces \"default\" is forbidden: User \"{}\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"default\"",
            EDITOR.3
        ),
    );
    assert_eq!(http.get("/api/v1/namespaces/argocd", EDITOR).status, 200);
    // The log: each allowed request by verb and principal, each refusal.
    let log = api.log();
    assert!(log.allowed.iter().any(|r| r.verb == "create"
        && r.resource == "secrets"
        && r.namespace.as_deref() == Some("argocd")
        && r.principal == EDITOR.3));
    assert!(
        log.allowed
            .iter()
            .any(|r| r.verb == "delete" && r.name.as_deref() == Some("edited"))
    );
    assert_eq!(log.refused.iter().filter(|r| r.code == 403).count(), 4);
    // No token with every policy: no access either.
    assert_eq!(http.send("GET", SECRETS, None, None, "", None).status, 401);
}

// ------------------------------------------------------------------ real clients

fn kubectl() -> PathBuf {
    let path =
        PathBuf::from(std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into()));
    assert!(
        path.exists(),
        "{} is missing: run `make kubectl` (Debian's kubernetes-client) or set KUBECTL",
        path.display()
    );
    path
}

/// kubectl's client minor version (`kubectl version --client -o json`).
fn kubectl_minor(kubectl: &PathBuf) -> u32 {
    let (ok, out, err) = run(Command::new(kubectl).args(["version", "--client", "-o", "json"]));
    assert!(ok, "kubectl version: {out}{err}");
    let v: Value = serde_json::from_str(&out).expect("kubectl version's JSON");
    v["clientVersion"]["minor"]
        .as_str()
        .and_then(|m| m.trim_end_matches('+').parse().ok())
        .expect("a minor version")
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("running it");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kubectl_applies_gets_and_deletes_secrets() {
    let kubectl = kubectl();
    let api = KubeApi::start(settings()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, api.kubeconfig(&token(ADMIN))).unwrap();
    let manifest = dir.path().join("secret.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cell-web\n  namespace: argocd\n  labels:\n    okra.io/cell: web\n    argocd.argoproj.io/secret-type: cluster\ntype: Opaque\nstringData:\n  name: cell-web\n  server: https://cell-web.example\n",
    )
    .unwrap();
    let k = |args: &[&str]| {
        let mut c = Command::new(&kubectl);
        c.arg("--kubeconfig")
            .arg(&config)
            .args(args)
            .env("HOME", dir.path());
        run(&mut c)
    };
    let mut apply = vec![
        "apply",
        "-f",
        manifest.to_str().unwrap(),
        "--server-side",
        "--field-manager=test",
    ];
    // kubectl 1.27+ learns from /openapi/v3 that the server validates fields and sends
    // fieldValidation=Strict; older ones (Debian bookworm's kubernetes-client is 1.20) validate on
    // the client with the protobuf OpenAPI v2, which the local API does not serve.
    if kubectl_minor(&kubectl) < 27 {
        apply.push("--validate=false");
    }
    let (ok, out, err) = k(&apply);
    assert!(ok, "kubectl apply: {out}{err}");
    assert!(out.contains("secret/cell-web serverside-applied"), "{out}");
    let (ok, out, err) = k(&[
        "get",
        "secrets",
        "-n",
        "argocd",
        "-l",
        "okra.io/cell=web",
        "-o",
        "json",
    ]);
    assert!(ok, "kubectl get: {out}{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["metadata"]["labels"]["okra.io/cell"], "web");
    assert_eq!(
        unb64(&items[0]["data"]["server"]),
        "https://cell-web.example"
    );
    let (ok, out, _) = k(&[
        "get",
        "secrets",
        "-n",
        "argocd",
        "-l",
        "okra.io/cell=api",
        "-o",
        "json",
    ]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["items"],
        json!([])
    );
    // The stored object says who applied it.
    let stored = api.secrets("argocd");
    assert_eq!(stored[0]["metadata"]["managedFields"][0]["manager"], "test");
    let (ok, out, err) = k(&["delete", "secret", "cell-web", "-n", "argocd"]);
    assert!(ok, "kubectl delete: {out}{err}");
    assert!(out.contains("secret \"cell-web\" deleted"), "{out}");
    assert!(api.secrets("argocd").is_empty());
    // A bad token.
    std::fs::write(&config, api.kubeconfig(&token(STRANGER))).unwrap();
    let (ok, out, err) = k(&["get", "secrets", "-n", "argocd"]);
    assert!(!ok, "{out}");
    assert!(err.contains("Unauthorized"), "{err}");
}

#[test]
fn the_kubernetes_python_client_creates_lists_conflicts_and_deletes() {
    let root = okra_testkit::workspace_root();
    let python = root.join(".tools/kube-venv/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run `make setup` (tools/local-aws/install.sh installs the Kubernetes Python client)",
        python.display()
    );
    let api = KubeApi::start(settings()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(&config, api.kubeconfig(&token(ADMIN))).unwrap();
    let (ok, out, err) = run(Command::new(&python)
        .arg(root.join("tools/local-aws/kube_client_check.py"))
        .arg(&config)
        .arg("argocd")
        .arg("py-cell")
        .env("HOME", dir.path()));
    assert!(ok, "kube_client_check.py: {out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("created: py-cell rv="), "{out}");
    assert!(lines[0].ends_with("type=Opaque data=['server']"), "{out}");
    assert!(lines[1].starts_with("listed: py-cell rv="), "{out}");
    assert!(lines[2].starts_with("replaced: rv="), "{out}");
    assert_eq!(
        lines[3],
        "stale: 409 Conflict Operation cannot be fulfilled on secrets \"py-cell\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(lines[4], "deleted: Success py-cell secrets");
    assert_eq!(lines[5], "gone: 404");
    assert!(api.secrets("argocd").is_empty());
}

// ------------------------------------------------------------------ with the strict moto

#[test]
fn functions_are_principals_by_user_agent_and_describe_cluster_names_the_local_api() {
    let aws = okra_testkit::LocalAws::start().unwrap();
    // The strict moto names a function's role.
    let mut r = ureq::get(&format!("{}/_okra/iam/principal", aws.endpoint()))
        .query("caller", "dispatcher")
        .call()
        .unwrap();
    let principal: Value = r.body_mut().read_json().unwrap();
    assert_eq!(principal["function"], "DispatcherFunction");
    let role = principal["roleArn"].as_str().unwrap().to_owned();
    assert!(
        role.starts_with("arn:aws:iam::123456789012:role/")
            && role.contains("DispatcherFunctionRole"),
        "{role}"
    );
    let r = ureq::get(&format!("{}/_okra/iam/principal", aws.endpoint()))
        .query("caller", "not-a-function")
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // The API with the stack's one shared key: the principal is the user agent's function.
    let (key, secret) = aws.credentials();
    let mut s = settings();
    s.iam = Some(aws.endpoint().to_owned());
    s.keys
        .insert(key.into(), (secret.into(), Some(secret.into())));
    s.access_entries.push(AccessEntry {
        principal_arn: role.clone(),
        policies: vec![AccessPolicy {
            policy_arn: policy_arn("AmazonEKSEditPolicy"),
            namespaces: Some(vec!["argocd".into()]),
        }],
    });
    let api = KubeApi::start(s).unwrap();
    let http = Http::new(&api);
    let shared: Identity = ("testing", "testing", Some("testing"), "", &[]);
    let ua = "aws-sdk-rust/1 os/linux lang/rust app/dispatcher";
    let r = http.send("GET", SECRETS, Some(&token(shared)), None, "", Some(ua));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(api.log().allowed.last().unwrap().principal, role);
    let r = http.send(
        "GET",
        "/api/v1/namespaces/default/secrets",
        Some(&token(shared)),
        None,
        "",
        Some(ua),
    );
    assert_eq!(r.status, 403);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("User \"{role}\""))
    );
    // A caller that is no function, or names none: 401.
    for ua in [
        Some("aws-sdk-rust/1 app/not-a-function"),
        Some("curl/8"),
        None,
    ] {
        let r = http.send("GET", SECRETS, Some(&token(shared)), None, "", ua);
        assert_eq!(r.status, 401, "{ua:?}");
        assert!(
            last_refusal(&api).detail.contains("shared key"),
            "{:?}",
            last_refusal(&api)
        );
    }

    // DescribeCluster of the hub answers the local API's address and CA.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let conf = rt.block_on(aws.sdk_config());
    let eks = aws_sdk_eks::Client::new(&conf);
    let hub = okra_testkit::LocalAws::unique("hub");
    rt.block_on(
        eks.create_cluster()
            .name(&hub)
            .role_arn("arn:aws:iam::123456789012:role/eks")
            .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().build())
            .send(),
    )
    .unwrap();
    let mut r = ureq::post(&format!("{}/_okra/eks/endpoint", aws.endpoint()))
        .send_json(json!({"account": ACCOUNT, "region": REGION, "name": hub,
                          "endpoint": api.endpoint(), "caData": api.ca_data()}))
        .unwrap();
    let set: Value = r.body_mut().read_json().unwrap();
    assert_eq!(set["endpoint"], api.endpoint());
    let described = rt
        .block_on(eks.describe_cluster().name(&hub).send())
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(described.endpoint(), Some(api.endpoint().as_str()));
    let ca = described
        .certificate_authority()
        .and_then(|c| c.data())
        .unwrap();
    assert_eq!(ca, api.ca_data());
    assert_eq!(
        String::from_utf8(aws_smithy_types::base64::decode(ca).unwrap()).unwrap(),
        api.ca_pem()
    );
    let r = ureq::post(&format!("{}/_okra/eks/endpoint", aws.endpoint()))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(json!({"name": "no-such-cluster", "endpoint": "x"}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // A session the strict moto's STS issued: the assumed role is the principal; its access
    // entry is one the strict moto's EKS holds for the hub (made through the EKS API).
    let assumed = "arn:aws:iam::123456789012:role/hub-operator";
    let creds = rt.block_on(async {
        use aws_credential_types::provider::ProvideCredentials as _;
        aws_config::sts::AssumeRoleProvider::builder(assumed)
            .session_name("test")
            .configure(&conf)
            .build()
            .await
            .provide_credentials()
            .await
            .unwrap()
    });
    rt.block_on(async {
        eks.create_access_entry()
            .cluster_name(&hub)
            .principal_arn(assumed)
            .send()
            .await
            .unwrap();
        eks.associate_access_policy()
            .cluster_name(&hub)
            .principal_arn(assumed)
            .policy_arn(policy_arn("AmazonEKSAdminViewPolicy"))
            .access_scope(
                aws_sdk_eks::types::AccessScope::builder()
                    .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let mut s = settings();
    s.cluster = hub.clone();
    s.iam = Some(aws.endpoint().to_owned());
    let api = KubeApi::start(s).unwrap();
    let http = Http::new(&api);
    let t = eks_token(&creds, REGION, &hub, SystemTime::now()).unwrap();
    let r = http.send("GET", SECRETS, Some(&t), None, "", None);
    assert_eq!(r.status, 200, "{r:?} {:?}", api.log());
    assert_eq!(api.log().allowed.last().unwrap().principal, assumed);
    let r = http.send(
        "POST",
        SECRETS,
        Some(&t),
        Some("application/json"),
        &cluster_secret("x", "web").to_string(),
        None,
    );
    assert_eq!(r.status, 403, "admin view does not write");
}

#[test]
fn only_the_given_namespaces_exist_and_the_kubeconfig_names_the_server() {
    let mut s = settings();
    s.namespaces = vec!["only".into()];
    let api = KubeApi::start(s).unwrap();
    let http = Http::new(&api);
    assert_eq!(http.get("/api/v1/namespaces/only", ADMIN).status, 200);
    assert_eq!(http.get("/api/v1/namespaces/argocd", ADMIN).status, 404);
    let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&api.kubeconfig("t")).unwrap();
    assert_eq!(
        config["clusters"][0]["cluster"]["server"].as_str(),
        Some(api.endpoint().as_str())
    );
    assert_eq!(config["users"][0]["user"]["token"].as_str(), Some("t"));
    assert_eq!(config["current-context"].as_str(), Some(CLUSTER));
}
