"""IAM in the strict moto: every AWS request one of okra's functions makes is authorized against
that function's own statements in template.yaml, as AWS authorizes the function's role, and a
request AWS would refuse is answered with the service's own AccessDenied instead of reaching moto.

Who calls: the `app/NAME` of the SDK's user agent (okra_aws::aws_config puts the Lambda function's
name there; strict_moto.caller_of reads it). NAME is the package locally (`shift-weights`) and the
deployed function's name on AWS (`STACK-ShiftWeightsFunction-ABC123`); the root Makefile's lines
`build-<LogicalId>: PKG = <package>` map packages to the template's functions. A caller that maps
to no function (no app id: the tests' own clients, an administrator's CLI) is not restricted.

Configuration: `OKRA_IAM_TEMPLATE` (a template path, relative to the repository root) turns it on,
`OKRA_IAM_REFS` (a JSON object) gives the values of `!Ref`, `!GetAtt` and pseudo parameters
(DEFAULT_REFS; template parameters not given take their Default). At run time (admin()):
`GET /_okra/iam` (configuration, resolved statements, denials), `POST /_okra/iam {"template",
"refs"}` (reconfigure; a null template turns it off), `DELETE /_okra/iam` (clear the denials),
`POST /_okra/iam/authorize {"caller", "action", "resources", "context"}` (for the local Step
Functions service, whose API calls do not reach moto), `GET /_okra/iam/principal?caller=NAME`
(`{"function": LogicalId, "roleArn": ARN}`, 404 for a caller that is no function: the role of the
function a caller is, for the local Kubernetes API, okra_testkit::KubeApi, whose callers all sign
with the stack's one key). A SAM function's role is its `Role` property when it has one, else the
role SAM makes, `<LogicalId>Role`, whose ARN is the ref `<LogicalId>Role.Arn` when given, else
`arn:PARTITION:iam::ACCOUNT:role/STACK-<LogicalId>Role-LOCAL`; an AWS::IAM::Role's is the ref
`<LogicalId>.Arn`, else `arn:PARTITION:iam::ACCOUNT:role/STACK-<LogicalId>-LOCAL`.

AWS pages followed:
- IAM User Guide: "Policy evaluation logic" (an explicit Deny wins, else an Allow, else the
  implicit deny), "IAM JSON policy elements: Action" (case-insensitive, * and ?), "... Resource"
  (wildcards), "... Condition" (keys AND-ed, values OR-ed; key names case-insensitive),
  "... Condition operators" (a key absent from the request fails the condition except for the
  negated operators, ...IfExists and Null), "Single-valued vs. multivalued context keys"
  (ForAllValues is true over an absent or empty key, ForAnyValue false).
- Service Authorization Reference, "Actions, resources, and condition keys for <service>": the
  resource each action is authorized on and its condition keys (the request mapping below).
- ELB user guide, "Elastic Load Balancing API permissions to tag resources during creation":
  tags given to a create action are also authorized as elasticloadbalancing:AddTags, with
  `elasticloadbalancing:CreateAction`.
- Secrets Manager user guide, "Secret encryption and decryption in AWS Secrets Manager": a secret
  under a customer managed key is decrypted with the caller's kms:Decrypt, through Secrets Manager
  (`kms:ViaService`); the AWS managed key aws/secretsmanager needs no statement.
"""
import datetime
import functools
import html
import json
import os
import re
import secrets
import sys
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REFS = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
                "AWS::StackName": "okra", "AWS::URLSuffix": "amazonaws.com", "StateTable": "okra",
                # The testkit's (crates/okra-testkit/src/stack.rs, SAMPLE_SCHEDULE_*).
                "SampleScheduleGroup": "okra-samples",
                "SampleScheduleRole.Arn": "arn:aws:iam::123456789012:role/okra-SampleScheduleRole-LOCAL",
                "CheckMetricsFunction.Arn": "arn:aws:lambda:us-east-1:123456789012:function:check-metrics",
                # The API's id (tests/e2e/template.rs and the self-test ask for its routes).
                "Api": "okraapi001"}
# SigV4 signing name -> IAM service prefix, where they differ.
IAM_PREFIX = {"tagging": "tag", "monitoring": "cloudwatch"}

LOCK = threading.RLock()
CONFIG: dict = {"template": None, "refs": {}, "functions": {}, "packages": {}}
DENIED: deque = deque(maxlen=1000)
UNMAPPED: set[str] = set()  # actions already reported as authorized on "*" for want of a mapping


