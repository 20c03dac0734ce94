#!/usr/bin/env python3
"""The official Kubernetes Python client (PyPI `kubernetes`, pinned in requirements-kube.txt,
installed in .tools/kube-venv) against a Kubernetes API, for the tests of okra's local one
(tests/e2e/kube_api.rs).

Usage: kube_client_check.py KUBECONFIG NAMESPACE NAME

With the kubeconfig's cluster, CA and token it creates the secret NAME (labelled
okra.io/cell=web), lists the namespace's secrets by label selector, replaces the secret with a
stale resourceVersion (expecting 409 Conflict), replaces it with the current one, and deletes
it. Each step prints one line `step: ...`; any other outcome raises (exit status 1).
"""
import base64
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def main(kubeconfig: str, namespace: str, name: str) -> None:
    config.load_kube_config(config_file=kubeconfig)
    api = client.CoreV1Api()

    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels={"okra.io/cell": "web"}),
        string_data={"server": "https://hub.example"},
        type="Opaque")
    created = api.create_namespaced_secret(namespace, body)
    print(f"created: {created.metadata.name} rv={created.metadata.resource_version} "
          f"type={created.type} data={sorted(created.data)}")
    assert base64.b64decode(created.data["server"]) == b"https://hub.example"
    assert created.string_data is None

    listed = api.list_namespaced_secret(namespace, label_selector="okra.io/cell=web")
    names = [s.metadata.name for s in listed.items]
    print(f"listed: {','.join(names)} rv={listed.metadata.resource_version}")
    assert name in names
    none = api.list_namespaced_secret(namespace, label_selector="okra.io/cell in (api),!x")
    assert name not in [s.metadata.name for s in none.items]

    current = api.read_namespaced_secret(name, namespace)
    current.data["extra"] = base64.b64encode(b"1").decode()
    updated = api.replace_namespaced_secret(name, namespace, current)
    print(f"replaced: rv={updated.metadata.resource_version}")

    stale = current  # still carries the resourceVersion before the replace
    stale.data["extra"] = base64.b64encode(b"2").decode()
    try:
        api.replace_namespaced_secret(name, namespace, stale)
        raise SystemExit("a replace with a stale resourceVersion succeeded")
    except ApiException as e:
        status = json.loads(e.body)
        print(f"stale: {e.status} {status['reason']} {status['message']}")
        assert e.status == 409

    deleted = api.delete_namespaced_secret(name, namespace)
    if not isinstance(deleted, dict):  # a V1Status in some client versions, the JSON in others
        deleted = api.api_client.sanitize_for_serialization(deleted)
    print(f"deleted: {deleted['status']} {deleted['details']['name']} {deleted['details']['kind']}")
    try:
        api.read_namespaced_secret(name, namespace)
        raise SystemExit("the deleted secret is still there")
    except ApiException as e:
        print(f"gone: {e.status}")
        assert e.status == 404


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
