#!/usr/bin/env bash
# Installs everything ferry needs to build and test: Debian packages, the
# ONNX Runtime C library (third_party/onnxruntime), Arrow C++ from the pyarrow wheel
# (for FERRY_WITH_PARQUET, in the cache folder) and the Python test venv.
# Idempotent: every step checks first, so a re-run takes a few seconds.
#
# Usage: scripts/setup.sh [--no-python]
#   --no-python   skip the .venv (enough to build and run the C++ tests)
# Env:   ONNXRUNTIME_ROOT=/path  use an existing ORT install instead of fetching
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ORT_VERSION=1.20.0
# Pins: a changed upstream artifact must fail loudly, not slip into the build.
ORT_LIB_SHA256_x86_64=6097fe8cedc8b5b3c8e107e9c2acf04eb50f58f0f045e3d7c5c50ead38112c72
ORT_LIB_SHA256_aarch64=fd7ec997121748668da52a0ec76d1aa6a9096dbd598cad743d56a4fa37ee9f97
ORT_HDR_SHA256=b0176725a7cc6d44c9de973330422433684ae3144e6b300ec2df755a2e6bcf64
ORT_HDR_MODULE=github.com/yalue/onnxruntime_go@v1.13.0
MVN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

WITH_PYTHON=1
for arg in "$@"; do
  case "$arg" in
    --no-python) WITH_PYTHON=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[setup] $*"; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
check_sha() { # file expected what
  local got; got="$(sha256_of "$1")"
  [[ "$got" == "$2" ]] || die "sha256 mismatch for $3: got $got, pinned $2"
}
# Runs a chatty tool quietly, but shows its full output if it fails.
quiet() { # logfile cmd...
  local logf="$1"; shift
  "$@" >"$logf" 2>&1 || { cat "$logf" >&2; die "failed: $*"; }
}

TMP=""
cleanup() { if [[ -n "$TMP" ]]; then rm -rf "$TMP"; fi; }
trap cleanup EXIT