# ------------------------------------------------------------------ the template
class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags read as their long forms: `!Sub x` is
    {"Fn::Sub": x}, `!Ref x` {"Ref": x}, `!GetAtt a.b` {"Fn::GetAtt": [a, b]}, `!Condition c`
    {"Condition": c} (CloudFormation User Guide, "Intrinsic function reference")."""


def _short_form(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _short_form)
NO_VALUE = object()  # AWS::NoValue: the list item or key holding it is dropped


class Resolver:
    """Resolves intrinsic functions with the given values (CloudFormation's Ref, Fn::GetAtt,
    Fn::Sub, Fn::If and the condition functions, Fn::Join, Fn::Select, Fn::Split)."""

    def __init__(self, template: dict, refs: dict):
        params = {k: str(p["Default"]) for k, p in (template.get("Parameters") or {}).items()
                  if "Default" in p}
        self.values = {**DEFAULT_REFS, **params, **{k: str(v) for k, v in refs.items()}}
        if "StateTable.Arn" not in self.values:
            v = self.values
            v["StateTable.Arn"] = (f"arn:{v['AWS::Partition']}:dynamodb:{v['AWS::Region']}:"
                                   f"{v['AWS::AccountId']}:table/{v['StateTable']}")
        self.conditions = template.get("Conditions") or {}
        self.known: dict[str, bool] = {}
        # A CommaDelimitedList parameter's !Ref is a list of its values (CloudFormation User
        # Guide, "Parameters": "an array of literal strings separated by commas"); "" is none.
        self.lists = {k for k, p in (template.get("Parameters") or {}).items()
                      if p.get("Type") == "CommaDelimitedList"}

    def ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name not in self.values:
            raise ValueError(f"no value for !Ref {name}: give it in OKRA_IAM_REFS")
        if name in self.lists:
            return [v.strip() for v in self.values[name].split(",") if v.strip()]
        return self.values[name]

    def getatt(self, resource: str, attribute: str) -> str:
        key = f"{resource}.{attribute}"
        if key not in self.values:
            raise ValueError(f"no value for !GetAtt {key}: give it in OKRA_IAM_REFS")
        return self.values[key]

    def condition(self, name: str) -> bool:
        if name not in self.known:
            if name not in self.conditions:
                raise ValueError(f"unknown condition {name}")
            self.known[name] = bool(self.resolve(self.conditions[name]))
        return self.known[name]

    def sub(self, arg) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name and not name.startswith("AWS::"):
                return self.getatt(*name.split(".", 1))
            return str(self.ref(name))
        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self.function(key[4:], arg)
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def function(self, name: str, arg):
        if name == "Sub":
            return self.sub(arg)
        if name == "GetAtt":
            return self.getatt(*arg)
        if name == "If":
            return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
        if name == "Equals":
            a, b = (self.resolve(x) for x in arg)
            return str(a) == str(b)
        if name == "Not":
            return not self.resolve(arg[0])
        if name == "And":
            return all(self.resolve(x) for x in arg)
        if name == "Or":
            return any(self.resolve(x) for x in arg)
        if name == "Join":
            return str(arg[0]).join(str(x) for x in self.resolve(arg[1]))
        if name == "Select":
            return self.resolve(arg[1])[int(self.resolve(arg[0]))]
        if name == "Split":
            return str(self.resolve(arg[1])).split(arg[0])
        raise ValueError(f"unsupported intrinsic function Fn::{name}")


def function_statements(template: dict, resolver: Resolver) -> dict[str, list[dict]]:
    """Each AWS::Serverless::Function's inline statements (`Policies: - Statement: [...]`), each
    AWS::IAM::Role's (`Policies: - PolicyDocument: {Statement: [...]}`) and each
    AWS::IAM::ManagedPolicy's (`PolicyDocument`: a caller named `...-LogicalId-...` holds it),
    resolved. SAM policy templates and managed policies by ARN grant nothing here (okra's
    functions have none; each is reported)."""
    out = {}
    for logical, res in (template.get("Resources") or {}).items():
        kind = res.get("Type")
        if kind not in ("AWS::Serverless::Function", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
            continue
        if "Condition" in res and not resolver.condition(res["Condition"]):
            continue
        props = res.get("Properties") or {}
        raw = [props.get("PolicyDocument") or {}] if kind == "AWS::IAM::ManagedPolicy" else props.get("Policies") or []
        policies = resolver.resolve(raw)
        statements = []
        for policy in policies if isinstance(policies, list) else [policies]:
            if isinstance(policy, dict) and "PolicyDocument" in policy:
                policy = policy["PolicyDocument"]
            if isinstance(policy, dict) and "Statement" in policy:
                s = policy["Statement"]
                statements.extend(s if isinstance(s, list) else [s])
            else:
                print(f"okra-iam: {logical}: policy {json.dumps(policy)} is not modelled (inline "
                      "statements only): it grants nothing here", file=sys.stderr, flush=True)
        out[logical] = [normalized(s, logical, i) for i, s in enumerate(statements)]
    return out


def role_arns(template: dict, resolver: Resolver) -> dict[str, str]:
    """The role ARN of each function (its `Role`, else SAM's `<LogicalId>Role`) and of each
    AWS::IAM::Role, from the refs or, when not given, named as CloudFormation would name it in
    the local stack (`STACK-<Name>-LOCAL`, as DEFAULT_REFS' SampleScheduleRole)."""
    v = resolver.values
    out = {}
    for logical, res in (template.get("Resources") or {}).items():
        kind = res.get("Type")
        if "Condition" in res and not resolver.condition(res["Condition"]):
            continue
        props = res.get("Properties") or {}
        if kind == "AWS::Serverless::Function" and "Role" in props:
            out[logical] = str(resolver.resolve(props["Role"]))
            continue
        if kind == "AWS::Serverless::Function":
            role = f"{logical}Role"
        elif kind == "AWS::IAM::Role":
            role = logical
        else:
            continue
        out[logical] = v.get(f"{role}.Arn") or (
            f"arn:{v['AWS::Partition']}:iam::{v['AWS::AccountId']}:role/{v['AWS::StackName']}-{role}-LOCAL")
    return out


def role_trusts(template: dict, resolver: Resolver) -> dict[str, list[str]]:
    """Each AWS::IAM::Role's trusted service principals (its AssumeRolePolicyDocument's Allow
    sts:AssumeRole statements)."""
    out = {}
    for logical, res in (template.get("Resources") or {}).items():
        if res.get("Type") != "AWS::IAM::Role":
            continue
        doc = resolver.resolve((res.get("Properties") or {}).get("AssumeRolePolicyDocument") or {})
        services = []
        for st in _as_list(doc.get("Statement") or []):
            if st.get("Effect") == "Allow" and "sts:AssumeRole" in _as_list(st.get("Action") or []):
                services.extend(str(x) for x in _as_list((st.get("Principal") or {}).get("Service") or []))
        out[logical] = services
    return out


def trusted_by(role_name: str, service: str) -> bool:
    """Whether the template's role that `role_name` is trusts `service` to assume it (IAM User
    Guide, "Roles terms and concepts": a service assumes a role only if its trust policy names
    it). With enforcement off, every role is."""
    with LOCK:
        if CONFIG["template"] is None:
            return True
        trusts = CONFIG.get("trusts") or {}
    logical = next((r for r in trusts if f"-{r}-" in role_name or r == role_name), None)
    return logical is not None and service in trusts[logical]


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def _policy_value(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def normalized(s: dict, function: str, index: int) -> dict:
    """A statement with list-valued Action/Resource and checked operators."""
    where = f"{function} statement {s.get('Sid', index)}"
    if s.get("Effect") not in ("Allow", "Deny"):
        raise ValueError(f"{where}: Effect must be Allow or Deny")
    out = {"Sid": s.get("Sid", f"#{index}"), "Effect": s["Effect"]}
    for a, b in (("Action", "NotAction"), ("Resource", "NotResource")):
        if (a in s) == (b in s):
            raise ValueError(f"{where}: exactly one of {a} and {b}")
        key = a if a in s else b
        out[key] = [str(x) for x in _as_list(s[key])]
    out["Condition"] = {}
    for op, keys in (s.get("Condition") or {}).items():
        base = op.split(":", 1)[-1]
        base = base[:-len("IfExists")] if base.endswith("IfExists") else base
        if base not in MATCHERS and base not in NEGATED and base != "Null":
            raise ValueError(f"{where}: condition operator {op} is not modelled")
        out["Condition"][op] = {k: [_policy_value(v) for v in _as_list(vs)] for k, vs in keys.items()}
    return out


def makefile_packages(root: Path) -> dict[str, str]:
    """package -> logical id, from the Makefile's `build-<LogicalId>: PKG = <package>` lines."""
    text = (root / "Makefile").read_text()
    return {pkg: logical for logical, pkg in re.findall(r"^build-(\w+):\s*PKG\s*=\s*(\S+)", text, re.M)}


def configure(template: str | None, refs: dict | None) -> None:
    """(Re)loads the template's statements; a None template turns enforcement off."""
    functions, packages, path, trusts, roles = {}, {}, None, {}, {}
    if template:
        path = Path(template) if Path(template).is_absolute() else ROOT / template
        with open(path) as f:
            doc = yaml.load(f, Loader=CfnLoader)
        resolver = Resolver(doc, refs or {})
        functions = function_statements(doc, resolver)
        trusts = role_trusts(doc, resolver)
        roles = role_arns(doc, resolver)
        packages = makefile_packages(ROOT)
    with LOCK:
        CONFIG.update(template=str(path) if path else None, refs=dict(refs or {}),
                      functions=functions, packages=packages, trusts=trusts, roles=roles)


def configure_from_env() -> None:
    configure(os.environ.get("OKRA_IAM_TEMPLATE") or None,
              json.loads(os.environ.get("OKRA_IAM_REFS") or "{}"))


def function_of(caller: str | None) -> str | None:
    """The template function a caller is: its package (Makefile) or `-<LogicalId>-` in its name."""
    if not caller:
        return None
    with LOCK:
        functions, packages = CONFIG["functions"], CONFIG["packages"]
    if packages.get(caller) in functions:
        return packages[caller]
    return next((f for f in functions if f"-{f}-" in caller), None)


# ------------------------------------------------------------------ evaluation
@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool = False) -> re.Pattern:
    """IAM's wildcards: * any run of characters (across `:` and `/` too), ? one character; every
    other character is itself."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-separated parts matched on its own."""
    p, v = pattern.split(":", 5), value.split(":", 5)
    return len(p) == len(v) == 6 and all(glob(a, b) for a, b in zip(p, v))


def _numeric(compare):
    def match(policy: str, value: str) -> bool:
        try:
            return compare(float(value), float(policy))
        except ValueError:
            return False
    return match


MATCHERS = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": lambda p, v: glob(p, v),
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "Bool": lambda p, v: p.lower() == v.lower(),
    "NumericEquals": _numeric(lambda v, p: v == p),
    "NumericLessThan": _numeric(lambda v, p: v < p),
    "NumericLessThanEquals": _numeric(lambda v, p: v <= p),
    "NumericGreaterThan": _numeric(lambda v, p: v > p),
    "NumericGreaterThanEquals": _numeric(lambda v, p: v >= p),
}
# Negated operators: the request value must match none of the policy's values (NOR).
NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
           "NumericNotEquals": "NumericEquals"}
