/**
 * The instructor's dashboard (GET /): the terminal dashboard's panels in a browser.
 *
 * Frames update the models (model.js); the render loop draws the panels they
 * touched at most 15 times a second. Keys mirror the terminal dashboard's.
 */
import { JacmonClient } from "./jacmon.js";
import { ActivityModel, AlertsModel, MetricsModel, ProgressModel } from "./model.js";
import { RenderLoop } from "./render-loop.js";
import { signIn, wireSession } from "./signin.js";
import { ActivityPanel } from "./panel-activity.js";
import { AlertDetail, AlertsPanel, loadExplanations } from "./panel-alerts.js";
import { ConnectionPanel } from "./panel-connection.js";
import { LearnersPanel, ProgressPanel } from "./panel-progress.js";
import { TrendsPanel } from "./panel-trends.js";
import { dateMinute, esc, num } from "./format.js";

/** Panels in the order of the number keys 1-6 (as in the terminal dashboard). */
const ORDER = ["progress", "activity", "trends", "alerts", "learners", "connection"];

const $ = (selector) => document.querySelector(selector);

async function main() {
  const explanations = loadExplanations();
  const { token, me } = await signIn();
  await explanations;
  document.body.classList.add("signed-in");
  $("#who").textContent = me.token ? `${me.token} (${me.role})` : `${me.role}, no token (loopback)`;
  $("#version").textContent = me.version ? `v${me.version}` : "";

  const client = new JacmonClient({ token });
  const models = { progress: new ProgressModel(), activity: new ActivityModel(1000), alerts: new AlertsModel(), metrics: new MetricsModel() };
  const now = () => client.serverNow();
  const page = new Page(client, models, me, now);
  page.wire();
  client.start();
  // The page's own state for tests and the benchmark (read-only use).
  globalThis.jacmonPage = page;
}

class Page {
  constructor(client, models, me, now) {
    this.client = client;
    this.models = models;
    this.me = me;
    this.now = now;
    this.current = "progress";
    this.maximized = false;
    this.loop = new RenderLoop((dirty) => this.draw(dirty));
    this.panels = {
      progress: new ProgressPanel($("#progress-body"), $("#progress-crumbs"), models.progress, { now }),
      learners: new LearnersPanel($("#learners-body"), models.progress, {
        now,
        onOpen: (learner) => this.showLearner(learner),
        redraw: () => this.loop.mark("learners"),
      }),
      activity: new ActivityPanel($("#feed"), $("#activity-status"), models.activity, { redraw: () => this.loop.mark("activity") }),
      trends: new TrendsPanel($("#trends-body"), models.metrics),
      alerts: new AlertsPanel($("#alerts-body"), models.alerts, { now, onOpen: (id) => this.openAlert(id) }),
      connection: new ConnectionPanel($("#connection-body"), $("#offline"), client),
    };
    this.detail = new AlertDetail($("#alert-detail"), {
      client,
      alerts: models.alerts,
      activity: models.activity,
      canAck: Boolean(me.can_ack),
      who: me.token ?? "anonymous",
    });
    this.pausedCount = 0;
  }

