#!/usr/bin/env bash
# Takes docs/chart.png: the chart page in headless Chromium, against a `tickflow serve` of its
# own fed with the browser tests' replayed history (8 hours of AAPL trades) and a few live
# trades (a forming candle and the trade tape), SMA, Bollinger, VWAP, RSI and MACD shown,
# the cursor on a bar. Needs what scripts/test_browser needs.
#
#   scripts/chart_screenshot.sh [OUT]     (default docs/chart.png)
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/test_browser --screenshot-only --screenshot "${1:-docs/chart.png}"
