"""`qms serve`: gunicorn running the app factory."""
from __future__ import annotations

import threading

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
        from qms.materials.genealogy import warm

        app = create_app()
        # the trace index of this worker, read while the worker already serves
        threading.Thread(target=warm, args=(app.extensions["qms"].db.engine,),
                         name="genealogy-warm", daemon=True).start()
        return app


def run_gunicorn(host: str, port: int, workers: int) -> None:
    QMSServer({"bind": f"{host}:{port}", "workers": workers, "accesslog": "-",
               "timeout": 120}).run()
