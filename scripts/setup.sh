#!/usr/bin/env bash
# Set up PUMBA-bench on a Debian/Ubuntu machine: the Debian packages that carry embedded test heads, a virtual
# environment in .venv with PyTorch (install the wheel first so that a CPU build stays a CPU build), the project
# with its workflow, baseline and test extras, and deepbet, antspyx and nimare without their dependency pins.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # mricron-data: the colin27 head and its mask; insighttoolkit5-examples: the itk-kmeans head and its mask
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        mricron-data insighttoolkit5-examples >/dev/null
else
    echo "setup: no apt-get; install mricron-data and insighttoolkit5-examples yourself or those datasets are skipped" >&2
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "setup: Python >= 3.11 is required (python3 is $(python3 --version))" >&2
    exit 1
}
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[workflow,slurm,baselines,embedded,dev]"
.venv/bin/pip install -q --no-deps "deepbet==1.0.2"
# ANTs and its template files without their pins (see pyproject.toml's baselines extra)
.venv/bin/pip install -q --no-deps "antspyx==0.6.3" "nimare==0.22.1"
.venv/bin/pumba --version
