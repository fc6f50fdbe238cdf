// Unit tests of the chart page's bar merging (assets/chart/bars.js), with Node's test runner:
//   node --test tests/browser/
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BarStore, chartTime } from '../../assets/chart/bars.js';

const NAMES = ['sma_20', 'rsi_14'];
const T0 = '2024-03-08T14:30:00Z';
const T1 = '2024-03-08T14:31:00Z';
const T2 = '2024-03-08T14:32:00Z';

function row(ts, close, revision = 0) {
  return { timestamp: ts, timestamp_utc: ts, open: close, high: close, low: close, close, volume: 10, trades: 1, revision };
}

function bar(ts, close, status, revision = 0, indicators = undefined) {
  return { type: 'bar', status, symbol: 'AAPL', timestamp: ts, open: close, high: close, low: close, close, volume: 5, trades: 1, revision, indicators };
}

test('a page is held oldest first whatever its order, and the cursor is its oldest row', () => {
  const store = new BarStore();
  const added = store.mergePage({ prices: [row(T2, 3), row(T0, 1), row(T1, 2)], analytics: [] }, NAMES);
  assert.equal(added, 3);
  assert.deepEqual(store.all().map((r) => r.close), [1, 2, 3]);
  assert.deepEqual(store.cursor, { t: chartTime(T0), key: T0 });
  assert.equal(store.newest().close, 3);
});

test('an older page counts the bars it adds before the oldest; the same page again adds none', () => {
  const store = new BarStore();
  store.mergePage({ prices: [row(T1, 2), row(T2, 3)], analytics: [] }, NAMES);
  assert.equal(store.mergePage({ prices: [row(T0, 1)], analytics: [] }, NAMES), 1);
  assert.equal(store.mergePage({ prices: [row(T0, 1), row(T1, 2)], analytics: [] }, NAMES), 0);
  assert.equal(store.size, 3);
});

test('daily rows are placed at their session start and page back by their date', () => {
  const store = new BarStore();
  const daily = { ...row('2024-03-08', 5), timestamp_utc: '2024-03-08T14:30:00Z' };
  store.mergePage({ prices: [daily], analytics: [] }, NAMES);
  assert.deepEqual(store.cursor, { t: chartTime('2024-03-08T14:30:00Z'), key: '2024-03-08' });
});

test('a forming bar never replaces a closed one; a closed bar replaces the forming one', () => {
  const store = new BarStore();
  assert.deepEqual(store.applyBar(bar(T0, 1, 'in_progress')), { t: chartTime(T0), isNew: true });
  assert.equal(store.get(chartTime(T0)).status, 'in_progress');
  assert.deepEqual(store.applyBar(bar(T0, 2, 'closed')), { t: chartTime(T0), isNew: false });
  assert.equal(store.get(chartTime(T0)).status, 'closed');
  assert.equal(store.applyBar(bar(T0, 9, 'in_progress')), null, 'a late forming message');
  assert.equal(store.get(chartTime(T0)).close, 2);
});

test('revisions replace older revisions only, live or stored', () => {
  const store = new BarStore();
  store.applyBar(bar(T0, 1, 'closed'));
  store.applyBar(bar(T0, 3, 'revised', 2));
  assert.equal(store.applyBar(bar(T0, 2, 'revised', 1)), null);
  store.mergePage({ prices: [row(T0, 1, 0)], analytics: [] }, NAMES);
  assert.equal(store.get(chartTime(T0)).close, 3, 'a stored row older than the live revision');
  assert.equal(store.get(chartTime(T0)).status, 'revised');
  store.mergePage({ prices: [row(T0, 4, 3)], analytics: [] }, NAMES);
  assert.equal(store.get(chartTime(T0)).close, 4, 'a newer stored revision');
});

test('committed indicators replace in-progress ones and are never replaced by them', () => {
  const store = new BarStore();
  store.applyBar(bar(T0, 1, 'in_progress', 0, { sma_20: 1.5, rsi_14: null }));
  assert.deepEqual([store.get(chartTime(T0)).ind, store.get(chartTime(T0)).provisional], [{ sma_20: 1.5, rsi_14: null }, true]);
  assert.equal(store.applyAnalytics({ symbol: 'AAPL', timestamp: T0, indicators: { sma_20: 1.25, rsi_14: 40 } }), chartTime(T0));
  store.applyBar(bar(T0, 1, 'in_progress', 0, { sma_20: 9, rsi_14: 9 }));
  assert.deepEqual([store.get(chartTime(T0)).ind, store.get(chartTime(T0)).provisional], [{ sma_20: 1.25, rsi_14: 40 }, false]);
});

test('indicators that arrive before their bar wait for it', () => {
  const store = new BarStore();
  assert.equal(store.applyAnalytics({ symbol: 'AAPL', timestamp: T1, indicators: { sma_20: 2 } }), null);
  store.applyBar(bar(T1, 2, 'closed'));
  assert.deepEqual(store.get(chartTime(T1)).ind, { sma_20: 2 });
});

test('stored nulls stay nulls (warm-up gaps), and names not asked for are not invented', () => {
  const store = new BarStore();
  store.mergePage({ prices: [row(T0, 1)], analytics: [{ timestamp: T0, timestamp_utc: T0, sma_20: null, rsi_14: 55, macd: 1 }] }, NAMES);
  assert.deepEqual(store.get(chartTime(T0)).ind, { sma_20: null, rsi_14: 55 });
});

test('messages and rows without a readable time are ignored', () => {
  const store = new BarStore();
  assert.equal(store.applyBar(bar('not a time', 1, 'closed')), null);
  assert.equal(store.applyAnalytics({ timestamp: 'x', indicators: {} }), null);
  assert.equal(store.mergePage({ prices: [row('garbage', 1)], analytics: [] }, NAMES), 0);
  assert.equal(store.size, 0);
});
