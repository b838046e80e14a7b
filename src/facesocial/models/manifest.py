"""Model descriptions shared by every runtime: provenance, licence, checksum, version."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class ModelRef:
    """The short name + version stamped on every result a model produces."""

    name: str
    version: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model file and everything an auditor asks about it."""

    name: str
    version: str
    task: str
    source_package: str
    source_version: str
    licence: str
    upstream: str
    filename: str
    sha256: str
    input_spec: str

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.name, self.version)

    def as_dict(self) -> dict[str, str]:
        return asdict(self)
