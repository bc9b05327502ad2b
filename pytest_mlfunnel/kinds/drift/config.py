"""The ``drift`` check's configuration, and which columns it compares."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pytest_mlfunnel.expectations import Expectation
from pytest_mlfunnel.kinds.base import CheckConfig, ExpectationField, Source

#: How drift compares a column: in numeric cells, or by its values.
ColumnType = Literal["numeric", "categorical"]
STATISTICS = ("psi", "ks", "ks_p", "js", "chi2_p")
APPLIES_TO: dict[str, tuple[ColumnType, ...]] = {
    "psi": ("numeric", "categorical"), "js": ("numeric", "categorical"),
    "ks": ("numeric",), "ks_p": ("numeric",), "chi2_p": ("categorical",),
}
#: A table dtype -> how drift compares it (other dtypes are not compared by default).
DTYPE_TYPES: dict[str, ColumnType] = {"int": "numeric", "float": "numeric",
                                      "string": "categorical", "bool": "categorical"}


class DriftSources(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    reference: Source
    current: Source


class DriftExpect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)
    psi: ExpectationField | None = None
    ks: ExpectationField | None = None
    ks_p: ExpectationField | None = None
    js: ExpectationField | None = None
    chi2_p: ExpectationField | None = None

    def items(self) -> list[tuple[str, Expectation]]:
        return [(name, value) for name in STATISTICS
                if (value := getattr(self, name)) is not None]


class VersionByColumn(BaseModel):
    """The reference table's version as the engine tells it: its row count and the largest
    value of ``column`` (a load time, an increasing id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    column: str


class DriftConfig(CheckConfig):
    drift: DriftSources
    expect: DriftExpect
    columns: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    numeric: list[str] = Field(default_factory=list)
    bins: int = Field(default=10, ge=2, le=1000)
    cache: bool = True
    #: what says the reference is unchanged when it is not files: a label the user changes
    #: with the data, or the row count and largest value of a column
    version: str | VersionByColumn | None = None

    @field_validator("columns")
    @classmethod
    def _some_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("give one or more columns, or leave columns out to compare "
                             "every column both sides share")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DriftConfig:
        if not self.expect.items():
            raise ValueError("expect: give at least one of psi, ks, ks_p, js, chi2_p, e.g. "
                             "expect = { psi = \"<= 0.2\" }")
        both = sorted(set(self.categorical) & set(self.numeric))
        if both:
            raise ValueError(f"{both[0]} is listed as both categorical and numeric")
        return self

    def type_override(self, column: str) -> ColumnType | None:
        if column in self.categorical:
            return "categorical"
        if column in self.numeric:
            return "numeric"
        return None

    @property
    def wants_ks(self) -> bool:
        return self.expect.ks is not None or self.expect.ks_p is not None


def default_columns(check: DriftConfig, reference: dict[str, str], current: dict[str, str]
                    ) -> list[str]:
    """Columns both sides share, numeric or categorical (or typed by an override)."""
    return [c for c in reference if c in current and c not in check.exclude
            and (reference[c] in DTYPE_TYPES or check.type_override(c) is not None)]
