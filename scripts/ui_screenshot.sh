#!/usr/bin/env bash
# Remake docs/ui.png: the /ui browser test (tests/inspect/test_ui_browser.py) keeps its screenshot there.
# Needs Debian's chromium (`apt-get install -y chromium`, or `make test` once as root) and the dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
RGW_UI_SCREENSHOT="$PWD/docs/ui.png" "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
	tests/inspect/test_ui_browser.py
echo "wrote docs/ui.png"
