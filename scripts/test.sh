#!/usr/bin/env bash
# The README's second command: set up, build, then run every test — the C++ unit
# tests (ctest), the shipped Prometheus rules (promtool check and unit tests, vmalert
# -dryRun), the integration tests (pytest against the real server; test_observability.py
# also runs real Prometheus, VictoriaMetrics, vmalert and Alertmanager), and the
# bad-input, lifecycle, runtime, runtime-module and batch tests again against an AddressSanitizer build, whose
# LeakSanitizer turns any leak into a non-zero exit that the tests check; and a short
# libFuzzer run of every decoder of untrusted bytes (FUZZ_SECONDS each, default 20).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/build.sh"
cd "$ROOT"
PYTEST=("$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider)

echo "== unit tests (ctest)"
ctest --preset dev -j2 --timeout 120

echo "== Prometheus rules (promtool check rules, promtool test rules, vmalert -dryRun)"
tests/observability/check_rules.sh

echo "== integration tests (pytest)"
# setup.sh builds the OpenTelemetry Collector the tracing tests need and fetches the Kafka
# broker the stream tests need: missing, they fail.
FERRY_REQUIRE_OTELCOL=1 FERRY_REQUIRE_KAFKA=1 FERRY_BIN="$ROOT/build/dev/ferry" "${PYTEST[@]}" tests/integration

echo "== gRPC on the grpc++ transport (ferry serve and ferry engine --grpc-transport grpc++; pytest)"
FERRY_GRPC_TRANSPORT=grpc++ FERRY_BIN="$ROOT/build/dev/ferry" "${PYTEST[@]}" tests/integration/test_grpc.py \
  tests/integration/test_grpc_metrics.py tests/integration/test_deadlines.py tests/integration/test_engine_grpc.py \
  tests/integration/test_engine_queue.py

echo "== bad input (REST and gRPC), shutdown, reload and the runtimes under AddressSanitizer (pytest)"
[[ -f build/asan/build.ninja ]] || cmake --preset asan >/dev/null
# ferry, plus the example and test plugins that test_plugin.py loads into it.
cmake --build --preset asan --target ferry ferry_plugin_add_one ferry_broken_version \
  ferry_broken_missing_execute ferry_broken_initialize ferry_autocomplete
FERRY_BIN="$ROOT/build/asan/ferry" \
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp" \
  "${PYTEST[@]}" tests/integration/test_batch.py tests/integration/test_batch_remote.py tests/integration/test_raw_http.py \
  tests/integration/test_hostile_input.py \
  tests/integration/test_grpc.py tests/integration/test_grpc_native.py \
  tests/integration/test_shutdown.py tests/integration/test_reload_under_load.py tests/integration/test_deadlines.py \
  tests/integration/test_inline_execution.py \
  tests/integration/test_python_models.py tests/integration/test_sklearn_lightgbm.py tests/integration/test_plugin.py \
  tests/integration/test_torch.py tests/integration/test_mlserver.py tests/integration/test_runtime_modules.py \
  tests/integration/test_engine.py tests/integration/test_engine_grpc.py tests/integration/test_engine_admin.py \
  tests/integration/test_engine_queue.py \
  tests/integration/test_json_fp16.py tests/integration/test_alerting.py tests/integration/test_tracing.py \
  tests/integration/test_logs.py tests/integration/test_payload_log.py tests/integration/test_drift_serving.py \
  tests/integration/test_profile.py tests/integration/test_explain.py tests/integration/test_feedback.py \
  tests/integration/test_outliers.py tests/integration/test_payload_kafka.py

echo "== fuzzing the decoders (libFuzzer, ${FUZZ_SECONDS:-20} s each)"
[[ -f build/fuzz/build.ninja ]] || cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
for target in v2_json_fuzz grpc_codec_fuzz grpc_framing_fuzz compression_fuzz; do
  corpus="build/fuzz/corpus/$target"
  mkdir -p "$corpus"
  seeds="tests/fuzz/corpus/${target%_fuzz}"
  [[ -d "$seeds" ]] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  log="build/fuzz/$target.log"
  if ! "build/fuzz/$target" -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=2048 \
       -artifact_prefix="build/fuzz/$target-" "$corpus" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $target found a failure (input saved as build/fuzz/$target-*)"
    exit 1
  fi
  echo "$target: $(grep -E '^Done' "$log")"
done
