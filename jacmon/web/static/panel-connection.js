/**
 * The Connection panel (each stream's state, last frame, reconnects, resume mode and seq)
 * and the offline banner above every panel.
 */
import { esc, span } from "./format.js";
import { tableHtml } from "./table.js";

const STATE_TEXT = {
  connecting: "connecting",
  open: "live",
  offline: "offline",
  rejected: "refused",
  closed: "closed",
};

export class ConnectionPanel {
  constructor(root, banner, client) {
    this.root = root;
    this.banner = banner;
    this.client = client;
  }

  rows() {
    return [...this.client.connections.keys()].map((stream) => ({ stream, ...this.client.status(stream) }));
  }

  draw() {
    const nowMs = Date.now();
    const columns = [
      { title: "stream", cell: (r) => r.stream },
      { title: "state", cell: (r) => STATE_TEXT[r.state] ?? r.state, html: (r) => `<span class="state state-${esc(r.state)}">${esc(STATE_TEXT[r.state] ?? r.state)}</span>` },
      { title: "last msg", cls: "num", cell: (r) => (r.lastFrameAt ? span((nowMs - r.lastFrameAt) / 1000) : "-"), hint: "time since the stream's last frame" },
      { title: "↻", cls: "num", cell: (r) => String(r.reconnects), hint: "reconnects since the page opened" },
      { title: "mode", cell: (r) => r.mode ?? "-", hint: "fresh: full snapshot · resumed: missed frames replayed · reset: too late to replay" },
      { title: "seq", cls: "num", cell: (r) => (r.lastSeq === null ? "-" : String(r.lastSeq)) },
      { title: "why", cls: "msg", cell: (r) => (r.state === "offline" && r.retryAt ? `${r.reason}; retry in ${span(Math.max(0, (r.retryAt - nowMs) / 1000))}` : (r.reason ?? "")) },
    ];
    const rows = this.rows();
    this.root.innerHTML = tableHtml(columns, rows, { key: (r) => r.stream });
    this.drawBanner(rows, nowMs);
    return rows;
  }

  drawBanner(rows, nowMs) {
    const rejected = rows.filter((r) => r.state === "rejected");
    const offline = rows.filter((r) => r.state === "offline" || (r.state === "connecting" && r.reconnects > 0));
    const text = this.banner.querySelector(".text");
    if (rejected.length) {
      text.textContent = `Refused: ${rejected[0].reason}`;
    } else if (offline.length) {
      const next = Math.min(...offline.map((r) => (r.retryAt ? Math.max(0, (r.retryAt - nowMs) / 1000) : 0)));
      const names = offline.map((r) => r.stream).join(", ");
      text.textContent = `Offline (${names}): ${offline[0].reason ?? "reconnecting"}. Reconnecting${next > 0.5 ? ` in ${span(next)}` : "…"} The panels show the last data they had.`;
    }
    this.banner.hidden = !(rejected.length || offline.length);
    document.body.classList.toggle("offline", !this.banner.hidden);
  }
}
