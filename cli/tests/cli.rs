//! The `okra` binary and the demo's story against the local stack (moto, the real functions
//! under cargo lambda watch, the shipped state machine in the local Step Functions service).

// Test code: a panic with the failing line is the right report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use okra_demo::{self as demo, Demo, Options};
use okra_testkit::{ApiFront, ApiIdentity};
use serde_json::{Value, json};

fn options() -> Options {
    Options {
        fast_waits_ms: 100,
        report: None,
        interval: Duration::from_millis(200),
    }
}

fn okra_env(d: &Demo, args: &[&str], without: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_okra"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("OKRA_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).envs(
        d.cli_env()
            .into_iter()
            .filter(|(k, _)| !without.contains(&k.as_str())),
    );
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn help_reads_well_and_bad_usage_exits_2() {
    let bin = env!("CARGO_BIN_EXE_okra");
    let help = Command::new(bin).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for want in [
        "cell",
        "plan",
        "rollout",
        "clusters",
        "target-groups",
        "Exit codes",
        "--endpoint-url",
        "--table",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    for sub in [
        &["rollout", "--help"][..],
        &["rollout", "promote", "--help"],
        &["cell", "apply", "--help"],
    ] {
        let out = Command::new(bin).args(sub).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{sub:?}");
        assert!(!out.stdout.is_empty());
    }
    let bad = Command::new(bin).arg("no-such-command").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// How the commands reach okra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In process, with the administrator's AWS rights over the local stack.
    InProcess,
    /// Through the local API front, as the operator (`OperatorPolicy`): no other AWS setting.
    Api,
}

/// An IAM user of the local API front with one of template.yaml's managed policies.
fn identity(user: &str, policy: &str) -> ApiIdentity {
    ApiIdentity {
        user: user.into(),
        access_key: format!("AKIA{}", user.to_uppercase()),
        secret: format!("{user}-secret"),
        policy: Some(policy.into()),
    }
}

/// The `okra` process's environment through the API as `who`: the API's URL, the region and
/// `who`'s keys; no endpoint, table or state machine, so a command that reached AWS itself
/// would fail (nothing here reaches AWS).
fn api_env(front: &ApiFront, who: &ApiIdentity) -> Vec<(String, String)> {
    vec![
        ("OKRA_API_URL".into(), front.url()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), who.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY".into(), who.secret.clone()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
    ]
}

/// Runs `okra ARGS` with exactly `env` (no inherited AWS_ or OKRA_ variable).
fn okra_with(env: &[(String, String)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_okra"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("OKRA_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.args(args).envs(env.iter().cloned()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_commands_in_process() {
    commands(Mode::InProcess).await;
}

/// The same commands, answers, errors and hints through the API (SigV4, `execute-api:Invoke`
/// under template.yaml's operator policy), and a viewer who reads but may not steer.
#[tokio::test(flavor = "multi_thread")]
async fn cli_commands_through_the_api() {
    commands(Mode::Api).await;
}

async fn commands(mode: Mode) {
    let d = demo::setup(&options()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let operator = identity("olga", "OperatorPolicy");
    let viewer = identity("victor", "ViewerPolicy");
    let front = d
        .aws
        .api_front(vec![operator.clone(), viewer.clone()])
        .unwrap();
    // `okra` as the mode has it: in process with the stack's settings, or as the operator
    // through the API. `admin` is always in process (okra init, doctor -f read the account).
    let okra = |d: &Demo, args: &[&str]| match mode {
        Mode::InProcess => okra_env(d, args, &[]),
        Mode::Api => okra_with(&api_env(&front, &operator), args),
    };
    let admin = |d: &Demo, args: &[&str]| okra_env(d, args, &[]);

    // Settings missing: a usage error that says what to give.
    let (code, _, err) = okra_env(&d, &["cell", "list"], &["OKRA_TABLE"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--table"), "{err}");

    // A bad spec: every error on its own line, with its field path; nothing stored.
    let mut bad = demo::cell_spec(&d.listener);
    bad["canary"]["steps"][0]["setWeight"] = json!(140);
    bad["replicas"] = json!(0);
    let file = write(
        dir.path(),
        "bad.yaml",
        &serde_yaml_ng::to_string(&bad).unwrap(),
    );
    let (code, _, err) = okra(&d, &["cell", "apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("canary.steps[0].setWeight"), "{err}");
    assert!(err.contains("replicas"), "{err}");
    let (code, out, _) = okra(&d, &["cell", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("no cells"), "{out}");

    let file = write(
        dir.path(),
        "web.yaml",
        &serde_yaml_ng::to_string(&demo::cell_spec(&d.listener)).unwrap(),
    );
    let (code, out, err) = okra(&d, &["cell", "apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cell web: stored (revision 1)"), "{out}");
    let (code, out, _) = okra(&d, &["cell", "list", "--output", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cells"][0]["name"], "web");
    let (code, out, _) = okra(&d, &["cell", "get", "web"]);
    assert_eq!(code, 0);
    assert!(out.contains(&d.listener), "{out}");

    // Two clusters of 1.0.0: the plan says initialize; start and watch it.
    d.cluster("web-a1", "1.0.0").await.unwrap();
    d.cluster("web-a2", "1.0.0").await.unwrap();
    let (code, out, _) = okra(&d, &["clusters", "web"]);
    assert_eq!(code, 0);
    assert!(out.contains("web-a1") && out.contains("1.0.0"), "{out}");

    // okra init: a starter spec from the account, which validates and the doctor reads.
    let starter = dir.path().join("starter.yaml");
    let init = |listener: &str, out: Option<&Path>| {
        let mut args = vec![
            "init",
            "--name",
            "web2",
            "--listener",
            listener,
            "--selector",
            "okra.io/cell=web",
            "--port",
            "30080",
        ];
        if let Some(o) = out {
            args.extend(["-o", o.to_str().unwrap()]);
        }
        admin(&d, &args)
    };
    let (code, _, err) = init(&d.listener, Some(&starter));
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&starter).unwrap();
    assert!(
        text.starts_with("# yaml-language-server: $schema=./cell.schema.json"),
        "{text}"
    );
    assert!(text.contains("# Found: 1.0.0 on web-a1, web-a2"), "{text}");
    assert!(text.contains("replicas: 2"), "{text}");
    let (code, out, _) = okra(&d, &["cell", "validate", "-f", starter.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // Never over an existing file.
    let (code, _, err) = init(&d.listener, Some(&starter));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exists"), "{err}");
    // A listener that does not exist: an error, nothing written.
    let gone = d
        .listener
        .replace(d.listener.rsplit('/').next().unwrap(), "0000000000000000");
    let (code, out, err) = init(&gone, None);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    // The doctor on the starter: no error (warnings: no trail, the metric-less analysis).
    let (code, out, err) = admin(&d, &["doctor", "-f", starter.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok       listener"), "{out}");
    assert!(out.contains("ok       clusters"), "{out}");
    assert!(out.contains("warning  cloudtrail"), "{out}");
    // A stored cell: through the API's route (GET /cells/web/doctor), JSON for scripts.
    let (code, out, err) = okra(&d, &["doctor", "web", "--output", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["cell"], "web");
    assert_eq!(report["checks"][0]["id"], "listener");
    assert_eq!(report["checks"][0]["level"], "ok");
    // The schema the header points at.
    let (code, out, _) = okra(&d, &["cell", "schema"]);
    assert_eq!(code, 0);
    let schema: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(schema["title"], "CellSpec");
    let (code, out, _) = okra(&d, &["plan", "web"]);
    assert_eq!(code, 0);
    assert!(out.contains("initialize"), "{out}");
    let (code, out, err) = okra(&d, &["rollout", "start", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("started"), "{out}");
    let (code, out, err) = okra(&d, &["rollout", "watch", "web", "--interval", "0.2"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("promoted"), "{out}");
    let first = okra(&d, &["rollout", "status", "web", "--output", "json"]).1;
    let first: Value = serde_json::from_str(&first).unwrap();
    let first_id = first["rollout"]["execution"].as_str().unwrap().to_owned();

    // 1.1.0 with a bad metric: watch ends rolled back, exit 3.
    d.metric(12.0).await.unwrap();
    d.cluster("web-b1", "1.1.0").await.unwrap();
    d.cluster("web-b2", "1.1.0").await.unwrap();
    let (code, out, _) = okra(&d, &["rollout", "start", "web"]);
    assert_eq!(code, 0);
    assert!(out.contains("startRollout"), "{out}");
    let (code, out, err) = okra(&d, &["rollout", "watch", "web", "--interval", "0.2"]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(out.contains("rolledBack"), "{out}");
    assert!(out.contains("analysis: failed"), "{out}");
    let (code, out, _) = okra(&d, &["rollout", "status", "web", "--output", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rollout"]["status"], "rolledBack");
    assert_eq!(
        v["weights"],
        json!([{"version": "1.0.0", "percent": 100, "targetGroups": 2}])
    );
    let (code, out, _) = okra(&d, &["rollout", "status", "web"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("1.0.0") && out.contains("100 %") && out.contains("history:"),
        "{out}"
    );
    // The cell's events, as EventBridge got them: both rollouts', oldest first.
    let (code, out, err) = okra(&d, &["events", "web"]);
    assert_eq!(code, 0, "{err}");
    let promoted = out.find("Rollout Promoted").expect(&out);
    let rolled_back = out.find("Rollout Rolled Back").expect(&out);
    assert!(promoted < rolled_back, "oldest first:\n{out}");
    let (code, out, _) = okra(
        &d,
        &["events", "web", "--rollouts", "1", "--output", "json"],
    );
    assert_eq!(code, 0);
    let events: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(
        events.iter().all(|e| e["execution"] != first_id.as_str()),
        "--rollouts 1: the newest only: {out}"
    );
    assert_eq!(events.last().unwrap()["detailType"], "Rollout Rolled Back");
    let (code, out, _) = okra(&d, &["target-groups", "web"]);
    assert_eq!(code, 0);
    assert!(out.contains("web-a1") && out.contains("1.1.0"), "{out}");
    let (_, out, _) = okra(&d, &["cell", "get", "web"]);
    assert!(out.contains("# blocked: 1.1.0"), "{out}");

    // A signal to a finished rollout: one line that says why.
    let (code, _, err) = okra(&d, &["rollout", "resume", "web", &first_id]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("only a running rollout takes signals"),
        "{err}"
    );

    // The report: a self-contained page that Chromium renders.
    let html = dir.path().join("report.html");
    let (code, _, err) = okra(
        &d,
        &["rollout", "report", "web", "--html", html.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg") && page.contains("error-rate"),
        "{page}"
    );
    assert!(
        !page.contains("http://") || !page.contains("src=\"http"),
        "no external assets"
    );
    screenshot(&html, &dir.path().join("report.png"));

    // Retry: unblocks 1.1.0 and starts again (still bad: rolled back again).
    let (code, out, err) = okra(&d, &["rollout", "retry", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("started"), "{out}");
    let (code, _, _) = okra(&d, &["rollout", "watch", "web", "--interval", "0.2"]);
    assert_eq!(code, 3);

    let (code, out, err) = okra(&d, &["cell", "delete", "web"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted"));
    let (code, _, err) = okra(&d, &["cell", "get", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("NotFound") && err.contains("hint:"), "{err}");
    assert!(
        err.contains("okra cell list"),
        "the same hint both ways: {err}"
    );

    if mode == Mode::Api {
        viewer_reads_but_may_not_steer(&d, &front, &operator, &viewer).await;
    }
}

/// A viewer (`ViewerPolicy`: GET routes) sees a rollout's status but is refused its abort, with
/// a hint naming the operator policy; the operator aborts it; a bad signature is refused.
async fn viewer_reads_but_may_not_steer(
    d: &Demo,
    front: &ApiFront,
    operator: &ApiIdentity,
    viewer: &ApiIdentity,
) {
    let as_operator = |args: &[&str]| okra_with(&api_env(front, operator), args);
    let as_viewer = |args: &[&str]| okra_with(&api_env(front, viewer), args);
    let dir = tempfile::tempdir().unwrap();
    // A cell of its own listener whose rollout waits for a person.
    let mut spec = demo::cell_spec(&d.new_listener("pay").unwrap());
    spec["name"] = json!("pay");
    spec["replicas"] = json!(1);
    spec["clusterSelector"]["matchTags"]["okra.io/cell"] = json!("pay");
    spec["canary"]["steps"] = json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]);
    let file = write(
        dir.path(),
        "pay.yaml",
        &serde_yaml_ng::to_string(&spec).unwrap(),
    );
    // The viewer may not store it.
    let (code, _, err) = as_viewer(&["cell", "apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("HTTP 403") && err.contains("okra-operator"),
        "{err}"
    );
    let (code, _, err) = as_operator(&["cell", "apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // The first version: the cell is initialized.
    d.cluster_of("pay", "pay-a1", "1.0.0").await.unwrap();
    let (code, _, err) = as_operator(&["rollout", "start", "pay"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = as_viewer(&["rollout", "watch", "pay", "--interval", "0.2"]);
    assert_eq!(code, 0, "{out}{err}");
    // The next one: a canary that waits for a person.
    d.cluster_of("pay", "pay-b1", "1.1.0").await.unwrap();
    let (code, out, err) = as_operator(&["rollout", "start", "pay"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("started"), "{out}");
    // Waits for a person: the viewer reads its status.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (code, out, err) = as_viewer(&["rollout", "status", "pay", "--output", "json"]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        if v["wait"]["kind"] == "person" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never waited: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, _, err) = as_viewer(&["rollout", "abort", "pay"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not authorized to perform: execute-api:Invoke")
            && err.contains("/v1/POST/cells/pay/rollouts/")
            && err.contains("okra-operator"),
        "{err}"
    );
    // The operator can.
    let (code, out, err) = as_operator(&["rollout", "abort", "pay"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("abort sent"), "{out}");
    let (code, out, _) = as_viewer(&["rollout", "watch", "pay", "--interval", "0.2"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("rolledBack"), "{out}");
    // A wrong secret: API Gateway's signature refusal, and its own hint.
    let forged = ApiIdentity {
        secret: "not-the-secret".into(),
        ..viewer.clone()
    };
    let (code, _, err) = okra_with(&api_env(front, &forged), &["cell", "list"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("The request signature we calculated does not match")
            && err.contains("hint: the API refused the request's signature"),
        "{err}"
    );
    let log = front.log();
    assert!(
        log.refused.iter().all(|(status, _)| *status == 403),
        "{:?}",
        log.refused
    );
    assert!(
        log.served
            .iter()
            .any(|(m, p, s)| m == "POST" && p.ends_with("/abort") && *s == 202)
    );
}

/// Renders the page in headless Chromium (Debian's `chromium`; `$CHROMIUM` overrides the path)
/// and checks the screenshot is a real picture.
fn screenshot(html: &Path, png: &Path) {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} missing: install Debian's chromium (apt-get install -y chromium; .ci/run does)"
    );
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=900,1100",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let bytes = std::fs::read(png).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        bytes.len() > 10_000,
        "a near-empty picture: {} bytes",
        bytes.len()
    );
    if let Ok(keep) = std::env::var("OKRA_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(png, keep);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_story_goes_as_told() {
    let story = demo::story(&options()).await.unwrap();
    let status: Vec<(&str, &str)> = story
        .rollouts
        .iter()
        .map(|v| (v.rollout.to.as_str(), v.rollout.status.as_ref()))
        .collect();
    assert_eq!(
        status,
        vec![
            ("1.0.0", "promoted"),
            ("1.1.0", "promoted"),
            ("1.2.0", "rolledBack")
        ]
    );
    assert_eq!(story.final_weights, vec![("1.1.0".to_owned(), 100)]);
    assert_eq!(story.blocked, vec!["1.2.0".to_owned()]);
    assert_eq!(story.last_dispatch["outcome"], "nothingToDo");
    let failed = story.rollouts[2].verdict().unwrap();
    assert_eq!(failed.phase.as_str(), "failed");
    assert_eq!(failed.values.get("error-rate"), Some(&12.0));
}

/// `registration: external` leaves registration to aws-load-balancer-controller in each cluster;
/// okra's target group names are deterministic, so the binding is printed offline, with no AWS
/// configuration at all, ready for the cluster's GitOps repository.
#[test]
fn cell_binding_prints_the_target_group_binding_offline() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(
        dir.path(),
        "web.yaml",
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cells/nlb-bluegreen.yaml"),
        )
        .unwrap(),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_okra"))
        .args(["cell", "binding", "-f"])
        .arg(&spec)
        .args([
            "--cluster",
            "gw-b1",
            "--service",
            "gateway",
            "--service-port",
            "8080",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_yaml_ng::from_str(&stdout).unwrap();
    let cell =
        okra_core::spec::CellSpec::from_yaml(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    assert_eq!(doc["kind"], "TargetGroupBinding");
    assert_eq!(doc["apiVersion"], "elbv2.k8s.aws/v1beta1");
    assert_eq!(
        doc["spec"]["targetGroupName"],
        okra_core::naming::target_group_name(&cell.name, "gw-b1")
    );
    assert_eq!(doc["spec"]["serviceRef"]["port"], 8080);
    assert_eq!(doc["metadata"]["namespace"], "default");
}

/// `okra ARGS` with no AWS setting at all (no region, no table, no endpoint).
fn okra_offline(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_okra"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// Issue "Deploys the way AWS users expect": validate and lint offline, every error with its path,
// exit 1 on any, JSON for CI; `apply` refuses a bad spec before asking for a region.
#[test]
fn cell_validate_and_lint_report_every_error_offline() {
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cells");
    let good = write(
        dir.path(),
        "web.yaml",
        &std::fs::read_to_string(examples.join("web.yaml")).unwrap(),
    );
    std::fs::create_dir(dir.path().join("team")).unwrap();
    let bad = write(
        &dir.path().join("team"),
        "five.yaml",
        include_str!("five-mistakes.yaml"),
    );
    write(dir.path(), "notes.txt", "not a spec");

    let (code, stdout, stderr) = okra_offline(
        &["cell", "validate", "-f", good.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    assert!(stdout.contains("ok (cell web)"), "{stdout}");

    let (code, stdout, _) = okra_offline(
        &["cell", "validate", "-f", bad.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code, 1, "{stdout}");
    for line in [
        "6 errors",
        "canary.steps[1].pause.forever: unknown field",
        "clusterSelecter: unknown field (did you mean `clusterSelector`?)",
        "clusterSelector: missing (required)",
        "ingress.alb.rule: unknown field (did you mean `ruleArn`?)",
        "replica: unknown field (did you mean `replicas`?)",
        "targetGroup.port: \"eighty\" is not of type \"integer\"",
    ] {
        assert!(stdout.contains(line), "{line} missing from:\n{stdout}");
    }

    // lint walks the folder: both specs, not the text file; JSON for CI.
    let (code, stdout, _) = okra_offline(&["--output", "json", "cell", "lint"], dir.path());
    assert_eq!(code, 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["valid"], false);
    let files: Vec<(&str, bool, usize)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap(),
                f["valid"].as_bool().unwrap(),
                f["errors"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [("./team/five.yaml", false, 6), ("./web.yaml", true, 0)]
    );

    // apply: the same errors, before anything asks for a region or a table.
    let (code, stdout, stderr) =
        okra_offline(&["cell", "apply", "-f", bad.to_str().unwrap()], dir.path());
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("not applied (6 errors)"), "{stderr}");
    assert!(stderr.contains("replica: unknown field"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("region"), "{stderr}");
}
