"""HTTP routes of the numbers context. Thin: parse, call a query, answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from quietline.api.auth import require
from quietline.numbers import parse, queries
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["numbers"])

#: Carriers route by the current carrier; regulators and operators investigate numbers. Subscribers
#: and enterprises have no need to look up arbitrary numbers' carriers.
NumberReader = Annotated[Actor, Depends(require(Role.CARRIER, Role.REGULATOR, Role.OPERATOR))]


class NumberInfo(BaseModel):
    e164: str = Field(examples=["+8613800138000"])
    digits: str
    national: str = Field(description="As dialled inside mainland China.")
    type: str = Field(description="mobile, fixed_line, service_95_96, toll_free_400_800, resale, …")
    type_label: str
    description: str
    original_carrier: str | None = Field(description="From the number plan (first allocation).")
    original_carrier_label: str | None
    current_carrier: str | None = Field(description="From the portability records, else the original.")
    current_carrier_label: str | None
    ported: bool
    ported_at: str | None
    area_code: str | None
    never_block: bool
    portable: bool


@router.get(
    "/numbers/{number}",
    response_model=NumberInfo,
    summary="What a number is: type, original and current carrier (carrier, regulator, operator)",
)
def number_info(
    request: Request,
    actor: NumberReader,
    number: str = Path(description="Any spelling: 13800138000, +8613800138000, 010-12345678, 95588 …"),
) -> dict[str, Any]:
    """Canonical form, number type, the carrier from the number plan and the current carrier from
    the portability (携号转网) records. An invalid number answers 422 naming the field ``number``."""
    del actor  # access is checked by the dependency; the lookup itself is not audited
    parsed = parse(number, field="number")
    rt: Runtime = request.app.state.runtime
    with rt.sessions() as session:
        return queries.info(session, parsed)