# Service keys the services document as the same as aws:ResourceTag/K.
RESOURCE_TAG_ALIASES = ("elasticloadbalancing:resourcetag/", "autoscaling:resourcetag/",
                        "secretsmanager:resourcetag/")


def context_values(context: dict, key: str) -> list[str] | None:
    key = key.lower()
    if key in context:
        return context[key]
    for alias in RESOURCE_TAG_ALIASES:
        if key.startswith(alias):
            return context.get("aws:resourcetag/" + key[len(alias):])
    return None


def condition_holds(op: str, key: str, wanted: list[str], context: dict) -> bool:
    qualifier, _, op = op.rpartition(":")
    present = context_values(context, key)
    if op == "Null":
        absent = "true" if not present else "false"
        return any(w.lower() == absent for w in wanted)
    if_exists = op.endswith("IfExists")
    base = op[:-len("IfExists")] if if_exists else op
    negated = base in NEGATED
    matcher = MATCHERS[NEGATED.get(base, base)]

    def one(value: str) -> bool:
        hit = any(matcher(w, value) for w in wanted)
        return not hit if negated else hit
    if qualifier == "ForAllValues":
        return all(one(v) for v in present or [])
    if qualifier == "ForAnyValue":
        return any(one(v) for v in present or [])
    if not present:
        return if_exists or negated
    # A multivalued key under a single-valued operator: any of its values (assumed).
    return any(one(v) for v in present)


def _failed_condition(statement: dict, context: dict) -> str | None:
    for op, keys in statement["Condition"].items():
        for key, wanted in keys.items():
            if not condition_holds(op, key, wanted, context):
                got = context_values(context, key)
                return (f"{op} {key} {wanted} does not hold (the request has "
                        f"{got if got is not None else 'no such key'})")
    return None


def _action_matches(statement: dict, action: str) -> bool:
    if "Action" in statement:
        return any(glob(a, action, ignore_case=True) for a in statement["Action"])
    return not any(glob(a, action, ignore_case=True) for a in statement["NotAction"])


def _resource_matches(statement: dict, resource: str) -> bool:
    if "Resource" in statement:
        return any(glob(r, resource) for r in statement["Resource"])
    return not any(glob(r, resource) for r in statement["NotResource"])


def decide(statements: list[dict], action: str, resource: str, context: dict) -> tuple[bool, str]:
    """(allowed, why) for one action on one resource ("Policy evaluation logic", identity-based
    policies of one account: an explicit deny, else an allow, else the implicit deny)."""
    allowed_by, misses = None, []
    for s in statements:
        if not _action_matches(s, action):
            continue
        if not _resource_matches(s, resource):
            misses.append(f"statement {s['Sid']} grants it on {s.get('Resource') or s.get('NotResource')}")
            continue
        failed = _failed_condition(s, context)
        if failed is None and s["Effect"] == "Deny":
            return False, f"explicit deny in statement {s['Sid']}"
        if failed is None:
            allowed_by = allowed_by or s["Sid"]
        elif s["Effect"] == "Allow":
            misses.append(f"statement {s['Sid']}: {failed}")
    if allowed_by:
        return True, f"allowed by statement {allowed_by}"
    return False, "; ".join(misses) if misses else f"no statement grants {action}"


@dataclass
class Check:
    """One authorization: an action on one resource, with the request's context keys
    (lower-case names, list values)."""
    action: str
    resource: str
    context: dict[str, list[str]] = field(default_factory=dict)


