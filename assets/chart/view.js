// What the chart page draws: the chart (candles, volume, indicator overlays and panes, with
// TradingView Lightweight Charts, `window.LightweightCharts`), the legend and the number and
// time formats. Reads a BarStore (bars.js); never fetches anything.

const LWC = window.LightweightCharts;

const UP = '#26a69a';
const DOWN = '#ef5350';
const GRID = '#1f2430';
const BORDER = '#2a2e39';

/** Indicator groups a user can show: overlays on the price pane, or a pane of their own. */
export const GROUPS = {
  sma: { pane: false, lines: [['sma_20', '#f0b90b'], ['sma_50', '#42a5f5'], ['sma_200', '#ab47bc']] },
  ema: { pane: false, lines: [['ema_12', '#ffa726'], ['ema_26', '#26c6da']] },
  bb: { pane: false, lines: [['bb_upper', '#7e57c2'], ['bb_middle', '#9575cd'], ['bb_lower', '#7e57c2']] },
  keltner: { pane: false, lines: [['keltner_upper', '#66bb6a'], ['keltner_lower', '#66bb6a']] },
  vwap: { pane: false, lines: [['vwap', '#ec407a']] },
  rsi: { pane: true, lines: [['rsi_14', '#ab47bc']], levels: [30, 70] },
  macd: { pane: true, lines: [['macd', '#42a5f5'], ['macd_signal', '#ffa726']], histogram: 'macd_hist' },
  stoch: { pane: true, lines: [['stoch_k', '#42a5f5'], ['stoch_d', '#ffa726']], levels: [20, 80] },
};

/** Every indicator the groups draw, or those of them `known` lists when it is given. */
export function groupIndicators(known) {
  const names = [];
  for (const group of Object.values(GROUPS)) {
    for (const [name] of group.lines) names.push(name);
    if (group.histogram) names.push(group.histogram);
  }
  return known ? names.filter((n) => known.has(n)) : names;
}

// ---- formats: the browser's locale and time zone ------------------------------------

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayMonth = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const monthYear = new Intl.DateTimeFormat(undefined, { month: 'short', year: 'numeric' });
const fullTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit',
});
const fullDate = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: '2-digit' });
const secondsFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
});
const volumeFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** Decimals that show a price's cents, or its first significant digits below 1. */
function decimals(price) {
  const abs = Math.abs(price);
  return abs >= 1 || abs === 0 ? 2 : Math.min(10, 4 - Math.floor(Math.log10(abs)));
}

export function formatPrice(value) {
  return typeof value === 'number' ? value.toFixed(decimals(value)) : '—';
}

export function formatVolume(value) {
  return typeof value === 'number' ? volumeFormat.format(value) : '—';
}

export function formatTradeTime(text) {
  return text ? secondsFormat.format(new Date(text)) : '';
}

function formatBarTime(time, daily) {
  return (daily ? fullDate : fullTime).format(new Date(time * 1000));
}

function formatTick(time, type) {
  const date = new Date(time * 1000);
  if (type === LWC.TickMarkType.Year || type === LWC.TickMarkType.Month) return monthYear.format(date);
  if (type === LWC.TickMarkType.DayOfMonth) return dayMonth.format(date);
  return timeOfDay.format(date);
}

// ---- points -------------------------------------------------------------------------

function candlePoint(rec) {
  return { time: rec.time, open: rec.open, high: rec.high, low: rec.low, close: rec.close };
}

function volumePoint(rec) {
  return { time: rec.time, value: rec.volume, color: (rec.close >= rec.open ? UP : DOWN) + '80' };
}

/** A point of an indicator series: a value, or whitespace (a gap) where the API says null. */
function indicatorPoint(rec, name) {
  const value = rec.ind ? rec.ind[name] : undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) return { time: rec.time };
  if (name === 'macd_hist') return { time: rec.time, value, color: value >= 0 ? UP : DOWN };
  return { time: rec.time, value };
}

// ---- the chart ----------------------------------------------------------------------

