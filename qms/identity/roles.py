"""Roles and permissions from config/roles.toml (see DESIGN.md "Roles")."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qms.settings import ConfigError, load_toml

KNOWN_ROLES = ("inspector", "qa_reviewer", "qa_approver", "production", "auditor", "admin", "erp")
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class RoleTable:
    permissions: dict[str, frozenset[str]]
    descriptions: dict[str, str]

    def permissions_of(self, roles: list[str]) -> frozenset[str]:
        granted: set[str] = set()
        for role in roles:
            granted |= self.permissions.get(role, frozenset())
        return frozenset(granted)

    def allows(self, roles: list[str], permission: str) -> bool:
        return permission in self.permissions_of(roles)

    def check_role(self, role: str) -> None:
        if role not in self.permissions:
            raise ValueError(f"unknown role {role!r}; known roles: {', '.join(sorted(self.permissions))}")


def load_roles(path: Path) -> RoleTable:
    document = load_toml(path).get("roles")
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected [roles.<name>] tables")
    unknown = set(document) - set(KNOWN_ROLES)
    if unknown:
        raise ConfigError(f"{path}: unknown roles {sorted(unknown)}")
    permissions, descriptions = {}, {}
    for role, entry in document.items():
        perms = entry.get("permissions", [])
        if not all(isinstance(p, str) for p in perms):
            raise ConfigError(f"{path}: roles.{role}.permissions must be strings")
        permissions[role] = frozenset(perms)
        descriptions[role] = entry.get("description", "")
    return RoleTable(permissions, descriptions)
