#!/usr/bin/env python3
"""okra's strict moto: moto's server (the pinned 5.2.5) with the project's own patches where AWS is
strict and okra depends on it. Same command line as `moto_server` (-H HOST -p PORT).

What it changes (docs/local-aws.md, "Strictness: AWS vs the emulators"):

Target health, as the ELB API reference (TargetHealth, TargetHealthDescription) and the ALB guide
("Health checks for Application Load Balancer target groups") describe it:
- a registered target of a group that no listener's default action or rule's forward action
  names is `unused` (`Target.NotInUse`) and is not probed;
- once its group is in a forward action (any weight, 0 included) it is `initial`
  (`Elb.InitialHealthChecking`) until its first check; a passing first check makes it `healthy`,
  after which `UnhealthyThresholdCount` failed checks in a row make it `unhealthy`
  (`Target.ResponseCodeMismatch`, `Target.Timeout`, `Target.FailedHealthChecks`) and
  `HealthyThresholdCount` passing ones healthy again;
- checks are real HTTP GETs of `HealthCheckPath` on the target's port (`traffic-port`) or
  `HealthCheckPort`, every `HealthCheckIntervalSeconds`, within `HealthCheckTimeoutSeconds`,
  passing when the status matches `Matcher.HttpCode` ("200", "200-399", "200,302");
- a deregistered target is `draining` (`Target.DeregistrationInProgress`) for the group's
  `deregistration_delay.timeout_seconds`, and DescribeTargetHealth lists it meanwhile (moto
  forgets it at once).
Targets have no address on this machine: `POST /_okra/targets` with
`{"targets": {"<id>:<port>": "127.0.0.1:<port>"}}` maps a target (an IP of the VPC, or an
instance id) to a local backend; `GET` shows the map, `DELETE` clears it. An unmapped target in
use fails its checks (`Target.Timeout`). `OKRA_ELB_HEALTH_TIME_SCALE` (default 1) multiplies every
interval, timeout and delay, so tests need not wait 30 s per check.

ELB constraints (ELB API reference, CreateListener/ModifyListener/CreateRule/ModifyRule,
RegisterTargets; the ALB guide's "Listener rules" and "Target groups"):
- a forward action names at most 5 target groups, weights 0-999, every group existing
  (`TargetGroupNotFound`) and in the load balancer's VPC, and none used by another load balancer
  (`TargetGroupAssociationLimit`: one load balancer per target group, "Quotas for your
  Application Load Balancers");
- `ip` targets must be private addresses (RFC 1918, RFC 6598); 127.0.0.1 is refused;
- an `authenticate-oidc` action needs `ClientSecret` or `UseExistingClientSecret: true`
  (AuthenticateOidcActionConfig: DescribeListeners never returns the secret).

CloudWatch: a GetMetricData MetricStat query reads exactly the metric of its namespace, name and
dimension set; metric math (+ - * /, SUM/AVG/MIN/MAX of [ids] or METRICS()) is computed element-wise
over the call's series; other expressions are refused (ValidationError), never silently empty.

CloudWatch's current protocol, Smithy RPC v2 CBOR (aws-sdk-cloudwatch 1.100+): translated to the
awsQuery moto reads and back, input validated against botocore's model first (below).

Throttling (opt-in: OKRA_THROTTLE=1 or `POST /_okra/throttle {"enabled": true}`): a token bucket
per service and operation group, refused calls answered in each service's throttling shape;
`GET /_okra/calls` counts calls and throttled calls per operation, and calls per caller (the
`app/NAME` of the SDK's user agent: okra's functions put their function name there) and
operation; `DELETE` resets. EKS's REST calls are named by operation (`eks:DescribeCluster`).
`POST /_okra/seed/eks-clusters` makes many EKS clusters at once (benchmarks).
`POST /_okra/eks/endpoint {"account", "region", "name", "endpoint", "caData"}` sets an EKS
cluster's `endpoint` and `certificateAuthority.data`, so that DescribeCluster of the Argo CD hub
answers the local Kubernetes API's address and CA (okra_testkit::KubeApi).

IAM (on when OKRA_IAM_TEMPLATE names a template, or after `POST /_okra/iam`): a request from one
of okra's functions (the `app/NAME` of its user agent) is authorized against that function's
statements in the template, and answered with the service's own AccessDenied where AWS would
refuse it (iam_enforce.py; `GET /_okra/iam` lists the denials). `GET /_okra/iam/principal?caller=NAME`
says which function a caller is and its role's ARN (for the local Kubernetes API).

Resource Groups Tagging API: GetResources answers EKS clusters (`eks:cluster`) and node groups
from the EKS backend (moto's EKS takes no part in it), and pages by ResourcesPerPage only (moto
also cuts pages at 100 tags).

EKS access entries (moto 5.2.5 has none), as the Amazon EKS API reference has each operation:
CreateAccessEntry (409 ResourceInUseException for a principal already in, unless the same
clientRequestToken; 400 InvalidParameterException for a principal that is not an IAM role or user
ARN), Describe/List/Update/DeleteAccessEntry (404 "The specified principalArn could not be
found..."), AssociateAccessPolicy (an upsert of the scope; a known
`arn:aws:eks::aws:cluster-access-policy/NAME` only; `namespace` scope needs namespaces),
ListAssociatedAccessPolicies, DisassociateAccessPolicy, ListAccessPolicies, and tags on an
access entry's ARN. `GET /_okra/eks/access-entries?cluster=NAME&account=..&region=..` answers a
cluster's entries with their policies and scopes (for the local Kubernetes API). IAM:
iam_enforce.eks_access_entry_checks; test: eks_access_selftest.py.
"""
import datetime
import inspect
import io
import ipaddress
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from typing import Any

from moto.elbv2 import models as elbv2
from moto.elbv2.exceptions import ELBClientError, TargetGroupNotFoundError
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

import iam_enforce

SCALE = float(os.environ.get("OKRA_ELB_HEALTH_TIME_SCALE", "1") or "1")
LOCK = threading.RLock()
TARGET_MAP: dict[str, str] = {}
# (target group ARN, target id, port) -> health record
HEALTH: dict[tuple[str, str, str], dict[str, Any]] = {}
# (target group ARN, target id) -> deregistration time
DRAINING: dict[tuple[str, str], tuple[float, dict]] = {}

MAX_TARGET_GROUPS_PER_FORWARD = 5


def backends():
    for account in list(elbv2.elbv2_backends.keys()):
        for region in list(elbv2.elbv2_backends[account].keys()):
            yield elbv2.elbv2_backends[account][region]


def forward_groups(action) -> list[str]:
    """The target group ARNs a forward action names (either form)."""
    data = getattr(action, "data", action) or {}
    if (data.get("Type") or "").lower() != "forward":
        return []
    arns = []
    if data.get("TargetGroupArn"):
        arns.append(data["TargetGroupArn"])
    for tg in (data.get("ForwardConfig") or {}).get("TargetGroups", []) or []:
        if tg.get("TargetGroupArn"):
            arns.append(tg["TargetGroupArn"])
    return arns


def groups_in_use(backend) -> set[str]:
    used = set()
    for lb in list(backend.load_balancers.values()):
        for listener in list(lb.listeners.values()):
            for rule in list(listener.rules.values()):
                for action in rule.actions:
                    used.update(forward_groups(action))
    return used


def in_use(tg_arn: str) -> bool:
    return any(tg_arn in groups_in_use(b) for b in backends())


def matches(code: int, matcher: str) -> bool:
    for part in (matcher or "200").split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            if int(lo) <= code <= int(hi):
                return True
        elif part and int(part) == code:
            return True
    return False


def probe(tg, target_id: str, port: str) -> tuple[bool, str]:
    """One health check: (passed, reason when it failed)."""
    hc_port = tg.health_check_port
    if not hc_port or hc_port == "traffic-port":
        hc_port = port
    with LOCK:
        mapped = TARGET_MAP.get(f"{target_id}:{hc_port}")
    if mapped is None:
        return False, "Target.Timeout"
    path = tg.health_check_path or "/"
    timeout = max(0.05, float(tg.health_check_timeout_seconds or 5) * SCALE)
    try:
        with urllib.request.urlopen(f"http://{mapped}{path}", timeout=timeout) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception:  # refused, reset, timed out: no answer
        return False, "Target.Timeout"
    matcher = (tg.matcher or {}).get("HttpCode", "200") if isinstance(tg.matcher, dict) else "200"
    if matches(code, matcher):
        return True, ""
    return False, "Target.ResponseCodeMismatch"


def check_once(now: float) -> None:
    for backend in backends():
        used = groups_in_use(backend)
        for tg in list(backend.target_groups.values()):
            if tg.arn not in used:
                # Out of use: the next use starts from `initial` again.
                with LOCK:
                    for key in [k for k in HEALTH if k[0] == tg.arn]:
                        HEALTH.pop(key, None)
                continue
            interval = float(tg.health_check_interval_seconds or 30) * SCALE
            healthy_n = int(tg.healthy_threshold_count or 5)
            unhealthy_n = int(tg.unhealthy_threshold_count or 2)
            for t in list(tg.targets.values()):
                key = (tg.arn, t["Id"], str(t["Port"]))
                with LOCK:
                    rec = HEALTH.setdefault(key, {"state": "initial", "reason": "Elb.InitialHealthChecking",
                                                  "ok": 0, "bad": 0, "next": now})
                    if now < rec["next"]:
                        continue
                    rec["next"] = now + interval
                passed, why = probe(tg, t["Id"], str(t["Port"]))
                with LOCK:
                    if passed:
                        rec["ok"] += 1
                        rec["bad"] = 0
                        if rec["state"] == "initial" or rec["ok"] >= healthy_n:
                            rec["state"], rec["reason"] = "healthy", None
                    else:
                        rec["bad"] += 1
                        rec["ok"] = 0
                        if rec["state"] == "initial" and rec["bad"] < unhealthy_n:
                            continue
                        if rec["state"] == "initial" or rec["bad"] >= unhealthy_n:
                            rec["state"] = "unhealthy"
                            rec["reason"] = why if rec["bad"] < unhealthy_n else (
                                why if why != "Target.Timeout" else "Target.Timeout")


