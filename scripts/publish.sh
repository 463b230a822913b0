#!/usr/bin/env bash
# Publishes the four tools as Native AOT linux-x64 binaries into artifacts/bin/<tool> (their symbols into
# artifacts/symbols/<tool>.dbg), and with --test-driver also the AOT test driver into artifacts/test-bin/s3-driver.
# Installs clang and zlib1g-dev when missing.
# Fails if the publish prints any trim/AOT warning other than the per-assembly summary of a third-party
# dependency (IL2104/IL3053 for Minio, whose affected calls the AOT tests exercise).
# A binary newer than every source file is not rebuilt (set FORCE=1 to rebuild anyway).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh" aot

projects=(tools/content-pull tools/acme-restore tools/backup tools/cron)
[[ "${1:-}" == "--test-driver" ]] && projects+=(tests/S3Driver)
allowed_dependency_warning='(IL2104|IL3053): Assembly '"'"'(Minio)'"'"' produced'

newest_source() { # newest mtime among the sources a project is built from (the driver also compiles tools/backup/Acme)
  find "$@" src Directory.Build.props Directory.Packages.props \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) \
    -not -path '*/obj/*' -not -path '*/bin/*' -printf '%T@\n' | sort -n | tail -1
}

status=0
for project in "${projects[@]}"; do
  name=$(sed -n 's:.*<AssemblyName>\(.*\)</AssemblyName>.*:\1:p' "$project"/*.csproj)
  if [[ "$project" == tests/* ]]; then out=artifacts/test-bin; else out=artifacts/bin; fi
  target="$out/$name"
  sources=("$project")
  if [[ "$project" == tests/S3Driver ]]; then sources+=(tools/backup/Acme); fi
  if [[ -z "${FORCE:-}" && -x "$target" ]] && \
     awk -v a="$(stat -c %Y "$target")" -v b="$(newest_source "${sources[@]}")" 'BEGIN { exit !(a > b) }'; then
    echo "publish: $target is up to date"
    continue
  fi
  log=$(mktemp)
  staging=$(mktemp -d)
  if ! dotnet publish "$project" -c Release -r linux-x64 -p:PublishAot=true -o "$staging" > "$log" 2>&1; then
    cat "$log"; echo "publish: $project failed" >&2; exit 1
  fi
  unexpected=$(grep -E 'warning (IL|CS|CA)[0-9]+' "$log" | grep -vE "$allowed_dependency_warning" | sort -u || true)
  if [[ -n "$unexpected" ]]; then
    echo "$unexpected" >&2
    echo "publish: $project has trim/AOT or compiler warnings from our code (above)" >&2
    status=1
  fi
  grep -E "$allowed_dependency_warning" "$log" | sed -E 's/^[^:]*: warning /  dependency warning /; s/ \[[^]]*\]$//' | sort -u || true
  mkdir -p "$out" artifacts/symbols
  cp "$staging/$name" "$target"
  # The binaries carry no method names for stack traces; these symbols resolve the offsets --debug prints.
  cp "$staging/$name.dbg" "artifacts/symbols/$name.dbg"
  rm -rf "$staging" "$log"
  echo "publish: $target ($(stat -c %s "$target") bytes)"
done
exit $status
