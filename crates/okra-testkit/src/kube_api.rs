//! A strict local Kubernetes API for okra's Argo CD registration: the hub EKS cluster's API
//! server, as far as okra uses it (namespaced core/v1 Secrets), over HTTPS with a CA made at
//! start, authenticating EKS bearer tokens and authorizing with EKS access entries.
//!
//! No kube-apiserver can run here, so this is a model, written from the Kubernetes and EKS
//! documentation; every row says what it follows (docs/local-aws.md, "The local Kubernetes API
//! (Argo CD hub)", has the same table):
//!
//! | behaviour | follows |
//! |---|---|
//! | HTTPS on 127.0.0.1 with a serving certificate (SAN IP 127.0.0.1, DNS localhost) signed by a CA made at start; [`KubeApi::ca_data`] is the CA's PEM in base64, as DescribeCluster's `certificateAuthority.data`; [`KubeApi::kubeconfig`] a kubeconfig with it and a bearer token | EKS user guide, "Connect kubectl to an EKS cluster by creating a kubeconfig file" |
//! | `Authorization: Bearer k8s-aws-v1.<base64url of a presigned STS GetCallerIdentity URL>`; every fault is 401 `Unauthorized` (the Status says only "Unauthorized", as kube-apiserver does; [`KubeLog`] says why): no token, a token over 4 KiB, a wrong prefix, base64url with padding or bad characters, a scheme other than https, a host other than `sts.amazonaws.com` / `sts.REGION.amazonaws.com`, a path other than `/`, a query parameter outside the authenticator's list or given twice, `Action` other than `GetCallerIdentity`, `x-k8s-aws-id` not among the signed headers, `X-Amz-Expires` outside 0-900, `X-Amz-Date` missing or more than 15 minutes old (whatever `X-Amz-Expires` says) | aws-iam-authenticator `pkg/token/token.go` (`Verify`, `presignedURLExpiration`, `parameterWhitelist`); EKS user guide, "Grant IAM users access to Kubernetes with EKS access entries"; `aws eks get-token` |
//! | then what STS does with the URL when the authenticator calls it with `x-k8s-aws-id: <this cluster's name>`: `Version=2011-06-15`, the credential scoped to `sts` and to the host's region (`us-east-1` for the global host), the access key known, the session token the key's own, and the SigV4 query signature recomputed over `GET`, `host` and `x-k8s-aws-id` with the key's secret (a token made for another cluster fails here) | STS API reference, GetCallerIdentity; AWS General Reference, "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)" |
//! | the principal: `principals[key]`; a key not there is the shared key of the local stack's functions (under the local Lambda service or `cargo lambda watch` they all sign with one key), so the principal is the role of the function the request's User-Agent names (`app/NAME`), from the strict moto's `GET /_okra/iam/principal?caller=NAME`; a key the settings do not know may be a session the strict moto's STS issued (AssumeRole): its role. **Deviation**: on EKS the key alone says who calls. A principal with no access entry, or a caller that maps to no function, is 401 (the authenticator maps no user) | EKS user guide, "Grant IAM users access to Kubernetes with EKS access entries" |
//! | the access entries: [`KubeApiSettings::access_entries`] (e.g. template.yaml's, [`AccessEntry::from_template`]) and, with the strict moto, those its EKS holds for the cluster named `cluster` in `account`/`region` (made through CreateAccessEntry/AssociateAccessPolicy; `GET /_okra/eks/access-entries`), read at each request | EKS user guide, "Create access entries", "Associate access policies with access entries" |
//! | anonymous requests only for `/healthz`, `/livez`, `/readyz` | EKS user guide, "Kubernetes version 1.32" (anonymous authentication restricted to the health endpoints) |
//! | authorization by the principal's access entry: `AmazonEKSClusterAdminPolicy` and `AmazonEKSAdminPolicy` allow every modelled request in scope, `AmazonEKSEditPolicy` secrets get/list/watch/create/update/patch/delete and namespaces get, `AmazonEKSAdminViewPolicy` get/list/watch of secrets and namespaces, `AmazonEKSViewPolicy` namespaces get but **not** secrets (the `view` ClusterRole excludes them); an association scoped to `namespace` covers its namespaces, `cluster` all; a refusal is 403 `Forbidden` worded as the RBAC authorizer words it (`secrets is forbidden: User "ARN" cannot list resource "secrets" in API group "" in the namespace "argocd"`), the user named by the principal's ARN | EKS user guide, "Associate access policies with access entries", "Review access policy permissions"; Kubernetes, "Using RBAC Authorization" (user-facing roles) |
//! | `POST /api/v1/namespaces/{ns}/secrets` 201; an existing name 409 `AlreadyExists` (`secrets "x" already exists`); a namespace that does not exist 404 (`namespaces "x" not found`); `generateName`; `dryRun=All` | Kubernetes API reference, Secret v1 "create"; "API Concepts" |
//! | `GET .../secrets/{name}`; `GET .../secrets` as a `SecretList` with `metadata.resourceVersion` (items by name, without `kind`/`apiVersion`), `labelSelector` (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, `k>n`, `k<n`, comma-joined; a malformed one 400 `BadRequest` "unable to parse requirement: ..."), `fieldSelector` (`metadata.name`, `metadata.namespace`, `type`; another field 400 "field label not supported: ..."), `limit`/`continue` | "Labels and Selectors"; "Field Selectors"; "API Concepts" (retrieving large results sets in chunks) |
//! | `PUT .../secrets/{name}`: `metadata.resourceVersion` must be the stored one, else 409 `Conflict` ("Operation cannot be fulfilled on secrets \"x\": the object has been modified; please apply your changes to the latest version and try again"); without it the update is unconditional; an absent secret 404 (secrets are not created by PUT); a name other than the URL's 400 | "API Concepts" (resource versions, optimistic concurrency) |
//! | `PATCH .../secrets/{name}`: `application/merge-patch+json` (RFC 7386; `application/strategic-merge-patch+json` is the same for a Secret's fields) and server-side apply `application/apply-patch+yaml` with `fieldManager` (required: 400), creating when absent (201), `force=true`; apply sets the labels, annotations, data/stringData keys and type it sends, and removes those the same manager applied before and no longer sends unless another manager owns them; a field another manager set to another value is 409 `Conflict` ("Apply failed with 1 conflict: conflict with \"M\" using v1: .data.k", cause `FieldManagerConflict`) unless `force=true`, which takes it over; writes by PUT/POST/merge patch take the fields they change from other managers; `metadata.managedFields` says who owns what | "Server-Side Apply" (field management, conflicts, merge strategy of maps) |
//! | `DELETE .../secrets/{name}`: 200 with a `Status` Success (`details`: name, kind `secrets`, uid); 404 if absent; `DeleteOptions.preconditions` (`resourceVersion`, `uid`) 409 on mismatch | Kubernetes API reference, Secret v1 "delete"; DeleteOptions |
//! | objects as the API returns them: `apiVersion: v1`, `kind: Secret`, `metadata` (name, namespace, uid, resourceVersion a cluster-wide counter as a string, creationTimestamp, labels, annotations, managedFields), `type` (default `Opaque`, immutable), `data` in base64 (`stringData` merged into it on write, never stored); a write that changes nothing keeps the resourceVersion | "Secrets" (Secret types, `stringData`), "API Concepts" |
//! | validation: names are DNS subdomains (<= 253, lower-case alphanumerics, `-`, `.`), label keys an optional DNS-subdomain prefix (<= 253) and a name (<= 63, alphanumerics, `-`, `_`, `.`), label values <= 63 of the same; annotation keys as label keys; data keys `[-._a-zA-Z0-9]+`; data at most 1 MiB in all; `immutable` secrets keep their data; 422 `Invalid` (`Secret "x" is invalid: metadata.name: Invalid value: ...`, `details.causes[{reason, message, field}]`) with apimachinery's messages; data values not in base64 400 (`Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte N`); `fieldValidation=Strict` refuses unknown fields (400), `Warn` (the default) answers a `Warning` header | "Object Names and IDs", "Labels and Selectors", "Annotations", "Secrets" |
//! | `GET /api/v1/namespaces/{ns}` (a Namespace, `Active`; 404 `namespaces "x" not found`); discovery for kubectl: `/version`, `/api`, `/apis`, `/api/v1` (the two resources and their modelled verbs), `/openapi/v3` and `/openapi/v3/api/v1` (the modelled operations and their query parameters: kubectl 1.27+ sees `fieldValidation` and leaves validation to the server); `/openapi/v2` is 404 (kubectl before 1.27 validates on the client with it, protobuf: use `--validate=false`) | Kubernetes API reference, Namespace v1 "read"; "API Concepts" (discovery, field validation) |
//! | errors as `Status` objects: `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message","reason","details":{"name","kind"},"code"}` with kube-apiserver's wording (`secrets "x" not found`) | "API Concepts" (responses), apimachinery `errors` |
//!
//! Not modelled: watches (`watch=true` is 400), other kinds and API groups (404), field ownership
//! beyond the labels, annotations, data and type keys above (no list/set merge, no ownership of
//! `metadata` fields other than those), JSON Patch (415), `deletecollection`, finalizers and
//! owner references (kept, not honoured: a delete removes at once), admission (no webhooks, no
//! quotas), Secret types' own rules (`kubernetes.io/tls` keys, service-account tokens), EKS
//! access entries' `kubernetesGroups` and usernames (the user is the principal's ARN; for a role
//! EKS names the assumed-role session), Kubernetes RBAC objects.
//!
//! [`KubeLog`] records every refusal (code, reason, message, and why) and every request allowed
//! (verb, resource, namespace, name, principal), for tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value, json};

/// A local Kubernetes API's settings.
#[derive(Debug, Clone, Default)]
pub struct KubeApiSettings {
    /// The EKS cluster name it is (the `x-k8s-aws-id` a token must sign).
    pub cluster: String,
    /// The cluster's region (where the strict moto's EKS holds it; a token may be signed for
    /// any region's STS endpoint, as the authenticator accepts them all).
    pub region: String,
    /// The cluster's account (where the strict moto's EKS holds it).
    pub account: String,
    /// Known keys: access key id → (secret, session token).
    pub keys: BTreeMap<String, (String, Option<String>)>,
    /// A key's principal (an IAM ARN); a key absent here is the local stack's shared key, whose
    /// principal is the role of the function the request's User-Agent names (`app/NAME`).
    pub principals: BTreeMap<String, String>,
    /// The strict moto's endpoint: a function's role (`/_okra/iam/principal`), the sessions its
    /// STS issued (`/_okra/sts/credentials`), and the access entries its EKS holds for the
    /// cluster named `cluster` in `account`/`region` (`/_okra/eks/access-entries`). `None`:
    /// none of them.
    pub iam: Option<String>,
    /// The cluster's access entries (with, when `iam` is set, those the strict moto's EKS holds
    /// for it, read at each request).
    pub access_entries: Vec<AccessEntry>,
    /// The namespaces that exist (`argocd`, `default`, `kube-system`, ...).
    pub namespaces: Vec<String>,
}

/// An EKS access entry: a principal and the access policies associated with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The IAM principal's ARN (a role or a user).
    pub principal_arn: String,
    /// Its associated access policies.
    pub policies: Vec<AccessPolicy>,
}

/// An access policy associated with an access entry, and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// `arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy` etc.
    pub policy_arn: String,
    /// The namespaces of a `namespace` scope; `None`: the `cluster` scope.
    pub namespaces: Option<Vec<String>>,
}

/// What the API refused and allowed, for tests.
#[derive(Debug, Clone, Default)]
pub struct KubeLog {
    /// Every answer that was not a success.
    pub refused: Vec<KubeRefusal>,
    /// Every authenticated request that was allowed (discovery included).
    pub allowed: Vec<KubeRequest>,
}

/// One refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRefusal {
    /// The HTTP status.
    pub code: u16,
    /// The Status `reason` (`Unauthorized`, `Forbidden`, `NotFound`, `Conflict`, ...).
    pub reason: String,
    /// The Status `message`, as the client got it.
    pub message: String,
    /// Why, where the message does not say it (the authenticator's and STS's reason for a 401).
    pub detail: String,
    /// The request's method and path.
    pub request: String,
    /// The principal, once authenticated.
    pub principal: Option<String>,
}

