"""Secrets end to end: a real server, the real CLI, real functions that print and
return their secrets; then the raw database (SQLite file and WAL, or every PostgreSQL
row) and the activation records hold no plaintext."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.cli.conftest import wisp_executable
from tests.live import LiveServer

SECRET = "s3cr3t-Vt9qLw-plaintext"
ENV_SECRET = "init-env-Kx72pQ-value"
ACTIONS = "/api/v1/namespaces/_/actions"
CODE = """import os
def main(args):
    print("db is", args["db"], "and env", os.environ.get("TOKEN"))
    return {"db": args["db"], "env": os.environ.get("TOKEN"), "n": len(args["db"])}
"""


def set_secret(server: LiveServer, name: str, value: str) -> None:
    proc = subprocess.run(
        [wisp_executable(), "secret", "set", name],
        env=server.env,
        input=value + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def invoke(server: LiveServer, name: str) -> dict[str, Any]:
    status, record = server.call("POST", f"{ACTIONS}/{name}?blocking=true", {})
    assert status in (200, 500, 502), record  # 500: failed inside the platform
    assert isinstance(record, dict)
    return record


def raw_database(server: LiveServer, url: str | None) -> bytes:
    if url is None:
        data = b""
        for suffix in ("", "-wal", "-shm", "-journal"):
            path = server.data_dir / f"wisp.db{suffix}"
            if path.exists():
                data += path.read_bytes()
        assert data
        return data
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    dump = []
    with engine.connect() as conn:
        tables = conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        for table in list(tables):
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                dump.append(repr(tuple(row)))
    engine.dispose()
    return "\n".join(dump).encode()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("empty_postgres_url")
    return url


def test_secrets_never_at_rest_in_plaintext(tmp_path: Path, database: str | None) -> None:
    env = {"WISP_DATABASE_URL": database} if database else {}
    with LiveServer(tmp_path, env=env) as server:
        set_secret(server, "db", SECRET)
        set_secret(server, "token", ENV_SECRET)
        listed = server.ok("secret", "list", "--json").out
        assert '"db"' in listed and SECRET not in listed
        status, items = server.call("GET", "/api/v1/namespaces/_/secrets")
        assert status == 200
        assert {i["name"]: i["size"] for i in items} == {
            "db": len(SECRET),
            "token": len(ENV_SECRET),
        }

        params = [
            {"key": "db", "value": {"$secret": "db"}},
            {"key": "TOKEN", "value": {"$secret": "token"}, "init": True},
        ]
        server.deploy("show", CODE, parameters=params)
        record = invoke(server, "show")
        result = record["response"]["result"]
        assert record["response"]["success"], record
        # The function saw the real values; the record only has them masked.
        assert result == {"db": "***", "env": "***", "n": len(SECRET)}
        assert any("db is *** and env ***" in line for line in record["logs"])
        status, got = server.call(
            "GET", f"/api/v1/namespaces/_/activations/{record['activationId']}"
        )
        assert status == 200 and SECRET not in str(got) and ENV_SECRET not in str(got)
        status, action = server.call("GET", f"{ACTIONS}/show")
        assert SECRET not in str(action) and {"$secret": "db"} in [
            p["value"] for p in action["parameters"]
        ]

        # An invoker cannot ask for a secret the function does not bind.
        status, echo = server.call(
            "POST", f"{ACTIONS}/show?blocking=true", {"db": {"$secret": "token"}}
        )
        assert ENV_SECRET not in str(echo)

        # A reference to a secret that does not exist is refused at deploy time.
        status, answer = server.call(
            "PUT",
            f"{ACTIONS}/bad?overwrite=true",
            {"exec": {"kind": "python:default", "code": CODE},
             "parameters": [{"key": "db", "value": {"$secret": "nope"}}]},
        )  # fmt: skip
        assert status == 400 and "nope" in answer["error"]

        server.stop()  # the WAL as the server left it, and every record written
        raw = raw_database(server, database)
        assert SECRET.encode() not in raw and ENV_SECRET.encode() not in raw
        assert b"wisp:v1:" in raw  # the ciphertexts are there
        assert SECRET not in server.output()


def flip(ciphertext: str) -> str:
    raw = bytearray(base64.b64decode(ciphertext[len("wisp:v1:") :]))
    raw[20] ^= 0x01
    return "wisp:v1:" + base64.b64encode(bytes(raw)).decode()


def test_tampered_or_moved_ciphertext_fails_closed_and_rotation_keeps_values(
    tmp_path: Path,
) -> None:
    with LiveServer(tmp_path) as server:
        set_secret(server, "db", SECRET)
        set_secret(server, "other", "another-value")
        server.deploy("show", CODE, parameters=[{"key": "db", "value": {"$secret": "db"}}])
        assert invoke(server, "show")["response"]["result"]["n"] == len(SECRET)
        server.stop()

        engine = sa.create_engine(f"sqlite:///{server.data_dir / 'wisp.db'}")
        with engine.begin() as conn:
            good = conn.execute(
                sa.text("SELECT ciphertext FROM secrets WHERE name='db'")
            ).scalar_one()
            conn.execute(
                sa.text("UPDATE secrets SET ciphertext=:c WHERE name='db'"), {"c": flip(good)}
            )
        server.start()
        record = invoke(server, "show")
        assert not record["response"]["success"]
        error = record["response"]["result"]["error"]
        assert "'db'" in error and "authentication" in error
        assert record["logs"] == []  # nothing ran

        server.stop()
        with engine.begin() as conn:  # a ciphertext copied to another name
            conn.execute(sa.text("UPDATE secrets SET ciphertext=:c WHERE name='db'"), {"c": good})
            conn.execute(
                sa.text("UPDATE secrets SET ciphertext=:c WHERE name='other'"), {"c": good}
            )
        server.start()
        assert invoke(server, "show")["response"]["result"]["n"] == len(SECRET)
        server.deploy("other", CODE, parameters=[{"key": "db", "value": {"$secret": "other"}}])
        record = invoke(server, "other")
        assert (
            not record["response"]["success"] and "'other'" in record["response"]["result"]["error"]
        )
        server.stop()

        key_before = (server.data_dir / "master.key").read_text()
        rotated = server.ok("admin", "rotate-master-key", "--data-dir", str(server.data_dir))
        assert "Re-wrapped 1 data key" in rotated.err
        assert (server.data_dir / "master.key").read_text() != key_before
        with engine.begin() as conn:
            after = conn.execute(
                sa.text("SELECT ciphertext FROM secrets WHERE name='db'")
            ).scalar_one()
        assert after == good  # values untouched, only the data key re-wrapped
        engine.dispose()
        server.start()
        record = invoke(server, "show")
        assert record["response"]["success"] and record["response"]["result"]["n"] == len(SECRET)
        server.ok("secret", "delete", "db")
        assert "db" not in server.ok("secret", "list", "--json").out


def test_a_secret_deleted_after_the_deploy_is_the_functions_error_naming_it(
    tmp_path: Path,
) -> None:
    with LiveServer(tmp_path) as server:
        set_secret(server, "db", SECRET)
        server.deploy("show", CODE, parameters=[{"key": "db", "value": {"$secret": "db"}}])
        assert invoke(server, "show")["response"]["result"]["n"] == len(SECRET)
        status, _ = server.call("DELETE", "/api/v1/namespaces/_/secrets/db", None)
        assert status in (200, 204)
        status, record = server.call("POST", f"{ACTIONS}/show?blocking=true", {})
        assert status == 502, record  # a developer error, not a platform failure (500)
        assert record["response"]["status"] == "action developer error"
        assert "secret 'db' does not exist" in record["response"]["result"]["error"]
        assert record["logs"] == []  # nothing ran
        assert "Traceback" not in server.output()
