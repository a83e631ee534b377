#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: the browser test (TestWebUIBrowser)
# walks every staff page in chromium with the dev setup's synthetic data
# and leaves a screenshot of each.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
rm -f docs/screenshots/*.png
CALLVAULT_SCREENSHOTS=docs/screenshots go test -count=1 -run '^TestWebUIBrowser$' ./cmd/callvault
ls docs/screenshots
