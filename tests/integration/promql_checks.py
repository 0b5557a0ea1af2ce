"""PromQL checks shared by the observability tests (test_observability.py for `ferry
serve`, test_observability_engine.py for `ferry engine`): which metrics docs/metrics.md
documents, every expression the shipped rules and dashboards hold, and the operands of
an expression that must return series while the system is healthy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import ferry_helpers as fh
from monitoring_helpers import Daemon

METRICS_DOC = fh.REPO_ROOT / "docs" / "metrics.md"
DEPLOY = fh.REPO_ROOT / "deploy"
GRAFANA_RANGES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "5m"}


def documented_metrics(section: str, min_rows: int = 10) -> dict[str, tuple[str, set[str]]]:
    """name -> (type, labels) of one table of docs/metrics.md: "serve" is the table before
    the page's first `## ` heading (what every `ferry serve` exports), "engine" the
    `ferry engine` section's, any other section by its heading line ("## Drift")."""
    rows, current = {}, "serve"
    for line in METRICS_DOC.read_text().splitlines():
        if line.startswith("## "):
            current = "engine" if "ferry engine" in line else line
        if current != section:
            continue
        m = re.match(r"^\|\s*`([a-z_:]+)`\s*\|\s*(counter|gauge|histogram|summary)\s*\|([^|]*)\|", line)
        if m:
            cell = re.sub(r"\([^)]*\)", "", m.group(3))  # "reason (`a`, `b`)": the values, not labels
            labels = {l.strip() for l in cell.split(",") if l.strip()}
            rows[m.group(1)] = (m.group(2), labels)
    assert len(rows) >= min_rows, f"only {len(rows)} metrics parsed from the {section} table of {METRICS_DOC}"
    return rows


def series_names(kind: str, metric: str) -> list[tuple[str, set[str]]]:
    """The series a documented metric of this kind is exposed as, each with the labels it
    adds: a histogram's _bucket (le), _sum and _count; any other kind, itself."""
    if kind == "histogram":
        return [(metric + "_bucket", {"le"}), (metric + "_sum", set()), (metric + "_count", set())]
    return [(metric, set())]


def check_expressions(tsdb: Daemon, shipped: list[tuple[str, str, set[str]]], variables: dict[str, str]) -> None:
    """Each expression parses and evaluates in tsdb, each of its signal operands returns
    series, and the labels a legend or an annotation shows survive the aggregations."""
    empty, unlabelled = [], []
    for where, raw, labels in shipped:
        expr = expand_grafana(raw, variables)
        tsdb.query(expr)  # parses and evaluates, empty or not
        for operand in signal_operands(expr):
            if not tsdb.query(operand):
                empty.append(f"{where}:\n    {operand}")
        for operand in signal_operands(expr, labelling=True):
            for series in tsdb.query(operand):
                if not labels <= set(series["metric"]):
                    unlabelled.append(f"{where}: shows {sorted(labels - set(series['metric']))}, which\n"
                                      f"    {operand}\n    does not return ({series['metric']})")
                    break
    assert not empty, f"{len(empty)} operands return no series in {tsdb.name}:\n" + "\n".join(empty)
    assert not unlabelled, f"{len(unlabelled)} results lack labels they show, in {tsdb.name}:\n" + "\n".join(unlabelled)