/// One allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRequest {
    /// `get`, `list`, `create`, `update`, `patch`, `delete` (a non-resource request: `get`).
    pub verb: String,
    /// `secrets`, `namespaces`, or the path of a non-resource request (`/api`).
    pub resource: String,
    /// The namespace (for `namespaces`, the one read).
    pub namespace: Option<String>,
    /// The object's name, if the request names one.
    pub name: Option<String>,
    /// The principal's ARN.
    pub principal: String,
}

/// A running local Kubernetes API.
#[derive(Debug)]
pub struct KubeApi {
    addr: std::net::SocketAddr,
    ca_pem: String,
    shared: Arc<Shared>,
    _server: crate::server::ServerThread,
}

#[derive(Debug)]
struct Shared {
    settings: KubeApiSettings,
    store: Mutex<Store>,
    log: Mutex<KubeLog>,
}

impl KubeApi {
    /// Starts it on 127.0.0.1 (a free port), with a CA and a serving certificate made now.
    ///
    /// # Errors
    ///
    /// The certificates, the TLS configuration or the listener could not be made.
    pub fn start(settings: KubeApiSettings) -> anyhow::Result<Self> {
        let (ca_pem, tls) = tls_config().context("the local Kubernetes API's certificates")?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("binding the local Kubernetes API")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut store = Store::default();
        for ns in &settings.namespaces {
            store.rv += 1;
            let rv = store.rv;
            store
                .namespaces
                .insert(ns.clone(), (new_uid(), rv, now_rfc3339()));
        }
        let shared = Arc::new(Shared {
            settings,
            store: Mutex::new(store),
            log: Mutex::new(KubeLog::default()),
        });
        let s = Arc::clone(&shared);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let server = crate::server::ServerThread::spawn("okra-kube-api", move |stopped| {
            crate::server::serve_https(listener, stopped, acceptor, move |req| {
                let s = Arc::clone(&s);
                async move { handle(req, &s).await }
            })
        })?;
        Ok(Self {
            addr,
            ca_pem,
            shared,
            _server: server,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) that signed the serving certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA's PEM in base64, as EKS DescribeCluster's `certificateAuthority.data` and a
    /// kubeconfig's `certificate-authority-data` carry it.
    pub fn ca_data(&self) -> String {
        aws_smithy_types::base64::encode(self.ca_pem.as_bytes())
    }

    /// What it refused and allowed so far.
    pub fn log(&self) -> KubeLog {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The secrets stored in `namespace` (by name), as a GET answers them.
    pub fn secrets(&self, namespace: &str) -> Vec<Value> {
        let store = self
            .shared
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        store
            .secrets
            .range((namespace.to_owned(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace)
            .map(|(_, s)| s.to_json(true))
            .collect()
    }

    /// A kubeconfig (YAML) for kubectl or a Kubernetes client library: this server with its CA,
    /// and `token` as the user's bearer token; cluster and context named after the cluster.
    pub fn kubeconfig(&self, token: &str) -> String {
        let name = if self.shared.settings.cluster.is_empty() {
            "okra-hub".to_owned()
        } else {
            self.shared.settings.cluster.clone()
        };
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {
                "server": self.endpoint(), "certificate-authority-data": self.ca_data()}}],
            "users": [{"name": "okra", "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": "okra"}}],
            "current-context": name,
            "preferences": {},
        });
        serde_yaml_ng::to_string(&doc).unwrap_or_default()
    }
}

// ------------------------------------------------------------------ TLS

/// A CA and a serving certificate for 127.0.0.1 / localhost: the CA's PEM and the server's TLS
/// configuration (HTTP/1.1 by ALPN).
fn tls_config() -> anyhow::Result<(String, rustls::ServerConfig)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "okra local kubernetes CA");
    ca_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    let cert = params.signed_by(&key, &ca)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca.pem(), config))
}

// ------------------------------------------------------------------ errors as Status objects

/// A refusal: the Status the client gets, and why (for the log).
#[derive(Debug)]
struct KubeError {
    code: StatusCode,
    reason: &'static str,
    message: String,
    details: Option<Box<Value>>,
    detail: String,
}

impl KubeError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            detail: String::new(),
        }
    }

    fn details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    fn unauthorized(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            ..Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn not_found(resource: &str, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{resource} \"{name}\" not found"),
        )
        .details(json!({"name": name, "kind": resource}))
    }

    fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
        .details(json!({}))
    }

    fn already_exists(name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("secrets \"{name}\" already exists"),
        )
        .details(json!({"name": name, "kind": "secrets"}))
    }

    fn conflict(name: &str, why: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on secrets \"{name}\": {why}"),
        )
        .details(json!({"name": name, "kind": "secrets"}))
    }

    fn modified(name: &str) -> Self {
        Self::conflict(
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    fn invalid(name: &str, causes: &[Cause]) -> Self {
        let errors: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if errors.len() == 1 {
            errors[0].clone()
        } else {
            format!("[{}]", errors.join(", "))
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("Secret \"{name}\" is invalid: {joined}"),
        )
        .details(json!({
            "name": name,
            "kind": "Secret",
            "causes": causes.iter().map(|c| json!({
                "reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
        }))
    }

    fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .details(json!({}))
    }

    fn status(&self) -> Value {
        let mut doc = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code.as_u16(),
        });
        if let Some(d) = &self.details {
            doc["details"] = (**d).clone();
        }
        doc
    }
}

/// A validation error (apimachinery's `field.Error`).
#[derive(Debug, Clone)]
struct Cause {
    reason: &'static str,
    message: String,
    field: String,
}

fn invalid_value(field: impl Into<String>, value: &str, msg: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {}: {msg}", go_quote(value)),
        field: field.into(),
    }
}

/// Go's `%q` of a string (what `field.Invalid` prints a string value as).
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn answer(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        "cache-control",
        http::HeaderValue::from_static("no-cache, private"),
    );
    r
}

// ------------------------------------------------------------------ the request

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Health,
    Discovery(&'static str),
    Namespace(String),
    Secrets(String),
    Secret(String, String),
    Unknown,
}

fn route_of(path: &str) -> Route {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz" | "livez" | "readyz"] => Route::Health,
        ["version"] => Route::Discovery("/version"),
        ["api"] => Route::Discovery("/api"),
        ["apis"] => Route::Discovery("/apis"),
        ["api", "v1"] => Route::Discovery("/api/v1"),
        ["openapi", "v3"] => Route::Discovery("/openapi/v3"),
        ["openapi", "v3", "api", "v1"] => Route::Discovery("/openapi/v3/api/v1"),
        ["openapi", ..] => Route::Discovery("/openapi"),
        ["api", "v1", "namespaces", ns] if !ns.is_empty() => Route::Namespace((*ns).to_owned()),
        ["api", "v1", "namespaces", ns, "secrets"] if !ns.is_empty() => {
            Route::Secrets((*ns).to_owned())
        }
        ["api", "v1", "namespaces", ns, "secrets", name] if !ns.is_empty() && !name.is_empty() => {
            Route::Secret((*ns).to_owned(), (*name).to_owned())
        }
        _ => Route::Unknown,
    }
}

/// The request's query, decoded (`+` is a space, as Go's `url.ParseQuery` reads it).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One request, read.
struct Call {
    method: http::Method,
    path: String,
    query: Vec<(String, String)>,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn dry_run(&self) -> bool {
        self.query.iter().any(|(k, v)| k == "dryRun" && v == "All")
    }

    /// The field manager: `fieldManager`, else the user agent's first word before `/`
    /// (kube-apiserver's default).
    fn manager(&self) -> String {
        if let Some(m) = self.param("fieldManager") {
            return m.to_owned();
        }
        let ua = self.header("user-agent").unwrap_or("unknown");
        ua.split('/')
            .next()
            .unwrap_or(ua)
            .chars()
            .take(128)
            .collect()
    }
}

/// The most a request body may be (kube-apiserver's `MaxRequestBodyBytes`, 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let request = format!("{} {}", parts.method, parts.uri.path());
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = KubeError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("Request entity too large: limit is {MAX_BODY}"),
            );
            return refuse(shared, &request, None, &e);
        }
    };
    let call = Call {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: query_pairs(parts.uri.query().unwrap_or("")),
        headers: parts.headers.clone(),
        body,
    };
    let route = route_of(&call.path);
    if route == Route::Health {
        let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
        r.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return r;
    }
    let (principal, entries) = match authenticate(&call, shared).await {
        Ok(p) => p,
        Err(e) => return refuse(shared, &request, None, &e),
    };
    match serve(&call, &route, &principal, &entries, shared) {
        Ok((status, doc, warnings)) => {
            let mut r = answer(status, &doc);
            for w in warnings {
                if let Ok(v) = http::HeaderValue::from_str(&format!("299 - {}", go_quote(&w))) {
                    r.headers_mut().append("warning", v);
                }
            }
            r
        }
        Err(e) => refuse(shared, &request, Some(&principal), &e),
    }
}

fn refuse(
    shared: &Shared,
    request: &str,
    principal: Option<&str>,
    e: &KubeError,
) -> Response<Full<Bytes>> {
    shared
        .log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .refused
        .push(KubeRefusal {
            code: e.code.as_u16(),
            reason: e.reason.to_owned(),
            message: e.message.clone(),
            detail: if e.detail.is_empty() {
                e.message.clone()
            } else {
                e.detail.clone()
            },
            request: request.to_owned(),
            principal: principal.map(str::to_owned),
        });
    answer(e.code, &e.status())
}

type Served = (StatusCode, Value, Vec<String>);

fn serve(
    call: &Call,
    route: &Route,
    principal: &str,
    entries: &[AccessEntry],
    shared: &Shared,
) -> Result<Served, KubeError> {
    let watch = call.param("watch").is_some_and(|w| w == "true" || w == "1");
    let (resource, namespace, name) = match route {
        Route::Discovery(path) => {
            allow(shared, "get", path, None, None, principal);
            return discovery(call, path);
        }
        Route::Namespace(ns) => ("namespaces", ns.clone(), Some(ns.clone())),
        Route::Secrets(ns) => ("secrets", ns.clone(), None),
        Route::Secret(ns, n) => ("secrets", ns.clone(), Some(n.clone())),
        Route::Health | Route::Unknown => return Err(KubeError::no_route()),
    };
    // The verb as kube-apiserver's request info derives it from the method.
    let verb = match (&call.method, name.is_some()) {
        (&http::Method::GET, true) => "get",
        (&http::Method::GET, false) if watch => "watch",
        (&http::Method::GET, false) => "list",
        (&http::Method::POST, false) => "create",
        (&http::Method::PUT, true) => "update",
        (&http::Method::PATCH, true) => "patch",
        (&http::Method::DELETE, true) => "delete",
        (&http::Method::DELETE, false) => "deletecollection",
        _ => return Err(KubeError::method_not_allowed()),
    };
    authorize(
        entries,
        principal,
        verb,
        resource,
        &namespace,
        name.as_deref(),
    )?;
    allow(
        shared,
        verb,
        resource,
        Some(&namespace),
        name.as_deref(),
        principal,
    );
    let mut store = shared.store.lock().unwrap_or_else(PoisonError::into_inner);
    match (verb, route) {
        ("get", Route::Namespace(ns)) => store.namespace(ns).map(|n| (StatusCode::OK, n, vec![])),
        ("list", Route::Secrets(ns)) => store.list(call, ns).map(|l| (StatusCode::OK, l, vec![])),
        ("watch", _) => Err(KubeError::bad_request(
            "watch is not modelled by okra's local Kubernetes API",
        )),
        ("create", Route::Secrets(ns)) => store.create(call, ns),
        ("get", Route::Secret(ns, n)) => store
            .get(ns, n)
            .map(|s| (StatusCode::OK, s.to_json(true), vec![])),
        ("update", Route::Secret(ns, n)) => store.update(call, ns, n),
        ("patch", Route::Secret(ns, n)) => store.patch(call, ns, n),
        ("delete", Route::Secret(ns, n)) => store.delete(call, ns, n),
        _ => Err(KubeError::method_not_allowed()),
    }
}

