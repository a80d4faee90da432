"""The batch release gates as plain functions of the facts about one batch (qms.release.facts
reads them), so that every rule can be tested without a database.

Each gate answers ``passed`` and a ``detail`` a QA person can act on: what is missing or
wrong, named by number, and what clears it. Gate codes are stable (clients and
config/release.toml use them; docs/release-gates.md describes each); GATES lists them in the
order they are reported.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

IN_PROCESS, FINAL = "in_process", "final"
ACCEPTED, REJECTED, CANCELLED, COMPLETED = "accepted", "rejected", "cancelled", "completed"
RELEASED, QUARANTINE, ON_HOLD = "released", "quarantine", "on_hold"


@dataclass(frozen=True)
class Gate:
    code: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class InspectionFact:
    number: str
    stage: str
    operation: str | None
    state: str


@dataclass(frozen=True)
class Consumed:
    """One consumption entry of an input lot, with the lot as it stood at that moment."""
    quantity: Decimal
    on: date  # the site's calendar day of the entry
    status_then: str | None  # None: the lot had no version yet (never the case via the API)
    expires_then: date | None


@dataclass(frozen=True)
class InputFact:
    lot: str
    status: str  # now
    entries: tuple[Consumed, ...]
    held_by: tuple[str, ...] = ()  # open deviations naming the lot

    @property
    def net_quantity(self) -> Decimal:
        """What is consumed after reversing entries; zero or less: no longer an input."""
        return sum((entry.quantity for entry in self.entries), Decimal(0))


@dataclass(frozen=True)
class DeviationFact:
    number: str
    state: str
    names: tuple[str, ...]  # which of the batch's lots (its own, its inputs) it names
    capa_required: bool | None
    capas: tuple[str, ...]  # linked CAPAs that are not cancelled


@dataclass(frozen=True)
class ReviewFact:
    signer: str
    name: str
    at: datetime
    version: int
    current: bool  # signed the batch record's current content, and verifies


@dataclass(frozen=True)
class ReleaseFacts:
    batch: str
    lot: str
    lot_status: str
    expires_on: date | None
    today: date
    inspections: tuple[InspectionFact, ...]
    # operations with an effective in-process plan of the material: each needs an inspection
    plan_operations: tuple[str, ...]
    inputs: tuple[InputFact, ...]
    open_deviations: tuple[DeviationFact, ...]
    capa_deviations: tuple[DeviationFact, ...]  # not cancelled, CAPA required
    reviews: tuple[ReviewFact, ...]

    @property
    def counted_inputs(self) -> tuple[InputFact, ...]:
        return tuple(i for i in self.inputs if i.net_quantity > 0)


def _gate(code: str, problems: list[str], passed_detail: str) -> Gate:
    if problems:
        return Gate(code, False, "; ".join(problems))
    return Gate(code, True, passed_detail)


def _listed(numbers: Iterable[str]) -> str:
    return ", ".join(numbers)


def _inspection(inspection: InspectionFact) -> str:
    at = f" at {inspection.operation}" if inspection.operation else ""
    return f"{inspection.number}{at}"


def _undecided_or_rejected(inspections: Iterable[InspectionFact]) -> list[str]:
    problems = []
    for inspection in inspections:
        if inspection.state == REJECTED:
            problems.append(f"{_inspection(inspection)} was rejected: the batch cannot be "
                            "released (reject it)")
        elif inspection.state == COMPLETED:
            problems.append(f"{_inspection(inspection)} is completed and awaits its usage "
                            "decision")
        elif inspection.state not in (ACCEPTED, CANCELLED):
            problems.append(f"{_inspection(inspection)} is "
                            f"{inspection.state.replace('_', ' ')}: finish it and take the "
                            "usage decision, or cancel it")
    return problems


def in_process_inspections(facts: ReleaseFacts) -> Gate:
    """At least one accepted in-process inspection, one at every operation with an effective
    in-process plan, and none undecided or rejected."""
    mine = [i for i in facts.inspections if i.stage == IN_PROCESS]
    accepted = [i for i in mine if i.state == ACCEPTED]
    problems = _undecided_or_rejected(mine)
    covered = {i.operation for i in accepted}
    for operation in facts.plan_operations:
        if operation not in covered:
            problems.append(f"no accepted in-process inspection at {operation} (it has an "
                            "effective plan): open one against the batch")
    if not accepted and not facts.plan_operations:
        problems.append("no accepted in-process inspection of the batch (and no effective "
                        "in-process plan for its material)")
    return _gate("in_process_inspections", problems,
                 f"accepted: {_listed(_inspection(i) for i in accepted)}")


def final_inspection(facts: ReleaseFacts) -> Gate:
    """At least one accepted final inspection, and none undecided or rejected."""
    mine = [i for i in facts.inspections if i.stage == FINAL]
    accepted = [i.number for i in mine if i.state == ACCEPTED]
    problems = _undecided_or_rejected(mine)
    if not accepted:
        problems.append("no accepted final inspection of the batch: open one against it")
    return _gate("final_inspection", problems, f"accepted: {_listed(accepted)}")


def inputs_released(facts: ReleaseFacts) -> Gate:
    """Every consumed lot was released when it was consumed."""
    problems = [f"{item.lot} was {entry.status_then or 'not yet recorded'} when "
                f"{entry.quantity} was consumed on {entry.on.isoformat()}: correct the "
                "genealogy (a reversing entry) or reject the batch"
                for item in facts.counted_inputs for entry in item.entries
                if entry.quantity > 0 and entry.status_then != RELEASED]
    return _gate("inputs_released", problems, _inputs_passed(facts, "released when consumed"))


def inputs_in_date(facts: ReleaseFacts) -> Gate:
    """Every consumed lot was within its expiry date on the day it was consumed."""
    problems = [f"{item.lot} expired on {entry.expires_then.isoformat()} and was consumed on "
                f"{entry.on.isoformat()}: correct the genealogy (a reversing entry) or reject "
                "the batch"
                for item in facts.counted_inputs for entry in item.entries
                if entry.quantity > 0 and entry.expires_then is not None
                and entry.expires_then < entry.on]
    return _gate("inputs_in_date", problems, _inputs_passed(facts, "in date when consumed"))


def inputs_not_rejected_or_on_hold(facts: ReleaseFacts) -> Gate:
    """No consumed lot is rejected or on hold now."""
    problems = []
    for item in facts.counted_inputs:
        if item.status == ON_HOLD:
            by = f" by {_listed(item.held_by)}" if item.held_by else ""
            problems.append(f"{item.lot} is on hold{by}: close the deviation, or reject the "
                            "batch")
        elif item.status == REJECTED:
            problems.append(f"{item.lot} has been rejected since it was consumed: reject the "
                            "batch")
    return _gate("inputs_not_rejected_or_on_hold", problems,
                 _inputs_passed(facts, "neither rejected nor on hold"))


def _inputs_passed(facts: ReleaseFacts, what: str) -> str:
    count = len(facts.counted_inputs)
    if not count:
        return "the batch consumed no lots"
    return f"{'the consumed lot' if count == 1 else f'all {count} consumed lots'} {what}"


def no_open_deviations(facts: ReleaseFacts) -> Gate:
    """No deviation that is not closed or cancelled names the batch or one of its inputs."""
    problems = [f"{d.number} is {d.state.replace('_', ' ')} and names "
                f"{_listed(_named(facts, d))}: close or cancel it"
                for d in facts.open_deviations]
    return _gate("no_open_deviations", problems,
                 "no open deviation names the batch or its consumed lots")


def _named(facts: ReleaseFacts, deviation: DeviationFact) -> list[str]:
    return [f"the batch {facts.batch}" if lot == facts.lot else f"input lot {lot}"
            for lot in deviation.names]


def deviation_capas(facts: ReleaseFacts) -> Gate:
    """Every deviation naming the batch or an input that requires a CAPA has one that is
    not cancelled."""
    problems = [f"{d.number} requires a CAPA and has none: raise one with source deviation "
                f"and reference {d.number}" for d in facts.capa_deviations if not d.capas]
    covered = [f"{d.number} has {_listed(d.capas)}" for d in facts.capa_deviations if d.capas]
    return _gate("deviation_capas", problems,
                 _listed(covered) or "no deviation on the batch requires a CAPA")


def reviewed_by_production(facts: ReleaseFacts) -> Gate:
    """A *reviewed* signature of the batch record's current content."""
    current = [r for r in facts.reviews if r.current]
    if current:
        review = current[-1]
        return Gate("reviewed_by_production", True,
                    f"reviewed by {review.name} ({review.signer}) on version {review.version}")
    if facts.reviews:
        last = facts.reviews[-1]
        return Gate("reviewed_by_production", False,
                    f"the review by {last.name} ({last.signer}) signed version {last.version}; "
                    "the batch record has changed since: return the batch to production to be "
                    "reviewed and submitted again")
    return Gate("reviewed_by_production", False,
                "not reviewed: production submits the batch for release, signing the batch "
                "record as reviewed")


