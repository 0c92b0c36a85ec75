"""Settings from ``QUIETLINE_*`` environment variables (pydantic-settings).

Development conveniences (the development SMS sender, the open screening endpoint) are off unless
``QUIETLINE_ENV=development`` asks for them, so a production install can never expose them by omission.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    PRODUCTION = "production"
    DEVELOPMENT = "development"
    TEST = "test"


class ConsentPolicy(StrEnum):
    """DESIGN.md "Consent": strict (no explicit consent = refusal) is the default; opt-out is weaker."""

    STRICT = "strict"
    OPT_OUT = "opt_out"


#: Proof of consent is kept at least five months (2020 draft 通信短信息和语音呼叫服务管理规定, art. on
#: port commercial SMS consent proof): about 153 days; a shorter setting is refused.
MIN_CONSENT_RETENTION_DAYS = 153


def default_database_url() -> str:
    return f"sqlite:///{Path('var/quietline.db').as_posix()}"


class Settings(BaseSettings):
    """Everything an operator can set; each field documents why it exists."""

    model_config = SettingsConfigDict(env_prefix="QUIETLINE_", extra="ignore")

    env: Environment = Environment.PRODUCTION
    database_url: str = Field(default_factory=default_database_url)
    #: Server-side secret for HMAC of one-time codes and session tokens. Generated per data directory
    #: when unset (see ``platform.secrets``); set it explicitly when several processes share a database.
    secret_key: str | None = None
    consent_policy: ConsentPolicy = ConsentPolicy.STRICT
    consent_retention_days: int = 153
    #: ``sms_sender=development`` keeps messages in the development outbox; allowed only in development.
    sms_sender: str = "auto"
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 5
    otp_send_per_number_per_hour: int = 5
    otp_send_per_client_per_hour: int = 20
    #: Failed staff sign-ins one client may make in an hour before it is refused without a check.
    staff_login_failures_per_client_per_hour: int = 10
    personal_list_limit: int = 1000
    dev_open_screen: bool = False
    wash_daily_quota: int = 50_000_000
    #: PEM file of the trusted STI-CA roots for caller authentication (STIR/SHAKEN); without it the
    #: screening engine still checks signatures, claims and the caller-number ledger, but cannot say
    #: that a signer is trusted (RFC 8224 reason 437).
    callerauth_trust_roots: str | None = None
    #: How long a reporter may appeal an answered complaint before the case closes (days).
    complaint_appeal_window_days: int = Field(default=15, ge=1, le=365)
    #: Substantiated complaints (distinct reporters) that put a number on the high-risk list as suspected.
    high_risk_min_substantiated_complaints: int = Field(default=3, ge=1, le=1000)
    #: How long an automatic block of a call bombing in progress lasts before it lifts by itself (hours).
    bombing_block_hours: int = Field(default=24, ge=1, le=24 * 30)
    #: Hours between full reputation refreshes (evidence decays even when no one marks).
    marks_refresh_hours: float = Field(default=1.0, gt=0, le=24 * 7)
    #: Local time (China) of the daily 拦截 digest SMS, HH:MM.
    digest_time: str = Field(default="20:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @field_validator("consent_retention_days")
    @classmethod
    def _retention_not_shorter_than_rule(cls, value: int) -> int:
        if value < MIN_CONSENT_RETENTION_DAYS:
            raise ValueError(
                f"QUIETLINE_CONSENT_RETENTION_DAYS={value} is shorter than the 5-month minimum "
                f"({MIN_CONSENT_RETENTION_DAYS} days) for keeping proof of consent"
            )
        return value

    @model_validator(mode="after")
    def _development_only(self) -> Settings:
        if self.dev_open_screen and self.env is not Environment.DEVELOPMENT:
            raise ValueError("QUIETLINE_DEV_OPEN_SCREEN=1 is refused unless QUIETLINE_ENV=development")
        if self.sms_sender == "development" and self.env is Environment.PRODUCTION:
            raise ValueError(
                "QUIETLINE_SMS_SENDER=development is refused unless QUIETLINE_ENV is development"
            )
        return self

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @property
    def uses_development_sms(self) -> bool:
        """The development sender is used only when development settings are on (or tests ask)."""
        if self.sms_sender == "auto":
            return self.env in (Environment.DEVELOPMENT, Environment.TEST)
        return self.sms_sender == "development"

    @property
    def data_dir(self) -> Path:
        """Where local state lives: next to the SQLite file, or ``./var`` for server databases."""
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///")).parent
        return Path("var")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings`` instead of patching this."""
    return Settings()
