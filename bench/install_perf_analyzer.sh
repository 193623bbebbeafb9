#!/usr/bin/env bash
# Put NVIDIA's perf_analyzer (Triton client 2.51.0) and the two libraries it loads into <repo>/.cache/perf-analyzer/.
#
#   bash bench/install_perf_analyzer.sh      # prints the path of a wrapper script that runs perf_analyzer
#
# perf_analyzer ships inside the tritonclient==2.51.0 manylinux wheel (data/bin/perf_analyzer). Even on CPU it
# links libb64.so.0d (Debian package libb64-0d) and libcudart.so.12 (PyPI nvidia-cuda-runtime-cu12). Everything
# is unpacked under the cache folder; nothing is installed system-wide. Idempotent: a second run only prints.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${PERF_ANALYZER_HOME:-$REPO/.cache/perf-analyzer}"
WRAPPER="$DEST/perf_analyzer"
TRITONCLIENT_VERSION=2.51.0
CUDART_VERSION=12.9.79

if [[ -x "$WRAPPER" ]] && "$WRAPPER" --version >/dev/null 2>&1; then
    echo "$WRAPPER"
    exit 0
fi

PYTHON="${PYTHON:-python3}"
[[ -x "$REPO/.venv/bin/python" ]] && PYTHON="$REPO/.venv/bin/python"
DOWNLOADS="$DEST/downloads"
mkdir -p "$DOWNLOADS" "$DEST/bin" "$DEST/lib"

if ! ls "$DOWNLOADS"/tritonclient-"$TRITONCLIENT_VERSION"-*manylinux*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux1_x86_64 \
        --python-version 3.10 -d "$DOWNLOADS" "tritonclient==$TRITONCLIENT_VERSION" >&2
fi
if ! ls "$DOWNLOADS"/nvidia_cuda_runtime_cu12-"$CUDART_VERSION"-*.whl >/dev/null 2>&1; then
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
        --python-version 3.10 -d "$DOWNLOADS" "nvidia-cuda-runtime-cu12==$CUDART_VERSION" >&2
fi
if ! ls "$DOWNLOADS"/libb64-0d_*.deb >/dev/null 2>&1; then
    (cd "$DOWNLOADS" && apt-get download libb64-0d >&2) || {
        echo "apt-get download libb64-0d failed: run 'apt-get update' first" >&2
        exit 1
    }
fi

"$PYTHON" - "$DOWNLOADS" "$DEST" <<'EOF'
"""Extract perf_analyzer and libcudart.so.12 from the two wheels."""
import shutil
import sys
import zipfile
from pathlib import Path

downloads, dest = Path(sys.argv[1]), Path(sys.argv[2])
wanted = {"tritonclient-": ".data/data/bin/perf_analyzer", "nvidia_cuda_runtime_cu12-": "/lib/libcudart.so.12"}
for prefix, suffix in wanted.items():
    wheel = next(downloads.glob(f"{prefix}*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        member = next(name for name in archive.namelist() if name.endswith(suffix))
        target = dest / ("bin" if suffix.endswith("perf_analyzer") else "lib") / Path(member).name
        with archive.open(member) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out)
        target.chmod(0o755)
EOF

rm -rf "$DEST/libb64"
dpkg -x "$DOWNLOADS"/libb64-0d_*.deb "$DEST/libb64"
find "$DEST/libb64" -name 'libb64.so.0d*' -exec cp -L {} "$DEST/lib/" \;

cat >"$WRAPPER" <<EOF
#!/usr/bin/env bash
# perf_analyzer $TRITONCLIENT_VERSION with its libraries (written by bench/install_perf_analyzer.sh)
export LD_LIBRARY_PATH="$DEST/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$DEST/bin/perf_analyzer" "\$@"
EOF
chmod +x "$WRAPPER"

if ! "$WRAPPER" --version >/dev/null 2>&1; then
    echo "perf_analyzer does not start; ldd says:" >&2
    LD_LIBRARY_PATH="$DEST/lib" ldd "$DEST/bin/perf_analyzer" | grep 'not found' >&2 || true
    exit 1
fi
echo "$WRAPPER"
