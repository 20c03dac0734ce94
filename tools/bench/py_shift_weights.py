#!/usr/bin/env python3
"""The reference for `make bench`: shift-weights' job as a Python 3 + boto3 Lambda function.

What a user would otherwise write: read the listener, ModifyListener to the step's weights, read
it back to verify. Same input as `shift-weights` (listenerArn, stable, canary, weight; ruleArn
null). It includes its own minimal runtime client (the Python managed runtime's bootstrap does the
same: import the handler module, which builds its client, then loop on /invocation/next).
"""
import http.client
import json
import os

import boto3

ELB = boto3.client("elbv2")  # AWS_ENDPOINT_URL / AWS_REGION from the environment


def split(arns, total):
    if not arns or total == 0:
        return []
    base, extra = divmod(total, len(arns))
    return [(a, base + (1 if i < extra else 0)) for i, a in enumerate(arns)]


def forward_of(listener):
    for a in listener["DefaultActions"]:
        if a["Type"] == "forward":
            return sorted((t["TargetGroupArn"], t.get("Weight", 1))
                          for t in a.get("ForwardConfig", {}).get("TargetGroups", []))
    return []


def handler(event):
    arn = event["listenerArn"]
    desired = split(event["stable"], 100 - event["weight"]) + split(event["canary"], event["weight"])
    desired = sorted((a, w) for a, w in desired if w > 0)
    current = forward_of(ELB.describe_listeners(ListenerArns=[arn])["Listeners"][0])
    changed = current != desired
    if changed:
        ELB.modify_listener(ListenerArn=arn, DefaultActions=[{
            "Type": "forward",
            "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": a, "Weight": w} for a, w in desired]},
        }])
    seen = forward_of(ELB.describe_listeners(ListenerArns=[arn])["Listeners"][0])
    if seen != desired:
        raise RuntimeError(f"VerificationFailed: {seen} != {desired}")
    return {"weight": event["weight"], "changed": changed,
            "action": {"targets": [{"targetGroupArn": a, "weight": w} for a, w in seen]}}


def main():
    host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
    conn = http.client.HTTPConnection(host, int(port))
    base = "/2018-06-01/runtime/invocation"
    while True:
        conn.request("GET", f"{base}/next")
        r = conn.getresponse()
        event = json.loads(r.read())
        rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
        try:
            body, path = json.dumps(handler(event)), f"{base}/{rid}/response"
        except Exception as e:  # noqa: BLE001 - reported as a function error, as Lambda does
            body = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)})
            path = f"{base}/{rid}/error"
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()


if __name__ == "__main__":
    main()
