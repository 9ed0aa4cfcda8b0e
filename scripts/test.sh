#!/usr/bin/env bash
# The whole suite: type-check, lint, then every unit and integration test. Ends with a plain
# "N passed, N failed" line (from vitest's JSON report) and vitest's exit status.
set -uo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json --noEmit || { echo "type-check failed"; echo "0 passed, 1 failed"; exit 1; }
npx eslint . || { echo "lint failed"; echo "0 passed, 1 failed"; exit 1; }
report=$(mktemp)
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
node -e '
  const fs = require("node:fs");
  let r = {};
  try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch {}
  const passed = r.numPassedTests ?? 0, failed = (r.numFailedTests ?? 0) + (r.numTotalTestSuites === undefined ? 1 : 0);
  console.log(`${passed} passed, ${failed} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' "$report"
rm -f "$report"
exit $status
