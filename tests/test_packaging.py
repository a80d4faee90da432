"""A wheel built from the repository runs on its own: templates, config defaults, migrations,
translations and the URS are package data, not files found beside a checkout."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# run the unpacked wheel, not the editable checkout (the editable finder comes after sys.path)
SMOKE = """
import sys
sys.path.insert(0, sys.argv[1])
import qms
assert qms.__file__.startswith(sys.argv[1]), qms.__file__
from click.testing import CliRunner
from qms.cli import main
result = CliRunner().invoke(main, ["init", "--demo"], catch_exceptions=False)
assert result.exit_code == 0, result.output
from qms.app import create_app
client = create_app().test_client()
assert client.get("/login", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True).count("登录") > 0
assert client.get("/assets/qms.css").status_code == 200
assert client.get("/api/v1/health").get_json()["status"] == "ok"
print("wheel ok")
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    return next(out.glob("qms-*.whl"))


@pytest.mark.slow
def test_wheel_carries_its_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("qms/bundled/config/default.toml", "qms/bundled/config/roles.toml",
                     "qms/bundled/config/workflows.toml", "qms/bundled/templates/base.html",
                     "qms/migrations/env.py", "qms/migrations/versions/0001_initial.py",
                     "qms/static/qms.css", "validation/urs.toml",
                     "qms/translations/zh_Hans_CN/LC_MESSAGES/messages.mo",
                     "audit/verify_export.py", "qms/bundled/config/release.toml",
                     "qms/bundled/config/numbering.toml", "qms/release/gates.py",
                     "qms/erp/b2mml.py", "qms/migrations/versions/0008_erp.py"):
        assert required in names, required


@pytest.mark.slow
def test_unpacked_wheel_initialises_and_serves(wheel, tmp_path):
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    env = {"PATH": "/usr/bin:/bin", "QMS_INSTANCE_PATH": str(tmp_path / "instance"),
           "QMS_ADMIN_PASSWORD": "wheel operator passphrase"}
    result = subprocess.run([sys.executable, "-c", SMOKE, str(unpacked)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wheel ok" in result.stdout
