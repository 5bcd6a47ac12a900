#!/usr/bin/env bash
# Installs kubeconform and the JSON schemas test/deploy-k8s.test.ts validates deploy/k8s/ against,
# so that the test needs no network:
#   .tools/bin/kubeconform     built through the Go module proxy (needs Go 1.21 or newer, which
#                              fetches the toolchain kubeconform asks for by itself)
#   .tools/k8s-schemas/        Kubernetes' schemas from the kubernetes-validate wheel on PyPI, and
#                              the ServiceMonitor's from prometheus-operator's CRD in its Go module
#                              (see scripts/k8s-json-schemas.mjs for the layout and conversion)
# Nothing comes from GitHub. Safe to run again: what is there at the pinned versions is kept, and
# then it takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECONFORM_VERSION=v0.8.0
# Schemas of every Kubernetes minor version from 1.25 on, one wheel (~22 MB).
KUBERNETES_VALIDATE_VERSION=1.37.0
# The Kubernetes versions the manifests are validated against: the oldest they are meant for
# (the preStop `sleep` action is on by default from 1.30; native gRPC probes are GA since 1.27)
# and the newest the wheel knows. The test validates against every version found here.
KUBERNETES_VERSIONS=1.30.0,1.37.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0
# The CustomResourceDefinitions, within that module, of the custom resources deploy/k8s/ uses.
PROMETHEUS_OPERATOR_CRDS=example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml

tools="$PWD/.tools"
schemas="$tools/k8s-schemas"

if ! command -v go >/dev/null 2>&1; then
  echo "setup-kubeconform.sh: Go 1.21 or newer is needed to build kubeconform (scripts/setup-clients.sh installs Go)" >&2
  exit 1
fi

# --- kubeconform, rebuilt only when the binary is not at the pinned version.
built_version() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'; }
if [ "$(built_version "$tools/bin/kubeconform")" != "$KUBECONFORM_VERSION" ]; then
  mkdir -p "$tools/bin"
  GOBIN="$tools/bin" go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
fi

# --- Schemas, rewritten only when a pinned version or the converter changed. The stamp is written
# last, and the new tree replaces the old one whole, so an interrupted run is redone next time.
stamp="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION kubernetes=$KUBERNETES_VERSIONS"
stamp+=" prometheus-operator@$PROMETHEUS_OPERATOR_VERSION:$PROMETHEUS_OPERATOR_CRDS"
stamp+=" converter=$(cksum < scripts/k8s-json-schemas.mjs | cut -d' ' -f1)"
if [ "$(cat "$schemas/.stamp" 2>/dev/null)" != "$stamp" ]; then
  tmp=$(mktemp -d "$tools/k8s-schemas.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$tmp/wheel" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  # The module lands in Go's module cache (outside the repository); -json names its directory.
  module_dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$module_dir" ]; then
    echo "setup-kubeconform.sh: go mod download gave no directory for prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" >&2
    exit 1
  fi
  crds=()
  for crd in $PROMETHEUS_OPERATOR_CRDS; do crds+=("$module_dir/$crd"); done
  node scripts/k8s-json-schemas.mjs --out "$tmp/schemas" --wheel "$tmp"/wheel/*.whl \
    --kubernetes "$KUBERNETES_VERSIONS" "${crds[@]}" >/dev/null
  rm -rf "$schemas"
  mv "$tmp/schemas" "$schemas"
  echo "$stamp" > "$schemas/.stamp"
fi

echo "kubeconform $KUBECONFORM_VERSION in .tools/bin, schemas (Kubernetes $KUBERNETES_VERSIONS, ServiceMonitor) in .tools/k8s-schemas"
