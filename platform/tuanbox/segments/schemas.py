"""Request and response bodies of the segments and experiments API (every input bounded)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tuanbox.bounds import Id

Name = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")]
Key = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]
Quintile = Annotated[int, Field(ge=1, le=5)]


class RuleIn(BaseModel):
    kind: Literal["rfm", "dormant", "tag"]
    r_min: Quintile = 1
    f_min: Quintile = 1
    m_min: Quintile = 1
    days: int = Field(default=30, ge=1, le=3650)
    tag: str = Field(default="", max_length=40, pattern=r"^[^\x00-\x1f\x7f]*$")

    def stored(self) -> dict[str, object]:
        if self.kind == "rfm":
            return {"kind": "rfm", "r_min": self.r_min, "f_min": self.f_min, "m_min": self.m_min}
        if self.kind == "dormant":
            return {"kind": "dormant", "days": self.days}
        return {"kind": "tag", "tag": self.tag}


class SegmentIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "high value", "rule": {"kind": "rfm", "r_min": 4, "m_min": 4}}]
        }
    )
    name: Name
    rule: RuleIn


class SegmentOut(BaseModel):
    id: str
    name: str
    rule: dict[str, object]
    members: int


class PushIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"kind": "message", "key": "late-night-1", "message": "深夜食堂: 宵夜 8 折"}
            ]
        }
    )
    kind: Literal["coupon", "message"]
    key: Key
    coupon_template_id: Id | None = None
    message: str | None = Field(default=None, min_length=1, max_length=500)


class PushOut(BaseModel):
    push_id: str
    sent: int
    rate_limited: int
    skipped: int
    converted: int


class ArmIn(BaseModel):
    key: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$")
    weight: int = Field(ge=1, le=1000)
    value: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")


class ExperimentIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "campaign_id": "c-…",
                    "name": "title test",
                    "field": "title",
                    "arms": [
                        {"key": "a", "weight": 50, "value": "Blueberries"},
                        {"key": "b", "weight": 50, "value": "Morning-picked blueberries"},
                    ],
                    "min_sample": 100,
                }
            ]
        }
    )
    campaign_id: Id
    name: Name
    field: Literal["title", "image", "price"]
    arms: list[ArmIn] = Field(min_length=2, max_length=5)
    min_sample: int = Field(default=100, ge=1, le=10_000_000)


class ArmOut(BaseModel):
    key: str
    value: str
    weight: int
    exposures: int
    clicks: int
    conversions: int
    ctr: float | None
    conversion_rate: float | None
    z: float | None
    p_value: float | None
    under_sample: bool


class ExperimentOut(BaseModel):
    id: str
    campaign_id: str
    name: str
    field: str
    status: str
    min_sample: int
    arms: list[ArmOut] = []
