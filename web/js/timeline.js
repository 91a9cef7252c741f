// The timeline under the player: a ruler, every segment coloured by its state (live from the
// session WebSocket), the buffered range, marks on annotated frames (rotoscoping clicks) and
// the playhead. Click or drag to seek.

export const STATES = {
  ready: { color: "#2fbf71", label: "ready" },
  running: { color: "#f5a524", label: "rendering" },
  queued: { color: "#6e8cff", label: "queued" },
  idle: { color: "#3b414b", label: "not needed" },
  failed: { color: "#e5484d", label: "failed" },
};

const RULER = 18; // px, CSS
const BAR = 22;
const BUFFER = 4;
const MARK = "#ffd166"; // an annotated frame; hollow while its clicks are not applied yet

export class Timeline extends EventTarget {
  constructor(root) {
    super();
    this.root = root;
    this.canvas = root.querySelector("canvas");
    this.ctx = this.canvas.getContext("2d");
    this.states = [];
    this.segmentFrames = 1;
    this.frames = 0;
    this.fps = 30;
    this.frame = 0;
    this.buffered = [];
    this.marks = []; // [{frame, applied}]
    this.pending = false;
    new ResizeObserver(() => this.invalidate()).observe(root);
    root.addEventListener("pointerdown", (e) => this.drag(e));
  }

  /** A new render: its segment count and layout; every segment starts as not needed. */
  setRender({ segments, segment_frames: segmentFrames, frames, fps }) {
    this.states = new Array(segments).fill("idle");
    this.segmentFrames = segmentFrames;
    this.frames = frames;
    this.fps = fps;
    this.root.setAttribute("aria-valuemax", String(Math.max(0, frames - 1)));
    this.invalidate();
  }

  setStates(states) {
    this.states = states.slice();
    this.invalidate();
  }

  setState(index, state) {
    if (index < this.states.length) this.states[index] = state;
    this.invalidate();
  }

  /** Frames to mark (rotoscoping clicks): [{frame, applied}]. */
  setMarks(marks) {
    this.marks = marks;
    this.root.dataset.marks = marks.map((m) => m.frame).join(" ");
    this.invalidate();
  }

  setPlayhead(frame, buffered) {
    this.frame = frame;
    this.buffered = buffered;
    this.root.setAttribute("aria-valuenow", String(frame));
    this.root.setAttribute("aria-valuetext", `frame ${frame}, ${(frame / this.fps).toFixed(2)} s`);
    this.invalidate();
  }

  drag(event) {
    if (!this.frames || event.button !== 0) return;
    event.preventDefault();
    this.root.focus();
    this.root.setPointerCapture(event.pointerId);
    const seek = (e) => {
      const box = this.root.getBoundingClientRect();
      const x = Math.min(1, Math.max(0, (e.clientX - box.left) / box.width));
      this.dispatchEvent(new CustomEvent("seek", { detail: { frame: Math.floor(x * this.frames) } }));
    };
    const stop = () => {
      this.root.removeEventListener("pointermove", seek);
      this.root.removeEventListener("pointerup", stop);
      this.root.removeEventListener("pointercancel", stop);
    };
    seek(event);
    this.root.addEventListener("pointermove", seek);
    this.root.addEventListener("pointerup", stop);
    this.root.addEventListener("pointercancel", stop);
  }

  invalidate() {
    // the DOM keeps the states readable (tests, assistive tools); drawing waits for a frame
    this.root.dataset.states = this.states.join(" ");
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const ratio = window.devicePixelRatio || 1;
    const width = this.root.clientWidth;
    const height = RULER + BAR + BUFFER + 4;
    if (this.canvas.width !== Math.round(width * ratio)) {
      this.canvas.width = Math.round(width * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.canvas.style.height = `${height}px`;
    }
    const ctx = this.ctx;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!this.frames) return;
    const x = (frame) => (frame / this.frames) * width;

    // ruler: a tick every second, a label where there is room
    const seconds = this.frames / this.fps;
    const every = niceStep(seconds / Math.max(1, width / 70));
    ctx.fillStyle = "#8b93a1";
    ctx.font = "10px system-ui, 'Liberation Sans', sans-serif";
    ctx.textBaseline = "top";
    for (let t = 0; t <= seconds + 1e-6; t += every) {
      const px = Math.round(x(t * this.fps)) + 0.5;
      ctx.fillRect(px - 0.5, RULER - 6, 1, 6);
      if (px < width - 28) ctx.fillText(formatTime(t), px + 3, 2);
    }

    // segments
    const gap = width / this.states.length > 4 ? 1 : 0;
    this.states.forEach((state, k) => {
      const start = x(k * this.segmentFrames);
      const end = x(Math.min(this.frames, (k + 1) * this.segmentFrames));
      ctx.fillStyle = (STATES[state] ?? STATES.idle).color;
      ctx.fillRect(start, RULER, Math.max(1, end - start - gap), BAR);
    });

    // buffered
    ctx.fillStyle = "#dfe3ea";
    for (const [start, end] of this.buffered) {
      ctx.fillRect(x(start), RULER + BAR + 2, Math.max(1, x(end) - x(start)), BUFFER);
    }

    // annotated frames: a small tick hanging from the ruler into the bar
    ctx.strokeStyle = MARK;
    ctx.fillStyle = MARK;
    ctx.lineWidth = 1.5;
    for (const { frame, applied } of this.marks) {
      const mx = Math.round(x(frame + 0.5)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(mx - 4, RULER - 5);
      ctx.lineTo(mx + 4, RULER - 5);
      ctx.lineTo(mx, RULER + 2);
      ctx.closePath();
      if (applied) ctx.fill();
      else ctx.stroke();
      ctx.fillRect(mx - 0.5, RULER, 1, BAR * 0.5);
    }

    // playhead
    const px = Math.round(x(this.frame + 0.5));
    ctx.fillStyle = "#ff5c5c";
    ctx.fillRect(px - 1, RULER - 2, 2, BAR + BUFFER + 6);
    ctx.beginPath();
    ctx.moveTo(px - 5, RULER - 8);
    ctx.lineTo(px + 5, RULER - 8);
    ctx.lineTo(px, RULER - 2);
    ctx.fill();
  }
}

function niceStep(x) {
  for (const step of [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (step >= x) return step;
  return 1200;
}

export function formatTime(seconds) {
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  const decimals = Math.abs(s - Math.round(s)) > 1e-6 ? 1 : 0;
  return `${m}:${s.toFixed(decimals).padStart(decimals ? 4 : 2, "0")}`;
}