def expiry_date(facts: ReleaseFacts) -> Gate:
    """The batch's lot has an expiry date, and it has not passed."""
    if facts.expires_on is None:
        return Gate("expiry_date", False, f"lot {facts.lot} has no expiry date: correct the "
                                          "lot's expires_on (reason required)")
    if facts.expires_on < facts.today:
        return Gate("expiry_date", False, f"lot {facts.lot} expired on "
                                          f"{facts.expires_on.isoformat()}: correct the lot's "
                                          "expires_on if it is wrong, else reject the batch")
    return Gate("expiry_date", True, f"expires on {facts.expires_on.isoformat()}")


def lot_releasable(facts: ReleaseFacts) -> Gate:
    """The batch's lot is in quarantine (or was already released by hand)."""
    if facts.lot_status in (QUARANTINE, RELEASED):
        return Gate("lot_releasable", True, f"lot {facts.lot} is {facts.lot_status}")
    why = {ON_HOLD: "on hold: end the deviation (or batch hold) that holds it",
           REJECTED: "rejected: reject the batch"}.get(facts.lot_status,
                                                      f"{facts.lot_status}: reject the batch")
    return Gate("lot_releasable", False, f"lot {facts.lot} is {why}")


# every gate, in the order reported
GATES: dict[str, Callable[[ReleaseFacts], Gate]] = {
    "in_process_inspections": in_process_inspections,
    "final_inspection": final_inspection,
    "inputs_released": inputs_released,
    "inputs_in_date": inputs_in_date,
    "inputs_not_rejected_or_on_hold": inputs_not_rejected_or_on_hold,
    "no_open_deviations": no_open_deviations,
    "deviation_capas": deviation_capas,
    "reviewed_by_production": reviewed_by_production,
    "expiry_date": expiry_date,
    "lot_releasable": lot_releasable,
}


def evaluate(facts: ReleaseFacts, codes: Iterable[str]) -> list[Gate]:
    """The gates named by ``codes`` (those that apply to the batch's material kind), in
    GATES order."""
    wanted = set(codes)
    return [check(facts) for code, check in GATES.items() if code in wanted]
