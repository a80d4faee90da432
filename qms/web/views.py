"""Pages: home, the audit trail with its chain status, and the API reference."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user

from audit import trail
from qms.api.openapi import build_openapi
from qms.chain_checks.service import check_chain, future_dated, last_check, overdue
from qms.context import db_session, release_write_lock, state
from qms.db import utcnow
from qms.web import page, user_may
from qms.web.forms import AuditFilterForm, VerifyChainForm

AUDIT_PAGE_SIZE = 50
ROLE_TITLES = {"inspector": _l("Inspector"), "qa_reviewer": _l("QA reviewer"),
               "qa_approver": _l("QA approver (Qualified Person)"),
               "production": _l("Production"), "auditor": _l("Auditor"),
               "admin": _l("Administrator"), "erp": _l("ERP service account")}


@page("/")
def home():
    roles = state().security.roles
    held = [(ROLE_TITLES.get(role, role), role, roles.descriptions.get(role, ""))
            for role in current_user.roles]
    return render_template("home.html", user=current_user.record, roles=held,
                           permissions=sorted(roles.permissions_of(current_user.roles)),
                           idle_minutes=current_app.config["SECURITY_SESSION_IDLE_MINUTES"])


@page("/audit")
def audit_trail():
    """Events newest first, filtered, under the last recorded verification of the chain (by
    the scheduler, or asked for here) with its time: walking a million events on every
    visit would take seconds. The page warns when that verification is overdue."""
    if not user_may("audit.read"):
        abort(403)
    form = AuditFilterForm(formdata=request.args)
    valid = form.validate()
    if form.page.errors:
        abort(400)  # the page number comes from our own links, and the form cannot show it
    page = (form.page.data or 1) if valid else 1
    events = trail.query_events(db_session().connection(), **event_filters(form),
                                limit=AUDIT_PAGE_SIZE + 1, offset=(page - 1) * AUDIT_PAGE_SIZE,
                                newest_first=True) if valid else []
    now, interval = utcnow(), current_app.config["AUDIT_VERIFY_INTERVAL_MINUTES"]
    check = last_check(db_session(), now)
    return render_template("audit.html", form=form, events=events[:AUDIT_PAGE_SIZE],
                           page=page, page_size=AUDIT_PAGE_SIZE,
                           has_next=len(events) > AUDIT_PAGE_SIZE,
                           page_url=page_url, chain=check, verify_form=VerifyChainForm(),
                           overdue=overdue(check, interval, now),
                           forged=future_dated(db_session(), now),
                           verify_interval=interval, data_text=data_text)


@page("/audit/verify", methods=["POST"])
def verify_audit_chain():
    """Verify the whole chain now and record it (POST with the CSRF token: it costs seconds
    on a long trail, and a link elsewhere must not start it)."""
    if not user_may("audit.read"):
        abort(403)
    if not VerifyChainForm().validate_on_submit():
        abort(400)
    release_write_lock()  # the verification reads for seconds; its record has its own commit
    check = check_chain(state().db, requested_by=current_user.username)
    flash(_("The audit chain was verified: %(verdict)s.", verdict=check.verdict),
          "success" if check.ok else "error")
    return redirect(url_for("web.audit_trail"))


def event_filters(form: AuditFilterForm) -> dict:
    """Form fields -> query_events arguments; the "to" date includes that whole UTC day."""
    filters = {name: getattr(form, name).data or None for name in ("seq_from", "seq_to")}
    for name in ("entity_type", "entity_id", "actor", "action"):
        filters[name] = (getattr(form, name).data or "").strip() or None
    if form.at_from.data:
        filters["at_from"] = utc_midnight(form.at_from.data)
    if form.at_to.data:
        filters["at_to"] = utc_midnight(form.at_to.data) + timedelta(days=1)
    return filters


def utc_midnight(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def page_url(page: int) -> str:
    args = {key: value for key, value in request.args.items() if key != "page" and value}
    return url_for("web.audit_trail", page=page, **args)


def data_text(data) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


@page("/api-docs")
def api_docs():
    """The OpenAPI document as HTML, rendered here: no script or CDN, so it works offline."""
    document = build_openapi()
    return render_template("api_docs.html", info=document["info"],
                           version=document["openapi"], groups=operation_groups(document),
                           schemas=schema_docs(document))


@dataclass
class FieldDoc:
    name: str
    type: str
    ref: str | None = None
    required: bool = False
    array: bool = False
    location: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class OperationDoc:
    method: str
    path: str
    summary: str
    description: str
    permission: str | None
    public: bool
    parameters: list[FieldDoc]
    body: FieldDoc | None
    responses: list[tuple[str, str, FieldDoc | None]]

    @property
    def anchor(self) -> str:
        return f"op-{self.method}-" + re.sub(r"[^a-z0-9]+", "-", self.path.lower()).strip("-")


def operation_groups(document: dict) -> list[tuple[str, list[OperationDoc]]]:
    groups: dict[str, list[OperationDoc]] = {}
    for path, operations in document.get("paths", {}).items():
        for method, op in operations.items():
            tag = (op.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append(operation_doc(path, method, op))
    return sorted(groups.items())


def operation_doc(path: str, method: str, op: dict) -> OperationDoc:
    declared = [parameter_doc(p) for p in op.get("parameters", [])]
    named = {p.name for p in declared}
    in_path = [FieldDoc(name, "string", required=True, location="path")
               for name in re.findall(r"{(\w+)}", path) if name not in named]
    body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    return OperationDoc(method=method.upper(), path=path, summary=op.get("summary", ""),
                        description=op.get("description", ""),
                        permission=op.get("x-permission"), public=op.get("security") == [],
                        parameters=in_path + declared,
                        body=type_doc("body", body_schema["schema"]) if body_schema else None,
                        responses=[response_doc(code, r) for code, r in
                                   sorted(op.get("responses", {}).items())])


def parameter_doc(parameter: dict) -> FieldDoc:
    doc = type_doc(parameter["name"], parameter.get("schema", {}))
    doc.required, doc.location = parameter.get("required", False), parameter.get("in", "")
    if parameter.get("description"):
        doc.notes.insert(0, parameter["description"])
    return doc


def response_doc(code: str, response: dict) -> tuple[str, str, FieldDoc | None]:
    for media_type, content in response.get("content", {}).items():
        return code, response.get("description", ""), type_doc(media_type, content.get("schema", {}))
    return code, response.get("description", ""), None


def schema_docs(document: dict) -> list[tuple[str, str, list[FieldDoc]]]:
    docs = []
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        fields = [type_doc(prop, sub, required=prop in required)
                  for prop, sub in schema.get("properties", {}).items()]
        docs.append((name, schema.get("description", ""), fields))
    return docs


CONSTRAINTS = ("format", "enum", "default", "minimum", "maximum", "minLength", "maxLength",
               "pattern", "minItems", "maxItems")


def type_doc(name: str, schema: dict, *, required: bool = False) -> FieldDoc:
    """One field's type: a JSON type, or a schema name (linked), possibly an array of it."""
    items = schema.get("items") if schema_type(schema) == "array" else None
    target = items if items is not None else schema
    doc = FieldDoc(name, schema_type(target), ref=ref_name(target), required=required,
                   array=items is not None)
    doc.notes = [f"{key}: {json.dumps(schema[key], ensure_ascii=False)}"
                 for key in CONSTRAINTS if key in schema]
    if schema.get("readOnly"):
        doc.notes.append("read-only")
    if schema.get("description"):
        doc.notes.insert(0, schema["description"])
    return doc


def schema_type(schema: dict) -> str:
    kind = schema.get("type", "object" if "properties" in schema else "any")
    # OpenAPI 3.1 writes nullable fields as ["string", "null"]
    return " | ".join(kind) if isinstance(kind, list) else kind


def ref_name(schema: dict) -> str | None:
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else None
