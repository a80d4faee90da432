"""config/release.toml: checked at start-up, and which gates apply follows the material kind
of the batch."""
from __future__ import annotations

import pytest

import qms.release
from qms.app import create_app
from qms.release.config import load_release_rules, parse_release_rules
from qms.release.gates import GATES
from qms.release.service import EXTENSION
from qms.settings import ConfigError, config_dir

BOTH = {"finished": {"gates": ["final_inspection"]},
        "intermediate": {"gates": ["final_inspection"]}}


def test_the_bundled_rules_load():
    rules = load_release_rules(config_dir() / "release.toml")
    assert rules.gates_for("finished") == tuple(GATES)
    assert rules.gates_for("intermediate") == tuple(c for c in GATES
                                                     if c != "in_process_inspections")


@pytest.mark.parametrize("document, problem", [
    ({}, r"expected \[kinds.<material kind>\] tables"),
    ({"kinds": BOTH, "gates": {}}, "unknown section"),
    ({"kinds": {**BOTH, "raw": {"gates": ["expiry_date"]}}}, r"\[kinds.raw\]: batches "
                                                             "produce"),
    ({"kinds": {"finished": BOTH["finished"]}}, r"no \[kinds.intermediate\] table"),
    ({"kinds": {**BOTH, "finished": {"gates": []}}}, "non-empty list"),
    ({"kinds": {**BOTH, "finished": {"gates": "expiry_date"}}}, "non-empty list"),
    ({"kinds": {**BOTH, "finished": {"gates": ["expiry"]}}}, "unknown gate 'expiry'"),
    ({"kinds": {**BOTH, "finished": {"gates": ["expiry_date", "expiry_date"]}}},
     "listed twice"),
    ({"kinds": {**BOTH, "finished": {"gates": ["expiry_date"], "skip": []}}},
     "exactly one key"),
])
def test_bad_rules_are_refused_naming_the_problem(document, problem):
    with pytest.raises(ConfigError, match=f"release.toml: .*{problem}"):
        parse_release_rules(document)


def test_the_application_refuses_to_start_with_bad_rules(tmp_path, monkeypatch):
    (tmp_path / "release.toml").write_text('[kinds.finished]\ngates = ["expiry_date"]\n')
    monkeypatch.setattr(qms.release, "config_dir", lambda: tmp_path)
    with pytest.raises(ConfigError, match=r"no \[kinds.intermediate\] table"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'qms.sqlite3'}"})


def test_the_gates_follow_the_material_kind(plant, app):
    plant.ok(plant.post(plant.team.reviewer, "/materials", {
        "code": "INT-GRAN", "name": "Granulate", "kind": "intermediate", "unit": "kg",
        "shelf_life_days": 180}), 201)
    granulate = plant.produce([(plant.lot(), "10")], material="INT-GRAN", unit="kg")
    check = plant.check(granulate)
    assert check["material_kind"] == "intermediate"
    assert [g["code"] for g in check["gates"]] == list(
        load_release_rules(config_dir() / "release.toml").gates_for("intermediate"))

    # a site that judges finished goods by their final inspection and review alone: the
    # effective in-process plan nobody inspected by no longer stops the release
    app.extensions[EXTENSION] = parse_release_rules({"kinds": {
        "finished": {"gates": ["final_inspection", "reviewed_by_production"]},
        "intermediate": {"gates": ["final_inspection"]}}})
    batch = plant.ready_batch(final=True, in_process=False)
    assert [g["code"] for g in plant.check(batch)["gates"]] == [
        "final_inspection", "reviewed_by_production"]
    assert plant.ok(plant.release(batch))["state"] == "released"
