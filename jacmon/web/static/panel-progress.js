/**
 * The Progress panel: paths, drilling down to a path's modules and learners,
 * and to one learner's paths. The Learners panel: every learner, sortable.
 */
import { ago, esc, num, pct, spent } from "./format.js";
import { TablePanel, barHtml, sizeBars, sortRows, tableHtml } from "./table.js";
import { sizeSpacers, visibleRange } from "./windowed.js";

const PATH_COLUMNS = [
  { title: "path", cell: (r) => r.title ?? r.path, html: (r) => pathName(r) },
  { title: "enr", cls: "num", cell: (r) => num(r.enrolled), hint: "learners enrolled" },
  { title: "7d", cls: "num", cell: (r) => num(r.active), hint: "active in the last 7 days, not finished" },
  { title: "done", cls: "num", cell: (r) => num(r.completed), hint: "learners who finished the path" },
  { title: "mean", cls: "wide", cell: (r) => pct(r.mean_percent), html: (r) => `${barHtml(r.mean_percent)} ${esc(pct(r.mean_percent))}`, hint: "mean progress of the enrolled learners" },
];

const MODULE_COLUMNS = [
  { title: "module", cell: (r) => r.title ?? r.module, html: (r) => (r.title ? `${esc(r.title)} <small>${esc(r.module)}</small>` : esc(r.module)) },
  { title: "lrn", cls: "num", cell: (r) => num(r.learners), hint: "learners who started the module" },
  { title: "done", cls: "num", cell: (r) => num(r.completed), hint: "learners who finished it" },
  { title: "mean", cls: "wide", cell: (r) => pct(r.mean_percent), html: (r) => `${barHtml(r.mean_percent)} ${esc(pct(r.mean_percent))}` },
];

function learnerPathColumns(now, first) {
  return [
    first,
    { title: "status", cell: (r) => r.status.replace("_", " ") },
    { title: "progress", cls: "wide", cell: (r) => pct(r.percent), html: (r) => `${barHtml(r.percent)} ${esc(pct(r.percent))}`, sort: (r) => r.percent },
    { title: "mods", cls: "num", cell: (r) => num(r.modules_completed), hint: "modules completed on the path" },
    { title: "xp", cls: "num", cell: (r) => num(r.xp), sort: (r) => r.xp },
    { title: "last", cls: "num", cell: (r) => ago(r.last_activity, now), sort: (r) => -(r.last_activity ?? 0), hint: "time since the last activity" },
  ];
}

/** Columns of the Learners panel; `s` cycles through them. */
export function learnerColumns(now) {
  return [
    { title: "learner", cell: (r) => r.learner },
    { title: "events", cls: "num", cell: (r) => num(r.events), sort: (r) => r.events },
    { title: "xp", cls: "num", cell: (r) => num(r.xp), sort: (r) => r.xp },
    { title: "lvl", cls: "num", cell: (r) => num(r.level), sort: (r) => r.level, hint: "level (from xp)" },
    { title: "strk", cls: "num", cell: (r) => num(r.streak_days), sort: (r) => r.streak_days, hint: "days in a row with activity" },
    { title: "time", cls: "num", cell: (r) => spent(r.time_spent_s), sort: (r) => r.time_spent_s },
    { title: "last", cls: "num", cell: (r) => ago(r.last_activity, now), sort: (r) => -(r.last_activity ?? 0), hint: "time since the last activity" },
  ];
}

/** A row's key as "kind:value", safe in an HTML attribute (a NUL would not survive parsing). */
function rowKey(kind, value) {
  return `${kind}:${encodeURIComponent(value)}`;
}

function rowKeyParts(key) {
  const colon = key.indexOf(":");
  return [key.slice(0, colon), decodeURIComponent(key.slice(colon + 1))];
}

function pathName(row) {
  return row.title ? `${esc(row.title)} <small>${esc(row.path)}</small>` : esc(row.path);
}

export class ProgressPanel extends TablePanel {
  /** @param {HTMLElement} root the panel's body @param {import("./model.js").ProgressModel} model */
  constructor(root, crumbs, model, { now }) {
    super(root);
    this.crumbs = crumbs;
    this.model = model;
    this.now = now;
    this.view = { kind: "paths" };
    crumbs.addEventListener("click", (event) => {
      const link = event.target.closest("[data-view]");
      if (!link) return;
      event.preventDefault();
      this.view = link.dataset.view === "paths" ? { kind: "paths" } : { kind: "path", path: link.dataset.path };
      this.selected = null;
      this.draw();
    });
  }

  /** Enter: drill into the selected path or learner. */
  open() {
    if (this.selected === null) return;
    const [kind, value] = rowKeyParts(this.selected);
    if (kind === "path") this.view = { kind: "path", path: value };
    else if (kind === "learner") this.view = { kind: "learner", learner: value, from: this.view };
    else return;
    this.selected = null;
    this.draw();
  }

