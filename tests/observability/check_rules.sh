#!/usr/bin/env bash
# Checks the shipped Prometheus rules (deploy/prometheus/*.yml) and the example
# Alertmanager routing (deploy/alertmanager/alertmanager.yml); fails loudly on the first
# problem:
#   1. promtool check rules      - Prometheus parses every rule and expression;
#   2. promtool test rules       - the unit tests in deploy/prometheus/tests/ pass, and
#                                  every alert has at least one test case where it fires;
#   3. vmalert -dryRun           - VictoriaMetrics' rule evaluator accepts the same files;
#   4. amtool check-config       - Alertmanager accepts the routing, every alert of the
#      and config routes test      rules reaches the receiver of its severity, and every
#                                  alert an inhibit rule names exists.
# Before trusting 1, 3 and 4 it feeds each tool a broken file, which it must refuse.
# Tools come from PATH (scripts/setup.sh installs the Debian packages prometheus,
# victoria-metrics and prometheus-alertmanager); PROMTOOL, VMALERT, AMTOOL override them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROMTOOL="${PROMTOOL:-promtool}"
VMALERT="${VMALERT:-vmalert}"
AMTOOL="${AMTOOL:-amtool}"
RULES_DIR="$ROOT/deploy/prometheus"
AM_CONFIG="$ROOT/deploy/alertmanager/alertmanager.yml"
PY="$ROOT/.venv/bin/python"; [[ -x "$PY" ]] || PY=python3

fail() { echo "check_rules: FAILED: $*" >&2; exit 1; }
for tool in "$PROMTOOL" "$VMALERT" "$AMTOOL"; do
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
printf 'route:\n  receiver: nobody\nreceivers: []\n' >"$TMP/broken-am.yml"
if "$AMTOOL" check-config "$TMP/broken-am.yml" >"$TMP/out" 2>&1; then
  cat "$TMP/out"; fail "amtool accepted a route to an undefined receiver, so its verdict on ours means nothing"
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
echo "== amtool check-config, config routes test"
"$AMTOOL" check-config "$AM_CONFIG" >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "amtool check-config $AM_CONFIG"; }
# One line per alert: its name, its severity and the receiver that severity must reach;
# and a failure for an inhibit rule that names an alert the rules do not have.
"$PY" - "$AM_CONFIG" "${rule_files[@]}" >"$TMP/routes" <<'PYEOF' || fail "alert names in $AM_CONFIG"
import re, sys, yaml
receiver = {"critical": "ferry-pager", "warning": "ferry-chat", "ticket": "ferry-tickets"}
alerts = {r["alert"]: r["labels"]["severity"] for f in sys.argv[2:] for g in yaml.safe_load(open(f))["groups"]
          for r in g["rules"] if "alert" in r}
for name, severity in sorted(alerts.items()):
    if severity not in receiver:
        sys.exit(f"{name}: severity {severity!r} has no receiver in the example routing")
    print(name, severity, receiver[severity])
am = yaml.safe_load(open(sys.argv[1]))
named = {m for rule in am.get("inhibit_rules", []) for key in ("source_matchers", "target_matchers")
         for matcher in rule[key] for m in re.findall(r'alertname="([^"]+)"', matcher)}
unknown = sorted(named - set(alerts))
if unknown:
    sys.exit(f"inhibit rules name alerts the rules do not have: {', '.join(unknown)}")
PYEOF
while read -r alert severity receiver; do
  "$AMTOOL" config routes test --config.file="$AM_CONFIG" --verify.receivers="$receiver" \
    alertname="$alert" severity="$severity" job=ferry model=m >"$TMP/out" 2>&1 \
    || { cat "$TMP/out"; fail "$alert (severity $severity) does not reach $receiver"; }
done <"$TMP/routes"
echo "$(wc -l <"$TMP/routes") alerts reach the receiver of their severity"
echo "check_rules: OK"
