"""The store interface: every statement jacmon runs against its database, behind one seam.

:class:`Store` is what the server, the scheduler, the tasks, the notifier and the
commands use; nothing outside ``jacmon.store`` writes SQL. SQLite
(:mod:`jacmon.store.sqlite`) is one implementation; another backend implements
the same methods with the same meaning, and the store tests run against each.

Conventions every implementation keeps:

* times are epoch seconds (float, UTC); ``now`` parameters come from the caller's
  clock so tests and the scheduler's catch-up runs control them;
* a method that writes runs in its own transaction and returns after the commit,
  except the methods of :class:`Transaction`, which run in the caller's;
* rows come back as plain dicts/tuples/dataclasses (never driver rows), so callers
  do not depend on the backend.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jacmon.errors import StoreError
from jacmon.store.catalog import Catalog, CatalogPath
from jacmon.store.types import (
    ClaimedBatch,
    DueGroup,
    IngestOutcome,
    ProgressView,
    Projection,
    ReceivedRecord,
)

if TYPE_CHECKING:
    from jacmon.analytics.alert_rules import PlannedChange
    from jacmon.events import Event
    from jacmon.notify.config import Route
    from jacmon.notify.model import Delivery, Notification


#: The most events one projector span folds: bounds how long a span holds the writer
#: (about 0.1-0.3 s on SQLite here, docs/benchmarks.md, "Spans"), so ingest is never
#: starved of it while a long backlog is folded.
PROJECTION_SPAN = 50_000


@dataclass(frozen=True, slots=True)
class Fence:
    """What a leader's write carries to prove it still leads: the lease's name and the
    token it was granted. A newer holder's token is larger; a store that serves several
    nodes refuses a write whose token is not the newest (:class:`LeaseLost`)."""

    name: str
    token: int


class LeaseLost(StoreError):
    """This node no longer holds the lease it wrote under: another node leads now."""


class Lease(abc.ABC):
    """Leadership of one job (the scheduler and the notifier) among the nodes of a store.

    At most one node holds it; when the holder dies its lease ends (the store sees its
    connection go) and another node's :meth:`acquire` succeeds.
    """

    def __init__(self, name: str):
        self.name = name
        #: The fence of the current holding, None while not held.
        self.fence: Fence | None = None

    @abc.abstractmethod
    async def acquire(self) -> bool:
        """Try to take the lease now, without waiting; True if this node holds it."""

    @abc.abstractmethod
    async def confirm(self) -> bool:
        """True if this node still holds the lease (False, and ``fence`` None, once lost)."""

    @abc.abstractmethod
    async def release(self) -> None:
        """Give the lease up (at shutdown)."""


#: The DSN schemes of a PostgreSQL store (libpq's two spellings).
POSTGRES_SCHEMES = ("postgresql", "postgres")


def postgres_dsn(location: Any) -> str | None:
    """``location`` as a PostgreSQL DSN if it names one, else None (a SQLite path).

    A DSN that went through ``pathlib.Path`` (a ``--db`` option typed as a path) has
    lost one slash of ``//``: ``postgresql:/user@host/db`` is put back as
    ``postgresql://user@host/db``.
    """
    text = str(location)
    scheme, colon, rest = text.partition(":")
    if not colon or scheme.lower() not in POSTGRES_SCHEMES:
        return None
    if rest.startswith("/") and not rest.startswith("//"):
        rest = "/" + rest
    return f"{scheme}:{rest}"


class Transaction(abc.ABC):
    """One write transaction of a monitoring task (or, in a dry run, a read-only view).

    Reads here see the transaction's own writes and everything committed before it
    began, so a task's alert plan is made against the alerts as they are when it writes.
    In a read-only transaction (``Store.transaction(write=False)``) the write methods
    raise; methods with ``dry_run`` count what they would change instead.
    """

    # Alerts

    @abc.abstractmethod
    async def open_alerts_of_rules(self, rules: frozenset[str]) -> list[dict[str, Any]]:
        """The firing alerts of ``rules`` (every learner)."""

    @abc.abstractmethod
    async def firing_rule_per_learner(self, rules: Sequence[str]) -> dict[str, str]:
        """Learner -> the first (by name) of ``rules`` with a firing alert for them."""

    @abc.abstractmethod
    async def apply_alert_changes(
        self, changes: list[PlannedChange], *, now: float
    ) -> list[dict[str, Any]]:
        """Write a task's planned alert changes; the logged changes (``{"alert": ...}``)."""

    @abc.abstractmethod
    async def expire_acknowledgements(
        self, *, now: float, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Clear acknowledgements whose expiry passed; the changes made (or that would be)."""

    @abc.abstractmethod
    async def retire_resolved(self, *, before: float, dry_run: bool = False) -> int:
        """Delete alerts resolved before ``before``; how many (or would be)."""

    # Retention

    @abc.abstractmethod
    async def prune_runs(self, *, before: float, dry_run: bool = False) -> int:
        """Delete task runs that began before ``before``; how many (or would be)."""

    @abc.abstractmethod
    async def delete_events_before(self, cutoff: float, *, dry_run: bool = False) -> int:
        """Delete events with ``ts < cutoff``; how many (or would be)."""

    # Derived tables the tasks own

    @abc.abstractmethod
    async def replace_velocity(
        self,
        velocity: Iterable[tuple[str, int, int, float | None, float]],
        pace: Iterable[tuple[str, str, float, float | None, float | None, float]],
    ) -> None:
        """Replace ``path_velocity`` (path, this_week, last_week, change_pct, computed_at)
        and ``learner_pace`` (learner, path, percent, pct_per_day, projected_finish,
        computed_at) with these rows."""

    @abc.abstractmethod
    async def replace_daily_stats(
        self, day: str, learners: Iterable[tuple[Any, ...]], platform: tuple[Any, ...]
    ) -> None:
        """Replace one local day's snapshot: ``learners`` are (learner, activities,
        completions, assessments, scored, avg_score, time_spent_s); ``platform`` is
        (active_learners, activities, completions, assessments, avg_score, time_spent_s,
        computed_at)."""


class Store(abc.ABC):
    """The event store of one jacmon server (or one command).

    Attributes every implementation keeps current:

    * ``last_seq``: sequence number of the newest stored event (0 if none ever);
    * ``server_id``: stable id of this database, sent in ``hello``;
    * ``catalog``: the in-memory catalog (module counts per path);
    * ``write_problem``: why writes fail right now, as a sentence, or None.
    """

    last_seq: int
    server_id: str
    catalog: Catalog
    write_problem: str | None

    @classmethod
    async def open(cls, location: Any, *, readonly: bool = False) -> Store:
        """Open the store at ``location`` (a SQLite file path, or a backend's URL), created
        and migrated unless ``readonly``."""
        from jacmon.store.backends import open_store

        return await open_store(location, readonly=readonly)

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the data lives, for messages (a file path; never a password)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # -- health and upkeep -----------------------------------------------------

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot be read right now (for /healthz)."""

    @abc.abstractmethod
    async def begin_serving(self) -> None:
        """Called once a server owns the store, before it serves (SQLite: the server
        takes over WAL checkpoints)."""

    @abc.abstractmethod
    async def upkeep(self) -> None:
        """Periodic housekeeping a server runs off the ingest path (SQLite: a WAL
        checkpoint)."""

    # -- ingest ----------------------------------------------------------------

    @abc.abstractmethod
    async def ingest(
        self,
        events: Sequence[Event],
        *,
        cursor: tuple[str, str] | None = None,
        records: Sequence[ReceivedRecord] = (),
    ) -> IngestOutcome:
        """Store one batch in one transaction (with ``cursor`` = (name, value) if given):
        dedupe, sequence numbers, the events, the cursor and the pushed ``records`` the
        events came from (a record already kept stays); returns once committed, and
        that commit is the acknowledgement. Progress is not touched: :meth:`project`
        folds the new events in later. Raises
        :class:`~jacmon.store.types.StorageUnavailable` (nothing stored) when the
        storage, not the batch, fails."""

    # -- the progress projection -------------------------------------------------
    #
    # The progress tables (module_progress, path_progress, learners) and the
    # discovered catalog are a projection of the event log: exactly the fold of the
    # events up to the watermark ``progress_seq``, which moves in the same transaction
    # as the rows it changed. The fold does not depend on how the log is cut into
    # spans (tests/store/test_projection.py holds it to the reference).

    @abc.abstractmethod
    async def project(self, *, max_events: int = PROJECTION_SPAN) -> Projection | None:
        """Fold the committed events after the watermark, at most ``max_events`` of them,
        into progress, and move the watermark, in one transaction; the span and the rows
        it changed, or None when there was nothing to fold. Safe to call from several
        processes at once (each span is folded once)."""

    @abc.abstractmethod
    async def progress_seq(self) -> int:
        """The projection watermark: progress is the fold of the events up to this seq."""

    async def catch_up(
        self, *, through_seq: int | None = None, max_events: int = PROJECTION_SPAN
    ) -> list[Projection]:
        """Project in spans of at most ``max_events`` until the watermark reaches
        ``through_seq`` (None: the newest committed event); the spans folded. For the
        scheduler (tasks read progress as of the events before their fire time), commands
        and tests; the server's projector does this in the background."""
        spans: list[Projection] = []
        while through_seq is None or not spans or spans[-1].last_seq < through_seq:
            span = await self.project(max_events=max_events)
            if span is None:
                break
            spans.append(span)
        return spans

    @abc.abstractmethod
    async def progress_view(
        self, paths: Sequence[str], module_keys: Sequence[tuple[str, str]], *, now: float
    ) -> ProgressView:
        """Summary rows of ``paths`` and ``module_keys`` and the learner count, read in one
        snapshot together with the watermark they reflect."""

    # -- pushed records (the xAPI and Caliper endpoints) ------------------------

    @abc.abstractmethod
    async def received_log(
        self, *, limit: int = 50, source: str | None = None, unmapped_only: bool = True
    ) -> list[dict[str, Any]]:
        """The latest kept records, newest first: source, id, received (epoch seconds),
        event_id, reason, token, body; only those that could not be mapped unless
        ``unmapped_only`` is False."""

    @abc.abstractmethod
    async def received_totals(self) -> dict[str, dict[str, int]]:
        """Source -> {"mapped": n, "unmapped": n} over the records kept."""

    @abc.abstractmethod
    async def get_cursor(self, name: str) -> str | None:
        """The cursor a producer stored with its last committed batch."""

    # -- catalog ---------------------------------------------------------------

    @abc.abstractmethod
    async def load_catalog(self, paths: list[CatalogPath]) -> None:
        """Make ``paths`` authoritative and re-derive their learners' percents."""

    @abc.abstractmethod
    async def refresh_catalog(self) -> bool:
        """Reload the catalog if another process loaded one since; True if it did."""

    @abc.abstractmethod
    async def modules_left_out(self, paths: list[CatalogPath]) -> dict[str, list[str]]:
        """Per path of ``paths``: modules learners have progress on that it does not list."""

    @abc.abstractmethod
    async def catalog_rows(self) -> list[dict[str, Any]]:
        """Every catalog module with its path: path, path_title, source, position, module,
        title; by path and position."""

    # -- events and progress ---------------------------------------------------

    @abc.abstractmethod
    async def recent_event_rows(
        self, limit: int, *, learner: str | None = None
    ) -> list[tuple[int, str]]:
        """(seq, stored JSON body) of the newest ``limit`` events, oldest first."""

    @abc.abstractmethod
    async def event_rows_since(
        self, seq: int, *, learner: str | None = None, limit: int | None = None
    ) -> list[tuple[int, str]]:
        """(seq, body) of the events after ``seq``, in order."""

    @abc.abstractmethod
    async def committed_seq(self) -> int:
        """The newest committed event's seq, whoever wrote it (several nodes may write
        one store; ``last_seq`` is what this process has seen)."""

    @abc.abstractmethod
    async def progress_rows_since(self, after_seq: int) -> Projection | None:
        """Read in one snapshot: the watermark W and every progress row (learner, path and
        module rows) of the learners with events ``after_seq+1..W``, as
        ``Projection(after_seq + 1, W, rows)``; None if W <= ``after_seq``. What a node
        that missed projection spans sends its dashboards instead of their deltas."""

    @abc.abstractmethod
    async def oldest_seq(self) -> int:
        """The oldest stored event's seq (retention may have removed earlier ones)."""

    @abc.abstractmethod
    async def progress_snapshot(
        self, *, learner: str | None = None, now: float | None = None, learner_limit: int = 1000
    ) -> dict[str, Any]:
        """The dashboard's snapshot body (paths, modules, learners, learner_paths, ...),
        read in one snapshot, with ``progress_seq``: the watermark it reflects."""

    @abc.abstractmethod
    async def path_summaries(self, paths: Sequence[str], *, now: float) -> list[dict[str, Any]]:
        """Summary rows of ``paths`` (enrolled, active, completed, mean percent)."""

    @abc.abstractmethod
    async def module_summaries(self, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Summary rows of the (path, module) ``keys``."""

    @abc.abstractmethod
    async def learner_count(self) -> int:
        """How many learners the store has seen."""

    @abc.abstractmethod
    async def last_seen(
        self, *, since: float | None = None, learner: str | None = None
    ) -> dict[str, float]:
        """Learner -> last activity: of the learners active since ``since``, or of
        ``learner`` however long ago."""

    @abc.abstractmethod
    def recent_events(
        self, *, since: float, learner: str | None = None, through_seq: int | None = None
    ) -> AsyncIterator[tuple[float, str, float | None, str]]:
        """(ts, learner, score, type) of the events with ``ts >= since`` (only
        ``learner``'s and up to ``through_seq``, if given), streamed: an hour of a busy
        platform's events must not be held in memory at once."""

    # -- alerts ----------------------------------------------------------------

    @abc.abstractmethod
    async def get_alert(self, alert_id: int) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def open_alerts(self, *, learner: str | None = None) -> list[dict[str, Any]]:
        """The firing alerts (of ``learner`` if given)."""

    @abc.abstractmethod
    async def list_alerts(
        self, *, state: str = "firing", learner: str | None = None
    ) -> list[dict[str, Any]]:
        """Alerts in ``state`` ("firing", "resolved" or "all")."""

    @abc.abstractmethod
    async def alert_changes_since(
        self, seq: int, *, learner: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The alert change log after ``seq``, in order."""

    @abc.abstractmethod
    async def last_alert_change_seq(self) -> int: ...

    @abc.abstractmethod
    async def alert_totals(self) -> tuple[int, dict[str, int]]:
        """(alerts ever fired, firing alerts per rule)."""

    @abc.abstractmethod
    async def acknowledge_alert(
        self,
        alert_id: int,
        *,
        by: str,
        note: str | None = None,
        expires_at: float | None = None,
        now: float | None = None,
        learner: str | None = None,
    ) -> dict[str, Any]:
        """Acknowledge a firing alert (within ``learner``'s scope if given); the change."""

    @abc.abstractmethod
    async def unacknowledge_alert(
        self,
        alert_id: int,
        *,
        by: str,
        note: str | None = None,
        now: float | None = None,
        learner: str | None = None,
    ) -> dict[str, Any]:
        """Take an acknowledgement back; the change."""

    # -- silences --------------------------------------------------------------

    @abc.abstractmethod
    async def add_silence(
        self,
        *,
        by: str,
        rule: str | None = None,
        learner: str | None = None,
        path: str | None = None,
        duration_s: float,
        note: str | None = None,
        now: float | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Add a silence; (the silence, the alert changes it made)."""

    @abc.abstractmethod
    async def expire_silence(
        self, silence_id: int, *, by: str, now: float | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """End a silence now; (the silence, the alert changes it made)."""

    @abc.abstractmethod
    async def lapse_silences(self, *, now: float, since: float = 0.0) -> list[dict[str, Any]]:
        """Unsilence the alerts of silences that ended since ``since``; the changes."""

    @abc.abstractmethod
    async def list_silences(self, *, include_expired: bool = False) -> list[dict[str, Any]]: ...

    # -- notifications ---------------------------------------------------------

    @abc.abstractmethod
    async def route_new_changes(self, routes: Iterable[Route], *, now: float, limit: int) -> int:
        """Route alert changes past the router's watermark to notification rows; how
        many changes were read (``limit=0`` only moves the watermark to the newest)."""

    @abc.abstractmethod
    async def plan_repeats(self, routes: Mapping[str, Route], *, now: float) -> int:
        """Queue repeat notifications for alerts still firing; how many."""

    @abc.abstractmethod
    async def due_groups(
        self, receiver: str, routes: Mapping[str, Route], *, now: float
    ) -> tuple[list[DueGroup], float | None]:
        """Groups of ``receiver`` with something to send now; when the next is due."""

    @abc.abstractmethod
    async def claim_batch(self, group: DueGroup) -> ClaimedBatch | None:
        """Mark a group's due rows as being sent; the batch, or None if nothing is due."""

    @abc.abstractmethod
    async def finish_batch(
        self,
        notification: Notification,
        delivery: Delivery,
        *,
        now: float,
        max_age_s: float,
        backoff_base_s: float,
        backoff_cap_s: float,
    ) -> str:
        """Record a send attempt; the rows' new state (sent, sending, failed)."""

    @abc.abstractmethod
    async def notification_log(
        self, *, receiver: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def notification_counts(self) -> dict[str, int]:
        """Open (pending or sending) notifications per receiver."""

    # -- task runs -------------------------------------------------------------

    @abc.abstractmethod
    async def begin_run(
        self,
        task: str,
        *,
        trigger: str,
        scheduled: float | None,
        started: float,
        live_run_ids: set[int],
    ) -> tuple[int, bool]:
        """Record a run as started; (run id, True) or (id of the run in the way, False)."""

    @abc.abstractmethod
    async def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        finished: float,
        duration_s: float,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None: ...

    @abc.abstractmethod
    async def record_run(
        self,
        task: str,
        *,
        outcome: str,
        trigger: str,
        scheduled: float | None,
        at: float,
        summary: dict[str, Any] | None = None,
    ) -> int:
        """Record a run that did not run (skipped, missed); its id."""

    @abc.abstractmethod
    async def abandon_stale_runs(self, *, now: float, live_run_ids: set[int]) -> list[int]:
        """Mark runs left 'running' by a process that is gone as abandoned; their ids."""

    @abc.abstractmethod
    async def last_scheduled(self) -> dict[str, float]:
        """Task -> the newest scheduled fire time handled (run, skipped or missed)."""

    @abc.abstractmethod
    async def last_runs(self) -> dict[str, dict[str, Any]]:
        """Task -> its newest run."""

    @abc.abstractmethod
    async def recent_runs(
        self, *, task: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def run_totals(self) -> dict[str, dict[str, int]]:
        """Task -> outcome -> how many runs."""

    # -- tokens ----------------------------------------------------------------

    @abc.abstractmethod
    async def insert_token(self, record: dict[str, Any], secret_hash: str) -> None:
        """Store a new token's record (id, role, learner, can_ack, name, created)."""

    @abc.abstractmethod
    async def list_tokens(self) -> list[dict[str, Any]]:
        """Every token's record (never the hash), newest first."""

    @abc.abstractmethod
    async def revoke_token(self, token_id: str, *, now: float) -> bool:
        """Revoke an active token; False if there is no active token with that id."""

    @abc.abstractmethod
    async def active_token_count(self) -> int: ...

    @abc.abstractmethod
    async def token_for_auth(self, token_id: str) -> dict[str, Any] | None:
        """hash, role, learner, can_ack, revoked of one token, or None."""

    @abc.abstractmethod
    async def revoked_among(self, token_ids: Sequence[str]) -> set[str]:
        """Which of ``token_ids`` are revoked."""

    # -- what the monitoring tasks read ------------------------------------------

    @abc.abstractmethod
    def transaction(
        self, *, write: bool = True, fence: Fence | None = None
    ) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """A task's write transaction (``write=False``: a read-only view for dry runs).

        With ``fence``, the transaction commits only while that fence is the lease's
        newest (a paused old leader cannot write after losing the lease): LeaseLost."""

    @abc.abstractmethod
    def lease(self, name: str) -> Lease:
        """The lease ``name`` among the nodes serving this store."""

    @abc.abstractmethod
    async def path_velocity(self) -> dict[str, dict[str, Any]]:
        """The velocity task's last result: path -> this_week, last_week, change_pct (for
        the metrics samples of nodes that did not run it)."""

    @abc.abstractmethod
    async def catalog_path_ids(self) -> list[str]:
        """Every catalog path, sorted."""

    @abc.abstractmethod
    async def path_completions(
        self, *, start: float, mid: float, now: float
    ) -> dict[str, tuple[int, int]]:
        """Path -> (module completions in (mid, now], in (start, mid])."""

    @abc.abstractmethod
    async def in_progress_paths(self) -> list[tuple[str, str, float, float, float]]:
        """(learner, path, percent, started, last activity) of every path in progress."""

    @abc.abstractmethod
    async def activity_counts(
        self, *, recent: float, prior: float, day_starts: Sequence[float], start: float, now: float
    ) -> dict[str, tuple[int, int, int]]:
        """Learner -> (events after ``recent``, events in (prior, recent], distinct local
        days active since ``day_starts[0]``) over events in [start, now]."""

    @abc.abstractmethod
    async def monitored_learners(self) -> list[tuple[str, float, float, str | None]]:
        """(learner, first activity, last activity, unfinished path last active on) of
        learners enrolled on a path they have not finished."""

    @abc.abstractmethod
    async def score_windows(
        self, *, start: float, mid: float, now: float
    ) -> list[tuple[str, int, float | None, int, float | None]]:
        """Per learner: (learner, scores in (mid, now], their mean, scores in (start, mid],
        their mean)."""

    @abc.abstractmethod
    async def latest_scores(
        self, *, since: float, now: float, keep: int
    ) -> list[tuple[str, str | None, float]]:
        """(learner, path, score) of each learner and path's newest ``keep`` scores in
        (since, now], newest first per learner and path."""

    @abc.abstractmethod
    async def daily_snapshot_days(self, days: Sequence[str]) -> set[str]:
        """Which of the ISO ``days`` have a daily platform snapshot."""

    @abc.abstractmethod
    async def learner_day_stats(self, start: float, end: float) -> list[tuple[Any, ...]]:
        """Per learner active in [start, end): (learner, activities, completions,
        assessments, scored, avg score, time spent s)."""
