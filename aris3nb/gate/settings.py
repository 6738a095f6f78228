"""Settings of the gate and the integrity check, read from the environment in one place.

They extend the common ``Settings`` (artifacts folder, smoke password, ...) with latency
budgets, sample counts, timeouts and the freshness limits of the target's backups and
drills. Every value has a documented default.
"""

from __future__ import annotations

from pydantic import Field

from aris3nb.core.settings import MAX_RPO_DAYS, Seconds, Settings, load_settings

#: The seeded smoke account (``aris3nb.reference.seed.SMOKE_USERNAME``; a test keeps them equal).
#: Spelled out here because the playbook tooling does not import the reference service.
DEFAULT_SMOKE_USERNAME = "smoke.admin"
#: Below this many samples a percentile is not evidence: the latency check says "inconclusive".
MIN_LATENCY_SAMPLES = 200
#: The largest drill age accepted: a year (the RPO budget's limit is the same, in core.settings).
MAX_FRESHNESS_DAYS = MAX_RPO_DAYS


class GateSettings(Settings):
    """``Settings`` plus what the gate and the integrity check read."""

    smoke_username: str = Field(default=DEFAULT_SMOKE_USERNAME, min_length=1, validation_alias="ARIS3_SMOKE_USERNAME")

    budget_health_ms: float = Field(
        default=120.0, gt=0, allow_inf_nan=False, validation_alias="OPS_GATE_BUDGET_HEALTH_MS"
    )
    budget_stock_ms: float = Field(
        default=300.0, gt=0, allow_inf_nan=False, validation_alias="OPS_GATE_BUDGET_STOCK_MS"
    )
    budget_reports_ms: float = Field(
        default=500.0, gt=0, allow_inf_nan=False, validation_alias="OPS_GATE_BUDGET_REPORTS_MS"
    )
    budget_exports_ms: float = Field(
        default=300.0, gt=0, allow_inf_nan=False, validation_alias="OPS_GATE_BUDGET_EXPORTS_MS"
    )
    latency_samples: int = Field(
        default=MIN_LATENCY_SAMPLES, ge=1, le=100_000, validation_alias="OPS_GATE_LATENCY_SAMPLES"
    )
    latency_warmup: int = Field(default=20, ge=0, le=10_000, validation_alias="OPS_GATE_LATENCY_WARMUP")
    latency_deadline_sec: Seconds = Field(default=60.0, validation_alias="OPS_GATE_LATENCY_DEADLINE_SEC")
    http_timeout_sec: Seconds = Field(default=5.0, validation_alias="OPS_GATE_HTTP_TIMEOUT_SEC")
    smoke_timeout_sec: Seconds = Field(default=300.0, validation_alias="OPS_GATE_SMOKE_TIMEOUT_SEC")

    #: ``drill.freshness``: the last passing drill of a backup of the target may be at most this
    #: old (days; fractions allowed).
    drill_max_age_days: float = Field(
        default=7.0, gt=0, le=MAX_FRESHNESS_DAYS, allow_inf_nan=False, validation_alias="OPS_DRILL_MAX_AGE_DAYS"
    )

    integrity_idempotency_max_age_sec: Seconds = Field(
        default=900.0, validation_alias="OPS_INTEGRITY_IDEMPOTENCY_MAX_AGE_SEC"
    )
    integrity_statement_timeout_sec: Seconds = Field(
        default=120.0, validation_alias="OPS_INTEGRITY_STATEMENT_TIMEOUT_SEC"
    )

    def budgets_ms(self) -> dict[str, float]:
        """The p95 budget of each measured endpoint, by budget name."""
        return {
            "health": self.budget_health_ms,
            "stock": self.budget_stock_ms,
            "reports": self.budget_reports_ms,
            "exports": self.budget_exports_ms,
        }


def load_gate_settings(**overrides: object) -> GateSettings:
    """Read the environment; a value that does not validate is a one-line usage error."""
    return load_settings(GateSettings, **overrides)
