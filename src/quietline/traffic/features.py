"""Per-caller traffic features as Ibis expressions: one code base for DuckDB and PySpark.

The features are the ones the literature finds discriminating (REFERENCE.md "Abnormal traffic"):
volume, distinct callees and calls per callee, answer rate, short-call and short-ring ratios, ring
and talk time, night share, reciprocity, outgoing share, active days, device (IMEI) count and trunk
mix; plus windowed maxima the rules need (calls to one callee in a 10-minute window, calls in one
local day). Numbers are normalised in the engine, vectorised, never by a Python parser per row:
spaces and separators are stripped, ``+``/``00``/``0086``/``86`` prefixes and the domestic trunk
prefix ``0`` resolved, and the result kept as the E.164 digits in a 64-bit integer (ITU-T E.164:
at most 15 digits), so grouping and joining run on integers.

Where the time goes at 10 M calls, and why the pipeline is shaped as it is (``detect.detect``):
each distinct spelling is normalised once (:func:`spellings`) and joined back on a 64-bit hash of
its text; the normalised calls are materialised once, without strings (:func:`prepare`); the
features then read that table in four groupings (:func:`caller_features`), none of them a COUNT
DISTINCT or a window function, and only the rows that can become findings leave the engine.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
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
    if dtype.is_floating():
        return column.floor().cast("int64")  # whole seconds, like a timestamp's (never rounded up)
    if dtype.is_numeric():
        return column.cast("int64")
    ts = column.cast("string").try_cast("timestamp('UTC')")
    return ts.epoch_seconds()


def spellings(raw: ir.Table) -> ir.Table:
    """Every distinct spelling of a caller or callee: its text ``s``, its E.164 number ``n`` (null
    when it is none) and a 64-bit hash ``h`` of the text.

    Call records repeat the same few hundred thousand numbers millions of times, so the string
    work is done once per spelling and joined back, instead of once per row. The hash lets the
    join back run on integers (see :func:`prepare`); it is used only when :func:`hash_is_unique`
    holds on this input.
    """
    check_columns(raw)
    u = raw.select(s=raw.caller.cast("string")).union(raw.select(s=raw.callee.cast("string")), distinct=True)
    return u.mutate(n=normalise_number(u.s).cast("int64"), h=u.s.hash())


def hash_is_unique(numbers: ir.Table) -> ir.BooleanScalar:
    """Whether no two spellings share a hash, so joining on the hash is exact (DuckDB's hash is 64
    bits wide: a collision among a million spellings has odds near 10^-8; Spark's is 32 bits, where
    collisions are expected on large inputs and the join falls back to the text)."""
    return numbers.h.nunique() == numbers.count()


def check_columns(raw: ir.Table) -> None:
    from quietline.platform.errors import InvalidInput

    missing_cols = [c for c in REQUIRED if c not in raw.columns]
    if missing_cols:
        raise InvalidInput(
            f"call records lack required column(s) {', '.join(missing_cols)}; expected {', '.join(REQUIRED)}",
            field="input",
        )


def prepare(raw: ir.Table, numbers: ir.Table, *, by_hash: bool = False) -> ir.Table:
    """Normalise numbers (through the :func:`spellings` table), times and measures, keeping every
    row with a ``missing`` flag.

    With ``by_hash`` (only when :func:`hash_is_unique` holds) the spellings are joined back on
    their hash, an integer, rather than on the text. The result holds no strings and is meant to
    be materialised once (see ``detect.materialise``); :func:`usable` and :func:`quality` read it.
    """
    check_columns(raw)
    a = numbers.select(ka=numbers.h if by_hash else numbers.s, caller_n=numbers.n)
    b = numbers.select(kb=numbers.h if by_hash else numbers.s, callee_n=numbers.n)
    caller_key = raw.caller.cast("string").hash() if by_hash else raw.caller.cast("string")
    callee_key = raw.callee.cast("string").hash() if by_hash else raw.callee.cast("string")
    raw = raw.left_join(a, caller_key == a.ka).left_join(b, callee_key == b.kb)
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
        caller=raw.caller_n,
        callee=raw.callee_n,
        ts=ts,
        ring=ring,
        dur=dur,
        # Only how many distinct devices and trunks a number uses matters downstream; 64-bit hashes
        # keep the materialised table free of strings. A missing value stays missing (engines hash
        # NULL to a constant, which would count as one device).
        imei=ibis.ifelse(imei.isnull(), ibis.null("int64"), imei.hash()),
        trunk=ibis.ifelse(trunk.isnull(), ibis.null("int64"), trunk.hash()),
        intl=trunk.startswith(INTERNATIONAL_TRUNK_PREFIX).fill_null(False),
        missing=missing.fill_null(True),
    )


def _count_if(condition: bool) -> int:  # type: ignore[empty-body]
    """How many rows satisfy ``condition`` (NULL counts as false): DuckDB's and Spark SQL's own
    ``COUNT_IF``. Ibis spells a boolean sum ``SUM(CAST(x AS INT))``, which DuckDB accumulates as a
    128-bit sum; at 10 M calls the per-device grouping takes 1.2 CPU seconds that way against 0.8."""


count_if: Callable[[ir.BooleanValue], ir.IntegerScalar] = ibis.udf.agg.builtin(_count_if, name="count_if")


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
    ok = ~prepared.missing & prepared.caller.notnull() & prepared.callee.notnull()
    return prepared.filter(ok).drop("missing")


def caller_features(calls: ir.Table, window_min_pair_calls: int = 2) -> ir.Table:
    """One row per number that placed calls, with the features and their evidence.

    ``calls`` are :func:`usable` rows. Each grouping reads the calls once:

    * per (caller, device, trunk) – nearly one row per caller – the sums, from which the per-caller
      totals and the distinct device and trunk counts follow without a COUNT DISTINCT pass each;
    * per (caller, callee) pair – distinct callees, reciprocity and inbound calls;
    * per (caller, local day) – active days and the busiest day;
    * per (caller, callee, 5-minute bucket), only for pairs with at least ``window_min_pair_calls``
      calls in the whole input (a pair below that cannot reach a window threshold of that size, and
      skipping the rest keeps the windowing off the bulk of the traffic; the rules pass their
      bombing threshold here) – calls to one callee in sliding 10-minute windows. Below that
      threshold ``max_window_calls`` is therefore a lower bound, never an overstatement.
    """
    c = calls
    # The per-call flags are written inline in each aggregate (not as a derived table), so every
    # grouping reads the materialised calls directly instead of an intermediate copy of them.
    local = c.ts + CST_OFFSET
    answered = c.dur > 0
    dev = c.group_by(number=c.caller, imei=c.imei, trunk=c.trunk).aggregate(
        calls=c.count(),
        answered=count_if(answered),
        one_ring=count_if((c.ring <= ONE_RING_SECONDS) & (c.dur == 0)),
        short=count_if(answered & (c.dur < SHORT_CALL_SECONDS)),
        night=count_if((local % DAY) < NIGHT_END_HOUR * 3600),
        ring_sum=c.ring.sum(),
        talk_sum=c.dur.sum(),
        intl=count_if(c.intl),
        first_ts=c.ts.min(),
        last_ts=c.ts.max(),
    )
    per_caller = dev.group_by("number").aggregate(
        calls=dev.calls.sum(),
        answered=dev.answered.sum(),
        one_ring=dev.one_ring.sum(),
        short=dev.short.sum(),
        night=dev.night.sum(),
        ring_sum=dev.ring_sum.sum(),
        talk_sum=dev.talk_sum.sum(),
        # Distinct over the (caller, device, trunk) groups: exact, and NULL (unknown) is not a device.
        imei_count=dev.imei.nunique(),
        trunk_count=dev.trunk.nunique(),
        intl=dev.intl.sum(),
        first_ts=dev.first_ts.min(),
        last_ts=dev.last_ts.max(),
    )
    # Calls on an international trunk presenting a +86 caller ID: whether the ID is Chinese depends
    # on the number alone, so it is decided once per caller rather than once per call.
    per_caller = per_caller.mutate(intl86=ibis.ifelse(is_china(per_caller.number), per_caller.intl, 0))
    pairs = c.group_by(caller=c.caller, callee=c.callee).aggregate(n=c.count())
    rev = pairs.select(rcaller=pairs.callee, rcallee=pairs.caller)
    recip = pairs.left_join(rev, [pairs.caller == rev.rcaller, pairs.callee == rev.rcallee])
    per_pairs = recip.group_by(number=recip.caller).aggregate(
        distinct_callees=recip.count(),
        reciprocated=count_if(recip.rcaller.notnull()),
    )
    inbound = pairs.group_by(number=pairs.callee).aggregate(in_calls=pairs.n.sum())
    # Day and bucket keys are 32-bit (days and 5-minute buckets since 1970 fit until the year 22000):
    # narrower group keys make these groupings of every call measurably cheaper.
    days = c.group_by(number=c.caller, day=(local // DAY).cast("int32")).aggregate(n=c.count())
    # The busiest day, ties broken towards the earliest (days since 1970 stay below 2^24), so the
    # evidence is the same on every run and backend. The day is read back from the top rank
    # (rank = calls * 2^24 - day) rather than by an ARG_MAX, which DuckDB runs as a sorted aggregate.
    days = days.mutate(rank=days.n.cast("int64") * 16_777_216 - days.day.cast("int64"))
    per_day = days.group_by("number").aggregate(
        active_days=days.count(),
        max_day_calls=days.n.max(),
        top_day_rank=days.rank.max(),
    )
    per_day = per_day.mutate(
        max_day=per_day.max_day_calls.cast("int64") * 16_777_216 - per_day.top_day_rank
    ).drop("top_day_rank")
    # Calls to one callee in sliding 10-minute windows (5-minute hop): a 5-minute bucket plus the one
    # before it, found by joining each bucket to its predecessor (an equi-join on integers is
    # cheaper than a LAG window, which sorts every pair's buckets).
    heavy = pairs.filter(pairs.n >= max(2, window_min_pair_calls)).select("caller", "callee")
    hc = c.semi_join(heavy, [c.caller == heavy.caller, c.callee == heavy.callee])
    b = hc.group_by(
        caller=hc.caller, callee=hc.callee, bucket=(hc.ts // HOP_SECONDS).cast("int32")
    ).aggregate(n=hc.count())
    prev = b.select(pcaller=b.caller, pcallee=b.callee, pbucket=b.bucket + 1, pn=b.n)
    bw = b.left_join(prev, [b.caller == prev.pcaller, b.callee == prev.pcallee, b.bucket == prev.pbucket])
    bw = bw.select(caller=bw.caller, callee=bw.callee, bucket=bw.bucket, win=bw.n + bw.pn.fill_null(0))
    # The busiest window, ties broken towards the earliest (2^24 buckets of 5 minutes reach 2129)
    # and then the lowest victim number, so every run and backend reports the same evidence.
    bw = bw.mutate(rank=bw.win.cast("int64") * 16_777_216 - bw.bucket.cast("int64"))
    # Each heavy pair's busiest window first (one row per pair), then each caller's from those: the
    # buckets are read once, and the victim is picked among the caller's pairs, not its buckets
    # (reading the bucket table twice made the engine share it through a fan-out copy).
    per_pair = bw.group_by(caller=bw.caller, callee=bw.callee).aggregate(
        pair_win=bw.win.max(), pair_rank=bw.rank.max(), last_bucket=bw.bucket.max()
    )
    top = per_pair.group_by(number=per_pair.caller).aggregate(
        max_window_calls=per_pair.pair_win.max(),
        top_rank=per_pair.pair_rank.max(),
        bombing_last_bucket=per_pair.last_bucket.max().cast("int64"),
    )
    at_top = per_pair.join(top, [per_pair.caller == top.number, per_pair.pair_rank == top.top_rank])
    victims = at_top.group_by(victim_of=at_top.caller).aggregate(window_victim=at_top.callee.min())
    per_window = top.join(victims, top.number == victims.victim_of).select(
        "number",
        "max_window_calls",
        "window_victim",
        "bombing_last_bucket",
        window_bucket=top.max_window_calls.cast("int64") * 16_777_216 - top.top_rank,
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


#: At most about this many points in a volume series (an hour each up to a month of records).
VOLUME_POINTS = 744


def volume_step(first_ts: int, last_ts: int) -> int:
    """The time step of a volume series: an hour, or whole hours so that it has at most
    :data:`VOLUME_POINTS` points."""
    hours = max(1, (last_ts - first_ts) // 3600 + 1)
    return 3600 * max(1, -(-hours // VOLUME_POINTS))


def call_volume(calls: ir.Table, flagged: list[int], step: int) -> ir.Table:
    """Calls per time step, and how many of them numbers in ``flagged`` placed (for the report page)."""
    marks = ibis.memtable(pa.table({"flagged_number": pa.array(flagged, type=pa.int64())}))
    j = calls.left_join(marks, calls.caller == marks.flagged_number)
    per = j.group_by(start=(j.ts // step).cast("int64") * step).aggregate(
        calls=j.count(), flagged_calls=j.flagged_number.notnull().sum()
    )
    return per.mutate(
        step=ibis.literal(step, "int64"), flagged_calls=per.flagged_calls.cast("int64")
    ).order_by("start")


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