  wire() {
    const { client, models, loop } = this;
    const on = (type, handler) => client.addEventListener(type, (event) => handler(event.detail));
    on("dashboard:snapshot", (f) => {
      models.progress.applySnapshot(f.data);
      loop.mark("progress", "learners");
    });
    on("dashboard:progress", (f) => {
      models.progress.applyProgress(f.data);
      loop.mark("progress", "learners");
    });
    on("activity:snapshot", (f) => {
      models.activity.applySnapshot(f.data);
      loop.mark("activity");
    });
    on("activity:events", (f) => {
      models.activity.applyEvents(f.data.events ?? []);
      if (loop.paused) this.pausedCount += (f.data.events ?? []).length;
      loop.mark("activity");
    });
    on("metrics:snapshot", (f) => {
      models.metrics.applySnapshot(f.data);
      loop.mark("trends");
    });
    on("metrics:sample", (f) => {
      models.metrics.applySample(f.data);
      loop.mark("trends");
    });
    on("alerts:snapshot", (f) => {
      models.alerts.applySnapshot(f.data);
      loop.mark("alerts", "badge");
    });
    on("alerts:alert", (f) => {
      const critical = models.alerts.applyChange(f.data);
      if (critical) this.toast(critical);
      if (this.current === "alerts" && document.hasFocus()) models.alerts.markAllRead();
      loop.mark("alerts", "badge");
    });
    on("alerts:error", (f) => this.flash(f.data.message ?? f.data.code));
    on("status", () => loop.mark("connection"));
    on("rejected", () => loop.mark("connection"));
    setInterval(() => loop.mark("connection"), 1000);
    setInterval(() => loop.mark("alerts", "learners"), 10000);

    for (const section of document.querySelectorAll("section.panel")) {
      section.addEventListener("focusin", () => this.setCurrent(section.dataset.panel, false));
      section.addEventListener("pointerdown", () => this.setCurrent(section.dataset.panel, false));
    }
    $("#tabs").addEventListener("click", (event) => {
      const button = event.target.closest("[data-panel]");
      if (button) this.jump(button.dataset.panel);
    });
    $("#activity-filter").addEventListener("input", (event) => this.panels.activity.setFilter(event.target.value));
    $("#learners-filter").addEventListener("input", (event) => {
      this.panels.learners.filter = event.target.value;
      loop.mark("learners");
    });
    $("#alerts-filter").addEventListener("input", (event) => {
      this.panels.alerts.filter = event.target.value;
      loop.mark("alerts");
    });
    $("#unread").addEventListener("click", () => this.jump("alerts"));
    $("#pause").addEventListener("click", () => this.togglePause());
    $("#refresh").addEventListener("click", () => client.refresh());
    $("#help-button").addEventListener("click", () => $("#help").showModal());
    wireSession(client);
    $("#progress-back").addEventListener("click", () => this.panels.progress.back());
    document.addEventListener("keydown", (event) => this.onKey(event));
    window.addEventListener("focus", () => {
      if (this.current === "alerts") this.readAlerts();
    });
  }

  draw(dirty) {
    if (dirty.has("connection")) this.drawClock();
    for (const name of dirty) {
      if (name === "badge") this.drawBadge();
      else this.panels[name]?.draw();
      const section = document.querySelector(`section[data-panel="${name}"]`);
      if (section && this.isLoaded(name)) section.dataset.loaded = "true";
    }
    if (dirty.has("alerts") && this.detail.isOpen) this.detail.draw();
  }

  /** The demo's simulated clock in the header, as the terminal dashboard shows it. */
  drawClock() {
    const rate = this.client.clockRate();
    const clock = $("#sim-clock");
    clock.hidden = rate === 1;
    if (rate !== 1) clock.textContent = `SIMULATED ${num(rate)}x · ${dateMinute(this.now())}`;
  }

  isLoaded(name) {
    const m = this.models;
    return {
      progress: m.progress.loaded,
      learners: m.progress.loaded,
      activity: this.client.status("activity").mode !== null,
      trends: m.metrics.samples.length > 0,
      alerts: m.alerts.loaded,
      connection: true,
    }[name];
  }

  drawBadge() {
    const unread = this.models.alerts.unread.size;
    const firing = this.models.alerts.alerts.size;
    $("#unread-count").textContent = String(unread);
    $("#unread").classList.toggle("has-unread", unread > 0);
    $("#unread").title = `${unread} new since you last looked; ${firing} firing`;
    $("#alerts-count").textContent = `${firing} firing`;
    document.title = unread ? `(${unread}) jacmon` : "jacmon";
  }

  readAlerts() {
    this.models.alerts.markAllRead();
    this.loop.mark("badge");
  }

