#!/usr/bin/env bash
# The whole test suite: `npm test`. Stops at once, naming the install command, if a tool it needs is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cfn-lint >/dev/null 2>&1; then
  echo "npm test: cfn-lint is missing. Install it with: pip install cfn-lint" >&2
  exit 1
fi

# Compile first: type-checks sources and tests, and builds the `byoc` CLI the tests run as `npx byoc`.
npx tsc -p tsconfig.json

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
status=0
npx jest --json --outputFile="$results" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (r.numTotalTests === 0) { console.error("npm test: no test ran"); process.exit(1); }
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' "$results" || status=1
exit "$status"
