"""The database schema as numbered migrations, applied in order at start.

A migration is never edited once released: change the schema by appending one.
``PRAGMA user_version`` records the last one applied.
"""

from __future__ import annotations

#: Migration 6: what platforms push to the xAPI and Caliper endpoints, kept as sent
#: (the same table in PostgreSQL, :mod:`jacmon.store.postgres.schema`).
RECEIVED_TABLE = """
-- One row per pushed record (an xAPI statement, a Caliper event), written in the
-- transaction of the events it became: the raw JSON as sent, the SHA-256 of its
-- content (an id sent again with other content is a conflict), the event it became
-- or why it could not be mapped, and the token that sent it.
CREATE TABLE received (
    source   TEXT NOT NULL,
    id       TEXT NOT NULL,
    received REAL NOT NULL,
    digest   TEXT NOT NULL,
    event_id TEXT,
    reason   TEXT,
    token    TEXT,
    body     TEXT NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX received_time ON received (received);
CREATE INDEX received_unmapped ON received (received) WHERE reason IS NOT NULL;
"""

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

        -- Access tokens: only a SHA-256 of the secret is stored.
        -- role: viewer | ingest | admin; learner: scope (NULL sees everyone).
        CREATE TABLE tokens (
            id      TEXT PRIMARY KEY,
            hash    TEXT NOT NULL,
            role    TEXT NOT NULL,
            learner TEXT,
            can_ack INTEGER NOT NULL DEFAULT 0,
            name    TEXT,
            created REAL NOT NULL,
            revoked REAL
        );

        -- A producer's watermark, written in the same transaction as its batch.
        CREATE TABLE cursors (
            name    TEXT PRIMARY KEY,
            value   TEXT NOT NULL,
            updated REAL NOT NULL
        );
        """,
    ),
    (
        2,
        "alerts, alert changes, task runs, daily snapshots, velocity",
        """
        -- One row per alert; a condition that returns after resolving is a new row.
        -- state: firing | resolved; severity: info | warning | critical; times in epoch seconds.
        -- numbers is JSON (the figures behind the message); ack_* set while acknowledged.
        CREATE TABLE alerts (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            fingerprint    TEXT NOT NULL,
            rule           TEXT NOT NULL,
            severity       TEXT NOT NULL,
            state          TEXT NOT NULL,
            learner        TEXT,
            path           TEXT,
            message        TEXT NOT NULL,
            numbers        TEXT NOT NULL,
            first_seen     REAL NOT NULL,
            last_seen      REAL NOT NULL,
            resolved_at    REAL,
            ack_by         TEXT,
            ack_at         REAL,
            ack_note       TEXT,
            ack_expires_at REAL
        );
        -- At most one firing alert per fingerprint (rule + learner + path).
        CREATE UNIQUE INDEX alerts_firing ON alerts (fingerprint) WHERE state = 'firing';
        CREATE INDEX alerts_state ON alerts (state, resolved_at);
        CREATE INDEX alerts_learner ON alerts (learner);

        -- Every change of an alert, written in the same transaction as the alert;
        -- the server tails it for the alerts stream. body: JSON of the alert after the change.
        CREATE TABLE alert_changes (
            seq      INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id INTEGER NOT NULL,
            change   TEXT NOT NULL, -- fired|updated|resolved|acknowledged
            ts       REAL NOT NULL,
            learner  TEXT,
            body     TEXT NOT NULL
        );
        CREATE INDEX alert_changes_learner ON alert_changes (learner, seq);
        CREATE INDEX alert_changes_alert ON alert_changes (alert_id);

        -- One row per scheduled or manual run, and per missed or skipped fire time.
        -- outcome: running | success | error | skipped | missed | cancelled | abandoned.
        -- scheduled/started/finished: epoch seconds on the scheduler's clock;
        -- duration_s: wall seconds the run took; summary: JSON; pid: the process running it.
        CREATE TABLE task_runs (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            task       TEXT NOT NULL,
            trigger    TEXT NOT NULL,
            outcome    TEXT NOT NULL,
            scheduled  REAL,
            started    REAL,
            finished   REAL,
            duration_s REAL,
            summary    TEXT,
            error      TEXT,
            pid        INTEGER
        );
        CREATE INDEX task_runs_task ON task_runs (task, id);

        -- The performance task reads scores by time; this keeps it off the other events.
        CREATE INDEX events_scores ON events (ts, learner, score)
            WHERE type = 'assessment.attempted' AND score IS NOT NULL;
        CREATE INDEX task_runs_outcome ON task_runs (outcome);

        -- daily_analytics: one row per learner per local date (YYYY-MM-DD in the task time zone).
        CREATE TABLE daily_learner_stats (
            day          TEXT NOT NULL,
            learner      TEXT NOT NULL,
            activities   INTEGER NOT NULL,
            completions  INTEGER NOT NULL,
            assessments  INTEGER NOT NULL,
            scored       INTEGER NOT NULL,
            avg_score    REAL,
            time_spent_s REAL NOT NULL,
            PRIMARY KEY (day, learner)
        ) WITHOUT ROWID;
        CREATE TABLE daily_platform_stats (
            day             TEXT PRIMARY KEY,
            active_learners INTEGER NOT NULL,
            activities      INTEGER NOT NULL,
            completions     INTEGER NOT NULL,
            assessments     INTEGER NOT NULL,
            avg_score       REAL,
            time_spent_s    REAL NOT NULL,
            computed_at     REAL NOT NULL
        );

        -- velocity: module completions per path (last 7 days vs the 7 before) and,
        -- per learner on a path in progress, pace (percent per day) and projected finish.
        CREATE TABLE path_velocity (
            path        TEXT PRIMARY KEY,
            this_week   INTEGER NOT NULL,
            last_week   INTEGER NOT NULL,
            change_pct  REAL,
            computed_at REAL NOT NULL
        );
        CREATE TABLE learner_pace (
            learner          TEXT NOT NULL,
            path             TEXT NOT NULL,
            percent          REAL NOT NULL,
            pct_per_day      REAL NOT NULL,
            projected_finish REAL,
            computed_at      REAL NOT NULL,
            PRIMARY KEY (learner, path)
        ) WITHOUT ROWID;
        """,
    ),
    (
        3,
        "acknowledgement history",
        """
        -- Every acknowledgement an alert received, oldest first, as a JSON array of
        -- {"by", "at", "note", "expires_at"}; the ack_* columns hold the current one.
        ALTER TABLE alerts ADD COLUMN ack_history TEXT;
        UPDATE alerts SET ack_history = json_array(json_object(
            'by', ack_by, 'at', ack_at, 'note', ack_note, 'expires_at', ack_expires_at))
            WHERE ack_at IS NOT NULL;
        """,
    ),
    (
        4,
        "notifications and silences",
        """
        -- A silence stops notifications of the alerts it matches (NULL matcher: any)
        -- from starts_at until ends_at (epoch seconds), or until expired by hand.
        CREATE TABLE silences (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            rule       TEXT,
            learner    TEXT,
            path       TEXT,
            starts_at  REAL NOT NULL,
            ends_at    REAL NOT NULL,
            created_by TEXT NOT NULL,
            note       TEXT,
            expired_by TEXT,
            expired_at REAL
        );
        CREATE INDEX silences_active ON silences (ends_at) WHERE expired_at IS NULL;
        -- The active silence an alert is under (NULL: none); kept current by the
        -- silence commands and the notifier's expiry pass, so every client sees it.
        ALTER TABLE alerts ADD COLUMN silence_id INTEGER;

        -- The outbox: one row per (receiver, alert change) a route matched.
        -- state: pending | sending | sent | failed | silenced. batch: the idempotency key
        -- of the message it went out in (kept across retries and restarts).
        -- Times in epoch seconds. body: the alert for a repeat (change_seq 0); a routed
        -- change's alert is read from alert_changes by change_seq, not copied.
        CREATE TABLE notifications (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            receiver        TEXT NOT NULL,
            route           TEXT NOT NULL,
            group_key       TEXT NOT NULL,
            alert_id        INTEGER NOT NULL,
            change_seq      INTEGER NOT NULL,
            change          TEXT NOT NULL,
            body            TEXT,
            created_at      REAL NOT NULL,
            state           TEXT NOT NULL,
            batch           TEXT,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            last_status     TEXT,
            last_detail     TEXT,
            sent_at         REAL
        );
        CREATE INDEX notifications_open ON notifications (receiver, group_key)
            WHERE state IN ('pending', 'sending');
        CREATE INDEX notifications_state ON notifications (state, id);
        CREATE INDEX notifications_batch ON notifications (batch) WHERE batch IS NOT NULL;

        -- One row per (receiver, alert group): labels JSON, when it was last sent.
        CREATE TABLE notify_groups (
            receiver     TEXT NOT NULL,
            group_key    TEXT NOT NULL,
            route        TEXT NOT NULL,
            labels       TEXT NOT NULL,
            last_sent_at REAL,
            PRIMARY KEY (receiver, group_key)
        ) WITHOUT ROWID;
        """,
    ),
    (
        5,
        "progress as a projection of the event log",
        """
        -- Progress became a projection of the event log (meta 'progress_seq': the
        -- progress tables are the fold of the events up to it). Before, ingest kept
        -- them current in its own transaction: they reflect every stored event.
        INSERT OR REPLACE INTO meta (key, value) SELECT 'progress_seq', CAST(max(
            coalesce((SELECT max(seq) FROM events), 0),
            coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'last_seq'), 0))
            AS TEXT);

        -- The UTC days (days since the epoch) each learner, and each learner on each
        -- path, was active: streaks are runs in these sets, whatever order events
        -- arrive in. Filled from the events still stored (retention may have removed
        -- older days: those streaks restart from what is left when next touched).
        CREATE TABLE learner_days (
            learner TEXT NOT NULL,
            day     INTEGER NOT NULL,
            PRIMARY KEY (learner, day)
        ) WITHOUT ROWID;
        CREATE TABLE path_days (
            learner TEXT NOT NULL,
            path    TEXT NOT NULL,
            day     INTEGER NOT NULL,
            PRIMARY KEY (learner, path, day)
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO learner_days (learner, day)
            SELECT DISTINCT learner, CAST(floor(ts / 86400.0) AS INTEGER) FROM events;
        INSERT OR IGNORE INTO path_days (learner, path, day)
            SELECT DISTINCT learner, path, CAST(floor(ts / 86400.0) AS INTEGER) FROM events
            WHERE path IS NOT NULL;

        -- The latest path.unenrolled and the latest other event on the path (epoch
        -- seconds): a path is unenrolled while the first is at or after the second.
        ALTER TABLE path_progress ADD COLUMN unenrolled_at REAL;
        ALTER TABLE path_progress ADD COLUMN last_engaged REAL;
        UPDATE path_progress SET
            unenrolled_at = (SELECT max(e.ts) FROM events AS e
                             WHERE e.learner = path_progress.learner
                               AND e.path = path_progress.path AND e.type = 'path.unenrolled'),
            last_engaged = (SELECT max(e.ts) FROM events AS e
                            WHERE e.learner = path_progress.learner
                              AND e.path = path_progress.path AND e.type != 'path.unenrolled');
        """,
    ),
    (
        6,
        "records platforms push, kept as sent",
        RECEIVED_TABLE,
    ),
]


def latest_version() -> int:
    """The schema version this code expects."""
    return MIGRATIONS[-1][0]
