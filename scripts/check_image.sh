#!/usr/bin/env bash
# Builds the container image and checks it for real, where Docker runs (the test suite cannot):
#   1. `docker build`;
#   2. the image alone, root filesystem read-only and no tmpfs at all: it turns healthy (its own
#      HEALTHCHECK), runs as a non-root user, serves the demo, stops cleanly on SIGTERM;
#   3. compose.yaml: Redis, the poller and both API processes turn healthy, both API processes
#      serve the poller's data and accept each other's page cursors.
# Usage: scripts/check_image.sh   (DOCKER_BUILDKIT=0 with a Docker client that lacks buildx)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=beffroi:check
PROJECT=beffroi-check
COMPOSE=(docker compose)
docker compose version >/dev/null 2>&1 || COMPOSE=(docker-compose)
export BEFFROI_CURSOR_SECRET
BEFFROI_CURSOR_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
container=""

cleanup() {
  [ -n "$container" ] && docker rm -f -v "$container" >/dev/null 2>&1
  "${COMPOSE[@]}" -p "$PROJECT" down -v >/dev/null 2>&1 || true
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# Waits until every container named in "$@" reports healthy (2 minutes at most).
wait_healthy() {
  for _ in $(seq 120); do
    local all=1
    for name in "$@"; do
      state=$(docker inspect --format '{{.State.Health.Status}}' "$name")
      [ "$state" = healthy ] || all=0
    done
    [ $all = 1 ] && return 0
    sleep 1
  done
  for name in "$@"; do docker logs --tail 20 "$name" >&2; done
  fail "not healthy within 2 minutes: $*"
}

get() { curl --silent --show-error --fail --max-time 10 "$1"; }

echo "== docker build"
docker build --tag "$IMAGE" . >/dev/null

echo "== the image alone, read-only"
container=$(docker run --detach --read-only --publish 127.0.0.1::8080 "$IMAGE")
wait_healthy "$container"
port=$(docker port "$container" 8080/tcp | head -1 | sed 's/.*://')
[ "$(docker exec "$container" id -u)" != 0 ] || fail "the image runs as root"
get "http://127.0.0.1:$port/healthz" | grep -q '"alive"' || fail "/healthz"
get "http://127.0.0.1:$port/v1/stops/caltrain:san_francisco/departures?limit=3" \
  | grep -q '"departures"' || fail "the demo's departures"
docker stop --time 30 "$container" >/dev/null
code=$(docker inspect --format '{{.State.ExitCode}}' "$container")
[ "$code" = 0 ] || fail "exit code $code on SIGTERM"
docker rm -v "$container" >/dev/null
container=""
echo "   healthy, non-root, serving, stopped cleanly"

echo "== compose.yaml"
"${COMPOSE[@]}" -p "$PROJECT" up --detach --build >/dev/null 2>&1
names=()
for service in redis poller api-1 api-2; do
  names+=("$("${COMPOSE[@]}" -p "$PROJECT" ps -q "$service")")
done
wait_healthy "${names[@]}"
records="v1/sources/lovelo-stations/records?limit=2"
for p in 8081 8082; do
  get "http://127.0.0.1:$p/v1/stops/caltrain:san_francisco/departures?limit=3" \
    | grep -q '"departures"' || fail "api on :$p serves no departures"
done
cursor=$(get "http://127.0.0.1:8081/$records" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["meta"]["next_cursor"])')
get "http://127.0.0.1:8082/$records&cursor=$cursor" >/dev/null \
  || fail "api-2 refuses api-1's cursor"
echo "   redis, poller, api-1, api-2 healthy; both APIs serve; cursors shared"
echo "OK"
