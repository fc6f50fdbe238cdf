// tickflow chart page: candles, volume, indicator overlays and panes from the REST API, paged
// backwards as the user scrolls left; closed bars, revisions, the forming bar (with its
// in-progress indicator values) and the trade tape from the WebSockets.
//
// Every request goes to the origin that served the page (the Content-Security-Policy allows
// nothing else). The API token, when one is needed, lives in sessionStorage only: it is sent
// in the Authorization header of REST calls and as `?token=` on WebSockets (browsers cannot
// set WebSocket headers), and never logged or shown.
//
// The DOM is the page's test surface: `#legend` (data-symbol, data-interval, data-time,
// data-status; `[data-field]` and `.ind[data-name]` children with `data-value`), `#status`
// and `#live` (`data-state`), `#chart` (`data-bars`, `data-exhausted`) and `#tape` items
// (`data-price`, `data-volume`, `data-time`). `window.tickflowChart` reads back what the chart
// library was given, for checks that the drawing matches the API.
(function () {
  'use strict';

  const LWC = window.LightweightCharts;

  /** Bars per history request (the analytics list routes allow at most 1000). */
  const PAGE_BARS = 300;
  /** Older bars are fetched when fewer than this many are left of the visible range. */
  const PAGE_MARGIN_BARS = 20;
  /** Trades kept in the tape. */
  const TAPE_LENGTH = 50;
  /** First WebSocket reconnect delay; it doubles up to the maximum while reconnects fail. */
  const RECONNECT_FIRST_MS = 1000;
  const RECONNECT_MAX_MS = 30000;
  /** sessionStorage key of the API token (per tab, gone when the tab closes). */
  const TOKEN_KEY = 'tickflow.token';
  /** localStorage key of the indicator groups shown. */
  const GROUPS_KEY = 'tickflow.chart.groups';
  /** Intervals offered when the instance does not say which it builds. */
  const ALL_INTERVALS = ['1m', '5m', '15m', '30m', '1h', '4h', '1d'];
  const DEFAULT_INTERVAL = '1m';
  const DEFAULT_GROUPS = ['sma', 'vwap', 'rsi', 'macd'];

  /** Indicator groups a user can show: overlays on the price pane, or a pane of their own. */
  const GROUPS = {
    sma: { pane: false, lines: [['sma_20', '#f0b90b'], ['sma_50', '#42a5f5'], ['sma_200', '#ab47bc']] },
    ema: { pane: false, lines: [['ema_12', '#ffa726'], ['ema_26', '#26c6da']] },
    bb: { pane: false, lines: [['bb_upper', '#7e57c2'], ['bb_middle', '#9575cd'], ['bb_lower', '#7e57c2']] },
    keltner: { pane: false, lines: [['keltner_upper', '#66bb6a'], ['keltner_lower', '#66bb6a']] },
    vwap: { pane: false, lines: [['vwap', '#ec407a']] },
    rsi: { pane: true, lines: [['rsi_14', '#ab47bc']], levels: [30, 70] },
    macd: { pane: true, lines: [['macd', '#42a5f5'], ['macd_signal', '#ffa726']], histogram: 'macd_hist' },
    stoch: { pane: true, lines: [['stoch_k', '#42a5f5'], ['stoch_d', '#ffa726']], levels: [20, 80] },
  };
  const UP = '#26a69a';
  const DOWN = '#ef5350';

  /** A 401: the page needs (another) token. */
  class AuthError extends Error {}

  const el = (id) => document.getElementById(id);

  const state = {
    token: null,
    symbol: '',
    interval: DEFAULT_INTERVAL,
    /** Indicator names this instance computes (from /api/v2/meta), or null when unknown. */
    known: null,
    /** Bars by chart time (UTC seconds of the bar start). */
    bars: new Map(),
    /** Chart times, ascending. */
    times: [],
    /** Indicator values that arrived before their bar, by chart time. */
    pendingInd: new Map(),
    /** The oldest stored row: its chart time and its own timestamp (what `before` takes). */
    cursor: null,
    exhausted: false,
    loadingOlder: false,
    /** Incremented on every reload: answers and messages of an older load are dropped. */
    generation: 0,
    ready: false,
    sockets: [],
    hoverTime: null,
    groups: new Set(DEFAULT_GROUPS),
    lastTradePrice: null,
  };

  let chart = null;
  let candles = null;
  let volume = null;
  /** Indicator name → its series, for the groups shown. */
  const indicatorSeries = new Map();

  // ---- token -------------------------------------------------------------------------

  /** Takes `?token=` off the address bar into sessionStorage; answers the stored token. */
  function takeToken() {
    const url = new URL(window.location.href);
    const given = url.searchParams.get('token');
    if (given !== null) {
      if (given !== '') sessionStorage.setItem(TOKEN_KEY, given);
      url.searchParams.delete('token');
      window.history.replaceState(null, '', url.pathname + url.search + url.hash);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function askToken(refused) {
    setStatus('auth', 'API token needed');
    const form = el('token-form');
    form.hidden = false;
    el('token-message').textContent = refused ? 'token refused' : '';
    el('token-input').value = '';
    el('token-input').focus();
  }

  function onTokenSubmit(event) {
    event.preventDefault();
    const value = el('token-input').value.trim();
    if (!value) return;
    state.token = value;
    sessionStorage.setItem(TOKEN_KEY, value);
    el('token-form').hidden = true;
    start();
  }

  // ---- API ---------------------------------------------------------------------------

  async function api(path) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    const res = await fetch(path, { headers, cache: 'no-store', credentials: 'same-origin' });
    if (res.status === 401) throw new AuthError('unauthorised');
    if (!res.ok) {
      const err = new Error('HTTP ' + res.status + ' from ' + path.split('?')[0]);
      err.status = res.status;
      throw err;
    }
    return res.json();
  }

  function wsUrl(path) {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sep = path.includes('?') ? '&' : '?';
    const auth = state.token ? sep + 'token=' + encodeURIComponent(state.token) : '';
    return scheme + '//' + window.location.host + path + auth;
  }

  /**
   * Which catalogue routes this instance serves. `/api/v2/symbols` and `/api/v2/meta` are
   * newer than some instances: their OpenAPI document says so, which avoids probing with a
   * request that fails (and shows as an error in the browser console).
   */
  async function catalogueRoutes() {
    try {
      const res = await fetch('/openapi.json', { cache: 'no-store' });
      if (!res.ok) return { symbols: true, meta: true };
      const paths = (await res.json()).paths || {};
      return { symbols: '/api/v2/symbols' in paths, meta: '/api/v2/meta' in paths };
    } catch (_) {
      return { symbols: true, meta: true };
    }
  }

  /** Fills the symbol and interval pickers. */
  async function loadCatalogue() {
    const routes = await catalogueRoutes();
    let symbols = [];
    let intervals = null;
    if (routes.meta) {
      const meta = await api('/api/v2/meta');
      if (Array.isArray(meta.intervals) && meta.intervals.length) intervals = meta.intervals;
      if (Array.isArray(meta.indicators)) {
        state.known = new Set(meta.indicators.map((i) => (typeof i === 'string' ? i : i.name)));
      }
    }
    if (routes.symbols) {
      const list = await api('/api/v2/symbols');
      symbols = (list.symbols || []).map((s) => s.symbol);
    } else {
      const list = await api('/api/v2/realtime/symbols');
      symbols = (list.symbols || []).map((s) => s.symbol);
    }
    fillSelect(el('symbol-select'), symbols, state.symbol);
    fillSelect(el('interval-select'), intervals || ALL_INTERVALS, state.interval);
  }

  function fillSelect(select, values, current) {
    const all = values.slice();
    if (current && !all.includes(current)) all.unshift(current);
    select.replaceChildren(...all.map((v) => {
      const option = document.createElement('option');
      option.value = v;
      option.textContent = v;
      return option;
    }));
    if (current) select.value = current;
  }

  // ---- history -----------------------------------------------------------------------

  function indicatorNames() {
    const names = [];
    for (const group of Object.values(GROUPS)) {
      for (const [name] of group.lines) names.push(name);
      if (group.histogram) names.push(group.histogram);
    }
    return state.known ? names.filter((n) => state.known.has(n)) : names;
  }

  const isDaily = () => state.interval === '1d';

  /** One page of bars and their indicators, `before` exclusive (newest page when null). */
  async function fetchPage(before) {
    const base = isDaily() ? '/api/v2/historical' : '/api/v2/intraday';
    const symbol = encodeURIComponent(state.symbol);
    const query = new URLSearchParams();
    if (!isDaily()) query.set('interval', state.interval);
    query.set('limit', String(PAGE_BARS));
    if (before) query.set('before', before);
    const withIndicators = new URLSearchParams(query);
    withIndicators.set('indicators', indicatorNames().join(','));
    const [prices, analytics] = await Promise.all([
      api(base + '/prices/' + symbol + '?' + query),
      api(base + '/analytics/' + symbol + '?' + withIndicators),
    ]);
    return { prices: prices.data || [], analytics: analytics.data || [] };
  }

  /** Chart time of an API row or message: UTC seconds of the bar start. */
  function chartTime(text) {
    return Math.round(Date.parse(text) / 1000);
  }

  function rowStart(row) {
    return row.timestamp_utc || row.timestamp;
  }

  /** Merges a page; answers how many bars it added before the oldest one held until then. */
  function mergePage(page) {
    const before = state.cursor ? state.cursor.t : Infinity;
    let addedOlder = 0;
    for (const row of page.prices) {
      const t = chartTime(rowStart(row));
      if (!Number.isFinite(t)) continue;
      // `before` takes the row's own timestamp: an instant, or a date for daily bars.
      if (state.cursor === null || t < state.cursor.t) state.cursor = { t, key: row.timestamp };
      const rec = state.bars.get(t);
      // A live revision newer than the stored row wins; an in-progress bar never does.
      if (rec && rec.status !== 'in_progress' && (rec.revision || 0) > (row.revision || 0)) continue;
      if (!rec && t < before) addedOlder += 1;
      upsert(t, {
        ts: rowStart(row), open: row.open, high: row.high, low: row.low, close: row.close,
        volume: row.volume, trades: row.trades, revision: row.revision || 0,
        status: (row.revision || 0) > 0 ? 'revised' : 'closed',
      });
    }
    for (const row of page.analytics) {
      const t = chartTime(rowStart(row));
      if (!Number.isFinite(t)) continue;
      const values = {};
      for (const name of indicatorNames()) values[name] = row[name] ?? null;
      setIndicators(t, values, false);
    }
    return addedOlder;
  }

  async function loadOlder() {
    if (state.loadingOlder || state.exhausted || !state.ready || state.cursor === null) return;
    const generation = state.generation;
    state.loadingOlder = true;
    try {
      const page = await fetchPage(state.cursor.key);
      if (generation !== state.generation) return;
      const range = chart.timeScale().getVisibleLogicalRange();
      const added = mergePage(page);
      if (added === 0) {
        state.exhausted = true;
      } else {
        renderAll();
        if (range) {
          chart.timeScale().setVisibleLogicalRange({ from: range.from + added, to: range.to + added });
        }
      }
      el('chart').dataset.exhausted = String(state.exhausted);
    } catch (err) {
      if (generation === state.generation) fail(err);
    } finally {
      if (generation === state.generation) state.loadingOlder = false;
    }
  }

  // ---- bars --------------------------------------------------------------------------

  function insertTime(t) {
    const times = state.times;
    if (times.length === 0 || t > times[times.length - 1]) {
      times.push(t);
      return;
    }
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid] < t) lo = mid + 1; else hi = mid;
    }
    times.splice(lo, 0, t);
  }

  /** Creates or updates the bar at `t`; answers whether it is new. */
  function upsert(t, fields) {
    let rec = state.bars.get(t);
    const isNew = !rec;
    if (isNew) {
      rec = { time: t, ind: null, provisional: false, revision: 0 };
      state.bars.set(t, rec);
      insertTime(t);
    }
    Object.assign(rec, fields);
    const pending = state.pendingInd.get(t);
    if (pending) {
      state.pendingInd.delete(t);
      rec.ind = pending;
      rec.provisional = false;
    }
    return isNew;
  }

  function setIndicators(t, values, provisional) {
    const rec = state.bars.get(t);
    if (!rec) {
      if (!provisional) state.pendingInd.set(t, values);
      return false;
    }
    rec.ind = values;
    rec.provisional = provisional;
    return true;
  }

  // ---- drawing -----------------------------------------------------------------------

  function candlePoint(rec) {
    return { time: rec.time, open: rec.open, high: rec.high, low: rec.low, close: rec.close };
  }

  function volumePoint(rec) {
    return { time: rec.time, value: rec.volume, color: rec.close >= rec.open ? UP + '80' : DOWN + '80' };
  }

  /** A point of an indicator series: a value, or whitespace (a gap) where the API says null. */
  function indicatorPoint(rec, name) {
    const value = rec.ind ? rec.ind[name] : undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) return { time: rec.time };
    if (name === 'macd_hist') return { time: rec.time, value, color: value >= 0 ? UP : DOWN };
    return { time: rec.time, value };
  }

  function pricePrecision() {
    const last = state.bars.get(state.times[state.times.length - 1]);
    const price = last ? Math.abs(last.close) : 100;
    if (price >= 1) return 2;
    return Math.min(10, 2 - Math.floor(Math.log10(price)) + 2);
  }

  function renderAll() {
    const recs = state.times.map((t) => state.bars.get(t));
    const precision = pricePrecision();
    candles.applyOptions({ priceFormat: { type: 'price', precision, minMove: Math.pow(10, -precision) } });
    candles.setData(recs.map(candlePoint));
    volume.setData(recs.map(volumePoint));
    for (const [name, series] of indicatorSeries) series.setData(recs.map((r) => indicatorPoint(r, name)));
    el('chart').dataset.bars = String(recs.length);
    updateLegend();
  }

  /** Draws one bar after a live message; a new bar before the newest redraws everything. */
  function drawBar(t, isNew) {
    if (!state.ready) return;
    const newest = state.times[state.times.length - 1];
    if (isNew && t !== newest) {
      renderAll();
      return;
    }
    const rec = state.bars.get(t);
    const historical = t !== newest;
    candles.update(candlePoint(rec), historical);
    volume.update(volumePoint(rec), historical);
    for (const [name, series] of indicatorSeries) series.update(indicatorPoint(rec, name), historical);
    el('chart').dataset.bars = String(state.times.length);
    updateLegend();
  }

  function buildChart() {
    chart = LWC.createChart(el('chart'), {
      autoSize: true,
      layout: {
        background: { type: 'solid', color: '#131722' },
        textColor: '#d1d4dc',
        // The licence's attribution (its NOTICE and a link to TradingView) is the page's
        // footer: the library's own logo would need an inline <style>, which the page's
        // Content-Security-Policy refuses.
        attributionLogo: false,
        panes: { separatorColor: '#2a2e39' },
      },
      grid: { vertLines: { color: '#1f2430' }, horzLines: { color: '#1f2430' } },
      rightPriceScale: { borderColor: '#2a2e39' },
      timeScale: { borderColor: '#2a2e39', timeVisible: true, secondsVisible: false, rightOffset: 4 },
      crosshair: { mode: LWC.CrosshairMode.Normal },
      localization: { timeFormatter: formatCrosshairTime },
    });
    chart.timeScale().applyOptions({ tickMarkFormatter: formatTick });
    candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderUpColor: UP, borderDownColor: DOWN,
      wickUpColor: UP, wickDownColor: DOWN,
    });
    // Room at the top for the legend, at the bottom for the volume.
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.18, bottom: 0.25 } });
    volume = chart.addSeries(LWC.HistogramSeries, {
      priceScaleId: 'volume', priceFormat: { type: 'volume' },
      lastValueVisible: false, priceLineVisible: false,
    });
    chart.priceScale('volume').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    chart.subscribeCrosshairMove(onCrosshair);
    chart.timeScale().subscribeVisibleLogicalRangeChange(onRangeChange);
  }

  /** Re-creates the indicator series of the groups shown (overlays, then one pane each). */
  function layoutIndicators() {
    for (const series of indicatorSeries.values()) chart.removeSeries(series);
    indicatorSeries.clear();
    for (let i = chart.panes().length - 1; i >= 1; i -= 1) chart.removePane(i);
    const lineOptions = (color) => ({
      color, lineWidth: 1, priceLineVisible: false, lastValueVisible: false,
      crosshairMarkerVisible: false,
    });
    let pane = 0;
    for (const [key, group] of Object.entries(GROUPS)) {
      if (!state.groups.has(key)) continue;
      const index = group.pane ? (pane += 1) : 0;
      if (group.histogram && (!state.known || state.known.has(group.histogram))) {
        const hist = chart.addSeries(LWC.HistogramSeries, {
          priceLineVisible: false, lastValueVisible: false,
        }, index);
        indicatorSeries.set(group.histogram, hist);
      }
      for (const [name, color] of group.lines) {
        if (state.known && !state.known.has(name)) continue;
        const series = chart.addSeries(LWC.LineSeries, lineOptions(color), index);
        indicatorSeries.set(name, series);
        for (const level of (group.levels || [])) {
          series.createPriceLine({ price: level, color: '#787b86', lineWidth: 1, lineStyle: LWC.LineStyle.Dashed, axisLabelVisible: false });
        }
      }
    }
    const panes = chart.panes();
    panes[0].setStretchFactor(3);
    for (let i = 1; i < panes.length; i += 1) panes[i].setStretchFactor(1);
  }

  // ---- time formats: the browser's time zone ----------------------------------------

  const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dayMonth = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
  const monthYear = new Intl.DateTimeFormat(undefined, { month: 'short', year: 'numeric' });
  const fullTime = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit',
  });
  const fullDate = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: '2-digit' });
  const tradeTime = new Intl.DateTimeFormat(undefined, {
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  });

  function formatTick(time, type) {
    const date = new Date(time * 1000);
    if (type === LWC.TickMarkType.Year || type === LWC.TickMarkType.Month) return monthYear.format(date);
    if (type === LWC.TickMarkType.DayOfMonth) return dayMonth.format(date);
    return timeOfDay.format(date);
  }

  function formatCrosshairTime(time) {
    return (isDaily() ? fullDate : fullTime).format(new Date(time * 1000));
  }

  // ---- legend ------------------------------------------------------------------------

  const volumeFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

  function formatPrice(value) {
    if (typeof value !== 'number') return '—';
    const abs = Math.abs(value);
    const digits = abs >= 1 || abs === 0 ? 2 : Math.min(10, 2 - Math.floor(Math.log10(abs)) + 2);
    return value.toFixed(digits);
  }

  function setField(span, value, text) {
    span.dataset.value = typeof value === 'number' ? String(value) : '';
    span.querySelector('b').textContent = text;
  }

  function legendBar() {
    if (state.hoverTime !== null && state.bars.has(state.hoverTime)) return state.bars.get(state.hoverTime);
    return state.bars.get(state.times[state.times.length - 1]) || null;
  }

  function updateLegend() {
    const legend = el('legend');
    const rec = legendBar();
    legend.dataset.symbol = state.symbol;
    legend.dataset.interval = state.interval;
    legend.dataset.time = rec ? rec.ts : '';
    legend.dataset.status = rec ? rec.status : '';
    el('legend-symbol').textContent = state.symbol;
    el('legend-interval').textContent = state.interval;
    el('legend-time').textContent = rec ? formatCrosshairTime(rec.time) : 'no bars yet';
    el('legend-status').textContent = rec && rec.status === 'in_progress' ? 'forming' : (rec && rec.status === 'revised' ? 'revised' : '');
    for (const span of el('legend-ohlcv').querySelectorAll('[data-field]')) {
      const field = span.dataset.field;
      const value = rec ? rec[field] : undefined;
      setField(span, value, field === 'volume'
        ? (typeof value === 'number' ? volumeFormat.format(value) : '—')
        : formatPrice(value));
    }
    const box = el('legend-indicators');
    const spans = [];
    for (const name of indicatorSeries.keys()) {
      const value = rec && rec.ind ? rec.ind[name] : undefined;
      const span = document.createElement('span');
      span.className = 'ind';
      span.dataset.name = name;
      span.dataset.value = typeof value === 'number' ? String(value) : '';
      span.dataset.provisional = String(Boolean(rec && rec.provisional));
      const label = document.createElement('i');
      label.textContent = name + ' ';
      const number = document.createElement('b');
      number.textContent = typeof value === 'number' ? formatPrice(value) : '—';
      span.append(label, number);
      spans.push(span);
    }
    box.replaceChildren(...spans);
  }

  function onCrosshair(param) {
    const inside = param && param.point && param.time !== undefined;
    state.hoverTime = inside ? param.time : null;
    updateLegend();
  }

  function onRangeChange(range) {
    if (range && range.from < PAGE_MARGIN_BARS) loadOlder();
  }

  // ---- live --------------------------------------------------------------------------

  /**
   * A WebSocket that reconnects with backoff until closed; `onReopen` runs after a drop. A
   * connection refused before its subscription is confirmed may be a token the instance no
   * longer takes (the handshake's 401 is invisible to scripts): a REST call tells.
   */
  function openSocket(path, onMessage, onReopen, generation) {
    const socket = { open: false, closed: false, delay: RECONNECT_FIRST_MS, timer: null, ws: null, dropped: false };
    const connect = () => {
      const ws = new WebSocket(wsUrl(path));
      let confirmed = false;
      socket.ws = ws;
      ws.onmessage = (event) => {
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch (_) {
          return;
        }
        if (msg.type === 'subscription') {
          confirmed = true;
          socket.open = msg.status === 'success';
          socket.delay = RECONNECT_FIRST_MS;
          updateLive();
          if (socket.dropped && socket.open) {
            socket.dropped = false;
            onReopen();
          }
          return;
        }
        onMessage(msg);
      };
      ws.onclose = () => {
        socket.open = false;
        updateLive();
        if (socket.closed) return;
        if (!confirmed) probeAuth(generation);
        socket.dropped = true;
        socket.timer = window.setTimeout(connect, socket.delay);
        socket.delay = Math.min(socket.delay * 2, RECONNECT_MAX_MS);
      };
    };
    connect();
    return socket;
  }

  /** Asks the API whether the token still works; a 401 brings the token form back. */
  async function probeAuth(generation) {
    try {
      await api('/api/v2/realtime/symbols');
    } catch (err) {
      if (err instanceof AuthError && generation === state.generation) fail(err);
    }
  }

  function closeSockets() {
    for (const socket of state.sockets) {
      socket.closed = true;
      window.clearTimeout(socket.timer);
      if (socket.ws) socket.ws.close();
    }
    state.sockets = [];
    updateLive();
  }

  function updateLive() {
    const live = el('live');
    const open = state.sockets.filter((s) => s.open).length;
    const all = state.sockets.length;
    const value = all > 0 && open === all ? 'live' : (open > 0 ? 'partial' : (all > 0 ? 'connecting' : 'offline'));
    live.dataset.state = value;
    live.textContent = value;
  }

  function sameSeries(msg) {
    return typeof msg.symbol === 'string' && msg.symbol.toUpperCase() === state.symbol;
  }

  /** `/ws/bars`: the forming bar (with its in-progress indicators), closed and revised bars. */
  function onBar(generation, msg) {
    if (generation !== state.generation || msg.type !== 'bar' || !sameSeries(msg)) return;
    const t = chartTime(msg.timestamp);
    if (!Number.isFinite(t)) return;
    const rec = state.bars.get(t);
    const status = msg.status;
    // A forming bar never replaces a closed one (a late in-progress message).
    if (status === 'in_progress' && rec && rec.status !== 'in_progress') return;
    if (status !== 'in_progress' && rec && rec.status !== 'in_progress' && (rec.revision || 0) > (msg.revision || 0)) return;
    const isNew = upsert(t, {
      ts: msg.timestamp, open: msg.open, high: msg.high, low: msg.low, close: msg.close,
      volume: msg.volume, trades: msg.trades, revision: msg.revision || 0,
      status: status === 'in_progress' ? 'in_progress' : (status === 'revised' || (msg.revision || 0) > 0 ? 'revised' : 'closed'),
    });
    // In-progress values, unless the committed ones (from /ws/analytics) are already here.
    const committed = rec && rec.ind && !rec.provisional;
    if (status === 'in_progress' && !committed && msg.indicators && typeof msg.indicators === 'object') {
      setIndicators(t, msg.indicators, true);
    }
    drawBar(t, isNew);
  }

  /** `/ws/analytics`: the committed indicator values of a closed (or revised) bar. */
  function onAnalytics(generation, msg) {
    if (generation !== state.generation || !msg.indicators || !sameSeries(msg)) return;
    const t = chartTime(msg.timestamp);
    if (!Number.isFinite(t)) return;
    if (setIndicators(t, msg.indicators, false)) drawBar(t, false);
  }

  /** `/ws/prices`: one trade into the tape. */
  function onTrade(generation, msg) {
    if (generation !== state.generation || typeof msg.price !== 'number' || !sameSeries(msg)) return;
    const li = document.createElement('li');
    const previous = state.lastTradePrice;
    li.className = previous === null || msg.price === previous ? '' : (msg.price > previous ? 'up' : 'down');
    state.lastTradePrice = msg.price;
    li.dataset.price = String(msg.price);
    li.dataset.volume = String(msg.volume ?? '');
    li.dataset.time = String(msg.timestamp || '');
    const time = document.createElement('span');
    time.className = 'time';
    time.textContent = msg.timestamp ? tradeTime.format(new Date(msg.timestamp)) : '';
    const price = document.createElement('span');
    price.className = 'price';
    price.textContent = formatPrice(msg.price);
    const size = document.createElement('span');
    size.className = 'size';
    size.textContent = typeof msg.volume === 'number' ? volumeFormat.format(msg.volume) : '';
    li.append(time, price, size);
    const tape = el('tape');
    tape.prepend(li);
    while (tape.children.length > TAPE_LENGTH) tape.lastElementChild.remove();
  }

  /** After a dropped socket comes back: the newest page again, for bars closed meanwhile. */
  async function refreshNewest(generation) {
    try {
      const page = await fetchPage(null);
      if (generation !== state.generation) return;
      mergePage(page);
      renderAll();
    } catch (err) {
      if (generation === state.generation) fail(err);
    }
  }

  // ---- loading -----------------------------------------------------------------------

  function setStatus(value, text) {
    const status = el('status');
    status.dataset.state = value;
    status.textContent = text;
  }

  function fail(err) {
    if (err instanceof AuthError) {
      closeSockets();
      askToken(Boolean(state.token));
      return;
    }
    setStatus('error', err && err.message ? err.message : 'error');
  }

  /** Loads the chosen symbol and interval from scratch: sockets first, then the newest page. */
  async function load() {
    state.generation += 1;
    const generation = state.generation;
    closeSockets();
    Object.assign(state, {
      bars: new Map(), times: [], pendingInd: new Map(), cursor: null, exhausted: false,
      loadingOlder: false, ready: false, hoverTime: null, lastTradePrice: null,
    });
    el('tape').replaceChildren();
    el('chart').dataset.exhausted = 'false';
    setStatus('loading', 'loading…');
    renderAll();
    const url = new URL(window.location.href);
    url.searchParams.set('symbol', state.symbol);
    url.searchParams.set('interval', state.interval);
    window.history.replaceState(null, '', url.pathname + url.search);
    if (!state.symbol) {
      setStatus('ready', 'no symbols with bars yet');
      return;
    }
    const symbol = encodeURIComponent(state.symbol);
    const interval = encodeURIComponent(state.interval);
    // Subscribed before the history is read, so that no bar closing meanwhile is missed.
    state.sockets = [
      openSocket('/ws/bars/' + symbol + '?interval=' + interval, (m) => onBar(generation, m), () => refreshNewest(generation), generation),
      openSocket('/ws/analytics/' + symbol + '?interval=' + interval, (m) => onAnalytics(generation, m), () => refreshNewest(generation), generation),
      openSocket('/ws/prices/' + symbol, (m) => onTrade(generation, m), () => {}, generation),
    ];
    try {
      const page = await fetchPage(null);
      if (generation !== state.generation) return;
      mergePage(page);
      state.ready = true;
      renderAll();
      setStatus('ready', state.times.length ? state.times.length + ' bars' : 'no bars yet');
      const range = chart.timeScale().getVisibleLogicalRange();
      onRangeChange(range);
    } catch (err) {
      if (generation === state.generation) fail(err);
    }
  }

  async function start() {
    try {
      await loadCatalogue();
    } catch (err) {
      fail(err);
      return;
    }
    layoutIndicators();
    if (!state.symbol) state.symbol = el('symbol-select').value || '';
    await load();
  }

  function readUrl() {
    const url = new URL(window.location.href);
    state.symbol = (url.searchParams.get('symbol') || '').toUpperCase();
    state.interval = url.searchParams.get('interval') || DEFAULT_INTERVAL;
  }

  function setupControls() {
    try {
      const saved = JSON.parse(localStorage.getItem(GROUPS_KEY) || 'null');
      if (Array.isArray(saved)) state.groups = new Set(saved.filter((g) => g in GROUPS));
    } catch (_) {
      // A damaged saved choice falls back to the defaults.
    }
    for (const box of document.querySelectorAll('input[data-group]')) {
      box.checked = state.groups.has(box.dataset.group);
      box.addEventListener('change', () => {
        if (box.checked) state.groups.add(box.dataset.group); else state.groups.delete(box.dataset.group);
        localStorage.setItem(GROUPS_KEY, JSON.stringify([...state.groups]));
        layoutIndicators();
        renderAll();
      });
    }
    el('symbol-select').addEventListener('change', (event) => {
      state.symbol = event.target.value;
      load();
    });
    el('interval-select').addEventListener('change', (event) => {
      state.interval = event.target.value;
      load();
    });
    el('token-form').addEventListener('submit', onTokenSubmit);
  }

  /** Read-only view of what the chart library holds, for tests and the curious. */
  window.tickflowChart = {
    /**
     * One series as the chart library holds it: `[time, value]` for every bar on the chart,
     * value null where the series has no point (a gap); candles give `[open, high, low, close]`.
     */
    seriesData(name) {
      const series = name === 'candles' ? candles : (name === 'volume' ? volume : indicatorSeries.get(name));
      if (!series) return null;
      const held = new Map(series.data().map((p) => [p.time, p]));
      return candles.data().map((bar) => {
        const p = held.get(bar.time);
        if (!p) return [bar.time, null];
        if (name === 'candles') return [p.time, [p.open, p.high, p.low, p.close]];
        return [p.time, p.value === undefined ? null : p.value];
      });
    },
    /** The indicator series shown, by pane. */
    panes() {
      return chart.panes().map((pane) => pane.getSeries().map((s) => {
        for (const [name, series] of indicatorSeries) if (series === s) return name;
        return s === candles ? 'candles' : (s === volume ? 'volume' : '?');
      }));
    },
  };

  state.token = takeToken();
  readUrl();
  buildChart();
  setupControls();
  layoutIndicators();
  start();
}());
