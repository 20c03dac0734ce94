#!/usr/bin/env python3
"""Self-test of the strict moto's IAM enforcement (iam_enforce.py) against template.yaml as it is.

Starts its own strict moto on a free 127.0.0.1 port with OKRA_IAM_TEMPLATE=template.yaml (default
refs: stack okra, table okra, us-east-1, account 123456789012), drives it with boto3 clients whose
user agent carries one of okra's function names (`app/NAME`, botocore's `user_agent_appid`), stops
it by its PID, and exits non-zero when a case fails. No cargo involved:

    .tools/venv/bin/python3 tools/local-aws/iam_selftest.py
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
REGION, ACCOUNT = "us-east-1", "123456789012"
RESULTS: list[tuple[str, bool, str]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, log) -> subprocess.Popen:
    env = dict(os.environ, OKRA_IAM_TEMPLATE="template.yaml", OKRA_ELB_HEALTH_TIME_SCALE="0.02")
    env.pop("OKRA_IAM_REFS", None)
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools/local-aws/strict_moto.py"),
                             "-H", "127.0.0.1", "-p", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            admin_route("GET", port, "/_okra/iam")
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"strict moto exited with {proc.returncode}")
            time.sleep(0.2)
    raise SystemExit("strict moto did not start within 60 s")


def admin_route(method: str, port: int, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def client(service: str, port: int, app: str | None = None):
    """A client as okra's function `app` makes it (None: the tests' own, unrestricted)."""
    config = Config(user_agent_appid=app, retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing", config=config)


def preferring(make, protocol: str):
    """A client made while botocore prefers `protocol` (its choice among the model's protocols)."""
    import botocore.model
    saved = botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
    botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = (protocol,) + tuple(p for p in saved if p != protocol)
    try:
        return make()
    finally:
        botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = saved


def case(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"\n      {detail}" if detail else ""), flush=True)


def allowed(name: str, call) -> object:
    try:
        out = call()
        case(name + ": allowed", True)
        return out
    except ClientError as e:
        case(name + ": allowed", False, f"{e.response['Error']}")
        return None


def denied(name: str, call, code: str, needle: str = "") -> None:
    try:
        call()
        case(f"{name}: denied ({code})", False, "the call succeeded")
    except ClientError as e:
        err = e.response["Error"]
        ok = err.get("Code") == code and needle in err.get("Message", "")
        case(f"{name}: denied ({code})", ok, f"{err.get('Code')}: {err.get('Message')}")


