// The bars one chart shows, merged from REST pages and live WebSocket messages. Plain data
// (no DOM, no chart library): the merge rules are unit-tested with Node
// (tests/browser/bars.test.mjs).
//
// Rules: a bar is keyed by its start (UTC seconds). A closed or revised bar replaces an older
// revision of itself, never a newer one; a forming (in-progress) bar never replaces a closed
// one; the committed indicator values of a bar (REST, /ws/analytics) replace in-progress ones
// and are never replaced by them; values that arrive before their bar wait for it.

/** Chart time of a timestamp (RFC 3339 instant): UTC seconds. */
export function chartTime(text) {
  return Math.round(Date.parse(text) / 1000);
}

/** The instant a REST row starts at (daily rows carry their date in `timestamp`). */
export function rowStart(row) {
  return row.timestamp_utc || row.timestamp;
}

export class BarStore {
  constructor() {
    /** Bars by chart time. */
    this.bars = new Map();
    /** Chart times, ascending. */
    this.times = [];
    /** Committed indicator values that arrived before their bar, by chart time. */
    this.pending = new Map();
    /** The oldest REST row: its chart time and its own timestamp (what `before` takes). */
    this.cursor = null;
  }

  get size() {
    return this.times.length;
  }

  get(t) {
    return this.bars.get(t);
  }

  /** The newest bar, or null. */
  newest() {
    return this.size ? this.bars.get(this.times[this.size - 1]) : null;
  }

  /** The bars, oldest first. */
  all() {
    return this.times.map((t) => this.bars.get(t));
  }

  /**
   * Merges a REST page (`prices` and `analytics` rows); answers how many bars it added
   * before the oldest one held until then (how far the view shifts).
   */
  mergePage(page, indicatorNames) {
    const oldestBefore = this.cursor ? this.cursor.t : Infinity;
    let addedOlder = 0;
    for (const row of page.prices) {
      const t = chartTime(rowStart(row));
      if (!Number.isFinite(t)) continue;
      if (this.cursor === null || t < this.cursor.t) this.cursor = { t, key: row.timestamp };
      const rec = this.bars.get(t);
      const revision = row.revision || 0;
      if (rec && rec.status !== 'in_progress' && rec.revision > revision) continue;
      if (!rec && t < oldestBefore) addedOlder += 1;
      this.upsert(t, {
        ts: rowStart(row), open: row.open, high: row.high, low: row.low, close: row.close,
        volume: row.volume, trades: row.trades, revision,
        status: revision > 0 ? 'revised' : 'closed',
      });
    }
    for (const row of page.analytics) {
      const t = chartTime(rowStart(row));
      if (!Number.isFinite(t)) continue;
      const values = {};
      for (const name of indicatorNames) values[name] = row[name] ?? null;
      this.setIndicators(t, values, false);
    }
    return addedOlder;
  }

  /**
   * Applies a `/ws/bars` message (`status`: in_progress, closed or revised); answers
   * `{ t, isNew }`, or null when the message changes nothing.
   */
  applyBar(msg) {
    const t = chartTime(msg.timestamp);
    if (!Number.isFinite(t)) return null;
    const rec = this.bars.get(t);
    const forming = msg.status === 'in_progress';
    const revision = msg.revision || 0;
    if (forming && rec && rec.status !== 'in_progress') return null;
    if (!forming && rec && rec.status !== 'in_progress' && rec.revision > revision) return null;
    const isNew = this.upsert(t, {
      ts: msg.timestamp, open: msg.open, high: msg.high, low: msg.low, close: msg.close,
      volume: msg.volume, trades: msg.trades, revision,
      status: forming ? 'in_progress' : (msg.status === 'revised' || revision > 0 ? 'revised' : 'closed'),
    });
    const committed = rec && rec.ind && !rec.provisional;
    if (forming && !committed && msg.indicators && typeof msg.indicators === 'object') {
      this.setIndicators(t, msg.indicators, true);
    }
    return { t, isNew };
  }

  /** Applies a `/ws/analytics` message; answers the bar's time when it is held, else null. */
  applyAnalytics(msg) {
    if (!msg.indicators || typeof msg.indicators !== 'object') return null;
    const t = chartTime(msg.timestamp);
    if (!Number.isFinite(t)) return null;
    return this.setIndicators(t, msg.indicators, false) ? t : null;
  }

  /** Creates or updates the bar at `t`; answers whether it is new. */
  upsert(t, fields) {
    let rec = this.bars.get(t);
    const isNew = !rec;
    if (isNew) {
      rec = { time: t, ind: null, provisional: false, revision: 0 };
      this.bars.set(t, rec);
      this.insertTime(t);
    }
    Object.assign(rec, fields);
    const pending = this.pending.get(t);
    if (pending) {
      this.pending.delete(t);
      rec.ind = pending;
      rec.provisional = false;
    }
    return isNew;
  }

  /** Sets a bar's indicator values; committed ones wait for a bar not held yet. */
  setIndicators(t, values, provisional) {
    const rec = this.bars.get(t);
    if (!rec) {
      if (!provisional) this.pending.set(t, values);
      return false;
    }
    rec.ind = values;
    rec.provisional = provisional;
    return true;
  }

  insertTime(t) {
    const times = this.times;
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
}
