//! The REST API (`handlers::api`) over the fakes: every route, the errors, a corpus of malformed
//! requests (each a 4xx naming the field, with nothing written), and the `events/api-*.json`
//! API Gateway events.

mod common;

use aws_lambda_events::encodings::Body;
use common::{CELL, LISTENER, cell, cell_json, fwd, tags};
use okra_aws::OkraError;
use okra_aws::fakes::{FakeEks, FakeElb, FakeExecutions, FakeState, RawAction};
use okra_aws::handlers::api::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, Doctor, MAX_BODY_BYTES, Ports, handle,
};
use okra_aws::state::{
    Block, ExecutionInput, HistoryEntry, HistoryEvent, Lock, Rollout, Signal, StatePort, Wait,
    WaitKind,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/okra-operators/alice";
const ID: &str = "web--1-1-0--0";
const EXAMPLE_YAML: &str = include_str!("../../../examples/cells/web.yaml");

// ---------------------------------------------------------------------------------------------
// The world and the requests
// ---------------------------------------------------------------------------------------------

struct World {
    state: FakeState,
    execs: FakeExecutions,
    eks: FakeEks,
    elb: FakeElb,
    doctor: AskedDoctor,
}

/// A doctor that records the cells it was asked about and finds one warning.
#[derive(Default)]
struct AskedDoctor {
    asked: std::sync::Mutex<Vec<String>>,
}

impl Doctor for AskedDoctor {
    async fn check(
        &self,
        cell: &okra_core::Cell,
    ) -> okra_aws::Result<okra_aws::handlers::doctor::DoctorReport> {
        self.asked.lock().expect("lock").push(cell.name.clone());
        let check = okra_core::doctor::Check {
            id: "cloudtrail".into(),
            level: okra_core::doctor::Level::Warning,
            summary: "no trail".into(),
            fix: Some("create one".into()),
        };
        Ok(okra_aws::handlers::doctor::DoctorReport {
            cell: cell.name.clone(),
            region: "eu-west-1".into(),
            level: check.level,
            checks: vec![check],
        })
    }
}

/// Cell `web` (revision 1): `web-a1` serves 1.0.0 at 100 %, `web-b1` is ACTIVE with 1.1.0, so a
/// rollout to 1.1.0 (execution `web--1-1-0--0`) is due.
fn world() -> World {
    let w = World {
        state: FakeState::new(),
        execs: FakeExecutions::new(),
        eks: FakeEks::new(),
        elb: FakeElb::new(),
        doctor: AskedDoctor::default(),
    };
    w.eks.add_active("web-a1", &tags("1.0.0"));
    w.eks.add_active("web-b1", &tags("1.1.0"));
    let a1 = w.elb.add_okra_group(CELL, "web-a1", "1.0.0");
    w.elb
        .add_listener(LISTENER, vec![RawAction::forward(1, fwd(&[(&a1, 1)]))]);
    w.state.insert_cell(cell(1));
    w
}

/// The state-table methods that write.
const STATE_WRITES: [&str; 10] = [
    "put_cell",
    "delete_cell",
    "acquire_lock",
    "release_lock",
    "block",
    "unblock",
    "start_rollout",
    "record",
    "put_signal",
    "take_signal",
];

fn rollout(id: &str, to: &str, status: &str, started_at: &str) -> Rollout {
    Rollout {
        execution: id.to_string(),
        cell: CELL.to_string(),
        from: Some("1.0.0".into()),
        to: to.to_string(),
        status: status.parse().expect("a rollout status"),
        weight: 10,
        history: vec![HistoryEntry {
            at: started_at.to_string(),
            event: HistoryEvent::Started,
            step: None,
            weight: None,
            detail: Value::Null,
        }],
        started_at: started_at.to_string(),
        updated_at: started_at.to_string(),
    }
}

fn lock(execution: &str, version: &str) -> Lock {
    Lock {
        execution: execution.to_string(),
        version: version.to_string(),
        acquired_at: "2026-03-01T10:00:00.000Z".into(),
    }
}

impl World {
    /// A rollout to 1.1.0 that runs now: its record, the lock, its execution.
    async fn running(&self) {
        self.state
            .start_rollout(&rollout(ID, "1.1.0", "running", "2026-03-01T10:00:00.000Z"))
            .await
            .expect("stores");
        self.state.set_lock(CELL, Some(lock(ID, "1.1.0")));
        self.execs.add(ID, "RUNNING");
    }

    /// A running rollout that waits (`kind`) at step 1, under task token `tok`.
    async fn waiting(&self, kind: WaitKind) {
        self.running().await;
        let wait = Wait {
            token: "tok".into(),
            kind,
            step: Some(1),
            until: None,
            samples: None,
        };
        self.state.put_wait(CELL, ID, &wait).await.expect("puts");
    }

    /// A rollout to 1.1.0 that failed: its record (`status`), the version blocked, no lock, its
    /// execution ended.
    async fn ended(&self, status: &str) {
        self.state
            .start_rollout(&rollout(ID, "1.1.0", status, "2026-03-01T10:00:00.000Z"))
            .await
            .expect("stores");
        self.state
            .block(
                CELL,
                &Block {
                    version: "1.1.0".into(),
                    reason: "analysis failed".into(),
                    execution: ID.into(),
                    at: "2026-03-01T10:20:00.000Z".into(),
                },
            )
            .await
            .expect("blocks");
        self.execs.add(ID, "FAILED");
    }

    fn reset_counts(&self) {
        self.state.meter.reset_counts();
        self.execs.meter.reset_counts();
        self.eks.meter.reset_counts();
        self.elb.meter.reset_counts();
    }

    /// Writes of every kind: the table, executions started, ELB changes.
    fn writes(&self) -> usize {
        STATE_WRITES
            .iter()
            .map(|m| self.state.meter.calls(m))
            .sum::<usize>()
            + self.execs.meter.calls("start")
            + ["write_forward", "create_target_group", "tag_target_group"]
                .iter()
                .map(|m| self.elb.meter.calls(m))
                .sum::<usize>()
    }

    async fn call(&self, r: Req) -> Resp {
        self.raw(r.build()).await
    }

    async fn raw(&self, req: ApiGatewayProxyRequest) -> Resp {
        let ports = Ports {
            state: &self.state,
            executions: &self.execs,
            eks: &self.eks,
            elb: &self.elb,
            doctor: &self.doctor,
        };
        Resp::from(handle(&ports, req).await)
    }

    async fn stored_revision(&self) -> Option<u64> {
        self.state
            .get_cell(CELL)
            .await
            .expect("reads")
            .map(|c| c.revision)
    }
}

/// A REST proxy request, built as API Gateway sends it (IAM auth).
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Option<String>,
    base64: bool,
}

fn req(method: &str, path: &str) -> Req {
    Req {
        method: method.to_string(),
        path: path.to_string(),
        headers: Vec::new(),
        query: Vec::new(),
        body: None,
        base64: false,
    }
}

fn put(body: impl Into<String>) -> Req {
    req("PUT", "/cells/web")
        .header("Content-Type", "application/json")
        .body(body)
}

fn put_json(v: &Value) -> Req {
    put(v.to_string())
}