def authorize(caller: str | None, checks: list[Check]) -> tuple[bool, str | None, Check | None, str]:
    """(allowed, function, the failing check, reason); every check must be allowed."""
    function = function_of(caller)
    with LOCK:
        enabled = CONFIG["template"] is not None
        statements = CONFIG["functions"].get(function, [])
    if not enabled or function is None:
        return True, function, None, "not restricted" if enabled else "IAM enforcement is off"
    reason = "no authorization needed"
    for check in checks:
        ok, reason = decide(statements, check.action, check.resource, check.context)
        if not ok:
            record_denial(caller, function, check, reason)
            return False, function, check, reason
    return True, function, None, reason


def record_denial(caller: str, function: str, check: Check, reason: str) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    with LOCK:
        DENIED.append({"caller": caller, "function": function, "action": check.action,
                       "resources": [check.resource], "reason": reason, "time": now})
    print(f"okra-iam: DENY caller={caller} action={check.action} resource={check.resource} "
          f"reason={reason}", file=sys.stderr, flush=True)


def denial_message(caller: str, function: str, check: Check, account: str, reason: str) -> str:
    """AWS's current wording (IAM User Guide, "Troubleshoot access denied error messages"); an
    action authorized on "*" is named without a resource, as AWS names it."""
    on = "" if check.resource == "*" else f" on resource: {check.resource}"
    why = ("with an explicit deny in an identity-based policy" if reason.startswith("explicit deny")
           else f"because no identity-based policy allows the {check.action} action")
    return (f"User: arn:aws:sts::{account}:assumed-role/{function}Role/{caller} is not authorized "
            f"to perform: {check.action}{on} {why}")


# ------------------------------------------------------------------ what a request is
@dataclass
class Request:
    service: str  # SigV4 signing name
    operation: str
    params: dict  # the query form (name -> first value) or the JSON body
    method: str
    path: str
    query: dict[str, list[str]]
    region: str
    account: str

    @property
    def partition(self) -> str:
        from moto.utilities.utils import get_partition
        return get_partition(self.region)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


def request_of(environ, body: bytes, service: str, operation: str) -> Request:
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    params: dict = {}
    ctype = environ.get("CONTENT_TYPE", "")
    if "x-www-form-urlencoded" in ctype or (not ctype and body[:400].find(b"Action=") >= 0):
        params = {k: v[0] for k, v in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items()}
        params.update({k: v[0] for k, v in query.items() if k not in params})
    elif body:
        try:
            params = json.loads(body)
        except ValueError:
            params = {}
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") if "Credential=" in auth else []
    region = scope[2] if len(scope) >= 4 else "us-east-1"
    return Request(service, operation, params if isinstance(params, dict) else {},
                   environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""), query,
                   region, account_of(environ, scope[0] if scope else ""))


def account_of(environ, access_key: str) -> str:
    """The account moto serves the request from (moto's own order: MOTO_ACCOUNT_ID, the
    x-moto-account-id header, the access key's account, its default)."""
    from moto.iam.models import get_account_id_from
    return (os.environ.get("MOTO_ACCOUNT_ID") or environ.get("HTTP_X_MOTO_ACCOUNT_ID")
            or get_account_id_from(access_key))


def members(params: dict, prefix: str) -> list[str]:
    """awsQuery list members `Prefix.member.N` in order."""
    found = [(int(m.group(1)), v) for k, v in params.items()
             if (m := re.fullmatch(re.escape(prefix) + r"\.member\.(\d+)", k))]
    return [v for _, v in sorted(found)]


def query_tags(params: dict, prefix: str = "Tags") -> dict[str, str]:
    keys = {int(m.group(1)): v for k, v in params.items()
            if (m := re.fullmatch(re.escape(prefix) + r"\.member\.(\d+)\.Key", k))}
    return {v: params.get(f"{prefix}.member.{i}.Value", "") for i, v in sorted(keys.items())}


def tag_context(resource_tags: dict | None = None, request_tags: dict | None = None,
                tag_keys: list[str] | None = None) -> dict[str, list[str]]:
    """aws:ResourceTag/K (the resource's tags), aws:RequestTag/K and aws:TagKeys (the request's)."""
    ctx = {f"aws:resourcetag/{k}".lower(): [str(v)] for k, v in (resource_tags or {}).items()}
    ctx.update({f"aws:requesttag/{k}".lower(): [str(v)] for k, v in (request_tags or {}).items()})
    if tag_keys is None and request_tags is not None:
        tag_keys = list(request_tags)
    if tag_keys is not None:
        ctx["aws:tagkeys"] = list(tag_keys)
    return ctx


def _new_id() -> str:
    """The id part of a resource that does not exist yet (ELB's are 16 hex digits)."""
    return secrets.token_hex(8)


# Service Authorization Reference, "Actions, resources, and condition keys for Elastic Load
# Balancing V2": the resource each action is authorized on, named by this parameter; every
# Describe* action supports no resource-level permissions ("*").
ELB_ARN_PARAM = {
    "CreateListener": "LoadBalancerArn", "DeleteLoadBalancer": "LoadBalancerArn",
    "ModifyLoadBalancerAttributes": "LoadBalancerArn", "SetSecurityGroups": "LoadBalancerArn",
    "SetSubnets": "LoadBalancerArn",
    "ModifyListener": "ListenerArn", "DeleteListener": "ListenerArn",
    "ModifyListenerAttributes": "ListenerArn", "CreateRule": "ListenerArn",
    "ModifyRule": "RuleArn", "DeleteRule": "RuleArn",
    "RegisterTargets": "TargetGroupArn", "DeregisterTargets": "TargetGroupArn",
    "ModifyTargetGroup": "TargetGroupArn", "ModifyTargetGroupAttributes": "TargetGroupArn",
    "DeleteTargetGroup": "TargetGroupArn",
}


