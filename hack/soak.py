"""make soak: the loop over many check periods, with faults, and the figures that prove it.

One monitor (the sample ``churn``, a check every minute) watches a model server that gets
continuous traffic from a traffic Deployment. Three drift episodes change the traffic at
known times; an operator pod and the kube-apiserver are each restarted once at a random
moment. The soak watches the ModelMonitor all along and prints:

- retrains started (target: exactly 3, one per episode) and promotions;
- Drifted or Degraded verdicts on a version's own in-distribution traffic (target: 0);
- check Jobs folded into status, each exactly once;
- check periods with nothing progressing (target: 0);
- the operator's RSS at the start and at the end.

Environment: SOAK_PERIODS (default 60 check periods of a minute), SOAK_SEED.
The figures also go to bench/results/soak.json.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import demo  # hack/demo.py: the same set-up as make demo

REPO = demo.REPO
NS = "modelwatch-soak"
demo.NS = NS
STATE_DIR = pathlib.Path(os.environ.get("MODELWATCH_STATE", "/var/lib/modelwatch-cluster"))
PERIOD = 60.0  # the sample's schedule: every minute
WINDOW = 600.0  # the sample's spec.data.current.window (10m)
# (start, as a share of the run; shift; concept): the traffic each episode switches to.
# With the default 60 periods they begin at minutes 8, 26 and 44.
EPISODES = ((0.13, 1.0, True), (0.43, -1.0, False), (0.73, 1.0, True))


@dataclass
class Figures:
    started: float = field(default_factory=time.time)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # job -> lastCheck seen
    awaiting: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # check Jobs read as failures
    folded_twice: list[str] = field(default_factory=list)
    serving: list[tuple[float, int]] = field(default_factory=list)  # (since, version)
    check_jobs: set[str] = field(default_factory=set)
    last_status: dict[str, Any] = field(default_factory=dict)
    progress: list[float] = field(default_factory=list)  # times something moved
    rss_start: dict[str, int] = field(default_factory=dict)
    rss_end: dict[str, int] = field(default_factory=dict)


def say(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fresh_namespace() -> None:
    if demo.kubectl("get", "namespace", NS, check=False).strip():
        say(f"removing the previous soak namespace {NS}")
        demo.kubectl("delete", "mm", "--all", "-n", NS, "--wait=true", "--timeout=90s", check=False)
        demo.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=300s")
    demo.kubectl("create", "namespace", NS)
    demo.kubectl("apply", "--server-side", "-n", NS, "-k", str(REPO / "manifests" / "store"))


def traffic_deployment(*, shift: float, concept: bool) -> dict[str, Any]:
    """A Deployment that sends 300 rows every 10 s (and their labels) for as long as it
    runs; its arguments are the traffic's distribution."""
    pod = demo.job_manifest("traffic", "")["spec"]["template"]
    flags = f"--rows 300 --shift {shift}" + (" --concept" if concept else "")
    pod["spec"]["restartPolicy"] = "Always"
    pod["metadata"] = {"labels": {"app": "soak-traffic"}}
    pod["spec"]["containers"][0]["command"] = [
        "sh",
        "-c",
        "while true; do modelwatch demo traffic "
        f"{flags} --seed $(date +%s) --labels-out /store/churn/labels || true; sleep 10; done",
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "traffic", "labels": {"app": "soak-traffic"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "soak-traffic"}},
            "template": pod,
        },
    }


