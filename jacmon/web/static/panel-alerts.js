/**
 * The Alerts panel (firing alerts, most severe and longest firing first, sortable), the
 * alert detail (what the rule means, the evidence, the history, the learner's recent
 * activity) and acknowledging / withdrawing an acknowledgement with a note.
 *
 * What a rule means and how its numbers are named come from alert-rules.json, written
 * from jacmon/analytics/alert_explain.py (the terminal dashboard and the notifications
 * read the same texts): `python -m jacmon.web.rules` regenerates it.
 */
import { eventHtml } from "./panel-activity.js";
import { ago, dateMinute, epoch, esc, num } from "./format.js";
import { TablePanel, sortRows, tableHtml } from "./table.js";
import { SEVERITY_RANK } from "./model.js";

let explain = { rules: {}, labels: {}, time_keys: [] };

/** Load the rule texts once (a missing file only costs the explanations). */
export async function loadExplanations() {
  try {
    const response = await fetch("/static/alert-rules.json");
    if (response.ok) explain = await response.json();
  } catch {
    // The detail view says "no description" for every rule; nothing else depends on it.
  }
}

function ruleText(rule) {
  return explain.rules[rule] ?? `rule “${rule}”: no description known to this dashboard`;
}

function itemText(item) {
  if (item && typeof item === "object") {
    const value = item.score ?? item.value;
    const when = item.ts ?? item.at;
    return when !== undefined ? `${num(value)} on ${dateMinute(when)}` : num(value);
  }
  return num(item);
}

/** The alert's `numbers` as [label, text] lines (alert_explain.evidence_lines, in the browser). */
export function evidence(alert) {
  const lines = [];
  for (const [key, value] of Object.entries(alert.numbers ?? {})) {
    const label = explain.labels[key] ?? key.replaceAll("_", " ");
    if (explain.time_keys.includes(key) || key.endsWith("_at")) lines.push([label, dateMinute(value)]);
    else if (Array.isArray(value)) lines.push([label, value.map(itemText).join(", ")]);
    else lines.push([label, num(value)]);
  }
  return lines;
}

function ackText(alert) {
  if (alert.acknowledged) {
    const until = alert.acknowledged.expires_at ? ` until ${dateMinute(alert.acknowledged.expires_at)}` : "";
    return `acked by ${alert.acknowledged.by}${until}`;
  }
  return alert.silenced ? `silenced until ${dateMinute(alert.silenced.until)}` : "";
}

/** An alert's message, and its acknowledgement or silence in brackets. */
function messageHtml(alert) {
  const state = ackText(alert);
  return `${esc(alert.message)}${state ? ` <em class="acked">(${esc(state)})</em>` : ""}`;
}

export function alertColumns(now) {
  return [
    { title: "sev", cell: (a) => a.severity, html: (a) => `<span class="sev sev-${esc(a.severity)}">${esc(a.severity)}</span>`, sort: (a) => SEVERITY_RANK[a.severity] ?? 9 },
    { title: "age", cls: "num", cell: (a) => ago(a.first_seen, now), sort: (a) => a.first_seen, hint: "how long it has been firing" },
    { title: "learner", cell: (a) => a.learner ?? "-" },
    { title: "rule", cls: "rule", cell: (a) => a.rule.replaceAll("_", " ") },
    { title: "message", cls: "msg", cell: (a) => a.message, html: (a) => messageHtml(a) },
  ];
}

export class AlertsPanel extends TablePanel {
  constructor(root, model, { now, onOpen }) {
    super(root);
    this.model = model;
    this.now = now;
    this.onOpen = onOpen;
    this.sortIndex = null; // null: severity, then age (the default order)
    this.filter = "";
  }

  open() {
    if (this.selected !== null) this.onOpen(Number(this.selected));
  }

  selectedAlert() {
    return this.selected === null ? null : (this.model.alerts.get(Number(this.selected)) ?? null);
  }

  cycleSort() {
    this.sortIndex = this.sortIndex === null ? 0 : this.sortIndex + 1;
    if (this.sortIndex >= alertColumns(0).length) this.sortIndex = null;
    this.draw();
  }



