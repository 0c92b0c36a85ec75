"""Per-caller traffic features as Ibis expressions: one code base for DuckDB and PySpark.

The features are the ones the literature finds discriminating (REFERENCE.md "Abnormal traffic"):
volume, distinct callees and calls per callee, answer rate, short-call and short-ring ratios, ring
and talk time, night share, reciprocity, outgoing share, active days, device (IMEI) count and trunk
mix; plus windowed maxima the rules need (calls to one callee in a 10-minute window, calls in one
local day). Numbers are normalised in the engine, vectorised, never by a Python parser per row:
spaces and separators are stripped, ``+``/``00``/``0086``/``86`` prefixes and the domestic trunk
prefix ``0`` resolved, and the result kept as the E.164 digits in a 64-bit integer (ITU-T E.164:
at most 15 digits), so grouping and joining run on integers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import ibis
import ibis.expr.types as ir
import pyarrow as pa

#: Columns every call record must carry (issue 7 schema); rows missing one are counted, not used.
REQUIRED = ("caller", "callee", "start_time", "ring_seconds", "duration_seconds")
OPTIONAL = ("caller_imei", "callee_carrier", "trunk", "caller_cell")
#: China Standard Time is UTC+8 all year; "night" and "day" are local.
CST_OFFSET = 8 * 3600
DAY = 86_400
#: Hop of the sliding windows on calls to one callee: windows are 10 minutes long, every 5 minutes.
HOP_SECONDS = 300
#: Night is 00:00–06:00 local time.
NIGHT_END_HOUR = 6
#: A call that rings this long or less and is not answered is a "one ring" (响一声).
ONE_RING_SECONDS = 3.0
#: Answered calls shorter than this are "short calls".
SHORT_CALL_SECONDS = 10
#: Trunks whose names start with this are international gateways (the roaming trunk is not one).
INTERNATIONAL_TRUNK_PREFIX = "intl"
CHINA_CC = "86"

#: The features the learned risk score uses, in order (the model's metadata repeats them).
MODEL_FEATURES = (
    "calls",
    "distinct_callees",
    "calls_per_callee",
    "answer_rate",
    "short_call_ratio",
    "short_ring_ratio",
    "mean_ring",
    "mean_talk",
    "night_share",
    "reciprocity",
    "outgoing_share",
    "active_days",
    "calls_per_active_day",
    "imei_count",
    "intl_share",
    "trunk_count",
)


def normalise_number(raw: ir.StringValue) -> ir.StringValue:
    """The E.164 digits (no ``+``) of any common spelling of a number; empty when it is not one.

    Rules (ITU-T E.164; China's numbering plan, MIIT 电信网编号计划): spaces and separators are
    dropped; ``+CC…`` stays; ``00CC…`` (the international prefix) becomes ``+CC…``; anything else
    is national: a leading ``86`` country code or ``0`` trunk prefix is dropped and ``+86`` put in
    front (mobile ``1…``, fixed ``0755…``, 400/800, 95/96 service numbers, short codes). The
    result must be 5–15 digits after the ``+``. A bare 8-digit local number that happens to start
    with 86 cannot be told from a country code without the caller's area; it is read as +86.

    Each step reads the previous one once, so the SQL stays linear in size on every backend, and
    no step uses back-references (whose syntax differs between DuckDB's RE2 and Spark's Java regex).
    """
    stripped = raw.re_replace(r"[ \t\-().]", "").re_replace(r"^00", "+")
    e164 = ibis.ifelse(
        stripped.startswith("+"), stripped, "+" + CHINA_CC + stripped.re_replace(r"^(86|0)", "")
    )
    return e164.re_extract(r"^\+([1-9][0-9]{4,14})$", 1).nullif("")


def epoch_seconds(column: ir.Value) -> ir.IntegerValue:
    """Seconds since 1970 UTC of a timestamp, ISO 8601 text (with offset) or numeric column."""
    dtype = column.type()
    if dtype.is_timestamp():
        return column.epoch_seconds()
    if dtype.is_numeric():
        return column.cast("int64")
    ts = column.cast("string").try_cast("timestamp('UTC')")
    return ts.epoch_seconds()


def spellings(raw: ir.Table) -> ir.Table:
    """Every distinct spelling of a caller or callee with its E.164 number (null when invalid).

    Call records repeat the same few hundred thousand numbers millions of times, so the string
    work is done once per spelling and joined back, instead of once per row.
    """
    check_columns(raw)
    u = raw.select(s=raw.caller.cast("string")).union(raw.select(s=raw.callee.cast("string")), distinct=True)
    return u.mutate(n=normalise_number(u.s).cast("int64"))


def check_columns(raw: ir.Table) -> None:
    from quietline.platform.errors import InvalidInput

    missing_cols = [c for c in REQUIRED if c not in raw.columns]
    if missing_cols:
        raise InvalidInput(
            f"call records lack required column(s) {', '.join(missing_cols)}; expected {', '.join(REQUIRED)}",
            field="input",
        )


def prepare(raw: ir.Table, numbers: ir.Table) -> ir.Table:
    """Normalise numbers (through the :func:`spellings` table), times and measures, keeping every
    row with a ``missing`` flag. The result is meant to be materialised once (see
    ``detect.materialise``); :func:`usable` and :func:`quality` then read it.
    """
    check_columns(raw)
    a = numbers
    b = numbers.view()
    joined = raw.left_join(a, raw.caller.cast("string") == a.s).left_join(b, raw.callee.cast("string") == b.s)
    caller = joined.n
    callee = joined.n_right
    raw = joined
    ts = epoch_seconds(raw.start_time)
    ring = raw.ring_seconds.try_cast("float64")
    dur = raw.duration_seconds.try_cast("float64")
    trunk = raw.trunk.cast("string") if "trunk" in raw.columns else ibis.literal(None, "string")
    imei = raw.caller_imei.cast("string") if "caller_imei" in raw.columns else ibis.literal(None, "string")
    missing = (
        raw.caller.isnull()
        | raw.callee.isnull()
        | ts.isnull()
        | ring.isnull()
        | dur.isnull()
        | (ring < 0)
        | (dur < 0)
    )
    return raw.select(
        caller=caller,
        callee=callee,
        ts=ts,
        ring=ring,
        dur=dur,
        # Only how many distinct devices and trunks a number uses matters downstream; 64-bit hashes
        # keep the materialised table free of strings.
        # keep the materialised table free of strings. A missing value stays missing (engines hash
        # NULL to a constant, which would count as one device).
        imei=ibis.ifelse(imei.isnull(), ibis.null("int64"), imei.hash().cast("int64")),
        trunk=ibis.ifelse(trunk.isnull(), ibis.null("int64"), trunk.hash().cast("int64")),
        intl=trunk.startswith(INTERNATIONAL_TRUNK_PREFIX).fill_null(False),
        missing=missing.fill_null(True),
    )


def is_china(number: ir.IntegerValue) -> ir.BooleanValue:
    """Whether E.164 digits (as an integer) carry country code 86: 8 to 11 national digits after
    it (China's plan; no other country code starts with 86 — 852/853/886 start otherwise)."""
    return (
        ((number >= 86 * 10**8) & (number < 87 * 10**8))
        | ((number >= 86 * 10**9) & (number < 87 * 10**9))
        | ((number >= 86 * 10**10) & (number < 87 * 10**10))
        | ((number >= 86 * 10**11) & (number < 87 * 10**11))
    )


def _status(t: ir.Table) -> ir.StringValue:
    return ibis.cases(
        (t.missing, "missing_field"),
        (t.caller.isnull() | t.callee.isnull(), "invalid_number"),
        else_="ok",
    )


def quality(prepared: ir.Table) -> ir.Table:
    """Rows by status: ``ok``, ``missing_field`` (a required value absent or negative) or
    ``invalid_number`` (a caller or callee that is no phone number). Never silently dropped."""
    t = prepared.mutate(status=_status(prepared))
    return t.group_by("status").aggregate(rows=t.count())


def usable(prepared: ir.Table) -> ir.Table:
    """The rows the detectors use."""
    return prepared.filter(_status(prepared) == "ok").drop("missing")


def caller_features(calls: ir.Table, window_min_pair_calls: int = 2) -> ir.Table:
    """One row per number that placed calls, with the features and their evidence.

    The sliding windows on calls to one callee are computed only for (caller, callee) pairs with at
    least ``window_min_pair_calls`` calls in the whole input: a pair below that cannot reach a
    window threshold of that size, and skipping the rest keeps the windowing off the bulk of the
    traffic (the rules pass their bombing threshold here).
    """
    local = calls.ts + CST_OFFSET
    c = calls.mutate(
        day=(local // DAY).cast("int64"),
        night=((local % DAY) < NIGHT_END_HOUR * 3600),
        answered=calls.dur > 0,
        one_ring=(calls.ring <= ONE_RING_SECONDS) & (calls.dur == 0),
        short=(calls.dur > 0) & (calls.dur < SHORT_CALL_SECONDS),
        bucket=(calls.ts // HOP_SECONDS).cast("int64"),
    )
    per_caller = c.group_by(number=c.caller).aggregate(
        calls=c.count(),
        answered=c.answered.sum(),
        one_ring=c.one_ring.sum(),
        short=c.short.sum(),
        night=c.night.sum(),
        ring_sum=c.ring.sum(),
        talk_sum=c.dur.sum(),
        # Exact distinct counts over 64-bit hashes (HyperLogLog sketches cost more per group here).
        imei_count=c.imei.nunique(),
        trunk_count=c.trunk.nunique(),
        intl86=(c.intl & is_china(c.caller)).sum(),
        intl=c.intl.sum(),
        first_ts=c.ts.min(),
        last_ts=c.ts.max(),
    )
    pairs = c.group_by(caller=c.caller, callee=c.callee).aggregate(n=c.count())
    rev = pairs.select(rcaller=pairs.callee, rcallee=pairs.caller)
    recip = pairs.left_join(rev, [pairs.caller == rev.rcaller, pairs.callee == rev.rcallee])
    per_pairs = recip.group_by(number=recip.caller).aggregate(
        distinct_callees=recip.count(),
        reciprocated=recip.rcaller.notnull().sum(),
    )
    inbound = pairs.group_by(number=pairs.callee).aggregate(in_calls=pairs.n.sum())
    days = c.group_by(number=c.caller, day=c.day).aggregate(n=c.count())
    per_day = days.group_by("number").aggregate(
        active_days=days.count(),
        max_day_calls=days.n.max(),
        max_day=days.day.argmax(days.n),
    )
    # Calls to one callee in sliding 10-minute windows (5-minute hop): a 5-minute bucket plus the one
    # before it.
    heavy = pairs.filter(pairs.n >= max(2, window_min_pair_calls)).select("caller", "callee")
    hc = c.semi_join(heavy, [c.caller == heavy.caller, c.callee == heavy.callee])
    b = hc.group_by(caller=hc.caller, callee=hc.callee, bucket=hc.bucket).aggregate(n=hc.count())
    w = ibis.window(group_by=[b.caller, b.callee], order_by=b.bucket)
    prev_bucket = b.bucket.lag().over(w)
    prev_n = b.n.lag().over(w)
    b = b.mutate(win=b.n + ibis.ifelse(prev_bucket == b.bucket - 1, prev_n, 0))
    # The busiest window, ties broken towards the earliest (2^24 buckets of 5 minutes reach 2129),
    # so every backend reports the same window as evidence.
    b = b.mutate(rank=b.win.cast("int64") * 16_777_216 - b.bucket)
    per_window = b.group_by(number=b.caller).aggregate(
        max_window_calls=b.win.max(),
        window_victim=b.callee.argmax(b.rank),
        window_bucket=b.bucket.argmax(b.rank),
        bombing_last_bucket=b.bucket.max(),
    )
    f = per_caller.left_join(per_pairs, "number").select(~ibis.selectors.endswith("_right"))
    f = f.left_join(per_day, "number").select(~ibis.selectors.endswith("_right"))
    f = f.left_join(per_window, "number").select(~ibis.selectors.endswith("_right"))
    f = f.left_join(inbound, "number").select(~ibis.selectors.endswith("_right"))
    calls_f = f.calls.cast("float64")
    in_calls = f.in_calls.fill_null(0)
    distinct = f.distinct_callees.fill_null(0)
    active = f.active_days.fill_null(1)
    return f.mutate(
        in_calls=in_calls,
        max_window_calls=f.max_window_calls.fill_null(1),
        distinct_callees=distinct,
        calls_per_callee=calls_f / ibis.greatest(distinct, 1),
        distinct_ratio=distinct.cast("float64") / calls_f,
        answer_rate=f.answered / calls_f,
        short_call_ratio=f.short / calls_f,
        short_ring_ratio=f.one_ring / calls_f,
        mean_ring=f.ring_sum / calls_f,
        mean_talk=f.talk_sum / ibis.greatest(f.answered, 1),
        night_share=f.night / calls_f,
        reciprocity=f.reciprocated.fill_null(0).cast("float64") / ibis.greatest(distinct, 1),
        outgoing_share=calls_f / (calls_f + in_calls),
        calls_per_active_day=calls_f / active,
        intl_share=f.intl / calls_f,
    )


def data_span(calls: ir.Table) -> ir.Table:
    """First and last call time of the input (bombing "in progress" is judged against the end)."""
    return calls.aggregate(first_ts=calls.ts.min(), last_ts=calls.ts.max(), rows=calls.count())


@contextmanager
def quiet_engine_deprecations() -> Iterator[None]:
    """Silence deprecation warnings raised *inside* Ibis 12 and PySpark (DuckDB's deprecated
    ``fetch_arrow_table``, pandas' deprecated ``future.infer_string`` option and ``copy`` keyword). They are
    not ours to fix and would fail the test suite, which runs with warnings as errors; anything
    else still warns."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", message=r"The 'future\.infer_string' option is deprecated")
        # PySpark's toPandas (used by Ibis' pyspark backend) still passes pandas' deprecated ``copy``.
        warnings.filterwarnings("ignore", message=r"The copy keyword is deprecated")
        yield


def to_arrow(expr: ir.Table) -> pa.Table:
    """Execute an expression on its backend and return the result as a pyarrow table."""
    with quiet_engine_deprecations():
        return expr.to_pyarrow()
