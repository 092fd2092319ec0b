"""Render the ModelMonitor spec and status reference from the CRD schema.

``python hack/crd_docs.py`` rewrites the part of README.md between the markers
``<!-- crd-reference:begin -->`` and ``<!-- crd-reference:end -->``; ``--check``
fails when the README is out of date (a unit test runs it).
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import yaml

REPO = pathlib.Path(__file__).resolve().parent.parent
CRD = REPO / "crds" / "modelmonitors.modelwatch.io.yaml"
README = REPO / "README.md"
BEGIN, END = "<!-- crd-reference:begin -->", "<!-- crd-reference:end -->"


def _type(schema: dict[str, Any]) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "int or string"
    t = schema.get("type", "object")
    if t == "array":
        return f"[]{_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{e}`" for e in schema["enum"])
    return str(t)


def _rows(schema: dict[str, Any], prefix: str) -> list[tuple[str, str, str, str]]:
    rows = []
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        default = json.dumps(sub["default"]) if "default" in sub else ""
        desc = " ".join(str(sub.get("description", "")).split())
        if name in required:
            desc = f"**required.** {desc}"
        rules = [v.get("message") or v.get("rule") for v in sub.get("x-kubernetes-validations", [])]
        for key in ("minimum", "maximum", "pattern"):
            if key in sub:
                rules.append(f"{key} `{sub[key]}`")
        if rules:
            desc = f"{desc} ({'; '.join(str(r) for r in rules)})".strip()
        rows.append((f"`{path}`", _type(sub), f"`{default}`" if default else "", desc))
        if sub.get("type") == "object" and "properties" in sub and path.count(".") < 3:
            rows.extend(_rows(sub, path))
        elif sub.get("type") == "array" and "properties" in sub.get("items", {}):
            rows.extend(_rows(sub["items"], f"{path}[]"))
    return rows


def render() -> str:
    crd = yaml.safe_load(CRD.read_text())
    version = crd["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]["properties"]
    out = [BEGIN, "", "#### Spec", "", "| field | type | default | notes |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _rows(root["spec"], "spec")]
    rules = root["spec"].get("x-kubernetes-validations", [])
    if rules:
        out += ["", "Rules across fields:", ""]
        out += [f"- {r.get('message', r['rule'])}" for r in rules]
    out += ["", "#### Status", "", "| field | type | notes |", "|---|---|---|"]
    out += [f"| {a} | {b} | {d} |" for a, b, _c, d in _rows(root.get("status", {}), "status")]
    cols = version.get("additionalPrinterColumns", [])
    out += [
        "",
        "Printer columns of `kubectl get mm`: "
        + ", ".join(f"`{c['name'].upper()}` (`{c['jsonPath']}`)" for c in cols)
        + ".",
        "",
        END,
    ]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"README.md has no {BEGIN} ... {END} block", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + render() + tail
    if "--check" in argv:
        if new != text:
            print(
                "README.md is out of date with the CRD: run python hack/crd_docs.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
