#!/bin/bash
# Screenshot the real Lodestar window under Xvfb after typing a query.
#
#   LODESTAR_DATA_DIR=bench/out/shots-data docs/screenshots/take_screenshot.sh "read a file line by line" docs/screenshots/main.png
#
# Needs: Xvfb, xdotool, imagemagick (import). Index the folders first (`lodestar index ...`) or let
# the window do it. WAIT = seconds to let models load; AFTER = seconds between typing and the shot.
set -u
QUERY=$1
OUT=$2
export DISPLAY=${DISPLAY_NUM:-:99}
if ! xdpyinfo >/dev/null 2>&1; then
    Xvfb "$DISPLAY" -screen 0 1280x800x24 >"${TMPDIR:-/tmp}/lodestar-xvfb.log" 2>&1 &
    XVFB=$!
    sleep 2
fi
cd "$(dirname "$0")/../.."
HF_HUB_OFFLINE=1 QT_QPA_PLATFORM=xcb .venv/bin/python -m indexer.cli.main -v >"${TMPDIR:-/tmp}/lodestar-shot.log" 2>&1 &
APP=$!
for _ in $(seq 1 60); do xdotool search --name "^Lodestar$" >/dev/null 2>&1 && break; sleep 1; done
sleep "${WAIT:-20}"
WID=$(xdotool search --name "^Lodestar$" | head -1)
xdotool windowfocus --sync "$WID" 2>/dev/null
xdotool key ctrl+k
xdotool type --delay 40 "$QUERY"
sleep "${AFTER:-6}"
import -window "$WID" "$OUT"
kill "$APP"
wait "$APP" 2>/dev/null
[ -n "${XVFB:-}" ] && kill "$XVFB"
echo "wrote $OUT"
