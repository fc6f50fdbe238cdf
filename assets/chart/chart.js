// tickflow chart page: history from the REST API (paged backwards as the user scrolls left),
// closed bars, revisions, the forming bar (with its in-progress indicator values) and the
// trade tape from the WebSockets; bars.js merges, view.js draws.
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
// library holds, for checks that the drawing matches the API.

import { BarStore } from './bars.js';
import {
  ChartView, GROUPS, formatPrice, formatTradeTime, formatVolume, groupIndicators, showLegend,
} from './view.js';

/** Bars per history request (the analytics list routes allow at most 1000). */
const PAGE_BARS = 300;
/** Older bars are fetched when fewer than this many are left of the visible range. */
const PAGE_MARGIN_BARS = 20;
/** Trades kept in the tape. */
const TAPE_LENGTH = 50;
/** First WebSocket reconnect delay; it doubles up to the maximum while reconnects fail. */
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 30000;
/** Longest the history waits for the WebSockets' subscriptions to be confirmed. */
const SUBSCRIBE_WAIT_MS = 5000;
/** sessionStorage key of the API token (per tab, gone when the tab closes). */
const TOKEN_KEY = 'tickflow.token';
/** localStorage key of the indicator groups shown. */
const GROUPS_KEY = 'tickflow.chart.groups';
/** Intervals offered when the instance does not say which it builds. */
const ALL_INTERVALS = ['1m', '5m', '15m', '30m', '1h', '4h', '1d'];
const DEFAULT_INTERVAL = '1m';
const DEFAULT_GROUPS = ['sma', 'vwap', 'rsi', 'macd'];

/** A 401: the page needs (another) token. */
class AuthError extends Error {}

const el = (id) => document.getElementById(id);

const state = {
  token: null,
  symbol: '',
  interval: DEFAULT_INTERVAL,
  /** Indicator names this instance computes (from /api/v2/meta), or null when unknown. */
  known: null,
  store: new BarStore(),
  exhausted: false,
  loadingOlder: false,
  /** Incremented on every reload: answers and messages of an older load are dropped. */
  generation: 0,
  ready: false,
  sockets: [],
  /** The bar under the cursor, or null (the legend then shows the newest). */
  hoverTime: null,
  groups: new Set(DEFAULT_GROUPS),
  lastTradePrice: null,
};

const isDaily = () => state.interval === '1d';

const view = new ChartView(el('chart'), {
  isDaily,
  onCrosshair: (time) => {
    state.hoverTime = time;
    updateLegend();
  },
  onRangeChange: (range) => {
    if (range && range.from < PAGE_MARGIN_BARS) loadOlder();
  },
});

function updateLegend() {
  const hovered = state.hoverTime === null ? null : state.store.get(state.hoverTime);
  showLegend(el('legend'), hovered || state.store.newest(), {
    symbol: state.symbol, interval: state.interval, daily: isDaily(), names: view.shown(),
  });
}

function render() {
  view.render(state.store);
  updateLegend();
  if (state.ready) showCount();
}

function showCount() {
  const count = state.store.size;
  setStatus('ready', count === 0 ? 'no bars yet' : (count === 1 ? '1 bar' : count + ' bars'));
}

// ---- token --------------------------------------------------------------------------

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
  el('token-form').hidden = false;
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

// ---- API ----------------------------------------------------------------------------

async function api(path) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const res = await fetch(path, { headers, cache: 'no-store', credentials: 'same-origin' });
  if (res.status === 401) throw new AuthError('unauthorised');
  if (!res.ok) throw new Error('HTTP ' + res.status + ' from ' + path.split('?')[0]);
  return res.json();
}

