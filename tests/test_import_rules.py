"""The architecture's import rules, checked on the source rather than remembered
(DESIGN.md "Layout"; issue 10 item 6):

1. ``audit/`` imports nothing of ``qms`` or Flask: auditors run it without the application.
2. A models module (``qms/models.py``, ``qms/<domain>/models.py``) imports no service-layer
   module: no ``service``, ``operations``, ``hooks``, API or web module, and no module that
   writes audited changes itself (one that imports ``qms.auditing`` or
   ``qms.records.service``, such as ``qms.inspection.decisions``).
3. A domain package module that is not an API or web module imports neither ``qms.api``,
   ``qms.web`` nor any ``qms.<domain>.api`` / ``views`` / ``schemas`` module. The marshmallow
   schemas are the JSON API's wire format (only API modules load them; the web pages use
   WTForms), so they belong to the API side and may use ``qms.api.spec``'s fields.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``, both
``import x`` and ``from x import y`` (``y`` counts when it is itself a module), relative
imports resolved. What the code does today against these rules is listed in KNOWN, each
with the item of issue 10 that removes it; the list may only shrink, so a listed import
that no longer occurs fails the suite too (delete its line).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("audit", "qms")
API_OR_WEB = frozenset({"api", "schemas", "views", "web"})
SERVICE_LAYER = frozenset({"service", "services", "operations", "hooks"}) | API_OR_WEB
WRITERS = frozenset({"qms.auditing", "qms.records.service"})

# module -> imported module: what the code does today, and the item that removes it
KNOWN = {
    # item 1: a record type declares its operations as data (action -> operation), so these
    # lazy-import wrappers around the services' transition hooks go
    ("qms.capa.models", "qms.capa.service"),
    ("qms.deviations.models", "qms.deviations.service"),
    ("qms.inspection.models", "qms.inspection.plans"),
    ("qms.inspection.models", "qms.inspection.decisions"),
    # item 1 and item 2: the hook callables a record type is built with, and the lists the
    # other domains fill at import, become operations and the one wiring module
    ("qms.change_control.models", "qms.change_control.hooks"),
    ("qms.materials.models", "qms.materials.hooks"),
    ("qms.inspection.models", "qms.inspection.hooks"),
}


@dataclass(frozen=True)
class Import:
    module: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.module} -> {self.imported} ({self.line})"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))
            if "migrations" not in path.relative_to(ROOT).parts}


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every module ``name`` imports, anywhere in its body; ``from p import m`` names the
    module ``p.m`` when that is a module of ours, else ``p``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolved(package, node.module, node.level)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append(Import(name, candidate if candidate in known else base,
                                    node.lineno))
    return found


def _resolved(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = parts[:len(parts) - level + 1]
    return ".".join([*base, module] if module else base)


def all_imports() -> list[Import]:
    modules = source_modules()
    return [found for name, path in modules.items()
            for found in imports_of(name, path, set(modules))]


def _within(module: str, roots) -> bool:
    return any(module == root or module.startswith(f"{root}.") for root in roots)


def _last(module: str) -> str:
    return module.rpartition(".")[2]


def is_models(module: str) -> bool:
    return module == "qms.models" or (module.startswith("qms.") and _last(module) == "models")


def is_api_or_web(module: str) -> bool:
    return _within(module, ("qms.api", "qms.web")) or (
        module.startswith("qms.") and module.count(".") == 2 and _last(module) in API_OR_WEB)


def is_domain_module(module: str) -> bool:
    """A module inside a domain package (qms.<domain>.<module>, or the package itself)."""
    return module.startswith("qms.") and (
        (module.count(".") >= 2) or (ROOT / module.replace(".", "/") / "__init__.py").exists())


def writers(imports: list[Import]) -> set[str]:
    """The service layer by what it does: modules that append audited changes themselves."""
    return {found.module for found in imports if found.imported in WRITERS}


def violations(imports: list[Import]) -> list[Import]:
    service_layer = writers(imports)
    found = []
    for each in imports:
        module, imported = each.module, each.imported
        if _within(module, ("audit",)):
            bad = _within(imported, ("qms", "flask", "werkzeug")) or \
                imported.split(".")[0].startswith("flask_")
        elif is_models(module):
            bad = imported.startswith("qms.") and (
                _last(imported) in SERVICE_LAYER or is_api_or_web(imported)
                or imported in service_layer)
        elif is_domain_module(module) and not is_api_or_web(module):
            bad = is_api_or_web(imported)
        else:
            bad = False
        if bad:
            found.append(each)
    return found


def _report(imports) -> str:
    return "\n".join(sorted({str(each) for each in imports}))


def test_no_new_import_violations():
    new = [each for each in violations(all_imports())
           if (each.module, each.imported) not in KNOWN]
    assert not new, "imports against the rules (module -> imported module (line)):\n" + \
        _report(new)


def test_known_exceptions_still_occur():
    occurring = {(each.module, each.imported) for each in violations(all_imports())}
    gone = sorted(KNOWN - occurring)
    assert not gone, ("these known exceptions no longer occur; delete them from KNOWN:\n"
                      + "\n".join(f"{module} -> {imported}" for module, imported in gone))


def test_the_scanner_sees_every_kind_of_import(tmp_path):
    """Module-level and function-level, plain and from-imports, relative ones resolved."""
    package = tmp_path / "qms" / "sample"
    package.mkdir(parents=True)
    path = package / "models.py"
    path.write_text("import flask\nfrom .service import run\nfrom . import api\n"
                    "def later():\n    from ..web import views\n    import qms.sample.hooks\n",
                    encoding="utf-8")
    known = {"qms.sample.api", "qms.web.views"}
    found = [(each.imported, each.line)
             for each in imports_of("qms.sample.models", path, known)]
    assert found == [("flask", 1), ("qms.sample.service", 2), ("qms.sample.api", 3),
                     ("qms.web.views", 5), ("qms.sample.hooks", 6)]
    rules = violations([Import("qms.sample.models", imported, line)
                        for imported, line in found]
                       + [Import("audit.trail", "flask", 1),
                          Import("qms.sample.service", "qms.sample.api", 1),
                          Import("qms.sample.api", "qms.web.views", 1)])
    assert [str(each) for each in rules] == [
        "qms.sample.models -> qms.sample.service (2)", "qms.sample.models -> qms.sample.api (3)",
        "qms.sample.models -> qms.web.views (5)", "qms.sample.models -> qms.sample.hooks (6)",
        "audit.trail -> flask (1)", "qms.sample.service -> qms.sample.api (1)"]


def test_audit_importing_a_flask_extension_or_werkzeug_is_a_violation():
    found = violations([Import("audit.canonical", "flask_babel", 1),
                        Import("audit.canonical", "flask_login", 2),
                        Import("audit.canonical", "werkzeug.exceptions", 3)])
    assert [each.line for each in found] == [1, 2, 3]