export class ChartView {
  /** A chart in `container`; `onCrosshair(time|null)` and `onRangeChange(logicalRange)`. */
  constructor(container, { onCrosshair, onRangeChange, isDaily }) {
    this.container = container;
    this.isDaily = isDaily;
    /** Indicator name → its series, for the groups shown. */
    this.indicators = new Map();
    this.chart = LWC.createChart(container, {
      autoSize: true,
      layout: {
        background: { type: 'solid', color: '#131722' },
        textColor: '#d1d4dc',
        // The licence's attribution (its NOTICE and a link to TradingView) is the page's
        // footer: the library's own logo would need an inline <style>, which the page's
        // Content-Security-Policy refuses.
        attributionLogo: false,
        panes: { separatorColor: BORDER },
      },
      grid: { vertLines: { color: GRID }, horzLines: { color: GRID } },
      rightPriceScale: { borderColor: BORDER },
      timeScale: { borderColor: BORDER, timeVisible: true, secondsVisible: false, rightOffset: 4 },
      crosshair: { mode: LWC.CrosshairMode.Normal },
      localization: { timeFormatter: (time) => formatBarTime(time, this.isDaily()) },
    });
    this.chart.timeScale().applyOptions({ tickMarkFormatter: formatTick });
    this.candles = this.chart.addSeries(LWC.CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderUpColor: UP, borderDownColor: DOWN,
      wickUpColor: UP, wickDownColor: DOWN,
    });
    // Room at the top for the legend, at the bottom for the volume.
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.18, bottom: 0.25 } });
    this.volume = this.chart.addSeries(LWC.HistogramSeries, {
      priceScaleId: 'volume', priceFormat: { type: 'volume' },
      lastValueVisible: false, priceLineVisible: false,
    });
    this.chart.priceScale('volume').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.chart.subscribeCrosshairMove((param) => {
      const inside = param && param.point && param.time !== undefined;
      onCrosshair(inside ? param.time : null);
    });
    this.chart.timeScale().subscribeVisibleLogicalRangeChange(onRangeChange);
  }

  /** Re-creates the indicator series of `groups` (overlays, then one pane per group). */
  layout(groups, known) {
    for (const series of this.indicators.values()) this.chart.removeSeries(series);
    this.indicators.clear();
    for (let i = this.chart.panes().length - 1; i >= 1; i -= 1) this.chart.removePane(i);
    const computed = (name) => !known || known.has(name);
    const quiet = { priceLineVisible: false, lastValueVisible: false };
    let pane = 0;
    for (const [key, group] of Object.entries(GROUPS)) {
      if (!groups.has(key)) continue;
      const index = group.pane ? (pane += 1) : 0;
      if (group.histogram && computed(group.histogram)) {
        this.indicators.set(group.histogram, this.chart.addSeries(LWC.HistogramSeries, quiet, index));
      }
      for (const [name, color] of group.lines) {
        if (!computed(name)) continue;
        const series = this.chart.addSeries(LWC.LineSeries, {
          ...quiet, color, lineWidth: 1, crosshairMarkerVisible: false,
        }, index);
        this.indicators.set(name, series);
        for (const level of group.levels || []) {
          series.createPriceLine({
            price: level, color: '#787b86', lineWidth: 1, lineStyle: LWC.LineStyle.Dashed, axisLabelVisible: false,
          });
        }
      }
    }
    const panes = this.chart.panes();
    panes[0].setStretchFactor(3);
    for (let i = 1; i < panes.length; i += 1) panes[i].setStretchFactor(1);
  }

  /** Names of the indicators drawn, in legend order. */
  shown() {
    return [...this.indicators.keys()];
  }

  /** Draws every bar of `store` again. */
  render(store) {
    const recs = store.all();
    const last = store.newest();
    const precision = decimals(last ? last.close : 100);
    this.candles.applyOptions({ priceFormat: { type: 'price', precision, minMove: Math.pow(10, -precision) } });
    this.candles.setData(recs.map(candlePoint));
    this.volume.setData(recs.map(volumePoint));
    for (const [name, series] of this.indicators) series.setData(recs.map((r) => indicatorPoint(r, name)));
    this.container.dataset.bars = String(recs.length);
  }

  /** Draws the bar at `t` after a live message; a new bar before the newest redraws all. */
  draw(store, t, isNew) {
    const newest = store.newest();
    if (isNew && newest.time !== t) {
      this.render(store);
      return;
    }
    const rec = store.get(t);
    // A revision of a bar that is no longer the newest: Lightweight Charts 5 updates it in place.
    const historical = newest.time !== t;
    this.candles.update(candlePoint(rec), historical);
    this.volume.update(volumePoint(rec), historical);
    for (const [name, series] of this.indicators) series.update(indicatorPoint(rec, name), historical);
    this.container.dataset.bars = String(store.size);
  }

  visibleRange() {
    return this.chart.timeScale().getVisibleLogicalRange();
  }

  /** Keeps the bars in view where they were after `added` bars were put before them. */
  keepView(range, added) {
    if (range) this.chart.timeScale().setVisibleLogicalRange({ from: range.from + added, to: range.to + added });
  }

  /**
   * One series as the chart library holds it: `[time, value]` for every bar on the chart,
   * value null where the series has no point (a gap); candles give `[open, high, low, close]`.
   */
  seriesData(name) {
    const series = name === 'candles' ? this.candles : (name === 'volume' ? this.volume : this.indicators.get(name));
    if (!series) return null;
    const held = new Map(series.data().map((p) => [p.time, p]));
    return this.candles.data().map((bar) => {
      const p = held.get(bar.time);
      if (!p) return [bar.time, null];
      if (name === 'candles') return [p.time, [p.open, p.high, p.low, p.close]];
      return [p.time, p.value === undefined ? null : p.value];
    });
  }

  /** The series of each pane, by name. */
  panes() {
    const names = new Map([[this.candles, 'candles'], [this.volume, 'volume']]);
    for (const [name, series] of this.indicators) names.set(series, name);
    return this.chart.panes().map((pane) => pane.getSeries().map((s) => names.get(s) || '?'));
  }
}

