#!/usr/bin/env bash
# Load bench of the REST API: GET /api/v2/intraday/prices/AAPL?limit=100&interval=1min served
# from PostgreSQL holding the last 69 days of 1-minute bars for 20 symbols (~2 million rows,
# recent so that retention keeps them).
# Per server build and cache setting, two measurements: `hey` at a fixed 5,000 requests/s
# (50 clients x 100/s) for the latency target, then `wrk` with a closed loop for the
# saturation throughput; then `wrk` over 20,000 distinct URLs (cache-busting: every request
# a miss while the answer cache fills to its byte bound), with the server's resident memory
# after it; uncached, the time of `/api/v2/symbols` over the 2 million bars.
# Usage: scripts/bench_api.sh [duration, default 20s] [wrk connections, default 32]
# TICKFLOW_BIN: the server to measure (default: this tree, built in release).
# BASELINE_BIN: another build (e.g. main's) measured in the same run, alternating with
# TICKFLOW_BIN on the same data, so that the two are compared under the same machine state.
# CACHE_TTLS: answer-cache settings to measure (default "1s 0": cache on, then off).
# SERVER_CPUS / LOAD_CPUS (taskset lists, e.g. 0 and 1) pin the server and the load
# generator to separate cores; unset, everything shares every core.
# Needs hey and wrk (apt-get install hey wrk), PostgreSQL on 127.0.0.1:5432 (ADMIN_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20s}
connections=${2:-32}
admin=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=tickflow_api_bench_$$
port=18080
psql -q "$admin" -c "CREATE DATABASE $db"
url="${admin%/*}/$db"
work=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT

bin=${TICKFLOW_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin tickflow
  bin=./target/release/tickflow
fi
"$bin" migrate --database-url "$url"
psql -q "$url" <<'SQL'
INSERT INTO intraday_ohlcv (symbol, "timestamp", interval_minutes, open, high, low, close, volume, num_samples, vwap, revision, source, bar_end)
SELECT s.sym, t, 1, p, p + 0.2, p - 0.2, p + 0.05, 1000 + (random() * 5000)::int, 20, p + 0.01, 0, 'aggregator', t + interval '1 minute'
FROM (SELECT unnest(ARRAY['AAPL','MSFT','GOOG','AMZN','TSLA','NVDA','META','NFLX','AMD','INTC','ORCL','IBM','CSCO','ADBE','CRM','QCOM','TXN','AVGO','SHOP','UBER']) AS sym) s,
     generate_series(date_trunc('minute', now()) - interval '69 days', date_trunc('minute', now()), interval '1 minute') t,
     LATERAL (SELECT 100 + 20 * sin(extract(epoch FROM t) / 86400.0) AS p) price;
VACUUM ANALYZE intraday_ohlcv;
SQL
rows=$(psql -tA "$url" -c "SELECT count(*) FROM intraday_ohlcv")
echo "rows in intraday_ohlcv: $rows"
pin() { local cpus=$1; shift; if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi; }
target="http://127.0.0.1:$port/api/v2/intraday/prices/AAPL?limit=100&interval=1min"
# Distinct, valid URLs: 20 symbols x 1,000 limits.
cat > "$work/distinct.lua" <<'LUA'
local symbols = {"AAPL","MSFT","GOOG","AMZN","TSLA","NVDA","META","NFLX","AMD","INTC","ORCL","IBM","CSCO","ADBE","CRM","QCOM","TXN","AVGO","SHOP","UBER"}
-- Each wrk thread starts elsewhere in the sequence, so the threads do not ask alike.
n = 0
local threads = 0
setup = function(thread)
  thread:set("n", threads * 10007)
  threads = threads + 1
end
request = function()
  n = n + 1
  local path = string.format("/api/v2/intraday/prices/%s?interval=1m&limit=%d",
    symbols[n % 20 + 1], math.floor(n / 20) % 1000 + 1)
  return wrk.format("GET", path)
end
LUA

measure() {
  local name=$1 server=$2 ttl=$3
  local cmd=("$server")
  [ -n "${SERVER_CPUS:-}" ] && cmd=(taskset -c "$SERVER_CPUS" "$server")
  RUST_LOG=warn DATABASE_URL="$url" TICKFLOW_API_CACHE_TTL="$ttl" "${cmd[@]}" serve --feed none \
    --http-addr "127.0.0.1:$port" --workers 1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
  local sample
  sample=$(curl -fs "$target")
  echo "== $name, cache ttl $ttl: ${sample:0:100}... (${#sample} bytes)"
  echo "-- hey: 5,000 requests/s for $duration"
  pin "${LOAD_CPUS:-}" hey -z "$duration" -c 50 -q 100 "$target" \
    | grep -E 'Requests/sec|Average|(50|90|99)(\.00)?% in|\[[0-9]{3}\]' || true
  echo "-- wrk: saturation, $connections connections"
  pin "${LOAD_CPUS:-}" wrk -t2 -c"$connections" -d"$duration" --latency "$target" \
    | grep -E 'Requests/sec|Transfer/sec|^ +(50|90|99)%|Non-2xx' || true
  if [ "$ttl" = 0 ] && curl -fs -o /dev/null "http://127.0.0.1:$port/api/v2/symbols"; then
    echo "-- /api/v2/symbols, uncached (s):" $(for _ in 1 2 3 4 5; do
      curl -fs -o /dev/null -w '%{time_total} ' "http://127.0.0.1:$port/api/v2/symbols"; done)
  fi
  if [ "$ttl" != 0 ]; then
    echo "-- wrk: 20,000 distinct URLs, $connections connections"
    pin "${LOAD_CPUS:-}" wrk -t2 -c"$connections" -d"$duration" --latency -s "$work/distinct.lua" \
      "http://127.0.0.1:$port" | grep -E 'Requests/sec|^ +(50|90|99)%|Non-2xx' || true
    echo "-- resident memory after: $(awk '/VmRSS/ {print $2 " kB"}' "/proc/$pid/status")," \
      "$(curl -fs "http://127.0.0.1:$port/metrics" | grep -E '^api_cache_(bytes|entries) ' | tr '\n' ' ')"
  fi
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

for ttl in ${CACHE_TTLS:-1s 0}; do
  if [ -n "${BASELINE_BIN:-}" ]; then
    measure baseline "$BASELINE_BIN" "$ttl"
  fi
  measure tickflow "$bin" "$ttl"
done
