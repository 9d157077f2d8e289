"""SUPPORT_ENV_STORE=sqlite:///path/to/episodes.db: episode logs in an SQLite file,
shared by every process on the machine that opens it, kept across restarts.

WAL journal (readers never wait for the writer) with synchronous=NORMAL: a
committed step survives the process being killed (it is in the WAL file), and
only an OS crash or power cut may lose the last few. An append is one short
write transaction (`BEGIN IMMEDIATE`: check the episode, read the actions the
writer has not seen, insert at the end); writers from other processes wait for
it (busy timeout) rather than fail.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from server.stores.base import Appended, EpisodeLog, Record, SessionCapacityReached, StoreUnavailable

BUSY_TIMEOUT_MS = 5000
CHECKPOINT_EVERY_S = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS {ns}episodes (
    id TEXT PRIMARY KEY,
    reset TEXT NOT NULL,
    generation TEXT NOT NULL,
    steps INTEGER NOT NULL,
    done INTEGER NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS {ns}episodes_by_last_used ON {ns}episodes (last_used);
CREATE TABLE IF NOT EXISTS {ns}actions (
    episode_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    PRIMARY KEY (episode_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {ns}meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqliteLog(EpisodeLog):
    name = "sqlite"

    def __init__(self, path: str | Path, max_sessions: int, idle_ttl_s: float, namespace: str = "", evict_running: bool = False):
        super().__init__(max_sessions, idle_ttl_s, evict_running)
        self.path = Path(path)
        self._ns = f"{namespace}_" if namespace else ""
        self._lock = threading.Lock()  # one connection per process, used by one thread at a time
        try:
            self._writers = os.open(f"{self.path}.writers", os.O_RDWR | os.O_CREAT, 0o644)  # the writers' queue (see _write)
        except OSError as exc:
            raise StoreUnavailable(f"the episode store (SQLite at {self.path}) is unavailable: {exc}") from exc
        with self._errors():
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints run in _checkpoints, off the request path
            for statement in SCHEMA.format(ns=self._ns).split(";"):
                if statement.strip():
                    self._db.execute(statement)
        self._stopped = threading.Event()
        threading.Thread(target=self._checkpoints, name=f"sqlite checkpoints {self.path}", daemon=True).start()

    def _checkpoints(self) -> None:
        """Copy the WAL into the database file every CHECKPOINT_EVERY_S, in a thread of
        its own. SQLite's automatic checkpoint would run inside a step's commit every
        ~1,000 pages and fsync there: a request now and then waited milliseconds
        (p99 per step 7 ms against 2 ms in memory). A passive checkpoint never
        blocks a writer, and sqlite3 releases the GIL while it runs."""
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error:
            return
        with db:
            while not self._stopped.wait(CHECKPOINT_EVERY_S):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass  # the file is unavailable now; requests say so (503)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:  # locked past the busy timeout, disk full, file gone or unreadable
            raise StoreUnavailable(f"the episode store (SQLite at {self.path}) is unavailable: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so it never has to
        upgrade a read lock (which can fail with SQLITE_BUSY at once).

        Writers of all processes first queue on an exclusive lock of a file beside the
        database (flock): the kernel hands it to the next waiter the moment it is
        released. Without it a writer that finds the database locked sleeps in
        SQLite's busy handler, 1 ms at least, then 2, 5, 10 ..., with its event loop
        stopped: two workers appending at once lost most of a core to those sleeps
        (2 workers: 1.0 core used between them)."""
        with self._lock, self._errors():
            fcntl.flock(self._writers, fcntl.LOCK_EX)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            finally:
                fcntl.flock(self._writers, fcntl.LOCK_UN)

    def start(self, episode_id: str, reset: dict[str, Any], generation: str, now: float) -> None:
        with self._write() as db:
            cutoff = now - self.idle_ttl_s
            db.execute(f"DELETE FROM {self._ns}actions WHERE episode_id IN (SELECT id FROM {self._ns}episodes WHERE last_used <= ?)", (cutoff,))
            db.execute(f"DELETE FROM {self._ns}episodes WHERE last_used <= ?", (cutoff,))
            exists = db.execute(f"SELECT 1 FROM {self._ns}episodes WHERE id = ?", (episode_id,)).fetchone()
            if not exists and db.execute(f"SELECT COUNT(*) FROM {self._ns}episodes").fetchone()[0] >= self.max_sessions:
                victim = db.execute(f"SELECT id FROM {self._ns}episodes WHERE done >= ? ORDER BY last_used LIMIT 1", (0 if self.evict_running else 1,)).fetchone()
                if victim is None:
                    raise SessionCapacityReached(self.capacity_message())
                self._delete(db, victim[0])
            db.execute(f"DELETE FROM {self._ns}actions WHERE episode_id = ?", (episode_id,))
            db.execute(
                f"INSERT OR REPLACE INTO {self._ns}episodes (id, reset, generation, steps, done, last_used) VALUES (?, ?, ?, 0, 0, ?)",
                (episode_id, json.dumps(reset), generation, now),
            )

    def append(self, episode_id: str, generation: str, known: int, action: str, now: float) -> Appended:
        with self._write() as db:
            row = db.execute(f"SELECT generation, steps, done, last_used FROM {self._ns}episodes WHERE id = ?", (episode_id,)).fetchone()
            if row is None or row[3] <= now - self.idle_ttl_s:
                return Appended("gone")
            stored_generation, steps, done, _ = row
            if stored_generation != generation or known > steps:
                return Appended("reset")
            before = self._actions(db, episode_id, known) if steps > known else []
            if done:
                return Appended("done", steps, before)
            db.execute(f"INSERT INTO {self._ns}actions (episode_id, seq, action) VALUES (?, ?, ?)", (episode_id, steps, action))
            db.execute(f"UPDATE {self._ns}episodes SET steps = ?, last_used = ? WHERE id = ?", (steps + 1, now, episode_id))
        return Appended("ok", steps, before)

    def finish(self, episode_id: str, generation: str) -> None:
        with self._write() as db:
            db.execute(f"UPDATE {self._ns}episodes SET done = 1 WHERE id = ? AND generation = ?", (episode_id, generation))

    def _actions(self, db: sqlite3.Connection, episode_id: str, start: int) -> list[str]:
        rows = db.execute(f"SELECT action FROM {self._ns}actions WHERE episode_id = ? AND seq >= ? ORDER BY seq", (episode_id, start))
        return [action for (action,) in rows]

    def read(self, episode_id: str, start: int, now: float, touch: bool) -> Optional[Record]:
        with self._lock, self._errors():
            self._db.execute("BEGIN")  # one snapshot for both queries
            try:
                row = self._db.execute(f"SELECT reset, generation, steps, done, last_used FROM {self._ns}episodes WHERE id = ?", (episode_id,)).fetchone()
                if row is None or row[4] <= now - self.idle_ttl_s:
                    return None
                actions = self._actions(self._db, episode_id, start) if row[2] > start else []
            finally:
                self._db.execute("COMMIT")
        if touch:
            with self._write() as db:
                db.execute(f"UPDATE {self._ns}episodes SET last_used = ? WHERE id = ? AND last_used < ?", (now, episode_id, now))
        return Record(json.loads(row[0]), row[1], row[2], bool(row[3]), actions)

    def default_id(self) -> Optional[str]:
        with self._lock, self._errors():
            row = self._db.execute(f"SELECT value FROM {self._ns}meta WHERE key = 'default'").fetchone()
        return row[0] if row else None

    def set_default(self, episode_id: str) -> None:
        with self._write() as db:
            db.execute(f"INSERT OR REPLACE INTO {self._ns}meta (key, value) VALUES ('default', ?)", (episode_id,))

    def close(self) -> None:
        self._stopped.set()
        with self._lock:
            self._db.close()
            os.close(self._writers)

    def _delete(self, db: sqlite3.Connection, episode_id: str) -> None:
        db.execute(f"DELETE FROM {self._ns}actions WHERE episode_id = ?", (episode_id,))
        db.execute(f"DELETE FROM {self._ns}episodes WHERE id = ?", (episode_id,))


def writable_directory(path: Path) -> Optional[str]:
    """Why `path`'s directory cannot hold the database (None if it can): it is created if missing."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create its directory {directory}: {exc.strerror}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"its directory {directory} is not writable"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable"
    return None
