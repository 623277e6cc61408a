// The signalling WebSocket (docs/signalling.md): join on every (re)connection, ping every
// heartbeat/3 seconds, reconnect with backoff (1 s, 2 s, 4 s … at most 10 s) unless the server
// closed for good, and match answers (publish_answer, subscribe_offer) to their requests.

/** Close codes after which reconnecting cannot help: replaced, removed, ended, denied, refused. */
export const FINAL_CLOSE_CODES = new Set([4000, 4010, 4011, 4012, 4400, 4401, 4403, 4404, 4409]);
const ANSWERS = { publish_answer: "publish", subscribe_offer: "subscribe" };
const MAX_BACKOFF = 10000;

export class Signalling {
  /**
   * @param {object} options
   * @param {string} options.path  e.g. "/ws/meetings/12"
   * @param {object} [options.query]  query string parameters
   * @param {number} [options.heartbeat]  seconds
   * @param {() => object} options.makeJoin  the join message, built afresh for every connection
   * @param {(message: object) => void} options.onMessage
   * @param {(state: string, detail?: object) => void} [options.onState]
   *   "connecting" | "connected" | "reconnecting" | "closed"; detail {delay, attempt} or {code, error}
   */
  constructor({ path, query = {}, heartbeat = 15, makeJoin, onMessage, onState = () => {} }) {
    this.path = path;
    this.query = query;
    this.heartbeat = heartbeat;
    this.makeJoin = makeJoin;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.state = "closed";
    this.pending = { publish: [], subscribe: [] };
    this.lastError = null;
    this.lastHeard = 0;
    this.pingTimer = 0;
    this.retryTimer = 0;
    window.addEventListener("online", () => {
      if (this.retryTimer && !this.stopped) {
        clearTimeout(this.retryTimer);
        this.retryTimer = 0;
        this.open();
      }
    });
  }

  get url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams(this.query).toString();
    return scheme + "//" + location.host + this.path + (query ? "?" + query : "");
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    this.open();
  }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail || {});
  }

  open() {
    this.retryTimer = 0;
    this.lastError = null;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this.dropped(1006);
      return;
    }
    this.ws = ws;
    this.setState(this.attempt ? "reconnecting" : "connecting", { attempt: this.attempt });
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      this.sendNow(this.makeJoin());
      this.startPings();
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (message && typeof message === "object") this.route(message);
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.dropped(event.code);
    };
  }

  route(message) {
    if (message.type === "welcome" || message.type === "lobby_wait") {
      this.attempt = 0;
      if (message.heartbeat) this.setHeartbeat(message.heartbeat);
      this.setState("connected");
    }
    const waiting = ANSWERS[message.type];
    if (waiting && this.pending[waiting].length) {
      this.pending[waiting].shift().resolve(message);
    } else if (message.type === "error") {
      this.lastError = message;
      const queue = this.pending[message.ref];
      if (queue && queue.length) {
        const error = new Error(message.message || message.code);
        error.code = message.code;
        queue.shift().reject(error);
        return;
      }
    }
    this.onMessage(message);
  }

  setHeartbeat(seconds) {
    this.heartbeat = Math.max(1, Number(seconds) || 15);
    if (this.pingTimer) this.startPings();
  }

  startPings() {
    clearInterval(this.pingTimer);
    const every = Math.max(1000, (this.heartbeat * 1000) / 3);
    this.pingTimer = setInterval(() => {
      // A connection that says nothing (not even pong) for 2.5 heartbeats is dead even if the
      // browser has not noticed (a laptop waking from sleep, a NAT that forgot us).
      if (Date.now() - this.lastHeard > this.heartbeat * 2500) {
        const dead = this.ws;
        this.ws = null;
        if (dead) {
          try { dead.close(); } catch (error) { /* already closing */ }
        }
        this.dropped(1006);
        return;
      }
      this.sendNow({ type: "ping" });
    }, every);
  }

  dropped(code) {
    clearInterval(this.pingTimer);
    this.pingTimer = 0;
    this.ws = null;
    for (const queue of Object.values(this.pending)) {
      while (queue.length) {
        const error = new Error("closed");
        error.code = "closed";
        queue.shift().reject(error);
      }
    }
    if (this.stopped) {
      this.setState("closed", { code });
      return;
    }
    if (FINAL_CLOSE_CODES.has(code)) {
      this.stopped = true;
      this.setState("closed", { code, error: this.lastError });
      return;
    }
    const delay = Math.min(MAX_BACKOFF, 1000 * 2 ** this.attempt);
    this.attempt += 1;
    this.setState("reconnecting", { delay, attempt: this.attempt, code });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Drop the current socket and connect again at once (a peer connection that failed). */
  restart() {
    if (this.stopped) return;
    const old = this.ws;
    this.ws = null;
    if (old) {
      try { old.close(); } catch (error) { /* already closing */ }
    }
    clearTimeout(this.retryTimer);
    this.dropped(1006);
  }

  sendNow(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  /** Send if connected; what cannot be sent now is resent by the state after reconnecting. */
  send(message) {
    return this.sendNow(message);
  }

  /** Send `message` and wait for its answer (publish → publish_answer, subscribe → subscribe_offer). */
  request(message) {
    return new Promise((resolve, reject) => {
      const queue = this.pending[message.type];
      if (!this.sendNow(message)) {
        const error = new Error("not connected");
        error.code = "closed";
        reject(error);
        return;
      }
      queue.push({ resolve, reject });
    });
  }

  leave() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "leave" }));
      setTimeout(() => { try { ws.close(1000); } catch (error) { /* closed */ } }, 1500);
    }
    this.ws = null;
    this.setState("closed", { code: 1000 });
  }
}