  /** Esc: one level up; false when already at the top. */
  back() {
    if (this.view.kind === "paths") return false;
    this.view = this.view.kind === "learner" && this.view.from ? this.view.from : { kind: "paths" };
    this.selected = null;
    this.draw();
    return true;
  }

  showLearner(learner) {
    this.view = { kind: "learner", learner, from: { kind: "paths" } };
    this.selected = null;
    this.draw();
  }


  draw() {
    const now = this.now();
    const view = this.view;
    const up = document.getElementById("progress-back");
    if (up) up.hidden = view.kind === "paths";
    if (view.kind === "paths") {
      this.crumbs.innerHTML = "All paths";
      const rows = [...this.model.paths.values()].sort((a, b) => String(a.path).localeCompare(b.path));
      this.root.innerHTML = tableHtml(PATH_COLUMNS, rows, {
        key: (r) => rowKey("path", r.path),
        selected: this.selected,
        empty: this.model.loaded ? "no paths yet: nothing has been ingested" : "loading…",
      });
    } else if (view.kind === "path") {
      this.crumbs.innerHTML = `<a href="#" data-view="paths">All paths</a> › ${esc(view.path)}`;
      const learners = this.model.learnerPathsWhere("path", view.path).sort((a, b) => b.percent - a.percent || String(a.learner).localeCompare(b.learner));
      const first = { title: "learner", cell: (r) => r.learner };
      this.root.innerHTML =
        `<h3>Modules</h3>${tableHtml(MODULE_COLUMNS, this.model.modulesOf(view.path), { key: (r) => rowKey("module", r.module), selected: this.selected })}` +
        `<h3>Learners on ${esc(view.path)}</h3>${tableHtml(learnerPathColumns(now, first), learners, { key: (r) => rowKey("learner", r.learner), selected: this.selected, empty: "no learner rows (only the 1,000 most recently active learners are sent)" })}`;
    } else {
      const learner = this.model.learners.get(view.learner);
      const back = view.from?.kind === "path" ? ` › <a href="#" data-view="path" data-path="${esc(view.from.path)}">${esc(view.from.path)}</a>` : "";
      this.crumbs.innerHTML = `<a href="#" data-view="paths">All paths</a>${back} › ${esc(view.learner)}`;
      const summary = learner
        ? `<p class="facts"><span>level <b>${esc(num(learner.level))}</b></span> <span>xp <b>${esc(num(learner.xp))}</b></span> <span>streak <b>${esc(num(learner.streak_days))}d</b> (best ${esc(num(learner.longest_streak))}d)</span> <span>time <b>${esc(spent(learner.time_spent_s))}</b></span> <span>last <b>${esc(ago(learner.last_activity, now))}</b> ago</span></p>`
        : "";
      const first = { title: "path", cell: (r) => r.path };
      const link = `<p><a href="/learner?learner=${encodeURIComponent(view.learner)}" target="_blank" rel="noopener">Open ${esc(view.learner)}'s own page</a></p>`;
      this.root.innerHTML =
        summary + tableHtml(learnerPathColumns(now, first), this.model.learnerPathsWhere("learner", view.learner), { key: (r) => rowKey("lp", r.path), selected: this.selected }) + link;
    }
    sizeBars(this.root);
  }
}

/** The height of one learner row in pixels (jacmon.css `#learners-body tbody tr`). */
export const LEARNER_ROW_PX = 26;

export class LearnersPanel extends TablePanel {
  constructor(root, model, { now, onOpen, redraw = () => this.draw() }) {
    super(root);
    root.addEventListener("scroll", redraw, { passive: true });
    this.model = model;
    this.now = now;
    this.onOpen = onOpen;
    this.sortIndex = 6;
    this.filter = "";
  }

  open() {
    if (this.selected !== null) this.onOpen(this.selected);
  }

  cycleSort() {
    this.sortIndex = (this.sortIndex + 1) % learnerColumns(0).length;
    this.draw();
  }



  draw() {
    const columns = learnerColumns(this.now());
    const words = this.filter.toLowerCase().split(/\s+/).filter(Boolean);
    let rows = [...this.model.learners.values()];
    if (words.length) rows = rows.filter((r) => words.every((w) => String(r.learner).toLowerCase().includes(w)));
    rows = sortRows(rows, columns[this.sortIndex], this.descending);
    const more = this.model.truncated ? ` (the ${this.model.learners.size} most recently active of ${this.model.totalLearners})` : "";
    // Only the rows in view are drawn (windowed.js): every row may change at every draw.
    const range = visibleRange(this.root, LEARNER_ROW_PX, rows.length);
    this.root.innerHTML =
      tableHtml(columns, rows, { key: (r) => r.learner, selected: this.selected, sortIndex: this.sortIndex, descending: this.descending, range, empty: words.length ? "no learner matches the filter" : "no learners yet" }) +
      (more ? `<p class="note">${esc(more)}</p>` : "");
    sizeSpacers(this.root, LEARNER_ROW_PX);
  }
}
