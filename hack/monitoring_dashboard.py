"""The Grafana dashboard of manifests/monitoring/dashboard.json, built as data.

Written by hack/gen-monitoring.py; its queries are checked by tests/monitoring (each must
parse for promtool and name only series the operator, the model server or Prometheus
export, or the ones README.md lists as still to come).
"""

from __future__ import annotations

from typing import Any

DS = {"type": "prometheus", "uid": "${datasource}"}
MON = 'namespace="$namespace", monitor="$monitor"'
SRV = 'namespace="$namespace", model="$model"'
RI = "$__rate_interval"


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}


def _panel(
    kind: str,
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    pos: tuple[int, int, int, int],
    *,
    unit: str = "short",
    stack: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    x, y, w, h = pos
    custom: dict[str, Any] = {}
    if kind == "timeseries":
        custom = {"drawStyle": "line", "fillOpacity": 30 if stack else 0, "lineWidth": 1}
        if stack:
            custom["stacking"] = {"mode": "normal", "group": "A"}
    panel: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {},
        "targets": [
            _target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)
        ],
    }
    if kind == "stat":
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    panel.update(extra or {})
    return panel


def _row(title: str, y: int) -> dict[str, Any]:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def _variable(name: str, query: str, *, hide: int = 0, label: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "label": label or name,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "hide": hide,
        "includeAll": False,
        "multi": False,
    }


def fleet_panels(y: int) -> list[dict[str, Any]]:
    """The fleet row: every monitor at a glance."""
    phases = "sum by (phase) (modelwatch_monitor_phase)"
    return [
        _row("Fleet", y),
        _panel(
            "timeseries",
            "Monitors by phase",
            "How many ModelMonitors are in each phase.",
            [(phases, "{{phase}}")],
            (0, y + 1, 12, 8),
            stack=True,
        ),
        _panel(
            "stat",
            "Drifted",
            "Monitors in phase Drifted now.",
            [('sum(modelwatch_monitor_phase{phase="Drifted"}) or vector(0)', "drifted")],
            (12, y + 1, 4, 4),
        ),
        _panel(
            "stat",
            "Degraded",
            "Monitors in phase Degraded now.",
            [('sum(modelwatch_monitor_phase{phase="Degraded"}) or vector(0)', "degraded")],
            (16, y + 1, 4, 4),
        ),
        _panel(
            "stat",
            "Failing checks (1h)",
            "Check Jobs that failed in the last hour, all monitors.",
            [('sum(increase(modelwatch_checks_total{outcome="failed"}[1h])) or vector(0)', "")],
            (20, y + 1, 4, 4),
        ),
        _panel(
            "stat",
            "Monitors with failing checks",
            "Monitors with a failed check in the last hour.",
            [
                (
                    "count(sum by (namespace, monitor) "
                    '(increase(modelwatch_checks_total{outcome="failed"}[1h])) > 0) or vector(0)',
                    "",
                )
            ],
            (12, y + 5, 12, 4),
        ),
        _panel(
            "timeseries",
            "Checks by outcome",
            "Check results the operator read, per interval.",
            [(f"sum by (outcome) (increase(modelwatch_checks_total[{RI}]))", "{{outcome}}")],
            (0, y + 9, 8, 8),
            stack=True,
        ),
        _panel(
            "timeseries",
            "Retrains",
            "Retrain Jobs started, succeeded and failed, per interval.",
            [(f"sum by (event) (increase(modelwatch_retrains_total[{RI}]))", "{{event}}")],
            (8, y + 9, 8, 8),
        ),
        _panel(
            "timeseries",
            "Promotions and rollbacks",
            "Versions rolled out and rollouts rolled back, per interval.",
            [
                (f"sum(increase(modelwatch_promotions_total[{RI}]))", "promoted"),
                (f"sum(increase(modelwatch_rollbacks_total[{RI}]))", "rolled back"),
            ],
            (16, y + 9, 8, 8),
        ),
    ]