def checker() -> None:
    while True:
        try:
            check_once(time.monotonic())
        except Exception as e:  # keep checking; say what broke
            print(f"strict_moto: health checker: {e!r}", file=sys.stderr, flush=True)
        time.sleep(max(0.02, min(1.0, 0.5 * SCALE)))


# ------------------------------------------------------------------ patches: target health
_orig_health_for = elbv2.FakeTargetGroup.health_for
_orig_deregister = elbv2.FakeTargetGroup.deregister


def health_for(self, target, ec2_backend):
    tid = target["Id"]
    t = self.targets.get(tid)
    if t is None:
        with LOCK:
            since = DRAINING.get((self.arn, tid), (None,))[0]
        delay = float(self.attributes.get("deregistration_delay.timeout_seconds", 300)) * SCALE
        if since is not None and time.monotonic() - since < delay:
            return elbv2.FakeHealthStatus(tid, target.get("Port", self.port), self.health_check_port,
                                          "draining", "Target.DeregistrationInProgress",
                                          "Target deregistration is in progress")
        return _orig_health_for(self, target, ec2_backend)
    port = str(t["Port"])
    if not in_use(self.arn):
        return elbv2.FakeHealthStatus(tid, t["Port"], self.health_check_port, "unused", "Target.NotInUse",
                                      "Target group is not configured to receive traffic from the load balancer")
    with LOCK:
        rec = HEALTH.get((self.arn, tid, port))
    if rec is None or rec["state"] == "initial":
        return elbv2.FakeHealthStatus(tid, t["Port"], self.health_check_port, "initial",
                                      "Elb.InitialHealthChecking", "Initial health checks in progress")
    if rec["state"] == "healthy":
        return elbv2.FakeHealthStatus(tid, t["Port"], self.health_check_port, "healthy")
    descriptions = {"Target.Timeout": "Request timed out",
                    "Target.ResponseCodeMismatch": "Health checks failed with these codes",
                    "Target.FailedHealthChecks": "Health checks failed"}
    return elbv2.FakeHealthStatus(tid, t["Port"], self.health_check_port, "unhealthy", rec["reason"],
                                  descriptions.get(rec["reason"], "Health checks failed"))


def deregister(self, targets):
    _orig_deregister(self, targets)
    with LOCK:
        for t in targets:
            DRAINING[(self.arn, t["Id"])] = (time.monotonic(), dict(t))
            for key in [k for k in HEALTH if k[0] == self.arn and k[1] == t["Id"]]:
                HEALTH.pop(key, None)


elbv2.FakeTargetGroup.health_for = health_for
elbv2.FakeTargetGroup.deregister = deregister

_orig_describe_target_health = elbv2.ELBv2Backend.describe_target_health


def describe_target_health(self, target_group_arn, targets):
    """DescribeTargetHealth without targets lists draining targets too, as AWS does (moto forgets
    a target the moment it is deregistered)."""
    out = _orig_describe_target_health(self, target_group_arn, targets)
    if targets:
        return out
    tg = self.target_groups[target_group_arn]
    with LOCK:
        gone = [v[1] for k, v in DRAINING.items() if k[0] == target_group_arn and k[1] not in tg.targets]
    for t in gone:
        status = tg.health_for(t, self.ec2_backend)
        if status.status == "draining":
            out.append(status)
    return out


elbv2.ELBv2Backend.describe_target_health = describe_target_health


# ------------------------------------------------------------------ patches: ELB constraints
class ValidationError(ELBClientError):
    def __init__(self, message: str):
        super().__init__("ValidationError", message)


class InvalidConfigurationRequest(ELBClientError):
    def __init__(self, message: str):
        super().__init__("InvalidConfigurationRequest", message)


class TargetGroupAssociationLimit(ELBClientError):
    def __init__(self, message: str):
        super().__init__("TargetGroupAssociationLimit", message)


def other_load_balancers_using(backend, tg_arn: str, lb_arn: str | None) -> list[str]:
    """The load balancers other than `lb_arn` with a listener or rule forwarding to `tg_arn`."""
    out = []
    for lb in list(backend.load_balancers.values()):
        if lb.arn == lb_arn:
            continue
        if any(tg_arn in forward_groups(a)
               for listener in list(lb.listeners.values())
               for rule in list(listener.rules.values())
               for a in rule.actions):
            out.append(lb.arn)
    return out


class InvalidTarget(ELBClientError):
    def __init__(self, message: str):
        super().__init__("InvalidTarget", message)


def check_actions(backend, actions, load_balancer_arn: str | None) -> None:
    lb = backend.load_balancers.get(load_balancer_arn) if load_balancer_arn else None
    for a in actions or []:
        data = a if isinstance(a, dict) else getattr(a, "data", {})
        if (data.get("Type") or "").lower() == "authenticate-oidc":
            cfg = data.get("AuthenticateOidcConfig") or {}
            if not cfg.get("ClientSecret") and str(cfg.get("UseExistingClientSecret", "")).lower() != "true":
                raise ValidationError(
                    "An authenticate-oidc action needs ClientSecret, or UseExistingClientSecret set "
                    "to true to keep the one the listener has (AWS never returns it)")
        if (data.get("Type") or "").lower() != "forward":
            continue
        tuples = (data.get("ForwardConfig") or {}).get("TargetGroups", []) or []
        if len(tuples) > MAX_TARGET_GROUPS_PER_FORWARD:
            raise ValidationError(
                f"A forward action can have at most {MAX_TARGET_GROUPS_PER_FORWARD} target groups; "
                f"{len(tuples)} given")
        for tg in tuples:
            w = tg.get("Weight")
            if w is not None and not 0 <= int(w) <= 999:
                raise ValidationError(f"Weight {w} is not in 0-999")
        for arn in forward_groups(data):
            tg = backend.target_groups.get(arn)
            if tg is None:
                raise TargetGroupNotFoundError()
            if lb is not None and getattr(lb, "vpc_id", None) and tg.vpc_id != lb.vpc_id:
                raise InvalidConfigurationRequest(
                    f"Target group '{arn}' is in VPC '{tg.vpc_id}', not the load balancer's VPC '{lb.vpc_id}'")
            # ALB quotas: load balancers per target group, 1 (not adjustable).
            others = other_load_balancers_using(backend, arn, load_balancer_arn)
            if others:
                raise TargetGroupAssociationLimit(
                    f"Target group '{arn}' is used by load balancer '{others[0]}': a target group "
                    "serves one load balancer")


def listener_lb(backend, listener_arn: str) -> str | None:
    for lb in backend.load_balancers.values():
        if listener_arn in lb.listeners:
            return lb.arn
    return None


def rule_lb(backend, rule_arn: str) -> str | None:
    for lb in backend.load_balancers.values():
        for listener in lb.listeners.values():
            if rule_arn in listener.rules:
                return lb.arn
    return None


B = elbv2.ELBv2Backend
_register_targets = B.register_targets


def checked(name: str, lb_of) -> None:
    """Wraps backend method `name` so that its `actions` are checked first; `lb_of(backend,
    bound arguments)` names the load balancer."""
    orig = getattr(B, name)
    sig = inspect.signature(orig)

    def wrapper(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        check_actions(self, bound.arguments.get("actions"), lb_of(self, bound.arguments))
        return orig(self, *args, **kwargs)

    setattr(B, name, wrapper)


checked("create_listener", lambda b, a: a.get("load_balancer_arn"))
checked("modify_listener", lambda b, a: listener_lb(b, a.get("arn")))
checked("create_rule", lambda b, a: listener_lb(b, a.get("listener_arn")))
checked("modify_rule", lambda b, a: rule_lb(b, a.get("rule_arn")))


PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]


def register_targets(self, target_group_arn, instances):
    tg = self.target_groups.get(target_group_arn)
    if tg is not None and tg.target_type == "ip":
        for t in instances:
            try:
                ip = ipaddress.ip_address(t["Id"])
            except ValueError:
                raise InvalidTarget(f"The IP address '{t['Id']}' is not valid")
            if ip.version == 4 and not any(ip in n for n in PRIVATE):
                raise InvalidTarget(
                    f"The IP address '{t['Id']}' is not a valid IPv4 address in the VPC's CIDR or "
                    "the RFC 1918 / RFC 6598 ranges")
    return _register_targets(self, target_group_arn, instances)


B.register_targets = register_targets


# ------------------------------------------------------------------ patches: CloudWatch identity
# A metric is its namespace, its name and its whole set of dimensions (CloudWatch concepts,
# "Metrics" and "Dimensions"; GetMetricData's MetricStat names one metric). moto 5.2.5 drops the
# namespace when a query has dimensions, and lets a query without dimensions match every
# dimension set. Each MetricStat query is answered over exactly its metric's datapoints.
from moto.cloudwatch import models as cloudwatch  # noqa: E402

_get_metric_data = cloudwatch.CloudWatchBackend.get_metric_data
GET_METRIC_DATA_LOCK = threading.Lock()


def metric_identity(namespace, name, dims) -> tuple:
    return namespace, name, tuple(sorted(dims))


class MetricMathError(ELBClientError):
    def __init__(self, message: str):
        super().__init__("ValidationError", message)