def run(port: int) -> None:
    ec2, elb = client("ec2", port), client("elbv2", port)
    # ---- set-up, as the tests' own (unrestricted) clients
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")
               ["Subnet"]["SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    lb = elb.create_load_balancer(Name="web", Subnets=subnets, Type="application")["LoadBalancers"][0]
    okra_tag = [{"Key": "okra.io/managed-by", "Value": "okra"}]

    def group(name, tags):
        return elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
                                       **({"Tags": tags} if tags else {}))["TargetGroups"][0]["TargetGroupArn"]
    tg_okra, tg_plain = group("okra-tg", okra_tag), group("plain-tg", None)
    forward = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg_okra, "Weight": 1}]}}]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=forward)["Listeners"][0]["ListenerArn"]
    client("eks", port).create_cluster(name="c1", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
                                       resourcesVpcConfig={"subnetIds": subnets})
    ddb = client("dynamodb", port)
    for table in ("okra", "other"):
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])

    # ---- the SDK's user agent carries the app id
    seen = {}
    shift = client("elbv2", port, "shift-weights")
    shift.meta.events.register("before-send", lambda request, **_: seen.update(ua=request.headers["User-Agent"]))
    allowed("shift-weights DescribeListeners", lambda: shift.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"]))
    ua = seen.get("ua", b"")
    ua = ua.decode() if isinstance(ua, bytes) else ua
    case("boto3 puts app/shift-weights in the User-Agent", "app/shift-weights" in ua.split(), ua)

    # shift-weights reads its members' target health before a weight change (the readiness gate):
    # template.yaml grants it (without it, every default rollout was AccessDenied at its first weight).
    allowed("shift-weights DescribeTargetHealth", lambda: shift.describe_target_health(TargetGroupArn=tg_okra))
    discover_elb = client("elbv2", port, "discover-clusters")
    denied("discover-clusters DescribeTargetHealth (not in its statements)",
           lambda: discover_elb.describe_target_health(TargetGroupArn=tg_okra),
           "AccessDenied", f"User: arn:aws:sts::{ACCOUNT}:assumed-role/DiscoverClustersFunctionRole/discover-clusters "
           "is not authorized to perform: elasticloadbalancing:DescribeTargetHealth because no identity-based "
           "policy allows the elasticloadbalancing:DescribeTargetHealth action")
    deployed = client("elbv2", port, "okra-DiscoverClustersFunction-1A2B3C")
    denied("okra-DiscoverClustersFunction-1A2B3C (a deployed name) DescribeTargetHealth",
           lambda: deployed.describe_target_health(TargetGroupArn=tg_okra), "AccessDenied",
           "assumed-role/DiscoverClustersFunctionRole/okra-DiscoverClustersFunction-1A2B3C")
    allowed("shift-weights ModifyListener (LoadBalancerNamePattern default *)",
            lambda: shift.modify_listener(ListenerArn=listener, DefaultActions=forward))
    allowed("no app id (the tests' own client) DescribeTargetHealth",
            lambda: elb.describe_target_health(TargetGroupArn=tg_okra))

    ensure = client("elbv2", port, "ensure-target-groups")
    target = [{"Id": "10.0.1.5", "Port": 80}]
    allowed("ensure-target-groups RegisterTargets on a group tagged okra.io/managed-by=okra",
            lambda: ensure.register_targets(TargetGroupArn=tg_okra, Targets=target))
    denied("ensure-target-groups RegisterTargets on an untagged group",
           lambda: ensure.register_targets(TargetGroupArn=tg_plain, Targets=target), "AccessDenied",
           f"on resource: {tg_plain}")
    made = allowed("ensure-target-groups CreateTargetGroup tagged okra.io/managed-by=okra (+ AddTags on create)",
                   lambda: ensure.create_target_group(Name="okra-new", Protocol="HTTP", Port=80, VpcId=vpc,
                                                      TargetType="ip", Tags=okra_tag))
    if made:
        arn = made["TargetGroups"][0]["TargetGroupArn"]
        tags = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
        case("the new group has its tags", tags == okra_tag, str(tags))
    denied("ensure-target-groups CreateTargetGroup without the tag",
           lambda: ensure.create_target_group(Name="plain-new", Protocol="HTTP", Port=80, VpcId=vpc,
                                              TargetType="ip"), "AccessDenied",
           "elasticloadbalancing:CreateTargetGroup on resource: arn:aws:elasticloadbalancing:")
    try:
        elb.describe_target_groups(Names=["plain-new"])
        case("no group made by the denied CreateTargetGroup", False, "plain-new exists")
    except ClientError as e:
        case("no group made by the denied CreateTargetGroup", e.response["Error"]["Code"] == "TargetGroupNotFound")
    denied("ensure-target-groups AddTags team=x on an okra group",
           lambda: ensure.add_tags(ResourceArns=[tg_okra], Tags=[{"Key": "team", "Value": "x"}]), "AccessDenied")
    allowed("ensure-target-groups AddTags okra.io/cell=web on an okra group",
            lambda: ensure.add_tags(ResourceArns=[tg_okra], Tags=[{"Key": "okra.io/cell", "Value": "web"}]))

    # The dispatcher's retirement (okra_core::retire): it deletes, marks and unmarks only groups
    # tagged okra.io/managed-by=okra, with okra.io/idle-since only; it tags clusters with
    # okra.io/retired only.
    disp = client("elbv2", port, "dispatcher")
    idle = [{"Key": "okra.io/idle-since", "Value": "2026-12-06T00:00:00Z"}]
    allowed("dispatcher AddTags okra.io/idle-since on an okra group",
            lambda: disp.add_tags(ResourceArns=[tg_okra], Tags=idle))
    denied("dispatcher AddTags okra.io/cell on an okra group",
           lambda: disp.add_tags(ResourceArns=[tg_okra], Tags=[{"Key": "okra.io/cell", "Value": "x"}]),
           "AccessDenied")
    allowed("dispatcher RemoveTags okra.io/idle-since on an okra group",
            lambda: disp.remove_tags(ResourceArns=[tg_okra], TagKeys=["okra.io/idle-since"]))
    denied("dispatcher DeleteTargetGroup of an untagged group",
           lambda: disp.delete_target_group(TargetGroupArn=tg_plain), "AccessDenied",
           f"elasticloadbalancing:DeleteTargetGroup on resource: {tg_plain}")
    spare = group("okra-spare", okra_tag)
    allowed("dispatcher DeleteTargetGroup of an okra group",
            lambda: disp.delete_target_group(TargetGroupArn=spare))
    disp_eks = client("eks", port, "dispatcher")
    c1 = client("eks", port).describe_cluster(name="c1")["cluster"]["arn"]
    allowed("dispatcher TagResource okra.io/retired on a cluster",
            lambda: disp_eks.tag_resource(resourceArn=c1, tags={"okra.io/retired": "2026-12-06T00:00:00Z"}))
    denied("dispatcher TagResource okra.io/version on a cluster",
           lambda: disp_eks.tag_resource(resourceArn=c1, tags={"okra.io/version": "9.9.9"}),
           "AccessDeniedException")

    state = client("dynamodb", port, "rollout-state")
    key = {"pk": {"S": "cell#web"}}
    allowed("rollout-state GetItem on table okra", lambda: state.get_item(TableName="okra", Key=key))
    denied("rollout-state GetItem on table other", lambda: state.get_item(TableName="other", Key=key),
           "AccessDeniedException", f"on resource: arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/other")

    discover = client("eks", port, "discover-clusters")
    allowed("discover-clusters DescribeCluster", lambda: discover.describe_cluster(name="c1"))
    denied("discover-clusters ListClusters", discover.list_clusters, "AccessDeniedException", "eks:ListClusters")

    cw_query = {"MetricDataQueries": [{"Id": "e", "MetricStat": {"Metric": {
        "Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count"}, "Period": 60, "Stat": "Sum"}}],
        "StartTime": time.time() - 600, "EndTime": time.time()}
    # botocore calls CloudWatch in JSON 1.0 (its protocol priority puts json before CBOR);
    # aws-sdk-cloudwatch >= 1.100 in RPC v2 CBOR, which a CBOR-first client reproduces here.
    for proto in ("json", "smithy-rpc-v2-cbor"):
        check, shift_cw = (preferring(lambda: client("cloudwatch", port, app), proto)
                           for app in ("check-metrics", "shift-weights"))
        case(f"the CloudWatch client speaks {proto}", check.meta.service_model.resolved_protocol == proto)
        allowed(f"check-metrics GetMetricData ({proto})", lambda: check.get_metric_data(**cw_query))
        denied(f"shift-weights GetMetricData ({proto})", lambda: shift_cw.get_metric_data(**cw_query),
               "AccessDenied", "cloudwatch:GetMetricData")
    denied("shift-weights DescribeInstances", client("ec2", port, "shift-weights").describe_instances,
           "UnauthorizedOperation", "You are not authorized to perform this operation.")

    # ---- the route the local Step Functions service asks
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:okra-rollout"

    def ask(caller, action, resources):
        return admin_route("POST", port, "/_okra/iam/authorize",
                           {"caller": caller, "action": action, "resources": resources})
    a = ask("rollout-state", "states:SendTaskSuccess", [machine])
    case("authorize: rollout-state SendTaskSuccess on the state machine", a["allowed"]
         and a["function"] == "RolloutStateFunction", str(a))
    a = ask("rollout-state", "states:SendTaskSuccess", ["*"])
    case("authorize: rollout-state SendTaskSuccess on * (the reference's resource)", not a["allowed"], str(a))
    a = ask("api", "states:StartExecution", [f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:other"])
    case("authorize: api StartExecution of another state machine", not a["allowed"], str(a))
    a = ask("someone", "states:StartExecution", ["*"])
    case("authorize: an unknown caller is not restricted", a["allowed"] and a["function"] is None, str(a))
    # A role of the template (not a function): EventBridge Scheduler's, by its CloudFormation name.
    role = "okra-SampleScheduleRole-LOCAL"
    check_metrics = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:check-metrics"
    a = ask(role, "lambda:InvokeFunction", [check_metrics])
    case("authorize: the sample role invokes check-metrics", a["allowed"]
         and a["function"] == "SampleScheduleRole", str(a))
    a = ask(role, "lambda:InvokeFunction", [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shift-weights"])
    case("authorize: the sample role invokes nothing else", not a["allowed"], str(a))
    group = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/okra-samples/s"
    a = ask("rollout-state", "scheduler:CreateSchedule", [group])
    case("authorize: rollout-state makes schedules in the group", a["allowed"], str(a))
    a = ask("rollout-state", "scheduler:CreateSchedule",
            [f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/s"])
    case("authorize: ... and in no other group", not a["allowed"], str(a))
    a = ask("check-metrics", "scheduler:CreateSchedule", [group])
    case("authorize: check-metrics makes no schedule (it only deletes)", not a["allowed"], str(a))
    # The ready roles: a principal holding okra-viewer reads, one holding okra-operator acts.
    route = lambda method, path: f"arn:aws:execute-api:{REGION}:{ACCOUNT}:okraapi001/v1/{method}/{path}"
    for caller, method, path, allowed_ in [
        ("alice-ViewerPolicy-1", "GET", "cells", True),
        ("alice-ViewerPolicy-1", "GET", "cells/web/rollouts/web--1-1-0--0", True),
        ("alice-ViewerPolicy-1", "POST", "cells/web/rollouts/web--1-1-0--0/abort", False),
        ("alice-ViewerPolicy-1", "PUT", "cells/web", False),
        ("bob-OperatorPolicy-1", "POST", "cells/web/rollouts/web--1-1-0--0/abort", True),
        ("bob-OperatorPolicy-1", "GET", "cells", True),
    ]:
        a = ask(caller, "execute-api:Invoke", [route(method, path)])
        case(f"authorize: {caller.split('-')[1]} {method} /{path}: {'allowed' if allowed_ else 'denied'}",
             a["allowed"] == allowed_, str(a))
    a = ask("bob-OperatorPolicy-1", "execute-api:Invoke",
            [f"arn:aws:execute-api:{REGION}:{ACCOUNT}:otherapi/v1/GET/cells"])
    case("authorize: the operator policy reaches no other API", not a["allowed"], str(a))

    iam = admin_route("GET", port, "/_okra/iam")
    actions = {d["action"] for d in iam["denied"]}
    case("GET /_okra/iam lists the denials", iam["enabled"] and "elasticloadbalancing:DescribeTargetHealth" in actions
         # the seven functions, EventBridge Scheduler's role and the two ready policies
         and len(iam["functions"]) == 10, f"{len(iam['denied'])} denials: {sorted(actions)}")
    cleared = admin_route("DELETE", port, "/_okra/iam")
    case("DELETE /_okra/iam clears them", cleared["denied"] == [])
    off = admin_route("POST", port, "/_okra/iam", {"template": None})
    allowed("after POST /_okra/iam {template: null}: discover-clusters DescribeTargetHealth",
            lambda: discover_elb.describe_target_health(TargetGroupArn=tg_okra))
    case("POST /_okra/iam {template: null} turns it off", off["enabled"] is False)


def main() -> int:
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", prefix="iam-selftest-", suffix=".log", delete=False) as log:
        proc = start(port, log)
        try:
            run(port)
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        log.seek(0)
        lines = [l.rstrip() for l in log if l.startswith("okra-iam:")]
    case("each denial printed to stderr as `okra-iam: DENY ...`",
         any(l.startswith("okra-iam: DENY caller=discover-clusters action=elasticloadbalancing:DescribeTargetHealth")
             for l in lines), "\n      ".join(lines))
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} passed (server log: {log.name})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
