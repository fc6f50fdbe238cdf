#!/usr/bin/env bash
# Load bench of the REST API: wrk against /api/v2/intraday/prices/AAPL?limit=100 served
# from PostgreSQL holding the last 69 days of 1-minute bars for 20 symbols (~2 million rows,
# recent so that retention keeps them).
# Two measurements: `hey` at a fixed 5,000 requests/s (50 clients × 100/s) for the latency
# target, then `wrk` with a closed loop for the saturation throughput.
# Usage: scripts/bench_api.sh [duration, default 20s] [wrk connections, default 32]
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
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
}
trap cleanup EXIT

cargo build --release --quiet --bin tickflow
./target/release/tickflow migrate --database-url "$url"
psql -q "$url" <<'SQL'
INSERT INTO intraday_ohlcv (symbol, "timestamp", interval_minutes, open, high, low, close, volume, num_samples, vwap, revision, source, bar_end)
SELECT s.sym, t, 1, p, p + 0.2, p - 0.2, p + 0.05, 1000 + (random() * 5000)::int, 20, p + 0.01, 0, 'aggregator', t + interval '1 minute'
FROM (SELECT unnest(ARRAY['AAPL','MSFT','GOOG','AMZN','TSLA','NVDA','META','NFLX','AMD','INTC','ORCL','IBM','CSCO','ADBE','CRM','QCOM','TXN','AVGO','SHOP','UBER']) AS sym) s,
     generate_series(date_trunc('minute', now()) - interval '69 days', date_trunc('minute', now()), interval '1 minute') t,
     LATERAL (SELECT 100 + 20 * sin(extract(epoch FROM t) / 86400.0) AS p) price;
ANALYZE intraday_ohlcv;
SQL
rows=$(psql -tA "$url" -c "SELECT count(*) FROM intraday_ohlcv")
pin() { local cpus=$1; shift; if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi; }
server=(./target/release/tickflow)
[ -n "${SERVER_CPUS:-}" ] && server=(taskset -c "$SERVER_CPUS" ./target/release/tickflow)
RUST_LOG=warn DATABASE_URL="$url" "${server[@]}" serve --feed none --http-addr "127.0.0.1:$port" --workers 1 &
pid=$!
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
sample=$(curl -fs "http://127.0.0.1:$port/api/v2/intraday/prices/AAPL?limit=100&interval=1min")
echo "${sample:0:160}... (${#sample} bytes)"
echo "rows in intraday_ohlcv: $rows"
echo "== hey: 5,000 requests/s for $duration =="
pin "${LOAD_CPUS:-}" hey -z "$duration" -c 50 -q 100 "http://127.0.0.1:$port/api/v2/intraday/prices/AAPL?limit=100&interval=1min" | sed -n '/Summary/,$p'
echo "== wrk: saturation, $connections connections =="
pin "${LOAD_CPUS:-}" wrk -t2 -c"$connections" -d"$duration" --latency "http://127.0.0.1:$port/api/v2/intraday/prices/AAPL?limit=100&interval=1min"
