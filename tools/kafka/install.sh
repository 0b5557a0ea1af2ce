#!/usr/bin/env bash
# Fetches Apache Kafka (broker and tools, as jars) for ferry's Kafka tests: the
# `ferry stream` tests and the payload log's Kafka sink. No tarball and no docker:
# Maven resolves org.apache.kafka:kafka_2.13 with its runtime dependencies, plus
# org.slf4j:slf4j-simple (Kafka ships no logging backend; without one the broker
# is silent), and copies the jars into a cache folder outside the clone, keyed by
# version, so fresh clones and worktrees on the same machine share one copy:
#   $FERRY_CACHE_DIR/kafka-4.1.2/libs/*.jar   (FERRY_CACHE_DIR: /var/cache/ferry,
#                                             or ~/.cache/ferry if that is not writable)
# and links that folder to third_party/kafka. Run the broker with
#   java -cp 'third_party/kafka/libs/*' kafka.Kafka server.properties
# (tests/integration/kafka_helpers.py and docs/streaming.md show the whole set-up).
#
# Why 4.1.2: Debian's librdkafka 2.0.2 joins consumer groups with JoinGroup v0,
# which Kafka 4.0.0 removed and 4.0.1/4.1.0 brought back. Never pin 4.0.0.
# Java 17 (the 4.x broker's minimum) and maven are installed with apt if missing.
# Idempotent: when the cache holds the jars of this version, this only (re)makes
# the link.
#
# Usage: tools/kafka/install.sh            (scripts/setup.sh runs it)
# Env:   FERRY_CACHE_DIR=/path    cache root
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERSION=4.1.2
SLF4J_VERSION=1.7.36
MVN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

log() { echo "[setup] kafka: $*"; }
die() { echo "[setup] ERROR: kafka: $*" >&2; exit 1; }

source "$ROOT/tools/lib/cache_root.sh"
DEST="$CACHE_ROOT/kafka-$VERSION"
STAMP="$DEST/.complete"
LINK="$ROOT/third_party/kafka"

java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
need_apt=()
if ! command -v java >/dev/null || (( $(java_major) < 17 )); then need_apt+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null || need_apt+=(maven)
if ((${#need_apt[@]})); then
  log "apt: installing ${need_apt[*]}"
  apt-get -qq update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

link() {
  mkdir -p "$ROOT/third_party"
  ln -sfn "$DEST" "$LINK"
}

# The broker's own jar and the storage tool's class must be there: a partial copy
# (an interrupted run) has no stamp and is fetched again.
have_jars() {
  [[ -f "$STAMP" && -f "$DEST/libs/kafka_2.13-$VERSION.jar" && -f "$DEST/libs/slf4j-simple-$SLF4J_VERSION.jar" ]]
}

if have_jars; then
  link
  log "$VERSION already fetched ($DEST); linked third_party/kafka"
  exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# A two-dependency POM: copy-dependencies resolves the runtime closure of both.
cat >"$TMP/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.ferry</groupId><artifactId>kafka-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>$SLF4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
log "fetching kafka_2.13 $VERSION and slf4j-simple $SLF4J_VERSION with maven into $DEST"
start=$SECONDS
if ! mvn -B -q -f "$TMP/pom.xml" "$MVN_DEP_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime "-DoutputDirectory=$TMP/libs" >"$TMP/mvn.log" 2>&1; then
  tail -n 40 "$TMP/mvn.log" >&2
  die "mvn copy-dependencies failed"
fi
[[ -f "$TMP/libs/kafka_2.13-$VERSION.jar" ]] || die "maven did not deliver kafka_2.13-$VERSION.jar"
unzip -Z1 "$TMP/libs/kafka_2.13-$VERSION.jar" kafka/tools/StorageTool.class >/dev/null 2>&1 \
  || die "kafka_2.13-$VERSION.jar has no kafka.tools.StorageTool"
mkdir -p "$DEST"
rm -rf "$DEST/libs"
mv "$TMP/libs" "$DEST/libs"
echo "$VERSION" >"$STAMP"  # last: an interrupted run fetches again next time
link
log "fetched $VERSION in $((SECONDS - start))s ($(ls "$DEST/libs" | wc -l) jars, $(du -sh "$DEST/libs" | cut -f1)); linked third_party/kafka -> $DEST"
