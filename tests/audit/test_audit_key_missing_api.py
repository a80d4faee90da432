"""A missing audit signing key is a clear 503 problem on the audit API, never a 500 and
never a new key (issue 9 point 8)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/api/v1/audit/verify", "/api/v1/audit/public-key"])
def test_a_missing_audit_key_answers_503_and_is_not_re_created(app, client, make_user,
                                                              auth_headers, path):
    headers = auth_headers(make_user("aud.itor", "auditor"))
    app_state = app.extensions["qms"]
    app_state.audit_key_path.unlink()
    app_state.forget_audit_key()
    answer = client.get(path, headers=headers)
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.get_json()["type"].endswith("/audit-key-missing")
    assert not app_state.audit_key_path.exists()
