"""The Chinese catalog covers every UI string (plural ones too), keeps every placeholder, and
the compiled .mo that the app loads matches the .po that reviewers read."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "qms" / "translations" / "zh_Hans_CN" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


@pytest.fixture(scope="module")
def po():
    with open(CATALOG / "messages.po", "rb") as fh:
        return read_po(fh)


def forms(text) -> tuple[str, ...]:
    """A message's text as a tuple: one form, or singular and plural (ngettext)."""
    return (text,) if isinstance(text, str) else tuple(text)


def ui_strings() -> set[str]:
    """The singular of every UI message."""
    with open(ROOT / "babel.cfg") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    return {forms(message)[0] for _file, _line, message, _comments, _context in
            extract_from_dir(str(ROOT), method_map, options_map, keywords=keywords)}


def test_every_ui_string_has_a_chinese_translation(po):
    translated = {forms(m.id)[0] for m in po
                  if m.id and all(forms(m.string)) and not m.fuzzy}
    missing = sorted(ui_strings() - translated)
    assert not missing, f"untranslated UI strings (see babel.cfg): {missing}"


def test_placeholders_survive_translation(po):
    for message in po:
        if message.id:
            wanted = sorted(PLACEHOLDER.findall(forms(message.id)[0]))
            for text in forms(message.id) + forms(message.string):
                assert sorted(PLACEHOLDER.findall(text)) == wanted, message.id


def test_compiled_catalog_is_current(po):
    with open(CATALOG / "messages.mo", "rb") as fh:
        mo = read_mo(fh)
    assert {forms(m.id): forms(m.string) for m in mo if m.id} == \
        {forms(m.id): forms(m.string) for m in po if m.id}
