/**
 * One learner's own page (GET /learner): each path with its modules and progress, level,
 * streak, time spent and recent activity. A learner-scoped token shows its learner and
 * nothing else (the server scopes every stream; asking for another learner is refused);
 * an admin or viewer names the learner with `?learner=ID`.
 *
 * Embeddable in an LMS page (an iframe allowed by the server's web.frame_ancestors); the LMS
 * may pass the token once as `#token=…`.
 */
import { JacmonClient } from "./jacmon.js";
import { ActivityModel, ProgressModel } from "./model.js";
import { RenderLoop } from "./render-loop.js";
import { signIn, wireSession } from "./signin.js";
import { eventHtml } from "./panel-activity.js";
import { ConnectionPanel } from "./panel-connection.js";
import { ago, dateMinute, esc, num, pct, spent } from "./format.js";
import { barHtml, sizeBars } from "./table.js";

const $ = (selector) => document.querySelector(selector);

/** Recent events shown. */
const RECENT = 25;

function askedLearner() {
  return new URLSearchParams(location.search).get("learner") || null;
}

function pickLearner() {
  const form = $("#pick");
  form.hidden = false;
  form.querySelector("input").focus();
  return new Promise((resolve) => {
    form.addEventListener(
      "submit",
      (event) => {
        event.preventDefault();
        const learner = new FormData(form).get("learner").trim();
        // The learner id is no secret: keep it in the URL so the page can be bookmarked.
        history.replaceState(null, "", `/learner?learner=${encodeURIComponent(learner)}`);
        form.hidden = true;
        resolve(learner);
      },
      { once: true },
    );
  });
}

async function main() {
  const asked = askedLearner();
  const { token, me } = await signIn({ learner: asked });
  const learner = me.learner ?? asked ?? (await pickLearner());
  document.body.classList.add("signed-in");
  $("#title").textContent = learner;
  document.title = `${learner} · jacmon`;

  const client = new JacmonClient({ token, learner, streams: ["dashboard", "activity"] });
  const progress = new ProgressModel();
  const activity = new ActivityModel(RECENT * 4);
  const connection = new ConnectionPanel($("#connection-body"), $("#offline"), client);
  const now = () => client.serverNow();
  const loop = new RenderLoop((dirty) => {
    if (dirty.has("progress")) drawProgress(progress, learner, now());
    if (dirty.has("activity")) drawActivity(activity);
    if (dirty.has("connection")) drawConnection(connection, client);
  });
  const on = (type, handler) => client.addEventListener(type, (event) => handler(event.detail));
  on("dashboard:snapshot", (f) => {
    progress.applySnapshot(f.data);
    loop.mark("progress");
  });
  on("dashboard:progress", (f) => {
    progress.applyProgress(f.data);
    loop.mark("progress");
  });
  on("activity:snapshot", (f) => {
    activity.applySnapshot(f.data);
    loop.mark("activity");
  });
  on("activity:events", (f) => {
    activity.applyEvents(f.data.events ?? []);
    loop.mark("activity");
  });
  on("status", () => loop.mark("connection"));
  on("rejected", () => loop.mark("connection"));
  setInterval(() => loop.mark("connection", "progress"), 5000);
  wireSession(client);
  client.start();
  globalThis.jacmonPage = { client, progress, activity, loop, learner };
}

function days(count) {
  return count === 1 ? "1 day" : `${num(count)} days`;
}

function stat(label, value, note = "") {
  return `<div class="stat"><span class="muted">${esc(label)}</span><b>${esc(value)}</b>${note ? `<small>${esc(note)}</small>` : ""}</div>`;
}

function drawProgress(progress, learner, now) {
  const me = progress.learners.get(learner);
  $("#stats").innerHTML = me
    ? stat("level", num(me.level), `${num(me.xp)} xp`) +
      stat("streak", days(me.streak_days), `best ${days(me.longest_streak)}`) +
      stat("time spent", spent(me.time_spent_s)) +
      stat("last active", `${ago(me.last_activity, now)} ago`, dateMinute(me.last_activity)) +
      stat("events", num(me.events))
    : progress.loaded
      ? `<p class="note">No activity from ${esc(learner)} yet.</p>`
      : `<p class="note">Loading…</p>`;
  const rows = progress.learnerPathsWhere("learner", learner).sort((a, b) => String(a.path).localeCompare(b.path));
  $("#paths").innerHTML = rows.map((row) => pathCard(progress, row, now)).join("");
  document.body.dataset.loaded = String(progress.loaded);
  sizeBars($("#paths"));
}

function pathCard(progress, row, now) {
  const path = progress.paths.get(row.path);
  const title = path?.title ? `${esc(path.title)} <small>${esc(row.path)}</small>` : esc(row.path);
  const total = path?.modules ? ` of ${num(path.modules)}` : "";
  const modules = progress
    .modulesOf(row.path)
    .map(
      (m) =>
        `<li>${esc(m.module)} ${barHtml(m.percent)} ${esc(pct(m.percent))} <small>${esc(String(m.status ?? "").replace("_", " "))} · ${esc(spent(m.time_spent_s))}</small></li>`,
    )
    .join("");
  const finished = row.completed_at ? ` · finished ${esc(dateMinute(row.completed_at))}` : "";
  return (
    `<article class="path-card" data-path="${esc(row.path)}"><h3>${title} ${barHtml(row.percent)} ${esc(pct(row.percent))}</h3>` +
    `<p class="note">${esc(String(row.status).replace("_", " "))} · ${esc(num(row.modules_completed))}${esc(total)} modules done · ${esc(spent(row.time_spent_s))} · last active ${esc(ago(row.last_activity, now))} ago${finished}</p>` +
    (modules ? `<ol>${modules}</ol>` : "") +
    `</article>`
  );
}

function drawActivity(activity) {
  const recent = activity.events.slice(-RECENT).reverse();
  $("#recent").innerHTML = recent.length
    ? recent.map((event) => eventHtml(event, { showLearner: false })).join("")
    : `<li class="empty">no activity yet</li>`;
}

function drawConnection(connection, client) {
  const rows = connection.draw();
  const live = rows.every((r) => r.state === "open");
  $("#live").textContent = live ? "live" : "";
}

main().catch((error) => {
  console.error(error);
  const message = document.getElementById("signin-message");
  if (message) message.textContent = `The page failed to start: ${error.message}`;
});
