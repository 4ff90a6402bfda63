/**
 * jacmon.js: the browser client of jacmon's wire protocol (docs/protocol.md).
 *
 * One JacmonClient holds one WebSocket per stream (dashboard, alerts, metrics,
 * activity). It reconnects with exponential backoff and full jitter, resumes
 * activity and alerts from the last data `seq` it received (`?since=N`), and
 * dispatches typed events: a listener never parses envelopes.
 *
 *   import { JacmonClient } from "/static/jacmon.js";
 *   const client = new JacmonClient({ token, learner: null });
 *   client.addEventListener("activity:events", (e) => show(e.detail.data.events));
 *   client.addEventListener("status", (e) => console.log(e.detail.stream, e.detail.state));
 *   client.start();
 *
 * Events (all CustomEvent; `detail` shown):
 *   "<stream>:<type>"  one per frame, e.g. "activity:snapshot", "activity:events",
 *                      "alerts:alert", "dashboard:progress", "metrics:sample", "alerts:error":
 *                      {stream, type, seq, ts, data}
 *   "frame"            every frame, the same detail
 *   "status"           a stream's connection changed: {stream, state, reason, code,
 *                      retryInMs, reconnects, mode, serverId, lastSeq}
 *                      state: "connecting" | "open" | "offline" | "rejected" | "closed"
 *                      mode (once open): "fresh" | "resumed" | "reset"
 *
 * No dependency, no build step: an ES module any frontend can import (see docs/web.md).
 * Times are seconds since the Unix epoch unless a name says otherwise.
 */

/** The four server → client streams, in the order the dashboard shows them. */
export const STREAMS = Object.freeze(["dashboard", "alerts", "metrics", "activity"]);

/** Frame types that carry data: their `seq` is a position to resume from. */
const DATA_TYPES = new Set(["snapshot", "events", "alert", "sample", "progress"]);

/** Streams the server replays from `since`; the others always start with a snapshot. */
const REPLAYABLE = new Set(["activity", "alerts"]);

/** Close codes (docs/protocol.md, "Close codes"). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_BIG: 1009,
  SERVER_ERROR: 1011,
  TOKEN_REVOKED: 4001,
  TOO_SLOW: 4008,
});

/**
 * Backoff with full jitter: a random wait between 0 and min(maxMs, initialMs * 2^attempt).
 * Many browsers reconnecting to a restarted server then spread out instead of arriving at once.
 * @param {number} attempt failed attempts so far (0 for the first retry)
 * @returns {number} milliseconds to wait
 */