function wsUrl(path) {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const separator = path.includes('?') ? '&' : '?';
  const auth = state.token ? separator + 'token=' + encodeURIComponent(state.token) : '';
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
  let intervals = null;
  if (routes.meta) {
    const meta = await api('/api/v2/meta');
    if (Array.isArray(meta.intervals) && meta.intervals.length) intervals = meta.intervals;
    if (Array.isArray(meta.indicators)) {
      state.known = new Set(meta.indicators.map((i) => (typeof i === 'string' ? i : i.name)));
    }
  }
  const list = await api(routes.symbols ? '/api/v2/symbols' : '/api/v2/realtime/symbols');
  fillSelect(el('symbol-select'), (list.symbols || []).map((s) => s.symbol), state.symbol);
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

// ---- history ------------------------------------------------------------------------

/** One page of bars and their indicators, `before` exclusive (the newest page when null). */
async function fetchPage(before) {
  const base = isDaily() ? '/api/v2/historical' : '/api/v2/intraday';
  const symbol = encodeURIComponent(state.symbol);
  const query = new URLSearchParams();
  if (!isDaily()) query.set('interval', state.interval);
  query.set('limit', String(PAGE_BARS));
  if (before) query.set('before', before);
  const withIndicators = new URLSearchParams(query);
  withIndicators.set('indicators', groupIndicators(state.known).join(','));
  const [prices, analytics] = await Promise.all([
    api(base + '/prices/' + symbol + '?' + query),
    api(base + '/analytics/' + symbol + '?' + withIndicators),
  ]);
  return { prices: prices.data || [], analytics: analytics.data || [] };
}

async function loadOlder() {
  const store = state.store;
  if (state.loadingOlder || state.exhausted || !state.ready || store.cursor === null) return;
  const generation = state.generation;
  state.loadingOlder = true;
  try {
    const page = await fetchPage(store.cursor.key);
    if (generation !== state.generation) return;
    const range = view.visibleRange();
    const added = store.mergePage(page, groupIndicators(state.known));
    if (added === 0) {
      // Nothing older (or an instance that does not page: it answered the same rows).
      state.exhausted = true;
    } else {
      render();
      view.keepView(range, added);
    }
    el('chart').dataset.exhausted = String(state.exhausted);
  } catch (err) {
    if (generation === state.generation) fail(err);
  } finally {
    if (generation === state.generation) state.loadingOlder = false;
  }
}

/** After a dropped socket comes back: the newest page again, for bars closed meanwhile. */
async function refreshNewest(generation) {
  try {
    const page = await fetchPage(null);
    if (generation !== state.generation) return;
    state.store.mergePage(page, groupIndicators(state.known));
    render();
  } catch (err) {
    if (generation === state.generation) fail(err);
  }
}

// ---- live ---------------------------------------------------------------------------

/**
 * A WebSocket that reconnects with backoff until closed; `onReopen` runs after a drop. A
 * connection refused before its subscription is confirmed may be a token the instance no
 * longer takes (the handshake's 401 is invisible to scripts): a REST call tells.
 */
function openSocket(path, onMessage, onReopen, generation) {
  const socket = { open: false, closed: false, delay: RECONNECT_FIRST_MS, timer: null, ws: null, dropped: false };
  /** Settles at the first confirmation or the first failure to connect. */
  socket.settled = new Promise((resolve) => { socket.settle = resolve; });
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
        socket.settle();
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
      socket.settle();
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
  const open = state.sockets.filter((s) => s.open).length;
  const all = state.sockets.length;
  const value = all > 0 && open === all ? 'live' : (open > 0 ? 'partial' : (all > 0 ? 'connecting' : 'offline'));
  el('live').dataset.state = value;
  el('live').textContent = value;
}

function ours(generation, msg) {
  return generation === state.generation && typeof msg.symbol === 'string'
    && msg.symbol.toUpperCase() === state.symbol;
}

/** `/ws/bars`: the forming bar (with its in-progress indicators), closed and revised bars. */
function onBar(generation, msg) {
  if (!ours(generation, msg) || msg.type !== 'bar') return;
  const changed = state.store.applyBar(msg);
  if (!changed || !state.ready) return;
  view.draw(state.store, changed.t, changed.isNew);
  updateLegend();
  if (changed.isNew) showCount();
}

/** `/ws/analytics`: the committed indicator values of a closed (or revised) bar. */
function onAnalytics(generation, msg) {
  if (!ours(generation, msg)) return;
  const t = state.store.applyAnalytics(msg);
  if (t === null || !state.ready) return;
  view.draw(state.store, t, false);
  updateLegend();
}

/** `/ws/prices`: one trade into the tape. */
function onTrade(generation, msg) {
  if (!ours(generation, msg) || typeof msg.price !== 'number') return;
  const li = document.createElement('li');
  const previous = state.lastTradePrice;
  li.className = previous === null || msg.price === previous ? '' : (msg.price > previous ? 'up' : 'down');
  state.lastTradePrice = msg.price;
  li.dataset.price = String(msg.price);
  li.dataset.volume = String(msg.volume ?? '');
  li.dataset.time = String(msg.timestamp || '');
  const cells = [['time', formatTradeTime(msg.timestamp)], ['price', formatPrice(msg.price)], ['size', formatVolume(msg.volume)]];
  li.append(...cells.map(([name, text]) => {
    const span = document.createElement('span');
    span.className = name;
    span.textContent = text;
    return span;
  }));
  const tape = el('tape');
  tape.prepend(li);
  while (tape.children.length > TAPE_LENGTH) tape.lastElementChild.remove();
}

// ---- loading ------------------------------------------------------------------------

function setStatus(value, text) {
  el('status').dataset.state = value;
  el('status').textContent = text;
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
    store: new BarStore(), exhausted: false, loadingOlder: false, ready: false, hoverTime: null,
    lastTradePrice: null,
  });
  el('tape').replaceChildren();
  el('chart').dataset.exhausted = 'false';
  setStatus('loading', 'loading…');
  render();
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
  const reopen = () => refreshNewest(generation);
  // Subscribed before the history is read, so that a bar closing meanwhile comes on a socket
  // if it is not in the history yet.
  state.sockets = [
    openSocket('/ws/bars/' + symbol + '?interval=' + interval, (m) => onBar(generation, m), reopen, generation),
    openSocket('/ws/analytics/' + symbol + '?interval=' + interval, (m) => onAnalytics(generation, m), reopen, generation),
    openSocket('/ws/prices/' + symbol, (m) => onTrade(generation, m), () => {}, generation),
  ];
  const subscribed = Promise.all(state.sockets.map((s) => s.settled));
  await Promise.race([subscribed, new Promise((resolve) => window.setTimeout(resolve, SUBSCRIBE_WAIT_MS))]);
  if (generation !== state.generation) return;
  try {
    const page = await fetchPage(null);
    if (generation !== state.generation) return;
    state.store.mergePage(page, groupIndicators(state.known));
    state.ready = true;
    render();
    const range = view.visibleRange();
    if (range && range.from < PAGE_MARGIN_BARS) loadOlder();
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
  view.layout(state.groups, state.known);
  if (!state.symbol) state.symbol = el('symbol-select').value || '';
  await load();
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
      view.layout(state.groups, state.known);
      render();
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
  seriesData: (name) => view.seriesData(name),
  panes: () => view.panes(),
};

state.token = takeToken();
const url = new URL(window.location.href);
state.symbol = (url.searchParams.get('symbol') || '').toUpperCase();
state.interval = url.searchParams.get('interval') || DEFAULT_INTERVAL;
setupControls();
view.layout(state.groups, state.known);
start();
