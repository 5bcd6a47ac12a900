#!/usr/bin/env bash
# Fails (non-zero, printing a diff) when the checked-in generated code drifts from proto/, and
# checks the contract itself:
#   1. buf lint (STANDARD + COMMENTS rules) and buf format;
#   2. buf breaking against the main branch:
#        npx buf breaking --against '.git#branch=main'
#      (set BUF_BREAKING_AGAINST to compare with another input, e.g. '.git#ref=HEAD~1');
#   3. regenerates everything into a temporary directory with scripts/gen-proto.sh and diffs it
#      with src/gen/, clients/go/mlxserve/ and clients/python/src/mlxserve/v1/.
# Fix drift with scripts/gen-proto.sh. Tools come from `npm ci` and scripts/setup-clients.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
buf=node_modules/.bin/buf

"$buf" lint
if ! "$buf" format --diff --exit-code --path proto/mlxserve; then
  echo "check-generated.sh: proto/mlxserve is not formatted; run: npx buf format -w --path proto/mlxserve" >&2
  exit 1
fi

against=${BUF_BREAKING_AGAINST:-.git#branch=main}
if [ -n "${BUF_BREAKING_AGAINST:-}" ] || git cat-file -e main:buf.yaml 2>/dev/null; then
  "$buf" breaking --against "$against"
else
  # Until the contract is on main there is nothing to be compatible with.
  echo "check-generated.sh: main has no buf.yaml yet; buf breaking skipped"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/gen-proto.sh "$tmp"

drift=0
for dir in src/gen clients/go/mlxserve clients/python/src/mlxserve/v1; do
  if ! diff -ru --exclude=__pycache__ "$dir" "$tmp/$dir"; then
    drift=1
  fi
done
if [ "$drift" = 1 ]; then
  echo "check-generated.sh: generated code is out of date with proto/; run scripts/gen-proto.sh" >&2
  exit 1
fi
echo "check-generated.sh: proto lint, format, compatibility and generated code are up to date"