impl Req {
    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    fn query(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.to_string(), v.to_string()));
        self
    }

    fn body(mut self, b: impl Into<String>) -> Self {
        self.body = Some(b.into());
        self
    }

    fn base64(mut self) -> Self {
        self.base64 = true;
        self
    }

    fn build(&self) -> ApiGatewayProxyRequest {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let query: serde_json::Map<String, Value> = self
            .query
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let v = json!({
            "resource": "/{proxy+}",
            "path": self.path,
            "httpMethod": self.method,
            "headers": headers,
            "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
            "pathParameters": {"proxy": self.path.trim_start_matches('/')},
            "requestContext": {
                "accountId": "123456789012",
                "stage": "prod",
                "requestId": "4f1c9d2e-0000-4000-8000-000000000001",
                "httpMethod": self.method,
                "path": format!("/prod{}", self.path),
                "identity": {
                    "accountId": "123456789012",
                    "caller": "AROA3EXAMPLEROLEID1234:alice",
                    "accessKey": "ASIA-EXAMPLE-NOT-A-KEY",
                    "userArn": CALLER,
                    "sourceIp": "203.0.113.10"
                }
            },
            "body": self.body,
            "isBase64Encoded": self.base64
        });
        serde_json::from_value(v).expect("an API Gateway proxy request")
    }
}

/// A response, its body read.
#[derive(Debug)]
struct Resp {
    status: i64,
    body: Value,
    raw: Option<String>,
    content_type: Option<String>,
    headers: http::HeaderMap,
}

impl From<ApiGatewayProxyResponse> for Resp {
    fn from(r: ApiGatewayProxyResponse) -> Self {
        let raw = match &r.body {
            None => None,
            Some(Body::Text(t)) => Some(t.clone()),
            Some(other) => panic!("a text body, not {other:?}"),
        };
        let body = raw.as_deref().map_or(Value::Null, |t| {
            serde_json::from_str(t).unwrap_or_else(|e| panic!("a JSON body ({e}): {t}"))
        });
        Self {
            status: r.status_code,
            content_type: r
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            headers: r.headers,
            body,
            raw,
        }
    }
}

impl Resp {
    fn expect(&self, status: i64) -> &Self {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json"),
            "{self:?}"
        );
        self
    }

    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    /// `field`, and every `errors[].path`.
    fn fields(&self) -> Vec<String> {
        let mut out: Vec<String> = self.body["field"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect();
        if let Some(errs) = self.body["errors"].as_array() {
            out.extend(
                errs.iter()
                    .filter_map(|e| e["path"].as_str().map(str::to_string)),
            );
        }
        out
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

// ---------------------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lists_cells_by_name_with_revisions() {
    let w = world();
    w.state
        .insert_cell(common::cell_with(1, |v| v["name"] = json!("api")));
    w.state.insert_cell(cell(1)); // web → revision 2
    let r = w.call(req("GET", "/cells")).await;
    r.expect(200);
    let cells = r.body["cells"].as_array().expect("a list");
    let got: Vec<(&str, u64)> = cells
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default(),
                c["revision"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(got, [("api", 1), ("web", 2)]);
    assert!(cells[0]["updatedAt"].is_string());
    assert_eq!(w.writes(), 0);
}

#[tokio::test]
async fn gets_a_cell_with_its_lock_and_blocklist() {
    let w = world();
    let r = w.call(req("GET", "/cells/web")).await;
    r.expect(200);
    assert_eq!(r.body["spec"], serde_json::to_value(cell(1)).expect("json"));
    assert_eq!(r.body["revision"], 1);
    assert_eq!(r.body["updatedAt"], "2026-01-01T00:00:00.000Z");
    assert_eq!(r.body["blocklist"], json!([]));
    assert!(r.body.get("lock").is_none(), "{}", r.body);
    assert_eq!(r.header("etag"), Some("\"1\""));

    w.running().await;
    w.ended("failed").await;
    let r = w.call(req("GET", "/cells/web/")).await;
    r.expect(200);
    assert_eq!(r.body["lock"]["execution"], ID);
    assert_eq!(r.body["blocklist"][0]["version"], "1.1.0");
}

#[tokio::test]
async fn an_unknown_cell_is_404() {
    let w = world();
    for (m, p) in [
        ("GET", "/cells/nope"),
        ("DELETE", "/cells/nope"),
        ("GET", "/cells/nope/plan"),
        ("GET", "/cells/nope/rollouts"),
        ("POST", "/cells/nope/rollouts"),
        ("GET", "/cells/nope/rollouts/nope--1-0-0--0"),
        ("POST", "/cells/nope/rollouts/nope--1-0-0--0/promote"),
        ("POST", "/cells/nope/rollouts/nope--1-0-0--0/retry"),
    ] {
        let r = w.call(req(m, p)).await;
        r.expect(404);
        assert_eq!(r.error(), "NotFound", "{m} {p}: {}", r.body);
    }
    // Only the delete was tried (a DeleteItem of nothing).
    assert_eq!(w.writes(), w.state.meter.calls("delete_cell"));
    assert_eq!(w.state.meter.calls("delete_cell"), 1);
}

#[tokio::test]
async fn put_creates_then_replaces() {
    let w = world();
    // Its own listener: two cells never share one (a_second_cell_on_the_same_listener_is_refused).
    let api = common::cell_with(1, |v| {
        v["name"] = json!("api");
        v["ingress"]["alb"]["listenerArn"] =
            json!(LISTENER.replace("f2f7dc8efc522ab2", "0000000000000001"));
    });
    let r = w
        .call(
            req("PUT", "/cells/api")
                .header("Content-Type", "application/json; charset=utf-8")
                .body(serde_json::to_string(&api).expect("json")),
        )
        .await;
    r.expect(201);
    assert_eq!(r.body, json!({"cell": "api", "revision": 1}));
    assert_eq!(r.header("etag"), Some("\"1\""));
    let stored = w
        .state
        .get_cell("api")
        .await
        .expect("reads")
        .expect("stored");
    assert_eq!(stored.spec, api);

    // Without If-Match: create-or-replace.
    let edited = common::cell_with(2, |_| {});
    let r = w
        .call(put_json(&serde_json::to_value(&edited).expect("json")))
        .await;
    r.expect(200);
    assert_eq!(r.body, json!({"cell": "web", "revision": 2}));
    let stored = w
        .state
        .get_cell(CELL)
        .await
        .expect("reads")
        .expect("stored");
    assert_eq!(stored.spec, edited);
}

#[tokio::test]
async fn put_with_if_match_is_optimistic() {
    let w = world();
    let r = w
        .call(put_json(&cell_json(2)).header("If-Match", "\"1\""))
        .await;
    r.expect(200);
    assert_eq!(r.body["revision"], 2);
    // Weak and bare forms.
    let r = w
        .call(put_json(&cell_json(1)).header("If-Match", "W/\"2\""))
        .await;
    r.expect(200);
    let r = w
        .call(put_json(&cell_json(2)).header("if-match", "3"))
        .await;
    r.expect(200);
    assert_eq!(w.stored_revision().await, Some(4));

    // Stale.
    w.reset_counts();
    let r = w
        .call(put_json(&cell_json(1)).header("If-Match", "2"))
        .await;
    r.expect(409);
    assert_eq!(r.error(), "Conflict");
    assert_eq!(w.stored_revision().await, Some(4));
    let stored = w
        .state
        .get_cell(CELL)
        .await
        .expect("reads")
        .expect("stored");
    assert_eq!(stored.spec, cell(2));

    // If-Match on a cell that does not exist.
    let api = common::cell_with(1, |v| v["name"] = json!("api"));
    let r = w
        .call(
            req("PUT", "/cells/api")
                .header("If-Match", "1")
                .body(serde_json::to_string(&api).expect("json")),
        )
        .await;
    r.expect(409);
    assert!(w.state.get_cell("api").await.expect("reads").is_none());
}

#[tokio::test]
async fn put_takes_yaml_by_content_type() {
    for ct in [
        "application/yaml",
        "text/yaml",
        "application/x-yaml; charset=utf-8",
    ] {
        let w = world();
        let r = w
            .call(
                req("PUT", "/cells/web")
                    .header("Content-Type", ct)
                    .body(EXAMPLE_YAML),
            )
            .await;
        r.expect(200);
        let stored = w
            .state
            .get_cell(CELL)
            .await
            .expect("reads")
            .expect("stored");
        assert_eq!(stored.spec.replicas, 2, "{ct}");
        assert_eq!(stored.spec.analysis_templates.len(), 2);
    }
    // JSON without a Content-Type, and base64-encoded (binary media types).
    let w = world();
    let r = w
        .call(req("PUT", "/cells/web").body(cell_json(2).to_string()))
        .await;
    r.expect(200);
    let encoded = aws_smithy_types::base64::encode(cell_json(1).to_string());
    let r = w
        .call(req("PUT", "/cells/web").body(encoded).base64())
        .await;
    r.expect(200);
    assert_eq!(w.stored_revision().await, Some(3));
}

#[tokio::test]
async fn put_of_an_invalid_spec_writes_nothing() {
    let w = world();
    let before = w.state.get_cell(CELL).await.expect("reads");
    w.reset_counts();
    let mut v = cell_json(1);
    v["canary"]["steps"][0]["setWeight"] = json!(140);
    v["ingress"]["alb"]["listenerArn"] = json!("arn:aws:ec2:eu-west-1:123456789012:instance/i-1");
    v["replicas"] = json!(0);
    let r = w.call(put_json(&v)).await;
    r.expect(400);
    assert_eq!(r.error(), "InvalidSpec");
    assert_eq!(r.body["field"], "body");
    let paths: Vec<&str> = r.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "ingress.alb.listenerArn",
            "replicas",
            "canary.steps[0].setWeight"
        ]
    );
    for e in r.body["errors"].as_array().expect("errors") {
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    assert_eq!(w.state.meter.calls("put_cell"), 0);
    assert_eq!(w.writes(), 0);
    assert_eq!(w.state.get_cell(CELL).await.expect("reads"), before);
}

#[tokio::test]
async fn put_under_another_name_is_refused() {
    let w = world();
    let r = w
        .call(req("PUT", "/cells/other").body(cell_json(1).to_string()))
        .await;
    r.expect(400);
    assert_eq!(r.fields(), ["body", "name"]);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("other")
    );
    assert_eq!(w.writes(), 0);
    assert!(w.state.get_cell("other").await.expect("reads").is_none());
}

