"""The database schema as numbered migrations, applied in order at start.

A migration is never edited once released: change the schema by appending one.
``PRAGMA user_version`` records the last one applied.
"""

from __future__ import annotations

#: (version, description, SQL script). Versions are consecutive from 1.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "events, catalog, progress, cursors",
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        -- seq is the global, gap-free sequence number assigned at ingest.
        -- ts and received are seconds since the epoch (UTC); score is 0-100.
        CREATE TABLE events (
            seq        INTEGER PRIMARY KEY,
            id         TEXT NOT NULL UNIQUE,
            type       TEXT NOT NULL,
            ts         REAL NOT NULL,
            received   REAL NOT NULL,
            learner    TEXT NOT NULL,
            path       TEXT,
            module     TEXT,
            item       TEXT,
            score      REAL,
            success    INTEGER,
            progress   REAL,
            duration_s REAL,
            attempt    INTEGER,
            session    TEXT,
            body       TEXT NOT NULL
        );
        CREATE INDEX events_learner_ts ON events (learner, ts);
        CREATE INDEX events_ts ON events (ts);

        -- source: 'file' (jacmon catalog load) or 'seen' (discovered from events).
        CREATE TABLE catalog_paths (
            path   TEXT PRIMARY KEY,
            title  TEXT,
            source TEXT NOT NULL
        );
        CREATE TABLE catalog_modules (
            path     TEXT NOT NULL,
            module   TEXT NOT NULL,
            position INTEGER NOT NULL,
            title    TEXT,
            source   TEXT NOT NULL,
            PRIMARY KEY (path, module)
        ) WITHOUT ROWID;

        -- status: in_progress | completed; percent 0-100; times in epoch seconds.
        CREATE TABLE module_progress (
            learner        TEXT NOT NULL,
            path           TEXT NOT NULL,
            module         TEXT NOT NULL,
            status         TEXT NOT NULL,
            percent        REAL NOT NULL,
            time_spent_s   REAL NOT NULL,
            first_activity REAL NOT NULL,
            last_activity  REAL NOT NULL,
            completed_at   REAL,
            PRIMARY KEY (learner, path, module)
        ) WITHOUT ROWID;
        CREATE INDEX module_progress_path ON module_progress (path, module);

        -- status: enrolled | in_progress | completed | unenrolled.
        -- active_day is a day number (days since the epoch, UTC); streak counts days in a row.
        CREATE TABLE path_progress (
            learner           TEXT NOT NULL,
            path              TEXT NOT NULL,
            status            TEXT NOT NULL,
            percent           REAL NOT NULL,
            modules_completed INTEGER NOT NULL,
            time_spent_s      REAL NOT NULL,
            xp                INTEGER NOT NULL,
            level             INTEGER NOT NULL,
            streak_days       INTEGER NOT NULL,
            active_day        INTEGER NOT NULL,
            enrolled_at       REAL,
            first_activity    REAL NOT NULL,
            last_activity     REAL NOT NULL,
            completed_at      REAL,
            PRIMARY KEY (learner, path)
        ) WITHOUT ROWID;
        CREATE INDEX path_progress_path ON path_progress (path, status);

        CREATE TABLE learners (
            learner        TEXT PRIMARY KEY,
            events         INTEGER NOT NULL,
            time_spent_s   REAL NOT NULL,
            xp             INTEGER NOT NULL,
            level          INTEGER NOT NULL,
            streak_days    INTEGER NOT NULL,
            longest_streak INTEGER NOT NULL,
            active_day     INTEGER NOT NULL,
            first_activity REAL NOT NULL,
            last_activity  REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX learners_last_activity ON learners (last_activity);

        -- A producer's watermark, written in the same transaction as its batch.
        CREATE TABLE cursors (
            name    TEXT PRIMARY KEY,
            value   TEXT NOT NULL,
            updated REAL NOT NULL
        );
        """,
    ),
]


def latest_version() -> int:
    """The schema version this code expects."""
    return MIGRATIONS[-1][0]
