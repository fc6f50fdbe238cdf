"""Browser tests of `/chart` against a running `tickflow serve` fed by `tickflow replay`.

    python3 tests/browser/chart_test.py --bin target/debug/tickflow [--screenshot docs/chart.png]
                                        [--only NAME ...] [--keep-logs]

The last line is `chart page tests: N passed, N failed`; the exit status is non-zero when
any failed. `scripts/test_browser` checks the prerequisites, runs the page's JavaScript unit
tests and this, and closes with `browser tests: N passed, N failed` over both.

History: AAPL (8 hours of 1-minute bars: more than the page's first page of 300) and MSFT
(3 hours: all of it on the first page, warm-up included), one trade every 15 s, ending one
second before a 5-minute boundary at least 5 minutes ago so that every 1m and 5m bar closes
within seconds. Live: trades produced now (the forming candle) and a late trade into the bar
just closed (a revision).
"""

from __future__ import annotations

import argparse
import math
import random
import secrets
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import Tickflow, browser, drain_logs, wait_until  # noqa: E402

# Indicator names the page can show, by group (the checkboxes' data-group).
GROUPS = {
    "sma": ["sma_20", "sma_50", "sma_200"],
    "ema": ["ema_12", "ema_26"],
    "bb": ["bb_upper", "bb_middle", "bb_lower"],
    "keltner": ["keltner_upper", "keltner_lower"],
    "vwap": ["vwap"],
    "rsi": ["rsi_14"],
    "macd": ["macd", "macd_signal", "macd_hist"],
    "stoch": ["stoch_k", "stoch_d"],
}
ALL_INDICATORS = [n for names in GROUPS.values() for n in names]
TRADE_EVERY = timedelta(seconds=15)
HISTORY = {"AAPL": (timedelta(hours=8), 187.0, 1), "MSFT": (timedelta(hours=3), 412.0, 2)}
# Bars the page asks for per history request (assets/chart/chart.js PAGE_BARS).
PAGE_BARS = 300
# Longest wait for a bar to close after its last trade (a minute, the grace, the idle clock).
BAR_CLOSE_WAIT_S = 90

LEGEND_JS = """
const l = document.getElementById('legend');
const out = {symbol: l.dataset.symbol, interval: l.dataset.interval, time: l.dataset.time,
             status: l.dataset.status, fields: {}, ind: {}, provisional: {}};
for (const s of l.querySelectorAll('[data-field]')) out.fields[s.dataset.field] = s.dataset.value;
for (const s of l.querySelectorAll('.ind')) {
  out.ind[s.dataset.name] = s.dataset.value;
  out.provisional[s.dataset.name] = s.dataset.provisional;
}
return out;
"""


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def history_rows(now: datetime) -> tuple[list, datetime]:
    """Trades for every symbol of HISTORY, and the end of the history (a 5-minute boundary)."""
    end = now.replace(second=0, microsecond=0)
    end -= timedelta(minutes=end.minute % 5 + 5)
    rows = []
    for symbol, (span, price, seed) in HISTORY.items():
        rng = random.Random(seed)
        n = int(span / TRADE_EVERY)
        for k in range(n, -1, -1):
            price = round(price * (1 + rng.gauss(0, 0.0009)), 2)
            rows.append((symbol, iso(end - timedelta(seconds=1) - k * TRADE_EVERY), price, float(rng.choice([100, 200, 300, 500, 1000]))))
    rows.sort(key=lambda r: r[1])
    return rows, end


