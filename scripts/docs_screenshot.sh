#!/usr/bin/env bash
# Take headless-Chromium screenshots of tickflow's offline API docs pages.
#
#   scripts/docs_screenshot.sh [BASE_URL] [OUT_DIR]
#
#   BASE_URL  a running tickflow on a loopback address (default http://127.0.0.1:8000)
#   OUT_DIR   where swagger.png and redoc.png are written (default ./docs-screenshots)
#
# Chromium runs with host-resolver rules that make every host name except the
# loopback one unresolvable, so the pages only render if everything they need
# (JS, CSS, /openapi.json) is served by tickflow itself.
#
# Exits non-zero if chromium is missing, if a page does not answer 200, if
# chromium fails, if a screenshot is missing or empty, or if the rendered DOM
# shows no operations (set DOCS_DOM_CHECK=0 to skip that last check).
# Environment: CHROMIUM (binary, default "chromium"), CHROMIUM_TIMEOUT (s, default 120).
set -euo pipefail

BASE_URL="${1:-http://127.0.0.1:8000}"
OUT_DIR="${2:-./docs-screenshots}"
BASE_URL="${BASE_URL%/}"
CHROMIUM="${CHROMIUM:-chromium}"
CHROMIUM_TIMEOUT="${CHROMIUM_TIMEOUT:-120}"
DOCS_DOM_CHECK="${DOCS_DOM_CHECK:-1}"

die() { echo "docs_screenshot: $*" >&2; exit 1; }

if ! command -v "$CHROMIUM" >/dev/null 2>&1; then
    die "'$CHROMIUM' not found. Install it first (Debian: apt-get update && apt-get install -y chromium), or set CHROMIUM=/path/to/chromium."
fi

# Only loopback targets: the resolver rules below block every other host anyway.
hostport="${BASE_URL#*://}"
hostport="${hostport%%/*}"
case "$hostport" in
    \[*\]*) host="${hostport#[}"; host="${host%%]*}" ;;   # [::1]:8000
    *)      host="${hostport%%:*}" ;;
esac
case "$host" in
    127.*|localhost|::1) ;;
    *) die "base URL host '$host' is not a loopback address (use 127.0.0.1, localhost or [::1])" ;;
esac
RESOLVER_RULES="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
if [ "$host" != "127.0.0.1" ]; then RESOLVER_RULES="$RESOLVER_RULES, EXCLUDE $host"; fi

mkdir -p "$OUT_DIR"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

run_timeout=()
command -v timeout >/dev/null 2>&1 && run_timeout=(timeout "$CHROMIUM_TIMEOUT")

# Preflight: the pages and the spec must answer 200 (otherwise chromium would
# happily screenshot an error page).
if command -v curl >/dev/null 2>&1; then
    for p in /openapi.json /docs /redoc /docs/assets/swagger-ui-bundle.js /docs/assets/swagger-ui.css /docs/assets/redoc.standalone.js; do
        code="$(curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 10 "$BASE_URL$p" || true)"
        [ "$code" = "200" ] || die "GET $BASE_URL$p answered '${code:-no response}' (is tickflow running?)"
    done
else
    echo "docs_screenshot: curl not found, skipping HTTP preflight" >&2
fi

chromium_run() {   # chromium_run LOGFILE ARGS... ; fresh profile per run
    local log="$1"; shift
    local profile
    profile="$(mktemp -d "$WORK/profile.XXXXXX")"
    ${run_timeout[@]+"${run_timeout[@]}"} "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --virtual-time-budget=5000 --window-size=1280,900 \
        --host-resolver-rules="$RESOLVER_RULES" "$@" 2>"$log"
}

status=0
shoot() {   # shoot NAME PATH DOM_REGEX (extended regex the rendered DOM must match)
    local name="$1" path="$2" marker="$3"
    local png="$OUT_DIR/$name.png" url="$BASE_URL$path"
    rm -f "$png"
    if ! chromium_run "$WORK/$name.log" --screenshot="$png" "$url" >/dev/null; then
        echo "docs_screenshot: chromium failed for $url; its log:" >&2
        tail -n 20 "$WORK/$name.log" >&2
        status=1; return
    fi
    if [ ! -s "$png" ]; then
        echo "docs_screenshot: screenshot $png is missing or empty" >&2
        status=1; return
    fi
    if [ "$DOCS_DOM_CHECK" != "0" ]; then
        if ! chromium_run "$WORK/$name.dom.log" --dump-dom "$url" >"$WORK/$name.dom.html"; then
            echo "docs_screenshot: chromium --dump-dom failed for $url" >&2
            status=1; return
        fi
        if ! grep -qE "$marker" "$WORK/$name.dom.html"; then
            echo "docs_screenshot: $url rendered no operations (no '$marker' in the DOM); see $png" >&2
            status=1; return
        fi
    fi
    echo "ok: $url -> $png ($(wc -c <"$png") bytes)"
}

shoot swagger /docs 'opblock-summary-path'
shoot redoc /redoc 'operation/|Kafka and store checks'
exit "$status"