#[tokio::test]
async fn delete_removes_the_spec_unless_a_rollout_runs() {
    let w = world();
    w.running().await;
    let r = w.call(req("DELETE", "/cells/web")).await;
    r.expect(409);
    assert!(r.message().contains(ID), "{}", r.message());
    assert_eq!(w.state.meter.calls("delete_cell"), 0);
    assert!(w.stored_revision().await.is_some());

    // The execution ended; its lock is stale.
    w.execs.set_status(ID, "SUCCEEDED");
    let r = w.call(req("DELETE", "/cells/web")).await;
    assert_eq!(r.status, 204);
    assert_eq!(r.raw, None);
    assert!(w.stored_revision().await.is_none());
    w.call(req("GET", "/cells/web")).await.expect(404);
    w.call(req("DELETE", "/cells/web")).await.expect(404);
    // History stays.
    w.call(req("GET", "/cells/web/rollouts")).await.expect(200);
}

// ---------------------------------------------------------------------------------------------
// Rollouts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn post_rollouts_starts_the_due_rollout() {
    let w = world();
    let r = w.call(req("POST", "/cells/web/rollouts")).await;
    r.expect(202);
    assert_eq!(r.body["outcome"], "started");
    assert_eq!(r.body["execution"], ID);
    assert_eq!(r.body["decision"], "startRollout");
    assert!(r.body["reason"].is_string());
    let execs = w.execs.executions();
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].name, ID);
    let input: ExecutionInput =
        serde_json::from_value(execs[0].input.clone()).expect("an ExecutionInput");
    assert_eq!(input.trigger, "api");
    assert_eq!(input.cell, cell(1));
    assert_eq!(input.labels["caller"], CALLER);
    assert!(input.labels.contains_key("requestId"));

    // Again: the same execution (Step Functions refuses a second one of the same name).
    let r = w.call(req("POST", "/cells/web/rollouts/")).await;
    r.expect(202);
    assert_eq!(r.body["execution"], ID);
    assert_eq!(w.execs.executions().len(), 1);
}

