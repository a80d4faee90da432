"""Which release gates apply to a batch, by the kind of material it produces
(config/release.toml), checked at start-up: the application refuses to start when the file
names an unknown kind or gate, lists a gate twice or none, or leaves a producible kind out."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qms.materials.batches import PRODUCIBLE_KINDS
from qms.release.gates import GATES
from qms.settings import ConfigError, load_toml

SOURCE = "release.toml"


@dataclass(frozen=True)
class ReleaseRules:
    """Gate codes per material kind (intermediate, finished), in GATES order."""
    gates_by_kind: Mapping[str, tuple[str, ...]]

    def gates_for(self, kind: str) -> tuple[str, ...]:
        return self.gates_by_kind[kind]


def load_release_rules(path: Path) -> ReleaseRules:
    """Read and check config/release.toml; ConfigError naming the problem otherwise."""
    return parse_release_rules(load_toml(path))


def parse_release_rules(document: Mapping[str, Any]) -> ReleaseRules:
    unknown = sorted(set(document) - {"kinds"})
    if unknown:
        raise ConfigError(f"{SOURCE}: unknown section(s) {', '.join(unknown)}; expected "
                          "[kinds.<material kind>] tables")
    kinds = document.get("kinds")
    if not isinstance(kinds, dict):
        raise ConfigError(f"{SOURCE}: expected [kinds.<material kind>] tables")
    for kind in kinds:
        if kind not in PRODUCIBLE_KINDS:
            raise ConfigError(f"{SOURCE}: [kinds.{kind}]: batches produce "
                              f"{' or '.join(PRODUCIBLE_KINDS)} materials only")
    missing = [kind for kind in PRODUCIBLE_KINDS if kind not in kinds]
    if missing:
        raise ConfigError(f"{SOURCE}: no [kinds.{missing[0]}] table; every producible kind "
                          "names its gates")
    return ReleaseRules({kind: _gates(kind, kinds[kind]) for kind in PRODUCIBLE_KINDS})


def _gates(kind: str, table: Any) -> tuple[str, ...]:
    where = f"{SOURCE}: [kinds.{kind}]"
    if not isinstance(table, dict) or set(table) != {"gates"}:
        raise ConfigError(f"{where} needs exactly one key, gates")
    codes = table["gates"]
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes) or not codes:
        raise ConfigError(f"{where} gates must be a non-empty list of gate codes")
    for code in codes:
        if code not in GATES:
            raise ConfigError(f"{where}: unknown gate {code!r}; known: {', '.join(GATES)}")
    if len(set(codes)) != len(codes):
        raise ConfigError(f"{where}: a gate is listed twice")
    return tuple(code for code in GATES if code in codes)