def elbv2_checks(req: Request) -> list[Check] | None:
    """Elastic Load Balancing V2: the resource's ARN with its tags (aws:ResourceTag/K, moto's
    tags); AddTags/RemoveTags each of ResourceArns with aws:RequestTag/K, aws:TagKeys; a create
    action the ARN it makes (a new id: it does not exist yet) or its parent's (CreateListener: the
    load balancer; CreateRule: the listener), and, when it carries Tags, AddTags on the new
    resource with elasticloadbalancing:CreateAction."""
    from moto.elbv2.models import elbv2_backends
    tags = elbv2_backends[req.account][req.region].tagging_service.get_tag_dict_for_resource
    action, p, op = f"elasticloadbalancing:{req.operation}", req.params, req.operation
    if op.startswith("Describe"):
        return [Check(action, "*")]
    if op in ("AddTags", "RemoveTags"):
        request_tags = query_tags(p) if op == "AddTags" else None
        keys = members(p, "TagKeys") if op == "RemoveTags" else None
        return [Check(action, arn, tag_context(tags(arn), request_tags, keys))
                for arn in members(p, "ResourceArns")]
    if op == "SetRulePriorities":
        rules = [p[k] for k in sorted(p) if re.fullmatch(r"RulePriorities\.member\.\d+\.RuleArn", k)]
        return [Check(action, arn, tag_context(tags(arn))) for arn in rules]
    request_tags = query_tags(p)
    if op == "CreateTargetGroup":
        new = req.arn("elasticloadbalancing", f"targetgroup/{p.get('Name', '')}/{_new_id()}")
        checks = [Check(action, new, tag_context(None, request_tags))]
    elif op == "CreateLoadBalancer":
        kind = {"network": "net", "gateway": "gwy"}.get(p.get("Type", "application"), "app")
        new = req.arn("elasticloadbalancing", f"loadbalancer/{kind}/{p.get('Name', '')}/{_new_id()}")
        checks = [Check(action, new, tag_context(None, request_tags))]
    elif op in ("CreateListener", "CreateRule"):
        parent = p.get(ELB_ARN_PARAM[op], "")
        new = (parent.replace(":loadbalancer/", ":listener/", 1) if op == "CreateListener"
               else parent.replace(":listener/", ":listener-rule/", 1)) + f"/{_new_id()}"
        checks = [Check(action, parent, tag_context(tags(parent), request_tags))]
    elif op in ELB_ARN_PARAM:
        arn = p.get(ELB_ARN_PARAM[op], "")
        return [Check(action, arn, tag_context(tags(arn)))]
    else:
        return None
    if request_tags:
        # ELB user guide, "... permissions to tag resources during creation".
        ctx = tag_context(None, request_tags)
        ctx["elasticloadbalancing:createaction"] = [op]
        checks.append(Check("elasticloadbalancing:AddTags", new, ctx))
    return checks


def eks_checks(req: Request) -> list[Check] | None:
    """Amazon EKS: cluster/NAME, nodegroup/CLUSTER/NAME/UUID (the node group's, from moto's EKS),
    any resource's ARN for the tag operations (a cluster's, a node group's, an access entry's, with
    aws:ResourceTag/K, and aws:RequestTag/K and aws:TagKeys for TagResource, aws:TagKeys for
    UntagResource); ListClusters, CreateCluster and ListAccessPolicies "*"; the access entry
    operations as eks_access_entry_checks says."""
    from urllib.parse import unquote
    from moto.eks.models import eks_backends
    backend = eks_backends[req.account][req.region]
    action = f"eks:{req.operation}"
    if req.operation in ("ListClusters", "CreateCluster"):
        tags = req.params.get("tags") if req.operation == "CreateCluster" else None
        return [Check(action, "*", tag_context(None, tags) if tags else {})]
    if req.operation in ("ListTagsForResource", "TagResource", "UntagResource"):
        arn = unquote(req.path[len("/tags/"):])
        existing = next((r.tags for c in backend.clusters.values()
                         for r in [c, *c.nodegroups.values()] if r.arn == arn), None)
        entry = next((e for c in backend.clusters.values()
                      for e in list(getattr(c, "okra_access_entries", {}).values())
                      if e["accessEntryArn"] == arn), None)
        if entry is not None:  # an access entry: its tags and its eks: keys
            existing = entry["tags"]
        if req.operation == "TagResource":
            ctx = tag_context(existing, req.params.get("tags") or {})
        else:
            keys = req.query.get("tagKeys") if req.operation == "UntagResource" else None
            ctx = tag_context(existing, None, keys)
        if entry is not None:
            ctx.update(eks_entry_context(entry["principalArn"], entry["type"], entry["kubernetesGroups"],
                                         entry["username"], entry["clusterName"]))
        return [Check(action, arn, ctx)]
    if req.operation == "ListAccessPolicies":  # no resource-level permissions
        return [Check(action, "*")]
    entry_path = re.match(r"^/clusters/([^/]+)/access-entries(?:/(.+?)(?:/access-policies(?:/(.+))?)?)?$",
                          unquote(req.path))
    if entry_path:
        return eks_access_entry_checks(req, backend, action, *entry_path.groups())
    m = re.match(r"^/clusters/([^/]+)(?:/node-groups/([^/]+))?", unquote(req.path))
    if not m:
        return None
    cluster = backend.clusters.get(m[1])
    if m[2] and req.operation == "DescribeNodegroup":
        ng = cluster.nodegroups.get(m[2]) if cluster else None
        arn = ng.arn if ng else req.arn("eks", f"nodegroup/{m[1]}/{m[2]}/{uuid.UUID(int=0)}")
        return [Check(action, arn, tag_context(ng.tags if ng else None))]
    ctx = tag_context(cluster.tags if cluster else None,
                      req.params.get("tags") if req.operation == "CreateNodegroup" else None)
    return [Check(action, req.arn("eks", f"cluster/{m[1]}"), ctx)]


# Service Authorization Reference, EKS, resource type access-entry:
# arn:${Partition}:eks:${Region}:${Account}:access-entry/${ClusterName}/${IamIdentityType}/
# ${IamIdentityAccountID}/${IamIdentityName}/${UUID} (a role's path is not in it).
EKS_PRINCIPAL = re.compile(r"^arn:[^:]+:iam::(\d{12}):(role|user)/(?:[!-~]*/)?([\w+=,.@-]+)$")


def eks_entry_context(principal, entry_type, groups, username, cluster_name=None) -> dict[str, list[str]]:
    """The access entry condition keys (eks:principalArn, eks:accessEntryType, eks:kubernetesGroups,
    eks:username, eks:clusterName) with the values given."""
    ctx = {"eks:principalarn": [principal] if principal else [],
           "eks:accessentrytype": [entry_type] if entry_type else [],
           "eks:kubernetesgroups": [str(g) for g in groups or []],
           "eks:username": [username] if username else [],
           "eks:clustername": [cluster_name] if cluster_name else []}
    return {k: v for k, v in ctx.items() if v}


