#!/usr/bin/env bash
# The test command of the README: installs what the tests need (Python extras, and with root the
# Debian packages for the browser test: chromium and a CJK font), then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "noto.*cjk"; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  else
    echo "需要 chromium 与 fonts-noto-cjk / needs: sudo apt-get install chromium fonts-noto-cjk" >&2
  fi
fi
python -m pip install -q --disable-pip-version-check -e ".[test]"
python -m pytest "$@"
