"""Which calendar day it is for expiry and due dates: the site's (config app.timezone)."""
from __future__ import annotations

from datetime import date

from flask import current_app, has_app_context

from qms.settings import site_today


def today() -> date:
    """The site's calendar day inside the application, else the local date (scripts and
    benchmarks that run without an application)."""
    return site_today(current_app.config) if has_app_context() else date.today()
