// The HUD over the player: the viewer's own measurements and the server's render stats.

const ROWS = [
  ["buffer", "Buffer ahead"],
  ["stalls", "Stalls"],
  ["startup", "Startup"],
  ["seek", "Seek → first frame"],
  ["fps", "Server render"],
  ["busy", "Workers busy"],
  ["jobs", "Jobs"],
];

export class Hud {
  constructor(root, button, qoe) {
    this.root = root;
    this.button = button;
    this.qoe = qoe;
    this.server = null;
    this.effect = null;
    this.timer = 0;
    this.cells = {};
    const list = document.createElement("dl");
    for (const [key, label] of ROWS) {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = "–";
      dd.dataset.key = key;
      list.append(dt, dd);
      this.cells[key] = dd;
    }
    root.append(list);
    button.addEventListener("click", () => this.toggle());
  }

  toggle(show = this.root.hidden) {
    this.root.hidden = !show;
    this.button.setAttribute("aria-pressed", String(show));
    clearInterval(this.timer);
    if (show) {
      this.update();
      this.timer = setInterval(() => this.update(), 250);
    }
  }

  setServerStats(stats) {
    this.server = stats;
  }

  setEffect(name) {
    this.effect = name;
  }

  update() {
    const q = this.qoe.snapshot();
    const ms = (x) => (x === null ? "–" : `${x} ms`);
    this.cells.buffer.textContent = `${q.bufferAheadS.toFixed(1)} s`;
    this.cells.stalls.textContent = `${q.stalls} · ${(q.stallMs / 1000).toFixed(2)} s`;
    const startup = ms(q.startupMs);
    this.cells.startup.textContent = q.switchMs === null ? startup : `${startup} · switch ${ms(q.switchMs)}`;
    this.cells.seek.textContent = ms(q.seekMs);
    const s = this.server;
    if (!s) return;
    const fps = s.render_fps?.[this.effect];
    this.cells.fps.textContent = fps === undefined ? "–" : `${fps} fps/worker`;
    const busy = s.busy?.length ? s.busy.reduce((a, b) => a + b, 0) / s.busy.length : 0;
    this.cells.busy.textContent = `${Math.round(busy * 100)} % of ${s.workers}`;
    const jobs = s.jobs ?? {};
    this.cells.jobs.textContent = `${jobs.running ?? 0} running · ${jobs.queued ?? 0} queued`;
  }
}
