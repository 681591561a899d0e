#!/usr/bin/env bash
# The test command of the README: installs what the tests need (Python extras at the versions of
# constraints.txt, and with root the Debian packages for the browser test: chromium and a CJK
# font), then runs the whole suite (ruff and the doctests included: tests/test_lint.py, test_api.py).
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
# constraints.txt pins every package to the version the suite last passed with
# (regenerate with `python scripts/constraints.py` after an upgrade that passes).
python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
python -m pytest "$@"
