"""`lookalike serve`: the Streamlit settings a served process really runs with (read back from the
running process), the light protocol-level participant of bench/served.py taking a whole study,
and the refusals and nginx configuration of ``--processes``."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import subprocess

import pytest

from db.pgserver import free_port
from survey.cli import main
from survey.web import serving
from tests.served import TRIALS, Server, needs_nginx, nginx_accepts


@pytest.mark.slow  # a real server on the built study (real weights)
def test_a_served_process_runs_with_the_study_settings_and_a_light_participant_finishes(sqlite_study_db, tmp_path):
    from bench._stclient import Participant

    url, _, _ = sqlite_study_db
    log = tmp_path / "server.log"
    server = Server(url, free_port(), log=log)
    try:
        server.start()
        p = Participant(server.url, "light-1", 0.0, random.Random(1))
        asyncio.run(p.run())
        text = log.read_text()
    finally:
        server.stop()
    assert p.answers == TRIALS and p.completion == "DONE42" and len(p.submit_s) == TRIALS
    # printed by the app process from Streamlit's own configuration, once, at its first script run
    lines = [line for line in text.splitlines() if "lookalike: app process" in line]
    assert len(lines) == 1, text[-2000:]
    running = dict(kv.split("=", 1) for kv in lines[0].split(" runs with ", 1)[1].split())
    assert running == serving.STREAMLIT_OPTIONS
    assert running["server.fileWatcherType"] == "none" and running["runner.postScriptGC"] == "false"
    assert running["client.showErrorDetails"] == "none" and running["server.runOnSave"] == "false"
    assert int(running["server.disconnectedSessionTTL"]) > 0


def test_the_command_line_of_an_app_process_sets_every_option():
    cmd = serving.streamlit_command(8600, "127.0.0.1")
    pairs = dict(itertools.pairwise(cmd))
    assert all(pairs[f"--{k}"] == v for k, v in serving.STREAMLIT_OPTIONS.items())
    assert pairs["--server.port"] == "8600" and pairs["--server.address"] == "127.0.0.1"


@pytest.mark.parametrize("processes", [2, 4])
def test_several_processes_on_sqlite_are_refused_naming_the_fix(tmp_path, capsys, processes):
    db = tmp_path / "s.db"
    assert main(["serve", "--db", str(db), "--processes", str(processes)]) == 2
    err = capsys.readouterr().err
    assert f"--processes {processes} needs PostgreSQL" in err and "postgresql+psycopg://" in err
    assert not db.exists()  # refused before anything was opened or started


def test_zero_processes_are_refused(tmp_path, capsys):
    assert main(["serve", "--db", str(tmp_path / "s.db"), "--processes", "0"]) == 2
    assert "--processes must be at least 1" in capsys.readouterr().err


@needs_nginx
def test_the_generated_nginx_configuration_is_accepted_by_nginx(tmp_path):
    text = serving.nginx_config(tmp_path, listen="127.0.0.1:18080", backends=[18081, 18082])
    nginx_accepts(text, tmp_path)
    assert re.findall(r"server 127\.0\.0\.1:(\d+)", text) == ["18081", "18082"]
    timeout = int(re.search(r"proxy_read_timeout (\d+)s", text).group(1))
    assert timeout > serving.PING_INTERVAL_S  # an idle participant's WebSocket outlives the proxy's wait
    assert "hash $lookalike_route consistent" in text and "Upgrade $http_upgrade" in text


def test_a_dead_app_process_is_restarted_but_a_crash_loop_is_given_up(tmp_path, monkeypatch, capsys):
    """Farm.wait with stand-in processes: nginx a sleeping process, app processes that exit at once.
    Each death is restarted on its port until MAX_RESTARTS in the window; then it stays down, and
    with every process down the farm ends with status 1."""
    import sys

    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    crash = [sys.executable, "-c", "raise SystemExit(3)"]
    spawned: list[int] = []

    def spawn(self, port):
        spawned.append(port)
        return subprocess.Popen(crash)

    monkeypatch.setattr(serving.Farm, "_spawn", spawn)
    monkeypatch.setattr(serving, "MAX_RESTARTS", 3)
    real_sleep = serving.time.sleep
    monkeypatch.setattr(serving.time, "sleep", lambda s: real_sleep(min(s, 0.2)))
    nginx = subprocess.Popen(sleeper)
    farm = serving.Farm(8000, "127.0.0.1", 2, {}, tmp_path, [subprocess.Popen(crash), subprocess.Popen(crash)])
    farm.nginx, farm.backends = nginx, (8101, 8102)
    try:
        assert farm.wait() == 1
    finally:
        nginx.kill()
        nginx.wait()
    out = capsys.readouterr().out
    assert sorted(spawned) == [8101] * 3 + [8102] * 3  # 3 restarts each, then given up
    assert out.count("app process on port 8101 exited (3); restarted it (pid ") == 3
    assert "app process on port 8101 exited (3), 4 times in 5 min: not restarting it" in out
    assert "app process on port 8102 exited (3), 4 times in 5 min: not restarting it" in out
