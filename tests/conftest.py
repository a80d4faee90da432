"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when
QMS_TEST_POSTGRES_URL is set), the app, an HTTP client, and factories for users and tokens.

Each test gets a fresh database cloned from a template that Alembic migrated once per run
(SQLite: a file copy; PostgreSQL: CREATE DATABASE ... TEMPLATE), so tests exercise the real
migrations and guard triggers without paying for them every time.

PostgreSQL is run as in production (docs/postgresql.md): the template is migrated by an
owner role, which owns the databases and everything in them, and the application under test
connects as an application role that owns nothing and holds only what the upgrade granted
it. So every test exercises the guards and privileges as the application meets them; a
test that tampers as an attacker with the owner's powers says so (``owner_engine``).
"""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, make_url, select, text

from qms import migrations
from qms.app import create_app
from qms.db import make_engine
from tests.contract import ContractClient

PG_URL = os.environ.get("QMS_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
PASSWORD = "correct horse battery staple"

# real argon2id and scrypt, at costs that keep the suite fast (production defaults are higher)
FAST_CRYPTO = {"SECURITY_ARGON2_TIME_COST": 1, "SECURITY_ARGON2_MEMORY_KIB": 8192,
               "SECURITY_ARGON2_PARALLELISM": 1, "SECURITY_KEY_WRAP_SCRYPT_LOG_N": 10}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Settings come from the test, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("QMS_") and name != "QMS_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


# Shared by every test run on the server (roles are cluster-wide, databases are not): created
# once, tolerating a parallel run creating them at the same moment, and never dropped.
PG_OWNER_ROLE = "qms_test_owner"
PG_APP_ROLE = "qms_test_app"
_CREATE_ROLE = """DO $$ BEGIN CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    NOREPLICATION NOBYPASSRLS; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END $$"""


def _pg_server_url(database: str, role: str | None = None) -> str:
    """PG_URL with another database and, given a role, connecting as that role (the test
    server trusts local connections, so a role needs no password)."""
    url = make_url(PG_URL).set(database=database)
    if role is not None:
        url = url.set(username=role, password=None)
    return url.render_as_string(hide_password=False)


def _admin_engine():
    return create_engine(make_url(_pg_server_url("postgres")).set(drivername="postgresql+psycopg"),
                         isolation_level="AUTOCOMMIT")


def _create_pg_roles(admin) -> None:
    with admin.connect() as connection:
        for role in (PG_OWNER_ROLE, PG_APP_ROLE):
            connection.execute(text(_CREATE_ROLE.format(role=role)))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrations.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template():
    if not PG_URL:
        pytest.skip("QMS_TEST_POSTGRES_URL not set")
    name = f"qms_template_{uuid.uuid4().hex[:8]}"
    admin = _admin_engine()
    _create_pg_roles(admin)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER {PG_OWNER_ROLE}'))
    engine = make_engine(_pg_server_url(name, PG_OWNER_ROLE))
    migrations.upgrade(engine, app_role=PG_APP_ROLE)
    engine.dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@dataclass(frozen=True)
class TestDatabase:
    """A fresh test database: ``url`` connects as the application (on PostgreSQL the app
    role), ``owner_url`` as the owner of its schema ("" on SQLite, which has no roles)."""
    url: str
    owner_url: str


@pytest.fixture
def test_database(backend, request, tmp_path):
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "qms.sqlite3"
        shutil.copyfile(template, target)
        yield TestDatabase(f"sqlite:///{target}", "")
        return
    template = request.getfixturevalue("pg_template")
    name = f"qms_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}" '
                                f'OWNER {PG_OWNER_ROLE}'))
    yield TestDatabase(_pg_server_url(name, PG_APP_ROLE), _pg_server_url(name, PG_OWNER_ROLE))
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(test_database) -> str:
    """The URL the application connects with (PostgreSQL: the app role, which owns nothing)."""
    return test_database.url


@pytest.fixture
def owner_engine(test_database):
    """An engine with the owner's powers over the test database, for tests that tamper as an
    attacker who owns it (drops guards, rewrites rows): the owner role on PostgreSQL, the
    database file itself on SQLite."""
    engine = make_engine(test_database.owner_url or test_database.url)
    yield engine
    engine.dispose()


@pytest.fixture
def app_config(test_database, tmp_path) -> dict:
    # the test client speaks plain HTTP, so secure-only cookies are off in tests
    return {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": test_database.url, "DATABASE_OWNER_URL": test_database.owner_url,
            "SECURITY_SECURE_COOKIES": False, **FAST_CRYPTO}


@pytest.fixture
def app(app_config):
    from qms.bootstrap import ensure_keys

    application = create_app(app_config)
    # every problem+json answer a test provokes must be the one the OpenAPI document promises
    application.test_client_class = ContractClient
    with application.app_context():
        ensure_keys()  # as `qms init` does: the audit signing key and the site id
    yield application
    application.extensions["qms"].db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class TestUser:
    username: str
    password: str
    full_name: str
    roles: list[str]


@pytest.fixture
def make_user(app):
    """make_user("qa1", "qa_approver", ...) -> TestUser with a chosen (not temporary) password."""
    from qms.identity.users import create_user

    def factory(username: str, *roles: str, password: str = PASSWORD,
                temporary: bool = False, full_name: str | None = None) -> TestUser:
        state = app.extensions["qms"]
        name = full_name or username.replace("_", " ").title()
        hashed = state.security.hash_password(password)
        with app.app_context(), state.db.unit_of_work() as session:
            create_user(session, state.security, actor="system", username=username,
                        full_name=name, roles=list(roles), password=hashed,
                        temporary=temporary)
        return TestUser(username, password, name, list(roles))
    return factory


@pytest.fixture
def token_for(client):
    """token_for(user) -> bearer token from POST /api/v1/auth/tokens."""
    def issue(user: TestUser) -> str:
        response = client.post("/api/v1/auth/tokens",
                               json={"username": user.username, "password": user.password})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["token"]
    return issue


@pytest.fixture
def auth_headers(token_for):
    def headers(user: TestUser) -> dict:
        return {"Authorization": f"Bearer {token_for(user)}"}
    return headers


@pytest.fixture
def db_snapshot(app):
    """db_snapshot() -> (row counts of every table, audit head) to prove nothing changed."""
    from qms.models import target_metadata

    def snapshot() -> dict:
        counts = {}
        with app.extensions["qms"].db.engine.connect() as connection:
            for metadata in target_metadata:
                for table in metadata.sorted_tables:
                    counts[table.name] = connection.scalar(select(func.count()).select_from(table))
            head = connection.execute(text("SELECT seq, hash FROM audit_head")).one()
        counts["audit_head"] = tuple(head)
        return counts
    return snapshot


@pytest.fixture
def chain_intact(app):
    """chain_intact() -> True when audit.verify.verify_chain finds no problem in the whole
    chain (asserts, naming the first bad seq, otherwise). No key is given, so the verdict
    is UNANCHORED at best: the chain's consistency is the question here."""
    from audit.verify import verify_chain

    def check() -> bool:
        with app.extensions["qms"].db.engine.connect() as connection:
            result = verify_chain(connection)
        assert not result.problems, (result.first_bad_seq, result.problem)
        return True
    return check


@pytest.fixture
def uow(app):
    """uow() -> a context manager giving a write session inside the app, committed at the
    end (or rolled back on an exception), like one request."""
    state = app.extensions["qms"]

    @contextmanager
    def unit():
        with app.app_context(), state.db.unit_of_work() as session:
            yield session
    return unit


@pytest.fixture
def audit_seq(app):
    """audit_seq() -> the seq of the newest audit event."""
    def head() -> int:
        with app.extensions["qms"].db.engine.connect() as connection:
            return connection.execute(text("SELECT seq FROM audit_head")).scalar_one()
    return head


@pytest.fixture
def audit_since(app):
    """audit_since(seq) -> [(action, actor, entity_id, reason)] of the events after seq
    (tests/records and tests/change_control keep a shorter form of their own)."""
    from tests.materials.support import audit_events_after
    return lambda after: audit_events_after(app, after)
