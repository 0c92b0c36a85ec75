"""Synthetic call records with ground truth, for tuning and evaluating the traffic detectors.

Real carrier CDRs cannot ship with an open-source project, so the detectors are measured against a
generator that reproduces the populations the issue and the literature describe (REFERENCE.md
"Abnormal traffic"; Li et al., IEEE S&P 2018; the Sichuan operator study):

* subscribers on a social graph with a daily rhythm and reciprocity (whom you call, calls you);
* businesses with inbound customer service and outbound call-backs;
* delivery riders and ride-hailing drivers: many short outbound calls to strangers, legitimately;
* consented call-centre campaigns below the per-line daily quota;
* subscribers roaming abroad (+86 numbers on the roaming trunk, legitimately) and foreign callers;
* abusers: 呼死你 bombers (one callee every 2–3 s, jittered, ring ~2 s, several lines at once),
  响一声 one-ring sweeps across number ranges, bulk dialers over the daily quota, fraud callers with
  SIM/IMEI churn, few active days and low reciprocity, and spoofed +86 mobile caller IDs arriving on
  international gateway trunks.

Everything is vectorised with numpy and deterministic for a seed: the same arguments always write
the same files. Numbers are carried as integers holding their E.164 digits and written in the
spellings real CDR exports mix (``+86…``, bare national, ``0086…``, ``86…``, grouped with spaces).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quietline.platform.errors import InvalidInput

#: Where a generated month starts: Monday 2026-11-02 00:00 China Standard Time (UTC+8).
EPOCH_START = int(datetime(2026, 11, 1, 16, 0, tzinfo=UTC).timestamp())
#: China has one time zone (UTC+8, no daylight saving); local hours drive the daily rhythm.
CST_OFFSET_SECONDS = 8 * 3600
DAY = 86_400

#: Labels written to labels.csv. The first five are what the detectors report; the others are the
#: legitimate kinds whose false flags the evaluation counts.
ABUSE_PATTERNS = ("bombing", "one_ring", "bulk_dialer", "spoofed", "fraud_risk")
LEGIT_HIGH_VOLUME = ("delivery", "ride_hailing", "business", "call_centre")
LEGIT_KINDS = ("normal", "roaming", "international", *LEGIT_HIGH_VOLUME)

#: Share of the day's calls per local hour for ordinary subscribers (quiet at night, peaks at
#: 10–11 h and 19–20 h), the shape reported for mobile voice traffic.
_HOURLY = np.array(
    [0.3, 0.15, 0.1, 0.1, 0.1, 0.3, 1, 2.5, 4, 5, 5.5, 5, 4.5, 5, 5.5, 5, 5, 5.5, 6, 6.5, 6, 5, 3.5, 1.5]
)
#: Working hours for riders, drivers, businesses and call centres.
_WORKDAY = np.array([0] * 8 + [2, 4, 5, 5, 4, 4, 5, 5, 5, 5, 4, 3, 2, 1] + [0, 0], dtype=float)

#: Mobile prefixes by carrier (MIIT number plan), as 3-digit national prefixes.
_MOBILE_PREFIXES = {
    "china_mobile": (134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 182, 183, 187, 188),
    "china_unicom": (130, 131, 132, 155, 156, 166, 185, 186),
    "china_telecom": (133, 153, 173, 177, 180, 181, 189, 199),
    "china_broadnet": (192,),
}
_RESALE_PREFIXES = (170, 171, 162, 165, 167)
_ALL_MOBILE = np.array([p for ps in _MOBILE_PREFIXES.values() for p in ps])
_CC = 86


@dataclass(frozen=True)
class GeneratedData:
    """What :func:`generate` wrote, for the CLI to report."""

    calls_path: Path
    labels_path: Path
    allowlist_path: Path
    calls: int
    numbers: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls_path": str(self.calls_path),
            "labels_path": str(self.labels_path),
            "allowlist_path": str(self.allowlist_path),
            "calls": self.calls,
            "numbers": self.numbers,
            "seconds": round(self.seconds, 3),
        }


class _Calls:
    """Column chunks appended per population, concatenated once at the end."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(
        self,
        caller: np.ndarray,
        callee: np.ndarray,
        t: np.ndarray,
        outcome: tuple[np.ndarray, np.ndarray],
        *,
        trunk: int | np.ndarray,
        imei: np.ndarray | None = None,
        cell: np.ndarray | None = None,
    ) -> None:
        """Append calls; ``outcome`` is (ring seconds, talk seconds); no IMEI/cell = trunk-originated."""
        n = len(caller)
        ring, duration = outcome
        self.parts.append(
            {
                "caller": caller.astype(np.int64),
                "callee": callee.astype(np.int64),
                "t": t.astype(np.int64),
                "ring": ring.astype(np.float32),
                "duration": duration.astype(np.int32),
                "imei": np.full(n, -1, dtype=np.int64) if imei is None else imei.astype(np.int64),
                "trunk": np.broadcast_to(np.asarray(trunk, dtype=np.int8), (n,)).copy(),
                "cell": np.full(n, -1, dtype=np.int64) if cell is None else cell.astype(np.int64),
            }
        )

    def concat(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}


