"""A minimal dynamic provisioner for the local cluster's default StorageClass.

kind ships rancher's local-path provisioner; this plays the same part here:
for every Pending PVC of a StorageClass whose provisioner is
``modelwatch.io/local-hostpath`` it creates a host directory (mode 0777, so
non-root pods can write) and a hostPath PersistentVolume pre-bound to the claim.
Released volumes are deleted with their directory. Uses only kubectl and the
standard library, so it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

PROVISIONER = "modelwatch.io/local-hostpath"


def kubectl(args: argparse.Namespace, *cmd: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [args.kubectl, "--kubeconfig", args.kubeconfig, *cmd],
        input=stdin, capture_output=True, text=True, timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    return proc.stdout


def reconcile(args: argparse.Namespace) -> None:
    classes = json.loads(kubectl(args, "get", "storageclass", "-o", "json"))["items"]
    ours = {c["metadata"]["name"] for c in classes if c.get("provisioner") == PROVISIONER}
    default = next(
        (c["metadata"]["name"] for c in classes
         if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"),
        None,
    )
    claims = json.loads(kubectl(args, "get", "pvc", "-A", "-o", "json"))["items"]
    for pvc in claims:
        meta, spec = pvc["metadata"], pvc["spec"]
        sc = spec.get("storageClassName", default)
        if pvc.get("status", {}).get("phase") != "Pending" or sc not in ours or spec.get("volumeName"):
            continue
        name = f"pvc-{meta['uid']}"
        path = os.path.join(args.root, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)
        pv = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": sc,
                "hostPath": {"path": path, "type": "Directory"},
                "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
            },
        }
        kubectl(args, "create", "-f", "-", stdin=json.dumps(pv))
        print(f"provisioned {name} for {meta['namespace']}/{meta['name']}", flush=True)
    volumes = json.loads(kubectl(args, "get", "pv", "-o", "json"))["items"]
    for pv in volumes:
        ann = pv["metadata"].get("annotations", {})
        if ann.get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
            continue
        if pv.get("status", {}).get("phase") in ("Released", "Failed"):
            path = pv["spec"]["hostPath"]["path"]
            kubectl(args, "delete", "pv", pv["metadata"]["name"], "--wait=false")
            if os.path.dirname(path) == args.root:
                shutil.rmtree(path, ignore_errors=True)
            print(f"deleted {pv['metadata']['name']}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubectl", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    os.makedirs(args.root, exist_ok=True)
    while True:
        try:
            reconcile(args)
        except Exception as exc:  # keep serving; the next pass retries
            print(f"error: {exc}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
