#!/usr/bin/env python3
"""Generate synthetic OHLCV series and TA-Lib reference values for them.

Each series is written as a pair of files, in the same format as
tests/fixtures/SPY_1min.csv and SPY_1min.talib.csv:

  NAME.csv        ts,open,high,low,close,volume
  NAME.talib.csv  ts,sma_20,sma_50,sma_200,ema_12,ema_26,rsi_14,macd,macd_signal,
                  macd_hist,stoch_k,stoch_d,roc_10,momentum_10,willr_14,bb_upper,
                  bb_middle,bb_lower,atr_14,stdev_20,adx_14,obv,hist_vol_20_raw

- Floats are written with Python repr() (the shortest string that parses back to the
  same bits), and a field is empty where TA-Lib gives NaN. repr() can give '-0.0'
  (TA-Lib's WILLR does, when the close is the 14-bar high) and exponent notation
  ('1.2e-06').
- Prices are whole numbers of ticks, k / 10**d, so they print as short decimals.
  Volumes are whole numbers, printed without a decimal point, as in SPY_1min.csv.
- ts is 'YYYY-MM-DD HH:MM:SS', one minute apart (one day apart for *_daily).
- hist_vol_20_raw (row i >= 20) is the population standard deviation (ddof=0,
  numpy two-pass np.std) of the 20 log returns r[j] = math.log(c[j] / c[j-1]),
  j = i-19..i. It is not annualised. math.log is used rather than np.log: np.log
  has its own SIMD code, and on AVX-512 machines it differs from the C library's
  log (what Rust's f64::ln calls) in the last bit for a few percent of inputs.
  np.std adds with numpy's pairwise summation (8 accumulators for 20 values):
  see notes/talib_facts.md.

The TA-Lib calls follow the reference platform's conventions (notes/talib_facts.md): unstable period 0,
default (non-Metastock) compatibility, SMA/EMA/RSI/MACD(12,26,9)/STOCH(14,3,SMA,3,SMA)/
ROC/MOM/WILLR/BBANDS(20,2,2,SMA)/ATR/STDDEV(20,1)/ADX/OBV.

Every file is kept under --max-bytes. If a series' files would be larger, the
series is made again with fewer rows, so its shape still covers the whole length.

Usage:
  pip install TA-Lib==0.8.2 numpy
  python3 scripts/gen_talib_fixtures.py [--out DIR] [--seed N | --random-seed]
                                        [--rows N] [--max-bytes N]
With the defaults (seed 20261124) the output is the committed tests/fixtures/talib.
Needs numpy and TA-Lib==0.8.2 (C library 0.8.1) only.
"""
import argparse
import datetime as dt
import math
import os
import sys

import numpy as np
import talib

DEFAULT_SEED = 20261124
DEFAULT_ROWS = 1500
DEFAULT_MAX_BYTES = 300_000 - 1          # each file strictly under 300 KB (300,000 bytes)

TALIB_COLUMNS = [
    'sma_20', 'sma_50', 'sma_200', 'ema_12', 'ema_26', 'rsi_14', 'macd', 'macd_signal',
    'macd_hist', 'stoch_k', 'stoch_d', 'roc_10', 'momentum_10', 'willr_14', 'bb_upper',
    'bb_middle', 'bb_lower', 'atr_14', 'stdev_20', 'adx_14', 'obv', 'hist_vol_20_raw',
]


# --------------------------------------------------------------------------- helpers
def ticks_to_price(k, decimals):
    """Whole ticks -> float. k / 10**d is the double nearest to the decimal, so repr is short."""
    k = np.asarray(np.round(k), dtype=np.float64)
    if decimals >= 0:
        return k / float(10 ** decimals)
    return k * float(10 ** (-decimals))


def to_ticks(x, decimals):
    return np.round(np.asarray(x, dtype=np.float64) * 10.0 ** decimals)


def finish_bars(o_t, c_t, up_t, dn_t, min_tick=1.0):
    """OHLC in ticks from open/close and non-negative wick sizes; keeps every price >= min_tick."""
    o_t = np.maximum(np.round(o_t), min_tick)
    c_t = np.maximum(np.round(c_t), min_tick)
    h_t = np.maximum(o_t, c_t) + np.round(np.abs(up_t))
    l_t = np.minimum(o_t, c_t) - np.round(np.abs(dn_t))
    l_t = np.maximum(l_t, min_tick)
    return o_t, h_t, l_t, c_t


