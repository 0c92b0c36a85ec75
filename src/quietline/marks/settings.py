"""Operator settings of the reputation model (``QUIETLINE_MARKS_*``).

The display threshold is exactly what other marking platforms keep unpublished; here every figure is a
named, documented setting with the default the simulator evaluates (``quietline marks evaluate``).
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from quietline.marks.model import RateLimit, ReputationPolicy


class MarksSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QUIETLINE_MARKS_", extra="ignore")

    fast_half_life_days: float = 14.0
    slow_half_life_days: float = 125.0
    fast_share: float = 0.5
    min_reporters: int = 4
    min_established: int = 2
    confidence_threshold: float = 0.7
    min_score: float = 2.0
    max_weight: float = 1.5
    established_age_days: float = 60.0
    burst_window_minutes: float = 10.0
    burst_min_size: int = 5
    #: Marks one reporter may submit per day (the lesson "rate-limit per device and address").
    rate_limit_per_day: int = 30
    #: Bulk ingestion re-judges a number with ``k`` ≥ ``rejudge_hot_marks`` live marks at most once per
    #: ``rejudge_interval_seconds × k / rejudge_hot_marks`` seconds (at most ``rejudge_max_wait_seconds``);
    #: marks arriving in between leave it pending (``marks.judge_pending``, see ``JudgmentTimeRow``).
    rejudge_hot_marks: int = 16
    rejudge_interval_seconds: float = 5.0
    rejudge_max_wait_seconds: float = 60.0
    #: Seconds the reputation API may serve a cached answer's counts and confidences. Displayed labels,
    #: the high-risk state and the verified name are not bound by it: their changes invalidate the
    #: answer through the change feed within ``api_max_staleness_seconds`` (``quietline.marks.lookup``).
    api_cache_seconds: float = 60.0
    #: How often the serving process reads the change feed for invalidations (in the background).
    api_feed_poll_seconds: float = 0.25
    #: No answer is served while a change committed longer ago than this is unapplied: past it, a
    #: look-up waits for a feed read first. One second, the system's propagation target (DESIGN.md).
    api_max_staleness_seconds: float = 1.0
    #: Reputation look-ups one client may make per minute, across all serving processes.
    api_rate_per_minute: int = 600
    #: Serving processes that share the limit above (0: ``WEB_CONCURRENCY``, which ``quietline serve
    #: --workers`` sets, else 1). Each process admits its share, so the total holds.
    api_processes: int = 0

    def policy(self) -> ReputationPolicy:
        return ReputationPolicy(
            fast_half_life_days=self.fast_half_life_days,
            slow_half_life_days=self.slow_half_life_days,
            fast_share=self.fast_share,
            min_reporters=self.min_reporters,
            min_established=self.min_established,
            confidence_threshold=self.confidence_threshold,
            min_score=self.min_score,
            max_weight=self.max_weight,
            established_age_days=self.established_age_days,
            burst_window=timedelta(minutes=self.burst_window_minutes),
            burst_min_size=self.burst_min_size,
        )

    def rate_limit(self) -> RateLimit:
        return RateLimit(limit=self.rate_limit_per_day, window=timedelta(days=1))


@lru_cache(maxsize=1)
def get_marks_settings() -> MarksSettings:
    return MarksSettings()