def eks_access_entry_checks(req: Request, backend, action: str, cluster_name: str,
                            principal: str | None, policy: str | None) -> list[Check]:
    """Service Authorization Reference, EKS: CreateAccessEntry and ListAccessEntries are authorized
    on the cluster (CreateAccessEntry with aws:RequestTag/K, aws:TagKeys and the request's
    eks:principalArn, eks:accessEntryType, eks:kubernetesGroups, eks:username; with tags, also
    eks:TagResource on the new entry, per the reference's "API operations" table); Describe,
    Update, Delete, AssociateAccessPolicy, ListAssociatedAccessPolicies and
    DisassociateAccessPolicy on the access entry, with its aws:ResourceTag/K and eks: keys, and
    for the policy operations eks:policyArn, eks:accessScope, eks:namespaces."""
    cluster = backend.clusters.get(cluster_name)
    p, op = req.params, req.operation

    def entry_arn(principal_arn: str, uid: str) -> str:
        m = EKS_PRINCIPAL.match(principal_arn or "")
        tail = f"{m[2]}/{m[1]}/{m[3]}" if m else str(principal_arn)
        return req.arn("eks", f"access-entry/{cluster_name}/{tail}/{uid}")
    if principal is None:
        tags = p.get("tags") if op == "CreateAccessEntry" else None
        ctx = tag_context(cluster.tags if cluster else None, tags)
        if op != "CreateAccessEntry":
            return [Check(action, req.arn("eks", f"cluster/{cluster_name}"), ctx)]
        keys = eks_entry_context(p.get("principalArn"), p.get("type") or "STANDARD",
                                 p.get("kubernetesGroups"), p.get("username"))
        checks = [Check(action, req.arn("eks", f"cluster/{cluster_name}"), {**ctx, **keys})]
        if tags:
            new = entry_arn(p.get("principalArn"), str(uuid.uuid4()))
            checks.append(Check("eks:TagResource", new, {**tag_context(None, tags), **keys,
                                                         "eks:clustername": [cluster_name]}))
        return checks
    entry = (getattr(cluster, "okra_access_entries", {}) if cluster else {}).get(principal)
    arn = entry["accessEntryArn"] if entry else entry_arn(principal, str(uuid.UUID(int=0)))
    groups, username = (entry or {}).get("kubernetesGroups"), (entry or {}).get("username")
    if op == "UpdateAccessEntry":
        groups = p.get("kubernetesGroups", groups)
        username = p.get("username") or username
    ctx = tag_context(entry["tags"] if entry else None)
    ctx.update(eks_entry_context(principal, (entry or {}).get("type"), groups, username, cluster_name))
    if op in ("AssociateAccessPolicy", "DisassociateAccessPolicy"):
        policy_arn = p.get("policyArn") if op == "AssociateAccessPolicy" else policy
        scope = (p.get("accessScope") if op == "AssociateAccessPolicy"
                 else ((entry or {}).get("_policies", {}).get(policy) or {}).get("accessScope")) or {}
        ctx["eks:policyarn"] = [policy_arn] if policy_arn else []
        ctx["eks:accessscope"] = [scope["type"]] if scope.get("type") else []
        ctx["eks:namespaces"] = [str(n) for n in scope.get("namespaces") or []]
        ctx = {k: v for k, v in ctx.items() if v}
    return [Check(action, arn, ctx)]


def dynamodb_checks(req: Request) -> list[Check] | None:
    """Amazon DynamoDB: table/NAME (TableName may be the table's ARN), table/NAME/index/INDEX for
    a Query or Scan of an index, each table of a batch; ListTables "*"."""
    def table(name: str) -> str:
        return name if name.startswith("arn:") else req.arn("dynamodb", f"table/{name}")
    action, p = f"dynamodb:{req.operation}", req.params
    if req.operation == "ListTables":
        return [Check(action, "*")]
    if req.operation in ("BatchGetItem", "BatchWriteItem"):
        return [Check(action, table(t)) for t in p.get("RequestItems") or {}]
    if "TableName" not in p:
        return None
    arn = table(p["TableName"])
    if req.operation in ("Query", "Scan") and p.get("IndexName"):
        arn += f"/index/{p['IndexName']}"
    return [Check(action, arn)]


def autoscaling_checks(req: Request) -> list[Check] | None:
    """Amazon EC2 Auto Scaling: the group's ARN (autoScalingGroup:UUID:autoScalingGroupName/NAME,
    from moto's backend), its tags, autoscaling:TargetGroupARNs; Describe* "*"."""
    from moto.autoscaling.models import autoscaling_backends
    action, p = f"autoscaling:{req.operation}", req.params
    if req.operation.startswith("Describe"):
        return [Check(action, "*")]
    name = p.get("AutoScalingGroupName")
    if name is None:
        return None
    group = autoscaling_backends[req.account][req.region].autoscaling_groups.get(name)
    arn = group.arn if group else req.arn("autoscaling", f"autoScalingGroup:{uuid.UUID(int=0)}:"
                                                         f"autoScalingGroupName/{name}")
    ctx = tag_context({t["Key"]: t["Value"] for t in group.tags} if group else None)
    if members(p, "TargetGroupARNs"):
        ctx["autoscaling:targetgrouparns"] = members(p, "TargetGroupARNs")
    return [Check(action, arn, ctx)]


def secretsmanager_checks(req: Request) -> list[Check] | None:
    """AWS Secrets Manager: the secret's full ARN (SecretId may be a name or a partial ARN; moto's
    backend resolves it; an unknown one is named as given), its tags, secretsmanager:SecretId.
    GetSecretValue of a secret under a customer managed key also needs kms:Decrypt on the key via
    Secrets Manager (the default key policy, which delegates to IAM, is assumed)."""
    from moto.secretsmanager.models import secretsmanager_backends
    action, secret_id = f"secretsmanager:{req.operation}", req.params.get("SecretId")
    if req.operation in ("ListSecrets", "GetRandomPassword", "BatchGetSecretValue"):
        return [Check(action, "*")]
    if secret_id is None:
        return None
    secret = secretsmanager_backends[req.account][req.region].secrets.get(secret_id)
    arn = secret.arn if secret else (secret_id if secret_id.startswith("arn:")
                                     else req.arn("secretsmanager", f"secret:{secret_id}"))
    ctx = tag_context({t["Key"]: t["Value"] for t in (secret.tags or [])} if secret else None)
    ctx["secretsmanager:secretid"] = [secret_id]
    checks = [Check(action, arn, ctx)]
    key = getattr(secret, "kms_key_id", None)
    if req.operation == "GetSecretValue" and key and key != "alias/aws/secretsmanager":
        checks.append(Check("kms:Decrypt", kms_key_arn(req, key), {
            "kms:viaservice": [f"secretsmanager.{req.region}.amazonaws.com"],
            "kms:calleraccount": [req.account]}))
    return checks