  setCurrent(name, focus = true) {
    if (!name) return;
    this.current = name;
    for (const section of document.querySelectorAll("section.panel")) {
      section.classList.toggle("current", section.dataset.panel === name);
    }
    for (const tab of document.querySelectorAll("#tabs [data-panel]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.panel === name));
    }
    if (name === "alerts") this.readAlerts();
    if (name === "trends") this.loop.mark("trends");
    if (focus) document.querySelector(`section[data-panel="${name}"]`)?.focus({ preventScroll: false });
  }

  jump(name) {
    this.setCurrent(name);
    this.loop.mark(name);
    document.querySelector(`section[data-panel="${name}"]`)?.scrollIntoView({ block: "nearest" });
  }

  showLearner(learner) {
    this.panels.progress.showLearner(learner);
    this.jump("progress");
  }

  openAlert(id) {
    this.readAlerts();
    this.detail.show(id);
  }

  togglePause() {
    if (this.loop.paused) {
      this.loop.resume();
      this.pausedCount = 0;
      for (const name of ORDER) this.loop.mark(name);
    } else {
      this.loop.pause();
    }
    document.body.classList.toggle("paused", this.loop.paused);
    $("#pause").textContent = this.loop.paused ? "Resume (p)" : "Pause (p)";
  }

  toggleMaximize() {
    this.maximized = !this.maximized;
    document.body.classList.toggle("maximized", this.maximized);
    this.loop.mark(this.current);
  }

  flash(text) {
    const box = document.createElement("div");
    box.className = "toast info";
    box.textContent = text;
    $("#toasts").append(box);
    setTimeout(() => box.remove(), 6000);
  }

  toast(alert) {
    const box = document.createElement("button");
    box.type = "button";
    box.className = "toast critical";
    box.innerHTML = `<b>critical</b> ${esc(alert.learner ?? "")}: ${esc(alert.message)}`;
    box.addEventListener("click", () => {
      box.remove();
      this.openAlert(alert.id);
    });
    $("#toasts").append(box);
    setTimeout(() => box.remove(), 10000);
  }

  onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.closest?.("input, textarea, select");
    if (event.key === "Escape") {
      if (typing && event.target.type === "search") {
        event.target.blur();
        event.preventDefault();
      } else if (!this.detail.isOpen && !$("#help").open) {
        if (this.maximized) this.toggleMaximize();
        else if (this.current === "progress") this.panels.progress.back();
      }
      return;
    }
    if (typing) return;
    if (this.detail.isOpen) {
      if (event.key === "a" || event.key === "u") {
        event.preventDefault();
        this.detail.focusForm(event.key === "a" ? "ack" : "unack");
      }
      return;
    }
    const panel = this.panels[this.current];
    const handled = this.handleKey(event.key, panel);
    if (handled) event.preventDefault();
  }

  handleKey(key, panel) {
    const index = "123456".indexOf(key);
    if (index !== -1) {
      this.jump(ORDER[index]);
      return true;
    }
    switch (key) {
      case "?":
        $("#help").showModal();
        return true;
      case "r":
        this.client.refresh();
        return true;
      case "p":
        this.togglePause();
        return true;
      case "z":
        this.toggleMaximize();
        return true;
      case "/": {
        const filter = document.querySelector(`section[data-panel="${this.current}"] input[type=search]`) ?? $("#activity-filter");
        filter.focus();
        return true;
      }
      case "ArrowDown":
      case "j":
        panel.move?.(1);
        return Boolean(panel.move);
      case "ArrowUp":
      case "k":
        panel.move?.(-1);
        return Boolean(panel.move);
      case "Enter":
        panel.open?.();
        return Boolean(panel.open);
      case "s":
        panel.cycleSort?.();
        return Boolean(panel.cycleSort);
      case "i":
        panel.invertSort?.();
        return Boolean(panel.invertSort);
      case "a":
      case "u": {
        const alert = this.current === "alerts" ? this.panels.alerts.selectedAlert() : null;
        if (!alert) {
          this.flash("Select an alert in the Alerts panel (4, then ↑ ↓) to acknowledge it.");
          return true;
        }
        this.openAlert(alert.id);
        this.detail.focusForm(key === "a" ? "ack" : "unack");
        return true;
      }
      default:
        return false;
    }
  }
}

main().catch((error) => {
  console.error(error);
  const message = document.getElementById("signin-message");
  if (message) message.textContent = `The dashboard failed to start: ${error.message}`;
});
