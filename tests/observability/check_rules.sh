#!/usr/bin/env bash
# Checks the shipped Prometheus rules (deploy/prometheus/*.yml) three ways and fails
# loudly on the first problem:
#   1. promtool check rules      - Prometheus parses every rule and expression;
#   2. promtool test rules       - the unit tests in deploy/prometheus/tests/ pass, and
#                                  every alert has at least one test case where it fires;
#   3. vmalert -dryRun           - VictoriaMetrics' rule evaluator accepts the same files.
# Before trusting 1 and 3 it feeds both tools a broken rule, which each must refuse.
# Tools come from PATH (scripts/setup.sh installs the Debian packages prometheus and
# victoria-metrics); PROMTOOL and VMALERT override them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROMTOOL="${PROMTOOL:-promtool}"
VMALERT="${VMALERT:-vmalert}"
RULES_DIR="$ROOT/deploy/prometheus"
PY="$ROOT/.venv/bin/python"; [[ -x "$PY" ]] || PY=python3

fail() { echo "check_rules: FAILED: $*" >&2; exit 1; }
for tool in "$PROMTOOL" "$VMALERT"; do
  command -v "$tool" >/dev/null || fail "$tool not found (run scripts/setup.sh)"
done

shopt -s nullglob
rule_files=("$RULES_DIR"/*.yml)
test_files=("$RULES_DIR"/tests/*.yml)
((${#rule_files[@]})) || fail "no rule files in $RULES_DIR"
((${#test_files[@]})) || fail "no rule tests in $RULES_DIR/tests"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cat >"$TMP/broken.yml" <<'YAML'
groups:
  - name: broken
    rules:
      - alert: Broken
        expr: sum by (model) (rate(ferry_inference_requests_total[5m]) >
YAML
if "$PROMTOOL" check rules "$TMP/broken.yml" >"$TMP/out" 2>&1; then
  cat "$TMP/out"; fail "promtool accepted a broken rule, so its verdict on ours means nothing"
fi
if "$VMALERT" -dryRun -rule="$TMP/broken.yml" >"$TMP/out" 2>&1; then
  cat "$TMP/out"; fail "vmalert -dryRun accepted a broken rule, so its verdict on ours means nothing"
fi

echo "== promtool check rules"
"$PROMTOOL" check rules "${rule_files[@]}" || fail "promtool check rules"

echo "== promtool test rules"
"$PROMTOOL" test rules "${test_files[@]}" || fail "promtool test rules"

# Every alert must be seen firing by some test (a rule nobody tests can silently rot).
"$PY" - "${rule_files[@]}" -- "${test_files[@]}" <<'PYEOF' || fail "alert coverage"
import sys, yaml
args = sys.argv[1:]
split = args.index("--")
alerts = {r["alert"] for f in args[:split] for g in yaml.safe_load(open(f))["groups"]
          for r in g["rules"] if "alert" in r}
fired = {c["alertname"] for f in args[split + 1:] for t in yaml.safe_load(open(f))["tests"]
         for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
missing = sorted(alerts - fired)
if missing:
    sys.exit(f"alerts no test sees firing: {', '.join(missing)}")
print(f"all {len(alerts)} alerts are seen firing by a test")
PYEOF

echo "== vmalert -dryRun"
for f in "${rule_files[@]}"; do
  "$VMALERT" -dryRun -loggerLevel=ERROR -rule="$f" || fail "vmalert -dryRun -rule=$f"
  echo "$(basename "$f"): accepted by vmalert"
done
echo "check_rules: OK"
