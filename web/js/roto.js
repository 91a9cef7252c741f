// Rotoscoping mode (the `roto` effect): pause, click the subject, see its mask at once, apply
// the clicks to the whole video.
//
// A click on the paused picture adds an include point (Alt+click, right-click or the Exclude
// toggle: an exclude point); a drag draws a box. After each click the mask endpoint answers
// for the frame's clicks and the compositor shows that mask (tinted over the picture, alone,
// or composited over the background). "Apply to video" asks for the `roto` render of every
// annotated frame's clicks; a click on another frame is a correction there, applied the same
// way. Clicks are undoable per clip for the page's life.
//
// The picture's canvas is exactly the picture's shape (main.js lays it out; the stage
// letterboxes around it), so frame pixels are the pointer's place in the canvas's box times
// the frame's size.

import { MaskFetcher } from "./roto-masks.js";
import { MAX_POINTS, RotoSession, promptsKey } from "./roto-session.js";

export const ROTO = "roto";
const DRAG_PX = 5; // a press that moves further than this draws a box
const QUIET_MS = 300; // a quick answer shows no progress at all
const INCLUDE = "#2fbf71";
const EXCLUDE = "#e5484d";
const MATTE_VIEWS = ["mask", "overlay", "composite"];
const RENDERS_KEPT = 32;

