"""Declarative workflows of controlled records (config/workflows.toml), checked at start-up.

A workflow is a plain table of states and transitions; the functions here answer "which
transitions are open from state X for roles R" without a database, so the rules can be
tested and shown to clients (every record lists its open transitions) from one source.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qms.identity.roles import ADMIN_ROLE, RoleTable
from qms.settings import ConfigError, load_toml

# Part 11 §11.50: the fixed list of what a signature can attest to (DESIGN.md)
MEANINGS = ("performed", "reviewed", "approved", "released", "rejected", "verified")
NOT_AUTHOR = "not_author"
NOT_OWNER = "not_owner"
NOT_SIGNER_PREFIX = "not_signer:"

_WORKFLOW_KEYS = {"label", "prefix", "initial", "states", "editable_states", "edit_returns_to",
                  "transitions"}
_TRANSITION_KEYS = {"action", "from", "to", "permission", "meaning", "reason_required",
                    "segregation"}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PREFIX = re.compile(r"^[A-Z]{2,8}$")


@dataclass(frozen=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str
    permission: str
    meaning: str | None = None
    reason_required: bool = False
    segregation: tuple[str, ...] = ()

    @property
    def signed(self) -> bool:
        """True when the transition needs an electronic signature."""
        return self.meaning is not None


@dataclass(frozen=True)
class Workflow:
    record_type: str
    label: str
    prefix: str | None  # None: the record type numbers its records itself (codes, lot rules)
    initial: str
    states: tuple[str, ...]
    editable_states: frozenset[str]
    transitions: tuple[Transition, ...]
    # editable state -> the state an edit in it returns the record to: an edit of an approved
    # master record sends it back for approval (checked at start-up: see _check_approvals)
    edit_returns_to: Mapping[str, str] = field(default_factory=dict, hash=False)

    def transitions_from(self, state: str) -> list[Transition]:
        """Every transition that starts from ``state``, in configuration order."""
        return [t for t in self.transitions if state in t.sources]

    def find(self, state: str, action: str) -> Transition | None:
        return next((t for t in self.transitions_from(state) if t.action == action), None)

    def is_editable(self, state: str) -> bool:
        return state in self.editable_states

    def state_after_edit(self, state: str) -> str:
        """The state a record edited in ``state`` is in afterwards."""
        return self.edit_returns_to.get(state, state)

    def permissions_for(self, action: str) -> frozenset[str]:
        """The permissions of every transition named ``action``, from whatever state."""
        return frozenset(t.permission for t in self.transitions if t.action == action)


def open_transitions(workflow: Workflow, state: str,
                     permissions: Iterable[str]) -> list[Transition]:
    """The transitions from ``state`` that a holder of ``permissions`` may take."""
    granted = frozenset(permissions)
    return [t for t in workflow.transitions_from(state) if t.permission in granted]


@dataclass(frozen=True)
class WorkflowRegistry:
    workflows: Mapping[str, Workflow]
    roles: RoleTable

    def get(self, record_type: str) -> Workflow:
        return self.workflows[record_type]

    def open_for(self, record_type: str, state: str, roles: list[str]) -> list[Transition]:
        """The transitions from ``state`` open to a user holding ``roles``."""
        return open_transitions(self.get(record_type), state, self.roles.permissions_of(roles))

    def allows(self, roles: list[str], transition: Transition) -> bool:
        return self.roles.allows(roles, transition.permission)


def load_workflows(path: Path, roles: RoleTable,
                   record_types: Iterable[str] | None = None) -> WorkflowRegistry:
    """Read and check the workflow file. ``record_types`` are the registered record models
    (default: every model registered by the modules that qms.models imports). Raises
    ConfigError naming the file, the workflow and the problem."""
    if record_types is None:
        import qms.models  # noqa: F401  (imports every record type module, which registers it)
        from qms.records.models import registered_record_types

        record_types = registered_record_types()
    return parse_workflows(load_toml(path), roles, record_types, source=str(path))


def parse_workflows(document: Mapping[str, Any], roles: RoleTable, record_types: Iterable[str],
                    *, source: str = "workflows") -> WorkflowRegistry:
    """Build and check a registry from a parsed TOML document (see load_workflows)."""
    tables = document.get("workflows")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{source}: expected at least one [workflows.<record type>] table")
    workflows = {name: _workflow(f"{source}: workflows.{name}", name, table)
                 for name, table in tables.items()}
    _check_registered(source, workflows, frozenset(record_types))
    _check_prefixes(source, workflows)
    for name, workflow in workflows.items():
        _check_permissions(f"{source}: workflows.{name}", workflow, roles)
    return WorkflowRegistry(workflows, roles)


def _workflow(where: str, name: str, table: Any) -> Workflow:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    if not _NAME.match(name):
        raise ConfigError(f"{where}: record type names are lowercase identifiers")
    _check_keys(where, table, _WORKFLOW_KEYS, required={"label", "initial", "states",
                                                        "transitions"})
    states = _names(where, "states", table["states"])
    if table["initial"] not in states:
        raise ConfigError(f"{where}: initial state {table['initial']!r} is not in states")
    editable = _names(where, "editable_states", table.get("editable_states", []), empty=True)
    _check_states(where, "editable_states", editable, states)
    prefix = table.get("prefix")
    if prefix is not None and (not isinstance(prefix, str) or not _PREFIX.match(prefix)):
        raise ConfigError(f"{where}: prefix must be 2-8 capital letters, got {prefix!r}")
    transitions = _transitions(where, table["transitions"], states)
    returns = _edit_returns(where, table.get("edit_returns_to", {}), editable, states)
    workflow = Workflow(name, _text(where, "label", table["label"]), prefix, table["initial"],
                        states, frozenset(editable), transitions, returns)
    _check_approvals(where, workflow)
    return workflow


def _edit_returns(where: str, table: Any, editable: tuple[str, ...],
                  states: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"{where}: edit_returns_to must be a table of state = state")
    for source, target in table.items():
        if source not in editable:
            raise ConfigError(f"{where}: edit_returns_to names {source!r}, which is not an "
                              "editable state")
        _check_states(where, "edit_returns_to", (target,), states)
        if target == source:
            raise ConfigError(f"{where}: edit_returns_to must return {source!r} elsewhere")
    return dict(table)


def _check_approvals(where: str, workflow: Workflow) -> None:
    """An edit never silently keeps an approval: a state reached by a signed transition is
    either not editable (a revision then goes through a new record and a change control, as
    documents and inspection plans do) or its edits return the record for approval."""
    for transition in workflow.transitions:
        state = transition.target
        if (transition.signed and workflow.is_editable(state)
                and state not in workflow.edit_returns_to):
            raise ConfigError(f"{where}: {state!r} is reached by the signed {transition.action!r}"
                              " and is editable; say in edit_returns_to where an edit returns "
                              "it for approval, or make it not editable")


def _transitions(where: str, entries: Any, states: tuple[str, ...]) -> tuple[Transition, ...]:
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: transitions must be a non-empty list of tables")
    transitions = tuple(_transition(f"{where}.transitions[{index}]", entry, states)
                        for index, entry in enumerate(entries))
    seen: set[tuple[str, str]] = set()
    for transition in transitions:
        for state in transition.sources:
            if (state, transition.action) in seen:
                raise ConfigError(f"{where}: action {transition.action!r} is defined twice "
                                  f"from state {state!r}")
            seen.add((state, transition.action))
    return transitions


def _transition(where: str, entry: Any, states: tuple[str, ...]) -> Transition:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    _check_keys(where, entry, _TRANSITION_KEYS, required={"action", "from", "to", "permission"})
    action = entry["action"]
    if not isinstance(action, str) or not _NAME.match(action):
        raise ConfigError(f"{where}: action must be a lowercase identifier, got {action!r}")
    where = f"{where} ({action})"
    sources = _names(where, "from", entry["from"])
    _check_states(where, "from", sources, states)
    _check_states(where, "to", (entry["to"],), states)
    meaning = entry.get("meaning")
    if meaning is not None and meaning not in MEANINGS:
        raise ConfigError(f"{where}: meaning {meaning!r} is not one of {', '.join(MEANINGS)}")
    reason_required = entry.get("reason_required", False)
    if not isinstance(reason_required, bool):
        raise ConfigError(f"{where}: reason_required must be true or false")
    segregation = _segregation(where, entry.get("segregation", []), meaning)
    return Transition(action, sources, entry["to"], _text(where, "permission", entry["permission"]),
                      meaning, reason_required, segregation)


def _segregation(where: str, rules: Any, meaning: str | None) -> tuple[str, ...]:
    rules = _names(where, "segregation", rules, empty=True, pattern=None)
    if rules and meaning is None:
        raise ConfigError(f"{where}: segregation rules apply to signers; add a meaning")
    for rule in rules:
        if rule in (NOT_AUTHOR, NOT_OWNER):
            continue
        other = rule.removeprefix(NOT_SIGNER_PREFIX)
        if not rule.startswith(NOT_SIGNER_PREFIX) or other not in MEANINGS:
            raise ConfigError(f"{where}: unknown segregation rule {rule!r}; known: "
                              f"{NOT_AUTHOR!r}, {NOT_OWNER!r}, '{NOT_SIGNER_PREFIX}<meaning>'")
    return rules


def _check_keys(where: str, table: dict, allowed: set[str], *, required: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}")
    missing = sorted(required - set(table))
    if missing:
        raise ConfigError(f"{where}: missing keys {missing}")


def _names(where: str, key: str, value: Any, *, empty: bool = False,
           pattern: re.Pattern | None = _NAME) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of strings")
    if not value and not empty:
        raise ConfigError(f"{where}: {key} must not be empty")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: {key} lists a name twice")
    if pattern is not None and not all(pattern.match(v) for v in value):
        raise ConfigError(f"{where}: {key} must be lowercase identifiers")
    return tuple(value)


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value


def _check_states(where: str, key: str, names: Iterable[str], states: tuple[str, ...]) -> None:
    for name in names:
        if name not in states:
            raise ConfigError(f"{where}: unknown state {name!r} in {key}")


def _check_registered(source: str, workflows: Mapping[str, Workflow],
                      record_types: frozenset[str]) -> None:
    for name in workflows:
        if name not in record_types:
            raise ConfigError(f"{source}: workflows.{name} has no registered record model")
    for name in sorted(record_types - set(workflows)):
        raise ConfigError(f"{source}: record type {name!r} is registered but has no workflow")


def _check_prefixes(source: str, workflows: Mapping[str, Workflow]) -> None:
    owners: dict[str, str] = {}
    for name, workflow in workflows.items():
        if workflow.prefix is None:
            continue
        if workflow.prefix in owners:
            raise ConfigError(f"{source}: prefix {workflow.prefix!r} is used by "
                              f"workflows.{owners[workflow.prefix]} and workflows.{name}")
        owners[workflow.prefix] = name


def _check_permissions(where: str, workflow: Workflow, roles: RoleTable) -> None:
    holders = {p for granted in roles.permissions.values() for p in granted}
    admin = roles.permissions.get(ADMIN_ROLE, frozenset())
    for transition in workflow.transitions:
        if transition.permission not in holders:
            raise ConfigError(f"{where}: permission {transition.permission!r} of action "
                              f"{transition.action!r} is held by no role")
        if transition.signed and transition.permission in admin:
            raise ConfigError(f"{where}: the admin role holds signing permission "
                              f"{transition.permission!r} (action {transition.action!r}); "
                              "admins may sign no GMP record")
