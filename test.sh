#!/usr/bin/env bash
# Runs LabelNoiseLab's whole test suite (xunit, Release build) and ends with one summary line.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log="$(mktemp)"
dotnet test "$root/tests/LabelNoiseLab.Tests" -c Release -nologo 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# dotnet test's own closing line: "Passed!  - Failed: 0, Passed: 250, Skipped: 0, Total: 250, ..."
line=$(grep -E "(Passed|Failed)! +- Failed: +[0-9]+, Passed: +[0-9]+" "$log" | tail -n 1)
rm -f "$log"
if [ -n "$line" ]; then
  failed=$(echo "$line" | sed -E 's/.*Failed: +([0-9]+),.*/\1/')
  passed=$(echo "$line" | sed -E 's/.*Passed: +([0-9]+),.*/\1/')
  skipped=$(echo "$line" | sed -E 's/.*Skipped: +([0-9]+),.*/\1/')
  echo "$passed passed, $failed failed, $skipped skipped"
fi
exit "$rc"