// ---- legend -------------------------------------------------------------------------

/**
 * Shows `rec` (or nothing) in the legend: data attributes carry the exact values (the
 * JavaScript number as text), the text the formatted ones.
 */
export function showLegend(legend, rec, { symbol, interval, daily, names }) {
  legend.dataset.symbol = symbol;
  legend.dataset.interval = interval;
  legend.dataset.time = rec ? rec.ts : '';
  legend.dataset.status = rec ? rec.status : '';
  legend.querySelector('#legend-symbol').textContent = symbol;
  legend.querySelector('#legend-interval').textContent = interval;
  legend.querySelector('#legend-time').textContent = rec ? formatBarTime(rec.time, daily) : 'no bars yet';
  const status = rec && rec.status !== 'closed' ? (rec.status === 'in_progress' ? 'forming' : rec.status) : '';
  legend.querySelector('#legend-status').textContent = status;
  for (const span of legend.querySelectorAll('[data-field]')) {
    const field = span.dataset.field;
    const value = rec ? rec[field] : undefined;
    span.dataset.value = typeof value === 'number' ? String(value) : '';
    span.querySelector('b').textContent = field === 'volume' ? formatVolume(value) : formatPrice(value);
  }
  const spans = names.map((name) => {
    const value = rec && rec.ind ? rec.ind[name] : undefined;
    const span = document.createElement('span');
    span.className = 'ind';
    span.dataset.name = name;
    span.dataset.value = typeof value === 'number' ? String(value) : '';
    span.dataset.provisional = String(Boolean(rec && rec.provisional));
    const label = document.createElement('i');
    label.textContent = name + ' ';
    const number = document.createElement('b');
    number.textContent = formatPrice(value);
    span.append(label, number);
    return span;
  });
  legend.querySelector('#legend-indicators').replaceChildren(...spans);
}