@dataclass
class _World:
    """What every population's traffic draws on: the random stream, the subscribers, the output."""

    rng: np.random.Generator
    days: int
    subs: np.ndarray
    imei: np.ndarray
    cell: np.ndarray
    calls: _Calls

    @property
    def n(self) -> int:
        return len(self.subs)

    def random_subscribers(self, k: int) -> np.ndarray:
        return self.rng.integers(0, self.n, k)


def _e164(national: np.ndarray) -> np.ndarray:
    """+86 E.164 digits of national numbers (as integers)."""
    digits = np.floor(np.log10(national) + 1).astype(np.int64)
    return np.asarray(national + _CC * 10**digits, dtype=np.int64)


def _daily_counts(rng: np.random.Generator, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Who calls and on which day, from a (members x days) matrix of call counts."""
    who = np.repeat(np.arange(counts.shape[0]), counts.sum(axis=1))
    day = np.repeat(np.tile(np.arange(counts.shape[1]), counts.shape[0]), counts.ravel())
    return who, day


#: Trunk codes (the line a call arrived on) and their names in the output.
TRUNKS = ("ran", "pbx", "sip", "roam-intl", "intl-gw-1", "intl-gw-2", "intl-gw-3")
_RAN, _PBX, _SIP, _ROAM, _INTL = 0, 1, 2, 3, 4


def _unique_numbers(rng: np.random.Generator, prefixes: np.ndarray, n: int, digits: int) -> np.ndarray:
    """``n`` distinct national numbers: a prefix followed by ``digits`` random digits."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        k = int((n - len(out)) * 1.2) + 16
        pre = rng.choice(prefixes, size=k).astype(np.int64)
        cand = pre * 10**digits + rng.integers(0, 10**digits, size=k)
        out = np.unique(np.concatenate([out, cand]))
    return rng.permutation(out)[:n]


def _times(rng: np.random.Generator, days: np.ndarray, hourly: np.ndarray) -> np.ndarray:
    """Epoch seconds on the given day indexes, local hour drawn from an hourly profile."""
    p = hourly / hourly.sum()
    hours = rng.choice(24, size=len(days), p=p)
    local = days.astype(np.int64) * DAY + hours * 3600 + rng.integers(0, 3600, size=len(days))
    return EPOCH_START + local


def _outcome(
    rng: np.random.Generator, n: int, answer_rate: float, talk_median: float, talk_sigma: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Ring and talk time of ordinary calls: answered after ~8 s, unanswered ring out or abandoned."""
    answered = rng.random(n) < answer_rate
    ring = np.where(
        answered,
        np.clip(rng.gamma(2.0, 4.0, n), 1.0, 60.0),
        np.where(rng.random(n) < 0.5, rng.uniform(20, 45, n), rng.uniform(5, 20, n)),
    )
    talk = np.clip(rng.lognormal(np.log(talk_median), talk_sigma, n), 1, 7200)
    duration = np.where(answered, np.round(talk), 0)
    return np.round(ring, 1), duration


def _imei_base(rng: np.random.Generator, n: int) -> np.ndarray:
    # 15-digit IMEIs: 8-digit type allocation code + 6-digit serial + check digit (not verified here).
    return rng.integers(35_000_000_000_000, 99_999_999_999_999, size=n, dtype=np.int64)


def _validate(subscribers: int, days: int, seed: int) -> None:
    if subscribers < 100:
        raise InvalidInput("need at least 100 subscribers", field="subscribers")
    if subscribers > 5_000_000:
        raise InvalidInput("at most 5,000,000 subscribers", field="subscribers")
    if not 1 <= days <= 366:
        raise InvalidInput("days must be between 1 and 366", field="days")
    if seed < 0:
        raise InvalidInput("seed must be a non-negative integer", field="seed")


def generate(subscribers: int, days: int, seed: int, out: Path) -> GeneratedData:
    """Write ``out/calls.parquet``, ``out/labels.csv`` and ``out/allowlist.csv`` for one seed."""
    import time

    _validate(subscribers, days, seed)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = subscribers
    sizes = {
        "delivery": max(5, n // 2000),
        "ride_hailing": max(5, n // 2000),
        "business": max(5, n // 1000),
        "call_centre": max(3, n // 5000),
        "bombing": max(6, n // 5000),
        "one_ring": max(4, n // 5000),
        "bulk_dialer": max(4, n // 5000),
        "fraud_risk": max(12, n // 500),
        "spoof_ops": max(2, n // 20000),
        "foreign": max(10, n // 1000),
    }
    mobile_pool = _unique_numbers(
        rng,
        _ALL_MOBILE,
        n + sizes["delivery"] + sizes["ride_hailing"] + sizes["fraud_risk"] + 20_000,
        8,
    )
    subs, riders, drivers, rest = np.split(
        _e164(mobile_pool), np.cumsum([n, sizes["delivery"], sizes["ride_hailing"]])
    )
    fraud = rest[: sizes["fraud_risk"]]
    spoof_pool = rest[sizes["fraud_risk"] :]  # +86 mobiles that no generated subscriber holds
    resale = _e164(_unique_numbers(rng, np.array(_RESALE_PREFIXES), sizes["bombing"] + sizes["one_ring"], 8))
    businesses = _e164(_unique_numbers(rng, np.array([400]), sizes["business"], 7))  # 400 service numbers
    # Fixed lines of Beijing, Guangzhou, Shanghai and Shenzhen.
    fixed = _e164(
        _unique_numbers(rng, np.array([10, 20, 21, 755]), sizes["call_centre"] + sizes["bulk_dialer"], 8)
    )
    # Foreign callers: +1 (NANP) and +44 numbers, legitimately on international gateways.
    foreign = np.where(
        rng.random(sizes["foreign"]) < 0.5,
        10_000_000_000 + rng.integers(2_000_000_000, 9_999_999_999, sizes["foreign"]),
        440_000_000_000 + rng.integers(1_000_000_000, 9_999_999_999, sizes["foreign"]),
    )
    w = _World(rng, days, subs, _imei_base(rng, n), rng.integers(10_000, 99_999, size=n), _Calls())
    roamers = _social(w)
    _businesses(w, businesses)
    _workers(w, riders, 30, 120, 30.0)
    _workers(w, drivers, 10, 40, 25.0)
    _call_centres(w, fixed[: sizes["call_centre"]])
    _foreign(w, foreign)
    _bombing(w, resale[: sizes["bombing"]])
    _one_ring(w, resale[sizes["bombing"] :])
    _bulk(w, fixed[sizes["call_centre"] :])
    _fraud(w, fraud)
    spoofed = _spoofing(w, spoof_pool, sizes["spoof_ops"])
    labels: list[tuple[np.ndarray, str]] = [
        (subs, "normal"),
        (riders, "delivery"),
        (drivers, "ride_hailing"),
        (businesses, "business"),
        (fixed[: sizes["call_centre"]], "call_centre"),
        (foreign, "international"),
        (resale[: sizes["bombing"]], "bombing"),
        (resale[sizes["bombing"] :], "one_ring"),
        (fixed[sizes["call_centre"] :], "bulk_dialer"),
        (fraud, "fraud_risk"),
        (spoofed, "spoofed"),
    ]
    data = w.calls.concat()
    order = np.argsort(data["t"], kind="stable")
    data = {k: v[order] for k, v in data.items()}
    out.mkdir(parents=True, exist_ok=True)
    table = _to_arrow(data, rng)
    calls_path = out / "calls.parquet"
    pq.write_table(table, calls_path, row_group_size=1_000_000, compression="zstd")
    labels_path = out / "labels.csv"
    count = _write_labels(labels_path, labels, roamers)
    allow_path = out / "allowlist.csv"
    with allow_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["number", "holder"])
        for arr, holder in (
            (businesses, "business"),
            (riders, "delivery_platform"),
            (drivers, "ride_hailing"),
        ):
            writer.writerows((f"+{x}", holder) for x in arr.tolist())
    return GeneratedData(
        calls_path, labels_path, allow_path, table.num_rows, count, time.perf_counter() - started
    )


def _social(w: _World) -> np.ndarray:
    """Subscribers on a social graph: symmetric edges, each call picks an edge and a direction, so
    the people you call are the people who call you (reciprocity). Returns the numbers seen roaming."""
    rng, n, days = w.rng, w.n, w.days
    activity = rng.lognormal(0.0, 0.7, n)
    edges = 6 * n
    u = rng.choice(n, size=edges, p=activity / activity.sum())
    v = (u + rng.integers(1, 2000, size=edges)) % n  # local communities: neighbours in id space
    weight = rng.lognormal(0.0, 1.2, edges)
    k = int(n * days * 2.6)
    e = rng.choice(edges, size=k, p=weight / weight.sum())
    flip = rng.random(k) < 0.5
    a = np.where(flip, u[e], v[e])
    b = np.where(flip, v[e], u[e])
    t = _times(rng, rng.integers(0, days, k), _HOURLY)
    ring, dur = _outcome(rng, k, 0.8, 60.0)
    # Unanswered calls are redialled now and then, up to four times within minutes: the innocent
    # repeat calls the bombing rule must not confuse with 呼死你.
    redial = np.flatnonzero((dur == 0) & (rng.random(k) < 0.05))
    reps = rng.integers(1, 5, size=len(redial))
    ridx = np.repeat(redial, reps)
    offs = np.arange(len(ridx)) - np.repeat(np.cumsum(reps) - reps, reps) + 1  # 1..reps per call
    rring, rdur = _outcome(rng, len(ridx), 0.4, 45.0)
    a = np.concatenate([a, a[ridx]])
    b = np.concatenate([b, b[ridx]])
    t = np.concatenate([t, t[ridx] + offs * rng.integers(40, 180, size=len(ridx))])
    ring = np.concatenate([ring, rring])
    dur = np.concatenate([dur, rdur])
    # 5% of subscribers change handsets once during the period (one extra IMEI, legitimately).
    changer = rng.random(n) < 0.05
    change_at = EPOCH_START + rng.integers(0, days * DAY, size=n)
    imei = w.imei[a] + np.where(changer[a] & (t > change_at[a]), 1, 0)
    cell = w.cell[a] + rng.integers(0, 3, len(a))
    # A small share of calls are made abroad: a +86 caller on the roaming trunk, legitimately.
    roam = rng.random(len(a)) < 0.003
    for sel, trunk in ((~roam, _RAN), (roam, _ROAM)):
        w.calls.add(
            w.subs[a[sel]],
            w.subs[b[sel]],
            t[sel],
            (ring[sel], dur[sel]),
            trunk=trunk,
            imei=imei[sel],
            cell=None if trunk == _ROAM else cell[sel],
        )
    return np.unique(w.subs[a[roam]])


def _businesses(w: _World, numbers: np.ndarray) -> None:
    """Customers call 400 numbers (Zipf popularity); a fifth get a call-back from the PBX."""
    rng = w.rng
    k = int(w.n * w.days * 0.06)
    pop = 1.0 / np.arange(1, len(numbers) + 1)
    biz = rng.choice(len(numbers), size=k, p=pop / pop.sum())
    cust = w.random_subscribers(k)
    t = _times(rng, rng.integers(0, w.days, k), _WORKDAY + 0.2)
    w.calls.add(
        w.subs[cust],
        numbers[biz],
        t,
        _outcome(rng, k, 0.95, 180.0),
        trunk=_RAN,
        imei=w.imei[cust],
        cell=w.cell[cust],
    )
    back = rng.random(k) < 0.2
    m = int(back.sum())
    w.calls.add(
        numbers[biz[back]],
        w.subs[cust[back]],
        t[back] + rng.integers(600, 7200, m),
        _outcome(rng, m, 0.85, 120.0),
        trunk=_PBX,
    )


def _workers(w: _World, numbers: np.ndarray, lo: int, hi: int, talk: float) -> None:
    """Delivery riders / ride-hailing drivers: lo–hi calls a working day to strangers, short and
    answered; some customers call back."""
    rng = w.rng
    g = len(numbers)
    counts = rng.integers(lo, hi, size=(g, w.days)) * (rng.random((g, w.days)) < 6 / 7)
    who, day = _daily_counts(rng, counts)
    k = len(who)
    cust = w.random_subscribers(k)
    t = _times(rng, day, _WORKDAY)
    imei = _imei_base(rng, g)
    cell = rng.integers(10_000, 99_999, size=g)
    w.calls.add(
        numbers[who],
        w.subs[cust],
        t,
        _outcome(rng, k, 0.85, talk, 0.6),
        trunk=_RAN,
        imei=imei[who],
        cell=cell[who] + rng.integers(0, 40, k),
    )
    cb = rng.random(k) < 0.12
    m = int(cb.sum())
    w.calls.add(
        w.subs[cust[cb]],
        numbers[who[cb]],
        t[cb] + rng.integers(60, 1800, m),
        _outcome(rng, m, 0.9, 20.0, 0.5),
        trunk=_RAN,
        imei=w.imei[cust[cb]],
        cell=w.cell[cust[cb]],
    )


def _call_centres(w: _World, numbers: np.ndarray) -> None:
    """Consented campaigns: 150–700 calls per line on working days, within the 800-calls-per-line
    level regulators have cited."""
    rng = w.rng
    counts = rng.integers(150, 700, size=(len(numbers), w.days)) * ((np.arange(w.days) % 7) < 5)
    who, day = _daily_counts(rng, counts)
    k = len(who)
    w.calls.add(
        numbers[who],
        w.subs[w.random_subscribers(k)],
        _times(rng, day, _WORKDAY),
        _outcome(rng, k, 0.45, 90.0, 0.8),
        trunk=_SIP,
    )


def _foreign(w: _World, numbers: np.ndarray) -> None:
    """Foreign callers on international gateways (legitimate: their caller IDs are foreign)."""
    rng = w.rng
    k = int(len(numbers) * w.days * 1.5)
    w.calls.add(
        numbers[rng.integers(0, len(numbers), k)],
        w.subs[w.random_subscribers(k)],
        _times(rng, rng.integers(0, w.days, k), _HOURLY),
        _outcome(rng, k, 0.7, 120.0),
        trunk=_INTL + rng.integers(0, 3, k),
    )


def _bombing(w: _World, numbers: np.ndarray) -> None:
    """呼死你: a campaign drives 1–4 lines against one victim, each dialling every 2–3 s (jittered)
    for 8–40 minutes, ringing ~2 s; each group of lines runs 1–3 campaigns in the period."""
    rng = w.rng
    callers: list[np.ndarray] = []
    callees: list[np.ndarray] = []
    times: list[np.ndarray] = []
    line = 0
    while line < len(numbers):
        lines = numbers[line : line + int(rng.integers(1, 5))]
        line += len(lines)
        for _ in range(int(rng.integers(1, 4))):
            victim = w.subs[rng.integers(0, w.n)]
            onset = EPOCH_START + int(rng.integers(0, w.days * DAY - 3600))
            m = int(float(rng.uniform(8, 40)) * 24)  # one call per ~2.5 s
            for number in lines:
                steps = np.clip(rng.uniform(2.0, 3.0, m) + rng.normal(0, 0.15, m), 1.5, 3.5)
                times.append(np.floor(onset + rng.uniform(0, 5) + np.cumsum(steps)))
                callers.append(np.full(m, number))
                callees.append(np.full(m, victim))
    k = sum(len(c) for c in callers)
    answered = rng.random(k) < 0.03
    outcome = (np.round(rng.uniform(1.5, 2.5, k), 1), np.where(answered, rng.integers(1, 5, k), 0))
    w.calls.add(np.concatenate(callers), np.concatenate(callees), np.concatenate(times), outcome, trunk=_SIP)


def _one_ring(w: _World, numbers: np.ndarray) -> None:
    """响一声: sweeps through consecutive numbers of a range, ring ≤ 2.5 s then hang up; a few of the
    swept call back (the point of the scam)."""
    rng = w.rng
    callers, callees, times = [], [], []
    for number in numbers:
        for d in rng.choice(w.days, size=min(w.days, int(rng.integers(1, 4))), replace=False):
            count = int(rng.integers(150, 1500))
            start = int(rng.choice(_ALL_MOBILE)) * 10**8 + int(rng.integers(0, 10**8 - 5000))
            callees.append(_CC * 10**11 + start + np.cumsum(rng.integers(1, 4, count)))
            t0 = EPOCH_START + int(d) * DAY + int(rng.integers(9 * 3600, 20 * 3600))
            times.append(t0 + np.cumsum(rng.integers(3, 12, count)))
            callers.append(np.full(count, number))
    oc, oe, ot = np.concatenate(callers), np.concatenate(callees), np.concatenate(times)
    k = len(oc)
    outcome = (np.round(rng.uniform(0.5, 2.5, k), 1), np.where(rng.random(k) < 0.01, 1, 0))
    w.calls.add(oc, oe, ot, outcome, trunk=_SIP)
    back = rng.random(k) < 0.02
    m = int(back.sum())
    w.calls.add(
        oe[back], oc[back], ot[back] + rng.integers(60, 3600, m), _outcome(rng, m, 0.95, 90.0), trunk=_RAN
    )


def _bulk(w: _World, numbers: np.ndarray) -> None:
    """Bulk dialers: 1,000–3,000 calls a day to scattered subscribers, above the quota."""
    rng = w.rng
    counts = rng.integers(1000, 3000, size=(len(numbers), w.days)) * (
        rng.random((len(numbers), w.days)) < 0.8
    )
    counts[:, 0] = np.maximum(counts[:, 0], 1000)
    who, day = _daily_counts(rng, counts)
    k = len(who)
    w.calls.add(
        numbers[who],
        w.subs[w.random_subscribers(k)],
        _times(rng, day, _WORKDAY),
        _outcome(rng, k, 0.3, 25.0, 0.7),
        trunk=_SIP,
    )


def _fraud(w: _World, numbers: np.ndarray) -> None:
    """Fraud callers (the Sichuan study): 2–5 active days, 20–80 calls a day to strangers, almost no
    inbound, long talks when answered, SIMs rotated through a shared pool of 2–4 handsets."""
    rng = w.rng
    nf = len(numbers)
    pool_size = rng.integers(2, 5, nf)
    pools = _imei_base(rng, nf * 4).reshape(nf, 4)
    counts = np.zeros((nf, w.days), dtype=np.int64)
    for i in range(nf):
        first = int(rng.integers(0, max(1, w.days - 4)))
        active = slice(first, min(w.days, first + int(rng.integers(2, 6))))
        counts[i, active] = rng.integers(20, 80, len(range(w.days)[active]))
    fi, fd = _daily_counts(rng, counts)
    k = len(fi)
    victims = w.random_subscribers(k)
    again = np.flatnonzero(rng.random(k) < 0.1)  # a victim who answered is called again
    victims[again] = victims[np.maximum(0, again - 1)]
    imei = pools[fi, rng.integers(0, 4, k) % pool_size[fi]]
    w.calls.add(
        numbers[fi],
        w.subs[victims],
        _times(rng, fd, _HOURLY + _WORKDAY),
        _outcome(rng, k, 0.5, 200.0, 0.9),
        trunk=_RAN,
        imei=imei,
        cell=rng.integers(10_000, 99_999, k),
    )
    back = rng.random(k) < 0.01
    m = int(back.sum())
    w.calls.add(
        w.subs[victims[back]],
        numbers[fi[back]],
        _times(rng, fd[back], _HOURLY),
        _outcome(rng, m, 0.2, 30.0),
        trunk=_RAN,
        imei=w.imei[victims[back]],
        cell=w.cell[victims[back]],
    )


def _spoofing(w: _World, pool: np.ndarray, operations: int) -> np.ndarray:
    """Operations abroad present +86 mobile numbers on international gateway trunks (MIIT requires
    such calls to be intercepted); each ID is used 1–10 times. Returns the IDs used."""
    rng = w.rng
    used: list[np.ndarray] = []
    offset = 0
    for _ in range(operations):
        ids = pool[offset : offset + int(rng.integers(20, 80))]
        offset += len(ids)
        caller = np.repeat(ids, rng.integers(1, 11, len(ids)))
        k = len(caller)
        t = _times(rng, rng.integers(0, w.days, k), _HOURLY)
        w.calls.add(
            caller,
            w.subs[w.random_subscribers(k)],
            t,
            _outcome(rng, k, 0.4, 150.0),
            trunk=_INTL + int(rng.integers(0, 3)),
        )
        used.append(ids)
    return np.concatenate(used)


def _write_labels(path: Path, labels: list[tuple[np.ndarray, str]], roamers: np.ndarray) -> int:
    """``number,pattern`` for every generated number; subscribers seen roaming are ``roaming``."""
    roaming = set(roamers.tolist())
    count = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["number", "pattern"])
        for arr, pattern in labels:
            for x in arr.tolist():
                kind = "roaming" if pattern == "normal" and x in roaming else pattern
                writer.writerow((f"+{x}", kind))
                count += 1
    return count


def _spellings(unique: np.ndarray) -> list[pa.Array]:
    """The spellings CDR exports mix, for +86 numbers: E.164, national, 0086, 86, grouped."""
    digits = pc.cast(pa.array(unique), pa.string())
    scale = 10 ** np.floor(np.log10(np.maximum(unique, 1)) - 1).astype(np.int64)
    nsn = unique - _CC * scale
    national = pc.utf8_slice_codeunits(digits, 2)
    # Fixed lines are dialled nationally with the trunk prefix 0 (0755…); mobiles and 400 numbers without.
    trunk0 = ~((nsn // 10**10) == 1) & ~((nsn // 10**7) == 400)
    return [
        pc.binary_join_element_wise("+", digits, ""),
        pc.if_else(pa.array(trunk0), pc.binary_join_element_wise("0", national, ""), national),
        pc.binary_join_element_wise("00", digits, ""),  # 0086… (international prefix 00)
        digits,  # 86… without the plus
        pc.binary_join_element_wise(
            "+86",
            pc.utf8_slice_codeunits(digits, 2, 5),
            pc.utf8_slice_codeunits(digits, 5, 9),
            pc.utf8_slice_codeunits(digits, 9),
            " ",
        ),
    ]


def _spell(numbers: np.ndarray, choice: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Numbers as dictionary-encoded text in the drawn spellings (``choice`` 0–4; foreign numbers
    always E.164). The string work is done once per distinct number, not once per row."""
    unique, inverse = np.unique(numbers, return_inverse=True)
    is86 = (unique // 10 ** np.floor(np.log10(np.maximum(unique, 1)) - 1).astype(np.int64)) == _CC
    dictionary = pa.concat_arrays(_spellings(unique))
    index = np.where(is86[inverse], choice, 0).astype(np.int64) * len(unique) + inverse
    return pa.DictionaryArray.from_arrays(pa.array(index, mask=missing), dictionary)


def _labelled(values: np.ndarray, prefix: str) -> pa.Array:
    """Dictionary-encoded text ``prefix + value`` (null where the value is negative)."""
    unique, inverse = np.unique(values, return_inverse=True)
    text = pc.binary_join_element_wise(prefix, pc.cast(pa.array(unique), pa.string()), "")
    return pa.DictionaryArray.from_arrays(pa.array(inverse.astype(np.int64), mask=values < 0), text)


def _to_arrow(data: dict[str, np.ndarray], rng: np.random.Generator) -> pa.Table:
    k = len(data["t"])
    spelling = rng.choice(5, size=(2, k), p=[0.7, 0.15, 0.05, 0.05, 0.05]).astype(np.int8)
    # A handful of damaged rows (missing callee), as real exports have: detect counts and reports them.
    broken = rng.random(k) < 2e-5
    caller = _spell(data["caller"], spelling[0])
    callee = _spell(data["callee"], spelling[1], broken)
    imei = _labelled(data["imei"], "")
    cell = _labelled(data["cell"], "460-00-")
    trunk = pa.DictionaryArray.from_arrays(pa.array(data["trunk"]), pa.array(TRUNKS))
    # Callee carrier from the number's original allocation (routing would use the portability
    # table; the CDR field is what the switch recorded).
    prefix_carrier = np.full(1000, 4, dtype=np.int8)  # index 4 = "other"
    for ci, (_, prefixes) in enumerate(_MOBILE_PREFIXES.items()):
        prefix_carrier[list(prefixes)] = ci
    callee_nat = data["callee"] - _CC * 10**11
    mobile = (callee_nat >= 10**10) & (callee_nat < 2 * 10**10)
    carrier_idx = np.where(mobile, prefix_carrier[np.clip(callee_nat // 10**8, 0, 999)], 4)
    carrier = pa.DictionaryArray.from_arrays(pa.array(carrier_idx), pa.array([*_MOBILE_PREFIXES, "other"]))
    ts = pa.array(data["t"] * 1000, type=pa.timestamp("ms", tz="UTC"))
    return pa.table(
        {
            "caller": caller,
            "callee": callee,
            "start_time": ts,
            "ring_seconds": pa.array(data["ring"]),
            "duration_seconds": pa.array(data["duration"]),
            "caller_imei": imei,
            "callee_carrier": carrier,
            "trunk": trunk,
            "caller_cell": cell,
        }
    )
