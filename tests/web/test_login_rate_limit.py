"""The sign-in form answers a throttled attempt with a form message (429, Retry-After), in
the user's language, saying the wait in minutes (issue 9, point 11)."""
from __future__ import annotations

import math

import pytest


@pytest.fixture
def app_config(app_config):
    return {**app_config, "RATELIMIT_FAILURES_PER_ADDRESS": "2 per hour"}


def test_a_throttled_sign_in_shows_a_form_message(client, make_user, sign_in):
    mona = make_user("mona", "auditor")
    assert [sign_in(mona, "wrong password 1").status_code for _ in range(2)] == [401, 401]
    throttled = sign_in(mona)
    assert throttled.status_code == 429
    minutes = math.ceil(int(throttled.headers["Retry-After"]) / 60)
    assert minutes > 1  # an hour's window: the wait is said in minutes, not seconds
    assert ("Too many failed sign-in attempts from this computer or for this username. "
            f"Try again in {minutes} minutes.") in throttled.text
    assert 'name="password"' in throttled.text  # the form, not an error page


def test_the_message_is_translated(client, make_user, sign_in):
    nina = make_user("nina", "auditor")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    for _ in range(2):
        sign_in(nina, "wrong password 1")
    throttled = sign_in(nina)
    minutes = math.ceil(int(throttled.headers["Retry-After"]) / 60)
    assert throttled.status_code == 429 and "登录失败次数过多" in throttled.text
    assert f"请在 {minutes} 分钟后再试" in throttled.text