def evaluate(expression: str, series: dict[str, dict]) -> dict:
    """Metric math over the call's MetricStat series (id -> {timestamp: value}): arithmetic
    (+ - * / and unary -) between series and numbers, element-wise on shared timestamps, and
    SUM / AVG / MIN / MAX of an array of series ([a, b] or METRICS()), element-wise too
    ("Use metric math" in the CloudWatch user guide). Anything else is refused."""
    import ast
    import operator
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
    reducers = {"SUM": sum, "AVG": lambda v: sum(v) / len(v), "MIN": min, "MAX": max}

    def combine(f, a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            keys = a.keys() & b.keys()
            pairs = {k: (a[k], b[k]) for k in keys}
        elif isinstance(a, dict):
            pairs = {k: (v, b) for k, v in a.items()}
        elif isinstance(b, dict):
            pairs = {k: (a, v) for k, v in b.items()}
        else:
            return f(a, b)
        out = {}
        for k, (x, y) in pairs.items():
            try:
                out[k] = f(x, y)
            except ZeroDivisionError:
                continue  # no datapoint where the divisor is 0
        return out

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in series:
                raise MetricMathError(f"Metric math: unknown id '{node.id}' in '{expression}'")
            return series[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return combine(operator.mul, ev(node.operand), -1.0)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return combine(ops[type(node.op)], ev(node.left), ev(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in reducers:
            if len(node.args) != 1:
                raise MetricMathError(f"Metric math: {node.func.id} takes one argument in '{expression}'")
            arg = node.args[0]
            if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "METRICS":
                items = list(series.values())
            elif isinstance(arg, ast.List):
                items = [ev(e) for e in arg.elts]
            else:
                one = ev(arg)
                if not isinstance(one, dict) or not one:
                    raise MetricMathError(f"Metric math: {node.func.id} of nothing in '{expression}'")
                return float(reducers[node.func.id](list(one.values())))
            if not all(isinstance(i, dict) for i in items) or not items:
                raise MetricMathError(f"Metric math: {node.func.id} needs time series in '{expression}'")
            keys = set.intersection(*(set(i.keys()) for i in items))
            return {k: float(reducers[node.func.id]([i[k] for i in items])) for k in keys}
        raise MetricMathError(f"Metric math: unsupported expression '{expression}' (okra's local AWS "
                              "computes + - * /, SUM/AVG/MIN/MAX of [ids] or METRICS())")

    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise MetricMathError(f"Metric math: cannot parse '{expression}'")
    result = ev(tree)
    if not isinstance(result, dict):
        raise MetricMathError(f"Metric math: '{expression}' gives a single number, not a time series")
    return result


def get_metric_data(self, queries, start_time, end_time, scan_by="TimestampAscending"):
    computed: list[tuple[dict, dict]] = []  # (query, result) in query order
    series: dict[str, dict] = {}
    with GET_METRIC_DATA_LOCK:
        everything = type(self).get_all_metrics
        for q in queries:
            if "MetricStat" not in q:
                continue
            m = q["MetricStat"]["Metric"]
            want = metric_identity(m.get("Namespace"), m.get("MetricName"),
                                   [(d["Name"], d["Value"]) for d in m.get("Dimensions", []) or []])
            self.get_all_metrics = lambda: [
                md for md in everything(self)
                if metric_identity(md.namespace, md.name, [(d.name, d.value) for d in md.dimensions]) == want
            ]
            try:
                # Every MetricStat is computed; ReturnData only decides what is returned.
                r = _get_metric_data(self, [dict(q, ReturnData=True)], start_time, end_time, scan_by)[0]
            finally:
                del self.get_all_metrics
            computed.append((q, r))
            series[q["Id"]] = dict(zip(r["timestamps"], r["values"]))
    for q in queries:
        if "Expression" not in q:
            continue
        if q["Expression"].strip().upper().startswith("SELECT"):
            raise MetricMathError("Metrics Insights queries are not emulated")
        values = evaluate(q["Expression"], series)
        stamps = sorted(values, reverse=(scan_by == "TimestampDescending"))
        series[q["Id"]] = values
        computed.append((q, {"id": q["Id"], "label": q.get("Label") or q["Id"],
                             "values": [values[t] for t in stamps], "timestamps": stamps,
                             "status_code": "Complete"}))
    order = {q["Id"]: i for i, q in enumerate(queries)}
    computed.sort(key=lambda qr: order[qr[0]["Id"]])
    return [r for q, r in computed if str(q.get("ReturnData", True)).lower() != "false"]


cloudwatch.CloudWatchBackend.get_metric_data = get_metric_data


# ------------------------------------------------------------------ patches: tagging API
# AWS: Resource Groups Tagging API reference, GetResources — EKS clusters are `eks:cluster`
# resources (and node groups `eks:nodegroup`) with their tags; pages of ResourcesPerPage (1-100,
# which moto checks). moto 5.2.5's EKS backend takes no part in the tagging API: GetResources
# answers no cluster at all. Here it does, from the EKS backend's own state.
from moto.core.resource_tagging import TaggableResourcesMixin, TaggedResource
from moto.eks import models as eks_models
from moto.resourcegroupstaggingapi import models as tagging_models


def eks_tagged_resources(self):
    for cluster in list(self.clusters.values()):
        yield TaggedResource(arn=cluster.arn, tags=dict(cluster.tags or {}), resource_type="eks:cluster")
        for ng in list(cluster.nodegroups.values()):
            yield TaggedResource(arn=ng.arn, tags=dict(ng.tags or {}), resource_type="eks:nodegroup")


if not issubclass(eks_models.EKSBackend, TaggableResourcesMixin):
    eks_models.EKSBackend.__bases__ = eks_models.EKSBackend.__bases__ + (TaggableResourcesMixin,)
    eks_models.EKSBackend.SERVICE_NAMESPACE = "eks"
    eks_models.EKSBackend.iter_tagged_resources = eks_tagged_resources

_moto_get_resources = tagging_models.ResourceGroupsTaggingAPIBackend.get_resources


def get_resources(self, pagination_token=None, resources_per_page=50, tags_per_page=100, **kw):
    # moto ends a page at 100 tags even when the caller asked only for ResourcesPerPage (its
    # TagsPerPage default): with okra's three to five tags a resource, pages of ~25 instead of
    # 100. AWS pages by ResourcesPerPage (and recommends it over TagsPerPage); so here.
    return _moto_get_resources(self, pagination_token=pagination_token,
                               resources_per_page=resources_per_page, tags_per_page=10**9, **kw)


tagging_models.ResourceGroupsTaggingAPIBackend.get_resources = get_resources


# ------------------------------------------------------------------ patches: EKS access entries
# moto 5.2.5 has no access entries. Here they are, as the Amazon EKS API reference describes each
# operation (API_CreateAccessEntry, API_DescribeAccessEntry, API_ListAccessEntries,
# API_UpdateAccessEntry, API_DeleteAccessEntry, API_AssociateAccessPolicy,
# API_ListAssociatedAccessPolicies, API_DisassociateAccessPolicy, API_ListAccessPolicies; shapes
# AccessEntry, AccessScope, AssociatedAccessPolicy) and the user guide ("Create access entries",
# "Set a custom username for EKS access entries", "Associate access policies with access entries",
# "Review access policy permissions"). Requests are routed and parsed by moto itself (botocore's
# model of EKS, whose labels arrive percent-encoded: a principal ARN is one path segment), answers
# serialized by moto from the output shapes. Entries live on moto's Cluster object
# (`okra_access_entries`, principal ARN -> entry), so DeleteCluster takes them along.
# Not modelled: the cluster's authenticationMode (every cluster accepts access entries), whether
# the IAM principal exists (AWS refuses an unknown one: "The specified principalArn is invalid:
# invalid principal."), the usernames and groups AWS gives node-type entries.
from moto.eks import responses as eks_responses  # noqa: E402
from moto.utilities.utils import get_partition  # noqa: E402
from moto.eks import urls as eks_urls  # noqa: E402
from moto.eks.exceptions import (  # noqa: E402
    InvalidParameterException as EksInvalidParameter,
    ResourceInUseException as EksResourceInUse,
    ResourceNotFoundException as EksNotFound,
)

# `aws eks list-access-policies` (the names the "Review access policy permissions" page lists
# and the ones the API returns besides): arn:PARTITION:eks::aws:cluster-access-policy/NAME.
EKS_ACCESS_POLICIES = (
    "AIDevOpsAgentAccessPolicy", "AmazonAIOpsAssistantPolicy", "AmazonARCRegionSwitchScalingPolicy",
    "AmazonEKSACKPolicy", "AmazonEKSAdminPolicy", "AmazonEKSAdminViewPolicy",
    "AmazonEKSArgoCDClusterPolicy", "AmazonEKSArgoCDPolicy", "AmazonEKSAutoNodePolicy",
    "AmazonEKSBlockStorageClusterPolicy", "AmazonEKSBlockStoragePolicy", "AmazonEKSClusterAdminPolicy",
    "AmazonEKSComputeClusterPolicy", "AmazonEKSComputePolicy", "AmazonEKSEditPolicy",
    "AmazonEKSEventPolicy", "AmazonEKSHybridPolicy", "AmazonEKSKROPolicy",
    "AmazonEKSLoadBalancingClusterPolicy", "AmazonEKSLoadBalancingPolicy",
    "AmazonEKSNetworkingClusterPolicy", "AmazonEKSNetworkingPolicy", "AmazonEKSPodIdentityPolicy",
    "AmazonEKSSecretAdminPolicy", "AmazonEKSSecretReaderPolicy", "AmazonEKSViewPolicy",
    "AmazonEMRJobPolicy", "AmazonSagemakerHyperpodClusterPolicy",
    "AmazonSagemakerHyperpodControllerPolicy", "AmazonSagemakerHyperpodSpacePolicy",
    "AmazonSagemakerHyperpodSpaceTemplatePolicy", "AmazonSagemakerHyperpodSystemNamespacePolicy",
    "AmazonSagemakerHyperpodUserClusterPolicy",
)
# CreateAccessEntry `type`; EC2_LINUX and EC2_WINDOWS entries take no kubernetesGroups and no
# access policy (the API reference, `type`).
EKS_ACCESS_ENTRY_TYPES = ("STANDARD", "FARGATE_LINUX", "EC2_LINUX", "EC2_WINDOWS", "EC2",
                          "HYBRID_LINUX", "HYPERPOD_LINUX")
EKS_NO_POLICY_TYPES = ("EC2_LINUX", "EC2_WINDOWS")
# An IAM role (with an optional path) or user: "You can't use the STS session principal type"
# (the API reference, `principalArn`); node types take roles only.
EKS_PRINCIPAL_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):"
                               r"(?P<kind>role|user)/(?:(?P<path>[!-~]*)/)?(?P<name>[\w+=,.@-]{1,64})$")
EKS_POLICY_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):eks::aws:cluster-access-policy/(?P<name>[^/]+)$")
# "Set a custom username for EKS access entries": reserved prefixes.
EKS_RESERVED_USERNAME = ("system:", "eks:", "aws:", "amazon:", "iam:")
EKS_ENTRY_NOT_FOUND = ("The specified principalArn could not be found. You can view your available "
                       "access entries with 'list-access-entries'.")  # AWS's wording (404)


def _eks_error(kind, message: str, cluster: str | None = None):
    return kind(clusterName=cluster, nodegroupName=None, fargateProfileName=None, addonName=None,
                message=message)


def eks_access_entries(cluster) -> dict[str, dict]:
    entries = getattr(cluster, "okra_access_entries", None)
    if entries is None:
        entries = cluster.okra_access_entries = {}
    return entries


def eks_access_entry_arn(cluster, principal: str, uid: str) -> str:
    """arn:PARTITION:eks:REGION:ACCOUNT:access-entry/CLUSTER/KIND/PRINCIPAL_ACCOUNT/NAME/UUID
    (Service Authorization Reference, EKS resource type access-entry); a role's path is not in it."""
    m = EKS_PRINCIPAL_ARN.match(principal)
    base = cluster.arn.split(":cluster/", 1)[0]
    return f"{base}:access-entry/{cluster.name}/{m['kind']}/{m['account']}/{m['name']}/{uid}"


def _eks_cluster(backend, name: str):
    cluster = backend.clusters.get(name)
    if cluster is None:
        raise _eks_error(EksNotFound, eks_models.CLUSTER_NOT_FOUND_MSG.format(clusterName=name))
    return cluster


def _eks_entry(backend, cluster_name: str, principal: str) -> tuple[Any, dict]:
    cluster = _eks_cluster(backend, cluster_name)
    entry = eks_access_entries(cluster).get(principal)
    if entry is None:
        raise _eks_error(EksNotFound, EKS_ENTRY_NOT_FOUND, cluster_name)
    return cluster, entry


def _eks_page(items: list, max_results, next_token) -> tuple[list, str | None]:
    """A page of at most maxResults (1-100, default 100) and an opaque token for the rest."""
    import base64
    n = 100 if max_results in (None, "") else int(max_results)
    if not 1 <= n <= 100:
        raise _eks_error(EksInvalidParameter, "maxResults must be between 1 and 100.")
    start = 0
    if next_token:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
        except ValueError:
            raise _eks_error(EksInvalidParameter, "The nextToken is invalid.")
    end = start + n
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], token


