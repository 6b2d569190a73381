"""`lookalike serve --prolific-sync-minutes N`: the sync runs in serve's own process (once, also in
front of several app processes), the app processes never get the token, a return on the platform
frees the place while the survey is served, and the admin page shows the last sync and its
mismatches. Also the refusals, before anything starts."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from db.engine import make_engine, make_sessionmaker
from db.models import ProlificSync
from db.pgserver import free_port
from survey.cli import main
from survey.participants import service
from survey.prolific.client import ProlificClient, ProlificUnavailable, RetryPolicy
from survey.prolific.sync import run_sync
from survey.study.config import ConfigError
from survey.study.config_file import load_config
from tests.apptest import admin_page
from tests.prolific_fake import FakeProlific
from tests.served import needs_nginx

PSTUDY = "60aca280709ee40ec37d4885"


def test_serve_refuses_a_sync_without_the_token_naming_it(tmp_path, capsys):
    assert main(["serve", "--db", str(tmp_path / "s.db"), "--prolific-sync-minutes", "1"]) == 2
    err = capsys.readouterr().err
    assert "PROLIFIC_TOKEN is not set" in err and err.count("\n") == 1
    assert not (tmp_path / "s.db").exists()  # refused before the database was opened


def test_serve_refuses_an_interval_too_short(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PROLIFIC_TOKEN", "t")
    assert main(["serve", "--db", str(tmp_path / "s.db"), "--prolific-sync-minutes", "0.01"]) == 2
    assert "--prolific-sync-minutes must be at least 0.05" in capsys.readouterr().err


def test_the_study_file_takes_the_prolific_study_id_and_never_a_token(tmp_path):
    base = '[study]\nname = "s"\ncatalog = "m.csv"\n[prolific]\n'
    (tmp_path / "ok.toml").write_text(base + f'study_id = "{PSTUDY}"\n')
    assert load_config(tmp_path / "ok.toml").prolific_study_id == PSTUDY
    (tmp_path / "token.toml").write_text(base + 'token = "abc"\n')
    with pytest.raises(ConfigError, match="never read from a file.*export PROLIFIC_TOKEN"):
        load_config(tmp_path / "token.toml")
    (tmp_path / "bad.toml").write_text(base + 'study_id = "https://app.prolific.com/x"\n')
    with pytest.raises(ConfigError, match="prolific.study_id: .* is not a Prolific study id"):
        load_config(tmp_path / "bad.toml")


def test_the_token_is_never_in_the_settings_repr_or_a_child_environment():
    from survey.settings import Settings

    settings = Settings.from_env("sqlite:///x.db", environ={"PROLIFIC_TOKEN": "tok-secret-1"})
    assert settings.prolific_token == "tok-secret-1"
    assert "tok-secret-1" not in repr(settings) and "tok-secret-1" not in str(settings.to_env())


def test_the_admin_page_shows_the_last_sync_and_its_mismatches(tiny_study, monkeypatch):
    db_path, sessions, study = tiny_study("admin", prolific_study_id=PSTUDY)
    fake = FakeProlific()
    fake.add(PSTUDY, "stranger", "AWAITING REVIEW", code="X")
    with fake.running():
        client = ProlificClient(fake.token, fake.url, retry=RetryPolicy(attempts=1))
        run_sync(sessions, study.id, client, by="ana")
        at = admin_page(f"sqlite:///{db_path}", monkeypatch, "pw")
        at.text_input[0].input("pw")
        at.button[0].click().run()
        assert any("Last sync" in c.value and "by ana" in c.value and "1 mismatch" in c.value for c in at.caption)
        shown = at.dataframe[-1].value.to_dict("records")
        assert shown == [{"kind": "no_participant", "pid": "stranger", "detail": shown[0]["detail"]}]
        fake.faults = ["500"]
        with pytest.raises(ProlificUnavailable):
            run_sync(sessions, study.id, client, by="ana")
    at.run()
    assert any("failed; the study was not changed" in e.value for e in at.error) and at.exception == []


def _serve(db_url: str, fake: FakeProlific, port: int, log: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PROLIFIC_TOKEN": fake.token, "LOOKALIKE_PROLIFIC_API": fake.url}
    cmd = [sys.executable, "-m", "survey.cli", "serve", "--db", db_url, "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not come up: {log.read_text()[-2000:]}") from None
            time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _app_environments(parent: int) -> list[bytes]:
    """The environment of every Streamlit process under ``parent``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"streamlit" in (stat.parent / "cmdline").read_bytes():
                out.append((stat.parent / "environ").read_bytes())
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    return out


def test_a_return_on_the_platform_frees_the_place_while_served(tiny_study, tmp_path):
    db_path, sessions, study = tiny_study("served", prolific_study_id=PSTUDY, max_participants=1)
    fake = FakeProlific()
    fake.create(PSTUDY)
    with fake.running():
        proc = _serve(
            f"sqlite:///{db_path}", fake, free_port(), tmp_path / "serve.log", "--prolific-sync-minutes", "0.05"
        )
        try:
            envs = _app_environments(proc.pid)
            assert len(envs) == 1 and all(b"PROLIFIC_TOKEN=" not in e for e in envs)
            fake.add(PSTUDY, "p1")
            token = service.start_participant(sessions, study.id, {"PROLIFIC_PID": "p1"}, np.random.default_rng(0))
            fake.set("p1", "RETURNED")
            t0 = time.monotonic()
            while service.participant_state(sessions, token).stage != "returned":
                assert time.monotonic() - t0 < 20, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
            service.start_participant(sessions, study.id, {"PROLIFIC_PID": "p2"}, None)  # the place is free
        finally:
            _stop(proc)
    log = (tmp_path / "serve.log").read_text()
    assert "prolific sync: Prolific study" in log and "released p1: returned" in log
    assert fake.token not in log


@needs_nginx
def test_in_front_of_several_app_processes_the_sync_runs_once(postgres, tiny_study, tmp_path):
    url = postgres.create_database()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    tiny_study("farm", make_session=sessions, prolific_study_id=PSTUDY)
    fake = FakeProlific()
    fake.create(PSTUDY)
    with fake.running():
        proc = _serve(
            url, fake, free_port(), tmp_path / "serve.log", "--processes", "2", "--prolific-sync-minutes", "0.05"
        )
        try:
            envs = _app_environments(proc.pid)
            assert len(envs) == 2 and all(b"PROLIFIC_TOKEN=" not in e for e in envs)
            time.sleep(10)
        finally:
            _stop(proc)
    with sessions() as s:
        starts = [x.started_at for x in s.scalars(select(ProlificSync).order_by(ProlificSync.id))]
    engine.dispose()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # every 3 s from one thread: 3 to 5 syncs in 10 s, never two within one interval
    assert 3 <= len(starts) <= 5 and all(g > timedelta(seconds=2.5) for g in gaps), starts