class Context:
    """The instance, its history and the browser the tests share (they run in order)."""

    def __init__(self, app: Tickflow, workdir: Path, driver=None):
        self.app = app
        self.workdir = workdir
        self.driver = driver
        self.forming: dict | None = None

    # ---- the API -------------------------------------------------------------------

    def bars(self, symbol: str, interval: str, token: str | None = None, limit: int = 2000) -> list[dict]:
        status, body = self.app.get(f"/api/v2/intraday/prices/{symbol}?interval={interval}&limit={limit}", token)
        assert status == 200, (status, body)
        return sorted(body["data"], key=lambda r: parse_time(r["timestamp_utc"]))

    def analytics(self, symbol: str, interval: str, token: str | None = None, limit: int = 1000) -> dict:
        names = ",".join(ALL_INDICATORS)
        status, body = self.app.get(
            f"/api/v2/intraday/analytics/{symbol}?interval={interval}&indicators={names}&limit={limit}", token
        )
        assert status == 200, (status, body)
        return {parse_time(r["timestamp_utc"]): r for r in body["data"]}

    # ---- the page ------------------------------------------------------------------

    def open(self, path: str) -> None:
        self.driver.get(self.app.base + path)
        self.wait_ready()

    def wait_ready(self, driver=None) -> None:
        d = driver or self.driver
        wait_until("the page to load its history", lambda: d.find_element("id", "status").get_attribute("data-state") == "ready")
        wait_until("the three WebSockets to be subscribed", lambda: d.find_element("id", "live").get_attribute("data-state") == "live")

    def legend(self, driver=None) -> dict:
        return (driver or self.driver).execute_script(LEGEND_JS)

    def show_groups(self, wanted: set[str]) -> None:
        for box in self.driver.find_elements("css selector", "input[data-group]"):
            if (box.get_attribute("data-group") in wanted) != box.is_selected():
                box.click()


def same(page_value: str, api_value) -> bool:
    """A legend/data value equals the API's: the same double, or both undefined."""
    if api_value is None:
        return page_value in ("", None)
    return page_value not in ("", None) and float(page_value) == float(api_value)


def assert_legend_is_bar(legend: dict, bar: dict, analytics_row: dict | None, what: str) -> None:
    assert parse_time(legend["time"]) == parse_time(bar["timestamp_utc"]), f"{what}: legend time {legend['time']} != {bar['timestamp_utc']}"
    for field in ("open", "high", "low", "close", "volume"):
        assert same(legend["fields"][field], bar[field]), f"{what}: legend {field} {legend['fields'][field]!r} != API {bar[field]!r}"
    if analytics_row is not None:
        for name, value in legend["ind"].items():
            assert same(value, analytics_row.get(name)), f"{what}: legend {name} {value!r} != API {analytics_row.get(name)!r}"


def newest_equals_api(ctx: Context, symbol: str, interval: str, token: str | None = None, driver=None):
    """A check: the legend (cursor off the chart) shows the API's newest bar and its indicators."""

    def check():
        legend = ctx.legend(driver)
        bars = ctx.bars(symbol, interval, token, limit=5)
        newest = bars[-1]
        row = ctx.analytics(symbol, interval, token, limit=5).get(parse_time(newest["timestamp_utc"]))
        assert_legend_is_bar(legend, newest, row, f"{symbol} {interval} newest bar")
        return legend["symbol"] == symbol and legend["interval"] == interval and legend["status"] in ("closed", "revised")

    return check


def wait_for_history(ctx: Context, end: datetime, symbols=tuple(HISTORY), token: str | None = None) -> None:
    """Waits until the last 1m and 5m bars of the history are closed and stored, so that the
    tests compare the page with an API that no longer changes on its own."""
    for symbol in symbols:
        for interval, minutes in (("1m", 1), ("5m", 5)):
            last = end - timedelta(minutes=minutes)
            wait_until(
                f"{symbol}'s last {interval} bar of history to close",
                lambda: parse_time(ctx.bars(symbol, interval, token, limit=1)[-1]["timestamp_utc"]) == last,
                timeout=BAR_CLOSE_WAIT_S,
            )


# ---- tests ----------------------------------------------------------------------------