def _eks_entry_view(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def eks_create_access_entry(self, cluster_name, principal_arn, kubernetes_groups, tags,
                            client_request_token, username, entry_type):
    cluster = _eks_cluster(self, cluster_name)
    entry_type = entry_type or "STANDARD"
    m = EKS_PRINCIPAL_ARN.match(principal_arn or "")
    if m is None:
        raise _eks_error(EksInvalidParameter, "The specified principalArn is invalid: invalid principal.",
                         cluster_name)
    if entry_type not in EKS_ACCESS_ENTRY_TYPES:
        raise _eks_error(EksInvalidParameter, f"The specified type {entry_type} is invalid. Valid values "
                         f"are {', '.join(EKS_ACCESS_ENTRY_TYPES)}.", cluster_name)
    if entry_type != "STANDARD" and (m["kind"] != "role" or m["account"] != self.account_id):
        # "Create access entries": node types need a role of the cluster's own account.
        raise _eks_error(EksInvalidParameter, f"The principalArn of a {entry_type} access entry must be an "
                         "IAM role in the cluster's account.", cluster_name)
    if entry_type in EKS_NO_POLICY_TYPES and (kubernetes_groups or username):
        raise _eks_error(EksInvalidParameter, f"kubernetesGroups and username can't be specified for an "
                         f"access entry of type {entry_type}.", cluster_name)
    if username and username.startswith(EKS_RESERVED_USERNAME):
        raise _eks_error(EksInvalidParameter, "The username can't start with system:, eks:, aws:, "
                         "amazon:, or iam:.", cluster_name)
    with LOCK:
        entries = eks_access_entries(cluster)
        existing = entries.get(principal_arn)
        if existing is not None:
            # clientRequestToken "ensures the idempotency of the request": the SDK's retry of a
            # create that did succeed gets the same entry back.
            if client_request_token and existing.get("_token") == client_request_token:
                return existing
            raise _eks_error(EksResourceInUse, "The specified access entry resource is already in use on "
                             "this cluster.", cluster_name)
        if not username:
            # "Set a custom username for EKS access entries": a user's ARN; a role's STS ARN, path
            # removed, with {{SessionName}}.
            username = (principal_arn if m["kind"] == "user" else
                        f"arn:{m['partition']}:sts::{m['account']}:assumed-role/{m['name']}/{{{{SessionName}}}}")
        now = eks_models.utcnow()
        entry = {"clusterName": cluster.name, "principalArn": principal_arn,
                 "kubernetesGroups": list(kubernetes_groups or []),
                 "accessEntryArn": eks_access_entry_arn(cluster, principal_arn, str(uuid.uuid4())),
                 "createdAt": now, "modifiedAt": now, "tags": dict(tags or {}), "username": username,
                 "type": entry_type, "_token": client_request_token, "_policies": {}}
        entries[principal_arn] = entry
        return entry


def eks_update_access_entry(self, cluster_name, principal_arn, kubernetes_groups, username):
    _, entry = _eks_entry(self, cluster_name, principal_arn)
    if entry["type"] in EKS_NO_POLICY_TYPES and (kubernetes_groups or username):
        raise _eks_error(EksInvalidParameter, f"kubernetesGroups and username can't be specified for an "
                         f"access entry of type {entry['type']}.", cluster_name)
    if username and username.startswith(EKS_RESERVED_USERNAME):
        raise _eks_error(EksInvalidParameter, "The username can't start with system:, eks:, aws:, "
                         "amazon:, or iam:.", cluster_name)
    with LOCK:
        if kubernetes_groups is not None:
            entry["kubernetesGroups"] = list(kubernetes_groups)
        if username:
            entry["username"] = username
        entry["modifiedAt"] = eks_models.utcnow()
        return entry


def eks_delete_access_entry(self, cluster_name, principal_arn) -> None:
    cluster, _ = _eks_entry(self, cluster_name, principal_arn)
    with LOCK:
        eks_access_entries(cluster).pop(principal_arn, None)


def eks_associate_access_policy(self, cluster_name, principal_arn, policy_arn, access_scope) -> dict:
    _, entry = _eks_entry(self, cluster_name, principal_arn)
    m = EKS_POLICY_ARN.match(policy_arn or "")
    if m is None or m["name"] not in EKS_ACCESS_POLICIES:
        raise _eks_error(EksInvalidParameter, f"The specified policyArn {policy_arn} is invalid: no such "
                         "access policy (ListAccessPolicies lists them).", cluster_name)
    scope = dict(access_scope or {})
    if scope.get("type") not in ("cluster", "namespace"):
        raise _eks_error(EksInvalidParameter, "accessScope.type must be cluster or namespace.", cluster_name)
    namespaces = [str(n) for n in scope.get("namespaces") or []]
    if scope["type"] == "namespace" and not namespaces:
        # AccessScope: "A value is required if you specified namespace for Type."
        raise _eks_error(EksInvalidParameter, "accessScope.namespaces is required when accessScope.type "
                         "is namespace.", cluster_name)
    if entry["type"] in EKS_NO_POLICY_TYPES:
        raise _eks_error(EksInvalidParameter, f"An access policy can't be associated with an access entry "
                         f"of type {entry['type']}.", cluster_name)
    with LOCK:
        now = eks_models.utcnow()
        policies = entry["_policies"]
        # An association of the same policy replaces its scope ("Associate access policies with
        # access entries": associating again changes the scope).
        old = policies.get(policy_arn)
        policies[policy_arn] = {"policyArn": policy_arn,
                                "accessScope": {"type": scope["type"], "namespaces": namespaces},
                                "associatedAt": old["associatedAt"] if old else now, "modifiedAt": now}
        return policies[policy_arn]


def eks_disassociate_access_policy(self, cluster_name, principal_arn, policy_arn) -> None:
    _, entry = _eks_entry(self, cluster_name, principal_arn)
    with LOCK:
        if entry["_policies"].pop(policy_arn, None) is None:
            raise _eks_error(EksNotFound, f"The specified policyArn {policy_arn} is not associated with "
                             "this access entry.", cluster_name)


def _eks_find_access_entry(backend, arn: str) -> dict | None:
    for cluster in list(backend.clusters.values()):
        for entry in list(eks_access_entries(cluster).values()):
            if entry["accessEntryArn"] == arn:
                return entry
    return None


_moto_eks_tag_resource = eks_models.EKSBackend.tag_resource
_moto_eks_untag_resource = eks_models.EKSBackend.untag_resource
_moto_eks_list_tags = eks_models.EKSBackend.list_tags_for_resource


def eks_tag_resource(self, resource_arn, tags):
    entry = _eks_find_access_entry(self, resource_arn)  # access entries are taggable resources
    if entry is None:
        return _moto_eks_tag_resource(self, resource_arn, tags)
    with LOCK:
        entry["tags"].update(tags or {})


def eks_untag_resource(self, resource_arn, tag_keys):
    entry = _eks_find_access_entry(self, resource_arn)
    if entry is None:
        return _moto_eks_untag_resource(self, resource_arn, tag_keys)
    with LOCK:
        for key in tag_keys if isinstance(tag_keys, list) else [tag_keys]:
            entry["tags"].pop(key, None)


def eks_list_tags_for_resource(self, resource_arn):
    entry = _eks_find_access_entry(self, resource_arn)
    return dict(entry["tags"]) if entry is not None else _moto_eks_list_tags(self, resource_arn)


for _name, _fn in (("create_access_entry", eks_create_access_entry),
                   ("update_access_entry", eks_update_access_entry),
                   ("delete_access_entry", eks_delete_access_entry),
                   ("associate_access_policy", eks_associate_access_policy),
                   ("disassociate_access_policy", eks_disassociate_access_policy),
                   ("tag_resource", eks_tag_resource), ("untag_resource", eks_untag_resource),
                   ("list_tags_for_resource", eks_list_tags_for_resource)):
    setattr(eks_models.EKSBackend, _name, _fn)


# The REST operations (EKSResponse methods by moto's snake_case of the operation name).
def _r_create_access_entry(self):
    entry = self.eks_backend.create_access_entry(
        self._get_param("name"), self._get_param("principalArn"), self._get_param("kubernetesGroups"),
        self._get_param("tags"), self._get_param("clientRequestToken"), self._get_param("username"),
        self._get_param("type"))
    return eks_responses.ActionResult({"accessEntry": _eks_entry_view(entry)})


def _r_describe_access_entry(self):
    _, entry = _eks_entry(self.eks_backend, self._get_param("name"), self._get_param("principalArn"))
    return eks_responses.ActionResult({"accessEntry": _eks_entry_view(entry)})


def _r_update_access_entry(self):
    entry = self.eks_backend.update_access_entry(
        self._get_param("name"), self._get_param("principalArn"), self._get_param("kubernetesGroups"),
        self._get_param("username"))
    return eks_responses.ActionResult({"accessEntry": _eks_entry_view(entry)})


def _r_delete_access_entry(self):
    self.eks_backend.delete_access_entry(self._get_param("name"), self._get_param("principalArn"))
    return eks_responses.ActionResult({})


def _r_list_access_entries(self):
    cluster = _eks_cluster(self.eks_backend, self._get_param("name"))
    wanted = self._get_param("associatedPolicyArn")
    with LOCK:
        arns = [p for p, e in eks_access_entries(cluster).items() if not wanted or wanted in e["_policies"]]
    page, token = _eks_page(arns, self._get_param("maxResults"), self._get_param("nextToken"))
    return eks_responses.ActionResult({"accessEntries": page, "nextToken": token})


def _r_associate_access_policy(self):
    name, principal = self._get_param("name"), self._get_param("principalArn")
    assoc = self.eks_backend.associate_access_policy(name, principal, self._get_param("policyArn"),
                                                     self._get_param("accessScope"))
    return eks_responses.ActionResult({"clusterName": name, "principalArn": principal,
                                       "associatedAccessPolicy": assoc})


def _r_list_associated_access_policies(self):
    name, principal = self._get_param("name"), self._get_param("principalArn")
    _, entry = _eks_entry(self.eks_backend, name, principal)
    with LOCK:
        policies = list(entry["_policies"].values())
    page, token = _eks_page(policies, self._get_param("maxResults"), self._get_param("nextToken"))
    return eks_responses.ActionResult({"clusterName": name, "principalArn": principal,
                                       "associatedAccessPolicies": page, "nextToken": token})


def _r_disassociate_access_policy(self):
    self.eks_backend.disassociate_access_policy(self._get_param("name"), self._get_param("principalArn"),
                                                self._get_param("policyArn"))
    return eks_responses.ActionResult({})


def _r_list_access_policies(self):
    partition = get_partition(self.region)
    policies = [{"name": n, "arn": f"arn:{partition}:eks::aws:cluster-access-policy/{n}"}
                for n in EKS_ACCESS_POLICIES]
    page, token = _eks_page(policies, self._get_param("maxResults"), self._get_param("nextToken"))
    return eks_responses.ActionResult({"accessPolicies": page, "nextToken": token})


for _name, _fn in (("create_access_entry", _r_create_access_entry),
                   ("describe_access_entry", _r_describe_access_entry),
                   ("update_access_entry", _r_update_access_entry),
                   ("delete_access_entry", _r_delete_access_entry),
                   ("list_access_entries", _r_list_access_entries),
                   ("associate_access_policy", _r_associate_access_policy),
                   ("list_associated_access_policies", _r_list_associated_access_policies),
                   ("disassociate_access_policy", _r_disassociate_access_policy),
                   ("list_access_policies", _r_list_access_policies)):
    setattr(eks_responses.EKSResponse, _name, _fn)
# moto's server routes a path to EKS only if urls.py names it (read when the app is made).
eks_urls.url_paths.update({
    "{0}/clusters/(?P<name>[^/]+)/access-entries$": eks_urls.response.dispatch,
    "{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)$": eks_urls.response.dispatch,
    "{0}/access-policies$": eks_urls.response.dispatch,
})


def admin_eks_access_entries(req) -> tuple[int, str]:
    """`GET /_okra/eks/access-entries?cluster=NAME&account=..&region=..`: every access entry of the
    cluster with its access policies and their scopes (what the local Kubernetes API authorizes by)."""
    account = req.args.get("account", "123456789012")
    region = req.args.get("region", "us-east-1")
    name = req.args.get("cluster", "")
    cluster = eks_models.eks_backends[account][region].clusters.get(name)
    if cluster is None:
        return 404, json.dumps({"error": f"no cluster {name!r} in {account}/{region}"})
    with LOCK:
        entries = [{**{k: (v.isoformat() + "Z" if isinstance(v, datetime.datetime) else v)
                       for k, v in _eks_entry_view(e).items()},
                    "accessPolicies": [{"policyArn": p["policyArn"], "accessScope": p["accessScope"]}
                                       for p in e["_policies"].values()]}
                   for e in eks_access_entries(cluster).values()]
    return 200, json.dumps({"cluster": name, "clusterArn": cluster.arn, "account": account,
                            "region": region, "accessEntries": entries})


# ------------------------------------------------------------------ throttling
# AWS throttles API calls per account and region with token buckets: a bucket per operation
# group holds `burst` tokens, a call takes one, tokens come back at `rate` per second, and a call
# that finds the bucket empty is refused (ELB user guide, "Request throttling for the Elastic Load
# Balancing API"; EC2's "Request throttling" describes the same model). Off unless
# OKRA_THROTTLE=1 or `POST /_okra/throttle {"enabled": true}`: the other suites measure behaviour,
# not rates. Buckets (burst, refill per second):
THROTTLE_RATES = {
    # ELBv2: the figures of the measurement ("Describe* burst ~40, ~10/s"); writes and
    # target registration get buckets of their own, sizes chosen (not documented per operation).
    ("elasticloadbalancing", "describe"): (40.0, 10.0),
    ("elasticloadbalancing", "register"): (20.0, 5.0),
    ("elasticloadbalancing", "write"): (20.0, 5.0),
    # EKS documents no per-operation figures: chosen.
    ("eks", "read"): (50.0, 10.0),
    ("eks", "write"): (10.0, 2.0),
    # The Resource Groups Tagging API documents none either: chosen.
    ("tagging", "read"): (20.0, 5.0),
}
THROTTLE = {"enabled": os.environ.get("OKRA_THROTTLE") == "1"}
BUCKETS: dict[tuple, list[float]] = {}
CALLS: dict[str, dict[str, int]] = {}
# Calls per caller: the `app/NAME` of the SDK's user agent (okra's functions set their function
# name there), then per `service:Operation`.
CALLERS: dict[str, dict[str, int]] = {}

# EKS is REST: its operations by method and path (the EKS API reference's request syntax).
EKS_ROUTES = [
    ("GET", r"^/clusters$", "ListClusters"),
    ("POST", r"^/clusters$", "CreateCluster"),
    ("GET", r"^/clusters/[^/]+$", "DescribeCluster"),
    ("DELETE", r"^/clusters/[^/]+$", "DeleteCluster"),
    ("GET", r"^/clusters/[^/]+/node-groups$", "ListNodegroups"),
    ("POST", r"^/clusters/[^/]+/node-groups$", "CreateNodegroup"),
    ("GET", r"^/clusters/[^/]+/node-groups/[^/]+$", "DescribeNodegroup"),
    ("GET", r"^/tags/.+$", "ListTagsForResource"),
    ("POST", r"^/tags/.+$", "TagResource"),
    ("DELETE", r"^/tags/.+$", "UntagResource"),
    # Access entries (the path as WSGI gives it, decoded: a principal ARN spans segments).
    ("GET", r"^/clusters/[^/]+/access-entries$", "ListAccessEntries"),
    ("POST", r"^/clusters/[^/]+/access-entries$", "CreateAccessEntry"),
    ("DELETE", r"^/clusters/[^/]+/access-entries/.+/access-policies/.+$", "DisassociateAccessPolicy"),
    ("GET", r"^/clusters/[^/]+/access-entries/.+/access-policies$", "ListAssociatedAccessPolicies"),
    ("POST", r"^/clusters/[^/]+/access-entries/.+/access-policies$", "AssociateAccessPolicy"),
    ("GET", r"^/clusters/[^/]+/access-entries/.+$", "DescribeAccessEntry"),
    ("POST", r"^/clusters/[^/]+/access-entries/.+$", "UpdateAccessEntry"),
    ("DELETE", r"^/clusters/[^/]+/access-entries/.+$", "DeleteAccessEntry"),
    ("GET", r"^/access-policies$", "ListAccessPolicies"),
]


def caller_of(environ) -> str | None:
    for header in ("HTTP_X_AMZ_USER_AGENT", "HTTP_USER_AGENT"):
        for part in environ.get(header, "").split():
            if part.startswith("app/"):
                return part[len("app/"):]
    return None


def operation_of(environ, body: bytes) -> tuple[str, str]:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = "?"
    if "Credential=" in auth:
        parts = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(parts) >= 4:
            service = parts[3]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.split(".")[-1]
    if body[:400].find(b"Action=") >= 0:
        for kv in body.split(b"&"):
            if kv.startswith(b"Action="):
                return service, kv[len(b"Action="):].decode(errors="replace")
    method, path = environ.get("REQUEST_METHOD", "?"), environ.get("PATH_INFO", "")
    routes = {"eks": EKS_ROUTES, "scheduler": SCHEDULER_ROUTES}.get(service, [])
    for m, pattern, name in routes:
        if m == method and re.match(pattern, path):
            return service, name
    return service, f"{method} {path}"


def group_of(service: str, operation: str, method: str) -> str | None:
    if service == "elasticloadbalancing":
        if operation.startswith("Describe"):
            return "describe"
        if operation in ("RegisterTargets", "DeregisterTargets"):
            return "register"
        return "write"
    if service == "eks":
        return "read" if method == "GET" else "write"
    if service == "tagging":
        return "read"
    return None


def take_token(key: tuple) -> bool:
    burst, rate = THROTTLE_RATES[key]
    now = time.monotonic()
    with LOCK:
        tokens, last = BUCKETS.get(key, [burst, now])
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1.0:
            BUCKETS[key] = [tokens, now]
            return False
        BUCKETS[key] = [tokens - 1.0, now]
        return True


def throttled_answer(service: str, start_response):
    message = "Rate exceeded"
    if service == "eks":
        status, ctype = "429 Too Many Requests", "application/json"
        body = json.dumps({"message": message})
        headers = [("x-amzn-ErrorType", "ThrottlingException")]
    elif service == "tagging":
        status, ctype = "400 Bad Request", "application/x-amz-json-1.1"
        body = json.dumps({"__type": "ThrottledException", "Message": message})
        headers = []
    else:
        status, ctype = "400 Bad Request", "text/xml"
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                f"<Message>{message}</Message></Error><RequestId>okra-throttle</RequestId></ErrorResponse>")
        headers = []
    data = body.encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))] + headers)
    return [data]


