"""`lookalike backup`: a consistent copy of a SQLite database while participants keep answering."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from db.backup import BackupError, backup_sqlite
from db.engine import make_engine
from survey.cli import main
from survey.participants import service
from tests.helpers import answer_all


def test_backup_of_a_live_database_is_a_consistent_committed_state(sqlite_study_db, tmp_path):
    url, make_session, _ = sqlite_study_db
    study = service.current_study(make_session)
    stop = threading.Event()
    answered: list[int] = []

    def participants() -> None:  # keep writing while the backups run
        seed = 0
        while not stop.is_set():
            rng = np.random.default_rng(seed)
            answer_all(make_session, service.start_participant(make_session, study.id, {}, rng), rng)
            answered.append(seed)
            seed += 1

    writer = threading.Thread(target=participants)
    writer.start()
    try:
        copies = [backup_sqlite(url, tmp_path / f"copy{i}.db", pages_per_step=1) for i in range(3)]
    finally:
        stop.set()
        writer.join()
    assert answered, "the writer never ran during the backups"
    for r in copies:
        con = sqlite3.connect(r.out)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        # transactions are whole: a participant's trials are all there or not at all, and the
        # completion time is set exactly when every trial of the participant has its answer
        per_participant = con.execute(
            "SELECT p.id, p.trials_done_at IS NOT NULL, COUNT(DISTINCT t.id), COUNT(DISTINCT r.id) "
            "FROM participants p JOIN trials t ON t.participant_id = p.id "
            "LEFT JOIN responses r ON r.participant_id = p.id GROUP BY p.id"
        ).fetchall()
        for _, done, n_trials, n_answers in per_participant:
            assert n_trials == 15 and done == (n_answers == n_trials)
        con.close()
        make_engine(f"sqlite:///{r.out}").dispose()  # opens as a current Lookalike database


def test_backup_refuses_what_it_cannot_do_safely(sqlite_study_db, tmp_path, capsys):
    url = sqlite_study_db[0]
    backup_sqlite(url, tmp_path / "b.db")
    with pytest.raises(BackupError, match="exists; choose a new file name or pass --overwrite"):
        backup_sqlite(url, tmp_path / "b.db")
    backup_sqlite(url, tmp_path / "b.db", overwrite=True)
    with pytest.raises(BackupError, match="another file than the database itself"):
        backup_sqlite(url, url.split(":///", 1)[1], overwrite=True)
    with pytest.raises(BackupError, match="no such database file"):
        backup_sqlite(f"sqlite:///{tmp_path / 'missing.db'}", tmp_path / "c.db")
    with pytest.raises(BackupError, match="pg_dump --format=custom"):
        backup_sqlite("postgresql+psycopg://u@localhost/study", tmp_path / "d.db")
    assert main(["backup", str(tmp_path / "cli.db"), "--db", url]) == 0
    assert "integrity ok" in capsys.readouterr().out
    assert main(["backup", str(tmp_path / "cli.db"), "--db", url]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.partial"))