  draw() {
    const columns = alertColumns(this.now());
    let rows = this.model.sorted();
    const words = this.filter.toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length) {
      rows = rows.filter((a) => words.every((w) => [a.learner, a.path, a.rule, a.message, a.severity].some((f) => String(f ?? "").toLowerCase().includes(w))));
    }
    if (this.sortIndex !== null) rows = sortRows(rows, columns[this.sortIndex], this.descending);
    else if (this.descending) rows.reverse();
    this.root.innerHTML = tableHtml(columns, rows, {
      key: (a) => String(a.id),
      selected: this.selected,
      sortIndex: this.sortIndex,
      descending: this.descending,
      empty: this.model.loaded ? (words.length ? "no alert matches the filter" : "no alert is firing") : "loading…",
    });
  }
}

/** Durations offered for an acknowledgement's expiry, in seconds (0: until resolved). */
const EXPIRIES = [
  [0, "until it resolves"],
  [3600, "for 1 hour"],
  [4 * 3600, "for 4 hours"],
  [86400, "for 1 day"],
  [3 * 86400, "for 3 days"],
  [7 * 86400, "for 1 week"],
];

/**
 * The alert detail, a <dialog>: everything about one alert, and the ack / un-ack forms.
 * The outcome of an action is what the server publishes (the alert change or an error),
 * never assumed.
 */
export class AlertDetail {
  constructor(dialog, { client, alerts, activity, canAck, who }) {
    this.dialog = dialog;
    this.client = client;
    this.alerts = alerts;
    this.activity = activity;
    this.canAck = canAck;
    this.who = who;
    this.alertId = null;
    this.pending = null;
    this.outcome = null;
    dialog.addEventListener("close", () => {
      this.alertId = null;
    });
    dialog.addEventListener("submit", (event) => {
      event.preventDefault();
      this.act(event.target.dataset.action, new FormData(event.target));
    });
    dialog.addEventListener("click", (event) => {
      if (event.target.closest("[data-close]")) dialog.close();
    });
    client.addEventListener("alerts:alert", (event) => this.onChange(event.detail.data));
    client.addEventListener("alerts:error", (event) => this.onError(event.detail.data));
  }

  get isOpen() {
    return this.dialog.open;
  }

  show(alertId) {
    this.alertId = alertId;
    this.outcome = null;
    this.pending = null;
    this.draw();
    if (!this.dialog.open) this.dialog.showModal();
  }

  /** The `a` and `u` keys: put the focus in the matching form. */
  focusForm(action) {
    this.dialog.querySelector(`form[data-action="${action}"] textarea`)?.focus();
  }

  act(action, form) {
    const alert = this.alerts.alerts.get(this.alertId);
    if (!alert) return;
    const note = String(form.get("note") ?? "").trim() || null;
    let sent;
    if (action === "ack") {
      const seconds = Number(form.get("expiry") ?? 0);
      const expiresAt = seconds > 0 ? this.client.serverNow() + seconds : null;
      sent = this.client.ack(alert.id, { note, expiresAt });
    } else {
      sent = this.client.unack(alert.id, { note });
    }
    this.pending = sent ? { action, id: alert.id } : null;
    this.outcome = sent ? null : { ok: false, text: "the alerts stream is offline: nothing was sent; try again once it is back" };
    this.draw();
  }

  onChange(change) {
    if (this.pending && change.alert && change.alert.id === this.pending.id) {
      const wanted = this.pending.action === "ack" ? "acknowledged" : "unacknowledged";
      if (change.change === wanted) {
        this.outcome = { ok: true, text: this.pending.action === "ack" ? "Acknowledged." : "Acknowledgement withdrawn." };
        this.pending = null;
      }
    }
    if (this.dialog.open && change.alert && change.alert.id === this.alertId) this.draw();
  }

  onError(error) {
    if (!this.pending || !error) return;
    if (error.alert_id !== undefined && error.alert_id !== this.pending.id) return;
    this.outcome = { ok: false, text: error.message ?? String(error.code) };
    this.pending = null;
    if (this.dialog.open) this.draw();
  }