def with_throttling(app):
    def wsgi(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(("/_okra/", "/moto-api")):
            return app(environ, start_response)
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n) if n else b""
        environ["wsgi.input"] = io.BytesIO(body)
        service, operation = operation_of(environ, body)
        group = group_of(service, operation, environ.get("REQUEST_METHOD", ""))
        refused = THROTTLE["enabled"] and group is not None and not take_token((service, group))
        with LOCK:
            c = CALLS.setdefault(f"{service}:{operation}", {"calls": 0, "throttled": 0})
            c["calls"] += 1
            c["throttled"] += int(refused)
            caller = caller_of(environ)
            if caller is not None:
                by = CALLERS.setdefault(caller, {})
                by[f"{service}:{operation}"] = by.get(f"{service}:{operation}", 0) + 1
        if refused:
            return throttled_answer(service, start_response)
        return app(environ, start_response)
    return wsgi


def admin_throttle(req) -> str:
    with LOCK:
        if req.method == "POST":
            body = json.loads(req.get_data(as_text=True) or "{}")
            THROTTLE["enabled"] = bool(body.get("enabled"))
            BUCKETS.clear()
        return json.dumps({"enabled": THROTTLE["enabled"],
                           "rates": {f"{s}:{g}": {"burst": b, "perSecond": r}
                                     for (s, g), (b, r) in THROTTLE_RATES.items()}})


