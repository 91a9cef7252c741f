// The session WebSocket (WS /api/sessions): we report the playhead, the server pushes the
// state of every segment of the watched render and its stats. Reconnects on its own.

const REPORT_EVERY_MS = 500; // while playing; the server's deadlines move with these reports

export class Session extends EventTarget {
  constructor(url = defaultUrl()) {
    super();
    this.url = url;
    this.render = null;
    this.last = null; // last playhead report, resent after a reconnect
    this.ws = null;
    this.retryMs = 250;
    this.timer = null; // the next report while playing
    this.connect();
  }

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.retryMs = 250;
      if (this.render) this.send({ type: "watch", render: this.render });
      if (this.last) this.send(this.last);
      this.emit("open", {});
    };
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.emit("close", {});
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    };
  }

  receive(msg) {
    // segment states of a render we stopped watching may still be in flight: drop them
    if ((msg.type === "render" || msg.type === "segment") && msg.render !== this.render) return;
    if (msg.type === "error") console.warn("session:", msg.message);
    this.emit(msg.type, msg);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  watch(render) {
    this.render = render;
    this.last = null;
    this.send({ type: "watch", render });
  }

  /** Stop watching: a fresh connection, so the server drops this viewer at once. */
  unwatch() {
    clearTimeout(this.timer);
    this.render = null;
    this.last = null;
    const old = this.ws;
    this.connect();
    old.close();
  }

  /**
   * Report the playhead from `state()` ({frame, playing, rate}) now, and every 500 ms after
   * while it says playing. Call on play, pause, seek and rate change.
   */
  report(state) {
    const { frame, playing, rate } = state();
    this.last = { type: "playhead", frame: Math.max(0, frame), playing, rate: Math.max(0, rate) };
    this.send(this.last);
    clearTimeout(this.timer);
    if (playing) this.timer = setTimeout(() => this.report(state), REPORT_EVERY_MS);
  }
}

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/sessions`;
}