def walk_bars(rng, close, decimals, wick_frac, min_tick=1.0):
    """Bars whose open is the previous close, from a close path given as prices."""
    c_t = np.maximum(to_ticks(close, decimals), min_tick)
    o_t = np.r_[c_t[0], c_t[:-1]]
    scale = np.maximum(o_t, c_t) * wick_frac
    up = rng.exponential(1.0, len(c_t)) * scale
    dn = rng.exponential(1.0, len(c_t)) * scale
    return finish_bars(o_t, c_t, up, dn, min_tick)


def volumes(rng, n, mean, zero_frac=0.0):
    v = np.round(rng.lognormal(math.log(mean), 0.6, n))
    if zero_frac > 0:
        v[rng.random(n) < zero_frac] = 0.0
    return v


def timestamps(n, start, step):
    return [(start + i * step).strftime('%Y-%m-%d %H:%M:%S') for i in range(n)]


# --------------------------------------------------------------------------- series
def gap_walk_daily(rng, n):
    """(1) Geometric random walk, daily bars, with occasional opening gaps of +-5..15%."""
    dec = 2
    gap = rng.random(n) < 0.025
    gap[np.arange(n) % 97 == 40] = True              # at least one gap every 97 rows
    gap[0] = False
    gap_size = rng.uniform(0.05, 0.15, n) * rng.choice([-1.0, 1.0], n)
    c_prev = 50.0
    o = np.empty(n)
    c = np.empty(n)
    for i in range(n):
        op = c_prev * (1.0 + gap_size[i]) if gap[i] else c_prev * math.exp(rng.normal(0, 0.002))
        cl = op * math.exp(rng.normal(0.0002, 0.015))
        o[i], c[i] = op, cl
        c_prev = float(ticks_to_price(to_ticks(cl, dec), dec))
    o_t = np.maximum(to_ticks(o, dec), 1.0)
    c_t = np.maximum(to_ticks(c, dec), 1.0)
    scale = np.maximum(o_t, c_t) * 0.006
    o_t, h_t, l_t, c_t = finish_bars(o_t, c_t, rng.exponential(1, n) * scale,
                                     rng.exponential(1, n) * scale)
    v = volumes(rng, n, 2_000_000)
    v[gap] *= 4
    return [ticks_to_price(x, dec) for x in (o_t, h_t, l_t, c_t)] + [v], 'daily'


def flat_stretches_1min(rng, n):
    """(2) A walk with long flat stretches: the same bar repeated for 40-80 rows.

    The series opens with 45 zero-range (high == low == open == close), zero-volume
    bars, so RSI, ADX, STOCH and WILLR all start on a flat window. Later stretches
    alternate between zero-range bars and a repeated bar with high > low; two stretches
    in three have zero volume. Between stretches the price walks on from the flat level.
    """
    dec = 2
    stretches = [(0, 45)]
    pos = 45 + int(rng.integers(40, 90))
    while pos < n - 10:
        length = int(rng.integers(40, 81))
        stretches.append((pos, length))
        pos += length + int(rng.integers(40, 110))
    kind = np.full(n, -1)
    for k, (s, length) in enumerate(stretches):
        kind[s:min(n, s + length)] = k
    v = volumes(rng, n, 5_000, zero_frac=0.03)
    o_t, h_t, l_t, c_t = (np.empty(n) for _ in range(4))
    level = 2000.0                                   # ticks: 20.00
    for i in range(n):
        k = kind[i]
        if k >= 0:
            zero_range = (k % 2 == 0)
            o_t[i] = c_t[i] = level
            h_t[i] = level + (0 if zero_range else 3)
            l_t[i] = level - (0 if zero_range else 2)
            if k % 3 != 1:
                v[i] = 0.0
        else:
            o_t[i] = level
            c_t[i] = max(1.0, level + round(level * rng.normal(0, 0.0015)))
            h_t[i] = max(o_t[i], c_t[i]) + round(rng.exponential(1.0) * level * 0.0008)
            l_t[i] = max(1.0, min(o_t[i], c_t[i]) - round(rng.exponential(1.0) * level * 0.0008))
            level = c_t[i]
    return [ticks_to_price(x, dec) for x in (o_t, h_t, l_t, c_t)] + [v], 'minute'