fn allow(
    shared: &Shared,
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
    name: Option<&str>,
    principal: &str,
) {
    shared
        .log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .allowed
        .push(KubeRequest {
            verb: verb.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            principal: principal.to_owned(),
        });
}

/// The version of the OpenAPI document below (changes when it does).
const OPENAPI_HASH: &str = "okra0001";

/// The OpenAPI v3 document of `api/v1` as far as modelled: the Secret and Namespace
/// operations, with the query parameters the API takes. kubectl reads it to learn that the
/// server validates fields (`fieldValidation` on PATCH of the kind), and then leaves validation
/// to the server instead of downloading schemas (Kubernetes, "API Concepts": field validation;
/// kube-openapi's OpenAPI v3 discovery).
fn openapi_v3() -> Value {
    let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}});
    let gvk = |kind: &str| json!({"group": "", "version": "v1", "kind": kind});
    let op = |id: &str, action: &str, kind: &str, params: &[&str]| {
        json!({
            "operationId": id, "tags": ["core_v1"], "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk(kind),
            "parameters": params.iter().map(|p| param(p)).collect::<Vec<_>>(),
            "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
        })
    };
    let write = ["dryRun", "fieldManager", "fieldValidation"];
    let path_param = |name: &str| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{KUBE_MINOR}.0")},
        "paths": {
            "/api/v1/namespaces/{name}": {
                "get": op("readCoreV1Namespace", "get", "Namespace", &[]),
                "parameters": [path_param("name")],
            },
            "/api/v1/namespaces/{namespace}/secrets": {
                "get": op("listCoreV1NamespacedSecret", "list", "Secret",
                          &["continue", "fieldSelector", "labelSelector", "limit", "resourceVersion"]),
                "post": op("createCoreV1NamespacedSecret", "post", "Secret", &write),
                "parameters": [path_param("namespace")],
            },
            "/api/v1/namespaces/{namespace}/secrets/{name}": {
                "get": op("readCoreV1NamespacedSecret", "get", "Secret", &[]),
                "put": op("replaceCoreV1NamespacedSecret", "put", "Secret", &write),
                "patch": op("patchCoreV1NamespacedSecret", "patch", "Secret",
                            &["dryRun", "fieldManager", "fieldValidation", "force"]),
                "delete": op("deleteCoreV1NamespacedSecret", "delete", "Secret", &["dryRun"]),
                "parameters": [path_param("name"), path_param("namespace")],
            },
        },
        "components": {"schemas": {}},
    })
}

/// The Kubernetes version the local API says it is.
const KUBE_MINOR: &str = "33";

fn discovery(call: &Call, path: &str) -> Result<Served, KubeError> {
    if call.method != http::Method::GET {
        return Err(KubeError::method_not_allowed());
    }
    let doc = match path {
        "/version" => json!({
            "major": "1", "minor": KUBE_MINOR, "gitVersion": format!("v1.{KUBE_MINOR}.0-okra-local"),
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
            "platform": "linux/amd64"}),
        "/api" => json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:443"}]}),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        "/openapi/v3" => json!({"paths": {"api/v1": {
            "serverRelativeURL": format!("/openapi/v3/api/v1?hash={OPENAPI_HASH}")}}}),
        "/openapi/v3/api/v1" => openapi_v3(),
        "/api/v1" => json!({
        "kind": "APIResourceList", "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false,
             "kind": "Namespace", "verbs": ["get"], "shortNames": ["ns"]},
            {"name": "secrets", "singularName": "secret", "namespaced": true, "kind": "Secret",
             "verbs": ["create", "delete", "get", "list", "patch", "update"]},
        ]}),
        _ => return Err(KubeError::no_route()),
    };
    Ok((StatusCode::OK, doc, vec![]))
}

// ------------------------------------------------------------------ authentication

/// aws-iam-authenticator's prefix of a v1 token.
const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The longest token the authenticator reads (`maxTokenLenBytes`).
const MAX_TOKEN: usize = 4096;
/// How long after its `X-Amz-Date` a token is accepted (`presignedURLExpiration`).
const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The query parameters a token's URL may have (`parameterWhitelist`, lower case).
const ALLOWED_PARAMS: [&str; 9] = [
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
];

/// The principal of the request's bearer token, and its access entries.
async fn authenticate(
    call: &Call,
    shared: &Shared,
) -> Result<(String, Vec<AccessEntry>), KubeError> {
    let settings = &shared.settings;
    let Some(auth) = call.header("authorization") else {
        return Err(KubeError::unauthorized(
            "no bearer token (anonymous requests are allowed only to /healthz, /livez, /readyz)",
        ));
    };
    let token = match auth.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(KubeError::unauthorized(
                "the Authorization header is not a bearer token",
            ));
        }
    };
    let url = verify_token_format(token, SystemTime::now()).map_err(KubeError::unauthorized)?;
    // What STS checks when the authenticator calls the URL with x-k8s-aws-id: this cluster.
    let sts = |code: &str, message: &str| {
        KubeError::unauthorized(format!(
            "sts getCallerIdentity failed: error from AWS (expected 200, got {code}) on {} endpoint: {message}",
            url.region
        ))
    };
    if url.param("version") != Some("2011-06-15") {
        return Err(sts(
            "400 InvalidAction",
            &format!(
                "Could not find operation GetCallerIdentity for version {}",
                url.param("version").unwrap_or("NO_VERSION_SPECIFIED")
            ),
        ));
    }
    let key = url
        .param("x-amz-credential")
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let (secret, session_token, assumed_role) = match settings.keys.get(&key) {
        Some((secret, token)) => (secret.clone(), token.clone(), None),
        None => {
            let session = match &settings.iam {
                Some(iam) => crate::iam::session(iam, &key).await,
                None => None,
            };
            let Some((secret, token, role)) = session else {
                return Err(sts(
                    "403 InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                ));
            };
            (secret, Some(token), Some(role))
        }
    };
    if url.param("x-amz-security-token") != session_token.as_deref() {
        return Err(sts(
            "403 InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ));
    }
    crate::sigv4::verify_presigned(
        "GET",
        &url.host,
        &url.params,
        &[("x-k8s-aws-id", settings.cluster.as_str())],
        &secret,
        "sts",
        &url.region,
    )
    .map_err(|(code, message)| sts(&code, &message))?;
    // Who it is.
    let principal = if let Some(role) = assumed_role {
        role
    } else if let Some(p) = settings.principals.get(&key) {
        p.clone()
    } else {
        let caller = crate::iam::caller_of(call.header("user-agent"));
        let found = match (&settings.iam, &caller) {
            (Some(iam), Some(caller)) => function_role(iam, caller).await,
            _ => None,
        };
        found.ok_or_else(|| {
            KubeError::unauthorized(format!(
                "the key {key} is the local stack's shared key and the user agent's app/NAME ({}) \
                 names no function of template.yaml the strict moto knows",
                caller.as_deref().unwrap_or("none")
            ))
        })?
    };
    let mut entries: Vec<AccessEntry> = settings
        .access_entries
        .iter()
        .filter(|e| e.principal_arn == principal)
        .cloned()
        .collect();
    if let Some(iam) = &settings.iam {
        entries.extend(
            moto_access_entries(iam, settings)
                .await
                .into_iter()
                .filter(|e| e.principal_arn == principal),
        );
    }
    if entries.is_empty() {
        return Err(KubeError::unauthorized(format!(
            "ARN is not mapped: {principal} (no access entry)"
        )));
    }
    Ok((principal, entries))
}

/// The access entries the strict moto's EKS holds for the cluster (`GET
/// /_okra/eks/access-entries`; none when it has no such cluster).
async fn moto_access_entries(endpoint: &str, settings: &KubeApiSettings) -> Vec<AccessEntry> {
    let url = format!("{endpoint}/_okra/eks/access-entries");
    let (cluster, account, region) = (
        settings.cluster.clone(),
        settings.account.clone(),
        settings.region.clone(),
    );
    let doc = tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .query("cluster", &cluster)
            .query("account", &account)
            .query("region", &region)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
    })
    .await
    .ok()
    .flatten()
    .unwrap_or(Value::Null);
    doc["accessEntries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(AccessEntry {
                principal_arn: e["principalArn"].as_str()?.to_owned(),
                policies: e["accessPolicies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let scope = &p["accessScope"];
                        Some(AccessPolicy {
                            policy_arn: p["policyArn"].as_str()?.to_owned(),
                            namespaces: (scope["type"] == "namespace").then(|| {
                                scope["namespaces"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(|n| n.as_str().map(str::to_owned))
                                    .collect()
                            }),
                        })
                    })
                    .collect(),
            })
        })
        .collect()
}

/// The role of the function `caller` names (the strict moto's `/_okra/iam/principal`).
async fn function_role(endpoint: &str, caller: &str) -> Option<String> {
    let url = format!("{endpoint}/_okra/iam/principal");
    let caller = caller.to_owned();
    let v = tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .query("caller", &caller)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
    })
    .await
    .ok()
    .flatten()?;
    v["roleArn"].as_str().map(str::to_owned)
}

/// A token's presigned URL, read and checked as aws-iam-authenticator checks it.
#[derive(Debug)]
struct TokenUrl {
    host: String,
    /// The host's region (`us-east-1` for the global endpoint).
    region: String,
    /// The names as given, decoded values, in the URL's order.
    params: Vec<(String, String)>,
}

impl TokenUrl {
    /// A parameter by its name in any case (the authenticator lower-cases them).
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// aws-iam-authenticator's `Verify` up to the STS call (its messages).
fn verify_token_format(token: &str, now: SystemTime) -> Result<TokenUrl, String> {
    if token.len() > MAX_TOKEN {
        return Err("token is too large".into());
    }
    let Some(body) = token.strip_prefix(TOKEN_PREFIX) else {
        return Err(format!("token is missing expected {TOKEN_PREFIX:?} prefix"));
    };
    let bytes = base64url_raw_decode(body)?;
    let url = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("parse {url:?}: missing protocol scheme"));
    };
    if scheme != "https" {
        return Err(format!("unexpected scheme {scheme:?} in pre-signed URL"));
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, path) = match authority_path.find('/') {
        Some(i) => (&authority_path[..i], &authority_path[i..]),
        None => (authority_path, ""),
    };
    let region = sts_region(host)
        .ok_or_else(|| format!("unexpected hostname {host:?} in pre-signed URL"))?;
    if path != "/" {
        return Err("unexpected path in pre-signed URL".into());
    }
    let raw = query_pairs(query);
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in raw {
        let lower = k.to_ascii_lowercase();
        if params.iter().any(|(n, _)| n.eq_ignore_ascii_case(&lower)) {
            return Err(format!("duplicate query parameter found: {k:?}"));
        }
        if !ALLOWED_PARAMS.contains(&lower.as_str()) {
            return Err(format!("non-whitelisted query parameter {k:?}"));
        }
        params.push((k, v));
    }
    let url = TokenUrl {
        host: host.to_owned(),
        region,
        params,
    };
    if url.param("action") != Some("GetCallerIdentity") {
        return Err("unexpected action parameter in pre-signed URL".into());
    }
    let signs_cluster = url
        .param("x-amz-signedheaders")
        .unwrap_or_default()
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("x-k8s-aws-id"));
    if !signs_cluster {
        return Err("client did not sign the x-k8s-aws-id header in the pre-signed URL".into());
    }
    let expires = url.param("x-amz-expires").unwrap_or_default();
    match expires.parse::<i64>() {
        Ok(n) if (0..=900).contains(&n) => {}
        Ok(n) => {
            return Err(format!(
                "invalid X-Amz-Expires parameter in pre-signed URL: {n}"
            ));
        }
        Err(_) => return Err("invalid X-Amz-Expires parameter in pre-signed URL: 0".into()),
    }
    let Some(date) = url.param("x-amz-date") else {
        return Err("X-Amz-Date parameter must be present in pre-signed URL".into());
    };
    let when = crate::sigv4::parse_amz_date(date).ok_or_else(|| {
        format!(
            "error parsing X-Amz-Date parameter {date} into format 20060102T150405Z: cannot parse"
        )
    })?;
    if now
        .duration_since(when)
        .is_ok_and(|age| age > TOKEN_LIFETIME)
    {
        return Err(format!(
            "X-Amz-Date parameter is expired (15 minute expiration) {}",
            humantime::format_rfc3339_seconds(when)
        ));
    }
    Ok(url)
}

