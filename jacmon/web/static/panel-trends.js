/**
 * The Trends panel: the metrics stream as time charts (uPlot, vendored in
 * static/ with its licence: a 50 KB canvas chart that redraws thousands of
 * points in a millisecond, so live updates stay cheap).
 *
 * Each chart shows its newest value above it. Samples come every 2 s and the
 * last 15 minutes are kept, so a chart holds at most ~450 points per series.
 */
import { esc, num } from "./format.js";

/** The charts, in the terminal dashboard's order: key, title, unit, how to read a sample. */
const CHARTS = [
  { key: "events", title: "Events / min", unit: "by event time", read: (s) => s.events_per_min },
  { key: "arrival", title: "Arrival rate", unit: "events/s received", read: (s) => s.ingest_rate },
  { key: "active", title: "Active learners", unit: "last 5 min", read: (s) => s.active_learners_5m },
  { key: "score", title: "Average score", unit: "0-100, last hour", read: (s) => s.avg_score },
  { key: "completions", title: "Completions", unit: "per hour", read: (s) => s.completions_per_hour },
];

const COLORS = ["#2f7de1", "#d9822b", "#2e9e6a", "#b04fc4", "#c9413b", "#6b7b8c"];

/** At most this many paths get a velocity line (the busiest this week). */
const VELOCITY_PATHS = 6;

export class TrendsPanel {
  /** @param {HTMLElement} root @param {import("./model.js").MetricsModel} model */
  constructor(root, model, { scoped = false } = {}) {
    this.root = root;
    this.model = model;
    this.charts = new Map();
    this.velocityPaths = [];
    const charts = scoped ? CHARTS.filter((c) => !["arrival"].includes(c.key)) : CHARTS;
    this.specs = scoped ? charts : [...charts, { key: "velocity", title: "Velocity", unit: "module completions this week, by path" }];
    root.innerHTML = this.specs
      .map((c) => `<figure class="chart" data-chart="${c.key}"><figcaption><span>${esc(c.title)}</span> <b class="now">-</b> <small>${esc(c.unit)}</small></figcaption><div class="plot"></div></figure>`)
      .join("");
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(root);
  }

  plotSize(figure) {
    const width = Math.max(160, Math.floor(figure.clientWidth) - 4);
    return { width, height: 120 };
  }

  resize() {
    for (const [key, chart] of this.charts) {
      const figure = this.root.querySelector(`[data-chart="${key}"]`);
      if (figure && figure.clientWidth) chart.setSize(this.plotSize(figure));
    }
  }

  make(key, series) {
    const figure = this.root.querySelector(`[data-chart="${key}"]`);
    if (!figure || !globalThis.uPlot || !figure.clientWidth) return null;
    const old = this.charts.get(key);
    if (old) old.destroy();
    const options = {
      ...this.plotSize(figure),
      legend: { show: series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      // At least the last 15 minutes: a few samples would otherwise span seconds (or,
      // for one, uPlot's default years) and the axis would read ":50.500".
      scales: { x: { time: true, range: (_u, min, max) => (max - min < 900 ? [max - 900, max] : [min, max]) } },
      axes: [{ stroke: "#8a94a3", grid: { stroke: "#8a94a322" } }, { stroke: "#8a94a3", size: 44, grid: { stroke: "#8a94a322" } }],
      series: [{}, ...series.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false }, spanGaps: true }))],
    };
    const chart = new globalThis.uPlot(options, [[], ...series.map(() => [])], figure.querySelector(".plot"));
    this.charts.set(key, chart);
    return chart;
  }

  draw() {
    const samples = this.model.samples;
    const xs = samples.map((s) => s.ts);
    for (const spec of this.specs) {
      const figure = this.root.querySelector(`[data-chart="${spec.key}"]`);
      if (!figure || !figure.clientWidth) continue; // Hidden (one-panel layout): draw when shown.
      if (spec.key === "velocity") {
        this.drawVelocity(figure, xs, samples);
        continue;
      }
      const ys = samples.map((s) => (typeof spec.read(s) === "number" ? spec.read(s) : null));
      const chart = this.charts.get(spec.key) ?? this.make(spec.key, [spec.title]);
      if (!chart) continue;
      chart.setData([xs, ys]);
      figure.querySelector(".now").textContent = num(ys.length ? ys[ys.length - 1] : null);
    }
  }

  drawVelocity(figure, xs, samples) {
    const latest = samples.length ? (samples[samples.length - 1].velocity ?? {}) : {};
    const paths = Object.keys(latest)
      .sort((a, b) => (latest[b].this_week ?? 0) - (latest[a].this_week ?? 0) || a.localeCompare(b))
      .slice(0, VELOCITY_PATHS);
    if (paths.join("\u0000") !== this.velocityPaths.join("\u0000") || !this.charts.get("velocity")) {
      this.velocityPaths = paths;
      if (!this.make("velocity", paths.length ? paths : ["(no velocity run yet)"])) return;
    }
    const series = (paths.length ? paths : [null]).map((path) =>
      samples.map((s) => (path && s.velocity && s.velocity[path] ? s.velocity[path].this_week : null)),
    );
    this.charts.get("velocity").setData([xs, ...series]);
    const summary = paths
      .slice(0, 3)
      .map((p) => {
        const change = latest[p].change_pct;
        return `${p} ${num(latest[p].this_week)}${typeof change === "number" ? ` (${change >= 0 ? "+" : ""}${num(change)}%)` : ""}`;
      })
      .join(" · ");
    figure.querySelector(".now").textContent = summary || "-";
  }
}
