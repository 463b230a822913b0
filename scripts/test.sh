#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing (Debian packages), publishes the Native AOT
# binaries, starts one throwaway S3 server (Ceph RGW on 127.0.0.1) for all tests, runs every test project
# and ends with the line "N passed, N failed[, N skipped]" counted from the TRX result files. The live stack
# test (tests/Stack.Tests/Live) starts its own Docker engine and S3 server (docs/deploy.md), and counts as
# skipped where no engine can run.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh aot ceph prometheus compose bench test engine kubernetes || exit 1
scripts/publish.sh --test-driver || { echo "test: publishing the AOT binaries failed" >&2; exit 1; }

state=$(mktemp -d /tmp/infratools-s3-XXXXXX)
env_file=$(scripts/s3-server-start.sh "$state") || { echo "test: the S3 test server did not start" >&2; exit 1; }
trap 'scripts/s3-server-stop.sh "$state"' EXIT

results="$root/artifacts/test-results"
rm -rf "$results"
INFRATOOLS_TEST_S3_ENV="$env_file" dotnet test Tools.sln -c Release --logger trx --results-directory "$results" "$@"
status=$?

passed=0; failed=0; skipped=0; files=0
for trx in "$results"/*.trx; do
  [[ -f "$trx" ]] || continue
  files=$((files + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx")
  value() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<< "$counters"; }
  passed=$((passed + $(value passed)))
  failed=$((failed + $(value failed) + $(value error) + $(value timeout) + $(value aborted)))
  skipped=$((skipped + $(value notExecuted)))
done
if (( files == 0 )); then echo "test: no test results were written" >&2; status=1; fi
if (( status != 0 && failed == 0 )); then failed=1; echo "test: dotnet test failed outside of any test (build error or crashed test host)" >&2; fi
summary="$passed passed, $failed failed"
(( skipped > 0 )) && summary+=", $skipped skipped"
echo "$summary"
exit $(( status != 0 || failed > 0 ))
