// One clip's rotoscoping: the clicks on each annotated frame (include and exclude points, an
// optional box, all in frame pixels), their undo/redo history, and the prompts last applied
// to the video. Pure data: no DOM, no requests.

export const MAX_POINTS = 64; // per frame, as the mask endpoint accepts
const MAX_HISTORY = 500;

/** A frame's clicks: {points: [{x, y, label}], box: [x0, y0, x1, y1] | null}. */
export function emptyPrompt() {
  return { points: [], box: null };
}

/** A prompt as the server takes it: no box key when there is no box. */
export function promptBody({ points, box }) {
  return box ? { points, box } : { points };
}

/** The prompts of a render's params in one comparable form (the server adds defaults). */
export function promptsKey(prompts) {
  const r = (v) => Math.round(v * 10) / 10;
  return JSON.stringify(
    [...(prompts ?? [])]
      .map((p) => [
        p.frame,
        p.points.map((q) => [r(q.x), r(q.y), q.label ?? 1]),
        p.box ? p.box.map(r) : null,
      ])
      .sort((a, b) => a[0] - b[0]),
  );
}

export class RotoSession {
  constructor() {
    this.frames = new Map(); // frame → prompt, only frames with a point or a box
    this.done = []; // [{frame, before, after}], the last one undone first
    this.undone = [];
    this.applied = []; // the prompts of the last roto render put on screen
  }

  get(frame) {
    return this.frames.get(frame) ?? null;
  }

  /** Frame numbers with clicks, in order. */
  annotated() {
    return [...this.frames.keys()].sort((a, b) => a - b);
  }

  /** Every annotated frame's prompt, as the `roto` effect's `prompts` param. */
  prompts() {
    return this.annotated().map((frame) => ({ frame, ...promptBody(this.frames.get(frame)) }));
  }

  /** Frames whose clicks differ from what the video shows (not applied yet). */
  changed() {
    const applied = new Map(this.applied.map((p) => [p.frame, promptsKey([p])]));
    const out = new Set();
    for (const frame of new Set([...this.frames.keys(), ...applied.keys()])) {
      const now = this.frames.has(frame) ? promptsKey([{ frame, ...this.frames.get(frame) }]) : null;
      if (now !== (applied.get(frame) ?? null)) out.add(frame);
    }
    return out;
  }

  isApplied() {
    return promptsKey(this.prompts()) === promptsKey(this.applied);
  }

  addPoint(frame, point) {
    const before = this.get(frame) ?? emptyPrompt();
    if (before.points.length >= MAX_POINTS) return false;
    this.change(frame, { ...before, points: [...before.points, point] });
    return true;
  }

  setBox(frame, box) {
    this.change(frame, { ...(this.get(frame) ?? emptyPrompt()), box });
    return true;
  }

  clear(frame) {
    if (!this.frames.has(frame)) return false;
    this.change(frame, null);
    return true;
  }

  change(frame, after) {
    this.done.push({ frame, before: this.get(frame), after });
    if (this.done.length > MAX_HISTORY) this.done.shift();
    this.undone = [];
    this.put(frame, after);
  }

  /** Undo the last change; the frame it touched, or null when there is nothing to undo. */
  undo() {
    const step = this.done.pop();
    if (!step) return null;
    this.undone.push(step);
    this.put(step.frame, step.before);
    return step.frame;
  }

  redo() {
    const step = this.undone.pop();
    if (!step) return null;
    this.done.push(step);
    this.put(step.frame, step.after);
    return step.frame;
  }

  put(frame, prompt) {
    if (prompt && (prompt.points.length || prompt.box)) this.frames.set(frame, prompt);
    else this.frames.delete(frame);
  }
}