def kms_key_arn(req: Request, key_id: str) -> str:
    """A key's ARN from a key id, key ARN, alias name or alias ARN (moto's KMS resolves aliases)."""
    from moto.kms.models import kms_backends
    backend = kms_backends[req.account][req.region]
    try:
        return backend.keys[backend.any_id_to_key_id(key_id)].arn
    except (KeyError, TypeError):
        return key_id if key_id.startswith("arn:") else req.arn("kms", key_id if key_id.startswith("alias/")
                                                                 else f"key/{key_id}")


def kms_checks(req: Request) -> list[Check] | None:
    """AWS KMS: the key's ARN. A Decrypt without KeyId names its key in the ciphertext, which is
    not read here: authorized on "*" (stricter than AWS)."""
    action = f"kms:{req.operation}"
    if req.operation in ("ListKeys", "ListAliases", "CreateKey"):
        return [Check(action, "*")]
    key = req.params.get("KeyId")
    if key is None:
        return [Check(action, "*")] if req.operation == "Decrypt" else None
    return [Check(action, kms_key_arn(req, key), {"kms:calleraccount": [req.account]})]


def events_checks(req: Request) -> list[Check] | None:
    """Amazon EventBridge: PutEvents on each entry's bus (event-bus/NAME, `default` when none, an
    ARN as given), with events:source and events:detail-type."""
    if req.operation != "PutEvents":
        return None
    checks = []
    for e in req.params.get("Entries") or []:
        bus = e.get("EventBusName") or "default"
        checks.append(Check("events:PutEvents", bus if bus.startswith("arn:") else req.arn("events", f"event-bus/{bus}"),
                            {"events:source": [str(e.get("Source", ""))],
                             "events:detail-type": [str(e.get("DetailType", ""))]}))
    return checks


def cloudtrail_checks(req: Request) -> list[Check] | None:
    """AWS CloudTrail: GetTrailStatus (Name) and GetEventSelectors (TrailName) on trail/NAME (a
    name or the trail's ARN); DescribeTrails, ListTrails, LookupEvents "*"."""
    action = f"cloudtrail:{req.operation}"
    if req.operation in ("DescribeTrails", "ListTrails", "LookupEvents"):
        return [Check(action, "*")]
    name = req.params.get("Name") or req.params.get("TrailName")
    if name is None:
        return None
    return [Check(action, name if name.startswith("arn:") else req.arn("cloudtrail", f"trail/{name}"))]


def states_checks(req: Request) -> list[Check] | None:
    """AWS Step Functions, when moto serves it (the local Step Functions service usually does):
    stateMachineArn or executionArn. SendTaskSuccess/Failure/Heartbeat: the Service Authorization
    Reference lists no resource type ("*"), but AWS authorizes a callback token against its
    execution's state machine (AccessDenied messages name `...:stateMachine:NAME`), which moto's
    Step Functions does not keep: "*" here, stricter than AWS."""
    action, p = f"states:{req.operation}", req.params
    if req.operation in ("ListStateMachines", "ListActivities"):
        return [Check(action, "*")]
    if req.operation.startswith("SendTask"):
        return [Check(action, "*")]
    arn = p.get("executionArn") or p.get("stateMachineArn")
    return [Check(action, arn)] if arn else None


def cloudwatch_checks(req: Request) -> list[Check] | None:
    """Amazon CloudWatch: GetMetricData, GetMetricStatistics, ListMetrics, PutMetricData support
    no resource-level permissions; PutMetricData has cloudwatch:namespace."""
    action = f"cloudwatch:{req.operation}"
    if req.operation == "PutMetricData":
        return [Check(action, "*", {"cloudwatch:namespace": [req.params.get("Namespace", "")]})]
    if req.operation in ("GetMetricData", "GetMetricStatistics", "ListMetrics"):
        return [Check(action, "*")]
    return None


def scheduler_checks(req: Request) -> list[Check] | None:
    """Amazon EventBridge Scheduler: schedule/GROUP/NAME (`default` without a group), and for
    CreateSchedule/UpdateSchedule iam:PassRole on the target's role with iam:PassedToService
    (Scheduler User Guide, "Setting up the execution role": the caller must be able to pass
    it); schedule-group/NAME for the group operations; the List operations "*"."""
    from urllib.parse import unquote
    action = f"scheduler:{req.operation}"
    if req.operation.startswith("List"):
        return [Check(action, "*")]
    m = re.match(r"^/(schedules|schedule-groups)/([^/?]+)", unquote(req.path))
    if not m:
        return None
    if m[1] == "schedule-groups":
        return [Check(action, req.arn("scheduler", f"schedule-group/{m[2]}"))]
    group = (req.params.get("GroupName") or (req.query.get("groupName") or ["default"])[0]
             or "default")
    checks = [Check(action, req.arn("scheduler", f"schedule/{group}/{m[2]}"))]
    if req.operation in ("CreateSchedule", "UpdateSchedule"):
        role = (req.params.get("Target") or {}).get("RoleArn")
        if role:
            checks.append(Check("iam:PassRole", role,
                                {"iam:passedtoservice": ["scheduler.amazonaws.com"]}))
    return checks


BUILDERS = {
    "elasticloadbalancing": elbv2_checks, "eks": eks_checks, "dynamodb": dynamodb_checks,
    "autoscaling": autoscaling_checks, "secretsmanager": secretsmanager_checks, "kms": kms_checks,
    "events": events_checks, "cloudtrail": cloudtrail_checks, "states": states_checks,
    "monitoring": cloudwatch_checks, "scheduler": scheduler_checks,
    # The Resource Groups Tagging API's actions support no resource-level permissions; nor do
    # EC2's Describe* that okra calls (Instances, SecurityGroups, Subnets, Vpcs).
    "tagging": lambda req: [Check(f"tag:{req.operation}", "*")],
    "ec2": lambda req: [Check(f"ec2:{req.operation}", "*")] if req.operation.startswith("Describe") else None,
    # AWS STS API reference, GetCallerIdentity: "No permissions are required"; AssumeRole is
    # authorized on the role (Service Authorization Reference, AWS STS: resource type role).
    "sts": lambda req: [] if req.operation == "GetCallerIdentity" else (
        [Check("sts:AssumeRole", req.params.get("RoleArn", ""))] if req.operation == "AssumeRole" else None),
}


