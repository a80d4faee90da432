"""Demo data for `qms init --demo` (and `make run`): one person per role, with a known
password that is NOT temporary, so a visitor can try every role at once. Never use --demo on
a production instance."""
from __future__ import annotations

from sqlalchemy import select

from qms.context import state
from qms.documents.models import Document
from qms.documents.service import create_document
from qms.identity.authentication import find_user
from qms.identity.users import create_user
from qms.materials.models import Material
from qms.records.service import apply_transition

DEMO_PASSWORD = "demo-password-2026"
DEMO_USERS = [
    ("qa.approver", "Li Wei (QA Approver)", ["qa_approver"]),
    ("qa.reviewer", "Anna Schmidt (QA Reviewer)", ["qa_reviewer"]),
    ("inspector", "Carlos Ruiz (Inspector)", ["inspector"]),
    ("production", "Zhang Min (Production)", ["production"]),
    ("auditor", "Grace Okafor (Auditor)", ["auditor"]),
]


def create_demo_data() -> None:
    """Idempotent: users that exist are left alone; documents are added once, and the demo
    plant (qms.demo_plant) once, when there is no material yet."""
    app_state = state()
    with app_state.db.reading() as session:
        missing = [user for user in DEMO_USERS if find_user(session, user[0]) is None]
    hashed = {username: app_state.security.hash_password(DEMO_PASSWORD)
              for username, _, _ in missing}
    with app_state.db.unit_of_work() as session:
        for username, full_name, roles in missing:
            create_user(session, app_state.security, actor="system", username=username,
                        full_name=full_name, roles=roles, password=hashed[username],
                        temporary=False)
    with app_state.db.unit_of_work() as session:
        if session.scalar(select(Document.id).limit(1)) is None:
            _demo_documents(session)
    with app_state.db.unit_of_work() as session:
        if session.scalar(select(Material.id).limit(1)) is None:
            from qms.demo_plant import create_demo_plant  # it imports DEMO_PASSWORD from here

            create_demo_plant(session, app_state)


def _demo_documents(session) -> None:
    """One SOP taken through review and approval with real signatures, one draft."""
    app_state = state()
    workflow = app_state.workflows.get("document")
    author, reviewer, approver = (find_user(session, name) for name in
                                  ("production", "qa.reviewer", "qa.approver"))
    sop = create_document(session, workflow, author, {
        "title": "Incoming inspection of raw materials", "doc_type": "sop",
        "summary": "Sampling, identity testing and release of incoming raw material lots."})
    apply_transition(session, app_state.security, workflow, sop, author, "submit", None, None)
    for signer, action, meaning in ((reviewer, "review", "reviewed"),
                                    (approver, "approve", "approved")):
        credentials = {"username": signer.username, "password": DEMO_PASSWORD,
                       "meaning": meaning}
        apply_transition(session, app_state.security, workflow, sop, signer, action,
                         None, credentials, expected_version=sop.version)
    create_document(session, workflow, author, {
        "title": "Line clearance before packaging", "doc_type": "work_instruction",
        "summary": "Checks before a packaging run starts (中文: 包装前清场)."})


def login_help(url: str) -> str:
    lines = [f"QMS is serving at {url}", "", "Demo users (password: "
             f"{DEMO_PASSWORD}):"]
    lines += [f"  {username:12} {', '.join(roles)}" for username, _, roles in DEMO_USERS]
    lines += ["  admin        the password printed when the instance was created",
              "", "Demo plant: materials RM-PARA, RM-LAC, PK-BLISTER, IM-GRAN, FG-PARA500; an",
              "accepted incoming inspection, a granulation and a tablet batch, a deviation",
              "holding a foil lot, its CAPA and a draft change control.",
              "", "API docs: " + url + "/api-docs   Stop with Ctrl+C."]
    return "\n".join(lines)
