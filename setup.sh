#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks: Fashion-MNIST (offline, from Debian's
# dataset-fashion-mnist package) and the Python packages. Safe to run again.
#   bash setup.sh          the suite, with the CPU build of TensorFlow
#   bash setup.sh --dev    the same, plus the test tools (pytest, ruff, playwright, chromium)
#   SUITE_TF=gpu bash setup.sh   the CUDA build of TensorFlow instead (GPU runners)
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
   && [ ! -e "$HOME/.keras/datasets/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
  echo "setup: installing Fashion-MNIST (apt-get install dataset-fashion-mnist)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist
fi

extras="${SUITE_TF:-cpu}"
if [ "${1:-}" = "--dev" ]; then
  extras="$extras,dev"
  if ! command -v chromium >/dev/null 2>&1; then  # the browser test drives Debian's chromium
    echo "setup: installing chromium (apt-get install chromium) for the browser test"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  fi
fi
echo "setup: pip install -e .[$extras]"
python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
