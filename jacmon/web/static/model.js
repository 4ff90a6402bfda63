/**
 * The page's state: what the streams said, kept as latest values by key.
 *
 * Frames update these models as they arrive; the views read them when the
 * render loop draws (at most ~15 times a second), so a burst of frames costs
 * one draw and nothing queues behind the screen.
 */

/** Severity order for sorting, most urgent first. */
export const SEVERITY_RANK = Object.freeze({ critical: 0, warning: 1, info: 2 });

/** Progress: paths, modules, learners and learner-paths by key (the dashboard stream). */
export class ProgressModel {
  constructor() {
    this.clear();
  }

  clear() {
    this.paths = new Map();
    this.modules = new Map();
    this.learners = new Map();
    this.learnerPaths = new Map();
    this.totalLearners = 0;
    this.truncated = false;
    this.loaded = false;
  }

  /** A `snapshot` replaces everything. */
  applySnapshot(data) {
    this.clear();
    this.applyRows(data);
    this.truncated = Boolean(data.truncated);
    this.loaded = true;
  }

  /** A `progress` frame replaces the rows it holds, by key. */
  applyProgress(data) {
    this.applyRows(data);
  }

  applyRows(data) {
    for (const row of data.paths ?? []) this.paths.set(row.path, row);
    for (const row of data.modules ?? []) this.modules.set(moduleKey(row), row);
    for (const row of data.learners ?? []) this.learners.set(row.learner, row);
    for (const row of data.learner_paths ?? []) this.learnerPaths.set(`${row.learner}\u0000${row.path}`, row);
    if (Number.isFinite(data.total_learners)) this.totalLearners = data.total_learners;
  }

  /** Module rows of one path, in catalog order. */
  modulesOf(path) {
    return [...this.modules.values()]
      .filter((row) => row.path === path)
      .sort((a, b) => (a.position ?? 0) - (b.position ?? 0) || String(a.module).localeCompare(b.module));
  }

  /** Learner-path rows of one path, or of one learner. */
  learnerPathsWhere(key, value) {
    return [...this.learnerPaths.values()].filter((row) => row[key] === value);
  }
}

function moduleKey(row) {
  // Scoped streams send the learner's own module rows: key them by learner too.
  return `${row.learner ?? ""}\u0000${row.path}\u0000${row.module}`;
}

/** The activity feed: the newest events, oldest first, each seq once. */
export class ActivityModel {
  /** @param {number} limit events kept (older ones drop off the top) */
  constructor(limit = 1000) {
    this.limit = limit;
    this.events = [];
    this.lastSeq = 0;
    this.gap = false;
    this.added = 0;
  }

  applySnapshot(data) {
    this.events = [];
    this.lastSeq = 0;
    this.gap = Boolean(data.reset);
    this.applyEvents(data.events ?? []);
  }

  /** Append events in store order; a seq already held is skipped (never shown twice). */
  applyEvents(events) {
    for (const event of events) {
      if (!Number.isSafeInteger(event.seq) || event.seq <= this.lastSeq) continue;
      this.events.push(event);
      this.lastSeq = event.seq;
      this.added += 1;
    }
    if (this.events.length > this.limit) this.events.splice(0, this.events.length - this.limit);
  }
}

/** Firing alerts by id, the unread count and the critical ones not yet toasted. */
export class AlertsModel {
  constructor() {
    this.alerts = new Map();
    this.unread = new Set();
    this.loaded = false;
  }

  applySnapshot(data) {
    const before = this.alerts;
    this.alerts = new Map();
    for (const alert of data.alerts ?? []) this.alerts.set(alert.id, alert);
    // What was unread and is still firing stays unread; a first snapshot marks nothing.
    this.unread = new Set([...this.unread].filter((id) => this.alerts.has(id) && before.has(id)));
    this.loaded = true;
  }

  /**
   * Apply one change; returns the alert when it is a new critical one (worth a toast).
   * @returns {object|null}
   */
  applyChange(data) {
    const alert = data.alert;
    if (!alert || alert.id === undefined) return null;
    if (data.change === "resolved" || alert.state === "resolved") {
      this.alerts.delete(alert.id);
      this.unread.delete(alert.id);
      return null;
    }
    this.alerts.set(alert.id, alert);
    if (data.change === "fired") {
      this.unread.add(alert.id);
      if (alert.severity === "critical") return alert;
    }
    return null;
  }

  markAllRead() {
    this.unread.clear();
  }

  /** Firing alerts, most severe first, then the longest firing first. */
  sorted() {
    return [...this.alerts.values()].sort(
      (a, b) =>
        (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) ||
        (a.first_seen ?? 0) - (b.first_seen ?? 0) ||
        a.id - b.id,
    );
  }
}

/** Metrics samples (the last 15 minutes, as the server keeps them). */
export class MetricsModel {
  constructor(limit = 600) {
    this.limit = limit;
    this.samples = [];
    this.intervalS = 2;
  }

  applySnapshot(data) {
    this.samples = [...(data.samples ?? [])];
    if (Number.isFinite(data.interval_s)) this.intervalS = data.interval_s;
    this.trim();
  }

  applySample(sample) {
    this.samples.push(sample);
    this.trim();
  }

  trim() {
    if (this.samples.length > this.limit) this.samples.splice(0, this.samples.length - this.limit);
  }

  latest() {
    return this.samples.length ? this.samples[this.samples.length - 1] : null;
  }
}
