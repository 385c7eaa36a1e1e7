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
    # mricron-data: the colin27 head and its mask; insighttoolkit5-examples: the itk-kmeans head and its mask;
    # chromium: the browser test of the report (tests/test_report_browser.py); npm: the NiiVue bundle below
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        mricron-data insighttoolkit5-examples chromium >/dev/null
    # npm only where no npm is installed (Debian's npm conflicts with a nodejs that ships its own)
    command -v npm >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends npm >/dev/null
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
.venv/bin/pip install -q -e ".[workflow,slurm,baselines,embedded,bids,dev]"
.venv/bin/pip install -q --no-deps "deepbet==1.0.2"
# ANTs and its template files without their pins (see pyproject.toml's baselines extra)
.venv/bin/pip install -q --no-deps "antspyx==0.6.3" "nimare==0.22.1"
# The report's viewer: NiiVue's UMD bundle (2.2 MB, not committed), the pinned npm tarball checked against npm's
# sha512 integrity, the bundle against pumba/report/viewer.py's sha256 (pumba report viewer checks it again)
NIIVUE_VERSION=0.69.0
NIIVUE_INTEGRITY="sha512-YMjQvJgD1W2b7DuoxkwlC4VxbrgIePRJ5qyQzXKxi2v2MBVg285P/CIQyg46oDDGDIcaNlbd+MhtO/edMbXJkA=="
NIIVUE_SHA256=47b896b77ec4a5be3ef1949c33ad393b6f45629921f326c279000bcf51bdb4af
if [ "$(sha256sum .cache/niivue/niivue.umd.js 2>/dev/null | cut -d' ' -f1)" != "$NIIVUE_SHA256" ]; then
    if command -v npm >/dev/null 2>&1; then
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack --silent "@niivue/niivue@$NIIVUE_VERSION" >/dev/null)
        got="sha512-$(openssl dgst -sha512 -binary "$tmp"/niivue-niivue-$NIIVUE_VERSION.tgz | base64 -w0)"
        if [ "$got" != "$NIIVUE_INTEGRITY" ]; then
            echo "setup: @niivue/niivue@$NIIVUE_VERSION tarball integrity mismatch ($got)" >&2
            exit 1
        fi
        tar -xzf "$tmp"/niivue-niivue-$NIIVUE_VERSION.tgz -C "$tmp" package/dist/niivue.umd.js
        echo "$NIIVUE_SHA256  $tmp/package/dist/niivue.umd.js" | sha256sum -c --quiet -
        mkdir -p .cache/niivue && mv "$tmp"/package/dist/niivue.umd.js .cache/niivue/niivue.umd.js
        rm -rf "$tmp"
    else
        echo "setup: no npm; the report is built without its NiiVue viewer" >&2
    fi
fi
.venv/bin/pumba --version
