#!/usr/bin/env bash
# The official MCP conformance suite's server scenarios, run against the gateway (dist build) with the conformance
# fixture (test/fixtures/servers/conformance.ts) as its only upstream, names unchanged, no auth, everything allowed.
#
#   scripts/conformance.sh install            install the pinned tools into the cache (needs the npm registry)
#   scripts/conformance.sh run LEG [OUT_DIR]   run one leg: 2025-11-25 (suite 0.1.16) or 2026-07-28 (0.2.0-alpha.12)
#   scripts/conformance.sh direct LEG          the same leg against the fixture alone, no gateway (checks the fixture)
#
# The tools (the suite at both pinned versions and the Node 22 it needs; this project runs on Node 20) are not project
# dependencies: test/conformance/runner/package.json and its lockfile pin them, and `install` runs `npm ci` for them
# in a cache folder keyed by the lockfile's hash: $GATEHOUSE_CONFORMANCE_CACHE, default ~/.cache/gatehouse-conformance.
#
# Exit: 0 the leg matched its expected-failures file (test/conformance/expected-failures-LEG.yaml); 1 an unexpected
# failure or an unexpected pass (the suite's own verdict); 2 setup failed; 77 the tools are not installed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNNER="$ROOT/test/conformance/runner"
CACHE_ROOT="${GATEHOUSE_CONFORMANCE_CACHE:-${HOME:-/tmp}/.cache/gatehouse-conformance}"
LOCK_HASH="$(sha256sum "$RUNNER/package-lock.json" | cut -c1-16)"
TOOLS="$CACHE_ROOT/$LOCK_HASH"

node22() {
  local arch
  arch="$(node -p 'process.arch')"
  echo "$TOOLS/node_modules/node-linux-$arch/bin/node"
}

tools_ready() {
  [ -f "$TOOLS/.complete" ] && [ -x "$(node22)" ]
}

install_tools() {
  if tools_ready; then
    echo "conformance tools: already in $TOOLS"
    return 0
  fi
  rm -rf "$TOOLS"
  mkdir -p "$TOOLS"
  cp "$RUNNER/package.json" "$RUNNER/package-lock.json" "$TOOLS/"
  # No install scripts are needed: the Node binary ships inside its platform package (node-linux-<arch>).
  (cd "$TOOLS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  if [ ! -x "$(node22)" ]; then
    echo "conformance tools: no Node 22 binary for $(node -p 'process.platform + "-" + process.arch') in $TOOLS" >&2
    return 2
  fi
  "$(node22)" --version
  touch "$TOOLS/.complete"
  echo "conformance tools: installed in $TOOLS"
}

suite_version() {
  case "$1" in
    2025-11-25) echo conformance-2025-11-25 ;;
    2026-07-28) echo conformance-2026-07-28 ;;
    *)
      echo "unknown leg '$1' (2025-11-25 or 2026-07-28)" >&2
      exit 2
      ;;
  esac
}

PIDS=()
WORK=""
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  [ -n "$WORK" ] && rm -rf "$WORK"
}

# wait_for FILE PATTERN PID: the first line of FILE matching PATTERN (a grep -E pattern), within 30 s.
wait_for() {
  local file="$1" pattern="$2" pid="$3"
  for _ in $(seq 1 300); do
    if grep -m1 -E "$pattern" "$file" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "not ready: $file" >&2
  tail -n 40 "$file" >&2 || true
  return 1
}

run_leg() {
  local mode="$1" leg="$2" out="${3:-}"
  local pkg
  pkg="$(suite_version "$leg")"
  if ! tools_ready; then
    echo "conformance tools are not installed: run scripts/conformance.sh install (needs the npm registry)" >&2
    exit 77
  fi
  if [ "$mode" = gateway ] && [ ! -f "$ROOT/dist/src/main.js" ]; then
    echo "no dist build: run npm run build first" >&2
    exit 2
  fi
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-conformance.XXXXXX")"
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  # --import tsx resolves from the working directory: the repository's.
  (cd "$ROOT" && exec node --import tsx test/fixtures/servers/conformance.ts) 2>"$WORK/fixture.log" >/dev/null &
  PIDS+=($!)
  local fixture_url
  fixture_url="$(wait_for "$WORK/fixture.log" 'listening on http' "${PIDS[-1]}" | grep -oE 'http://[^ ]+')" || exit 2

  local url="$fixture_url"
  if [ "$mode" = gateway ]; then
    mkdir -p "$WORK/policy"
    cat >"$WORK/policy/conformance.yaml" <<'YAML'
version: 1
description: The conformance run reaches everything the fixture serves, and the fixture may ask the client for input.
rules:
  - id: conformance.everything
    description: Every tool, prompt and resource of the conformance fixture.
    effect: allow
    match:
      tools: ["*"]
      prompts: ["*"]
      resources: ["**"]
  - id: conformance.client-requests
    description: The sampling, form elicitation and roots requests the scenarios answer.
    effect: allow
    match:
      requests: [sampling/createMessage, "elicitation/create:form", roots/list]
YAML
    cat >"$WORK/gatehouse.yaml" <<YAML
server:
  host: 127.0.0.1
  port: 0
  path: /mcp
auth:
  mode: none
policy:
  dir: ./policy
catalogue:
  unprefixedSingleUpstream: true
logging:
  level: info
upstreams:
  - name: conformance
    transport: http
    url: $fixture_url
YAML
    (cd "$WORK" && exec node "$ROOT/dist/src/main.js" start --config "$WORK/gatehouse.yaml") >"$WORK/gateway.log" 2>&1 &
    PIDS+=($!)
    url="$(wait_for "$WORK/gateway.log" '"msg":"gatehouse listening"' "${PIDS[-1]}" |
      node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).address))')" || exit 2
  fi

  local args=(server --url "$url" --suite all --spec-version "$leg")
  if [ "$mode" = gateway ]; then
    args+=(--expected-failures "$ROOT/test/conformance/expected-failures-$leg.yaml")
  fi
  if [ -n "$out" ]; then
    mkdir -p "$out"
    args+=(-o "$out")
  fi
  echo "== conformance $leg ($pkg) against $url"
  local status=0
  "$(node22)" "$TOOLS/node_modules/$pkg/dist/index.js" "${args[@]}" || status=$?
  if [ -n "$out" ]; then cp "$WORK"/*.log "$out/" 2>/dev/null || true; fi
  if [ "$status" -ne 0 ] && [ "$mode" = gateway ]; then
    echo "--- gateway log: warnings and errors (the last 20)" >&2
    grep -E '"level":(40|50|60)' "$WORK/gateway.log" | tail -n 20 >&2 || true
  fi
  [ "$status" -eq 0 ] || status=1
  return "$status"
}

case "${1:-}" in
  install) install_tools ;;
  run) run_leg gateway "${2:?leg: 2025-11-25 or 2026-07-28}" "${3:-}" ;;
  direct) run_leg direct "${2:?leg: 2025-11-25 or 2026-07-28}" "${3:-}" ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