def the_page_loads_with_no_console_error_and_no_external_request(ctx: Context) -> None:
    drain_logs(ctx.driver)
    ctx.open("/chart?symbol=AAPL&interval=1m")
    wait_until("the candles", lambda: int(ctx.driver.find_element("id", "chart").get_attribute("data-bars")) > 0)
    time.sleep(1)  # late console errors (a failed socket, an asset) would come now
    logs = drain_logs(ctx.driver)
    errors = [e for e in logs.console if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, f"console errors: {errors}"
    foreign = [u for u in logs.requests if not (u.startswith(ctx.app.base + "/") or u.startswith(ctx.app.ws_base + "/") or u.startswith("data:"))]
    assert not foreign, f"requests outside the instance: {foreign}"
    asked = {u.split("?")[0].removeprefix(ctx.app.base).removeprefix(ctx.app.ws_base) for u in logs.requests}
    for path in ("/chart/assets/chart.js", "/chart/assets/lightweight-charts.standalone.production.js", "/ws/bars/AAPL", "/ws/analytics/AAPL", "/ws/prices/AAPL"):
        assert path in asked, f"the page never asked for {path}: {sorted(asked)}"
    status, index = ctx.app.get("/")
    assert status == 200 and "/chart" in str(index), f"/ links no chart: {index}"


def the_legend_shows_the_newest_bar_as_the_api_answers_it(ctx: Context) -> None:
    wait_until("the legend to show the API's newest AAPL 1m bar", newest_equals_api(ctx, "AAPL", "1m"), timeout=BAR_CLOSE_WAIT_S)
    legend = ctx.legend()
    assert set(legend["ind"]) >= {"sma_20", "vwap", "rsi_14", "macd"}, f"default indicators missing from the legend: {legend['ind']}"


def warm_up_is_a_gap_exactly_where_the_api_says_null(ctx: Context) -> None:
    ctx.open("/chart?symbol=MSFT&interval=1m")
    ctx.show_groups(set(GROUPS))
    bars = ctx.bars("MSFT", "1m")
    assert len(bars) < PAGE_BARS, "MSFT's whole history should fit the first page"
    rows = ctx.analytics("MSFT", "1m")
    def every_bar():
        drawn = ctx.driver.execute_script("return tickflowChart.seriesData('candles')")
        times = [datetime.fromtimestamp(t, timezone.utc) for t, _ in drawn]
        assert times == [parse_time(b["timestamp_utc"]) for b in bars], f"{len(drawn)} drawn for {len(bars)} bars; last drawn {times[-2:]}, last stored {[b['timestamp_utc'] for b in bars[-2:]]}"
        return drawn

    candles = wait_until("every MSFT bar on the chart", every_bar)
    for (t, ohlc), bar in zip(candles, bars):
        assert datetime.fromtimestamp(t, timezone.utc) == parse_time(bar["timestamp_utc"]), (t, bar)
        assert ohlc == [bar["open"], bar["high"], bar["low"], bar["close"]], (ohlc, bar)
    gaps_seen = set()
    for name in ALL_INDICATORS:
        points = ctx.driver.execute_script("return tickflowChart.seriesData(arguments[0])", name)
        assert points is not None, f"{name} is not drawn with every group shown"
        assert len(points) == len(bars), f"{name}: {len(points)} points for {len(bars)} bars"
        for t, value in points:
            api = rows[datetime.fromtimestamp(t, timezone.utc)].get(name)
            if api is None:
                assert value is None, f"{name} at {t}: drawn {value}, the API says null"
                gaps_seen.add(name)
            else:
                assert value == api, f"{name} at {t}: drawn {value}, the API says {api}"
    assert {"sma_20", "sma_50", "sma_200", "macd_signal", "rsi_14"} <= gaps_seen, f"warm-up gaps expected, saw them in {sorted(gaps_seen)}"
    panes = ctx.driver.execute_script("return tickflowChart.panes()")
    assert len(panes) == 4 and "rsi_14" in panes[1] and "macd_hist" in panes[2] and "stoch_k" in panes[3], panes
    ctx.show_groups({"sma", "vwap", "rsi", "macd"})


def the_legend_follows_the_cursor_and_returns_to_the_newest_bar(ctx: Context) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ctx.open("/chart?symbol=AAPL&interval=1m")
    chart = ctx.driver.find_element("id", "chart")
    ActionChains(ctx.driver).move_to_element_with_offset(chart, -chart.size["width"] // 4, -chart.size["height"] // 4).perform()
    bars = {parse_time(b["timestamp_utc"]): b for b in ctx.bars("AAPL", "1m")}
    newest = max(bars)
    rows = ctx.analytics("AAPL", "1m")
    hovered = wait_until("the legend to show the hovered bar", lambda: (lambda l: l if l["time"] and parse_time(l["time"]) != newest else None)(ctx.legend()))
    t = parse_time(hovered["time"])
    assert_legend_is_bar(hovered, bars[t], rows.get(t), "hovered bar")
    ActionChains(ctx.driver).move_to_element(ctx.driver.find_element("id", "tape-area")).perform()
    wait_until("the legend to return to the newest bar", lambda: parse_time(ctx.legend()["time"]) == newest)


def scrolling_left_pages_back_through_the_whole_history(ctx: Context) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    bars = ctx.bars("AAPL", "1m")
    assert len(bars) > PAGE_BARS, f"AAPL should need more than one page: {len(bars)} bars"
    ctx.open("/chart?symbol=AAPL&interval=1m")
    chart = ctx.driver.find_element("id", "chart")
    count = lambda: int(chart.get_attribute("data-bars"))  # noqa: E731
    assert count() <= PAGE_BARS, f"the first load holds {count()} bars"
    for _ in range(12):
        if count() >= len(bars) or chart.get_attribute("data-exhausted") == "true":
            break
        # A drag to the right, in steps as a hand makes it, scrolls towards older bars.
        drag = ActionChains(ctx.driver).move_to_element(chart).click_and_hold()
        for _ in range(5):
            drag = drag.move_by_offset(100, 0)
        drag.release().perform()
        time.sleep(0.7)
    assert count() == len(bars), f"after scrolling left the chart holds {count()} of {len(bars)} bars (exhausted: {chart.get_attribute('data-exhausted')})"
    candles = ctx.driver.execute_script("return tickflowChart.seriesData('candles')")
    assert [datetime.fromtimestamp(t, timezone.utc) for t, _ in candles] == [parse_time(b["timestamp_utc"]) for b in bars]
    assert [c for _, c in candles] == [[b["open"], b["high"], b["low"], b["close"]] for b in bars]
    # The older pages brought their indicators, warm-up gaps included.
    rows = ctx.analytics("AAPL", "1m")
    sma = ctx.driver.execute_script("return tickflowChart.seriesData('sma_20')")
    assert [v for _, v in sma] == [rows[datetime.fromtimestamp(t, timezone.utc)]["sma_20"] for t, _ in sma]
    assert sma[0][1] is None, "the oldest bars are sma_20's warm-up"


def wait_for_room_in_the_minute() -> None:
    """Waits until a trade made now leaves its 1-minute bar open for at least 25 s."""
    second = datetime.now(timezone.utc).second
    if second > 30:
        time.sleep(61 - second)


def a_trade_moves_the_forming_candle_and_reaches_the_tape(ctx: Context) -> None:
    ctx.open("/chart?symbol=AAPL&interval=1m")
    closes = [b["close"] for b in ctx.bars("AAPL", "1m")]
    price = round(max(closes) * 1.02, 2)
    wait_for_room_in_the_minute()
    now = datetime.now(timezone.utc)
    ctx.app.replay([("AAPL", iso(now), price, 700.0)], ctx.workdir, "forming")
    start = now.replace(second=0, microsecond=0)
    ctx.forming = {"start": start, "price": price, "closes": closes}
    legend = wait_until(
        "the forming candle to show the trade",
        lambda: (lambda l: l if l["status"] == "in_progress" and l["time"] and parse_time(l["time"]) == start and same(l["fields"]["close"], price) else None)(ctx.legend()),
    )
    assert same(legend["fields"]["high"], price) and same(legend["fields"]["volume"], 700.0), legend
    candles = ctx.driver.execute_script("return tickflowChart.seriesData('candles')")
    assert datetime.fromtimestamp(candles[-1][0], timezone.utc) == start and candles[-1][1][3] == price, candles[-1]
    tape_price = "const li = document.querySelector('#tape li'); return li ? li.dataset.price : ''"
    wait_until("the trade in the tape", lambda: same(ctx.driver.execute_script(tape_price), price))


def the_forming_bar_carries_its_in_progress_indicator_values(ctx: Context) -> None:
    """/ws/bars in-progress messages carry the indicators computed on the forming bar
    (without committing it): the legend and the chart show them, marked provisional."""
    assert ctx.forming, "needs the forming-candle test first"
    start = ctx.forming["start"]
    closes = ctx.forming["closes"] + [ctx.forming["price"]]
    want = sum(closes[-20:]) / 20

    def forming_sma():
        legend = ctx.legend()
        assert legend["status"] == "in_progress" and parse_time(legend["time"]) == start, f"legend: {legend}"
        assert legend["ind"].get("sma_20"), f"no in-progress sma_20 in the legend: {legend['ind']}"
        return legend

    legend = wait_until("in-progress indicator values on the forming bar", forming_sma, timeout=10)
    assert legend["provisional"]["sma_20"] == "true", legend
    got = float(legend["ind"]["sma_20"])
    assert math.isclose(got, want, rel_tol=1e-9), f"forming sma_20 {got} != {want}"
    drawn = ctx.driver.execute_script("return tickflowChart.seriesData('sma_20')")[-1]
    assert datetime.fromtimestamp(drawn[0], timezone.utc) == start and drawn[1] == got, f"drawn {drawn}"


def a_late_trade_revises_the_closed_candle(ctx: Context) -> None:
    """The bar closes; the next one opens; a late trade into the closed bar revises it in
    place (a bar that is no longer the newest), as the API stores it."""
    assert ctx.forming, "needs the forming-candle test first"
    start, price = ctx.forming["start"], ctx.forming["price"]
    wait_until(
        "the forming bar to close",
        lambda: (lambda l: l["status"] == "closed" and parse_time(l["time"]) == start)(ctx.legend()),
        timeout=BAR_CLOSE_WAIT_S,
    )
    # The closed bar's committed indicators arrive on /ws/analytics and equal the API's.
    wait_until("the closed bar's indicators from /ws/analytics", newest_equals_api(ctx, "AAPL", "1m"))
    assert ctx.legend()["provisional"].get("sma_20") == "false"
    now = datetime.now(timezone.utc)
    ctx.app.replay([("AAPL", iso(now), price, 100.0)], ctx.workdir, "next")
    following = now.replace(second=0, microsecond=0)
    assert following > start
    wait_until(
        "the next bar to form",
        lambda: (lambda l: l["status"] == "in_progress" and parse_time(l["time"]) == following)(ctx.legend()),
    )
    late = round(price * 1.01, 2)
    ctx.app.replay([("AAPL", iso(start + timedelta(seconds=30)), late, 300.0)], ctx.workdir, "late")
    stored = wait_until(
        "the API to store the revision",
        lambda: (lambda b: b if b["revision"] >= 1 and b["high"] == late else None)(
            {parse_time(b["timestamp_utc"]): b for b in ctx.bars("AAPL", "1m", limit=3)}[start]
        ),
    )
    assert stored["close"] == late and stored["volume"] == 1000.0, stored
    want = [stored["open"], stored["high"], stored["low"], stored["close"]]

    def redrawn():
        candles = ctx.driver.execute_script("return tickflowChart.seriesData('candles')")
        at_start = [c for t, c in candles if datetime.fromtimestamp(t, timezone.utc) == start]
        assert at_start == [want], f"candle at {start}: {at_start}, want {want}; last three: {candles[-3:]}"
        return True

    wait_until("the closed candle to be redrawn", redrawn)
    legend = ctx.legend()
    assert legend["status"] == "in_progress" and parse_time(legend["time"]) == following, "the forming bar stays the newest"


def switching_symbol_and_interval_reloads_the_chart(ctx: Context) -> None:
    from selenium.webdriver.support.select import Select

    ctx.open("/chart?symbol=AAPL&interval=1m")
    drain_logs(ctx.driver)
    Select(ctx.driver.find_element("id", "symbol-select")).select_by_value("MSFT")
    ctx.wait_ready()
    wait_until("the legend to show MSFT's newest 1m bar", newest_equals_api(ctx, "MSFT", "1m"))
    assert "symbol=MSFT" in ctx.driver.current_url, ctx.driver.current_url
    assert ctx.driver.find_elements("css selector", "#tape li") == [], "the AAPL tape was kept"
    Select(ctx.driver.find_element("id", "interval-select")).select_by_value("5m")
    ctx.wait_ready()
    wait_until("the legend to show MSFT's newest 5m bar", newest_equals_api(ctx, "MSFT", "5m"))
    assert "interval=5m" in ctx.driver.current_url, ctx.driver.current_url
    candles = ctx.driver.execute_script("return tickflowChart.seriesData('candles')")
    bars = ctx.bars("MSFT", "5m")
    assert [datetime.fromtimestamp(t, timezone.utc) for t, _ in candles] == [parse_time(b["timestamp_utc"]) for b in bars]
    sockets = [u for u in drain_logs(ctx.driver).requests if u.startswith(ctx.app.ws_base)]
    for path in ("/ws/bars/MSFT?interval=1m", "/ws/bars/MSFT?interval=5m", "/ws/analytics/MSFT?interval=5m", "/ws/prices/MSFT"):
        assert any(u.removeprefix(ctx.app.ws_base).startswith(path) for u in sockets), f"no WebSocket {path}: {sockets}"


def the_token_flow_works_with_api_token_set(binary: str, workdir: Path) -> None:
    token = secrets.token_urlsafe(24)
    app = Tickflow(binary, workdir, "serve-token", {"API_TOKEN": token})
    drivers = []
    try:
        rows, end = history_rows(datetime.now(timezone.utc))
        app.replay([r for r in rows if r[0] == "AAPL"][-240:], workdir, "token-history")
        ctx = Context(app, workdir)
        wait_for_history(ctx, end, ("AAPL",), token)
        status, _ = app.get("/api/v2/intraday/prices/AAPL?interval=1m")
        assert status == 401, f"the API answered {status} without the token"
        status, _ = app.get("/chart")
        assert status == 200, f"/chart answered {status} without the token"

        # The token from the address: taken into sessionStorage and off the address bar.
        first = browser(workdir)
        drivers.append(first)
        first.get(f"{app.base}/chart?symbol=AAPL&interval=1m&token={token}")
        ctx.wait_ready(first)
        assert "token" not in first.current_url, first.current_url
        assert first.execute_script("return sessionStorage.getItem('tickflow.token')") == token
        wait_until("the legend with the token", newest_equals_api(ctx, "AAPL", "1m", token, first), timeout=BAR_CLOSE_WAIT_S)
        logs = [drain_logs(first)]

        # No token: the page asks; a wrong one is refused, the right one loads.
        second = browser(workdir)
        drivers.append(second)
        second.get(f"{app.base}/chart?symbol=AAPL&interval=1m")
        wait_until("the token form", lambda: second.find_element("id", "token-form").is_displayed())
        assert second.find_element("id", "status").get_attribute("data-state") == "auth"
        second.find_element("id", "token-input").send_keys("not-" + token)
        second.find_element("id", "token-submit").click()
        wait_until("the wrong token to be refused", lambda: second.find_element("id", "token-message").text == "token refused")
        second.find_element("id", "token-input").send_keys(token)
        second.find_element("id", "token-submit").click()
        ctx.wait_ready(second)
        wait_until("the legend after the prompt", newest_equals_api(ctx, "AAPL", "1m", token, second))
        logs.append(drain_logs(second))

        for log in logs:
            unexpected = [e for e in log.console if e["level"] == "SEVERE" and "status of 401" not in e["message"]]
            assert not unexpected, f"console errors: {unexpected}"
            assert not any(token in e["message"] for e in log.console), "the token reached the console"
            for url in log.requests:
                assert url.startswith(app.base + "/") or url.startswith(app.ws_base + "/") or url.startswith("data:"), url
                # Only the address the user opened and the WebSockets (browsers cannot set
                # their headers) carry it; REST calls send it as a header.
                assert token not in url or url.startswith((app.ws_base + "/ws/", app.base + "/chart?")), f"token in {url}"
        assert token not in app.log(), "the token reached the server log"
    finally:
        for d in drivers:
            d.quit()
        app.stop()


def screenshot(ctx: Context, path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ctx.driver.set_window_size(1400, 900)
    # A few trades now: a forming candle and a tape.
    last = ctx.bars("AAPL", "1m", limit=1)[-1]["close"]
    now = datetime.now(timezone.utc)
    ctx.open("/chart?symbol=AAPL&interval=1m")
    rng = random.Random(3)
    trades = [("AAPL", iso(now - timedelta(seconds=8 - k)), round(last * (1 + rng.gauss(0, 0.001)), 2), float(rng.choice([100, 200, 500]))) for k in range(8)]
    ctx.app.replay(trades, ctx.workdir, "screenshot")
    wait_until("the forming candle", lambda: ctx.legend()["status"] == "in_progress")
    ctx.show_groups({"sma", "bb", "vwap", "rsi", "macd"})
    chart = ctx.driver.find_element("id", "chart")
    ActionChains(ctx.driver).move_to_element_with_offset(chart, chart.size["width"] // 6, -chart.size["height"] // 5).perform()
    time.sleep(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx.driver.save_screenshot(str(path))
    ctx.show_groups({"sma", "vwap", "rsi", "macd"})
    print(f"screenshot: {path}", flush=True)


TESTS = [
    the_page_loads_with_no_console_error_and_no_external_request,
    the_legend_shows_the_newest_bar_as_the_api_answers_it,
    warm_up_is_a_gap_exactly_where_the_api_says_null,
    the_legend_follows_the_cursor_and_returns_to_the_newest_bar,
    scrolling_left_pages_back_through_the_whole_history,
    a_trade_moves_the_forming_candle_and_reaches_the_tape,
    the_forming_bar_carries_its_in_progress_indicator_values,
    a_late_trade_revises_the_closed_candle,
    switching_symbol_and_interval_reloads_the_chart,
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the tickflow binary")
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the chart here")
    parser.add_argument("--screenshot-only", action="store_true", help="only make the screenshot")
    parser.add_argument("--only", nargs="*", help="run only these tests")
    parser.add_argument("--keep-logs", action="store_true", help="keep the instance and browser logs")
    args = parser.parse_args()

    runner = harness.Runner()
    workdir = harness.fresh_workdir()
    wanted = lambda name: not args.only or name in args.only  # noqa: E731
    app = driver = None
    try:
        app = Tickflow(args.bin, workdir, "serve")
        rows, end = history_rows(datetime.now(timezone.utc))
        app.replay(rows, workdir, "history")
        driver = browser(workdir)
        ctx = Context(app, workdir, driver)
        wait_for_history(ctx, end)
        if not args.screenshot_only:
            for test in TESTS:
                if wanted(test.__name__):
                    runner.run(test.__name__, test, ctx)
        if args.screenshot:
            runner.run("screenshot", screenshot, ctx, args.screenshot)
    except Exception as e:
        runner.fail("setup", f"{type(e).__name__}: {e}")
    finally:
        if driver is not None:
            driver.quit()
        if app is not None:
            app.stop()
    if not args.screenshot_only and wanted("the_token_flow_works_with_api_token_set"):
        runner.run("the_token_flow_works_with_api_token_set", the_token_flow_works_with_api_token_set, args.bin, workdir)
    harness.remove_workdir(workdir, keep=args.keep_logs or runner.failed > 0)
    print(runner.summary(), flush=True)
    return 1 if runner.failed else 0


if __name__ == "__main__":
    sys.exit(main())