  draw() {
    const alert = this.alerts.alerts.get(this.alertId);
    const now = this.client.serverNow();
    const body = this.dialog.querySelector(".body");
    if (!alert) {
      body.innerHTML = `<p>Alert ${esc(this.alertId)} is no longer firing (resolved).</p>${this.outcomeHtml()}`;
      return;
    }
    const lines = evidence(alert)
      .map(([label, text]) => `<dt>${esc(label)}</dt><dd>${esc(text)}</dd>`)
      .join("");
    const history = (alert.acknowledgements ?? [])
      .map((entry) => {
        const action = entry.action ?? "acknowledged";
        const until = entry.expires_at ? `, until ${dateMinute(entry.expires_at)}` : "";
        const note = entry.note ? `: “${entry.note}”` : "";
        return `<li>${esc(dateMinute(entry.at))} ${esc(action)} by ${esc(entry.by)}${esc(until)}${esc(note)}</li>`;
      })
      .join("");
    const recent = this.activity.events.filter((event) => event.learner === alert.learner).slice(-10).reverse();
    body.innerHTML =
      `<h2><span class="sev sev-${esc(alert.severity)}">${esc(alert.severity)}</span> ${esc(alert.rule.replaceAll("_", " "))}</h2>` +
      `<p class="message">${esc(alert.message)}</p>` +
      `<dl class="facts">` +
      `<dt>learner</dt><dd>${esc(alert.learner ?? "-")}</dd><dt>path</dt><dd>${esc(alert.path ?? "-")}</dd>` +
      `<dt>firing since</dt><dd>${esc(dateMinute(alert.first_seen))} (${esc(ago(alert.first_seen, now))})</dd>` +
      `<dt>last checked</dt><dd>${esc(dateMinute(alert.last_seen))}</dd>` +
      `<dt>alert id</dt><dd>${esc(alert.id)}</dd>` +
      (alert.silenced ? `<dt>silenced</dt><dd>until ${esc(dateMinute(alert.silenced.until))} by ${esc(alert.silenced.by)}${alert.silenced.note ? `: “${esc(alert.silenced.note)}”` : ""} (no notifications)</dd>` : "") +
      `</dl>` +
      `<h3>What it means</h3><p>${esc(ruleText(alert.rule))}</p>` +
      `<h3>Evidence</h3>${lines ? `<dl class="evidence">${lines}</dl>` : "<p>none recorded</p>"}` +
      `<h3>Acknowledgement</h3>${this.ackStateHtml(alert)}` +
      (history ? `<h3>History</h3><ul class="history">${history}</ul>` : "") +
      `<h3>Recent activity of ${esc(alert.learner ?? "-")}</h3>` +
      (recent.length ? `<ol class="feed">${recent.map((e) => eventHtml(e, { showLearner: false })).join("")}</ol>` : `<p>none in the feed this page has received</p>`) +
      this.outcomeHtml() +
      this.formsHtml(alert);
    const note = body.querySelector("textarea");
    if (note && this.pending === null && document.activeElement === document.body) note.focus();
  }

  ackStateHtml(alert) {
    const ack = alert.acknowledged;
    if (!ack) return "<p>not acknowledged</p>";
    const until = ack.expires_at ? ` until ${dateMinute(ack.expires_at)}` : " until it resolves";
    return `<p>acknowledged by <b>${esc(ack.by)}</b> at ${esc(dateMinute(ack.at))}${esc(until)}${ack.note ? `: “${esc(ack.note)}”` : ""}</p>`;
  }

  outcomeHtml() {
    if (this.pending) return `<p class="outcome pending" role="status">Sent; waiting for the server…</p>`;
    if (!this.outcome) return "";
    return `<p class="outcome ${this.outcome.ok ? "ok" : "failed"}" role="status">${esc(this.outcome.text)}</p>`;
  }

  formsHtml(alert) {
    if (!this.canAck) {
      return `<p class="note">Token ${esc(this.who)} may not acknowledge alerts (it needs the admin role or a viewer token created with --can-ack).</p>`;
    }
    const busy = this.pending ? " disabled" : "";
    if (alert.acknowledged) {
      return (
        `<form data-action="unack" class="act"><label>Why withdraw it? (optional)<textarea name="note" maxlength="2000" rows="2"></textarea></label>` +
        `<button type="submit"${busy}>Withdraw the acknowledgement (u)</button> <button type="button" data-close>Close</button></form>`
      );
    }
    const options = EXPIRIES.map(([seconds, text]) => `<option value="${seconds}">${esc(text)}</option>`).join("");
    return (
      `<form data-action="ack" class="act"><label>Note for the other instructors (optional)<textarea name="note" maxlength="2000" rows="2"></textarea></label>` +
      `<label>Acknowledged <select name="expiry">${options}</select></label>` +
      `<button type="submit"${busy}>Acknowledge (a)</button> <button type="button" data-close>Close</button></form>`
    );
  }
}