def admin_seed_clusters(req) -> str:
    """`POST /_okra/seed/eks-clusters {"account", "region", "clusters": [{"name", "tags",
    "vpcId", "subnetIds"}]}`: EKS clusters made in the backend directly, as CreateCluster would
    (for benchmarks of accounts with thousands of clusters; the REST API takes ~80 ms each)."""
    body = json.loads(req.get_data(as_text=True) or "{}")
    backend = eks_models.eks_backends[body.get("account", "123456789012")][body.get("region", "us-east-1")]
    t0 = time.time()
    made = 0
    # moto checks the role ARN with a new boto3 session per cluster (~50 ms): the seed's role is
    # well formed, so not here.
    check_role, eks_models.validate_role_arn = eks_models.validate_role_arn, lambda _arn: None
    try:
        for c in body.get("clusters") or []:
            if c["name"] in backend.clusters:
                continue
            backend.create_cluster(
                name=c["name"], role_arn="arn:aws:iam::123456789012:role/eks",
                resources_vpc_config={"subnetIds": c.get("subnetIds") or [], "vpcId": c.get("vpcId")},
                tags=dict(c.get("tags") or {}))
            made += 1
    finally:
        eks_models.validate_role_arn = check_role
    return json.dumps({"made": made, "seconds": round(time.time() - t0, 3)})


def admin_eks_endpoint(req) -> tuple[int, dict]:
    """`POST /_okra/eks/endpoint {"account", "region", "name", "endpoint", "caData"}`: the EKS
    cluster's API server address and CA (DescribeCluster's `endpoint` and
    `certificateAuthority.data`), so that the hub cluster names the local Kubernetes API
    (okra_testkit::KubeApi) instead of moto's made-up ones."""
    if req.method != "POST":
        return 405, {"error": "POST only"}
    body = json.loads(req.get_data(as_text=True) or "{}")
    backend = eks_models.eks_backends[body.get("account", "123456789012")][body.get("region", "us-east-1")]
    cluster = backend.clusters.get(body.get("name", ""))
    if cluster is None:
        return 404, {"error": f"no EKS cluster {body.get('name')!r} in {body.get('account', '123456789012')}/"
                              f"{body.get('region', 'us-east-1')}"}
    if "endpoint" in body:
        cluster.endpoint = str(body["endpoint"])
    if "caData" in body:
        cluster.certificate_authority = {"data": str(body["caData"])}
    return 200, {"name": cluster.name, "endpoint": cluster.endpoint,
                 "certificateAuthority": cluster.certificate_authority}


def admin_calls(req) -> str:
    with LOCK:
        if req.method == "DELETE":
            CALLS.clear()
            CALLERS.clear()
        return json.dumps({"calls": CALLS, "byCaller": CALLERS})


# ------------------------------------------------------------- Smithy RPC v2 CBOR
# CloudWatch's current protocol (aws-sdk-cloudwatch >= 1.100, botocore's `protocols` list puts it
# first): `POST /service/GraniteServiceVersion20100801/operation/<Operation>` with
# `smithy-protocol: rpc-v2-cbor` and a CBOR body (Smithy's "RPC v2 CBOR protocol" spec). moto 5.2.5
# reads only awsQuery for CloudWatch, so each such request is translated, with botocore's model
# of the service (the pinned botocore, which also carries the CBOR codec): the CBOR input becomes
# the operation's awsQuery form, moto answers in XML, and the answer goes back as CBOR of the
# output shape (timestamps tag 1, doubles as floats) with `smithy-protocol: rpc-v2-cbor`. Errors
# carry `__type` and, as the service is `awsQueryCompatible`, `x-amzn-query-error: Code;Sender`
# (the header the SDKs read the awsQuery error code from).
RPC_V2_PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)$")
RPC_V2_SERVICES: dict[str, Any] = {}


def rpc_v2_service(target_prefix: str):
    """botocore's model of the service a `/service/<prefix>/...` path names (CloudWatch's
    `targetPrefix` is GraniteServiceVersion20100801)."""
    import botocore.session
    with LOCK:
        if not RPC_V2_SERVICES:
            session = botocore.session.get_session()
            for name in ("cloudwatch",):
                model = session.get_service_model(name)
                RPC_V2_SERVICES[model.metadata.get("targetPrefix", "")] = model
        return RPC_V2_SERVICES.get(target_prefix)


def cbor_decode(body: bytes):
    from botocore.parsers import RpcV2CBORParser
    return RpcV2CBORParser()._initial_body_parse(body) if body else {}


def cbor_encode(value, shape) -> bytes:
    from botocore.serialize import RpcV2CBORSerializer
    out = bytearray()
    RpcV2CBORSerializer()._serialize_data_item(out, value, shape)
    return bytes(out)


def cbor_error(code: str, message: str) -> bytes:
    """An RPC v2 error body: `__type` (the error's shape id) and `message`."""
    from botocore.model import ShapeResolver
    shapes = ShapeResolver({"Error": {"type": "structure", "members": {
        "__type": {"shape": "String"}, "message": {"shape": "String"}}}, "String": {"type": "string"}})
    return cbor_encode({"__type": f"com.amazonaws.cloudwatch#{code}", "message": message},
                       shapes.get_shape_by_name("Error"))