def checks_of(req: Request) -> list[Check]:
    """What AWS authorizes for a request. An operation without a mapping is authorized on "*"
    (which only a statement granting it on "*" allows) and reported once."""
    builder = BUILDERS.get(req.service)
    try:
        checks = builder(req) if builder else None
    except Exception as e:  # a request the mapping cannot read: say so, authorize on "*"
        print(f"okra-iam: cannot map {req.service}:{req.operation}: {e!r}", file=sys.stderr, flush=True)
        checks = None
    if checks is None:
        action = f"{IAM_PREFIX.get(req.service, req.service)}:{req.operation}"
        with LOCK:
            new = action not in UNMAPPED
            UNMAPPED.add(action)
        if new:
            print(f"okra-iam: no resource mapping for {action}: authorized on \"*\"",
                  file=sys.stderr, flush=True)
        checks = [Check(action, "*")]
    for c in checks:
        c.context.setdefault("aws:requestedregion", [req.region])
    return checks


# ------------------------------------------------------------------ answers
# Services whose JSON protocol is `awsQueryCompatible` (botocore's model metadata): CloudWatch,
# which botocore calls in JSON 1.0 (`x-amzn-query-mode: true`) and aws-sdk-cloudwatch in RPC v2
# CBOR (translated to awsQuery by strict_moto before this layer).
QUERY_COMPATIBLE = {"monitoring"}


def denied_answer(environ, req: Request, message: str, start_response):
    """AccessDenied as the service answers it (botocore's parsers, which the Rust SDK matches:
    awsQuery <ErrorResponse><Error><Code>, EC2 <Response><Errors><Error><Code>, JSON `__type`,
    REST-JSON `x-amzn-ErrorType`)."""
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    if req.service == "ec2":
        status, ctype = "403 Forbidden", "text/xml"
        body = ("<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not "
                f"authorized to perform this operation. {html.escape(message)}</Message></Error>"
                f"</Errors><RequestID>{request_id}</RequestID></Response>")
    elif environ.get("HTTP_X_AMZ_TARGET"):
        status = "400 Bad Request"
        ctype = environ.get("CONTENT_TYPE") or "application/x-amz-json-1.1"
        kind = ("com.amazonaws.dynamodb.v20120810#AccessDeniedException" if req.service == "dynamodb"
                else "AccessDeniedException")
        body = json.dumps({"__type": kind, "message": message})
        if req.service in QUERY_COMPATIBLE:
            # The awsQuery error's code, fault and status, which the SDKs read from this header.
            status = "403 Forbidden"
            headers.append(("x-amzn-query-error", "AccessDenied;Sender"))
    elif req.service == "eks":
        status, ctype = "403 Forbidden", "application/json"
        body = json.dumps({"message": message})
        headers.append(("x-amzn-ErrorType", "AccessDeniedException"))
    else:
        status, ctype = "403 Forbidden", "text/xml"
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                f"<Message>{html.escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>")
    data = body.encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))] + headers)
    return [data]


def with_iam(app, operation_of, caller_of):
    """The WSGI layer: a restricted caller's request is authorized before moto sees it."""
    import io

    def wsgi(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(("/_okra/", "/moto-api")):
            return app(environ, start_response)
        with LOCK:
            enabled = CONFIG["template"] is not None
        caller = caller_of(environ)
        if not enabled or function_of(caller) is None:
            return app(environ, start_response)
        n = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(n) if n else b""
        environ["wsgi.input"] = io.BytesIO(body)
        service, operation = operation_of(environ, body)
        rpc_v2 = re.match(r"^/service/[^/]+/operation/([^/]+)$", environ.get("PATH_INFO", ""))
        if rpc_v2:  # Smithy RPC v2 CBOR that strict_moto did not translate (moto serves none)
            operation = rpc_v2[1]
        req = request_of(environ, body, service, operation)
        allowed, function, failed, reason = authorize(caller, checks_of(req))
        if allowed:
            return app(environ, start_response)
        return denied_answer(environ, req, denial_message(caller, function, failed, req.account, reason),
                             start_response)
    return wsgi


# ------------------------------------------------------------------ the admin routes
def state() -> dict:
    with LOCK:
        return {"enabled": CONFIG["template"] is not None, "template": CONFIG["template"],
                "refs": CONFIG["refs"], "functions": CONFIG["functions"], "denied": list(DENIED)}


def admin(method: str, path: str, body: str, caller: str | None = None) -> tuple[int, dict]:
    """/_okra/iam, /_okra/iam/authorize and /_okra/iam/principal (`caller`: its query
    parameter): (HTTP status, JSON answer)."""
    try:
        data = json.loads(body or "{}")
    except ValueError as e:
        return 400, {"error": f"the body is not JSON: {e}"}
    if path.rstrip("/") == "/_okra/iam/principal" and method == "GET":
        function = function_of(caller)
        with LOCK:
            role = (CONFIG.get("roles") or {}).get(function) if function else None
        if role is None:
            return 404, {"error": f"the caller {caller!r} is no function of the template"
                                  + ("" if CONFIG["template"] else " (IAM enforcement is off)")}
        return 200, {"function": function, "roleArn": role}
    if path.rstrip("/") == "/_okra/iam/authorize" and method == "POST":
        ctx = {k.lower(): [str(x) for x in _as_list(v)] for k, v in (data.get("context") or {}).items()}
        checks = [Check(data.get("action", ""), r, dict(ctx)) for r in data.get("resources") or ["*"]]
        allowed, function, _, reason = authorize(data.get("caller"), checks)
        return 200, {"allowed": allowed, "function": function, "reason": reason}
    if path.rstrip("/") != "/_okra/iam":
        return 404, {"error": f"no route {method} {path}"}
    if method == "POST":
        with LOCK:
            template = data["template"] if "template" in data else CONFIG["template"]
            refs = data["refs"] if "refs" in data else CONFIG["refs"]
        try:
            configure(template, refs)
        except (OSError, ValueError, KeyError, IndexError, yaml.YAMLError) as e:
            return 400, {"error": f"cannot load {template}: {e}"}
    elif method == "DELETE":
        with LOCK:
            DENIED.clear()
    return 200, state()