def huge_prices_1min(rng, n):
    """(3) Prices from ~1e6 up to ~1e8 (tick 0.01), with quiet and flat windows at high levels.

    Every 150 rows (from row 90) there is a 35-row quiet window, where the close moves by
    0..3 ticks at whatever level the walk has reached, followed by 25 bars with the same
    close (high and low one tick away), where STDDEV must come out exactly 0 (a plain
    two-pass stdev gives ~4e-8 on 20 equal values near 1e8). The walk ends at 100x its start.
    """
    dec = 2
    quiet = np.zeros(n, dtype=bool)
    flat = np.zeros(n, dtype=bool)
    for s in range(90, n, 150):
        quiet[s:s + 35] = True
        flat[s + 35:s + 60] = True
    moving = ~(quiet | flat)
    moving[0] = False
    r = rng.normal(0.0, 0.012, n)
    r[moving] += (math.log(100.0) - r[moving].sum()) / moving.sum()   # ends at exactly 100x
    r[~moving] = 0.0
    c = 1e6 * np.exp(np.cumsum(r))
    c_t = to_ticks(c, dec)
    steps = rng.integers(-3, 4, n).astype(float)
    steps[~quiet] = 0.0
    c_t = c_t + np.cumsum(steps)
    o_t = np.r_[c_t[0], c_t[:-1]]
    scale = np.maximum(o_t, c_t) * 0.0015
    up = rng.exponential(1, n) * scale
    dn = rng.exponential(1, n) * scale
    up[quiet] = rng.integers(0, 3, quiet.sum())
    dn[quiet] = rng.integers(0, 3, quiet.sum())
    up[flat] = 1
    dn[flat] = 1
    o_t, h_t, l_t, c_t = finish_bars(o_t, c_t, up, dn)
    v = volumes(rng, n, 40)
    return [ticks_to_price(x, dec) for x in (o_t, h_t, l_t, c_t)] + [v], 'minute'


def tiny_prices_1min(rng, n):
    """(4) Prices drifting from ~1e-4 down to ~1e-6 with a 1e-10 tick (crypto-like)."""
    dec = 10
    drift = math.log(0.01) / n
    c = 1e-4 * np.exp(np.cumsum(rng.normal(drift, 0.006, n)))
    o_t, h_t, l_t, c_t = walk_bars(rng, c, dec, 0.002)
    v = volumes(rng, n, 3e9)
    return [ticks_to_price(x, dec) for x in (o_t, h_t, l_t, c_t)] + [v], 'minute'


def integer_ties_1min(rng, n):
    """(5) Whole-number prices with many ties.

    The close repeats the previous close about half the time, about a third of the bars
    have high == low (== open == close), and every 23rd bar from row 30 extends the
    previous high and low by the same amount (+DM == -DM, which TA-Lib counts as no
    movement). Volumes take five values, so they tie too.
    """
    dec = 0
    step = rng.choice([-2, -1, 0, 0, 0, 0, 1, 2], n).astype(float)
    step[0] = 0
    c_t = np.maximum(100 + np.cumsum(step), 5)
    o_t = np.r_[c_t[0], c_t[:-1]]
    up = rng.choice([0, 0, 1, 2], n).astype(float)
    dn = rng.choice([0, 0, 1, 2], n).astype(float)
    point = rng.random(n) < 0.33
    o_t[point] = c_t[point]
    up[point] = 0
    dn[point] = 0
    o_t, h_t, l_t, c_t = finish_bars(o_t, c_t, up, dn)
    for i in range(30, n, 23):
        ext = float(rng.integers(1, 4))
        if l_t[i - 1] - ext < 1:
            continue
        h_t[i] = h_t[i - 1] + ext
        l_t[i] = l_t[i - 1] - ext
        o_t[i] = min(max(o_t[i], l_t[i]), h_t[i])
        c_t[i] = min(max(c_t[i], l_t[i]), h_t[i])
    v = rng.choice([100.0, 200.0, 300.0, 500.0, 1000.0], n)
    return [ticks_to_price(x, dec) for x in (o_t, h_t, l_t, c_t)] + [v], 'minute'