/// The region of an STS host the authenticator accepts: `sts.amazonaws.com` (the global
/// endpoint, signed for us-east-1) or `sts.REGION.amazonaws.com` (`.amazonaws.com.cn` in China).
fn sts_region(host: &str) -> Option<String> {
    if host == "sts.amazonaws.com" {
        return Some("us-east-1".into());
    }
    let rest = host.strip_prefix("sts.")?;
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
    let parts: Vec<&str> = region.split('-').collect();
    let valid = parts.len() >= 3
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && parts[..parts.len() - 1]
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
    valid.then(|| region.to_owned())
}

/// Go's `base64.RawURLEncoding.DecodeString`: the URL alphabet, no padding.
fn base64url_raw_decode(s: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'-' => Some(62),
            b'_' => Some(63),
            _ => None,
        }
    };
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 {
        return Err(format!(
            "illegal base64 data at input byte {}",
            bytes.len() - 1
        ));
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for (chunk_index, chunk) in bytes.chunks(4).enumerate() {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = value(c).ok_or_else(|| {
                format!("illegal base64 data at input byte {}", chunk_index * 4 + i)
            })?;
            acc |= v << (18 - 6 * i);
        }
        let full = acc.to_be_bytes();
        out.extend_from_slice(&full[1..chunk.len()]);
    }
    Ok(out)
}

// ------------------------------------------------------------------ authorization

/// What an access policy lets a principal do to `resource` (EKS user guide, "Review access
/// policy permissions": each policy is a Kubernetes user-facing role).
fn policy_allows(policy_arn: &str, verb: &str, resource: &str) -> bool {
    let name = policy_arn.rsplit('/').next().unwrap_or_default();
    let read = matches!(verb, "get" | "list" | "watch");
    match (name, resource) {
        ("AmazonEKSClusterAdminPolicy" | "AmazonEKSAdminPolicy", _) => true,
        ("AmazonEKSEditPolicy", "secrets") => true,
        ("AmazonEKSAdminViewPolicy", _) => read,
        ("AmazonEKSEditPolicy" | "AmazonEKSViewPolicy", "namespaces") => read,
        _ => false,
    }
}

fn authorize(
    entries: &[AccessEntry],
    principal: &str,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: Option<&str>,
) -> Result<(), KubeError> {
    let allowed = entries
        .iter()
        .filter(|e| e.principal_arn == principal)
        .flat_map(|e| &e.policies)
        .any(|p| {
            let in_scope = p
                .namespaces
                .as_ref()
                .is_none_or(|nss| nss.iter().any(|n| n == namespace));
            in_scope && policy_allows(&p.policy_arn, verb, resource)
        });
    if allowed {
        return Ok(());
    }
    let what = match name {
        Some(n) => format!("{resource} \"{n}\""),
        None => resource.to_owned(),
    };
    let mut details = json!({"kind": resource});
    if let Some(n) = name {
        details["name"] = json!(n);
    }
    Err(KubeError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "{what} is forbidden: User \"{principal}\" cannot {verb} resource \"{resource}\" in API group \"\" in the namespace \"{namespace}\""
        ),
    )
    .details(details))
}

// ------------------------------------------------------------------ validation

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const CONFIG_KEY_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
/// The most data a Secret may hold (`MaxSecretSize`, 1 MiB).
const MAX_SECRET_SIZE: usize = 1024 * 1024;
/// The most annotations an object may carry, keys and values (`TotalAnnotationSizeLimitB`).
const MAX_ANNOTATIONS: usize = 256 * 1024;