def with_rpc_v2_cbor(app):
    from urllib.parse import urlencode
    from botocore.parsers import QueryParser
    from botocore.serialize import QuerySerializer
    from botocore.validate import ParamValidator

    def wsgi(environ, start_response):
        m = RPC_V2_PATH.match(environ.get("PATH_INFO", ""))
        model = m and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor" and rpc_v2_service(m["service"])
        if not model:
            return app(environ, start_response)
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n) if n else b""
        try:
            operation = model.operation_model(m["operation"])
            params = cbor_decode(body)
        except Exception as e:  # an unknown operation or a body that is not CBOR
            data = cbor_error("ValidationError", f"cannot read the request: {e}")
            start_response("400 Bad Request", [("Content-Type", "application/cbor"),
                                               ("smithy-protocol", "rpc-v2-cbor"),
                                               ("x-amzn-query-error", "ValidationError;Sender"),
                                               ("Content-Length", str(len(data)))])
            return [data]
        # AWS validates the input against the model before the operation runs (CloudWatch API
        # reference, "Common Errors": MissingParameter, InvalidParameterValue); moto would fail
        # with a 500 on a missing member.
        report = ParamValidator().validate(params or {}, operation.input_shape)
        if report.has_errors():
            text = report.generate_report()
            err_code = "MissingParameter" if "Missing required parameter" in text else "InvalidParameterValue"
            data = cbor_error(err_code, text)
            start_response("400 Bad Request", [("Content-Type", "application/cbor"),
                                               ("smithy-protocol", "rpc-v2-cbor"),
                                               ("x-amzn-query-error", f"{err_code};Sender"),
                                               ("Content-Length", str(len(data)))])
            return [data]
        query = QuerySerializer().serialize_to_request(params or {}, operation)["body"]
        form = urlencode(query).encode()
        inner = dict(environ)
        inner.update({"PATH_INFO": "/", "CONTENT_TYPE": "application/x-www-form-urlencoded",
                      "CONTENT_LENGTH": str(len(form)), "wsgi.input": io.BytesIO(form)})
        inner.pop("HTTP_SMITHY_PROTOCOL", None)
        answer: dict[str, Any] = {}

        def capture(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers
            return lambda _chunk: None
        chunks = app(inner, capture)
        try:
            xml = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status = answer["status"]
        code = int(status.split()[0])
        request_id = next((v for k, v in answer["headers"] if k.lower() == "x-amzn-requestid"), "")
        headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        if request_id:
            headers.append(("x-amzn-RequestId", request_id))
        response = {"body": xml, "headers": {}, "status_code": code}
        if code < 300:
            parsed = QueryParser().parse(response, operation.output_shape) if operation.output_shape else {}
            parsed.pop("ResponseMetadata", None)
            data = cbor_encode(parsed, operation.output_shape) if operation.output_shape else b""
        else:
            error = QueryParser().parse(response, None).get("Error", {})
            err_code = error.get("Code") or "InternalFailure"
            fault = error.get("Type") or ("Receiver" if code >= 500 else "Sender")
            data = cbor_error(err_code, error.get("Message", ""))
            headers.append(("x-amzn-query-error", f"{err_code};{fault}"))
        start_response(status, headers + [("Content-Length", str(len(data)))])
        return [data]
    return wsgi


# ------------------------------------------------------------------ the admin route
def with_admin(app):
    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_okra/iam"):
            req = Request(environ)
            status, answer = iam_enforce.admin(req.method, path, req.get_data(as_text=True),
                                               req.args.get("caller"))
            return Response(json.dumps(answer), status=status, mimetype="application/json")(
                environ, start_response)
        if path.startswith("/_okra/eks/access-entries"):
            status, answer = admin_eks_access_entries(Request(environ))
            return Response(answer, status=status, mimetype="application/json")(environ, start_response)
        if path.startswith("/_okra/eks/endpoint"):
            status, answer = admin_eks_endpoint(Request(environ))
            return Response(json.dumps(answer), status=status, mimetype="application/json")(
                environ, start_response)
        if path.startswith(("/_okra/throttle", "/_okra/calls", "/_okra/seed/eks-clusters",
                            "/_okra/scheduler", "/_okra/sts/credentials", "/_okra/events")):
            req = Request(environ)
            if path.startswith("/_okra/scheduler"):
                answer = admin_scheduler(req)
            elif path.startswith("/_okra/sts/credentials"):
                answer = admin_sts_credentials(req)
            elif path.startswith("/_okra/events"):
                answer = json.dumps({"undelivered": UNDELIVERED, "validated": EVENT_CHECKS["validated"],
                                     "invalid": INVALID_EVENTS, "okra": list(OKRA_EVENTS)})
            elif path.startswith("/_okra/throttle"):
                answer = admin_throttle(req)
            elif path.startswith("/_okra/calls"):
                answer = admin_calls(req)
            else:
                answer = admin_seed_clusters(req)
            return Response(answer, mimetype="application/json")(environ, start_response)
        if not path.startswith("/_okra/targets"):
            return app(environ, start_response)
        req = Request(environ)
        with LOCK:
            if req.method == "POST":
                body = json.loads(req.get_data(as_text=True) or "{}")
                TARGET_MAP.update({str(k): str(v) for k, v in (body.get("targets") or {}).items()})
            elif req.method == "DELETE":
                TARGET_MAP.clear()
            answer = json.dumps({"targets": TARGET_MAP})
        return Response(answer, mimetype="application/json")(environ, start_response)
    return wsgi


# ------------------------------------------------------------------ EventBridge → SNS
# moto 5.2.5's rules deliver to log groups, archives, SQS and other buses, not to SNS topics.
# Here a rule's SNS target gets the event (after its InputTransformer) published to the topic, as
# EventBridge does, if the topic's policy lets `events.amazonaws.com` publish (EventBridge user
# guide, "Permissions for Amazon SNS": a resource-based policy on the topic), with
# aws:SourceArn, when the statement names one, equal to the rule's ARN. Undelivered events are
# listed in `GET /_okra/events/undelivered`.
from moto.events import models as events_models  # noqa: E402

UNDELIVERED: list[dict] = []
_orig_send_to_targets = events_models.Rule.send_to_targets


def topic_allows_events(policy: dict, rule_arn: str) -> bool:
    for st in policy.get("Statement") or []:
        if st.get("Effect") != "Allow":
            continue
        services = (st.get("Principal") or {}).get("Service") or []
        services = services if isinstance(services, list) else [services]
        actions = st.get("Action") or []
        actions = actions if isinstance(actions, list) else [actions]
        if "events.amazonaws.com" not in services or not any(a in ("sns:Publish", "sns:*", "*") for a in actions):
            continue
        source = ((st.get("Condition") or {}).get("ArnEquals") or {}).get("aws:SourceArn") \
            or ((st.get("Condition") or {}).get("ArnLike") or {}).get("aws:SourceArn")
        if source is None or rule_arn in (source if isinstance(source, list) else [source]):
            return True
    return False


def send_to_targets(self, original_event, transform_input=True):
    import copy
    from moto.sns.models import sns_backends
    from moto.utilities.arns import parse_arn
    # moto's own targets through moto (it raises NotImplementedError on an SNS one), on a copy
    # of the rule: other requests' threads read the rule meanwhile.
    others = copy.copy(self)
    others.targets = [t for t in self.targets if parse_arn(t["Arn"]).service != "sns"]
    _orig_send_to_targets(others, original_event, transform_input)
    if not self.event_pattern.matches_event(original_event):
        return
    for target in self.targets:
        arn = parse_arn(target["Arn"])
        if arn.service != "sns":
            continue
        transformer = target.get("InputTransformer") or {}
        message = events_models.EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}), event=original_event)
        topic = sns_backends[arn.account][arn.region].topics.get(target["Arn"])
        why = None
        if topic is None:
            why = "no such topic"
        elif not topic_allows_events(topic._policy_json, self.arn):
            why = "the topic's policy does not let events.amazonaws.com publish for this rule"
        if why:
            UNDELIVERED.append({"rule": self.arn, "target": target["Arn"], "why": why})
            print(f"strict_moto: events: {self.arn} -> {target['Arn']}: {why}", file=sys.stderr, flush=True)
            continue
        topic.publish(message if isinstance(message, str) else json.dumps(message))


events_models.Rule.send_to_targets = send_to_targets


# ------------------------------------------------------------------ okra's event schemas
# A test oracle, not AWS behaviour: EventBridge takes any JSON detail (its schema registry
# describes events, it does not check them). Every okra event put here (source `okra`) is checked
# against its kind's schema under schema/events/ (generated from okra_core::events, and
# registered in template.yaml's schema registry), wrapped as EventBridge delivers it; an event
# that does not validate, or whose detail-type has no schema, is listed in `GET /_okra/events`
# (`invalid`) and printed, and the e2e suites fail on it. The put itself goes on as on AWS.
import jsonschema  # noqa: E402

EVENT_SCHEMAS: dict[str, dict] = {}
INVALID_EVENTS: list[dict] = []
EVENT_CHECKS = {"validated": 0}
OKRA_EVENTS: "deque[dict]" = deque(maxlen=2000)  # the newest okra events, as delivered
_orig_put_events = events_models.EventsBackend.put_events


def event_schema(detail_type: str) -> dict | None:
    name = detail_type.lower().replace(" ", "-") + ".json"
    if name not in EVENT_SCHEMAS:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schema", "events", name)
        try:
            with open(path) as f:
                EVENT_SCHEMAS[name] = json.load(f)
        except OSError:
            return None
    return EVENT_SCHEMAS[name]


def check_okra_event(backend, entry: dict) -> None:
    if entry.get("Source") != "okra":
        return
    try:
        detail = json.loads(entry.get("Detail") or "null")
    except ValueError as e:
        detail, why = None, [f"the detail is not JSON: {e}"]
    else:
        why = []
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": entry.get("DetailType"),
             "source": "okra", "account": backend.account_id, "region": backend.region_name,
             "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "resources": entry.get("Resources") or [], "detail": detail}
    schema = event_schema(str(entry.get("DetailType")))
    if schema is None:
        why.append(f"no schema for detail-type {entry.get('DetailType')!r} under schema/events/")
    elif not why:
        validator = jsonschema.Draft4Validator(schema)
        why = [f"{'/'.join(str(p) for p in e.absolute_path) or '(event)'}: {e.message}"
               for e in validator.iter_errors(event)]
    with LOCK:
        EVENT_CHECKS["validated"] += 1
        OKRA_EVENTS.append(event)
        if why:
            INVALID_EVENTS.append({"detailType": entry.get("DetailType"),
                                   "execution": (detail or {}).get("execution") if isinstance(detail, dict) else None,
                                   "detail": detail, "errors": why})
    if why:
        print(f"strict_moto: events: an okra event does not match its schema: {why}", file=sys.stderr, flush=True)


def put_events(self, events):
    for entry in events:
        check_okra_event(self, entry)
    return _orig_put_events(self, events)


events_models.EventsBackend.put_events = put_events


# ------------------------------------------------------------------ EventBridge Scheduler
# moto 5.2.5 stores schedules and runs none. Here: CreateSchedule/UpdateSchedule are checked as
# the API reference has them (names, a known group, rate expressions, the start date), and a
# thread fires each ENABLED rate schedule as EventBridge Scheduler does: its target Lambda
# invoked asynchronously (Event) as the schedule's role, the input's context attributes filled
# in ("Adding context attributes"), from StartDate at the rate until EndDate, after which an
# ActionAfterCompletion DELETE schedule is deleted. `POST /_okra/scheduler {"lambdaEndpoint":
# URL, "timeScale": 0.01}` (or OKRA_SCHEDULER_LAMBDA_ENDPOINT / OKRA_SCHEDULER_TIME_SCALE) says
# where the functions run and how fast a minute passes; `GET /_okra/scheduler` lists the
# invocations made.
from moto.scheduler import models as scheduler_models  # noqa: E402
from moto.scheduler.exceptions import ScheduleGroupNotFound, ValidationException  # noqa: E402