def retrying(action: Any, *, what: str, timeout: float = 300.0) -> Any:
    """Run ``action`` until it succeeds: the API server may be restarting (a fault)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            if time.monotonic() > deadline:
                raise
            say(f"{what}: {str(exc).splitlines()[0][:160]}; retrying")
            time.sleep(3)


def set_traffic(*, shift: float, concept: bool) -> None:
    manifest = traffic_deployment(shift=shift, concept=concept)
    retrying(
        lambda: demo.kubectl(
            "apply", "--server-side", "--force-conflicts", "-n", NS, "-f", "-",
            stdin=json.dumps(manifest),
        ),
        what="changing the traffic",
    )  # fmt: skip


def operator_rss() -> dict[str, int]:
    """RSS in bytes of each operator process on this host (the local cluster's node)."""
    out: dict[str, int] = {}
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "kopf" not in cmd or "modelwatch_operator" not in cmd:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[proc.name] = int(line.split()[1]) * 1024
        except OSError:
            continue
    return out


def restart_operator(fig: Figures) -> None:
    pods = demo.get_json(
        "pods", "-n", demo.SYSTEM_NS, "-l", "app.kubernetes.io/name=modelwatch-operator"
    )
    names = [p["metadata"]["name"] for p in pods["items"]]
    if not names:
        say("no operator pod to restart")
        return
    victim = random.choice(names)
    say(f"fault: deleting operator pod {victim} at once")
    demo.kubectl(
        "delete", "pod", victim, "-n", demo.SYSTEM_NS, "--grace-period=0", "--force", check=False
    )
    fig.faults.append({"kind": "operator-restart", "at": time.time(), "pod": victim})


def restart_apiserver(fig: Figures, *, down: float = 30.0) -> None:
    pid = int((STATE_DIR / "pids" / "kube-apiserver.pid").read_text().strip())
    say(f"fault: stopping the kube-apiserver for {down:.0f}s")
    began = time.time()
    os.kill(pid, signal.SIGTERM)
    while os.path.exists(f"/proc/{pid}"):
        time.sleep(0.2)
    time.sleep(max(0.0, down - (time.time() - began)))
    subprocess.run(
        ["bash", str(REPO / "hack" / "cluster-up.sh")], check=True, capture_output=True, timeout=300
    )
    fig.faults.append({"kind": "apiserver-restart", "at": began, "down": time.time() - began})


def observe(fig: Figures, stop: threading.Event) -> None:
    """Sample the monitor and its check Jobs every 2 s until ``stop``."""
    last_check_time = None
    while not stop.is_set():
        try:
            mm = demo.get_json("mm", "churn", "-n", NS)
            jobs = demo.get_json("jobs", "-n", NS, "-l", "modelwatch.io/job-kind=check")
            events = demo.get_json("events", "-n", NS, "--field-selector", "reason=AwaitingTraffic")
        except RuntimeError:  # the apiserver is down, or a blip: sample again
            stop.wait(2)
            continue
        now = time.time()
        st = mm.get("status") or {}
        fig.last_status = st
        for job in jobs["items"]:
            if (job.get("status") or {}).get("succeeded") or (job.get("status") or {}).get(
                "failed"
            ):
                fig.check_jobs.add(job["metadata"]["name"])
        for ev in events["items"]:
            fig.awaiting.add(str(ev.get("message", "")).split(":", 1)[0])
        failure = st.get("lastFailure") or {}
        if failure.get("kind") == "check" and failure.get("job"):
            fig.failed.add(str(failure["job"]))
        last = st.get("lastCheck") or {}
        if last.get("job") and last.get("time") != last_check_time:
            last_check_time = last.get("time")
            fig.checks.setdefault(last["job"], {**last, "phase": st.get("phase"), "seen": now})
            fig.progress.append(now)
        if st.get("retrain") or st.get("rollout"):
            fig.progress.append(now)
        reports = [h.get("reportId") for h in st.get("history") or [] if h.get("reportId")]
        twice = {r for r in reports if reports.count(r) > 1}
        fig.folded_twice.extend(sorted(twice - set(fig.folded_twice)))
        version = st.get("currentVersion")
        if version is not None and (not fig.serving or fig.serving[-1][1] != version):
            fig.serving.append((now, int(version)))
        stop.wait(2)


def in_distribution(fig: Figures, check: dict[str, Any], seen: float) -> bool:
    """Did the check judge traffic of the distribution its version was trained on?

    Version 1 was trained on the baseline; version k+1 on the traffic of episode k. A check
    of version v judges the rows v served within the window: from ``max(v began serving,
    seen - window)`` to ``seen``. It counts when v has served for at least a period, those
    rows all come after the distribution v was trained for began, and the next episode
    had not yet changed the traffic.
    """
    version = check.get("servingVersion")
    if version is None:
        return False
    starts = [fig.started] + [e["at"] for e in fig.episodes]
    idx = int(version) - 1  # the distribution this version was trained for
    if idx >= len(starts):
        return False
    began = starts[idx]
    served = next((t for t, v in fig.serving if v == version), None)
    if served is None:
        return False
    following = starts[idx + 1] if idx + 1 < len(starts) else float("inf")
    judged_from = max(served, seen - WINDOW)
    return seen - served >= PERIOD and judged_from >= began and seen < following


def summarise(fig: Figures) -> dict[str, Any]:
    st = fig.last_status
    retrains = st.get("retrains") or []
    bad = [
        {"job": job, "version": c.get("servingVersion"), "drift": c.get("datasetDrift"),
         "metric": (c.get("metric") or {}).get("degraded")}
        for job, c in fig.checks.items()
        if in_distribution(fig, c, c["seen"])
        and (c.get("datasetDrift") or (c.get("metric") or {}).get("degraded"))
    ]  # fmt: skip
    folded = set(fig.checks) | fig.awaiting | fig.failed
    unread = sorted(fig.check_jobs - folded)
    end = time.time()
    buckets = int((end - fig.started) // PERIOD)
    stalled = [
        i
        for i in range(2, buckets)  # the first periods set things up
        if not any(
            fig.started + i * PERIOD <= t < fig.started + (i + 1) * PERIOD + PERIOD
            for t in fig.progress
        )
    ]
    return {
        "minutes": round((end - fig.started) / 60, 1),
        "episodes": [{k: v for k, v in e.items()} for e in fig.episodes],
        "faults": fig.faults,
        "retrainsStarted": len(retrains),
        "retrains": [
            {k: r.get(k) for k in ("version", "outcome", "reason", "startedAt")} for r in retrains
        ],
        "promotions": sum(1 for r in retrains if r.get("outcome") == "Promoted"),
        "checkFailures": sorted(fig.failed),
        "servingVersions": [v for _, v in fig.serving],
        "checksSeen": len(fig.checks),
        "checksInDistribution": sum(
            1 for c in fig.checks.values() if in_distribution(fig, c, c["seen"])
        ),
        "violationsOnOwnTraffic": bad,
        "checkJobsFinished": len(fig.check_jobs),
        "checkJobsNotSeenFolded": unread,
        "foldedTwice": fig.folded_twice,
        "stalledPeriods": stalled,
        "operatorRssStart": fig.rss_start,
        "operatorRssEnd": fig.rss_end,
    }


def main() -> int:
    periods = int(os.environ.get("SOAK_PERIODS", "60"))
    random.seed(int(os.environ.get("SOAK_SEED", str(int(time.time())))))
    starts = [round(share * periods) for share, _, _ in EPISODES]
    say(f"soak: {periods} check periods, episodes at minutes {starts}")
    demo.deploy_operator()
    fresh_namespace()
    sha = demo.train_v1()
    demo.deploy_server(sha)
    set_traffic(shift=0.0, concept=False)
    say("baseline traffic flowing; applying the ModelMonitor")
    demo.kubectl(
        "apply", "--server-side", "-n", NS, "-f",
        str(REPO / "manifests" / "samples" / "modelmonitor.yaml"),
    )  # fmt: skip
    fig = Figures()
    fig.rss_start = operator_rss()
    stop = threading.Event()
    watcher = threading.Thread(target=observe, args=(fig, stop), daemon=True)
    watcher.start()
    total = periods * PERIOD
    faults = sorted(
        [("operator", random.uniform(0.2, 0.9) * periods * PERIOD),
         ("apiserver", random.uniform(0.2, 0.9) * periods * PERIOD)],
        key=lambda f: f[1],
    )  # fmt: skip
    pending: list[tuple[str, float, tuple[float, bool] | None]] = [
        ("episode", m * PERIOD, (shift, concept))
        for m, (_, shift, concept) in zip(starts, EPISODES, strict=True)
    ]
    pending += [(kind, at, None) for kind, at in faults]
    pending.sort(key=lambda p: p[1])
    try:
        for kind, at, arg in pending:
            delay = fig.started + at - time.time()
            if delay > 0:
                time.sleep(delay)
            if kind == "episode":
                assert arg is not None
                shift, concept = arg
                say(f"episode {len(fig.episodes) + 1}: traffic shift {shift}, concept {concept}")
                set_traffic(shift=shift, concept=concept)
                fig.episodes.append({"at": time.time(), "shift": shift, "concept": concept})
            elif kind == "operator":
                retrying(lambda: restart_operator(fig), what="restarting the operator")
            else:
                retrying(lambda: restart_apiserver(fig), what="restarting the apiserver")
            line = demo.kubectl("get", "mm", "churn", "-n", NS, "--no-headers", check=False)
            say(line.strip())
        remaining = fig.started + total - time.time()
        while remaining > 0:
            time.sleep(min(300.0, remaining))
            say(demo.kubectl("get", "mm", "churn", "-n", NS, "--no-headers", check=False).strip())
            remaining = fig.started + total - time.time()
    finally:
        stop.set()
        watcher.join(timeout=10)
        fig.rss_end = operator_rss()
    figures = summarise(fig)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(figures, indent=2, default=str))
    print(json.dumps(figures, indent=2, default=str))
    ok = (
        figures["retrainsStarted"] == len(EPISODES)
        and not figures["violationsOnOwnTraffic"]
        and not figures["foldedTwice"]
        and not figures["checkJobsNotSeenFolded"]
        and not figures["stalledPeriods"]
    )
    say("soak " + ("passed" if ok else "FAILED") + f"; figures in {out / 'soak.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
