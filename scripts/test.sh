#!/usr/bin/env bash
# The whole test suite: `npm test`. Stops at once, naming the install command, if a tool it needs is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "npm test: $1 is missing. Install it with: $2" >&2
    exit 1
  fi
}

# Servers from Debian the integration tests start on loopback: installed here when we can (root on Debian).
have() { case "$1" in postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ;; *) command -v "$1" >/dev/null 2>&1 ;; esac; }
for pkg in nats-server postgresql redis-server chromium; do
  if ! have "$pkg" && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "npm test: installing $pkg from Debian" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg") >&2
  fi
  have "$pkg" || { echo "npm test: $pkg is missing. Install it with: apt-get install -y $pkg" >&2; exit 1; }
done
need cfn-lint "pip install cfn-lint"
need moto_server "pip install 'moto[server]'"
need openssl "apt-get install -y openssl"
need sha256sum "apt-get install -y coreutils"

# Build first: type-checks sources and tests, builds the `byoc` CLI the tests run as `npx byoc` and the
# boundary gateway bundle the tests run against real servers.
npm run build --silent

# One private temporary folder for the whole run (the tests, the servers and CLIs they start), removed at
# the end whatever happened: nothing the suite writes to the temp dir outlives it. Traversable by the
# postgres user, which the PostgreSQL helper runs the server as when the suite runs as root.
parent_tmp="${TMPDIR:-/tmp}"
run_tmp="$(mktemp -d "$parent_tmp/byoc-test-XXXXXX")"
chmod 755 "$run_tmp"
trap 'rm -rf "$run_tmp"' EXIT
# What the system temp folder holds before the run: afterwards it must hold nothing new of ours.
before="$(ls -A "$parent_tmp" | grep -E '^(byoc|cdk\.out|tmp-)' | sort || true)"
export TMPDIR="$run_tmp"
# This machine's Node 20 is what the tests run on (the images run a supported LTS line): the AWS SDK's notice
# about it, printed by every process that loads a client, says nothing about the code under test.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
results="$(mktemp)"
status=0
npx jest --json --outputFile="$results" "$@" || status=$?
# Nothing of ours may appear outside the run's temp folder.
after="$(ls -A "$parent_tmp" | grep -E '^(byoc|cdk\.out|tmp-)' | grep -v -x "$(basename "$run_tmp")" | sort || true)"
outside="$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep -v '^$' || true)"
if [ -n "$outside" ]; then
  echo "npm test: the tests left temporary files outside their temp folder:$(printf ' %s' $outside)" >&2
  status=1
fi
# Nor inside it: jest's global teardown removes the cdk.out* folders of Apps built without an outdir (with jest's
# own temp folder, test/global-setup.ts), and every test removes what it creates. Anything else fails the run,
# named (with what a byoc-jest-* folder the teardown kept still holds).
left="$(cd "$run_tmp" && ls -A | grep -v -x -e "$(basename "$results")" -e 'jest_[a-z0-9]*' | sort || true)"
if [ -n "$left" ]; then
  named="$(for entry in $left; do
    if [ -d "$run_tmp/$entry" ] && [[ "$entry" == byoc-jest-* ]]; then ls -A "$run_tmp/$entry" | sed "s|^|$entry/|"; else echo "$entry"; fi
  done | tr '\n' ' ')"
  echo "npm test: the tests left temporary files in their temp folder: ${named% }" >&2
  status=1
fi
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (r.numTotalTests === 0) { console.error("npm test: no test ran"); process.exit(1); }
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' "$results" || status=1
exit "$status"