export class RotoMode extends EventTarget {
  constructor({ root, canvas, marks, busy, compositor, player, timeline }) {
    super();
    this.root = root;
    this.canvas = canvas;
    this.marks = marks;
    this.busy = busy;
    this.compositor = compositor;
    this.player = player;
    this.timeline = timeline;
    this.active = false;
    this.asset = null;
    this.sessions = new Map(); // asset id → RotoSession
    this.session = new RotoSession();
    this.masks = null;
    this.prompted = new Map(); // render id → Map(frame → its clicks' key) ({} for the source)
    this.showing = null; // the render whose frame is on screen
    this.applying = null; // the prompts of an "Apply" on the wire
    this.drag = null;
    this.shown = null; // {frame, mask} last put on screen
    this.busyTimer = 0;
    this.listed = null; // what the annotated frames' list shows

    const $ = (sel) => root.querySelector(sel);
    this.status = $("#roto-status");
    this.list = $("#roto-frames");
    this.buttons = {
      undo: $("#roto-undo"),
      redo: $("#roto-redo"),
      clear: $("#roto-clear"),
      apply: $("#roto-apply"),
    };
    this.buttons.undo.addEventListener("click", () => this.undo());
    this.buttons.redo.addEventListener("click", () => this.redo());
    this.buttons.clear.addEventListener("click", () => this.clearFrame());
    this.buttons.apply.addEventListener("click", () => this.apply());
    root.addEventListener("change", (e) => {
      if (e.target.name === "matte-view") this.setMatteView(e.target.value);
    });
    this.list.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-frame]");
      if (button) this.goTo(Number(button.dataset.frame));
    });

    canvas.addEventListener("pointerdown", (e) => this.press(e));
    canvas.addEventListener("contextmenu", (e) => this.active && e.preventDefault());
    document.addEventListener("keydown", (e) => this.key(e));
    new ResizeObserver(() => this.drawMarks()).observe(canvas);
  }

  // --- what main.js tells us ------------------------------------------------------------

  setActive(on) {
    if (on === this.active) return;
    this.active = on;
    this.root.hidden = !on;
    this.canvas.classList.toggle("clicking", on);
    this.compositor.setMatteView(on ? this.matteView() : "rendered");
    this.update();
  }

  /** The clip now open (null for none): its own clicks, kept while the page lives. */
  open(asset) {
    this.masks?.close();
    this.masks = null;
    this.asset = asset;
    this.shown = null;
    this.applying = null;
    if (asset) {
      if (!this.sessions.has(asset.id)) this.sessions.set(asset.id, new RotoSession());
      this.session = this.sessions.get(asset.id);
      this.masks = new MaskFetcher(asset.id);
      this.masks.addEventListener("mask", () => this.refresh());
    } else {
      this.session = new RotoSession();
    }
    this.update();
  }

  /** The prompts the next render of the roto effect takes (an "Apply" on the wire wins). */
  applied() {
    return this.applying ?? this.session.applied;
  }

  /** A render goes on screen: in roto mode, it shows these prompts (the source shows none). */
  rendered(render) {
    if (!this.active || render.asset !== this.asset?.id) return;
    const prompts = render.effect === ROTO ? render.params.prompts : [];
    this.prompted.delete(render.id);
    this.prompted.set(render.id, new Map(prompts.map((p) => [p.frame, promptsKey([p])])));
    while (this.prompted.size > RENDERS_KEPT) this.prompted.delete(this.prompted.keys().next().value);
    this.applying = null;
    this.session.applied = prompts;
    this.update();
  }

  /** A frame of render `id` is about to be drawn. */
  presented(id) {
    this.showing = id;
    this.refresh();
  }

  /** Asking for the render failed: the clicks stay as they are, not applied. */
  failed(message) {
    if (!this.applying) return;
    this.applying = null;
    this.update();
    this.say(`Apply failed: ${message}`, true);
  }

  // --- clicks -----------------------------------------------------------------------------

  /** The frame clicks go to: the one on screen, while paused. */
  frame() {
    return this.active && this.player.source && !this.player.playing ? this.player.frame : null;
  }

  press(e) {
    // clicks go to the processed view (the original shows no mask; the wipe is dragged)
    if (!this.active || !this.asset || this.compositor.view !== "processed") return;
    if (e.button !== 0 && e.button !== 2) return;
    e.preventDefault();
    if (this.player.playing) return this.player.pause(); // the first click stops the picture
    const frame = this.frame();
    const at = this.toFrame(e, false);
    if (frame === null || !at) return;
    const exclude = e.button === 2 || e.altKey || this.label() === 0;
    this.drag = { frame, from: at, to: at, x: e.clientX, y: e.clientY, box: false, exclude };
    this.canvas.setPointerCapture(e.pointerId);
    const move = (ev) => {
      if (!this.drag) return;
      this.drag.to = this.toFrame(ev, true);
      this.drag.box ||= Math.hypot(ev.clientX - this.drag.x, ev.clientY - this.drag.y) > DRAG_PX;
      this.drawMarks();
    };
    const end = (ev) => {
      this.canvas.removeEventListener("pointermove", move);
      this.canvas.removeEventListener("pointerup", end);
      this.canvas.removeEventListener("pointercancel", end);
      const drag = this.drag;
      this.drag = null;
      if (ev.type === "pointerup" && drag) this.release(drag, this.toFrame(ev, true));
      else this.drawMarks();
    };
    this.canvas.addEventListener("pointermove", move);
    this.canvas.addEventListener("pointerup", end);
    this.canvas.addEventListener("pointercancel", end);
  }

  release(drag, to) {
    const { frame, from } = drag;
    if (drag.box) {
      const box = [
        Math.min(from.x, to.x), Math.min(from.y, to.y), Math.max(from.x, to.x), Math.max(from.y, to.y),
      ];
      if (box[2] - box[0] < 1 || box[3] - box[1] < 1) return this.drawMarks();
      this.session.setBox(frame, box);
    } else if (!this.session.addPoint(frame, { x: from.x, y: from.y, label: drag.exclude ? 0 : 1 })) {
      return this.say(`At most ${MAX_POINTS} clicks on one frame.`, true);
    }
    this.update();
  }

  /** A pointer event's place in frame pixels (null outside the picture unless `clamp`). */
  toFrame(e, clamp) {
    const box = this.canvas.getBoundingClientRect();
    let u = (e.clientX - box.left) / box.width;
    let v = (e.clientY - box.top) / box.height;
    if (!clamp && (u < 0 || u >= 1 || v < 0 || v >= 1)) return null;
    u = Math.min(Math.max(u, 0), 1);
    v = Math.min(Math.max(v, 0), 1);
    const { width, height } = this.asset;
    const r = (x, size) => Math.min(Math.round(x * size * 10) / 10, size - 0.1);
    return { x: r(u, width), y: r(v, height) };
  }

  label() {
    return Number(this.root.querySelector("input[name=roto-label]:checked").value);
  }

  matteView() {
    return this.root.querySelector("input[name=matte-view]:checked").value;
  }

  setMatteView(view) {
    this.root.querySelector(`input[name=matte-view][value=${view}]`).checked = true;
    if (this.active) this.compositor.setMatteView(view);
  }

  undo() {
    this.show(this.session.undo());
  }

  redo() {
    this.show(this.session.redo());
  }

  clearFrame() {
    const frame = this.frame();
    if (frame !== null && this.session.clear(frame)) this.update();
  }

  /** After an undo or a redo: the frame it touched, on screen. */
  show(frame) {
    if (frame === null) return;
    if (frame !== this.player.frame || this.player.playing) this.goTo(frame);
    this.update();
  }

  goTo(frame) {
    this.player.pause();
    this.player.seek(frame);
  }

  apply() {
    const problem = this.problem();
    if (problem) return this.say(problem, true);
    this.applying = this.session.prompts();
    this.update();
    this.dispatchEvent(new CustomEvent("apply", { detail: { prompts: this.applying } }));
    this.setMatteView("composite"); // the result, over the background
  }

  /** Why the clicks cannot be applied as they are, or "". */
  problem() {
    for (const p of this.session.prompts()) {
      if (!p.box && !p.points.some((q) => q.label === 1)) {
        return `Frame ${p.frame} has only exclude clicks: add an include click or a box.`;
      }
    }
    return "";
  }

  key(e) {
    if (!this.active || e.defaultPrevented) return;
    if (e.target.closest?.("input:not([type=radio]):not([type=range]), select, textarea, dialog[open]")) {
      return; // text fields keep their own undo
    }
    const mod = e.ctrlKey || e.metaKey;
    const k = e.key.toLowerCase();
    let action = null;
    if (mod && !e.altKey && k === "z") action = e.shiftKey ? () => this.redo() : () => this.undo();
    else if (mod && !e.altKey && k === "y") action = () => this.redo();
    else if (!mod && !e.altKey && k === "x") action = () => this.toggleLabel();
    else if (!mod && !e.altKey && k === "m") action = () => this.cycleMatteView();
    if (!action) return;
    e.preventDefault();
    action();
  }

  toggleLabel() {
    const next = this.label() === 1 ? "0" : "1";
    this.root.querySelector(`input[name=roto-label][value="${next}"]`).checked = true;
    this.say(next === "1" ? "Clicks include." : "Clicks exclude.");
  }

  cycleMatteView() {
    const i = MATTE_VIEWS.indexOf(this.matteView());
    this.setMatteView(MATTE_VIEWS[(i + 1) % MATTE_VIEWS.length]);
  }

  // --- what is on screen ------------------------------------------------------------------

  /** The clicks changed (or what shows them): panel, timeline, mask and marks. */
  update() {
    const session = this.session;
    const changed = session.changed();
    this.timeline.setMarks(
      this.active ? session.annotated().map((frame) => ({ frame, applied: !changed.has(frame) })) : [],
    );
    this.buttons.undo.disabled = !session.done.length;
    this.buttons.redo.disabled = !session.undone.length;
    this.buttons.apply.disabled =
      !this.asset || Boolean(this.applying) || !changed.size || Boolean(this.problem());
    this.listFrames(changed);
    this.root.dataset.applied = String(!changed.size);
    this.refresh();
  }

  summary(changed = this.session.changed()) {
    if (this.applying) return "Applying to the video…";
    const problem = this.problem();
    if (problem) return problem;
    const n = this.session.annotated().length;
    if (!n && !changed.size) return "Pause, then click the subject.";
    if (!changed.size) return "Applied to the video.";
    if (!this.session.applied.length) return "Apply to cut it out through the whole video.";
    const frames = changed.size === 1 ? "1 frame" : `${changed.size} frames`;
    return `${frames} changed since the last apply.`;
  }

  listFrames(changed) {
    const frames = this.session.annotated();
    const signature = JSON.stringify([frames.map((f) => this.session.get(f)), [...changed]]);
    if (signature === this.listed) return; // unchanged: a focused entry keeps its focus
    this.listed = signature;
    this.list.replaceChildren(...frames.map((frame) => this.entry(frame, changed)));
  }

  /** One annotated frame in the list: a button that goes there. */
  entry(frame, changed) {
    const { points, box } = this.session.get(frame);
    const include = points.filter((p) => p.label === 1).length;
    const parts = [`${include} include`, `${points.length - include} exclude`];
    if (box) parts.push("box");
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.frame = String(frame);
    const title = document.createElement("span");
    title.className = "frame-title";
    title.textContent = `Frame ${frame}`;
    button.append(title);
    const detail = document.createElement("small");
    detail.textContent = parts.join(" · ") + (changed.has(frame) ? " · not applied" : "");
    button.append(detail);
    button.setAttribute("aria-label", `Frame ${frame}: ${detail.textContent}`);
    li.append(button);
    return li;
  }

  /**
   * Put the right mask under the picture: the clicks' mask on a paused annotated frame whose
   * clicks the video does not show yet, else none (the render's own matte shows).
   */
  refresh() {
    if (!this.active) {
      this.compositor.setMask(null);
      this.progress(null, null);
      this.drawMarks();
      return;
    }
    const frame = this.frame();
    const prompt = frame === null ? null : this.session.get(frame);
    this.buttons.clear.disabled = !prompt;
    for (const button of this.list.querySelectorAll("button")) {
      if (Number(button.dataset.frame) === frame) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
    let state = "none";
    let mask = null;
    let pending = null;
    let message = null;
    // the render on screen shows other clicks on this frame (or none): show the clicks' own
    // mask; where it shows these very clicks, its matte is the truth (feather and all)
    const rendered = this.prompted.get(this.showing)?.get(frame);
    if (prompt && this.masks && rendered !== promptsKey([{ frame, ...prompt }])) {
      const got = this.masks.get(frame, prompt);
      if (got.mask) {
        state = "shown";
        mask = got.mask;
        this.shown = { frame, mask };
      } else {
        state = got.error ? "error" : "pending";
        if (this.shown?.frame === frame) mask = this.shown.mask; // until the new one comes
        if (got.error) message = `Mask: ${got.error}`;
        else pending = got.first;
      }
      this.root.dataset.maskPoints = String(prompt.points.length);
    }
    this.root.dataset.mask = state;
    this.root.dataset.maskFrame = String(frame ?? -1);
    this.compositor.setMask(mask);
    this.progress(frame, pending);
    if (message) this.say(message, true);
    else if (pending) this.say(`Analysing frame ${frame}… The first click on a frame takes a few seconds.`);
    else this.say(this.summary());
    this.drawMarks();
  }

  /** "Analysing frame…" while the first answer for a frame is coming; later ones if slow. */
  progress(frame, first) {
    const busy = first !== null;
    this.root.setAttribute("aria-busy", String(busy));
    if (!busy || first) {
      clearTimeout(this.busyTimer);
      this.busyTimer = 0;
    }
    if (!busy) return (this.busy.hidden = true);
    const show = () => {
      this.busyTimer = 0;
      this.busy.querySelector(".text").textContent = first
        ? `Analysing frame ${frame}…`
        : "Updating the mask…";
      this.busy.hidden = false;
    };
    if (first) show();
    else if (this.busy.hidden && !this.busyTimer) this.busyTimer = setTimeout(show, QUIET_MS);
  }

  say(text, error = false) {
    if (this.status.textContent === text && this.status.classList.contains("error") === error) return;
    this.status.textContent = text;
    this.status.classList.toggle("error", error);
  }

  /** Point markers (green include, red exclude), the box, and the box being drawn. */
  drawMarks() {
    const canvas = this.marks;
    const ratio = window.devicePixelRatio || 1;
    const width = this.canvas.clientWidth;
    const height = this.canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const frame = this.frame();
    if (frame === null || !this.asset || this.compositor.view !== "processed") return;
    const sx = width / this.asset.width;
    const sy = height / this.asset.height;
    const prompt = this.session.get(frame);
    const rect = (box, colour) => {
      ctx.setLineDash([5, 4]);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = colour;
      ctx.strokeRect(box[0] * sx, box[1] * sy, (box[2] - box[0]) * sx, (box[3] - box[1]) * sy);
      ctx.setLineDash([]);
    };
    if (prompt?.box) rect(prompt.box, "#ffd166");
    for (const p of prompt?.points ?? []) {
      const x = p.x * sx;
      const y = p.y * sy;
      ctx.beginPath();
      ctx.arc(x, y, 7, 0, 2 * Math.PI);
      ctx.fillStyle = p.label ? INCLUDE : EXCLUDE;
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
      ctx.beginPath(); // + or −, for those who do not tell green from red
      ctx.moveTo(x - 3.5, y);
      ctx.lineTo(x + 3.5, y);
      if (p.label) {
        ctx.moveTo(x, y - 3.5);
        ctx.lineTo(x, y + 3.5);
      }
      ctx.stroke();
    }
    const drag = this.drag;
    if (drag?.box && drag.frame === frame) {
      const { from, to } = drag;
      rect([Math.min(from.x, to.x), Math.min(from.y, to.y), Math.max(from.x, to.x),
        Math.max(from.y, to.y)], "#fff");
    }
  }
}
