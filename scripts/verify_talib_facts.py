#!/usr/bin/env python3
"""Check, bit for bit, the TA-Lib C 0.8.1 formulas written down in notes/talib_facts.md.

Each indicator has a plain-Python model whose floating-point operations are in an
explicit order (Python floats are IEEE-754 doubles, and each + - * / is rounded
once). Every model is compared with the installed TA-Lib (PyPI TA-Lib==0.8.2, which
bundles C 0.8.1) on several series. The rejected candidate formulas are run too, to
show that the order really matters. It also calls the non-FMA ('.default') clones of
EMA/MACD/ATR/BBANDS inside the bundled libta-lib through ctypes, to show that they
give the same bits as the FMA clones.

Usage: python3 scripts/verify_talib_facts.py [extra OHLCV csv files...]
Needs: numpy, TA-Lib==0.8.2.
"""
import csv
import ctypes
import glob
import math
import os
import sys
from fractions import Fraction

import numpy as np
import talib

talib.set_unstable_period('ALL', 0)
talib.set_compatibility(0)
NAN = float('nan')


def fma(a, b, c):
    """a*b+c rounded once (exact through Fraction; float(Fraction) rounds to nearest even)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


# ----------------------------------------------------------------- models (0.8.1)
def sma(x, n):
    out = [NAN] * len(x)
    s = 0.0
    for i in range(n - 1):
        s += x[i]
    for i in range(n - 1, len(x)):
        s += x[i]
        out[i] = s / n
        s -= x[i - n + 1]
    return out


def ema(x, n, start=0):
    """EMA of x[start:], seeded by the plain mean of its first n values."""
    out = [NAN] * len(x)
    k = 2.0 / float(n + 1)
    s = 0.0
    for i in range(start, start + n):
        s += x[i]
    e = s / n
    out[start + n - 1] = e
    for i in range(start + n, len(x)):
        e = fma(k, x[i] - e, e)
        out[i] = e
    return out


def macd(c, fast=12, slow=26, sig=9):
    N = len(c)
    m, s, h = [NAN] * N, [NAN] * N, [NAN] * N
    lb_slow = slow - 1
    kf, ks = 2.0 / float(fast + 1), 2.0 / float(slow + 1)
    ssum = 0.0
    for i in range(slow):
        ssum += c[i]
    fsum = 0.0
    for i in range(slow - fast, slow):
        fsum += c[i]
    es, ef = ssum / slow, fsum / fast
    line = [NAN] * N
    line[lb_slow] = ef - es
    for i in range(slow, N):
        ef = fma(kf, c[i] - ef, ef)
        es = fma(ks, c[i] - es, es)
        line[i] = ef - es
    ksig = 2.0 / float(sig + 1)
    t = 0.0
    for i in range(lb_slow, lb_slow + sig):
        t += line[i]
    e = t / sig
    first = lb_slow + sig - 1
    m[first], s[first], h[first] = line[first], e, line[first] - e
    for i in range(first + 1, N):
        e = fma(ksig, line[i] - e, e)
        m[i], s[i], h[i] = line[i], e, line[i] - e
    return m, s, h


def rsi(c, n, variant='talib'):
    N = len(c)
    out = [NAN] * N
    inv = 1.0 / n
    g = l = 0.0
    for i in range(1, n + 1):
        d = c[i] - c[i - 1]
        gain = d if d > 0 else 0.0
        g += gain
        l += gain - d                     # == max(-d, 0)
    if variant == 'talib':
        ag, al = g * inv, l * inv         # multiply by the reciprocal
    else:
        ag, al = g / n, l / n

    def val(ag, al):
        s = al + ag
        if not s > 0.0:
            return 0.0
        if variant == 'talib':
            return (ag / s) * 100.0
        return 100.0 * ag / s             # (100*ag)/s

    out[n] = val(ag, al)
    for i in range(n + 1, N):
        d = c[i] - c[i - 1]
        gain = d if d > 0 else 0.0
        if variant == 'talib':
            ag = (ag * (n - 1) + gain) * inv
            al = ((gain - d) + al * (n - 1)) * inv
        else:
            ag = (ag * (n - 1) + gain) / n
            al = (al * (n - 1) + (gain - d)) / n
        out[i] = val(ag, al)
    return out


def true_range(h, l, c, i):
    pc = c[i - 1]
    return max(abs(pc - l[i]), max(abs(pc - h[i]), h[i] - l[i]))


def atr(h, l, c, n, variant='talib'):
    N = len(c)
    out = [NAN] * N
    s = 0.0
    for i in range(1, n + 1):
        s += true_range(h, l, c, i)
    a = s / n
    out[n] = a
    w = float(n - 1) / float(n)
    k = 1.0 - w
    for i in range(n + 1, N):
        tr = true_range(h, l, c, i)
        if variant == 'talib':
            a = fma(w, a, tr * k)
        elif variant == 'mul-add':
            a = a * w + tr * k
        else:
            a = (a * (n - 1) + tr) / n
        out[i] = a
    return out


def dm(h, l, i):
    up = h[i] - h[i - 1]
    dn = l[i - 1] - l[i]
    if dn > 0 and dn > up:
        return 0.0, dn
    if up > 0 and up > dn:
        return up, 0.0
    return 0.0, 0.0


def adx(h, l, c, n, variant='talib'):
    N = len(c)
    out = [NAN] * N
    sp = sm = st = 0.0
    for i in range(1, n):
        p, m = dm(h, l, i)
        sp += p
        sm += m
        st += true_range(h, l, c, i)

    def step(i, sp, sm, st):
        p, m = dm(h, l, i)
        sm = sm - sm / n + m
        sp = sp - sp / n + p
        st = st - st / n + true_range(h, l, c, i)
        dx = None
        if st > 0.0:
            if variant == 'talib':
                mdi = (sm / st) * 100.0
                pdi = (sp / st) * 100.0
            else:
                mdi = 100.0 * sm / st
                pdi = 100.0 * sp / st
            tot = mdi + pdi
            if not (-1e-14 < tot < 1e-14):
                if variant == 'talib':
                    dx = (abs(mdi - pdi) / tot) * 100.0
                else:
                    dx = 100.0 * abs(mdi - pdi) / tot
        return sp, sm, st, dx

    sdx = 0.0
    for i in range(n, 2 * n):
        sp, sm, st, dx = step(i, sp, sm, st)
        if dx is not None:
            sdx += dx
    a = sdx / n
    out[2 * n - 1] = a
    for i in range(2 * n, N):
        sp, sm, st, dx = step(i, sp, sm, st)
        if dx is not None:
            a = (a * (n - 1) + dx) / n
        out[i] = a
    return out


def hh_ll(h, l, i, n):
    return max(h[i - n + 1:i + 1]), min(l[i - n + 1:i + 1])


def is_zero_scaled(diff, a, b):
    return abs(diff) <= 1e-14 * (abs(a) + abs(b))


def stoch(h, l, c, fk=14, sk=3, sd=3, variant='talib'):
    N = len(c)
    fast = [NAN] * N
    for i in range(fk - 1, N):
        HH, LL = hh_ll(h, l, i, fk)
        diff = HH - LL
        if variant == 'talib':
            fast[i] = 0.0 if is_zero_scaled(diff, HH, LL) else ((c[i] - LL) / diff) * 100.0
        else:
            fast[i] = 0.0 if diff == 0 else (c[i] - LL) / (diff / 100.0)
    fk_ = fast[fk - 1:]
    k = [NAN] * (fk - 1) + sma(fk_, sk)
    k2 = k[fk - 1 + sk - 1:]
    d = [NAN] * (fk - 1 + sk - 1) + sma(k2, sd)
    first = fk - 1 + sk - 1 + sd - 1
    k = [NAN] * first + k[first:]
    return k, d


def willr(h, l, c, n, variant='talib'):
    N = len(c)
    out = [NAN] * N
    for i in range(n - 1, N):
        HH, LL = hh_ll(h, l, i, n)
        diff = HH - LL
        if variant == 'talib':
            if is_zero_scaled(diff, HH, LL):
                out[i] = 0.0
            else:
                w = ((HH - c[i]) / diff) * -100.0
                out[i] = 0.0 if w > 0 else max(-100.0, w)
        else:
            out[i] = 0.0 if diff == 0 else (HH - c[i]) / (diff * -0.01)
    return out


def roc(c, n):
    return [NAN] * n + [(((c[i] / c[i - n]) - 1.0) * 100.0) if c[i - n] != 0.0 else 0.0
                        for i in range(n, len(c))]


def mom(c, n):
    return [NAN] * n + [c[i] - c[i - n] for i in range(n, len(c))]


def obv(c, v):
    out = [v[0]]
    for i in range(1, len(c)):
        o = out[-1]
        if c[i] > c[i - 1]:
            o += v[i]
        elif c[i] < c[i - 1]:
            o -= v[i]
        out.append(o)
    return out


def var(x, n):
    """TA_VAR 0.8.1: sums of (x-K) and (x-K)^2 about a shift K, re-centred when precision is at risk."""
    N = len(x)
    out = [NAN] * N
    if N < n:
        return out
    inv = 1.0 / n
    K = x[0]
    S1 = S2 = 0.0
    for i in range(n - 1):
        d = x[i] - K
        S1 += d
        S2 += d * d
    counter = 32 * n
    for i in range(n - 1, N):
        tr = i - n + 1
        d = x[i] - K
        S1 += d
        S2 += d * d
        m = inv * S1
        v = inv * S2 - m * m
        t = x[tr] - K
        t2 = t * t
        S2 -= t2
        recenter = (inv * S2) * 1e-6 > v or t2 > S2 * 1e6
        if not recenter:
            counter -= 1
            recenter = counter == 0
        if recenter:
            s = 0.0
            for j in range(tr, i + 1):
                s += x[j]
            K = s * inv
            S1 = S2 = 0.0
            for j in range(tr, i + 1):
                d = x[j] - K
                S1 += d
                S2 += d * d
            m = inv * S1
            q = inv * S2
            v = q - m * m
            if v < q * 1e-12:
                v = 0.0
            t = x[tr] - K
            S1 -= t
            S2 -= t * t
            counter = 32 * n
        else:
            S1 -= t
        out[i] = v
    return out


def stddev(x, n):
    return [math.sqrt(v) if v == v else v for v in var(x, n)]


def stddev_two_pass(x, n):
    out = [NAN] * len(x)
    for i in range(n - 1, len(x)):
        w = x[i - n + 1:i + 1]
        s = 0.0
        for v in w:
            s += v
        m = s / n
        q = 0.0
        for v in w:
            q += (v - m) * (v - m)
        out[i] = math.sqrt(q / n)
    return out


def stddev_naive_sums(x, n):
    """Old (0.4.0-style) running E[x^2]-E[x]^2, no shift."""
    out = [NAN] * len(x)
    s1 = s2 = 0.0
    for i in range(n - 1):
        s1 += x[i]
        s2 += x[i] * x[i]
    for i in range(n - 1, len(x)):
        s1 += x[i]
        s2 += x[i] * x[i]
        v = s2 / n - (s1 / n) * (s1 / n)
        out[i] = math.sqrt(v) if v > 0 else 0.0
        s1 -= x[i - n + 1]
        s2 -= x[i - n + 1] * x[i - n + 1]
    return out


def bbands(c, n=20, dev=2.0):
    mid = sma(c, n)
    sd = stddev(c, n)
    up = [m + dev * s for m, s in zip(mid, sd)]
    lo = [m - dev * s for m, s in zip(mid, sd)]
    return up, mid, lo


# ----------------------------------------------------------------- comparison
def same_bits(a, b):
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    ok = ~np.isnan(a)
    return a[ok].tobytes() == b[ok].tobytes()   # also separates -0.0 from 0.0


def max_rel(a, b):
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    ok = ~(np.isnan(a) | np.isnan(b))
    if not ok.any():
        return 0.0
    d = np.abs(a[ok] - b[ok])
    den = np.abs(b[ok])
    r = np.where(den > 0, d / np.where(den > 0, den, 1), np.where(d > 0, np.inf, 0))
    return float(r.max())


def load(path):
    rows = list(csv.reader(open(path)))[1:]
    cols = [np.array([float(r[k]) for r in rows]) for k in range(1, 6)]
    return cols


def synthetic():
    rng = np.random.default_rng(12345)
    out = {}
    n = 1200
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    sp = np.abs(rng.normal(0, 0.004, n)) * c
    o = np.r_[c[0], c[:-1]]
    h = np.maximum(o, c) + sp
    l = np.minimum(o, c) - sp
    v = np.round(rng.uniform(0, 1e5, n))
    out['random walk'] = (o, h, l, c, v)
    c2 = np.repeat(np.round(rng.uniform(10, 12, 40), 2), 30)
    out['flat blocks'] = (c2, c2.copy(), c2.copy(), c2, np.zeros_like(c2))
    c3 = 1e8 + np.round(np.cumsum(rng.normal(0, 0.01, n)), 2)
    out['1e8 tiny moves'] = (c3, c3 + 0.01, c3 - 0.01, c3, v)
    c4 = np.round(1e-6 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 12)
    out['1e-6 prices'] = (c4, c4 * (1 + 1e-3), c4 * (1 - 1e-3), c4, v)
    up = np.r_[np.linspace(50, 80, 150), np.linspace(80, 40, 150)]
    out['trend up/down'] = (up, up + 0.5, up - 0.5, up, np.ones_like(up))
    return out


def check_all(name, o, h, l, c, v):
    C, H, L, V = list(c), list(h), list(l), list(v)
    res = []

    def rec(label, model, ref):
        res.append((label, same_bits(model, ref), max_rel(model, ref)))

    for n in (20, 50, 200):
        rec(f'SMA{n}', sma(C, n), talib.SMA(c, n))
    for n in (12, 26):
        rec(f'EMA{n} fma(k,c-e,e)', ema(C, n), talib.EMA(c, n))
    m, s, hh = macd(C)
    tm, ts, th = talib.MACD(c, 12, 26, 9)
    rec('MACD line', m, tm)
    rec('MACD signal', s, ts)
    rec('MACD hist', hh, th)
    ref = talib.RSI(c, 14)
    rec('RSI (ag/(ag+al))*100, *inv', rsi(C, 14), ref)
    rec('RSI cand 100*ag/(ag+al), /n', rsi(C, 14, 'plain'), ref)
    ref = talib.ATR(h, l, c, 14)
    rec('ATR fma(w,atr,TR*k)', atr(H, L, C, 14), ref)
    rec('ATR cand atr*w+TR*k', atr(H, L, C, 14, 'mul-add'), ref)
    rec('ATR cand (atr*13+TR)/14', atr(H, L, C, 14, 'wilder'), ref)
    ref = talib.ADX(h, l, c, 14)
    rec('ADX (S/STR)*100 ...', adx(H, L, C, 14), ref)
    rec('ADX cand 100*S/STR ...', adx(H, L, C, 14, 'plain'), ref)
    k, d = stoch(H, L, C)
    tk, td = talib.STOCH(h, l, c, 14, 3, 0, 3, 0)
    rec('STOCH k ((c-LL)/(HH-LL))*100', k, tk)
    rec('STOCH d', d, td)
    k2, _ = stoch(H, L, C, variant='alt')
    rec('STOCH k cand (c-LL)/((HH-LL)/100)', k2, tk)
    ref = talib.WILLR(h, l, c, 14)
    rec('WILLR ((HH-c)/(HH-LL))*-100', willr(H, L, C, 14), ref)
    rec('WILLR cand (HH-c)/((HH-LL)*-0.01)', willr(H, L, C, 14, 'alt'), ref)
    rec('ROC ((c/p)-1)*100', roc(C, 10), talib.ROC(c, 10))
    rec('MOM c-p', mom(C, 10), talib.MOM(c, 10))
    rec('OBV', obv(C, V), talib.OBV(c, v))
    ref = talib.STDDEV(c, 20, 1)
    rec('STDDEV shifted sums+recentre', stddev(C, 20), ref)
    rec('STDDEV cand two-pass', stddev_two_pass(C, 20), ref)
    rec('STDDEV cand E[x2]-E[x]2', stddev_naive_sums(C, 20), ref)
    u, mi, lo = bbands(C)
    tu, tmi, tlo = talib.BBANDS(c, 20, 2, 2, 0)
    rec('BB upper mid+2.0*sd', u, tu)
    rec('BB middle', mi, tmi)
    rec('BB lower mid-2.0*sd', lo, tlo)
    print(f'\n== {name} ({len(c)} rows)')
    for label, ok, r in res:
        print(f'  {"BIT-EXACT" if ok else "differs  "}  max rel {r:.2e}  {label}')
    return res


# ----------------------------------------------------------------- non-FMA clones
def default_clones(c, h, l):
    """Call TA_EMA.default/TA_MACD.default/TA_ATR.default/TA_BBANDS.default directly."""
    libdir = os.path.join(os.path.dirname(talib.__file__), os.pardir, 'ta_lib.libs')
    libs = glob.glob(os.path.join(libdir, 'libta-lib*.so*'))
    if not libs:
        print('\n(default clones: bundled libta-lib not found, skipped)')
        return
    lib = ctypes.CDLL(libs[0])
    # Static offsets of this exact build (objdump -t, TA-Lib 0.8.2 manylinux x86_64 wheel).
    off = {'TA_SMA': 0x22f5d0, 'TA_EMA.default': 0x17eea0, 'TA_MACD.default': 0x1d48c0,
           'TA_ATR.default': 0x54350, 'TA_BBANDS.default': 0x58e40}
    base = ctypes.cast(lib.TA_SMA, ctypes.c_void_p).value - off['TA_SMA']
    D = ctypes.POINTER(ctypes.c_double)
    I = ctypes.c_int
    N = len(c)

    def arr(x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        return x, x.ctypes.data_as(D)

    def full(beg, nb, buf):
        out = np.full(N, np.nan)
        out[beg:beg + nb] = buf[:nb]
        return out

    cc, pc = arr(c)
    _, ph = arr(h)
    _, pl = arr(l)
    beg, nb = I(), I()
    print('\n== non-FMA (.default) clones vs the dispatched (FMA) functions')
    f = ctypes.CFUNCTYPE(I, I, I, D, I, ctypes.POINTER(I), ctypes.POINTER(I), D)(base + off['TA_EMA.default'])
    ob, po = arr(np.zeros(N))
    f(0, N - 1, pc, 12, ctypes.byref(beg), ctypes.byref(nb), po)
    print('  EMA12 default==fma:', same_bits(full(beg.value, nb.value, ob), talib.EMA(c, 12)))
    f = ctypes.CFUNCTYPE(I, I, I, D, I, I, I, ctypes.POINTER(I), ctypes.POINTER(I), D, D, D)(
        base + off['TA_MACD.default'])
    b1, p1 = arr(np.zeros(N))
    b2, p2 = arr(np.zeros(N))
    b3, p3 = arr(np.zeros(N))
    f(0, N - 1, pc, 12, 26, 9, ctypes.byref(beg), ctypes.byref(nb), p1, p2, p3)
    tm = talib.MACD(c, 12, 26, 9)
    print('  MACD default==fma:', all(same_bits(full(beg.value, nb.value, b), t) for b, t in zip((b1, b2, b3), tm)))
    f = ctypes.CFUNCTYPE(I, I, I, D, D, D, I, ctypes.POINTER(I), ctypes.POINTER(I), D)(base + off['TA_ATR.default'])
    f(0, N - 1, ph, pl, pc, 14, ctypes.byref(beg), ctypes.byref(nb), po)
    print('  ATR14 default==fma:', same_bits(full(beg.value, nb.value, ob), talib.ATR(h, l, c, 14)))
    f = ctypes.CFUNCTYPE(I, I, I, D, I, ctypes.c_double, ctypes.c_double, I, ctypes.POINTER(I),
                         ctypes.POINTER(I), D, D, D)(base + off['TA_BBANDS.default'])
    for up, dn in ((2.0, 2.0), (2.0, 1.5)):
        f(0, N - 1, pc, 20, up, dn, 0, ctypes.byref(beg), ctypes.byref(nb), p1, p2, p3)
        tb = talib.BBANDS(c, 20, up, dn, 0)
        print(f'  BBANDS({up},{dn}) default==fma:',
              [same_bits(full(beg.value, nb.value, b), t) for b, t in zip((b1, b2, b3), tb)])


# ----------------------------------------------------------------- more candidates
def ema_variant(x, n, how):
    out = [NAN] * len(x)
    k = 2.0 / float(n + 1)
    s = 0.0
    for i in range(n):
        s += x[i]
    e = s / n if how != 'seed*inv' else s * (1.0 / n)
    out[n - 1] = e
    for i in range(n, len(x)):
        c = x[i]
        if how in ('fma', 'seed*inv'):
            e = fma(k, c - e, e)
        elif how == 'e+k*(c-e)':
            e = e + k * (c - e)
        elif how == 'k*c+(1-k)*e':
            e = k * c + (1.0 - k) * e
        out[i] = e
    return out


def sma_fresh(x, n):
    out = [NAN] * len(x)
    for i in range(n - 1, len(x)):
        s = 0.0
        for v in x[i - n + 1:i + 1]:
            s += v
        out[i] = s / n
    return out


def rsi_mixed(c, n, seed_inv, upd_inv, out_form):
    N = len(c)
    out = [NAN] * N
    inv = 1.0 / n
    g = l = 0.0
    for i in range(1, n + 1):
        d = c[i] - c[i - 1]
        gain = d if d > 0 else 0.0
        g += gain
        l += gain - d
    ag, al = (g * inv, l * inv) if seed_inv else (g / n, l / n)

    def val(ag, al):
        s = al + ag
        if not s > 0.0:
            return 0.0
        return (ag / s) * 100.0 if out_form == '(g/s)*100' else (100.0 * ag) / s

    out[n] = val(ag, al)
    for i in range(n + 1, N):
        d = c[i] - c[i - 1]
        gain = d if d > 0 else 0.0
        if upd_inv:
            ag = (ag * (n - 1) + gain) * inv
            al = ((gain - d) + al * (n - 1)) * inv
        else:
            ag = (ag * (n - 1) + gain) / n
            al = ((gain - d) + al * (n - 1)) / n
        out[i] = val(ag, al)
    return out


def adx_variant(h, l, c, n, smooth, final):
    N = len(c)
    out = [NAN] * N
    sp = sm = st = 0.0
    for i in range(1, n):
        p, m = dm(h, l, i)
        sp += p
        sm += m
        st += true_range(h, l, c, i)

    def sm_(S, x):
        return S - S / n + x if smooth == 'S-S/n+x' else S * (n - 1) / n + x

    def step(i, sp, sm, st):
        p, m = dm(h, l, i)
        sm, sp, st = sm_(sm, m), sm_(sp, p), sm_(st, true_range(h, l, c, i))
        dx = None
        if st > 0.0:
            mdi = (sm / st) * 100.0
            pdi = (sp / st) * 100.0
            tot = mdi + pdi
            if not (-1e-14 < tot < 1e-14):
                dx = (abs(mdi - pdi) / tot) * 100.0
        return sp, sm, st, dx

    sdx = 0.0
    for i in range(n, 2 * n):
        sp, sm, st, dx = step(i, sp, sm, st)
        if dx is not None:
            sdx += dx
    a = sdx / n
    out[2 * n - 1] = a
    for i in range(2 * n, N):
        sp, sm, st, dx = step(i, sp, sm, st)
        if dx is not None:
            a = (a * (n - 1) + dx) / n if final == '/n' else (a * (n - 1) + dx) * (1.0 / n)
        out[i] = a
    return out


def candidates(series):
    print('\n== candidate operation orders (bit-exact on every series?)')
    rows = []

    def cand(label, fn, ref_fn):
        ok = True
        worst = 0.0
        for name, (o, h, l, c, v) in series.items():
            a, b = fn(list(h), list(l), list(c), list(v)), ref_fn(h, l, c, v)
            ok &= same_bits(a, b)
            worst = max(worst, max_rel(a, b))
        rows.append((label, ok, worst))

    T = talib
    cand('SMA running sum s+=x; s/n; s-=x_old', lambda h, l, c, v: sma(c, 20), lambda h, l, c, v: T.SMA(c, 20))
    cand('SMA fresh per-window sum / n', lambda h, l, c, v: sma_fresh(c, 20), lambda h, l, c, v: T.SMA(c, 20))
    for how in ('fma', 'e+k*(c-e)', 'k*c+(1-k)*e', 'seed*inv'):
        cand(f'EMA26 {how}', lambda h, l, c, v, how=how: ema_variant(c, 26, how), lambda h, l, c, v: T.EMA(c, 26))
    cand('MACD line (rows 33..) = EMA12 seeded on c[14..25] - EMA26',
         lambda h, l, c, v: macd(c)[0][33:], lambda h, l, c, v: T.MACD(c, 12, 26, 9)[0][33:])
    cand('MACD line (rows 33..) = standalone EMA12 (seed c[0..11]) - EMA26',
         lambda h, l, c, v: [a - b for a, b in zip(ema(c, 12), ema(c, 26))][33:],
         lambda h, l, c, v: T.MACD(c, 12, 26, 9)[0][33:])
    for si in (True, False):
        for ui in (True, False):
            for of in ('(g/s)*100', '(100*g)/s'):
                cand(f'RSI seed {"*inv" if si else "/n"}, update {"*inv" if ui else "/n"}, out {of}',
                     lambda h, l, c, v, si=si, ui=ui, of=of: rsi_mixed(c, 14, si, ui, of),
                     lambda h, l, c, v: T.RSI(c, 14))
    for var_ in ('talib', 'mul-add', 'wilder'):
        cand(f'ATR update {dict(talib="fma(w,atr,TR*k)", **{"mul-add": "atr*w+TR*k", "wilder": "(atr*13+TR)/14"})[var_]}',
             lambda h, l, c, v, var_=var_: atr(h, l, c, 14, var_), lambda h, l, c, v: T.ATR(h, l, c, 14))
    for smooth in ('S-S/n+x', 'S*(n-1)/n+x'):
        for final in ('/n', '*inv'):
            cand(f'ADX smoothing {smooth}, adx=(adx*13+dx){final}',
                 lambda h, l, c, v, smooth=smooth, final=final: adx_variant(h, l, c, 14, smooth, final),
                 lambda h, l, c, v: T.ADX(h, l, c, 14))
    cand('ADX DI=100*S/STR, DX=100*|d|/sum', lambda h, l, c, v: adx(h, l, c, 14, 'plain'),
         lambda h, l, c, v: T.ADX(h, l, c, 14))
    cand('STOCH fastK ((c-LL)/(HH-LL))*100', lambda h, l, c, v: stoch(h, l, c)[0],
         lambda h, l, c, v: T.STOCH(h, l, c, 14, 3, 0, 3, 0)[0])
    cand('STOCH fastK (c-LL)/((HH-LL)/100)', lambda h, l, c, v: stoch(h, l, c, variant='alt')[0],
         lambda h, l, c, v: T.STOCH(h, l, c, 14, 3, 0, 3, 0)[0])
    cand('WILLR ((HH-c)/(HH-LL))*-100', lambda h, l, c, v: willr(h, l, c, 14),
         lambda h, l, c, v: T.WILLR(h, l, c, 14))
    cand('WILLR (HH-c)/((HH-LL)*-0.01)', lambda h, l, c, v: willr(h, l, c, 14, 'alt'),
         lambda h, l, c, v: T.WILLR(h, l, c, 14))
    cand('ROC ((c/p)-1)*100', lambda h, l, c, v: roc(c, 10), lambda h, l, c, v: T.ROC(c, 10))
    cand('ROC ((c-p)/p)*100', lambda h, l, c, v: [NAN] * 10 + [((c[i] - c[i - 10]) / c[i - 10]) * 100.0
                                                                for i in range(10, len(c))],
         lambda h, l, c, v: T.ROC(c, 10))
    cand('STDDEV TA_VAR shifted+recentre model', lambda h, l, c, v: stddev(c, 20),
         lambda h, l, c, v: T.STDDEV(c, 20, 1))
    cand('STDDEV two-pass', lambda h, l, c, v: stddev_two_pass(c, 20), lambda h, l, c, v: T.STDDEV(c, 20, 1))
    cand('STDDEV E[x2]-E[x]2 running', lambda h, l, c, v: stddev_naive_sums(c, 20),
         lambda h, l, c, v: T.STDDEV(c, 20, 1))
    for label, ok, worst in rows:
        print(f'  {"MATCH  " if ok else "no     "}  worst rel {worst:.2e}  {label}')


def edge_cases():
    print('\n== edge cases / zero thresholds')
    a = np.array
    # STDDEV on flat windows
    for val in (1234567.89, 0.1, 100000000.37, 3.3e-6):
        x = [val] * 20
        print(f'  STDDEV(20 x {val!r}) = {talib.STDDEV(a(x), 20, 1)[-1]!r}; '
              f'two-pass would give {stddev_two_pass(x, 20)[-1]!r}')
    x = 1.1 + np.random.default_rng(5).normal(0, 1e-13, 40)
    print(f'  STDDEV of 1.1 + N(0,1e-13): {talib.STDDEV(x, 20, 1)[-1]!r} (no absolute zero threshold)')
    # RSI: exact > 0 test on avgGain+avgLoss
    ulp = np.nextafter(1.0, 2.0) - 1.0
    c = a([1.0] * 16 + [1.0 + ulp] + [1.0 + ulp] * 3)
    print(f'  RSI, flat then a 1-ulp uptick: {talib.RSI(c, 14)[14]!r} (flat) -> {talib.RSI(c, 14)[16]!r}')
    # STOCH / WILLR scale-aware zero: |HH-LL| <= 1e-14*(|HH|+|LL|)
    for k in (100, 140, 141, 142, 200):
        hi = 100.0
        lo = hi
        for _ in range(k):
            lo = np.nextafter(lo, 0.0)
        thr = 1e-14 * (abs(hi) + abs(lo))
        h = a([hi] * 14)
        l = a([lo] * 14)
        cc = a([lo] * 13 + [hi])
        fk = talib.STOCHF(h, l, cc, 14, 1, 0)[0][-1]
        w = talib.WILLR(h, l, a([hi] * 14), 14)[-1]
        print(f'  HH-LL = {k} ulps of 100 ({hi - lo:.3e}, thr {thr:.3e}, zero? {abs(hi - lo) <= thr}): '
              f'fastK={fk!r}  WILLR(c=HH)={w!r}')
    # WILLR returns -0.0 when close == HH
    h = a([10.0 + i for i in range(14)])
    l = h - 5
    print(f'  WILLR with close == HH: {talib.WILLR(h, l, h.copy(), 14)[-1]!r}')
    # ADX: DI+ + DI- inside (-1e-14, 1e-14) -> DX skipped
    n = 60
    hh = a([1.0 + i * ulp for i in range(n)])      # +DM = 1 ulp each bar
    ll = a([-2.0] * n)                              # TR ~ 3, so +DI ~ 7.4e-15
    cc = a([0.0] * n)
    print(f'  ADX with +DI ~ 7e-15 every bar (DX skipped): {talib.ADX(hh, ll, cc, 14)[27]!r}; '
          f'same with low=-0.5 (+DI ~ 1.5e-14, DX=100): {talib.ADX(hh, a([-0.5] * n), cc, 14)[27]!r}')
    # ROC with a zero reference price
    c = a([0.0] + [1.0] * 11)
    print(f'  ROC when c[i-10]==0: {talib.ROC(c, 10)[10]!r}')
    # BBANDS with unequal deviations: upper uses fma, lower does not
    rng = np.random.default_rng(9)
    c = 100 + np.cumsum(rng.normal(0, 1, 300))
    u, m, lo = talib.BBANDS(c, 20, 1.7, 1.3, 0)
    sd = np.array(stddev(list(c), 20))
    up_fma = [fma(s, 1.7, mm) if s == s else NAN for s, mm in zip(sd, m)]
    up_plain = m + 1.7 * sd
    print(f'  BBANDS(1.7,1.3): upper==fma(sd,1.7,mid): {same_bits(up_fma, u)}; upper==mid+1.7*sd: '
          f'{same_bits(up_plain, u)}; lower==mid-1.3*sd: {same_bits(m - 1.3 * sd, lo)}')
    u, m, lo = talib.BBANDS(c, 20, 1.7, 1.7, 0)
    print(f'  BBANDS(1.7,1.7) (equal devs): upper==mid+1.7*sd: {same_bits(m + 1.7 * sd, u)}; '
          f'upper==fma(sd,1.7,mid): {same_bits([fma(s, 1.7, mm) if s == s else NAN for s, mm in zip(sd, m)], u)}')
    # EMA: a series on which fma(k,c-e,e) and e+k*(c-e) differ (values around 0, so k*(c-e) ~ e)
    x = list(rng.normal(0, 1, 2000))
    e_f = ema_variant(x, 12, 'fma')
    e_p = ema_variant(x, 12, 'e+k*(c-e)')
    ref = talib.EMA(a(x), 12)
    print(f'  EMA12 on N(0,1) data: fma model bit-exact: {same_bits(e_f, ref)}; e+k*(c-e) bit-exact: '
          f'{same_bits(e_p, ref)} (max rel {max_rel(e_p, ref):.1e})')


def main():
    series = synthetic()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spy = os.path.join(repo, 'tests', 'fixtures', 'SPY_1min.csv')
    paths = [p for p in [spy] + sys.argv[1:] if os.path.exists(p) and not p.endswith('.talib.csv')]
    for p in paths:
        series[os.path.basename(p)] = tuple(load(p))
    bad = []
    for name, (o, h, l, c, v) in series.items():
        for label, ok, _ in check_all(name, o, h, l, c, v):
            if 'cand' not in label and not ok:
                bad.append((name, label))
    candidates(series)
    edge_cases()
    o, h, l, c, v = series['random walk']
    default_clones(c, h, l)
    print('\nmodels that are not bit-exact:', bad if bad else 'none')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