SCHEDULER = {
    "lambda": os.environ.get("OKRA_SCHEDULER_LAMBDA_ENDPOINT") or None,
    "scale": float(os.environ.get("OKRA_SCHEDULER_TIME_SCALE", "1") or "1"),
    "fired": [],  # {"schedule", "at", "status", "why"?}
}
SCHEDULER_LOCK = threading.Lock()
# schedule ARN -> {"created": monotonic, "epoch": wall time at creation, "fired": n}
RUNS: dict[str, dict] = {}
NAME_RE = re.compile(r"^[0-9a-zA-Z\-_.]{1,64}$")
RATE_RE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
SCHEDULER_ROUTES = [
    ("GET", r"^/schedules$", "ListSchedules"),
    ("POST", r"^/schedules/[^/]+$", "CreateSchedule"),
    ("PUT", r"^/schedules/[^/]+$", "UpdateSchedule"),
    ("GET", r"^/schedules/[^/]+$", "GetSchedule"),
    ("DELETE", r"^/schedules/[^/]+$", "DeleteSchedule"),
    ("GET", r"^/schedule-groups$", "ListScheduleGroups"),
    ("POST", r"^/schedule-groups/[^/]+$", "CreateScheduleGroup"),
    ("GET", r"^/schedule-groups/[^/]+$", "GetScheduleGroup"),
    ("DELETE", r"^/schedule-groups/[^/]+$", "DeleteScheduleGroup"),
]


def rate_seconds(expression: str) -> int | None:
    """A rate expression's period (User Guide, "Schedule types": a positive whole number and
    minute(s), hour(s) or day(s), singular for 1); None for at() and cron(), which do not run
    here. A malformed rate is a ValidationException."""
    if not expression.startswith("rate("):
        return None
    m = RATE_RE.match(expression)
    if not m or int(m[1]) < 1 or (int(m[1]) == 1) != (not m[2].endswith("s")):
        raise ValidationException(f"Invalid Schedule Expression {expression}.")
    return int(m[1]) * UNIT_SECONDS[m[2].rstrip("s")]


def check_schedule(backend, name, group_name, expression, start_date, end_date, target, window):
    if not NAME_RE.match(name or ""):
        raise ValidationException(f"Invalid name {name!r}: 1 to 64 characters of [0-9a-zA-Z-_.].")
    if (group_name or "default") not in backend.schedule_groups:
        raise ScheduleGroupNotFound(group_name)
    if not expression or not (expression.startswith(("rate(", "cron(", "at("))):
        raise ValidationException(f"Invalid Schedule Expression {expression}.")
    rate_seconds(expression)
    if not isinstance(window, dict) or window.get("Mode") not in ("OFF", "FLEXIBLE"):
        raise ValidationException("FlexibleTimeWindow.Mode must be OFF or FLEXIBLE.")
    role = (target or {}).get("RoleArn") or ""
    if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", role):
        raise ValidationException(f"Invalid RoleArn {role!r}.")
    if start_date is not None and not expression.startswith("at(") \
            and float(start_date) < time.time() - 300:
        raise ValidationException("The StartDate you specify cannot be earlier than 5 minutes ago.")
    if start_date is not None and end_date is not None and float(end_date) < float(start_date):
        raise ValidationException("The EndDate you specify cannot be earlier than the StartDate.")


_orig_create_schedule = scheduler_models.EventBridgeSchedulerBackend.create_schedule
_orig_update_schedule = scheduler_models.EventBridgeSchedulerBackend.update_schedule


def create_schedule(self, description, end_date, flexible_time_window, group_name, kms_key_arn,
                    name, schedule_expression, schedule_expression_timezone, start_date, state,
                    target, action_after_completion):
    check_schedule(self, name, group_name, schedule_expression, start_date, end_date, target,
                   flexible_time_window)
    out = _orig_create_schedule(self, description, end_date, flexible_time_window, group_name,
                                kms_key_arn, name, schedule_expression,
                                schedule_expression_timezone, start_date, state, target,
                                action_after_completion)
    with SCHEDULER_LOCK:
        RUNS.pop(out.arn, None)
    return out


def update_schedule(self, description, end_date, flexible_time_window, group_name, kms_key_arn,
                    name, schedule_expression, schedule_expression_timezone, start_date, state,
                    target, action_after_completion=None):
    check_schedule(self, name, group_name, schedule_expression, start_date, end_date, target,
                   flexible_time_window)
    # UpdateSchedule replaces the schedule: an absent State is ENABLED, as at creation (moto
    # 5.2.5 stores None, which would never run).
    out = _orig_update_schedule(self, description, end_date, flexible_time_window, group_name,
                                kms_key_arn, name, schedule_expression,
                                schedule_expression_timezone, start_date, state or "ENABLED",
                                target)
    if action_after_completion is not None:
        out.action_after_completion = action_after_completion
    with SCHEDULER_LOCK:
        RUNS.pop(out.arn, None)  # an update starts the schedule over
    return out


scheduler_models.EventBridgeSchedulerBackend.create_schedule = create_schedule
scheduler_models.EventBridgeSchedulerBackend.update_schedule = update_schedule


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def invoke_target(schedule, due: float, attempt: int) -> tuple[str, str | None]:
    """One invocation of a schedule's Lambda target, as its role: (status, why)."""
    target = schedule.target
    role = target.get("RoleArn", "")
    role_name = role.rsplit("/", 1)[-1]
    if not iam_enforce.trusted_by(role_name, "scheduler.amazonaws.com"):
        return "denied", f"EventBridge Scheduler cannot assume {role}: its trust policy does not name scheduler.amazonaws.com"
    text = target.get("Input") or "{}"
    for k, v in {"<aws.scheduler.schedule-arn>": schedule.arn,
                 "<aws.scheduler.scheduled-time>": rfc3339(due),
                 "<aws.scheduler.execution-id>": f"{int(due)}-{attempt}",
                 "<aws.scheduler.attempt-number>": str(attempt)}.items():
        text = text.replace(k, v)
    endpoint = SCHEDULER["lambda"]
    if not endpoint:
        return "skipped", "no lambda endpoint (POST /_okra/scheduler)"
    from urllib.parse import quote
    req = urllib.request.Request(
        f"{endpoint.rstrip('/')}/2015-03-31/functions/{quote(target['Arn'], safe='')}/invocations",
        data=text.encode(), method="POST",
        headers={"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json",
                 "User-Agent": f"okra-local-scheduler app/{role_name}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return ("invoked" if r.status in (200, 202) else f"http {r.status}"), None
    except urllib.error.HTTPError as e:
        return f"http {e.code}", e.read().decode(errors="replace")[:300]
    except OSError as e:
        return "unreachable", repr(e)


def fire_once(now_mono: float) -> None:
    scale = SCHEDULER["scale"]
    for account, regions in list(scheduler_models.scheduler_backends.items()):
        for region, backend in list(regions.items()):
            for group in list(backend.schedule_groups.values()):
                for schedule in list(group.schedules.values()):
                    try:
                        period = rate_seconds(schedule.schedule_expression)
                    except Exception:
                        continue
                    if period is None or schedule.state != "ENABLED":
                        continue
                    with SCHEDULER_LOCK:
                        run = RUNS.setdefault(schedule.arn, {"created": now_mono, "epoch": time.time(), "fired": 0})
                    epoch = run["epoch"]
                    start = float(schedule.start_date) if schedule.start_date is not None else epoch
                    end = float(schedule.end_date) if schedule.end_date is not None else None
                    # Scheduled (wall) time k, and when it is due here (scaled from creation).
                    due = start + run["fired"] * period
                    if end is not None and due > end:
                        if schedule.action_after_completion == "DELETE":
                            group.schedules.pop(schedule.name, None)
                            with SCHEDULER_LOCK:
                                RUNS.pop(schedule.arn, None)
                        continue
                    if now_mono < run["created"] + max(0.0, due - epoch) * scale:
                        continue
                    run["fired"] += 1
                    status, why = invoke_target(schedule, due, 1)
                    with SCHEDULER_LOCK:
                        SCHEDULER["fired"].append({"schedule": schedule.arn, "at": rfc3339(due),
                                                   "status": status, **({"why": why} if why else {})})
                        del SCHEDULER["fired"][:-2000]
                    if why:
                        print(f"strict_moto: scheduler: {schedule.arn} at {rfc3339(due)}: {status}: {why}",
                              file=sys.stderr, flush=True)


def scheduler_loop() -> None:
    while True:
        try:
            fire_once(time.monotonic())
        except Exception as e:  # keep firing; say what broke
            print(f"strict_moto: scheduler: {e!r}", file=sys.stderr, flush=True)
        time.sleep(0.05)


def admin_sts_credentials(req) -> str:
    """`GET /_okra/sts/credentials?accessKeyId=ASIA...`: the session AssumeRole issued under that
    key (its secret, session token and role), for a local endpoint that verifies SigV4 as the
    service would (okra_testkit::AmpEndpoint); `{}` when none."""
    from moto.sts.models import sts_backends
    key = req.args.get("accessKeyId", "")
    for _account, partitions in list(sts_backends.items()):
        for _partition, backend in list(partitions.items()):
            role = backend.get_assumed_role_from_access_key(key)
            if role is not None:
                return json.dumps({"secretAccessKey": role.secret_access_key,
                                   "sessionToken": role.session_token, "roleArn": role.role_arn})
    return "{}"


def admin_scheduler(req) -> str:
    if req.method == "POST":
        body = json.loads(req.get_data() or b"{}")
        if "lambdaEndpoint" in body:
            SCHEDULER["lambda"] = body["lambdaEndpoint"]
        if "timeScale" in body:
            SCHEDULER["scale"] = float(body["timeScale"])
    with SCHEDULER_LOCK:
        return json.dumps({"lambdaEndpoint": SCHEDULER["lambda"], "timeScale": SCHEDULER["scale"],
                           "fired": list(SCHEDULER["fired"])})


def main(argv: list[str]) -> None:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args = p.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    iam_enforce.configure_from_env()
    threading.Thread(target=checker, name="elb-health-checker", daemon=True).start()
    threading.Thread(target=scheduler_loop, name="scheduler", daemon=True).start()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]
    # IAM inside the CBOR translation (CloudWatch's RPC v2 requests are authorized as the awsQuery
    # form moto reads, and a denial goes back as CBOR) and inside throttling (denied calls count).
    iam = iam_enforce.with_iam(app, operation_of, caller_of)
    run_simple(args.host, args.port, with_admin(with_rpc_v2_cbor(with_throttling(iam))), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
