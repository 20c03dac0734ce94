#!/usr/bin/env python3
"""Self-test of the strict moto's EKS access entries (strict_moto.py, "patches: EKS access entries")
and their IAM mapping (iam_enforce.eks_access_entry_checks).

Starts its own strict moto on a free 127.0.0.1 port (as iam_selftest.py does: IAM enforcement on
with template.yaml), drives it with boto3 from the venv, stops it by its PID, and exits non-zero
when a case fails. No cargo involved:

    .tools/venv/bin/python3 tools/local-aws/eks_access_selftest.py
"""
import datetime
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.error

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iam_selftest import (ACCOUNT, REGION, RESULTS, admin_route, allowed, case, client,  # noqa: E402
                          denied, free_port, start)

ROLE = f"arn:aws:iam::{ACCOUNT}:role/argocd-manager"
PATH_ROLE = f"arn:aws:iam::{ACCOUNT}:role/team/apps/argocd-pathed"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
POLICY = "arn:aws:eks::aws:cluster-access-policy/{}"
VIEW, ADMIN = POLICY.format("AmazonEKSViewPolicy"), POLICY.format("AmazonEKSClusterAdminPolicy")

# A template whose one function may register Argo CD on clusters: create entries for roles named
# argocd-*, give them AmazonEKSViewPolicy only, and tag clusters okra.io/retired only.
TEMPLATE = f"""
Resources:
  RegisterFunction:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Sid: CreateEntries
              Effect: Allow
              Action: eks:CreateAccessEntry
              Resource: arn:aws:eks:{REGION}:{ACCOUNT}:cluster/*
              Condition:
                ArnLike: {{"eks:principalArn": "arn:aws:iam::{ACCOUNT}:role/argocd-*"}}
            - Sid: ReadEntries
              Effect: Allow
              Action: [eks:DescribeAccessEntry, eks:ListAssociatedAccessPolicies]
              Resource: arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/*/role/{ACCOUNT}/argocd-*/*
            - Sid: ViewOnly
              Effect: Allow
              Action: eks:AssociateAccessPolicy
              Resource: arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/*/role/{ACCOUNT}/argocd-*/*
              Condition:
                ArnEquals: {{"eks:policyArn": "{VIEW}"}}
                StringEquals: {{"eks:accessScope": "cluster"}}
            - Sid: RetireTag
              Effect: Allow
              Action: [eks:TagResource, eks:UntagResource]
              Resource: arn:aws:eks:{REGION}:{ACCOUNT}:cluster/*
              Condition:
                ForAllValues:StringEquals: {{"aws:TagKeys": ["okra.io/retired"]}}
"""


def error(name: str, call, code: str, status: int, needle: str = "") -> None:
    try:
        call()
        case(f"{name}: {status} {code}", False, "the call succeeded")
    except ClientError as e:
        err, meta = e.response["Error"], e.response["ResponseMetadata"]
        ok = err.get("Code") == code and meta.get("HTTPStatusCode") == status and needle in err.get("Message", "")
        case(f"{name}: {status} {code}", ok, f"{meta.get('HTTPStatusCode')} {err.get('Code')}: {err.get('Message')}")