/// apimachinery's `RegexError`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let eg: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        eg.join(" or ")
    )
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `IsDNS1123Subdomain`.
fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !s.split('.').all(is_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `IsQualifiedName` (label and annotation keys).
fn qualified_name_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`.
fn label_value_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !v.is_empty() && !is_qualified_name_part(v) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsConfigMapKey` (a Secret's data keys).
fn config_key_errors(k: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if k.len() > 253 {
        errs.push(max_len_error(253));
    }
    if k.is_empty()
        || !k
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        errs.push(regex_error(
            CONFIG_KEY_MSG,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if k == "." {
        errs.push("must not be '.'".to_owned());
    } else if k == ".." {
        errs.push("must not be '..'".to_owned());
    } else if k.starts_with("..") {
        errs.push("must not start with '..'".to_owned());
    }
    errs
}

/// `ValidateSecret` (and `ValidateSecretUpdate` against `old`).
fn validate(s: &Secret, old: Option<&Secret>) -> Vec<Cause> {
    let mut causes = Vec::new();
    for m in dns1123_subdomain_errors(&s.name) {
        causes.push(invalid_value("metadata.name", &s.name, &m));
    }
    for (k, v) in &s.labels {
        for m in qualified_name_errors(k) {
            causes.push(invalid_value("metadata.labels", k, &m));
        }
        for m in label_value_errors(v) {
            causes.push(invalid_value("metadata.labels", v, &m));
        }
    }
    let mut annotations = 0;
    for (k, v) in &s.annotations {
        for m in qualified_name_errors(&k.to_ascii_lowercase()) {
            causes.push(invalid_value("metadata.annotations", k, &m));
        }
        annotations += k.len() + v.len();
    }
    if annotations > MAX_ANNOTATIONS {
        causes.push(Cause {
            reason: "FieldValueTooLong",
            message: format!("Too long: must have at most {MAX_ANNOTATIONS} bytes"),
            field: "metadata.annotations".into(),
        });
    }
    let mut size = 0;
    for (k, v) in &s.data {
        for m in config_key_errors(k) {
            causes.push(invalid_value(format!("data[{k}]"), k, &m));
        }
        size += decoded_len(v);
    }
    if size > MAX_SECRET_SIZE {
        causes.push(Cause {
            reason: "FieldValueTooLong",
            message: format!("Too long: must have at most {MAX_SECRET_SIZE} bytes"),
            field: "data".into(),
        });
    }
    if let Some(old) = old {
        if old.type_ != s.type_ {
            causes.push(invalid_value("type", &s.type_, "field is immutable"));
        }
        if old.immutable == Some(true) {
            if s.data != old.data {
                causes.push(Cause {
                    reason: "FieldValueForbidden",
                    message: "Forbidden: field is immutable when `immutable` is set".into(),
                    field: "data".into(),
                });
            }
            if s.immutable != Some(true) {
                causes.push(Cause {
                    reason: "FieldValueForbidden",
                    message: "Forbidden: field is immutable when `immutable` is set".into(),
                    field: "immutable".into(),
                });
            }
        }
    }
    causes
}

fn decoded_len(b64: &str) -> usize {
    let pad = b64.bytes().rev().take_while(|c| *c == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(pad)
}

/// Go's `base64.StdEncoding` check of a data value: the index of the first bad byte.
fn base64_std_error(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let valid = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let body = b.iter().rposition(|c| *c != b'=').map_or(0, |i| i + 1);
    let pad = b.len() - body;
    if let Some(i) = b[..body].iter().position(|c| !valid(*c)) {
        return Some(i);
    }
    if pad > 2 || !b.len().is_multiple_of(4) {
        return Some(b.len() - b.len() % 4);
    }
    None
}

// ------------------------------------------------------------------ selectors

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    End,
    ClosePar,
    Comma,
    Not,
    DoubleEq,
    Eq,
    Gt,
    Ident,
    In,
    Lt,
    NotEq,
    NotIn,
    OpenPar,
}

fn literal_token(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosePar,
        "," => Tok::Comma,
        "!" => Tok::Not,
        "==" => Tok::DoubleEq,
        "=" => Tok::Eq,
        ">" => Tok::Gt,
        "in" => Tok::In,
        "<" => Tok::Lt,
        "!=" => Tok::NotEq,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

/// The label selector lexer of apimachinery's `labels.Parse`.
fn lex(s: &str) -> Vec<(Tok, String)> {
    let b = s.as_bytes();
    let special = |c: u8| matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<');
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && space(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            out.push((Tok::End, String::new()));
            return out;
        }
        if special(b[i]) {
            let mut last: Option<(Tok, usize)> = None;
            let mut j = i;
            while j < b.len() && special(b[j]) {
                let candidate = &s[i..=j];
                if let Some(t) = literal_token(candidate) {
                    last = Some((t, j + 1));
                } else if last.is_some() {
                    break;
                }
                j += 1;
            }
            match last {
                Some((t, end)) => {
                    out.push((t, s[i..end].to_owned()));
                    i = end;
                }
                None => {
                    out.push((
                        Tok::Error,
                        format!("error expected: keyword found '{}'", &s[i..j]),
                    ));
                    i = j;
                }
            }
        } else {
            let start = i;
            while i < b.len() && !special(b[i]) && !space(b[i]) {
                i += 1;
            }
            let word = &s[start..i];
            out.push((literal_token(word).unwrap_or(Tok::Ident), word.to_owned()));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Eq,
    NotEq,
    Exists,
    NotExists,
    Gt,
    Lt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        let int = |s: &str| s.parse::<i64>().ok();
        match self.op {
            Op::In | Op::Eq => v.is_some_and(|v| self.values.contains(v)),
            Op::NotIn | Op::NotEq => v.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => v.is_some(),
            Op::NotExists => v.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(have), Some(want)) = (
                    v.and_then(|v| int(v)),
                    self.values.first().and_then(|w| int(w)),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// apimachinery's `labels.Parse` (its grammar and messages).
fn parse_label_selector(s: &str) -> Result<Vec<Requirement>, String> {
    let items = lex(s);
    let mut p = 0usize;
    // In a value's place `in` and `notin` are identifiers.
    let at = |p: usize, values: bool| -> (Tok, String) {
        let (t, l) = items.get(p).cloned().unwrap_or((Tok::End, String::new()));
        match t {
            Tok::In | Tok::NotIn if values => (Tok::Ident, l),
            _ => (t, l),
        }
    };
    let mut out = Vec::new();
    loop {
        let (t, lit) = at(p, true);
        match t {
            Tok::Ident | Tok::Not => {
                let r = parse_requirement(&at, &mut p)
                    .map_err(|e| format!("unable to parse requirement: {e}"))?;
                out.push(r);
                let (t, l) = at(p, true);
                p += 1;
                match t {
                    Tok::End => break,
                    Tok::Comma => {
                        let (t2, l2) = at(p, true);
                        if t2 != Tok::Ident && t2 != Tok::Not {
                            return Err(format!("found '{l2}', expected: identifier after ','"));
                        }
                    }
                    _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                }
            }
            Tok::End => break,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: !, identifier, or 'end of string'"
                ));
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn parse_requirement(
    at: &dyn Fn(usize, bool) -> (Tok, String),
    p: &mut usize,
) -> Result<Requirement, String> {
    let (mut t, mut key) = at(*p, true);
    *p += 1;
    let mut op = None;
    if t == Tok::Not {
        op = Some(Op::NotExists);
        (t, key) = at(*p, true);
        *p += 1;
    }
    if t != Tok::Ident {
        return Err(format!("found '{key}', expected: identifier"));
    }
    let errs = qualified_name_errors(&key);
    if !errs.is_empty() {
        return Err(format!(
            "key: Invalid value: {}: {}",
            go_quote(&key),
            errs.join("; ")
        ));
    }
    let (next, _) = at(*p, true);
    if op.is_some() || next == Tok::End || next == Tok::Comma {
        return Ok(Requirement {
            key,
            op: op.unwrap_or(Op::Exists),
            values: vec![],
        });
    }
    let (t, lit) = at(*p, false);
    *p += 1;
    let op = match t {
        Tok::In => Op::In,
        Tok::NotIn => Op::NotIn,
        Tok::Eq | Tok::DoubleEq => Op::Eq,
        Tok::NotEq => Op::NotEq,
        Tok::Gt => Op::Gt,
        Tok::Lt => Op::Lt,
        _ => {
            return Err(format!(
                "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
            ));
        }
    };
    let mut values: Vec<String> = Vec::new();
    if matches!(op, Op::In | Op::NotIn) {
        let (t, lit) = at(*p, true);
        *p += 1;
        if t != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (t, lit) = at(*p, true);
        match t {
            Tok::ClosePar => {
                *p += 1;
                values.push(String::new());
            }
            Tok::Ident | Tok::Comma => {
                loop {
                    let (t, lit) = at(*p, true);
                    *p += 1;
                    match t {
                        Tok::Ident => {
                            values.push(lit);
                            let (t2, l2) = at(*p, true);
                            match t2 {
                                Tok::Comma => {}
                                Tok::ClosePar => break,
                                _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                            }
                        }
                        Tok::Comma => {
                            if values.is_empty() {
                                values.push(String::new());
                            }
                            let (t2, _) = at(*p, true);
                            if t2 == Tok::ClosePar || t2 == Tok::Comma {
                                values.push(String::new());
                            }
                            if t2 == Tok::ClosePar {
                                break;
                            }
                        }
                        _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
                    }
                }
                let (t, _) = at(*p, true);
                *p += 1;
                if t != Tok::ClosePar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
            }
            _ => return Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    } else {
        let (t, lit) = at(*p, true);
        if t == Tok::End || t == Tok::Comma {
            values.push(String::new());
        } else {
            *p += 1;
            if t != Tok::Ident {
                return Err(format!("found '{lit}', expected: identifier"));
            }
            values.push(lit);
        }
    }
    values.sort();
    values.dedup();
    if matches!(op, Op::Gt | Op::Lt)
        && let Some(v) = values.iter().find(|v| v.parse::<i64>().is_err())
    {
        return Err(format!(
            "values[0]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
            go_quote(v)
        ));
    }
    for (i, v) in values.iter().enumerate() {
        let errs = label_value_errors(v);
        if !errs.is_empty() {
            return Err(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                go_quote(v),
                errs.join("; ")
            ));
        }
    }
    Ok(Requirement { key, op, values })
}

/// A field selector term: field, wanted value, equal (`=`, `==`) or not (`!=`).
type FieldTerm = (String, String, bool);

/// apimachinery's `fields.ParseSelector` over a Secret's selectable fields.
fn parse_field_selector(s: &str) -> Result<Vec<FieldTerm>, String> {
    let mut out = Vec::new();
    for term in s.split(',').filter(|t| !t.is_empty()) {
        let (field, value, eq) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = term.split_once("==") {
            (f, v, true)
        } else if let Some((f, v)) = term.split_once('=') {
            (f, v, true)
        } else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{term}'"
            ));
        };
        if !matches!(field, "metadata.name" | "metadata.namespace" | "type") {
            return Err(format!("field label not supported: {field}"));
        }
        out.push((field.to_owned(), value.to_owned(), eq));
    }
    Ok(out)
}

// ------------------------------------------------------------------ objects

/// A field one manager may own (server-side apply, at the granularity modelled).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Label(String),
    Annotation(String),
    Data(String),
    Type,
    Immutable,
}

impl Field {
    /// Its path as structured-merge-diff prints it (`.data.key`).
    fn path(&self) -> String {
        match self {
            Self::Label(k) => format!(".metadata.labels.{k}"),
            Self::Annotation(k) => format!(".metadata.annotations.{k}"),
            Self::Data(k) => format!(".data.{k}"),
            Self::Type => ".type".into(),
            Self::Immutable => ".immutable".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Manager {
    name: String,
    /// `Apply` or `Update`.
    operation: &'static str,
    time: String,
    fields: BTreeSet<Field>,
}

/// A stored Secret.
#[derive(Debug, Clone, PartialEq)]
struct Secret {
    name: String,
    namespace: String,
    uid: String,
    rv: u64,
    created: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    /// Base64 values.
    data: BTreeMap<String, String>,
    type_: String,
    immutable: Option<bool>,
    owner_references: Option<Value>,
    finalizers: Option<Value>,
    managers: Vec<Manager>,
}

impl Secret {
    fn value(&self, f: &Field) -> Option<String> {
        match f {
            Field::Label(k) => self.labels.get(k).cloned(),
            Field::Annotation(k) => self.annotations.get(k).cloned(),
            Field::Data(k) => self.data.get(k).cloned(),
            Field::Type => Some(self.type_.clone()),
            Field::Immutable => self.immutable.map(|b| b.to_string()),
        }
    }

    fn fields(&self) -> BTreeSet<Field> {
        let mut out = BTreeSet::new();
        out.extend(self.labels.keys().cloned().map(Field::Label));
        out.extend(self.annotations.keys().cloned().map(Field::Annotation));
        out.extend(self.data.keys().cloned().map(Field::Data));
        out.insert(Field::Type);
        if self.immutable.is_some() {
            out.insert(Field::Immutable);
        }
        out
    }

    /// The content a write may change (a write that leaves it equal changes nothing).
    fn same_content(&self, other: &Self) -> bool {
        self.labels == other.labels
            && self.annotations == other.annotations
            && self.data == other.data
            && self.type_ == other.type_
            && self.immutable == other.immutable
            && self.owner_references == other.owner_references
            && self.finalizers == other.finalizers
            && self
                .managers
                .iter()
                .map(|m| (&m.name, m.operation, &m.fields))
                .eq(other
                    .managers
                    .iter()
                    .map(|m| (&m.name, m.operation, &m.fields)))
    }

    fn to_json(&self, with_type: bool) -> Value {
        let mut meta = json!({
            "name": self.name, "namespace": self.namespace, "uid": self.uid,
            "resourceVersion": self.rv.to_string(), "creationTimestamp": self.created,
        });
        if !self.labels.is_empty() {
            meta["labels"] = json!(self.labels);
        }
        if !self.annotations.is_empty() {
            meta["annotations"] = json!(self.annotations);
        }
        if let Some(o) = &self.owner_references {
            meta["ownerReferences"] = o.clone();
        }
        if let Some(f) = &self.finalizers {
            meta["finalizers"] = f.clone();
        }
        if !self.managers.is_empty() {
            meta["managedFields"] = Value::Array(self.managers.iter().map(managed_entry).collect());
        }
        let mut doc = json!({"metadata": meta, "type": self.type_});
        if with_type {
            doc["apiVersion"] = json!("v1");
            doc["kind"] = json!("Secret");
        }
        if !self.data.is_empty() {
            doc["data"] = json!(self.data);
        }
        if let Some(i) = self.immutable {
            doc["immutable"] = json!(i);
        }
        doc
    }

    /// Gives `manager` (an Update) the fields this write changed, taken from the others.
    fn record_update(&mut self, old: Option<&Secret>, manager: &str, now: &str) {
        let new_fields = self.fields();
        let changed: BTreeSet<Field> = match old {
            None => new_fields.clone(),
            Some(old) => {
                let mut c: BTreeSet<Field> = new_fields
                    .iter()
                    .filter(|f| old.value(f) != self.value(f))
                    .cloned()
                    .collect();
                c.extend(old.fields().difference(&new_fields).cloned());
                c
            }
        };
        if changed.is_empty() {
            return;
        }
        for m in &mut self.managers {
            m.fields
                .retain(|f| !changed.contains(f) && new_fields.contains(f));
        }
        let mine: BTreeSet<Field> = changed.intersection(&new_fields).cloned().collect();
        match self
            .managers
            .iter_mut()
            .find(|m| m.name == manager && m.operation == "Update")
        {
            Some(m) => {
                m.fields.extend(mine);
                m.time = now.to_owned();
            }
            None => self.managers.push(Manager {
                name: manager.to_owned(),
                operation: "Update",
                time: now.to_owned(),
                fields: mine,
            }),
        }
        self.managers.retain(|m| !m.fields.is_empty());
    }
}

fn managed_entry(m: &Manager) -> Value {
    let mut fields = Map::new();
    let mut meta = Map::new();
    for f in &m.fields {
        let (group, key) = match f {
            Field::Label(k) => ("f:labels", k),
            Field::Annotation(k) => ("f:annotations", k),
            Field::Data(k) => {
                fields
                    .entry("f:data")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|o| o.insert(format!("f:{k}"), json!({})));
                continue;
            }
            Field::Type => {
                fields.insert("f:type".into(), json!({}));
                continue;
            }
            Field::Immutable => {
                fields.insert("f:immutable".into(), json!({}));
                continue;
            }
        };
        meta.entry(group)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|o| o.insert(format!("f:{key}"), json!({})));
    }
    if !meta.is_empty() {
        fields.insert("f:metadata".into(), Value::Object(meta));
    }
    json!({"manager": m.name, "operation": m.operation, "apiVersion": "v1", "time": m.time,
           "fieldsType": "FieldsV1", "fieldsV1": fields})
}

/// A Secret as a request gives it.
#[derive(Debug, Default)]
struct Input {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    resource_version: Option<String>,
    uid: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    /// `data` with `stringData` merged in (base64).
    data: Option<BTreeMap<String, String>>,
    type_: Option<String>,
    immutable: Option<bool>,
    owner_references: Option<Value>,
    finalizers: Option<Value>,
}

const TOP_FIELDS: [&str; 7] = [
    "apiVersion",
    "kind",
    "metadata",
    "data",
    "stringData",
    "type",
    "immutable",
];
const META_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

fn cannot_handle(why: impl std::fmt::Display) -> KubeError {
    KubeError::bad_request(format!(
        "Secret in version \"v1\" cannot be handled as a Secret: {why}"
    ))
}

fn string_map(v: &Value, what: &str) -> Result<Option<BTreeMap<String, String>>, KubeError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Null => Ok((k.clone(), String::new())),
                other => Err(cannot_handle(format!(
                    "json: cannot unmarshal {} into Go struct field {what} of type string",
                    json_kind(other)
                ))),
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Some),
        other => Err(cannot_handle(format!(
            "json: cannot unmarshal {} into Go struct field {what} of type map[string]string",
            json_kind(other)
        ))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// How unknown fields are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

fn field_validation(call: &Call) -> Result<FieldValidation, KubeError> {
    match call.param("fieldValidation") {
        None | Some("" | "Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(KubeError::bad_request(format!(
            "fieldValidation parameter unsupported: {other}"
        ))),
    }
}

/// Reads a Secret document: its fields, and the unknown ones as warnings (an error when
/// `Strict`).
fn read_input(doc: &Value, validation: FieldValidation) -> Result<(Input, Vec<String>), KubeError> {
    let Value::Object(top) = doc else {
        return Err(cannot_handle(format!(
            "json: cannot unmarshal {} into Go value of type v1.Secret",
            json_kind(doc)
        )));
    };
    match top.get("apiVersion") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) if v == "v1" => {}
        Some(v) => {
            return Err(KubeError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version (v1)",
                v.as_str().unwrap_or_default()
            )));
        }
    }
    match top.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(k)) if k == "Secret" => {}
        Some(k) => {
            return Err(KubeError::bad_request(format!(
                "the kind in the data ({}) does not match the expected kind (Secret)",
                k.as_str().unwrap_or_default()
            )));
        }
    }
    let mut unknown: Vec<String> = top
        .keys()
        .filter(|k| !TOP_FIELDS.contains(&k.as_str()))
        .map(|k| format!("unknown field \"{k}\""))
        .collect();
    let meta = top.get("metadata").cloned().unwrap_or(Value::Null);
    if !(meta.is_object() || meta.is_null()) {
        return Err(cannot_handle(format!(
            "json: cannot unmarshal {} into Go struct field Secret.metadata of type v1.ObjectMeta",
            json_kind(&meta)
        )));
    }
    if let Value::Object(m) = &meta {
        unknown.extend(
            m.keys()
                .filter(|k| !META_FIELDS.contains(&k.as_str()))
                .map(|k| format!("unknown field \"metadata.{k}\"")),
        );
    }
    if validation == FieldValidation::Strict && !unknown.is_empty() {
        return Err(KubeError::bad_request(format!(
            "strict decoding error: {}",
            unknown.join(", ")
        )));
    }
    let warnings = if validation == FieldValidation::Warn {
        unknown
    } else {
        vec![]
    };
    let text = |v: &Value, what: &str| -> Result<Option<String>, KubeError> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => Err(cannot_handle(format!(
                "json: cannot unmarshal {} into Go struct field {what} of type string",
                json_kind(other)
            ))),
        }
    };
    let mut data = string_map(top.get("data").unwrap_or(&Value::Null), "Secret.data")?;
    if let Some(d) = &data {
        for v in d.values() {
            if let Some(i) = base64_std_error(v) {
                return Err(cannot_handle(format!(
                    "illegal base64 data at input byte {i}"
                )));
            }
        }
    }
    if let Some(sd) = string_map(
        top.get("stringData").unwrap_or(&Value::Null),
        "Secret.stringData",
    )? {
        let d = data.get_or_insert_with(BTreeMap::new);
        for (k, v) in sd {
            d.insert(k, aws_smithy_types::base64::encode(v.as_bytes()));
        }
    }
    let immutable = match top.get("immutable") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(cannot_handle(format!(
                "json: cannot unmarshal {} into Go struct field Secret.immutable of type bool",
                json_kind(other)
            )));
        }
    };
    let input = Input {
        name: text(&meta["name"], "ObjectMeta.metadata.name")?,
        generate_name: text(&meta["generateName"], "ObjectMeta.metadata.generateName")?,
        namespace: text(&meta["namespace"], "ObjectMeta.metadata.namespace")?,
        resource_version: text(
            &meta["resourceVersion"],
            "ObjectMeta.metadata.resourceVersion",
        )?
        .filter(|v| !v.is_empty()),
        uid: text(&meta["uid"], "ObjectMeta.metadata.uid")?.filter(|v| !v.is_empty()),
        labels: string_map(&meta["labels"], "ObjectMeta.metadata.labels")?,
        annotations: string_map(&meta["annotations"], "ObjectMeta.metadata.annotations")?,
        data,
        type_: text(top.get("type").unwrap_or(&Value::Null), "Secret.type")?
            .filter(|t| !t.is_empty()),
        immutable,
        owner_references: meta
            .get("ownerReferences")
            .filter(|v| !v.is_null())
            .cloned(),
        finalizers: meta.get("finalizers").filter(|v| !v.is_null()).cloned(),
    };
    Ok((input, warnings))
}

