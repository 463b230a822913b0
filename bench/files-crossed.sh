#!/usr/bin/env bash
# Which source files a plain content-pull run goes through (issue 13: "a run crosses N files"), measured, not
# read: the JIT-compiled (managed, not AOT) content-pull of a checkout pulls a two-file bucket into an empty DEST
# with DOTNET_JitDisasmSummary, which lists every method that ran; each method's type is mapped to the file that
# declares it (nested and compiler-generated types to their outer type).
#   bench/files-crossed.sh S3_ENV [CHECKOUT]     (CHECKOUT: a work tree, default this one; built with dotnet build)
# S3_ENV is the env file scripts/s3-server-start.sh printed. Prints the count and the files.
set -euo pipefail
env_file=$1
root=$(cd "${2:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dotnet build "$root/tools/content-pull" -c Release -o "$work/bin" >/dev/null
set -a; . "$env_file"; set +a
unset AWS_CA_BUNDLE
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
bucket=files-crossed-$$
aws --endpoint-url "$S3_ENDPOINT" s3 mb "s3://$bucket" >/dev/null
mkdir -p "$work/src/css" "$work/dest"
echo home > "$work/src/index.html"; echo body > "$work/src/css/a.css"
aws --endpoint-url "$S3_ENDPOINT" s3 sync "$work/src" "s3://$bucket/" >/dev/null
DOTNET_TieredCompilation=0 DOTNET_JitStdOutFile="$work/jit.txt" DOTNET_JitDisasmSummary=1 CONTENT_PULL_STATE_DIR="$work/state" \
  dotnet "$work/bin/content-pull.dll" --delete "s3://$bucket/" "$work/dest" >&2
aws --endpoint-url "$S3_ENDPOINT" s3 rb --force "s3://$bucket" >/dev/null
python3 - "$work/jit.txt" "$root" <<'PY'
import os, re, sys
jit, root = sys.argv[1], sys.argv[2]
types = set()
for line in open(jit):
    m = re.search(r'JIT compiled ([^:(]+):', line)
    if m and m.group(1).startswith(('InfraTools', 'Program')):
        types.add(re.sub(r'`\d+', '', re.sub(r'\[.*', '', m.group(1)).split('+')[0]).split('.')[-1])
declared = {}
for base in ('src', 'tools/content-pull'):
    for d, _, names in os.walk(os.path.join(root, base)):
        if '/bin' in d or '/obj' in d: continue
        for n in names:
            if not n.endswith('.cs'): continue
            p = os.path.join(d, n)
            for m in re.finditer(r'\b(?:class|record|struct|interface|enum)\s+(?:struct\s+|class\s+)?(\w+)', open(p, errors='replace').read()):
                declared.setdefault(m.group(1), set()).add(os.path.relpath(p, root))
files = {'tools/content-pull/Program.cs'} if 'Program' in types else set()
for t in types - {'Program'}: files |= declared.get(t, set())
print(f"{len(types)} types in {len(files)} files")
for f in sorted(files): print("  " + f)
PY