def _top_level_split(expr: str, ops: tuple[str, ...]) -> list[str] | None:
    """Split expr at the operators in ops that sit outside (), {}, [] and strings;
    None when there are none. Word operators (and, or, unless) need word boundaries."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            for op in ops:
                if not expr.startswith(op, i):
                    continue
                if op[0].isalpha():
                    before = expr[i - 1] if i else " "
                    after = expr[i + len(op)] if i + len(op) < len(expr) else " "
                    if before.isalnum() or before in "_:" or after.isalnum() or after in "_:":
                        continue
                elif op in (">", "<") and expr.startswith(op + "=", i):
                    continue
                parts.append(expr[start:i])
                i += len(op)
                start = i
                break
            else:
                i += 1
                continue
            continue
        i += 1
    if not parts:
        return None
    parts.append(expr[start:])
    return parts


_MODIFIER = re.compile(r"^\s*(bool\b)?\s*((on|ignoring)\s*\([^)]*\))?\s*((group_left|group_right)\s*(\([^)]*\))?)?")
_SCALAR = re.compile(r"^[\d\s.*+/()eE-]+$")
# Lowest precedence first, as PromQL binds them.
_LEVELS = (("or",), ("and", "unless"), ("==", "!=", ">=", "<=", ">", "<"))


def signal_operands(expr: str, labelling: bool = False) -> list[str]:
    """The operands of expr's top-level comparisons and set operators, recursively:
    the parts that must return series while the system is healthy.

    labelling=True keeps only the operands whose labels the result carries: every arm of
    `or`, the left side of `and`/`unless`, the non-constant side of a comparison (and
    not `absent(x)`, whose labels come from x's matchers)."""
    expr = expr.strip()
    for level, ops in enumerate(_LEVELS):
        parts = _top_level_split(expr, ops)
        if parts:
            parts = [_MODIFIER.sub("", p, count=1) for p in parts]
            if labelling and level > 0:
                parts = [next((p for p in parts if not _SCALAR.match(p.strip())), parts[0])]
            return [o for p in parts for o in signal_operands(p, labelling)]
    if expr.startswith("(") and expr.endswith(")") and _balanced(expr[1:-1]):
        return signal_operands(expr[1:-1], labelling)
    m = re.match(r"^absent(_over_time)?\s*\((.*)\)$", expr, re.S)
    if m:
        return [] if labelling else signal_operands(m.group(2))
    m = re.match(r"^(.*\S)\s+offset\s+\d+[smhdwy]$", expr, re.S)
    if m:  # "x offset 30m" asks for history a minute-long test does not have: x now
        return signal_operands(m.group(1), labelling)
    if _SCALAR.match(expr):
        return []
    return [expr]


def _balanced(s: str) -> bool:
    depth = 0
    for c in s:
        depth += c in "([{"
        depth -= c in ")]}"
        if depth < 0:
            return False
    return depth == 0


def shipped_expressions(rules: list[Path], dashboards: list[Path]) -> list[tuple[str, str, set[str]]]:
    """(where, expr, labels) for every rule and every dashboard query and variable, with
    the labels its result must carry: those an alert's annotations name
    ({{ $labels.x }}), a panel's legend names ({{x}}), or a variable lists."""
    import yaml

    found = []
    for path in rules:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                text = " ".join((rule.get("annotations") or {}).values())
                found.append((f"{path.name}: {name}", rule["expr"], set(re.findall(r"\$labels\.(\w+)", text))))
    for path in dashboards:
        dash = json.loads(path.read_text())
        panels = list(dash["panels"])
        while panels:
            p = panels.pop()
            panels += p.get("panels", [])
            for t in p.get("targets", []):
                found.append((f"{path.name}: panel {p['title']!r} {t['refId']}", t["expr"],
                              set(re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")))))
        for v in dash["templating"]["list"]:
            if v["type"] == "query":
                q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                m = re.match(r"^label_values\((.*),\s*(\w+)\)$", q, re.S)
                assert m, f"{path.name}: variable {v['name']}: unexpected query {q!r}"
                found.append((f"{path.name}: variable {v['name']}", f"group by ({m.group(2)}) ({m.group(1)})",
                              {m.group(2)}))
    return found


def expand_grafana(expr: str, variables: dict[str, str]) -> str:
    """expr with Grafana's variables replaced as a dashboard with every variable at "All"
    expands them."""
    for var in sorted(variables, key=len, reverse=True):
        expr = expr.replace(var, variables[var])
    assert "$" not in expr, f"unexpanded variable in {expr}"
    return expr


def check_dashboard_importable(path: Path, variables_needed: set[str], min_panels: int) -> None:
    """What Grafana's importer relies on (Grafana itself is not in Debian, so not run here):
    a uid of 8-40 characters, a title, an integer schemaVersion, the data source as the
    template variable `datasource` used by every panel and query, unique panel ids, and
    panels inside the 24-column grid without overlaps."""
    dash = json.loads(path.read_text())
    assert 8 <= len(dash["uid"]) <= 40 and dash["title"], (dash.get("uid"), dash.get("title"))
    assert isinstance(dash["schemaVersion"], int)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables_needed <= set(variables), sorted(variables)
    ids, cells = set(), set()
    for p in dash["panels"]:
        assert p["id"] not in ids, f"panel id {p['id']} repeats"
        ids.add(p["id"])
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, (p["title"], g)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another at {(x, y)}"
                cells.add((x, y))
        if p["type"] == "row":
            continue
        assert p["targets"], f"panel {p['title']!r} has no query"
        for ds in [p["datasource"]] + [t["datasource"] for t in p["targets"]]:
            assert ds == {"type": "prometheus", "uid": "${datasource}"}, (p["title"], ds)
    assert len(ids) > min_panels, len(ids)