/// The request body as a JSON value (JSON, or YAML for `application/yaml` and apply).
fn body_doc(call: &Call, yaml: bool) -> Result<Value, KubeError> {
    if yaml {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&call.body)
            .map_err(|e| KubeError::bad_request(format!("error decoding YAML: {e}")))?;
        return serde_json::to_value(v)
            .map_err(|e| KubeError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(&call.body).map_err(|e| {
        KubeError::bad_request(format!(
            "Secret in version \"v1\" cannot be handled as a Secret: {e}"
        ))
    })
}

fn content_type(call: &Call) -> String {
    call.header("content-type")
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

// ------------------------------------------------------------------ the store

#[derive(Debug, Default)]
struct Store {
    /// The cluster-wide resource version counter.
    rv: u64,
    /// Namespace → (uid, resourceVersion, creationTimestamp).
    namespaces: BTreeMap<String, (String, u64, String)>,
    secrets: BTreeMap<(String, String), Secret>,
}

impl Store {
    fn namespace(&self, ns: &str) -> Result<Value, KubeError> {
        let (uid, rv, created) = self
            .namespaces
            .get(ns)
            .ok_or_else(|| KubeError::not_found("namespaces", ns))?;
        Ok(json!({
            "kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": ns, "uid": uid, "resourceVersion": rv.to_string(),
                         "creationTimestamp": created,
                         "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }))
    }

    fn require_namespace(&self, ns: &str) -> Result<(), KubeError> {
        if self.namespaces.contains_key(ns) {
            Ok(())
        } else {
            Err(KubeError::not_found("namespaces", ns))
        }
    }

    fn get(&self, ns: &str, name: &str) -> Result<&Secret, KubeError> {
        self.secrets
            .get(&(ns.to_owned(), name.to_owned()))
            .ok_or_else(|| KubeError::not_found("secrets", name))
    }

    fn list(&self, call: &Call, ns: &str) -> Result<Value, KubeError> {
        let labels = parse_label_selector(call.param("labelSelector").unwrap_or_default())
            .map_err(KubeError::bad_request)?;
        let fields = parse_field_selector(call.param("fieldSelector").unwrap_or_default())
            .map_err(KubeError::bad_request)?;
        let limit = match call.param("limit") {
            None | Some("") => None,
            Some(l) => Some(
                l.parse::<usize>()
                    .map_err(|_| KubeError::bad_request(format!("invalid limit: {l:?}")))?,
            ),
        };
        let after = match call.param("continue") {
            None | Some("") => None,
            Some(c) => Some(
                aws_smithy_types::base64::decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| KubeError::bad_request("continue key is not valid"))?,
            ),
        };
        let matching: Vec<&Secret> = self
            .secrets
            .range((ns.to_owned(), String::new())..)
            .take_while(|((n, _), _)| n == ns)
            .map(|(_, s)| s)
            .filter(|s| after.as_ref().is_none_or(|a| s.name > *a))
            .filter(|s| labels.iter().all(|r| r.matches(&s.labels)))
            .filter(|s| {
                fields.iter().all(|(f, v, eq)| {
                    let have = match f.as_str() {
                        "metadata.name" => &s.name,
                        "metadata.namespace" => &s.namespace,
                        _ => &s.type_,
                    };
                    (have == v) == *eq
                })
            })
            .collect();
        let take = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let items: Vec<Value> = matching
            .iter()
            .take(take)
            .map(|s| s.to_json(false))
            .collect();
        let mut meta = json!({"resourceVersion": self.rv.to_string()});
        if matching.len() > take
            && let Some(last) = matching.get(take - 1)
        {
            meta["continue"] = json!(aws_smithy_types::base64::encode(last.name.as_bytes()));
            meta["remainingItemCount"] = json!(matching.len() - take);
        }
        Ok(json!({"kind": "SecretList", "apiVersion": "v1", "metadata": meta, "items": items}))
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn create(&mut self, call: &Call, ns: &str) -> Result<Served, KubeError> {
        let yaml = content_type(call).contains("yaml");
        let doc = body_doc(call, yaml)?;
        let (input, warnings) = read_input(&doc, field_validation(call)?)?;
        if input.namespace.as_deref().is_some_and(|n| n != ns) {
            return Err(KubeError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let name = match (&input.name, &input.generate_name) {
            (Some(n), _) if !n.is_empty() => n.clone(),
            (_, Some(g)) if !g.is_empty() => format!("{g}{}", random_suffix()),
            _ => {
                return Err(KubeError::invalid(
                    "",
                    &[Cause {
                        reason: "FieldValueRequired",
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
        };
        if input.resource_version.is_some() {
            return Err(KubeError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        self.require_namespace(ns)?;
        let now = now_rfc3339();
        let mut secret = Secret {
            name: name.clone(),
            namespace: ns.to_owned(),
            uid: new_uid(),
            rv: 0,
            created: now.clone(),
            labels: input.labels.unwrap_or_default(),
            annotations: input.annotations.unwrap_or_default(),
            data: input.data.unwrap_or_default(),
            type_: input.type_.unwrap_or_else(|| "Opaque".into()),
            immutable: input.immutable,
            owner_references: input.owner_references,
            finalizers: input.finalizers,
            managers: vec![],
        };
        let causes = validate(&secret, None);
        if !causes.is_empty() {
            return Err(KubeError::invalid(&name, &causes));
        }
        let key = (ns.to_owned(), name.clone());
        if self.secrets.contains_key(&key) {
            return Err(KubeError::already_exists(&name));
        }
        secret.record_update(None, &call.manager(), &now);
        if !call.dry_run() {
            secret.rv = self.bump();
            self.secrets.insert(key, secret.clone());
        }
        Ok((StatusCode::CREATED, secret.to_json(true), warnings))
    }

    /// Stores `new` over `old` (an update): validation, no-op detection, a new resourceVersion.
    fn replace(
        &mut self,
        call: &Call,
        old: &Secret,
        mut new: Secret,
        warnings: Vec<String>,
    ) -> Result<Served, KubeError> {
        let causes = validate(&new, Some(old));
        if !causes.is_empty() {
            return Err(KubeError::invalid(&new.name, &causes));
        }
        if new.same_content(old) {
            return Ok((StatusCode::OK, old.to_json(true), warnings));
        }
        if !call.dry_run() {
            new.rv = self.bump();
            self.secrets
                .insert((new.namespace.clone(), new.name.clone()), new.clone());
        }
        Ok((StatusCode::OK, new.to_json(true), warnings))
    }

    fn preconditions(old: &Secret, input: &Input) -> Result<(), KubeError> {
        if let Some(uid) = &input.uid
            && *uid != old.uid
        {
            return Err(KubeError::conflict(
                &old.name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    old.uid
                ),
            ));
        }
        if let Some(rv) = &input.resource_version
            && *rv != old.rv.to_string()
        {
            return Err(KubeError::modified(&old.name));
        }
        Ok(())
    }

    fn update(&mut self, call: &Call, ns: &str, name: &str) -> Result<Served, KubeError> {
        let yaml = content_type(call).contains("yaml");
        let doc = body_doc(call, yaml)?;
        let (input, warnings) = read_input(&doc, field_validation(call)?)?;
        if input.namespace.as_deref().is_some_and(|n| n != ns) {
            return Err(KubeError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if let Some(n) = input.name.as_deref().filter(|n| *n != name) {
            return Err(KubeError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let old = self.get(ns, name)?.clone();
        Self::preconditions(&old, &input)?;
        let now = now_rfc3339();
        let mut new = Secret {
            labels: input.labels.unwrap_or_default(),
            annotations: input.annotations.unwrap_or_default(),
            data: input.data.unwrap_or_default(),
            type_: input.type_.unwrap_or_else(|| old.type_.clone()),
            immutable: input.immutable,
            owner_references: input.owner_references,
            finalizers: input.finalizers,
            ..old.clone()
        };
        new.record_update(Some(&old), &call.manager(), &now);
        self.replace(call, &old, new, warnings)
    }

    fn patch(&mut self, call: &Call, ns: &str, name: &str) -> Result<Served, KubeError> {
        match content_type(call).as_str() {
            "application/apply-patch+yaml" => self.apply(call, ns, name),
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                self.merge_patch(call, ns, name)
            }
            "application/json-patch+json" => Err(KubeError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "okra's local Kubernetes API does not model JSON Patch (application/json-patch+json)",
            )),
            other => Err(KubeError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json ({other})"
                ),
            )),
        }
    }

    fn merge_patch(&mut self, call: &Call, ns: &str, name: &str) -> Result<Served, KubeError> {
        let patch: Value = serde_json::from_slice(&call.body)
            .map_err(|e| KubeError::bad_request(format!("error decoding patch: {e}")))?;
        if !patch.is_object() {
            return Err(KubeError::bad_request(
                "the patch is not a JSON object (RFC 7386 merge patch of a Secret)",
            ));
        }
        let old = self.get(ns, name)?.clone();
        let mut doc = old.to_json(true);
        if let Some(m) = doc["metadata"].as_object_mut() {
            m.remove("managedFields");
            m.remove("resourceVersion");
            m.remove("uid");
        }
        merge(&mut doc, &patch);
        let (input, warnings) = read_input(&doc, field_validation(call)?)?;
        if input.name.as_deref() != Some(name) || input.namespace.as_deref() != Some(ns) {
            return Err(KubeError::bad_request(
                "the patch changes the object's name or namespace",
            ));
        }
        Self::preconditions(&old, &input)?;
        let now = now_rfc3339();
        let mut new = Secret {
            labels: input.labels.unwrap_or_default(),
            annotations: input.annotations.unwrap_or_default(),
            data: input.data.unwrap_or_default(),
            type_: input.type_.unwrap_or_else(|| "Opaque".into()),
            immutable: input.immutable,
            owner_references: input.owner_references,
            finalizers: input.finalizers,
            ..old.clone()
        };
        new.record_update(Some(&old), &call.manager(), &now);
        self.replace(call, &old, new, warnings)
    }

    /// Server-side apply.
    fn apply(&mut self, call: &Call, ns: &str, name: &str) -> Result<Served, KubeError> {
        let Some(manager) = call.param("fieldManager").filter(|m| !m.is_empty()) else {
            return Err(KubeError::bad_request(
                "fieldManager is required for apply requests",
            ));
        };
        let force = call.param("force").is_some_and(|f| f == "true");
        let doc = body_doc(call, true)?;
        if doc.get("apiVersion").and_then(Value::as_str) != Some("v1")
            || doc.get("kind").and_then(Value::as_str) != Some("Secret")
        {
            return Err(KubeError::bad_request(format!(
                "invalid object type: {}, Kind={}",
                doc.get("apiVersion").and_then(Value::as_str).unwrap_or("/"),
                doc.get("kind").and_then(Value::as_str).unwrap_or_default()
            )));
        }
        let (input, warnings) = read_input(&doc, field_validation(call)?)?;
        if input.namespace.as_deref().is_some_and(|n| n != ns) {
            return Err(KubeError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if let Some(n) = input.name.as_deref().filter(|n| *n != name) {
            return Err(KubeError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        // What this manager applies: each key it sends, at the value it sends.
        let mut applied: BTreeMap<Field, Option<String>> = BTreeMap::new();
        for (k, v) in input.labels.iter().flatten() {
            applied.insert(Field::Label(k.clone()), Some(v.clone()));
        }
        for (k, v) in input.annotations.iter().flatten() {
            applied.insert(Field::Annotation(k.clone()), Some(v.clone()));
        }
        for (k, v) in input.data.iter().flatten() {
            applied.insert(Field::Data(k.clone()), Some(v.clone()));
        }
        if let Some(t) = &input.type_ {
            applied.insert(Field::Type, Some(t.clone()));
        }
        if let Some(i) = input.immutable {
            applied.insert(Field::Immutable, Some(i.to_string()));
        }
        let now = now_rfc3339();
        let key = (ns.to_owned(), name.to_owned());
        let Some(old) = self.secrets.get(&key).cloned() else {
            self.require_namespace(ns)?;
            if input.resource_version.is_some() {
                return Err(KubeError::not_found("secrets", name));
            }
            let mut secret = Secret {
                name: name.to_owned(),
                namespace: ns.to_owned(),
                uid: new_uid(),
                rv: 0,
                created: now.clone(),
                labels: input.labels.unwrap_or_default(),
                annotations: input.annotations.unwrap_or_default(),
                data: input.data.unwrap_or_default(),
                type_: input.type_.unwrap_or_else(|| "Opaque".into()),
                immutable: input.immutable,
                owner_references: input.owner_references,
                finalizers: input.finalizers,
                managers: vec![],
            };
            let causes = validate(&secret, None);
            if !causes.is_empty() {
                return Err(KubeError::invalid(name, &causes));
            }
            secret.managers.push(Manager {
                name: manager.to_owned(),
                operation: "Apply",
                time: now,
                fields: applied.keys().cloned().collect(),
            });
            if !call.dry_run() {
                secret.rv = self.bump();
                self.secrets.insert(key, secret.clone());
            }
            return Ok((StatusCode::CREATED, secret.to_json(true), warnings));
        };
        Self::preconditions(&old, &input)?;
        // Conflicts: a field another manager owns, applied at another value.
        let mut conflicts: Vec<(String, Field)> = Vec::new();
        for (f, v) in &applied {
            for m in &old.managers {
                if (m.name != manager || m.operation != "Apply")
                    && m.fields.contains(f)
                    && old.value(f) != *v
                {
                    conflicts.push((m.name.clone(), f.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(apply_conflict(&conflicts));
        }
        let mut new = old.clone();
        let taken: BTreeSet<Field> = conflicts.iter().map(|(_, f)| f.clone()).collect();
        for m in &mut new.managers {
            if !(m.name == manager && m.operation == "Apply") {
                m.fields.retain(|f| !taken.contains(f));
            }
        }
        let before: BTreeSet<Field> = new
            .managers
            .iter()
            .find(|m| m.name == manager && m.operation == "Apply")
            .map(|m| m.fields.clone())
            .unwrap_or_default();
        // Fields it applied before and no longer sends go, unless someone else owns them.
        for f in before.iter().filter(|f| !applied.contains_key(f)) {
            let shared = new
                .managers
                .iter()
                .any(|m| !(m.name == manager && m.operation == "Apply") && m.fields.contains(f));
            if !shared {
                match f {
                    Field::Label(k) => {
                        new.labels.remove(k);
                    }
                    Field::Annotation(k) => {
                        new.annotations.remove(k);
                    }
                    Field::Data(k) => {
                        new.data.remove(k);
                    }
                    Field::Type => new.type_ = "Opaque".into(),
                    Field::Immutable => new.immutable = None,
                }
            }
        }
        for (f, v) in &applied {
            let v = v.clone().unwrap_or_default();
            match f {
                Field::Label(k) => {
                    new.labels.insert(k.clone(), v);
                }
                Field::Annotation(k) => {
                    new.annotations.insert(k.clone(), v);
                }
                Field::Data(k) => {
                    new.data.insert(k.clone(), v);
                }
                Field::Type => new.type_ = v,
                Field::Immutable => new.immutable = Some(v == "true"),
            }
        }
        if input.owner_references.is_some() {
            new.owner_references = input.owner_references;
        }
        if input.finalizers.is_some() {
            new.finalizers = input.finalizers;
        }
        let fields: BTreeSet<Field> = applied.keys().cloned().collect();
        let changed = before != fields || applied.iter().any(|(f, v)| old.value(f) != *v);
        match new
            .managers
            .iter_mut()
            .find(|m| m.name == manager && m.operation == "Apply")
        {
            Some(m) => {
                if changed {
                    m.time = now;
                }
                m.fields = fields;
            }
            None => new.managers.push(Manager {
                name: manager.to_owned(),
                operation: "Apply",
                time: now,
                fields,
            }),
        }
        new.managers.retain(|m| !m.fields.is_empty());
        self.replace(call, &old, new, warnings)
    }

    fn delete(&mut self, call: &Call, ns: &str, name: &str) -> Result<Served, KubeError> {
        let options: Value = if call.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&call.body)
                .map_err(|e| KubeError::bad_request(format!("error decoding DeleteOptions: {e}")))?
        };
        let old = self.get(ns, name)?.clone();
        let pre = &options["preconditions"];
        if let Some(rv) = pre["resourceVersion"].as_str()
            && rv != old.rv.to_string()
        {
            return Err(KubeError::conflict(
                name,
                &format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                    old.rv
                ),
            ));
        }
        if let Some(uid) = pre["uid"].as_str()
            && uid != old.uid
        {
            return Err(KubeError::conflict(
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    old.uid
                ),
            ));
        }
        let dry_run = call.dry_run()
            || options["dryRun"]
                .as_array()
                .is_some_and(|d| d.iter().any(|v| v == "All"));
        if !dry_run {
            self.secrets.remove(&(ns.to_owned(), name.to_owned()));
            self.bump();
        }
        Ok((
            StatusCode::OK,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                   "details": {"name": name, "kind": "secrets", "uid": old.uid}}),
            vec![],
        ))
    }
}

/// Server-side apply's conflict (structured-merge-diff's `Conflicts` wording).
fn apply_conflict(conflicts: &[(String, Field)]) -> KubeError {
    let message = if let [(m, f)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with \"{m}\" using v1: {}",
            f.path()
        )
    } else {
        let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (m, f) in conflicts {
            by_manager.entry(m).or_default().push(f.path());
        }
        let parts: Vec<String> = by_manager
            .iter()
            .map(|(m, fs)| {
                format!(
                    "conflicts with \"{m}\" using v1:\n{}",
                    fs.iter()
                        .map(|f| format!("- {f}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })
            .collect();
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            parts.join("\n")
        )
    };
    KubeError::new(StatusCode::CONFLICT, "Conflict", message).details(json!({
        "causes": conflicts.iter().map(|(m, f)| json!({
            "reason": "FieldManagerConflict",
            "message": format!("conflict with \"{m}\" using v1"),
            "field": f.path()})).collect::<Vec<_>>(),
    }))
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// 128 pseudo-random bits (std's per-process random hash keys over a counter and the time).
fn random_u128() -> u128 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(seq);
        h.write_u128(nanos);
        h.write_u64(salt);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// A random (version 4) UUID, as the API server gives `metadata.uid`.
fn new_uid() -> String {
    let r = random_u128() & !(0xf000u128 << 64) | (0x4000u128 << 64);
    let r = r & !(0xc000u128 << 48) | (0x8000u128 << 48);
    let hex = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `generateName`'s 5 characters (apiserver's `SimpleNameGenerator` alphabet).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = random_u128();
    (0..5)
        .map(|_| {
            let c = ALPHABET[usize::try_from(r % 27).unwrap_or(0)];
            r /= 27;
            char::from(c)
        })
        .collect()
}

// ------------------------------------------------------------------ template access entries

impl AccessEntry {
    /// The template's `AWS::EKS::AccessEntry` resources (Properties `PrincipalArn`,
    /// `AccessPolicies[].PolicyArn`, `AccessPolicies[].AccessScope` {`Type`: `cluster` |
    /// `namespace`, `Namespaces`}), with `!GetAtt X.Arn`, `!Ref X`, `!Sub` and `!Join`
    /// resolved from `refs` (`"X.Arn"`, `"X"`, the pseudo parameters). A reference `refs` does
    /// not give: the pseudo parameters default as the strict moto's IAM evaluation does
    /// (us-east-1, 123456789012, stack `okra`), and the role of a SAM function `F` with
    /// `Policies` (`FRole.Arn`) or of an `AWS::IAM::Role` `R` (`R.Arn`) is
    /// `arn:aws:iam::ACCOUNT:role/STACK-FRole-LOCAL` / `.../STACK-R-LOCAL`, as the strict moto's
    /// `/_okra/iam/principal` names them.
    ///
    /// # Errors
    ///
    /// A property missing or of the wrong shape, an intrinsic function not modelled, a
    /// reference with no value, a scope type other than `cluster` or `namespace`.
    pub fn from_template(
        template: &serde_yaml_ng::Value,
        refs: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<AccessEntry>> {
        let resolver = Resolver::new(template, refs);
        let mut out = Vec::new();
        let Some(resources) = template.get("Resources").and_then(|r| r.as_mapping()) else {
            return Ok(out);
        };
        for (logical, res) in resources {
            if res.get("Type").and_then(|t| t.as_str()) != Some("AWS::EKS::AccessEntry") {
                continue;
            }
            let logical = logical.as_str().unwrap_or_default();
            let props = &res["Properties"];
            let principal_arn = resolver
                .string(&props["PrincipalArn"])
                .with_context(|| format!("{logical}.Properties.PrincipalArn"))?;
            let mut policies = Vec::new();
            for (i, p) in props
                .get("AccessPolicies")
                .and_then(|p| p.as_sequence())
                .into_iter()
                .flatten()
                .enumerate()
            {
                let at = format!("{logical}.Properties.AccessPolicies[{i}]");
                let policy_arn = resolver
                    .string(&p["PolicyArn"])
                    .with_context(|| format!("{at}.PolicyArn"))?;
                let scope = &p["AccessScope"];
                let kind = resolver
                    .string(&scope["Type"])
                    .with_context(|| format!("{at}.AccessScope.Type"))?;
                let namespaces = match kind.as_str() {
                    "cluster" => None,
                    "namespace" => Some(
                        scope
                            .get("Namespaces")
                            .and_then(|n| n.as_sequence())
                            .with_context(|| format!("{at}.AccessScope.Namespaces"))?
                            .iter()
                            .map(|n| resolver.string(n))
                            .collect::<anyhow::Result<Vec<_>>>()
                            .with_context(|| format!("{at}.AccessScope.Namespaces"))?,
                    ),
                    other => anyhow::bail!(
                        "{at}.AccessScope.Type is {other:?}: EKS knows cluster and namespace"
                    ),
                };
                policies.push(AccessPolicy {
                    policy_arn,
                    namespaces,
                });
            }
            out.push(AccessEntry {
                principal_arn,
                policies,
            });
        }
        Ok(out)
    }
}

/// CloudFormation's `Ref`, `Fn::GetAtt`, `Fn::Sub` and `Fn::Join` over known values.
struct Resolver {
    values: BTreeMap<String, String>,
}

impl Resolver {
    fn new(template: &serde_yaml_ng::Value, refs: &BTreeMap<String, String>) -> Self {
        let mut values: BTreeMap<String, String> = [
            ("AWS::Region", crate::REGION),
            ("AWS::AccountId", crate::ACCOUNT_ID),
            ("AWS::Partition", "aws"),
            ("AWS::StackName", "okra"),
            ("AWS::URLSuffix", "amazonaws.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(params) = template.get("Parameters").and_then(|p| p.as_mapping()) {
            for (k, p) in params {
                if let (Some(k), Some(d)) = (k.as_str(), p.get("Default")) {
                    let d = match d {
                        serde_yaml_ng::Value::String(s) => s.clone(),
                        other => serde_yaml_ng::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    };
                    values.insert(k.to_owned(), d);
                }
            }
        }
        values.extend(refs.iter().map(|(k, v)| (k.clone(), v.clone())));
        let (account, partition, stack) = (
            values["AWS::AccountId"].clone(),
            values["AWS::Partition"].clone(),
            values["AWS::StackName"].clone(),
        );
        if let Some(resources) = template.get("Resources").and_then(|r| r.as_mapping()) {
            for (logical, res) in resources {
                let Some(logical) = logical.as_str() else {
                    continue;
                };
                let role = match res.get("Type").and_then(|t| t.as_str()) {
                    Some("AWS::Serverless::Function")
                        if res["Properties"].get("Role").is_none() =>
                    {
                        format!("{logical}Role")
                    }
                    Some("AWS::IAM::Role") => logical.to_owned(),
                    _ => continue,
                };
                let key = format!("{role}.Arn");
                values.entry(key).or_insert_with(|| {
                    format!("arn:{partition}:iam::{account}:role/{stack}-{role}-LOCAL")
                });
            }
        }
        Self { values }
    }

    fn lookup(&self, name: &str) -> anyhow::Result<String> {
        self.values
            .get(name)
            .cloned()
            .with_context(|| format!("no value for {name}: give it in refs"))
    }

    fn string(&self, v: &serde_yaml_ng::Value) -> anyhow::Result<String> {
        use serde_yaml_ng::Value as Y;
        match v {
            Y::String(s) => Ok(s.clone()),
            Y::Number(n) => Ok(n.to_string()),
            Y::Bool(b) => Ok(b.to_string()),
            Y::Tagged(t) => {
                let tag = t.tag.to_string();
                self.function(tag.trim_start_matches('!'), &t.value)
            }
            Y::Mapping(m) if m.len() == 1 => {
                let (k, arg) = m.iter().next().context("empty mapping")?;
                let k = k.as_str().unwrap_or_default();
                let name = if k == "Ref" {
                    "Ref"
                } else {
                    k.strip_prefix("Fn::")
                        .with_context(|| format!("{k} is not an intrinsic function"))?
                };
                self.function(name, arg)
            }
            Y::Null => anyhow::bail!("missing"),
            other => anyhow::bail!("{other:?} is not a string"),
        }
    }

    fn function(&self, name: &str, arg: &serde_yaml_ng::Value) -> anyhow::Result<String> {
        match name {
            "Ref" => self.lookup(arg.as_str().context("!Ref of a non-string")?),
            "GetAtt" => {
                let path = match arg {
                    serde_yaml_ng::Value::String(s) => s.clone(),
                    serde_yaml_ng::Value::Sequence(parts) => parts
                        .iter()
                        .map(|p| self.string(p))
                        .collect::<anyhow::Result<Vec<_>>>()?
                        .join("."),
                    _ => anyhow::bail!("!GetAtt of {arg:?}"),
                };
                self.lookup(&path)
            }
            "Sub" => {
                let (text, vars) = match arg {
                    serde_yaml_ng::Value::Sequence(parts) if parts.len() == 2 => {
                        let vars = parts[1]
                            .as_mapping()
                            .context("!Sub's variables are not a mapping")?
                            .iter()
                            .map(|(k, v)| {
                                Ok((k.as_str().unwrap_or_default().to_owned(), self.string(v)?))
                            })
                            .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
                        (self.string(&parts[0])?, vars)
                    }
                    other => (self.string(other)?, BTreeMap::new()),
                };
                self.sub(&text, &vars)
            }
            "Join" => {
                let parts = arg.as_sequence().context("!Join of a non-list")?;
                let [delim, list] = parts.as_slice() else {
                    anyhow::bail!("!Join takes [delimiter, list]");
                };
                let items = list
                    .as_sequence()
                    .context("!Join's list")?
                    .iter()
                    .map(|p| self.string(p))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok(items.join(delim.as_str().unwrap_or_default()))
            }
            other => anyhow::bail!("intrinsic function {other} is not modelled"),
        }
    }

    fn sub(&self, text: &str, vars: &BTreeMap<String, String>) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let end = after.find('}').context("!Sub: unclosed ${")?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if let Some(v) = vars.get(name) {
                out.push_str(v);
            } else {
                out.push_str(&self.lookup(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_parse_and_match_as_apimachinery() {
        let labels: BTreeMap<String, String> = [("okra.io/cell", "web"), ("tier", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let m = |s: &str| {
            parse_label_selector(s)
                .unwrap()
                .iter()
                .all(|r| r.matches(&labels))
        };
        assert!(m(""));
        assert!(m("okra.io/cell=web"));
        assert!(m("okra.io/cell==web"));
        assert!(!m("okra.io/cell!=web"));
        assert!(m("okra.io/cell, !missing"));
        assert!(!m("missing"));
        assert!(m("okra.io/cell in (api,web),tier notin (2)"));
        assert!(!m("okra.io/cell notin (web)"));
        assert!(m("tier>0,tier<2"));
        assert!(m("missing notin (x)"));
        for bad in [
            "a in b",
            "a in (b",
            "=x",
            "a,",
            "a b",
            "a=(b)",
            "Bad Key=x",
            "a=b c",
            "a>x",
            "a=-x",
            "a in ()x",
        ] {
            assert!(parse_label_selector(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_label_selector("a in b").unwrap_err(),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            parse_label_selector("a,").unwrap_err(),
            "found '', expected: identifier after ','"
        );
    }

    #[test]
    fn names_labels_and_keys_are_validated_with_apimachinery_s_messages() {
        assert!(dns1123_subdomain_errors("cluster-a.example").is_empty());
        assert_eq!(dns1123_subdomain_errors("Bad_Name").len(), 1);
        assert_eq!(dns1123_subdomain_errors(&"a".repeat(254)).len(), 1);
        assert!(qualified_name_errors("okra.io/cell").is_empty());
        assert!(qualified_name_errors("argocd.argoproj.io/secret-type").is_empty());
        assert_eq!(
            qualified_name_errors("bad key"),
            [
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert_eq!(qualified_name_errors("a/b/c").len(), 1);
        assert_eq!(
            qualified_name_errors(&"a".repeat(64)),
            ["name part must be no more than 63 characters"]
        );
        assert!(label_value_errors("").is_empty());
        assert_eq!(label_value_errors(&"v".repeat(64)).len(), 1);
        assert_eq!(label_value_errors("-x").len(), 1);
        assert!(config_key_errors("config.json").is_empty());
        assert_eq!(config_key_errors("a/b").len(), 1);
        assert_eq!(config_key_errors(".."), ["must not be '..'"]);
    }

    #[test]
    fn base64_checks_as_go_reads_it() {
        assert_eq!(base64_std_error("aGVsbG8="), None);
        assert_eq!(base64_std_error(""), None);
        assert_eq!(base64_std_error("aGVsbG8"), Some(4));
        assert_eq!(base64_std_error("a*Vs"), Some(1));
        assert_eq!(base64url_raw_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64url_raw_decode("-_8").unwrap(), b"\xfb\xff");
        assert!(base64url_raw_decode("aGVsbG8=").is_err());
        assert!(base64url_raw_decode("a+b").is_err());
    }

    #[test]
    fn sts_hosts() {
        assert_eq!(
            sts_region("sts.amazonaws.com").as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            sts_region("sts.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            sts_region("sts.cn-north-1.amazonaws.com.cn").as_deref(),
            Some("cn-north-1")
        );
        for bad in [
            "sts.evil.com",
            "sts.us-east-1.amazonaws.com.evil.com",
            "evil.com",
            "sts.us-east-1.amazonaws.com:443",
        ] {
            assert_eq!(sts_region(bad), None, "{bad}");
        }
    }

    #[test]
    fn merge_patch_is_rfc_7386() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        merge(&mut doc, &json!({"a": {"b": null, "e": 3}, "d": {"x": 1}}));
        assert_eq!(doc, json!({"a": {"c": 2, "e": 3}, "d": {"x": 1}}));
    }

    #[test]
    fn uids_are_version_4_and_differ() {
        let (a, b) = (new_uid(), new_uid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(random_suffix().len(), 5);
    }

    #[test]
    fn access_entries_from_a_template() {
        let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            r#"
Parameters:
  HubCluster: {Type: String, Default: hub}
Resources:
  DispatcherFunction:
    Type: AWS::Serverless::Function
    Properties: {Policies: []}
  HubAccess:
    Type: AWS::EKS::AccessEntry
    Properties:
      ClusterName: !Ref HubCluster
      PrincipalArn: !GetAtt DispatcherFunctionRole.Arn
      AccessPolicies:
        - PolicyArn: !Sub arn:${AWS::Partition}:eks::aws:cluster-access-policy/AmazonEKSEditPolicy
          AccessScope: {Type: namespace, Namespaces: [argocd]}
  Admin:
    Type: AWS::EKS::AccessEntry
    Properties:
      PrincipalArn: {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:role/${Name}"}
      AccessPolicies:
        - PolicyArn: arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy
          AccessScope: {Type: cluster}
"#,
        )
        .unwrap();
        let refs: BTreeMap<String, String> = [("Name".to_owned(), "admin".to_owned())].into();
        let entries = AccessEntry::from_template(&template, &refs).unwrap();
        assert_eq!(
            entries,
            [
                AccessEntry {
                    principal_arn:
                        "arn:aws:iam::123456789012:role/okra-DispatcherFunctionRole-LOCAL".into(),
                    policies: vec![AccessPolicy {
                        policy_arn: "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
                            .into(),
                        namespaces: Some(vec!["argocd".into()])
                    }]
                },
                AccessEntry {
                    principal_arn: "arn:aws:iam::123456789012:role/admin".into(),
                    policies: vec![AccessPolicy {
                        policy_arn:
                            "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
                                .into(),
                        namespaces: None
                    }]
                },
            ]
        );
        let refs: BTreeMap<String, String> = [(
            "DispatcherFunctionRole.Arn".to_owned(),
            "arn:aws:iam::1:role/d".to_owned(),
        )]
        .into();
        let err = AccessEntry::from_template(&template, &refs).unwrap_err();
        assert!(format!("{err:#}").contains("no value for Name"), "{err:#}");
    }

    #[test]
    fn policies_as_the_user_facing_roles() {
        let edit = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";
        let view = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";
        assert!(policy_allows(edit, "create", "secrets"));
        assert!(policy_allows(edit, "get", "namespaces"));
        assert!(!policy_allows(view, "get", "secrets"));
        assert!(!policy_allows(view, "list", "secrets"));
        assert!(policy_allows(view, "get", "namespaces"));
        assert!(!policy_allows(
            "arn:aws:eks::aws:cluster-access-policy/Other",
            "get",
            "namespaces"
        ));
    }
}