def monitor_panels(y: int) -> list[dict[str, Any]]:
    """The per-monitor row, for the monitor the variables pick."""
    return [
        _row("Monitor $namespace/$monitor", y),
        _panel(
            "timeseries",
            "Drift share",
            "Share of drifted features at each check.",
            [
                (f"max(modelwatch_drift_share{{{MON}}})", "drift share"),
            ],
            (0, y + 1, 8, 8),
            unit="percentunit",
        ),
        _panel(
            "timeseries",
            "Performance: realized and estimated",
            "The metric on labeled rows, and the one estimated before labels with its band.",
            [
                (f"max by (metric) (modelwatch_metric_value{{{MON}}})", "{{metric}} realized"),
                (
                    "max by (metric) (modelwatch_estimated_metric_value"
                    f'{{{MON}, bound="estimate"}})',
                    "{{metric}} estimated",
                ),
                (
                    f'max by (metric) (modelwatch_estimated_metric_value{{{MON}, bound="lower"}})',
                    "{{metric}} lower",
                ),
                (
                    f'max by (metric) (modelwatch_estimated_metric_value{{{MON}, bound="upper"}})',
                    "{{metric}} upper",
                ),
            ],
            (8, y + 1, 10, 8),
        ),
        _panel(
            "stat",
            "Serving version",
            "The model version the server runs.",
            [(f"max(modelwatch_current_version{{{MON}}})", "version")],
            (18, y + 1, 6, 4),
        ),
        _panel(
            "stat",
            "Drifted features",
            "Features drifted at the last check.",
            [(f"max(modelwatch_drifted_features{{{MON}}})", "features")],
            (18, y + 5, 6, 4),
        ),
        _panel(
            "timeseries",
            "Check duration",
            "How long the last check Job ran, and how soon after it the operator read it.",
            [
                (f"max(modelwatch_check_duration_seconds{{{MON}}})", "check Job"),
                (
                    "histogram_quantile(0.9, sum by (le) "
                    f'(rate(modelwatch_job_result_latency_seconds_bucket{{kind="check"}}[{RI}])))',
                    "result read, p90 (all monitors)",
                ),
            ],
            (0, y + 9, 8, 8),
            unit="s",
        ),
        _panel(
            "timeseries",
            "Server latency",
            "/predict latency of the model's servers.",
            [
                (
                    f"histogram_quantile({q}, sum by (le) (rate(modelwatch_request_duration_"
                    f'seconds_bucket{{{SRV}, endpoint="/predict"}}[{RI}])))',
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
            (8, y + 9, 8, 8),
            unit="s",
        ),
        _panel(
            "timeseries",
            "Server requests and error rate",
            "/predict requests per second by status code, and the share of 5xx.",
            [
                (
                    f"sum by (code) (rate(modelwatch_requests_total"
                    f'{{{SRV}, endpoint="/predict"}}[{RI}]))',
                    "{{code}}",
                ),
                (
                    f"sum(rate(modelwatch_requests_total"
                    f'{{{SRV}, endpoint="/predict", code=~"5.."}}[{RI}])) / '
                    f'sum(rate(modelwatch_requests_total{{{SRV}, endpoint="/predict"}}[{RI}]))',
                    "error rate",
                ),
            ],
            (16, y + 9, 8, 8),
            unit="reqps",
            extra={
                "fieldConfig": {
                    "defaults": {"unit": "reqps", "custom": {}},
                    "overrides": [
                        {
                            "matcher": {"id": "byName", "options": "error rate"},
                            "properties": [
                                {"id": "unit", "value": "percentunit"},
                                {"id": "custom.axisPlacement", "value": "right"},
                            ],
                        }
                    ],
                }
            },
        ),
    ]


def dashboard() -> dict[str, Any]:
    """Return the dashboard as Grafana's JSON model (import it, or mount it with a sidecar)."""
    panels = fleet_panels(0) + monitor_panels(17)
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "title": "modelwatch",
        "uid": "modelwatch",
        "description": "ModelMonitors: the fleet, then one monitor (manifests/monitoring).",
        "tags": ["modelwatch"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "hide": 0,
                },
                _variable("namespace", "label_values(modelwatch_checks_total, namespace)"),
                _variable(
                    "monitor",
                    'label_values(modelwatch_checks_total{namespace="$namespace"}, monitor)',
                ),
                # The servers label their series by model, not monitor: the operator's
                # info series joins the two.
                _variable(
                    "model",
                    f"label_values(modelwatch_monitor_info{{{MON}}}, model)",
                    hide=2,
                ),
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }
