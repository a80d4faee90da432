"""Demo data for `qms init --demo` (and `make run`): one person per role, with a known
password that is NOT temporary, so a visitor can try every role at once. Never use --demo on
a production instance."""
from __future__ import annotations

from qms.context import state
from qms.identity.authentication import find_user
from qms.identity.users import create_user

DEMO_PASSWORD = "demo-password-2026"
DEMO_USERS = [
    ("qa.approver", "Li Wei (QA Approver)", ["qa_approver"]),
    ("qa.reviewer", "Anna Schmidt (QA Reviewer)", ["qa_reviewer"]),
    ("inspector", "Carlos Ruiz (Inspector)", ["inspector"]),
    ("production", "Zhang Min (Production)", ["production"]),
    ("auditor", "Grace Okafor (Auditor)", ["auditor"]),
]


def create_demo_data() -> None:
    """Idempotent: users that exist are left alone."""
    app_state = state()
    with app_state.db.unit_of_work() as session:
        for username, full_name, roles in DEMO_USERS:
            if find_user(session, username) is None:
                user = create_user(session, app_state.security, actor="system",
                                   username=username, full_name=full_name, roles=roles,
                                   password=DEMO_PASSWORD)
                user.password_temporary = False


def login_help(url: str) -> str:
    lines = [f"QMS is serving at {url}", "", "Demo users (password: "
             f"{DEMO_PASSWORD}):"]
    lines += [f"  {username:12} {', '.join(roles)}" for username, _, roles in DEMO_USERS]
    lines += ["  admin        the password printed when the instance was created",
              "", "API docs: " + url + "/api-docs   Stop with Ctrl+C."]
    return "\n".join(lines)
