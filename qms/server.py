"""`qms serve`: gunicorn running the app factory."""
from __future__ import annotations

from gunicorn.app.base import BaseApplication


class QMSServer(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from qms.app import create_app

        return create_app()


def run_gunicorn(host: str, port: int, workers: int) -> None:
    QMSServer({"bind": f"{host}:{port}", "workers": workers, "accesslog": "-",
               "timeout": 120}).run()
