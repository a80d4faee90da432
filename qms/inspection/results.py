"""Recording inspection results: each value judged against the inspection's own limits when
it is recorded, stored as an append-only row, and a new version of the inspection. Flushes,
never commits.

Samples: an inspection of sample size n needs, for every characteristic, one current result
on each sample unit 1..n. A result names its sample, or takes the lowest unit of that
characteristic without a current result. A correction names the result it corrects and a
reason; it takes the same characteristic and sample, and the corrected row stays, marked
superseded (``superseded_by``), no longer counting.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from qms.audit_actions import AuditAction
from qms.db import utcnow
from qms.errors import Conflict, InvalidInput
from qms.identity.models import User
from qms.inspection.models import Inspection, InspectionResult, results_of
from qms.inspection.rules import NUMERIC, conforms, places
from qms.records.service import revise_record

RECORDING_STATES = ("open", "in_progress")
# the largest AQL that may count nonconforming units (percent nonconforming)
NONCONFORMING_UNITS_UP_TO = Decimal("10")


@dataclass
class _Entry:
    """One validated entry of a request: a new result or a correction."""
    characteristic: str
    sample: int
    value: Decimal | None
    passed: bool | None
    conforming: bool
    corrects: InspectionResult | None = None
    reason: str | None = None


def record_results(session: Session, inspection: Inspection, actor: User,
                   entries: Sequence[Mapping[str, Any]]) -> list[InspectionResult]:
    """Record new results and corrections. Every entry is checked before anything is
    written (422 naming ``results.<i>.<field>``); new results make one version (event
    ``inspection.result.recorded``), each correction its own, with its reason (event
    ``inspection.result.corrected``). The first result moves an open inspection to
    in_progress."""
    if inspection.state not in RECORDING_STATES:
        raise Conflict(f"{inspection.number} is {inspection.state}; results are recorded while "
                       "it is open or in progress", extra={"state": inspection.state})
    existing = results_of(inspection)
    checked = _check_entries(inspection, existing, entries)
    next_seq = len(existing) + 1
    new = [entry for entry in checked if entry.corrects is None]
    added = [_row(inspection, actor, next_seq + offset, entry)
             for offset, entry in enumerate(new)]
    if added:
        session.add_all(added)
        session.flush()
        _revise(session, inspection, actor, added, reason=None, action="record_results",
                event=AuditAction.Inspection.RESULT_RECORDED)
    next_seq += len(added)
    corrections = [entry for entry in checked if entry.corrects is not None]
    for offset, entry in enumerate(corrections):
        correction = _row(inspection, actor, next_seq + offset, entry)
        session.add(correction)
        session.flush()
        _revise(session, inspection, actor, [correction], reason=entry.reason,
                action="correct_result", event=AuditAction.Inspection.RESULT_CORRECTED)
        added.append(correction)
    return added


def _row(inspection: Inspection, actor: User, seq: int, entry: _Entry) -> InspectionResult:
    return InspectionResult(
        inspection_id=inspection.id, seq=seq, characteristic=entry.characteristic,
        sample=entry.sample, value=entry.value, passed=entry.passed,
        conforming=entry.conforming,
        corrects_id=entry.corrects.id if entry.corrects is not None else None,
        reason=entry.reason, recorded_at=utcnow(), recorded_by=actor.username)


def _revise(session: Session, inspection: Inspection, actor: User,
            rows: list[InspectionResult], *, reason: str | None, action: str,
            event: str) -> None:
    details = {"results": [{"id": r.seq, "characteristic": r.characteristic,
                            "sample": r.sample, "conforming": r.conforming} for r in rows]}
    revise_record(session, inspection, actor.username, action=action, reason=reason,
                  state="in_progress" if inspection.state == "open" else None,
                  details=details, event=event)


def _check_entries(inspection: Inspection, existing: list[InspectionResult],
                   entries: Sequence[Mapping[str, Any]]) -> list[_Entry]:
    characteristics = {c["code"]: c for c in inspection.characteristics}
    by_seq = {r.seq: r for r in existing}
    superseded = {r.corrects_id for r in existing if r.corrects_id is not None}
    taken = {(r.characteristic, r.sample) for r in existing if r.id not in superseded}
    corrected: set[int] = set()
    checked, errors = [], {}
    for index, entry in enumerate(entries):
        try:
            if entry.get("corrects") is not None:
                result = _correction(entry, characteristics, by_seq, superseded, corrected)
            else:
                result = _new_result(entry, characteristics, inspection.sample_size, taken)
            checked.append(result)
        except _EntryProblem as problem:
            errors[f"results.{index}.{problem.field}"] = [problem.message]
    if errors:
        raise InvalidInput("some results cannot be recorded; nothing was recorded",
                           errors=errors)
    return checked


class _EntryProblem(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _new_result(entry: Mapping[str, Any], characteristics: Mapping[str, dict],
                sample_size: int, taken: set[tuple[str, int]]) -> _Entry:
    if entry.get("reason") is not None:
        raise _EntryProblem("reason", "a reason belongs to a correction (give corrects)")
    characteristic = _characteristic(entry, characteristics)
    code, sample = characteristic["code"], entry.get("sample")
    if sample is None:
        sample = next((n for n in range(1, sample_size + 1) if (code, n) not in taken), None)
        if sample is None:
            raise _EntryProblem("characteristic", f"all {sample_size} samples of {code} have "
                                "a result; correct one instead (corrects)")
    elif sample > sample_size:
        raise _EntryProblem("sample", f"the sample size is {sample_size}")
    elif (code, sample) in taken:
        raise _EntryProblem("sample", f"sample {sample} of {code} has a result; correct it "
                            "instead (corrects)")
    taken.add((code, sample))
    return _measured(entry, characteristic, sample)


def _correction(entry: Mapping[str, Any], characteristics: Mapping[str, dict],
                by_seq: Mapping[int, InspectionResult], superseded: set[int],
                corrected: set[int]) -> _Entry:
    original = by_seq.get(entry["corrects"])
    if original is None:
        raise _EntryProblem("corrects", f"this inspection has no result {entry['corrects']}")
    if original.id in superseded or original.id in corrected:
        raise _EntryProblem("corrects", f"result {original.seq} is already corrected; correct "
                            "the correction")
    if not (entry.get("reason") or "").strip():
        raise _EntryProblem("reason", "a correction needs a reason")
    characteristic = _characteristic(entry, characteristics)
    if characteristic["code"] != original.characteristic:
        raise _EntryProblem("characteristic", f"result {original.seq} is of "
                            f"{original.characteristic}")
    if entry.get("sample") not in (None, original.sample):
        raise _EntryProblem("sample", f"result {original.seq} is of sample {original.sample}")
    corrected.add(original.id)
    measured = _measured(entry, characteristic, original.sample)
    measured.corrects, measured.reason = original, entry["reason"].strip()
    return measured


def _characteristic(entry: Mapping[str, Any], characteristics: Mapping[str, dict]) -> dict:
    characteristic = characteristics.get(entry["characteristic"])
    if characteristic is None:
        raise _EntryProblem("characteristic", f"the plan has no characteristic "
                            f"{entry['characteristic']!r}; it has "
                            f"{', '.join(sorted(characteristics))}")
    return characteristic


def _measured(entry: Mapping[str, Any], characteristic: dict, sample: int) -> _Entry:
    """The value (numeric) or the verdict (attribute), judged against the limits."""
    value, passed = entry.get("value"), entry.get("passed")
    if characteristic["type"] == NUMERIC:
        if passed is not None:
            raise _EntryProblem("passed", f"{characteristic['code']} is measured: give value")
        if value is None:
            raise _EntryProblem("value", f"{characteristic['code']} is measured: give value as "
                                "a decimal string")
        if places(value) > characteristic["decimals"]:
            raise _EntryProblem("value", f"{characteristic['code']} is recorded to "
                                f"{characteristic['decimals']} decimal places")
    else:
        if value is not None:
            raise _EntryProblem("value", f"{characteristic['code']} is pass / fail: give passed")
        if passed is None:
            raise _EntryProblem("passed", f"{characteristic['code']} is pass / fail: give "
                                "passed")
    return _Entry(characteristic["code"], sample, value, passed,
                  conforms(characteristic, value, passed))


def current_results(results: list[InspectionResult]) -> list[InspectionResult]:
    """The results that count: those no correction superseded."""
    superseded = {r.corrects_id for r in results if r.corrects_id is not None}
    return [r for r in results if r.id not in superseded]


def summary(inspection: Inspection) -> dict[str, Any]:
    """Progress and outcome from the current results: per characteristic how many samples
    have a result and how many do not conform; once every sample is recorded, the AQL
    plan's Ac/Re applied to what the AQL counts (``sampling_verdict``, advisory: QA
    decides). Up to AQL 10 that is nonconforming units (samples with any nonconforming
    result); above 10 the standard's Ac/Re count nonconformities per hundred units, so
    every nonconforming result counts."""
    current = current_results(results_of(inspection))
    per_characteristic = []
    for characteristic in inspection.characteristics:
        mine = [r for r in current if r.characteristic == characteristic["code"]]
        per_characteristic.append({"code": characteristic["code"],
                                   "required": inspection.sample_size, "recorded": len(mine),
                                   "nonconforming": sum(not r.conforming for r in mine)})
    complete = all(c["recorded"] >= c["required"] for c in per_characteristic)
    units = len({r.sample for r in current if not r.conforming})
    nonconformities = sum(not r.conforming for r in current)
    verdict = None
    if complete and inspection.accept_number is not None:
        counted = nonconformities if _counts_nonconformities(inspection) else units
        verdict = "accept" if counted <= inspection.accept_number else "reject"
    return {"characteristics": per_characteristic, "complete": complete,
            "nonconforming_results": nonconformities,
            "nonconforming_units": units, "sampling_verdict": verdict}


def _counts_nonconformities(inspection: Inspection) -> bool:
    """AQLs above 10 exist only as nonconformities per hundred units (MIL-STD-105E)."""
    aql = inspection.plan.aql
    return aql is not None and aql > NONCONFORMING_UNITS_UP_TO