export function backoffDelayMs(attempt, { initialMs = 500, maxMs = 15000, random = Math.random } = {}) {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * Who a token is, or why the server refuses it: GET /whoami (docs/protocol.md).
 * The token goes in the Authorization header, never in the page's URL.
 * @returns {Promise<{ok: boolean, status: number, body: object}>}
 */
export async function whoami({ origin = location.origin, token = null, learner = null } = {}) {
  const url = new URL("/whoami", origin);
  if (learner) url.searchParams.set("learner", learner);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  let response;
  try {
    response = await fetch(url, { headers, cache: "no-store", credentials: "omit" });
  } catch (error) {
    return { ok: false, status: 0, body: { error: `the server cannot be reached (${error.message})` } };
  }
  let body;
  try {
    body = await response.json();
  } catch {
    body = { error: `the server answered ${response.status} without a JSON body` };
  }
  if (!response.ok) return { ok: false, status: response.status, body };
  // The server answers 200 with the verdict inside: accepted, and the handshake's status.
  return { ok: body.accepted === true, status: body.status ?? response.status, body };
}

/** One stream's connection: its socket, its resume position and its retry schedule. */
class StreamConnection {
  constructor(client, name) {
    this.client = client;
    this.name = name;
    this.socket = null;
    this.state = "closed";
    this.attempt = 0;
    this.reconnects = 0;
    this.lastSeq = null;
    this.serverId = null;
    this.mode = null;
    this.lastFrameAt = null;
    this.reason = null;
    this.retryTimer = null;
    this.retryAt = null;
    this.opened = false;
    // After a resume on a different database: drop frames until the refresh's hello.
    this.discardUntilHello = false;
    this.wanted = false;
  }

  url() {
    const url = new URL(`/ws/${this.name}`, this.client.wsOrigin);
    if (this.client.token) url.searchParams.set("token", this.client.token);
    if (this.client.learner) url.searchParams.set("learner", this.client.learner);
    if (REPLAYABLE.has(this.name) && this.lastSeq !== null) {
      url.searchParams.set("since", String(this.lastSeq));
    }
    return url.toString();
  }

  open() {
    this.wanted = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = null;
    this.opened = false;
    this.setState("connecting", null);
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch (error) {
      this.setState("rejected", `cannot open ${this.name}: ${error.message}`);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.opened = true;
    };
    socket.onmessage = (message) => this.onMessage(message.data);
    socket.onclose = (event) => this.onClose(socket, event);
  }

  close() {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(CloseCode.NORMAL, "bye");
    this.setState("closed", null);
  }

  /** Reconnect now (the user asked), keeping the resume position. */
  reconnectNow() {
    if (this.socket) this.socket.close(CloseCode.NORMAL, "reconnecting");
    this.socket = null;
    this.attempt = 0;
    this.open();
  }

  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  onMessage(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return; // The server sends JSON only; a broken frame is not worth a crash.
    }
    if (!frame || typeof frame !== "object" || typeof frame.type !== "string") return;
    this.lastFrameAt = Date.now();
    if (typeof frame.ts === "number") this.client.noteServerTime(frame.ts);
    if (frame.type === "hello") {
      this.onHello(frame.data ?? {});
    } else if (frame.type === "connection_established") {
      return; // The same data as hello, for the earlier design's clients.
    }
    if (this.discardUntilHello && frame.type !== "hello") return;
    if (DATA_TYPES.has(frame.type) && Number.isSafeInteger(frame.seq)) {
      this.lastSeq = frame.seq;
      if (frame.type === "snapshot" && frame.data && frame.data.reset) {
        this.mode = "reset";
        this.emitStatus();
      }
    }
    const detail = { stream: this.name, type: frame.type, seq: frame.seq, ts: frame.ts, data: frame.data };
    this.client.dispatchEvent(new CustomEvent(`${this.name}:${frame.type}`, { detail }));
    this.client.dispatchEvent(new CustomEvent("frame", { detail }));
  }

  onHello(hello) {
    this.discardUntilHello = false;
    if (hello.clock && Number.isFinite(hello.clock.now)) this.client.noteServerClock(hello.clock);
    if (this.serverId !== null && hello.server_id && hello.server_id !== this.serverId) {
      // Another database: the seq we resumed from means nothing there. Start over.
      this.serverId = hello.server_id;
      this.lastSeq = null;
      if (hello.resumed) {
        this.discardUntilHello = true;
        this.send({ type: "refresh" });
        return;
      }
    }
    this.serverId = hello.server_id ?? this.serverId;
    this.attempt = 0;
    this.mode = hello.resumed ? "resumed" : "fresh";
    this.setState("open", null);
  }

  async onClose(socket, event) {
    if (socket !== this.socket) return; // An old socket we replaced.
    this.socket = null;
    if (!this.wanted) return;
    if (event.code === CloseCode.TOKEN_REVOKED) {
      this.setState("rejected", "the token was revoked: sign in with another one");
      return;
    }
    if (!this.opened) {
      // Browsers hide why a handshake failed: ask the server in plain HTTP.
      const answer = await this.client.whoami();
      if (!this.wanted) return;
      if (answer.status === 401 || answer.status === 403) {
        this.setState("rejected", answer.body.error ?? `refused (${answer.status})`, answer.status);
        this.client.dispatchEvent(
          new CustomEvent("rejected", { detail: { stream: this.name, status: answer.status, reason: answer.body.error } }),
        );
        return;
      }
    }
    // A slow client resumes at once; everything else waits its backoff.
    const delay = event.code === CloseCode.TOO_SLOW ? 0 : backoffDelayMs(this.attempt, this.client.backoff);
    this.attempt += 1;
    this.reconnects += 1;
    const why = event.code === CloseCode.GOING_AWAY ? "the server is restarting" : closeText(event);
    this.retryAt = Date.now() + delay;
    this.setState("offline", why);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  setState(state, reason, code = null) {
    this.state = state;
    this.reason = reason;
    this.code = code;
    this.emitStatus();
  }

  emitStatus() {
    const detail = {
      stream: this.name,
      state: this.state,
      reason: this.reason,
      code: this.code,
      retryInMs: this.retryAt === null ? null : Math.max(0, this.retryAt - Date.now()),
      reconnects: this.reconnects,
      mode: this.mode,
      serverId: this.serverId,
      lastSeq: this.lastSeq,
    };
    this.client.dispatchEvent(new CustomEvent("status", { detail }));
  }
}

function closeText(event) {
  if (event.code === 1006) return "the connection was lost";
  return event.reason ? `closed (${event.code}: ${event.reason})` : `closed (${event.code})`;
}

/**
 * A connection to one jacmon server: one WebSocket per stream, resumed and retried on its own.
 *
 * options:
 *   origin   the server's http(s) origin (default: the page's)
 *   token    the access token, sent as `?token=` on each WebSocket only (null: none)
 *   learner  scope every stream to one learner (null: the token's scope, if any)
 *   streams  which streams to open (default: all four)
 *   backoff  {initialMs, maxMs} for reconnects (default 500 ms, 15 s)
 *   pingEveryMs  an application ping this often; a stream silent for 3 pings is reconnected
 */
export class JacmonClient extends EventTarget {
  constructor({ origin = location.origin, token = null, learner = null, streams = STREAMS, backoff = {}, pingEveryMs = 15000 } = {}) {
    super();
    const base = new URL(origin);
    this.origin = base.origin;
    this.wsOrigin = `${base.protocol === "https:" ? "wss:" : "ws:"}//${base.host}`;
    this.token = token;
    this.learner = learner;
    this.backoff = { initialMs: 500, maxMs: 15000, ...backoff };
    this.pingEveryMs = pingEveryMs;
    this.pingTimer = null;
    /** Server clock minus the browser's, in seconds, from the frames' send times. */
    this.serverOffsetS = 0;
    /** The server's clock from its last hello: {now, rate, atMs} (the demo's runs simulated time). */
    this.serverClock = null;
    this.connections = new Map(streams.map((name) => [name, new StreamConnection(this, name)]));
  }

  /** Open every stream. */
  start() {
    for (const connection of this.connections.values()) connection.open();
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.keepAlive(), this.pingEveryMs);
  }

  /** Close every stream; nothing reconnects until start() again. */
  stop() {
    clearInterval(this.pingTimer);
    for (const connection of this.connections.values()) connection.close();
  }

  /** Ask every open stream for a fresh snapshot; reconnect the others now. */
  refresh() {
    for (const connection of this.connections.values()) {
      if (connection.state === "open") connection.send({ type: "refresh" });
      else if (connection.state !== "closed") connection.reconnectNow();
    }
  }

  /** Send a message on one stream; false when that stream is not connected. */
  send(stream, message) {
    const connection = this.connections.get(stream);
    return connection ? connection.send(message) : false;
  }

  /**
   * Acknowledge a firing alert (needs admin, or viewer with can_ack). The outcome comes back
   * as an "alerts:alert" event (change "acknowledged") or an "alerts:error" (code ack_failed).
   * @param {number} alertId
   * @param {{note?: string|null, expiresAt?: number|null}} options expiresAt: epoch seconds on the server's clock
   */
  ack(alertId, { note = null, expiresAt = null } = {}) {
    return this.send("alerts", { type: "ack", alert_id: alertId, note, expires_at: expiresAt });
  }

  /** Withdraw an alert's current acknowledgement ("alerts:alert" change "unacknowledged"). */
  unack(alertId, { note = null } = {}) {
    return this.send("alerts", { type: "unack", alert_id: alertId, note });
  }

  /** Who this client's token is (GET /whoami), for its learner scope. */
  whoami() {
    return whoami({ origin: this.origin, token: this.token, learner: this.learner });
  }

  /**
   * The server's clock now, in epoch seconds: from `hello.clock` (its time and rate, so the
   * demo's simulated clock runs on between frames), else from the frames' send times.
   */
  serverNow() {
    const clock = this.serverClock;
    if (clock) return clock.now + ((Date.now() - clock.atMs) / 1000) * clock.rate;
    return Date.now() / 1000 + this.serverOffsetS;
  }

  /** How many server seconds pass per wall second (1 unless the server simulates time). */
  clockRate() {
    return this.serverClock ? this.serverClock.rate : 1;
  }

  noteServerClock({ now, rate }) {
    this.serverClock = { now, rate: Number.isFinite(rate) && rate > 0 ? rate : 1, atMs: Date.now() };
  }

  /** A stream's connection state: {state, reason, reconnects, mode, lastSeq, lastFrameAt, retryAt}. */
  status(stream) {
    const c = this.connections.get(stream);
    if (!c) return null;
    return {
      state: c.state,
      reason: c.reason,
      reconnects: c.reconnects,
      mode: c.mode,
      lastSeq: c.lastSeq,
      lastFrameAt: c.lastFrameAt,
      retryAt: c.retryAt,
      serverId: c.serverId,
    };
  }

  noteServerTime(ts) {
    this.serverOffsetS = ts - Date.now() / 1000;
  }

  keepAlive() {
    const now = Date.now();
    for (const connection of this.connections.values()) {
      if (connection.state !== "open") continue;
      if (connection.lastFrameAt !== null && now - connection.lastFrameAt > 3 * this.pingEveryMs) {
        connection.reconnectNow(); // No frame, not even a pong, for three pings: a dead link.
      } else {
        connection.send({ type: "ping", id: now });
      }
    }
  }
}