def trend_reversals_1min(rng, n, start_up=True):
    """(6) Runs of 30-60 strictly rising bars, then 30-60 strictly falling bars, and so on.

    The series opens with a rising run, so RSI is exactly 100 from row 14 (no loss in
    the seed window) and ADX heads to 100. Within a rising run every high and every low is
    above the previous bar's (below, when falling). About a third of the bars
    close on their high in a rising run (on their low when falling), which gives
    WILLR == -0.0 / -100 and fastK == 100 / 0.
    """
    dec = 2
    o = np.empty(n)
    c = np.empty(n)
    h = np.empty(n)
    l = np.empty(n)
    price = 100.0
    i = 0
    up = start_up
    while i < n:
        length = int(rng.integers(30, 61))
        for _ in range(length):
            if i >= n:
                break
            # moves within a factor 2 of each other and wicks <= 0.2 * move keep every
            # high and low beyond the previous bar's, after rounding to the 0.01 tick
            move = price * rng.uniform(0.002, 0.004)
            op = price
            cl = op + move if up else op - move
            wick_out = 0.0 if rng.random() < 0.35 else move * rng.uniform(0.02, 0.2)
            wick_in = move * rng.uniform(0.02, 0.2)
            o[i], c[i] = op, cl
            if up:
                h[i], l[i] = cl + wick_out, op - wick_in
            else:
                h[i], l[i] = op + wick_in, cl - wick_out
            price = cl
            i += 1
        up = not up
    o_t, c_t = to_ticks(o, dec), to_ticks(c, dec)
    o_t, h_t, l_t, c_t = finish_bars(o_t, c_t, to_ticks(h, dec) - np.maximum(o_t, c_t),
                                     np.minimum(o_t, c_t) - to_ticks(l, dec))
    v = volumes(rng, n, 20_000)
    return [ticks_to_price(x, dec) for x in (o_t, h_t, l_t, c_t)] + [v], 'minute'


def downtrend_first_1min(rng, n):
    """(6b) As trend_reversals_1min, but opening with a falling run: RSI is exactly 0 from row 14.

    (Wilder smoothing never brings an average back to exactly 0, so one series cannot show
    both RSI == 100 and RSI == 0 exactly; each needs a seed window with no loss / no gain.)
    """
    return trend_reversals_1min(rng, n, start_up=False)


SERIES = [
    ('gap_walk_daily', gap_walk_daily),
    ('flat_stretches_1min', flat_stretches_1min),
    ('huge_prices_1min', huge_prices_1min),
    ('tiny_prices_1min', tiny_prices_1min),
    ('integer_ties_1min', integer_ties_1min),
    ('trend_reversals_1min', trend_reversals_1min),
    ('downtrend_first_1min', downtrend_first_1min),
]


# --------------------------------------------------------------------------- TA-Lib
def reference_columns(o, h, l, c, v):
    talib.set_unstable_period('ALL', 0)
    talib.set_compatibility(0)
    cols = {}
    cols['sma_20'] = talib.SMA(c, 20)
    cols['sma_50'] = talib.SMA(c, 50)
    cols['sma_200'] = talib.SMA(c, 200)
    cols['ema_12'] = talib.EMA(c, 12)
    cols['ema_26'] = talib.EMA(c, 26)
    cols['rsi_14'] = talib.RSI(c, 14)
    cols['macd'], cols['macd_signal'], cols['macd_hist'] = talib.MACD(c, 12, 26, 9)
    cols['stoch_k'], cols['stoch_d'] = talib.STOCH(h, l, c, 14, 3, 0, 3, 0)
    cols['roc_10'] = talib.ROC(c, 10)
    cols['momentum_10'] = talib.MOM(c, 10)
    cols['willr_14'] = talib.WILLR(h, l, c, 14)
    cols['bb_upper'], cols['bb_middle'], cols['bb_lower'] = talib.BBANDS(c, 20, 2, 2, 0)
    cols['atr_14'] = talib.ATR(h, l, c, 14)
    cols['stdev_20'] = talib.STDDEV(c, 20, 1)
    cols['adx_14'] = talib.ADX(h, l, c, 14)
    cols['obv'] = talib.OBV(c, v)
    cols['hist_vol_20_raw'] = hist_vol_raw(c, 20)
    return cols


def hist_vol_raw(c, n):
    out = np.full(len(c), np.nan)
    r = np.array([math.log(float(c[j]) / float(c[j - 1])) for j in range(1, len(c))])
    for i in range(n, len(c)):
        w = np.ascontiguousarray(r[i - n:i])     # returns of rows i-n+1 .. i
        out[i] = np.std(w, ddof=0)
    return out


# --------------------------------------------------------------------------- output
def fmt(x):
    x = float(x)
    return '' if math.isnan(x) else repr(x)