#[tokio::test]
async fn post_rollouts_with_nothing_to_do_is_200() {
    let w = world();
    w.eks.remove_cluster("web-b1");
    let r = w.call(req("POST", "/cells/web/rollouts")).await;
    r.expect(200);
    assert_eq!(r.body["outcome"], "nothingToDo");
    assert!(r.body["reason"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(r.body.get("execution").is_none());
    assert_eq!(w.writes(), 0);
}

#[tokio::test]
async fn post_rollouts_while_one_runs_is_409() {
    let w = world();
    w.running().await;
    w.reset_counts();
    let r = w.call(req("POST", "/cells/web/rollouts")).await;
    r.expect(409);
    assert_eq!(r.error(), "Conflict");
    assert_eq!(r.body["outcome"], "skipped");
    assert_eq!(r.body["execution"], ID);
    assert_eq!(w.writes(), 0);
}

#[tokio::test]
async fn lists_rollouts_newest_first_with_a_limit() {
    let w = world();
    for (i, day) in ["01", "03", "02"].iter().enumerate() {
        w.state
            .start_rollout(&rollout(
                &format!("web--1-{i}-0--0"),
                &format!("1.{i}.0"),
                "promoted",
                &format!("2026-03-{day}T00:00:00.000Z"),
            ))
            .await
            .expect("stores");
    }
    let r = w.call(req("GET", "/cells/web/rollouts")).await;
    r.expect(200);
    let ids = |r: &Resp| -> Vec<String> {
        r.body["rollouts"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|x| x["execution"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids(&r), ["web--1-1-0--0", "web--1-2-0--0", "web--1-0-0--0"]);
    let r = w
        .call(req("GET", "/cells/web/rollouts").query("limit", "2"))
        .await;
    r.expect(200);
    assert_eq!(ids(&r), ["web--1-1-0--0", "web--1-2-0--0"]);
    // A cell without history.
    w.state
        .insert_cell(common::cell_with(1, |v| v["name"] = json!("api")));
    let r = w.call(req("GET", "/cells/api/rollouts")).await;
    r.expect(200);
    assert_eq!(r.body, json!({"rollouts": []}));
}

#[tokio::test]
async fn gets_a_rollout_with_its_execution() {
    let w = world();
    w.running().await;
    let r = w
        .call(req("GET", &format!("/cells/web/rollouts/{ID}")))
        .await;
    r.expect(200);
    assert_eq!(r.body["rollout"]["execution"], ID);
    assert_eq!(r.body["rollout"]["status"], "running");
    assert_eq!(r.body["rollout"]["to"], "1.1.0");
    assert_eq!(r.body["execution"]["status"], "RUNNING");
    assert_eq!(r.body["execution"]["arn"], FakeExecutions::arn(ID));

    // A record whose execution Step Functions forgot.
    w.state
        .start_rollout(&rollout(
            "web--1-0-0--0",
            "1.0.0",
            "promoted",
            "2025-01-01T00:00:00.000Z",
        ))
        .await
        .expect("stores");
    let r = w
        .call(req("GET", "/cells/web/rollouts/web--1-0-0--0"))
        .await;
    r.expect(200);
    assert_eq!(r.body["execution"], Value::Null);

    let r = w
        .call(req("GET", "/cells/web/rollouts/web--9-9-9--0"))
        .await;
    r.expect(404);
}

#[tokio::test]
async fn signals_reach_a_running_rollout() {
    for (action, signal) in [
        ("resume", Signal::Resume),
        ("promote", Signal::Promote),
        ("promote-full", Signal::PromoteFull),
        ("abort", Signal::Abort),
    ] {
        let w = world();
        w.waiting(WaitKind::Person).await;
        let r = w
            .call(req("POST", &format!("/cells/web/rollouts/{ID}/{action}")))
            .await;
        r.expect(202);
        assert_eq!(
            r.body,
            json!({"cell": "web", "rollout": ID, "signal": serde_json::to_value(signal).expect("json")})
        );
        // The wait's callback is answered with the signal, which is kept for the audit.
        assert_eq!(
            w.execs.task_results(),
            vec![("tok".to_string(), json!({"signal": signal}))],
            "{action}"
        );
        assert_eq!(
            w.state.take_signal(CELL, ID).await.expect("takes"),
            Some(signal),
            "{action}"
        );
        // Nothing else moved: no execution started, no ELB write.
        assert_eq!(w.execs.meter.calls("start"), 0);
        assert_eq!(w.elb.meter.total_calls(), 0);
    }
}

/// A signal that cannot act where the rollout is answers 409 with why, and is not stored: a
/// resume with nothing paused would otherwise end the next pause nobody meant to end.
#[tokio::test]
async fn a_signal_that_cannot_act_where_the_rollout_is_is_409_and_not_stored() {
    for (wait, action, why) in [
        (None, "resume", "it is not waiting"),
        (None, "promote", "it is not waiting"),
        (Some(WaitKind::Analysis), "resume", "it is analysing"),
    ] {
        let w = world();
        match wait {
            Some(k) => w.waiting(k).await,
            None => w.running().await,
        }
        let r = w
            .call(req("POST", &format!("/cells/web/rollouts/{ID}/{action}")))
            .await;
        r.expect(409);
        assert_eq!(r.error(), "Conflict");
        assert!(r.message().contains(why), "{action}: {}", r.message());
        assert_eq!(w.state.meter.calls("put_signal"), 0, "{action}");
        assert!(w.execs.task_results().is_empty(), "{action}");
    }
    // Where they act: promote skips an analysis, resume ends a timed pause; abort acts when
    // nothing waits (taken after the step under way).
    for (wait, action) in [
        (Some(WaitKind::Analysis), "promote"),
        (Some(WaitKind::Pause), "resume"),
        (None, "abort"),
        (None, "promote-full"),
    ] {
        let w = world();
        match wait {
            Some(k) => w.waiting(k).await,
            None => w.running().await,
        }
        w.call(req("POST", &format!("/cells/web/rollouts/{ID}/{action}")))
            .await
            .expect(202);
        assert_eq!(w.state.meter.calls("put_signal"), 1, "{action}");
        assert_eq!(w.execs.task_results().len(), usize::from(wait.is_some()));
    }
}

#[tokio::test]
async fn signals_to_a_finished_rollout_are_409() {
    for status in ["promoted", "rolledBack", "failed"] {
        let w = world();
        w.state
            .start_rollout(&rollout(ID, "1.1.0", status, "2026-03-01T10:00:00.000Z"))
            .await
            .expect("stores");
        w.reset_counts();
        for action in ["resume", "promote", "promote-full", "abort"] {
            let r = w
                .call(req("POST", &format!("/cells/web/rollouts/{ID}/{action}")))
                .await;
            r.expect(409);
            assert_eq!(r.error(), "Conflict");
            assert!(
                r.message().contains(&format!("rollout {ID} is {status}")),
                "{}",
                r.message()
            );
        }
        assert_eq!(w.writes(), 0);
        assert_eq!(w.state.take_signal(CELL, ID).await.expect("takes"), None);
    }
    let w = world();
    w.call(req("POST", "/cells/web/rollouts/web--7-0-0--0/abort"))
        .await
        .expect(404);
    assert_eq!(w.state.meter.calls("put_signal"), 0);
}

#[tokio::test]
async fn retry_unblocks_and_starts_the_next_attempt() {
    for status in ["failed", "rolledBack"] {
        let w = world();
        w.ended(status).await;
        let r = w
            .call(req("POST", &format!("/cells/web/rollouts/{ID}/retry")))
            .await;
        r.expect(202);
        assert_eq!(r.body["outcome"], "started", "{}", r.body);
        assert_eq!(r.body["execution"], "web--1-1-0--1");
        assert_eq!(r.body["attempt"], 1);
        assert!(w.state.blocklist(CELL).await.expect("reads").is_empty());
        assert_eq!(w.state.attempt(CELL, "1.1.0").await.expect("reads"), 1);
        let started = w.execs.executions();
        let last = started.last().expect("an execution");
        assert_eq!(last.name, "web--1-1-0--1");
        let input: ExecutionInput =
            serde_json::from_value(last.input.clone()).expect("an ExecutionInput");
        assert_eq!(input.trigger, "api");
        assert_eq!(input.labels["retryOf"], ID);
        assert_eq!(input.labels["caller"], CALLER);
    }
}

#[tokio::test]
async fn retry_of_a_running_or_promoted_rollout_is_409() {
    let w = world();
    w.running().await;
    w.reset_counts();
    let r = w
        .call(req("POST", &format!("/cells/web/rollouts/{ID}/retry")))
        .await;
    r.expect(409);
    assert!(r.message().contains("is running"), "{}", r.message());
    assert_eq!(w.writes(), 0);

    let w = world();
    w.state
        .start_rollout(&rollout(
            ID,
            "1.1.0",
            "promoted",
            "2026-03-01T10:00:00.000Z",
        ))
        .await
        .expect("stores");
    w.reset_counts();
    w.call(req("POST", &format!("/cells/web/rollouts/{ID}/retry")))
        .await
        .expect(409);
    assert_eq!(w.writes(), 0);

    // A failed rollout while another holds the cell: nothing unblocked.
    let w = world();
    w.ended("failed").await;
    w.state.set_lock(CELL, Some(lock("web--1-2-0--0", "1.2.0")));
    w.execs.add("web--1-2-0--0", "RUNNING");
    w.reset_counts();
    let r = w
        .call(req("POST", &format!("/cells/web/rollouts/{ID}/retry")))
        .await;
    r.expect(409);
    assert!(r.message().contains("web--1-2-0--0"), "{}", r.message());
    assert_eq!(w.writes(), 0);
    assert_eq!(w.state.blocklist(CELL).await.expect("reads").len(), 1);
}

#[tokio::test]
async fn plan_decides_and_writes_nothing() {
    let w = world();
    w.reset_counts();
    let r = w.call(req("GET", "/cells/web/plan")).await;
    r.expect(200);
    assert_eq!(r.body["cell"], "web");
    assert_eq!(r.body["decision"]["kind"], "startRollout", "{}", r.body);
    assert_eq!(r.body["listenerArn"], LISTENER);
    assert_eq!(r.body["clustersSeen"], 2);
    assert_eq!(w.writes(), 0);
    assert_eq!(w.execs.meter.total_calls(), 0);
    assert!(w.elb.writes().is_empty());

    // With the new version blocked, the plan says so.
    w.ended("failed").await;
    w.reset_counts();
    let r = w.call(req("GET", "/cells/web/plan")).await;
    r.expect(200);
    assert_eq!(r.body["decision"]["kind"], "nothingToDo", "{}", r.body);
    assert_eq!(w.writes(), 0);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let w = world();
    for p in [
        "/",
        "/cell",
        "/cells/web/nope",
        "/v2/cells",
        "/cells/web/rollouts/x/explode",
    ] {
        let r = w.call(req("GET", p)).await;
        r.expect(404);
        assert_eq!(r.body["error"], "NotFound", "{p}");
    }
    for (m, p, allow) in [
        ("POST", "/cells", "GET"),
        ("PATCH", "/cells/web", "GET, PUT, DELETE"),
        ("PUT", "/cells/web/rollouts", "GET, POST"),
        ("DELETE", "/cells/web/plan", "GET"),
        ("POST", "/cells/web/rollouts/x", "GET"),
        ("GET", "/cells/web/rollouts/x/promote", "POST"),
        ("OPTIONS", "/cells", "GET"),
    ] {
        let r = w.call(req(m, p)).await;
        r.expect(405);
        assert_eq!(r.error(), "MethodNotAllowed");
        assert_eq!(r.header("allow"), Some(allow), "{m} {p}");
    }
    assert_eq!(w.writes(), 0);
    assert_eq!(w.state.meter.total_calls(), 0);
}

#[tokio::test]
async fn bodies_over_256_kib_are_413() {
    let w = world();
    let mut v = cell_json(1);
    v["padding"] = json!("x".repeat(MAX_BODY_BYTES));
    let r = w.call(put_json(&v)).await;
    r.expect(413);
    assert_eq!(r.error(), "PayloadTooLarge");
    assert_eq!(r.body["field"], "body");
    let big = aws_smithy_types::base64::encode(vec![b' '; MAX_BODY_BYTES + 1]);
    w.call(put(big).base64()).await.expect(413);
    w.call(req("POST", "/cells/web/rollouts").body("x".repeat(MAX_BODY_BYTES + 1)))
        .await
        .expect(413);
    // Exactly the limit is read (and is not a spec).
    let r = w.call(put(" ".repeat(MAX_BODY_BYTES))).await;
    r.expect(400);
    assert_eq!(w.writes(), 0);
    assert_eq!(w.state.meter.total_calls(), 0);
}

#[tokio::test]
async fn aws_errors_map_to_statuses() {
    type MakeError = fn() -> OkraError;
    let cases: [(&str, MakeError, i64); 6] = [
        (
            "Throttled",
            || OkraError::from_code("ThrottlingException".into(), "slow".into()),
            429,
        ),
        (
            "AwsUnavailable",
            || OkraError::AwsUnavailable("down".into(), None),
            503,
        ),
        (
            "AccessDenied",
            || OkraError::AccessDenied("no".into(), None),
            403,
        ),
        ("Conflict", || OkraError::Conflict("race".into(), None), 409),
        (
            "InvalidInput",
            || OkraError::InvalidInput("bad".into()),
            400,
        ),
        (
            "AwsError",
            || OkraError::Aws {
                code: "X".into(),
                message: "y".into(),
                cause: None,
            },
            502,
        ),
    ];
    for (name, make, status) in cases {
        let w = world();
        w.state.meter.fail_next("get_cell", 1, make);
        let r = w.call(req("GET", "/cells/web")).await;
        r.expect(status);
        assert_eq!(r.error(), name);
    }
    // Discovery's errors on the plan: a missing listener is AWS's answer, 502.
    let w = world();
    w.elb.meter.fail_next("read_action", 1, || {
        OkraError::ListenerNotFound("gone".into(), None)
    });
    let r = w.call(req("GET", "/cells/web/plan")).await;
    r.expect(502);
    assert_eq!(r.error(), "ListenerNotFound");
    // And the dispatcher's, on a start.
    let w = world();
    w.eks.meter.throttle_next("find_clusters", 1);
    let r = w.call(req("POST", "/cells/web/rollouts")).await;
    r.expect(429);
    assert_eq!(r.error(), "Throttled");
    assert_eq!(w.execs.meter.calls("start"), 0);
}

#[tokio::test]
async fn answers_never_echo_credentials() {
    let w = world();
    w.running().await;
    let mut reqs = vec![
        req("GET", "/cells"),
        req("GET", "/cells/web"),
        req("GET", "/cells/web/plan"),
        req("GET", &format!("/cells/web/rollouts/{ID}")),
        req("POST", &format!("/cells/web/rollouts/{ID}/abort")),
        req("POST", "/cells/web/rollouts"),
        req("GET", "/nope"),
        put("{"),
    ];
    for r in &mut reqs {
        r.headers.push((
            "Authorization".into(),
            "AWS4-HMAC-SHA256 Signature=SECRETSIG".into(),
        ));
        r.headers
            .push(("X-Amz-Security-Token".into(), "SECRETTOKEN".into()));
    }
    for r in reqs {
        let resp = w.call(r.clone()).await;
        let text = resp.raw.unwrap_or_default();
        for secret in ["SECRETSIG", "SECRETTOKEN", "ASIA-EXAMPLE-NOT-A-KEY"] {
            assert!(!text.contains(secret), "{} {}: {text}", r.method, r.path);
        }
    }
}

/// Malformed requests: each is a 4xx that names the field, and nothing is written.
#[tokio::test]
async fn malformed_requests_are_4xx_naming_the_field_and_write_nothing() {
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v = cell_json(1);
        edit(&mut v);
        put_json(&v)
    };
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let cel_template = json!([{
        "name": "errors",
        "metrics": [{
            "name": "5xx",
            "interval": "1m",
            "successCondition": "result <",
            "provider": {"datadog": {"query": "sum:errors{*}"}}
        }]
    }]);
    let cases: Vec<(&str, Req, i64, &str)> = vec![
        ("no body", req("PUT", "/cells/web"), 400, "body"),
        ("empty body", put(""), 400, "body"),
        ("blank body", put(" \n\t "), 400, "body"),
        ("truncated JSON", put("{\"name\": \"web\""), 400, "body"),
        ("trailing comma", put("{\"name\": \"web\",}"), 400, "body"),
        ("not JSON at all", put("name=web&replicas=1"), 400, "body"),
        ("a list", put("[]"), 400, "body"),
        ("a string", put("\"web\""), 400, "body"),
        ("null", put("null"), 400, "body"),
        ("a number", put("42"), 400, "body"),
        ("deep nesting", put(nested(10_000)), 400, "body"),
        (
            "huge exponent",
            put(cell_json(1)
                .to_string()
                .replace("\"replicas\":1", "\"replicas\":1e999")),
            400,
            "body",
        ),
        (
            "replicas not a number",
            with(&|v| v["replicas"] = json!("two")),
            400,
            "replicas",
        ),
        (
            "replicas negative",
            with(&|v| v["replicas"] = json!(-1)),
            400,
            "replicas",
        ),
        (
            "replicas huge",
            with(&|v| v["replicas"] = json!(99_999_999_999_999_999_999.0)),
            400,
            "replicas",
        ),
        (
            "replicas zero",
            with(&|v| v["replicas"] = json!(0)),
            400,
            "replicas",
        ),
        (
            "replicas too many for the ALB",
            with(&|v| v["replicas"] = json!(3)),
            400,
            "replicas",
        ),
        (
            "a missing field",
            with(&|v| {
                v.as_object_mut().map(|o| o.remove("ingress"));
            }),
            400,
            "ingress",
        ),
        (
            "an unknown field",
            with(&|v| v["rplicas"] = json!(1)),
            400,
            "rplicas",
        ),
        (
            "name of another cell",
            with(&|v| v["name"] = json!("api")),
            400,
            "name",
        ),
        (
            "unicode name",
            with(&|v| v["name"] = json!("wéb")),
            400,
            "name",
        ),
        (
            "name with a NUL",
            with(&|v| v["name"] = json!("web\u{0}")),
            400,
            "name",
        ),
        (
            "upper-case name",
            with(&|v| v["name"] = json!("Web")),
            400,
            "name",
        ),
        (
            "name a number",
            with(&|v| v["name"] = json!(7)),
            400,
            "name",
        ),
        (
            "not an ARN",
            with(&|v| v["ingress"]["alb"]["listenerArn"] = json!("web-prod")),
            400,
            "ingress.alb.listenerArn",
        ),
        (
            "an EC2 ARN",
            with(&|v| {
                v["ingress"]["alb"]["listenerArn"] =
                    json!("arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc")
            }),
            400,
            "ingress.alb.listenerArn",
        ),
        (
            "an NLB listener under alb",
            with(&|v| {
                v["ingress"]["alb"]["listenerArn"] = json!(
                    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/net/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
                )
            }),
            400,
            "ingress.alb.listenerArn",
        ),
        (
            "a rule of another listener",
            with(&|v| {
                v["ingress"]["alb"]["ruleArn"] = json!(
                    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/other/60dc6c495c0c9188/a2f7dc8efc522ab2/9683b2d02a6cabee"
                )
            }),
            400,
            "ingress.alb.ruleArn",
        ),
        (
            "both alb and nlb",
            with(
                &|v| v["ingress"]["nlb"] = json!({"listenerArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/net/web/50dc6c495c0c9188/f2f7dc8efc522ab2"}),
            ),
            400,
            "ingress",
        ),
        (
            "no selector tags",
            with(&|v| v["clusterSelector"]["matchTags"] = json!({})),
            400,
            "clusterSelector.matchTags",
        ),
        (
            "a tag value not a string",
            with(&|v| v["clusterSelector"]["matchTags"]["env"] = json!({"deep": [1]})),
            400,
            "clusterSelector.matchTags.env",
        ),
        (
            "weight over 100",
            with(&|v| v["canary"]["steps"][0]["setWeight"] = json!(140)),
            400,
            "canary.steps[0].setWeight",
        ),
        (
            "weight negative",
            with(&|v| v["canary"]["steps"][0]["setWeight"] = json!(-5)),
            400,
            "canary.steps[0].setWeight",
        ),
        (
            "weight a string",
            with(&|v| v["canary"]["steps"][0]["setWeight"] = json!("10")),
            400,
            "canary.steps[0].setWeight",
        ),
        (
            "weight a fraction",
            with(&|v| v["canary"]["steps"][2]["setWeight"] = json!(50.5)),
            400,
            "canary.steps[2].setWeight",
        ),
        (
            "weights going down",
            with(&|v| v["canary"]["steps"][2]["setWeight"] = json!(5)),
            400,
            "canary.steps[2].setWeight",
        ),
        (
            "a bad pause",
            with(&|v| v["canary"]["steps"][1]["pause"]["duration"] = json!("ten minutes")),
            400,
            "canary.steps[1].pause.duration",
        ),
        (
            "steps not a list",
            with(&|v| v["canary"]["steps"] = json!({"setWeight": 10})),
            400,
            "canary.steps",
        ),
        (
            "port out of range",
            with(&|v| v["targetGroup"]["port"] = json!(70_000)),
            400,
            "targetGroup.port",
        ),
        (
            "readiness over 100 %",
            with(&|v| v["readiness"]["minHealthyPercent"] = json!(101)),
            400,
            "readiness.minHealthyPercent",
        ),
        (
            "a bad timeout",
            with(&|v| v["readiness"]["timeout"] = json!("-1m")),
            400,
            "readiness.timeout",
        ),
        (
            "stickiness over 7 days",
            with(&|v| v["stickiness"] = json!({"enabled": true, "duration": "8d"})),
            400,
            "stickiness.duration",
        ),
        (
            "a version that is not semver",
            with(&|v| v["version"] = json!("latest")),
            400,
            "version",
        ),
        (
            "an unknown template",
            with(&|v| {
                v["canary"]["steps"][1] =
                    json!({"analysis": {"templates": [{"templateName": "nope"}]}})
            }),
            400,
            "canary.steps[1].analysis.templates[0].templateName",
        ),
        (
            "CEL that does not compile",
            with(&|v| v["analysisTemplates"] = cel_template.clone()),
            400,
            "analysisTemplates[0].metrics[0].successCondition",
        ),
        (
            "a huge name",
            with(&|v| v["name"] = json!("w".repeat(100_000))),
            400,
            "name",
        ),
        ("invalid base64", put("not base64!!").base64(), 400, "body"),
        (
            "base64 of bytes that are not UTF-8",
            put(aws_smithy_types::base64::encode([0xff, 0xfe, 0x00])).base64(),
            400,
            "body",
        ),
        (
            "YAML that is not YAML",
            put("name: [web\nreplicas: 1").header("Content-Type", "application/yaml"),
            400,
            "body",
        ),
        (
            "YAML indented with a tab",
            put("name: web\ningress:\n\talb: {}\n").header("Content-Type", "application/yaml"),
            400,
            "body",
        ),
        (
            "YAML with an unclosed quote",
            put("name: \"web\nreplicas: 1\n").header("Content-Type", "application/yaml"),
            400,
            "body",
        ),
        (
            "YAML of the wrong type",
            put(EXAMPLE_YAML.replace("replicas: 2", "replicas: two"))
                .header("Content-Type", "text/yaml"),
            400,
            "replicas",
        ),
        (
            "YAML that does not validate",
            put(EXAMPLE_YAML.replace("setWeight: 50", "setWeight: 500"))
                .header("Content-Type", "text/yaml"),
            400,
            "canary.steps[3].setWeight",
        ),
        (
            "an unknown media type",
            put(cell_json(1).to_string()).header("Content-Type", "text/plain"),
            415,
            "header.content-type",
        ),
        (
            "If-Match not a number",
            put_json(&cell_json(1)).header("If-Match", "abc"),
            400,
            "header.if-match",
        ),
        (
            "If-Match *",
            put_json(&cell_json(1)).header("If-Match", "*"),
            400,
            "header.if-match",
        ),
        (
            "If-Match negative",
            put_json(&cell_json(1)).header("If-Match", "-1"),
            400,
            "header.if-match",
        ),
        (
            "If-Match over u64",
            put_json(&cell_json(1)).header("If-Match", "99999999999999999999999"),
            400,
            "header.if-match",
        ),
        (
            "an upper-case cell",
            req("PUT", "/cells/Web").body(cell_json(1).to_string()),
            400,
            "path.cell",
        ),
        (
            "an encoded slash",
            req("GET", "/cells/we%2Fb"),
            400,
            "path.cell",
        ),
        (
            "a bad escape",
            req("GET", "/cells/we%zzb"),
            400,
            "path.cell",
        ),
        (
            "a unicode cell",
            req("GET", "/cells/w%C3%A9b/plan"),
            400,
            "path.cell",
        ),
        (
            "a cell of 33 characters",
            req("DELETE", &format!("/cells/{}", "a".repeat(33))),
            400,
            "path.cell",
        ),
        (
            "a cell with a NUL",
            req("POST", "/cells/web%00/rollouts"),
            400,
            "path.cell",
        ),
        (
            "an id with a dot",
            req("GET", "/cells/web/rollouts/web.1"),
            400,
            "path.id",
        ),
        (
            "an id with a space",
            req("POST", "/cells/web/rollouts/web%201/promote"),
            400,
            "path.id",
        ),
        (
            "an id with a unicode character",
            req("POST", "/cells/web/rollouts/w%C3%A9b/abort"),
            400,
            "path.id",
        ),
        (
            "an id of 81 characters",
            req(
                "POST",
                &format!("/cells/web/rollouts/{}/retry", "x".repeat(81)),
            ),
            400,
            "path.id",
        ),
        (
            "limit zero",
            req("GET", "/cells/web/rollouts").query("limit", "0"),
            400,
            "query.limit",
        ),
        (
            "limit not a number",
            req("GET", "/cells/web/rollouts").query("limit", "ten"),
            400,
            "query.limit",
        ),
        (
            "limit too large",
            req("GET", "/cells/web/rollouts").query("limit", "1000"),
            400,
            "query.limit",
        ),
        (
            "limit negative",
            req("GET", "/cells/web/rollouts").query("limit", "-1"),
            400,
            "query.limit",
        ),
        (
            "limit huge",
            req("GET", "/cells/web/rollouts").query("limit", "184467440737095516160"),
            400,
            "query.limit",
        ),
    ];
    assert!(cases.len() >= 30, "{}", cases.len());
    for (what, r, status, field) in cases {
        let w = world();
        w.running().await;
        let before = w.state.get_cell(CELL).await.expect("reads");
        w.reset_counts();
        let resp = w.call(r).await;
        if std::env::var_os("API_CORPUS_DEBUG").is_some() {
            eprintln!("{what}: {} {}", resp.status, resp.body);
        }
        assert_eq!(resp.status, status, "{what}: {}", resp.body);
        assert_eq!(
            resp.content_type.as_deref(),
            Some("application/json"),
            "{what}"
        );
        assert!(
            !resp.error().is_empty() && !resp.message().is_empty(),
            "{what}: {}",
            resp.body
        );
        assert!(
            resp.fields().iter().any(|f| f == field),
            "{what}: expected {field} among {:?}: {}",
            resp.fields(),
            resp.body
        );
        assert!(
            resp.raw.as_ref().is_some_and(|t| t.len() < 16 * 1024),
            "{what}: a short answer"
        );
        assert_eq!(w.writes(), 0, "{what}: {:?}", w.state.meter.call_counts());
        assert_eq!(
            w.state.get_cell(CELL).await.expect("reads"),
            before,
            "{what}"
        );
        assert_eq!(
            w.state.take_signal(CELL, ID).await.expect("takes"),
            None,
            "{what}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The API Gateway events of `events/`
// ---------------------------------------------------------------------------------------------

fn event(name: &str) -> ApiGatewayProxyRequest {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn every_api_event_is_answered() {
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("api-") && n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let w = world();
        // The world each event needs.
        let (setup, status) = match name.as_str() {
            "api-resume" | "api-promote" | "api-promote-full" | "api-abort" => ("waiting", 202),
            "api-get-rollout" | "api-list-rollouts" => ("running", 200),
            "api-retry" => ("failed", 202),
            "api-start-rollout" => ("", 202),
            "api-delete-cell" => ("", 204),
            "api-put-cell" | "api-put-cell-yaml" | "api-get-cell" | "api-list-cells"
            | "api-plan" => ("", 200),
            other => panic!("{other}: add it to this table"),
        };
        match setup {
            "running" => w.running().await,
            "waiting" => w.waiting(WaitKind::Person).await,
            "failed" => w.ended("failed").await,
            _ => {}
        }
        let ev = event(&name);
        let r = w.raw(ev.clone()).await;
        assert_eq!(r.status, status, "{name}: {}", r.body);
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/json"),
            "{name}"
        );
        let text = r.raw.clone().unwrap_or_default();
        for secret in [
            "ASIA-EXAMPLE-NOT-A-KEY",
            "IQoJb3JpZ2luX2VjEXAMPLE",
            "Signature=",
        ] {
            assert!(!text.contains(secret), "{name}: {text}");
        }
        let id = &ev.request_context.identity;
        assert!(
            id.user_arn
                .as_deref()
                .is_some_and(|a| a.starts_with("arn:aws:")),
            "{name}"
        );
        match name.as_str() {
            "api-promote" => assert_eq!(
                w.state.take_signal(CELL, ID).await.expect("takes"),
                Some(Signal::Promote)
            ),
            "api-start-rollout" | "api-retry" => {
                let execs = w.execs.executions();
                let input: ExecutionInput =
                    serde_json::from_value(execs.last().expect("started").input.clone())
                        .expect("an ExecutionInput");
                assert_eq!(
                    input.labels["caller"],
                    id.user_arn.clone().unwrap_or_default()
                );
            }
            "api-put-cell-yaml" => {
                let stored = w
                    .state
                    .get_cell(CELL)
                    .await
                    .expect("reads")
                    .expect("stored");
                assert_eq!(stored.revision, 2);
                assert_eq!(stored.spec.replicas, 2);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A generated corpus (issue 8): every field of a valid spec, mutated systematically
// ---------------------------------------------------------------------------------------------

/// Every path of a JSON value: `(path segments, value)`, objects' keys and arrays' indexes.
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push(k.clone());
                out.push((at.clone(), x.clone()));
                paths(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(format!("[{i}]"));
                out.push((at.clone(), x.clone()));
                paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer(path: &[String]) -> String {
    path.iter()
        .map(|s| {
            let s = s.trim_start_matches('[').trim_end_matches(']');
            format!("/{}", s.replace('~', "~0").replace('/', "~1"))
        })
        .collect()
}

/// `canary.steps[3].setWeight`, the way the API names fields.
fn dotted(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if !p.starts_with('[') && !s.is_empty() {
            s.push('.');
        }
        s.push_str(p);
    }
    s
}

/// Mutations of one field: wrong types, out-of-range numbers, unicode, huge and deep values.
fn mutations(v: &Value) -> Vec<(&'static str, Value)> {
    let deep = (0..100).fold(json!(1), |acc, _| json!([acc]));
    let mut out = vec![
        ("null", Value::Null),
        ("deep nesting", deep),
        ("object", json!({"x": 1})),
        ("empty object", json!({})),
        ("empty array", json!([])),
    ];
    if !v.is_string() {
        out.push(("string", json!("not-the-right-type")));
        out.push(("unicode string", json!("ü🦀\u{202e}\u{0000}")));
    }
    if !v.is_number() {
        out.push(("number", json!(7)));
    }
    if v.is_number() {
        out.push(("negative", json!(-1)));
        out.push(("huge", json!(1e300)));
        out.push(("u64 max", json!(u64::MAX)));
        out.push(("fraction", json!(0.5)));
        out.push(("numeric string", json!("12")));
    }
    if !v.is_boolean() {
        out.push(("bool", json!(true)));
    }
    if !v.is_array() {
        out.push(("array", json!([1, "two"])));
    }
    if let Some(s) = v.as_str() {
        out.push(("empty string", json!("")));
        out.push(("huge string", json!("x".repeat(70_000))));
        if s.starts_with("arn:") {
            out.push(("bad ARN", json!("arn:aws:nope")));
            out.push((
                "ARN of another service",
                json!(s.replace("elasticloadbalancing", "s3")),
            ));
        }
        if s.contains("result") {
            out.push(("CEL that does not compile", json!("result <")));
            out.push(("CEL with an unknown name", json!("reslt < 1.0")));
            out.push(("CEL not a bool", json!("result + 1.0")));
        }
    }
    out
}

#[tokio::test]
async fn a_generated_corpus_of_malformed_specs_is_400_naming_the_field_and_writes_nothing() {
    let base = cell_json(1);
    let mut all = Vec::new();
    paths(&base, &mut Vec::new(), &mut all);
    let mut cases: Vec<(String, Vec<String>, Value)> = Vec::new();
    for (path, v) in &all {
        for (what, m) in mutations(v) {
            let mut spec = base.clone();
            *spec.pointer_mut(&pointer(path)).expect("the path exists") = m;
            cases.push((format!("{} := {what}", dotted(path)), path.clone(), spec));
        }
        if let Some(obj) = v.as_object() {
            let mut spec = base.clone();
            let mut o = obj.clone();
            o.insert("unknownField".into(), json!(1));
            *spec.pointer_mut(&pointer(path)).expect("the path exists") = Value::Object(o);
            cases.push((
                format!("{} + unknownField", dotted(path)),
                path.clone(),
                spec,
            ));
        }
        // Removing a field.
        if let Some((last, parent)) = path.split_last()
            && !last.starts_with('[')
        {
            let mut spec = base.clone();
            if let Some(Value::Object(p)) = spec.pointer_mut(&pointer(parent)) {
                p.remove(last);
            } else if parent.is_empty() {
                spec.as_object_mut().expect("an object").remove(last);
            }
            cases.push((format!("{} removed", dotted(path)), path.clone(), spec));
        }
    }
    let (mut rejected, mut accepted, mut unnamed) = (0, Vec::new(), Vec::new());
    for (what, path, spec) in &cases {
        let w = world();
        let before = w.state.get_cell(CELL).await.expect("reads");
        w.reset_counts();
        let resp = w.call(put_json(spec)).await;
        if (200..300).contains(&resp.status) {
            // A mutation the spec allows (an optional field removed, another valid value).
            accepted.push(what.clone());
            continue;
        }
        rejected += 1;
        assert!(
            (400..500).contains(&resp.status),
            "{what}: {} {}",
            resp.status,
            resp.body
        );
        assert!(!resp.error().is_empty(), "{what}: {}", resp.body);
        // The field is named: by its path in `errors`, or in the message.
        let key = path
            .iter()
            .rev()
            .find(|p| !p.starts_with('['))
            .cloned()
            .unwrap_or_default();
        let text = format!("{:?} {}", resp.fields(), resp.message());
        let parent = dotted(&path[..path.len().saturating_sub(1)]);
        if !(text.contains(&key)
            || text.contains("unknownField")
            || text.contains(&dotted(path))
            || (!parent.is_empty() && text.contains(&parent)))
        {
            unnamed.push(format!("{what}: {}", resp.body));
        }
        assert!(
            resp.raw.as_ref().is_some_and(|t| t.len() < 16 * 1024),
            "{what}: a short answer"
        );
        assert_eq!(w.writes(), 0, "{what}");
        assert_eq!(
            w.state.get_cell(CELL).await.expect("reads"),
            before,
            "{what}"
        );
    }
    eprintln!(
        "generated spec corpus: {} cases, {rejected} rejected, {} accepted as valid variants",
        cases.len(),
        accepted.len()
    );
    assert!(
        unnamed.is_empty(),
        "{} answers do not name the field:\n{}",
        unnamed.len(),
        unnamed.join("\n")
    );
    assert!(rejected >= 300, "{rejected}");
}

#[tokio::test]
async fn a_second_cell_on_the_same_listener_is_refused() {
    let w = world();
    let other = common::cell_with(1, |v| v["name"] = json!("api"));
    w.reset_counts();
    let r = w
        .call(
            req("PUT", "/cells/api")
                .header("Content-Type", "application/json")
                .body(serde_json::to_string(&other).expect("json")),
        )
        .await;
    r.expect(409);
    assert_eq!(r.error(), "Conflict");
    assert!(r.message().contains("cell web already owns"), "{}", r.body);
    assert_eq!(w.writes(), 0);
    assert_eq!(w.state.get_cell("api").await.expect("reads"), None);

    // Another rule of the same listener is another forward action: allowed.
    let rule = common::cell_with(1, |v| {
        v["name"] = json!("api");
        v["ingress"]["alb"]["ruleArn"] =
            json!(LISTENER.replace(":listener/", ":listener-rule/") + "/0123456789abcdef");
    });
    let r = w
        .call(
            req("PUT", "/cells/api")
                .header("Content-Type", "application/json")
                .body(serde_json::to_string(&rule).expect("json")),
        )
        .await;
    r.expect(201);
    // The cell itself may be stored again (its own listener is no conflict).
    let r = w.call(put_json(&cell_json(1))).await;
    r.expect(200);
}

#[tokio::test]
async fn the_doctor_route_checks_the_stored_cell() {
    let w = world();
    let r = w.call(req("GET", "/cells/web/doctor")).await;
    r.expect(200);
    assert_eq!(r.body["cell"], "web");
    assert_eq!(r.body["level"], "warning");
    assert_eq!(r.body["checks"][0]["id"], "cloudtrail");
    assert_eq!(r.body["checks"][0]["fix"], "create one");
    let r = w.call(req("GET", "/cells/nope/doctor")).await;
    r.expect(404);
    let r = w.call(req("POST", "/cells/web/doctor")).await;
    assert_eq!(r.status, 405);
    assert_eq!(*w.doctor.asked.lock().expect("lock"), ["web"]);
    // Read only: nothing written anywhere.
    assert_eq!(w.writes(), 0);
}
