"""The complaint model: state machine, report validation, routing, deadlines and alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.complaints.model import (
    OPEN_STATES,
    TRANSITIONS,
    Alert,
    CaseState,
    DeadlinePolicy,
    Event,
    IllegalTransition,
    LedgerHolder,
    Measure,
    NumberFacts,
    ReportInput,
    Result,
    RouteBasis,
    Stage,
    Timeline,
    alerts,
    compute_deadlines,
    may_appeal,
    merges_with,
    parse_measure,
    route,
    transition,
    validate_report,
)
from quietline.platform.errors import Conflict, InvalidInput
from quietline.platform.workdays import CHINA_TZ, STATUTORY, WorkingCalendar
from quietline.vocabulary import CallForm, Category, Channel, NumberType, VocabularyError

POLICY = DeadlinePolicy()


def cst(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, tzinfo=CHINA_TZ)


# ------------------------------------------------------------------------------------ state machine


@given(st.lists(st.sampled_from(list(Event)), max_size=30))
def test_no_illegal_transition_is_accepted(events: list[Event]) -> None:
    state = CaseState.RECEIVED
    for event in events:
        if (state, event) in TRANSITIONS:
            state = transition(state, event)
        else:
            with pytest.raises(IllegalTransition):
                transition(state, event)
    assert state in CaseState


@given(st.sampled_from(list(CaseState)), st.sampled_from(list(Event)))
def test_transition_table_is_the_only_authority(state: CaseState, event: Event) -> None:
    expected = TRANSITIONS.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            transition(state, event)
        assert info.value.field == "state"
        assert isinstance(info.value, Conflict)
    else:
        assert transition(state, event) is expected


def test_happy_path_and_branches() -> None:
    s = CaseState.RECEIVED
    for event in (Event.ACCEPT, Event.FORWARD, Event.RESPOND_SUBSTANTIATED, Event.ANSWER, Event.CLOSE):
        s = transition(s, event)
    assert s is CaseState.CLOSED
    assert transition(s, Event.APPEAL) is CaseState.REOPENED
    assert transition(CaseState.REOPENED, Event.FORWARD) is CaseState.FORWARDED
    assert transition(CaseState.FORWARDED, Event.RESPOND_UNSUBSTANTIATED) is CaseState.VERIFIED
    assert transition(CaseState.RECEIVED, Event.REJECT) is CaseState.REJECTED
    with pytest.raises(IllegalTransition, match="cannot answer"):
        transition(CaseState.FORWARDED, Event.ANSWER)  # no answer before the company's feedback
    with pytest.raises(IllegalTransition):
        transition(CaseState.ACCEPTED, Event.RESPOND_SUBSTANTIATED)  # not yet forwarded
    assert CaseState.CLOSED not in OPEN_STATES


def test_appeal_window() -> None:
    answered = cst(2025, 11, 3)
    window = timedelta(days=15)
    may_appeal(CaseState.ANSWERED, answered, answered + timedelta(days=14), window)
    with pytest.raises(Conflict, match="appeal window"):
        may_appeal(CaseState.CLOSED, answered, answered + timedelta(days=16), window)
    with pytest.raises(IllegalTransition):
        may_appeal(CaseState.FORWARDED, None, answered, window)


# ----------------------------------------------------------------------------------------- reports


def report(**kw: object) -> ReportInput:
    values: dict[str, object] = {
        "channel": "call",
        "occurred_at": cst(2025, 11, 3, 9),
        "received_at": cst(2025, 11, 3, 10),
    }
    values.update(kw)
    return ReportInput(**values)  # type: ignore[arg-type]


def test_valid_call_and_sms() -> None:
    call = validate_report(report(duration_seconds=35, form="录音", category="贷款理财"))
    assert (call.channel, call.form, call.category) == (
        Channel.CALL,
        CallForm.RECORDED,
        Category.LOAN_FINANCE,
    )
    sms = validate_report(report(channel="sms", sms_text="【某贷】低息贷款 回T退订"))
    assert sms.sms_text == "【某贷】低息贷款 回T退订"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"channel": "sms", "sms_text": "x", "duration_seconds": 10}, "duration"),
        ({"channel": "sms", "sms_text": "x", "form": "live"}, "form"),
        ({"channel": "sms"}, "text"),
        ({"channel": "sms", "sms_text": "   "}, "text"),
        ({"sms_text": "广告内容"}, "text"),
        ({"duration_seconds": -1}, "duration"),
        ({"occurred_at": None}, "at"),
        ({"occurred_at": cst(2025, 11, 4)}, "at"),
        ({"channel": "fax"}, "channel"),
        ({"form": "shouting"}, "form"),
        ({"category": "cars"}, "category"),
        ({"description": "x" * 2001}, "description"),
    ],
)
def test_missing_or_contradictory_fields_are_named(kw: dict[str, object], field: str) -> None:
    with pytest.raises((InvalidInput, VocabularyError)) as info:  # both name the field
        validate_report(report(**kw))
    assert getattr(info.value, "field", None) == field


def test_merge_window_is_one_day() -> None:
    first = cst(2025, 11, 3, 10)
    assert merges_with(first, first + timedelta(hours=23))
    assert not merges_with(first, first + timedelta(hours=24, minutes=1))


def test_measures() -> None:
    assert parse_measure(Result.SUBSTANTIATED, "number_suspended", None) == (
        Measure.NUMBER_SUSPENDED,
        "number_suspended",
    )
    assert (
        parse_measure(Result.SUBSTANTIATED, "已约谈企业并限制外呼", "line_restricted")[0]
        is Measure.LINE_RESTRICTED
    )
    assert parse_measure(Result.SUBSTANTIATED, "已约谈", None)[0] is Measure.OTHER
    assert parse_measure(Result.UNSUBSTANTIATED, "快递员正常派件来电", None)[0] is Measure.NONE
    with pytest.raises(InvalidInput) as info:
        parse_measure(Result.UNSUBSTANTIATED, "x", "system_block")
    assert info.value.field == "measure"
    with pytest.raises(InvalidInput) as info:
        parse_measure(Result.SUBSTANTIATED, "  ", None)
    assert info.value.field == "action"


# ----------------------------------------------------------------------------------------- routing


def facts(e164: str, type_: NumberType, original: str | None, current: str | None) -> NumberFacts:
    return NumberFacts(e164, type_, original, current)


def test_ported_number_goes_to_its_current_carrier() -> None:
    ported = facts("+8613800138000", NumberType.MOBILE, "china_mobile", "china_telecom")
    r = route(ported, "china_telecom", None)
    assert (r.responsible_carrier, r.assisting_carrier, r.basis) == (
        "china_telecom",
        None,
        RouteBasis.PORTABILITY,
    )


def test_different_reporter_carrier_gets_the_case_too() -> None:
    number = facts("+8613800138000", NumberType.MOBILE, "china_mobile", "china_mobile")
    r = route(number, "china_unicom", None)
    assert r.responsible_carrier == "china_mobile"
    assert r.assisting_carrier == "china_unicom"
    assert "联动协查" in r.explanation
    assert r.recipients() == [("carrier", "china_mobile"), ("carrier", "china_unicom")]


def test_400_number_goes_to_ledger_holder_and_connecting_carrier() -> None:
    number = facts("+864008123456", NumberType.TOLL_FREE_400_800, None, None)
    holder = LedgerHolder("91110000MA0000000X", "china_unicom", "某保险公司")
    r = route(number, "china_unicom", holder)
    assert (r.responsible_carrier, r.responsible_company, r.assisting_carrier) == (
        "china_unicom",
        "91110000MA0000000X",
        None,
    )
    assert r.basis is RouteBasis.LEDGER
    assert ("enterprise", "91110000MA0000000X") in r.recipients()
    unlisted = route(number, "china_mobile", None)
    assert not unlisted.resolved
    assert unlisted.basis is RouteBasis.UNRESOLVED


def test_international_goes_to_terminating_carrier() -> None:
    number = facts("+447700900123", NumberType.INTERNATIONAL, None, None)
    assert route(number, "china_mobile", None).responsible_carrier == "china_mobile"


# --------------------------------------------------------------------------------------- deadlines


def test_deadlines_across_national_day_2025() -> None:
    # Accepted Fri 2025-09-26: forward by Tue Sep 30 (Sun Sep 28 is a make-up working day).
    tl = Timeline(cst(2025, 9, 26), None, None, None)
    d = compute_deadlines(tl, STATUTORY, POLICY)
    assert d[Stage.FORWARD].due == date(2025, 9, 30)
    # Feedback projected from Sep 30: Oct 9, 10, 11 (Sat, worked), 13–17, 20–24, 27, 28 → Oct 28.
    assert d[Stage.FEEDBACK].due == date(2025, 10, 28)
    assert d[Stage.FEEDBACK].projected
    assert d[Stage.ANSWER].due == date(2025, 10, 31)
    assert d.as_dates() == {"forward": "2025-09-30", "feedback": "2025-10-28", "answer": "2025-10-31"}


def test_actual_times_replace_projections() -> None:
    tl = Timeline(cst(2025, 1, 24), cst(2025, 1, 24, 11), cst(2025, 2, 7), None)
    d = compute_deadlines(tl, STATUTORY, POLICY)
    assert d[Stage.FORWARD].due == date(2025, 2, 5)  # Spring Festival: Jan 26 (worked), 27, Feb 5
    assert not d[Stage.FEEDBACK].projected
    assert d[Stage.ANSWER].due == date(2025, 2, 11)  # Feb 8 (Saturday, worked), 10, 11


def test_calendar_gap_is_reported_not_guessed() -> None:
    cal = WorkingCalendar(complete_years=frozenset({2030}))
    tl = Timeline(cst(2030, 12, 20), None, None, None)
    d = compute_deadlines(tl, cal, POLICY)
    assert d[Stage.FORWARD].due == date(2030, 12, 25)
    assert d[Stage.FEEDBACK].due is None
    assert d[Stage.FEEDBACK].uncovered == date(2031, 1, 1)
    # Meanwhile an estimate on the statutory holidays alone (Jan 1 off): shown, never enforced.
    assert d[Stage.FEEDBACK].estimate == date(2031, 1, 16)
    assert d[Stage.ANSWER].uncovered is not None and d[Stage.ANSWER].estimate == date(2031, 1, 21)
    assert d[Stage.FORWARD].estimate is None
    forwarded = Timeline(cst(2030, 12, 20), cst(2030, 12, 20, 11), None, None)
    found = alerts(compute_deadlines(forwarded, cal, POLICY), cst(2030, 12, 22), cal, POLICY)
    assert [(a.stage, a.alert) for a in found] == [(Stage.FEEDBACK, Alert.CALENDAR_GAP)]


def test_breach_and_warning() -> None:
    accepted = cst(2025, 11, 3)  # Monday; forward due Thursday Nov 6
    tl = Timeline(accepted, None, None, None)
    d = compute_deadlines(tl, STATUTORY, POLICY)
    assert d[Stage.FORWARD].due == date(2025, 11, 6)
    assert alerts(d, cst(2025, 11, 3, 12), STATUTORY, POLICY) == []
    warn = alerts(d, cst(2025, 11, 4, 12), STATUTORY, POLICY)  # two working days before
    assert [(a.stage, a.alert) for a in warn] == [(Stage.FORWARD, Alert.DUE_SOON)]
    assert alerts(d, cst(2025, 11, 6, 23), STATUTORY, POLICY)[0].alert is Alert.DUE_SOON
    late = alerts(d, cst(2025, 11, 7, 0), STATUTORY, POLICY)
    assert [(a.stage, a.alert) for a in late] == [(Stage.FORWARD, Alert.BREACH)]
    # Forwarded on time: no breach ever; forwarded late: a breach stays recorded.
    on_time = compute_deadlines(Timeline(accepted, cst(2025, 11, 6, 20), None, None), STATUTORY, POLICY)
    assert all(a.stage is not Stage.FORWARD for a in alerts(on_time, cst(2025, 12, 1), STATUTORY, POLICY))
    late_fwd = compute_deadlines(Timeline(accepted, cst(2025, 11, 10), None, None), STATUTORY, POLICY)
    assert late_fwd[Stage.FORWARD].late_by_finish()
    assert (Stage.FORWARD, Alert.BREACH) in [
        (a.stage, a.alert) for a in alerts(late_fwd, cst(2025, 11, 11), STATUTORY, POLICY)
    ]


NAIVE_MIN = datetime(2010, 1, 1)  # noqa: DTZ001 - hypothesis takes naive bounds plus a timezones strategy
NAIVE_MAX = datetime(2025, 6, 1)  # noqa: DTZ001


@given(st.datetimes(min_value=NAIVE_MIN, max_value=NAIVE_MAX, timezones=st.just(UTC)), st.integers(0, 40))
def test_deadlines_are_ordered_and_on_working_days(start: datetime, lag_days: int) -> None:
    forwarded = start + timedelta(days=lag_days % 5)
    d = compute_deadlines(Timeline(start, forwarded, None, None), STATUTORY, POLICY)
    dues = [c.due for c in d.clocks]
    assert all(x is not None for x in dues)
    assert dues == sorted(dues)  # type: ignore[type-var]
    for c in d.clocks:
        assert c.due is not None
        assert STATUTORY.is_working_day(c.due)


def test_exports_neutralise_formulas_but_keep_numbers() -> None:
    from quietline.complaints.export import to_csv

    body = to_csv([{"reported": "+8613012345678", "text": "=HYPERLINK(1)", "n": -3}]).decode("utf-8-sig")
    assert body.splitlines() == ["reported,text,n", "+8613012345678,'=HYPERLINK(1),-3"]


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"ID3\x04\x00", "audio/mpeg"),
        (b"\x00\x00\x00\x20ftypM4A ", "audio/mp4"),
    ],
)
def test_evidence_types_from_content(head: bytes, media_type: str) -> None:
    from quietline.complaints.model import sniff_evidence

    assert sniff_evidence(head + b"\x00" * 32) == media_type


def test_evidence_filenames_are_display_names_only() -> None:
    from quietline.complaints.model import clean_filename

    assert clean_filename("C:\\Users\\a\\录音.amr") == "录音.amr"
    assert clean_filename('../"x"\n.png') == "x.png"
    assert clean_filename("../") == "evidence"


def test_sms_channel_format() -> None:
    from quietline.complaints.model import parse_sms_report

    assert parse_sms_report(" 10690000123＊【某贷】秒批*回T退订 ") == ("10690000123", "【某贷】秒批*回T退订")
    for body, field in (("10690000123", "body"), ("*text", "body"), ("10690000123*  ", "text")):
        with pytest.raises(InvalidInput) as info:
            parse_sms_report(body)
        assert info.value.field == field