APT_UPDATED=0
apt_install() {
  if [[ $APT_UPDATED == 0 ]]; then apt-get -qq update; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# ---- 1. Debian packages ---------------------------------------------------
APT_PKGS=(build-essential cmake ninja-build ccache pkg-config git
  libboost-dev libboost-program-options-dev libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev rapidjson-dev libyaml-cpp-dev zlib1g-dev
  libgtest-dev libgmock-dev libgrpc++-dev protobuf-compiler-grpc clang-14 libclang-rt-14-dev nginx-light python3-venv curl ca-certificates unzip
  libxgboost-dev
  # the ferry binary's allocator (tcmalloc_minimal; see src/cli/CMakeLists.txt)
  libgoogle-perftools-dev
  # the native gRPC transport (HTTP/2 framing, HPACK); h2load for its benchmark
  libnghttp2-dev nghttp2-client
  # ferry engine's state store
  libsqlite3-dev
  # PyTorch runtime: libtorch 1.13 to link; Debian's torch of the same version writes
  # the tests' TorchScript models (PyPI's torch is 2.x, whose files 1.13 may not load).
  libtorch-dev python3-torch
  # The observability checks (tests/observability/check_rules.sh and
  # tests/integration/test_observability.py) run the real systems: Prometheus and
  # promtool, VictoriaMetrics and vmalert, Alertmanager and amtool. The tests start their
  # own instances on 127.0.0.1; on a host with systemd, apt also enables the packages'
  # services (`systemctl disable --now prometheus victoria-metrics prometheus-alertmanager`).
  prometheus victoria-metrics prometheus-alertmanager
  # ferry stream (Kafka): Debian's librdkafka 2.0.2, with the transactional API; the test
  # broker (tools/kafka/install.sh) runs on Java 17.
  librdkafka-dev openjdk-17-jre-headless)
# mvn/go may come from non-Debian installs (e.g. /usr/local/go); any will do
# for the one-off fetches below, so don't pull a second copy.
command -v mvn >/dev/null || APT_PKGS+=(maven)
command -v go >/dev/null || APT_PKGS+=(golang-go)

missing=()
for p in "${APT_PKGS[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt: installing ${missing[*]}"
  apt_install "${missing[@]}"
  apt_summary="installed ${#missing[@]}"
else
  apt_summary="all present"
fi

# ---- 2. ONNX Runtime C library --------------------------------------------
ORT_DIR="$ROOT/third_party/onnxruntime"
ort_usable() { [[ -f "$1/include/onnxruntime_c_api.h" && -e "$1/lib/libonnxruntime.so" ]]; }

fetch_ort() {
  local arch sha_var mod_dir
  arch="$(uname -m)"
  sha_var="ORT_LIB_SHA256_$arch"
  [[ -n "${!sha_var:-}" ]] || die "no pinned ONNX Runtime build for $arch; set ONNXRUNTIME_ROOT"
  TMP="$(mktemp -d)"

  # Library: the release tarball's host isn't reachable here, but Microsoft's
  # official Java package on Maven Central bundles the native CPU build
  # (SONAME libonnxruntime.so.1, symbols versioned VERS_1.20.0).
  log "onnxruntime: fetching $ORT_VERSION library (Maven)"
  quiet "$TMP/mvn.log" mvn -B -q "$MVN_DEP_PLUGIN:copy" \
    "-Dartifact=com.microsoft.onnxruntime:onnxruntime:$ORT_VERSION:jar" \
    "-DoutputDirectory=$TMP/jar"
  local native=linux-x64; [[ $arch == aarch64 ]] && native=linux-aarch64
  unzip -q -j "$TMP/jar/onnxruntime-$ORT_VERSION.jar" \
    "ai/onnxruntime/native/$native/libonnxruntime.so" -d "$TMP/lib"
  check_sha "$TMP/lib/libonnxruntime.so" "${!sha_var}" "libonnxruntime.so ($arch)"

  # Header: the Java jar has none, and the Android AAR that would carry it is
  # not served by the registry reachable here. The Go binding onnxruntime_go
  # v1.13.0 vendors the unmodified upstream (Microsoft, MIT-licensed)
  # onnxruntime_c_api.h of ORT 1.20.0 at its module root, so the Go module
  # proxy delivers that file; the pinned sha256 and API-version check below
  # guard it. Only the C API is available this way (no C++ wrapper headers).
  # A private GOPATH keeps this out of the user's module cache; -modcacherw
  # lets the trap delete it.
  log "onnxruntime: fetching C API header ($ORT_HDR_MODULE)"
  GOPATH="$TMP/gopath" GOMODCACHE="$TMP/gopath/pkg/mod" GOFLAGS=-modcacherw \
    go mod download -json "$ORT_HDR_MODULE" >"$TMP/go.json" 2>"$TMP/go.log" \
    || { cat "$TMP/go.json" "$TMP/go.log" >&2; die "go mod download $ORT_HDR_MODULE failed"; }
  mod_dir="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <"$TMP/go.json")"
  # [[:space:]]: the vendored file has CRLF line endings; kept byte-for-byte.
  grep -q '^#define ORT_API_VERSION 20[[:space:]]*$' "$mod_dir/onnxruntime_c_api.h" \
    || die "header from $ORT_HDR_MODULE is not ORT API version 20"
  check_sha "$mod_dir/onnxruntime_c_api.h" "$ORT_HDR_SHA256" "onnxruntime_c_api.h"

  # Same layout as the official release tarball, so CMake finds either.
  # .version is written last: an interrupted run is redone next time.
  rm -rf "$ORT_DIR"
  mkdir -p "$ORT_DIR/include" "$ORT_DIR/lib"
  install -m 0644 "$mod_dir/onnxruntime_c_api.h" "$ORT_DIR/include/"
  install -m 0644 "$mod_dir/LICENSE" "$ORT_DIR/include/LICENSE.onnxruntime_go"
  install -m 0755 "$TMP/lib/libonnxruntime.so" "$ORT_DIR/lib/libonnxruntime.so.$ORT_VERSION"
  ln -s "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/lib/libonnxruntime.so.1"
  ln -s "libonnxruntime.so.1" "$ORT_DIR/lib/libonnxruntime.so"
  echo "$ORT_VERSION" >"$ORT_DIR/.version"
  rm -rf "$TMP"; TMP=""
}

if [[ -n "${ONNXRUNTIME_ROOT:-}" ]] && ort_usable "$ONNXRUNTIME_ROOT"; then
  log "onnxruntime: using ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT (not fetching)"
  ort_summary="ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT"
else
  if [[ -n "${ONNXRUNTIME_ROOT:-}" ]]; then
    echo "[setup] WARNING: ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT lacks include/onnxruntime_c_api.h" \
      "or lib/libonnxruntime.so; fetching into third_party/ instead" >&2
  fi
  if [[ "$(cat "$ORT_DIR/.version" 2>/dev/null || true)" == "$ORT_VERSION" ]] \
      && ort_usable "$ORT_DIR" && [[ -f "$ORT_DIR/lib/libonnxruntime.so.$ORT_VERSION" ]]; then
    :
  else
    fetch_ort
  fi
  ort_summary="$ORT_VERSION in third_party/onnxruntime"
fi

# ---- 3. Arrow C++ and Parquet (the pyarrow wheel) for FERRY_WITH_PARQUET ---
# Bookworm packages neither; the wheel ships the headers and shared libraries. In a venv
# of its own under the cache folder, so the build needs no .venv (--no-python too).
"$ROOT/tools/pyarrow/install.sh"

# ---- 4. Python test venv --------------------------------------------------
py_summary="skipped (--no-python)"
if [[ $WITH_PYTHON == 1 ]]; then
  VENV="$ROOT/.venv"
  REQ="$ROOT/scripts/requirements-test.txt"
  STAMP="$VENV/.requirements.sha256"
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "python: creating .venv with $(python3 --version)"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      # Debian's python3 lacks ensurepip until python3-venv is installed.
      rm -rf "$VENV"
      apt_install python3-venv
      python3 -m venv "$VENV"
    fi
  fi
  want="$(sha256_of "$REQ")"
  if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]]; then
    log "python: installing scripts/requirements-test.txt into .venv"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    echo "$want" >"$STAMP"
  fi
  py_summary=".venv ($("$VENV/bin/python" --version 2>&1 | cut -d' ' -f2))"

  # grpcurl: a gRPC client nobody here wrote, for the reflection tests. It is a Go
  # module, built by the Go toolchain into third_party/bin.
  GRPCURL_VERSION=v1.9.3
  if [[ "$(cat "$ROOT/third_party/bin/.grpcurl-version" 2>/dev/null || true)" != "$GRPCURL_VERSION" ]]; then
    log "grpcurl: building $GRPCURL_VERSION with go install"
    mkdir -p "$ROOT/third_party/bin"
    TMP="${TMP:-$(mktemp -d)}"
    quiet "$TMP/grpcurl.log" env GOBIN="$ROOT/third_party/bin" GOPATH="$TMP/gopath" GOFLAGS=-modcacherw \
      go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
    echo "$GRPCURL_VERSION" >"$ROOT/third_party/bin/.grpcurl-version"
  fi
  py_summary+="; grpcurl $GRPCURL_VERSION"

  # perf_analyzer: Triton's load generator, for the gRPC/HTTP compatibility tests and
  # bench/. Its wheel needs a newer glibc than bookworm's; install.sh explains the fix.
  "$ROOT/tools/perf_analyzer/install.sh" "$VENV/bin/python"
  [[ -x "$ROOT/third_party/perf_analyzer/bin/perf_analyzer" ]] && py_summary+="; perf_analyzer"
  "$ROOT/tools/otelcol/install.sh"  # OpenTelemetry Collector for the tracing tests (third_party/bin/otelcol)
  "$ROOT/tools/kafka/install.sh"    # Apache Kafka broker jars for the Kafka tests (third_party/kafka)
fi

log "done in ${SECONDS}s: apt $apt_summary; onnxruntime $ort_summary; pyarrow (Arrow C++) in the cache folder; python $py_summary"