def fmt_volume(x):
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def render(ts, o, h, l, c, v):
    ohlcv = ['ts,open,high,low,close,volume']
    for i in range(len(c)):
        ohlcv.append(f'{ts[i]},{fmt(o[i])},{fmt(h[i])},{fmt(l[i])},{fmt(c[i])},{fmt_volume(v[i])}')
    cols = reference_columns(o, h, l, c, v)
    ref = ['ts,' + ','.join(TALIB_COLUMNS)]
    for i in range(len(c)):
        ref.append(ts[i] + ',' + ','.join(fmt(cols[k][i]) for k in TALIB_COLUMNS))
    return '\n'.join(ohlcv) + '\n', '\n'.join(ref) + '\n'


def check_bars(name, o, h, l, c, v):
    problems = []
    if not (np.all(o > 0) and np.all(h > 0) and np.all(l > 0) and np.all(c > 0)):
        problems.append('non-positive price')
    if np.any(h < np.maximum(o, c)):
        problems.append('high < max(open, close)')
    if np.any(l > np.minimum(o, c)):
        problems.append('low > min(open, close)')
    if np.any(v < 0):
        problems.append('negative volume')
    if not all(np.all(np.isfinite(x)) for x in (o, h, l, c, v)):
        problems.append('non-finite value')
    if problems:
        raise SystemExit(f'{name}: ' + ', '.join(problems))


def make_series(seed, index, fn, rows):
    rng = np.random.default_rng([seed, index])
    (o, h, l, c, v), kind = fn(rng, rows)
    o, h, l, c, v = (np.ascontiguousarray(x, dtype=np.float64) for x in (o, h, l, c, v))
    if kind == 'daily':
        ts = timestamps(rows, dt.datetime(2015, 1, 2), dt.timedelta(days=1))
    else:
        ts = timestamps(rows, dt.datetime(2024, 3, 1, 9, 30), dt.timedelta(minutes=1))
    return ts, o, h, l, c, v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument('--out', default=os.path.join(repo, 'tests', 'fixtures', 'talib'),
                    help='output directory (default: tests/fixtures/talib in this repository)')
    g = ap.add_mutually_exclusive_group()
    g.add_argument('--seed', type=int, default=DEFAULT_SEED, help=f'RNG seed (default {DEFAULT_SEED})')
    g.add_argument('--random-seed', action='store_true',
                   help='pick a seed from os.urandom and print it (for CI runs that want fresh data)')
    ap.add_argument('--rows', type=int, default=DEFAULT_ROWS,
                    help=f'rows per series before the size cap (default {DEFAULT_ROWS})')
    ap.add_argument('--max-bytes', type=int, default=DEFAULT_MAX_BYTES,
                    help='largest file allowed; a series that would be larger is made with fewer '
                         f'rows (default {DEFAULT_MAX_BYTES}; 0 = no cap)')
    args = ap.parse_args(argv)

    if args.rows < 260:
        ap.error('--rows must be at least 260 (sma_200 and the series shapes need the room)')
    seed = int.from_bytes(os.urandom(8), 'little') >> 1 if args.random_seed else args.seed
    print(f'seed: {seed}', flush=True)
    if talib.__ta_version__[:5] != b'0.8.1':
        print(f'warning: TA-Lib C library is {talib.__ta_version__!r}, the fixtures expect 0.8.1',
              file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)

    for index, (name, fn) in enumerate(SERIES):
        rows = args.rows
        while True:
            ts, o, h, l, c, v = make_series(seed, index, fn, rows)
            check_bars(name, o, h, l, c, v)
            ohlcv_text, ref_text = render(ts, o, h, l, c, v)
            size = max(len(ohlcv_text.encode()), len(ref_text.encode()))
            if args.max_bytes <= 0 or size <= args.max_bytes:
                break
            new_rows = int(rows * args.max_bytes / size * 0.99)
            if new_rows < 260:
                raise SystemExit(f'{name}: cannot fit in {args.max_bytes} bytes with >= 260 rows')
            rows = min(new_rows, rows - 1)
        for suffix, text in (('.csv', ohlcv_text), ('.talib.csv', ref_text)):
            with open(os.path.join(args.out, name + suffix), 'w', newline='\n') as f:
                f.write(text)
        print(f'{name}: {rows} rows, {len(ohlcv_text.encode())} + {len(ref_text.encode())} bytes')
    return 0


if __name__ == '__main__':
    sys.exit(main())