def api(port: int) -> None:
    eks = client("eks", port)
    for name in ("c1", "c2"):
        eks.create_cluster(name=name, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
                           resourcesVpcConfig={"subnetIds": []})

    # ---- CreateAccessEntry
    out = allowed("CreateAccessEntry", lambda: eks.create_access_entry(
        clusterName="c1", principalArn=ROLE, kubernetesGroups=["argocd"], tags={"team": "platform"}))
    entry = (out or {}).get("accessEntry", {})
    arn_re = rf"^arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/c1/role/{ACCOUNT}/argocd-manager/[0-9a-f-]{{36}}$"
    case("the entry: ARN access-entry/CLUSTER/role/ACCOUNT/NAME/UUID", bool(re.match(arn_re, entry.get("accessEntryArn", ""))),
         entry.get("accessEntryArn", ""))
    case("the entry: clusterName, principalArn, groups, tags, type STANDARD by default",
         (entry.get("clusterName"), entry.get("principalArn"), entry.get("kubernetesGroups"), entry.get("tags"),
          entry.get("type")) == ("c1", ROLE, ["argocd"], {"team": "platform"}, "STANDARD"), str(entry))
    case("the entry: a role's username is its STS ARN with {{SessionName}}",
         entry.get("username") == f"arn:aws:sts::{ACCOUNT}:assumed-role/argocd-manager/{{{{SessionName}}}}",
         entry.get("username", ""))
    case("the entry: createdAt and modifiedAt are timestamps",
         isinstance(entry.get("createdAt"), datetime.datetime) and entry.get("createdAt") == entry.get("modifiedAt"))
    pathed = (allowed("CreateAccessEntry of a role with a path", lambda: eks.create_access_entry(
        clusterName="c1", principalArn=PATH_ROLE)) or {}).get("accessEntry", {})
    case("... its ARN and username leave the path out",
         "/role/123456789012/argocd-pathed/" in pathed.get("accessEntryArn", "")
         and pathed.get("username") == f"arn:aws:sts::{ACCOUNT}:assumed-role/argocd-pathed/{{{{SessionName}}}}",
         f"{pathed.get('accessEntryArn')} {pathed.get('username')}")
    user = (allowed("CreateAccessEntry of an IAM user", lambda: eks.create_access_entry(
        clusterName="c1", principalArn=USER, username="alice")) or {}).get("accessEntry", {})
    case("... the username given is kept", user.get("username") == "alice", str(user.get("username")))
    error("CreateAccessEntry again for the same principal", lambda: eks.create_access_entry(
        clusterName="c1", principalArn=ROLE), "ResourceInUseException", 409,
        "The specified access entry resource is already in use on this cluster.")
    token = "okra-idempotent-1"
    first = eks.create_access_entry(clusterName="c2", principalArn=ROLE, clientRequestToken=token)
    again = allowed("CreateAccessEntry retried with the same clientRequestToken", lambda: eks.create_access_entry(
        clusterName="c2", principalArn=ROLE, clientRequestToken=token))
    case("... answers the same entry", (again or {}).get("accessEntry", {}).get("accessEntryArn")
         == first["accessEntry"]["accessEntryArn"])
    error("CreateAccessEntry on an unknown cluster", lambda: eks.create_access_entry(
        clusterName="nope", principalArn=ROLE), "ResourceNotFoundException", 404, "No cluster found for name: nope.")
    for what, principal in (("an STS session ARN", f"arn:aws:sts::{ACCOUNT}:assumed-role/argocd-manager/s1"),
                            ("not an ARN", "argocd-manager"),
                            ("an IAM policy ARN", "arn:aws:iam::aws:policy/AdministratorAccess")):
        error(f"CreateAccessEntry with {what}", lambda: eks.create_access_entry(
            clusterName="c1", principalArn=principal), "InvalidParameterException", 400,
            "The specified principalArn is invalid")
    error("CreateAccessEntry with type BOGUS", lambda: eks.create_access_entry(
        clusterName="c1", principalArn=f"arn:aws:iam::{ACCOUNT}:role/x", type="BOGUS"),
        "InvalidParameterException", 400)
    error("CreateAccessEntry with a reserved username (system:)", lambda: eks.create_access_entry(
        clusterName="c1", principalArn=f"arn:aws:iam::{ACCOUNT}:role/x", username="system:admin"),
        "InvalidParameterException", 400)
    error("CreateAccessEntry EC2_LINUX with kubernetesGroups", lambda: eks.create_access_entry(
        clusterName="c1", principalArn=f"arn:aws:iam::{ACCOUNT}:role/node", type="EC2_LINUX",
        kubernetesGroups=["g"]), "InvalidParameterException", 400)
    node = f"arn:aws:iam::{ACCOUNT}:role/node"
    allowed("CreateAccessEntry EC2_LINUX", lambda: eks.create_access_entry(
        clusterName="c1", principalArn=node, type="EC2_LINUX"))

    # ---- Describe / List / Update
    got = (allowed("DescribeAccessEntry", lambda: eks.describe_access_entry(clusterName="c1", principalArn=ROLE))
           or {}).get("accessEntry", {})
    case("... the entry CreateAccessEntry answered", got == entry, str(got))
    error("DescribeAccessEntry of no entry", lambda: eks.describe_access_entry(
        clusterName="c1", principalArn=f"arn:aws:iam::{ACCOUNT}:role/none"), "ResourceNotFoundException", 404,
        "The specified principalArn could not be found.")
    error("DescribeAccessEntry on an unknown cluster", lambda: eks.describe_access_entry(
        clusterName="nope", principalArn=ROLE), "ResourceNotFoundException", 404, "No cluster found")
    listed = (allowed("ListAccessEntries", lambda: eks.list_access_entries(clusterName="c1")) or {})
    case("... every principal", sorted(listed.get("accessEntries", [])) == sorted([ROLE, PATH_ROLE, USER, node]),
         str(listed.get("accessEntries")))
    pages = list(eks.get_paginator("list_access_entries").paginate(clusterName="c1", PaginationConfig={"PageSize": 1}))
    case("ListAccessEntries pages of maxResults=1 (nextToken)", len(pages) == 4
         and sorted(a for p in pages for a in p["accessEntries"]) == sorted([ROLE, PATH_ROLE, USER, node]),
         str([p["accessEntries"] for p in pages]))
    error("ListAccessEntries of an unknown cluster", lambda: eks.list_access_entries(clusterName="nope"),
          "ResourceNotFoundException", 404)
    upd = (allowed("UpdateAccessEntry kubernetesGroups", lambda: eks.update_access_entry(
        clusterName="c1", principalArn=USER, kubernetesGroups=["viewers"])) or {}).get("accessEntry", {})
    case("... replaced, modifiedAt moved", upd.get("kubernetesGroups") == ["viewers"]
         and upd.get("modifiedAt") >= upd.get("createdAt"), str(upd))

    # ---- AssociateAccessPolicy (an upsert) / ListAssociatedAccessPolicies
    out = allowed("AssociateAccessPolicy view, cluster scope", lambda: eks.associate_access_policy(
        clusterName="c1", principalArn=ROLE, policyArn=VIEW, accessScope={"type": "cluster"})) or {}
    assoc = out.get("associatedAccessPolicy", {})
    case("... clusterName, principalArn, associatedAccessPolicy{policyArn, accessScope, associatedAt, modifiedAt}",
         out.get("clusterName") == "c1" and out.get("principalArn") == ROLE and assoc.get("policyArn") == VIEW
         and assoc.get("accessScope", {}).get("type") == "cluster"
         and isinstance(assoc.get("associatedAt"), datetime.datetime), str(out))
    out2 = allowed("AssociateAccessPolicy view again, namespace scope (replaces the scope)",
                   lambda: eks.associate_access_policy(clusterName="c1", principalArn=ROLE, policyArn=VIEW,
                                                       accessScope={"type": "namespace", "namespaces": ["argocd"]})) or {}
    a2 = out2.get("associatedAccessPolicy", {})
    case("... same associatedAt, later modifiedAt, new scope",
         a2.get("associatedAt") == assoc.get("associatedAt") and a2.get("modifiedAt") >= assoc.get("modifiedAt")
         and a2.get("accessScope") == {"type": "namespace", "namespaces": ["argocd"]}, str(a2))
    allowed("AssociateAccessPolicy cluster admin", lambda: eks.associate_access_policy(
        clusterName="c1", principalArn=ROLE, policyArn=ADMIN, accessScope={"type": "cluster"}))
    lst = (allowed("ListAssociatedAccessPolicies", lambda: eks.list_associated_access_policies(
        clusterName="c1", principalArn=ROLE)) or {})
    scopes = {p["policyArn"]: p["accessScope"] for p in lst.get("associatedAccessPolicies", [])}
    case("... two policies, the view one namespace-scoped once",
         scopes == {VIEW: {"type": "namespace", "namespaces": ["argocd"]}, ADMIN: {"type": "cluster", "namespaces": []}}
         and lst.get("clusterName") == "c1" and lst.get("principalArn") == ROLE, str(lst))
    by_policy = eks.list_access_entries(clusterName="c1", associatedPolicyArn=ADMIN)["accessEntries"]
    case("ListAccessEntries associatedPolicyArn filters", by_policy == [ROLE], str(by_policy))
    error("AssociateAccessPolicy to no entry", lambda: eks.associate_access_policy(
        clusterName="c1", principalArn=f"arn:aws:iam::{ACCOUNT}:role/none", policyArn=VIEW,
        accessScope={"type": "cluster"}), "ResourceNotFoundException", 404, "The specified principalArn could not be found.")
    for what, policy in (("an IAM policy ARN", "arn:aws:iam::aws:policy/AdministratorAccess"),
                         ("an unknown access policy", POLICY.format("AmazonEKSGodModePolicy"))):
        error(f"AssociateAccessPolicy with {what}", lambda: eks.associate_access_policy(
            clusterName="c1", principalArn=ROLE, policyArn=policy, accessScope={"type": "cluster"}),
            "InvalidParameterException", 400)
    error("AssociateAccessPolicy namespace scope without namespaces", lambda: eks.associate_access_policy(
        clusterName="c1", principalArn=ROLE, policyArn=VIEW, accessScope={"type": "namespace"}),
        "InvalidParameterException", 400)
    error("AssociateAccessPolicy to an EC2_LINUX entry", lambda: eks.associate_access_policy(
        clusterName="c1", principalArn=node, policyArn=VIEW, accessScope={"type": "cluster"}),
        "InvalidParameterException", 400)
    names = [p["name"] for p in eks.list_access_policies()["accessPolicies"]]
    case("ListAccessPolicies names the policies", {"AmazonEKSClusterAdminPolicy", "AmazonEKSAdminPolicy",
                                                   "AmazonEKSEditPolicy", "AmazonEKSViewPolicy"} <= set(names), str(names))

    # ---- the testkit's read route
    seen = admin_route("GET", port, f"/_okra/eks/access-entries?cluster=c1&account={ACCOUNT}&region={REGION}")
    mine = next((e for e in seen.get("accessEntries", []) if e["principalArn"] == ROLE), {})
    case("GET /_okra/eks/access-entries: the entries with their policies and scopes",
         len(seen.get("accessEntries", [])) == 4 and mine.get("username", "").startswith("arn:aws:sts::")
         and {p["policyArn"]: p["accessScope"] for p in mine.get("accessPolicies", [])} == scopes, str(mine))
    try:
        admin_route("GET", port, "/_okra/eks/access-entries?cluster=nope")
        case("GET /_okra/eks/access-entries of an unknown cluster: 404", False)
    except urllib.error.HTTPError as e:
        case("GET /_okra/eks/access-entries of an unknown cluster: 404", e.code == 404)

    # ---- tags: an access entry and a cluster
    arn = entry["accessEntryArn"]
    allowed("TagResource on an access entry", lambda: eks.tag_resource(resourceArn=arn, tags={"okra.io/cell": "web"}))
    case("... ListTagsForResource has it", eks.list_tags_for_resource(resourceArn=arn)["tags"]
         == {"team": "platform", "okra.io/cell": "web"})
    c1 = eks.describe_cluster(name="c1")["cluster"]["arn"]
    allowed("TagResource okra.io/retired on a cluster", lambda: eks.tag_resource(resourceArn=c1, tags={"okra.io/retired": "true"}))
    allowed("UntagResource okra.io/retired", lambda: eks.untag_resource(resourceArn=c1, tagKeys=["okra.io/retired"]))

    # ---- DisassociateAccessPolicy / DeleteAccessEntry
    allowed("DisassociateAccessPolicy", lambda: eks.disassociate_access_policy(
        clusterName="c1", principalArn=ROLE, policyArn=ADMIN))
    left = [p["policyArn"] for p in eks.list_associated_access_policies(clusterName="c1", principalArn=ROLE)
            ["associatedAccessPolicies"]]
    case("... the other policy stays", left == [VIEW], str(left))
    error("DisassociateAccessPolicy of a policy not associated", lambda: eks.disassociate_access_policy(
        clusterName="c1", principalArn=ROLE, policyArn=ADMIN), "ResourceNotFoundException", 404)
    allowed("DeleteAccessEntry", lambda: eks.delete_access_entry(clusterName="c1", principalArn=ROLE))
    error("DescribeAccessEntry after DeleteAccessEntry", lambda: eks.describe_access_entry(
        clusterName="c1", principalArn=ROLE), "ResourceNotFoundException", 404)
    error("DeleteAccessEntry again", lambda: eks.delete_access_entry(clusterName="c1", principalArn=ROLE),
          "ResourceNotFoundException", 404)
    eks.delete_cluster(name="c2")
    eks.create_cluster(name="c2", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": []})
    case("a cluster deleted and made again has no entries", eks.list_access_entries(clusterName="c2")["accessEntries"] == [])


def iam(port: int) -> None:
    eks = client("eks", port)
    # template.yaml's functions have no access entry statements: AWS refuses them.
    discover = client("eks", port, "discover-clusters")
    denied("discover-clusters CreateAccessEntry (template.yaml grants it no access entry action)",
           lambda: discover.create_access_entry(clusterName="c1", principalArn=ROLE), "AccessDeniedException",
           f"eks:CreateAccessEntry on resource: arn:aws:eks:{REGION}:{ACCOUNT}:cluster/c1")
    denied("discover-clusters TagResource on a cluster", lambda: discover.tag_resource(
        resourceArn=f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/c1", tags={"okra.io/retired": "true"}),
        "AccessDeniedException", "eks:TagResource")

    with tempfile.NamedTemporaryFile("w", prefix="eks-access-template-", suffix=".yaml", delete=False) as f:
        f.write(TEMPLATE)
    try:
        conf = admin_route("POST", port, "/_okra/iam", {"template": f.name, "refs": {}})
        case("POST /_okra/iam with the test template", conf["enabled"] and "RegisterFunction" in conf["functions"])
        reg = client("eks", port, "okra-RegisterFunction-1A2B3C")
        principal = f"arn:aws:iam::{ACCOUNT}:role/argocd-c1"
        allowed("CreateAccessEntry on the cluster (eks:principalArn argocd-*)",
                lambda: reg.create_access_entry(clusterName="c1", principalArn=principal))
        denied("CreateAccessEntry of another principal (eks:principalArn)", lambda: reg.create_access_entry(
            clusterName="c1", principalArn=f"arn:aws:iam::{ACCOUNT}:role/intruder"), "AccessDeniedException",
            "eks:CreateAccessEntry on resource: arn:aws:eks:us-east-1:123456789012:cluster/c1")
        denied("CreateAccessEntry with tags (also eks:TagResource on the new entry)", lambda: reg.create_access_entry(
            clusterName="c2", principalArn=principal, tags={"team": "x"}), "AccessDeniedException",
            f"eks:TagResource on resource: arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/c2/role/{ACCOUNT}/argocd-c1/")
        case("... and no entry was made", eks.list_access_entries(clusterName="c2")["accessEntries"] == [])
        allowed("AssociateAccessPolicy view, cluster scope (on the access entry)", lambda: reg.associate_access_policy(
            clusterName="c1", principalArn=principal, policyArn=VIEW, accessScope={"type": "cluster"}))
        denied("AssociateAccessPolicy cluster admin (eks:policyArn)", lambda: reg.associate_access_policy(
            clusterName="c1", principalArn=principal, policyArn=ADMIN, accessScope={"type": "cluster"}),
            "AccessDeniedException", f"eks:AssociateAccessPolicy on resource: arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/c1/")
        denied("AssociateAccessPolicy view, namespace scope (eks:accessScope)", lambda: reg.associate_access_policy(
            clusterName="c1", principalArn=principal, policyArn=VIEW,
            accessScope={"type": "namespace", "namespaces": ["x"]}), "AccessDeniedException")
        allowed("DescribeAccessEntry of its entry", lambda: reg.describe_access_entry(clusterName="c1", principalArn=principal))
        denied("DescribeAccessEntry of another entry (resource access-entry/.../USER)", lambda: reg.describe_access_entry(
            clusterName="c1", principalArn=USER), "AccessDeniedException",
            f"access-entry/c1/user/{ACCOUNT}/alice/")
        denied("DeleteAccessEntry (not granted)", lambda: reg.delete_access_entry(clusterName="c1", principalArn=principal),
               "AccessDeniedException", "eks:DeleteAccessEntry")
        denied("ListAccessEntries (not granted; resource the cluster)", lambda: reg.list_access_entries(clusterName="c1"),
               "AccessDeniedException", f"eks:ListAccessEntries on resource: arn:aws:eks:{REGION}:{ACCOUNT}:cluster/c1")
        c1 = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/c1"
        allowed("TagResource okra.io/retired on a cluster (aws:TagKeys)", lambda: reg.tag_resource(
            resourceArn=c1, tags={"okra.io/retired": "true"}))
        denied("TagResource team=x on a cluster (aws:TagKeys)", lambda: reg.tag_resource(
            resourceArn=c1, tags={"team": "x"}), "AccessDeniedException", f"eks:TagResource on resource: {c1}")
        allowed("UntagResource okra.io/retired", lambda: reg.untag_resource(resourceArn=c1, tagKeys=["okra.io/retired"]))
        denied("UntagResource team (aws:TagKeys)", lambda: reg.untag_resource(resourceArn=c1, tagKeys=["team"]),
               "AccessDeniedException", "eks:UntagResource")
        actions = {d["action"] for d in admin_route("GET", port, "/_okra/iam")["denied"]}
        case("GET /_okra/iam lists the access entry denials", {"eks:CreateAccessEntry", "eks:TagResource",
             "eks:AssociateAccessPolicy", "eks:DescribeAccessEntry", "eks:DeleteAccessEntry",
             "eks:ListAccessEntries", "eks:UntagResource"} <= actions, str(sorted(actions)))
    finally:
        os.unlink(f.name)


def main() -> int:
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", prefix="eks-access-selftest-", suffix=".log", delete=False) as log:
        proc = start(port, log)
        try:
            api(port)
            iam(port)
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} passed (server log: {log.name})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
