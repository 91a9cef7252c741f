// Masks from clicks, fetched from the server (POST …/frames/{n}/mask) and kept as bitmaps.
//
// One request per frame at a time: clicks made while one is on the wire are coalesced, and
// when it returns the latest clicks are asked for next. Answers are kept by the exact clicks
// they answer, so an answer that arrives late never replaces a newer one on screen, and undo
// shows a mask seen before at once.

import { requestMask } from "./api.js";
import { promptBody } from "./roto-session.js";

const KEEP = 48; // decoded masks kept (a 1080p one is 8 MB as a bitmap)
const RETRY_MS = 3000; // the same clicks are asked for again this long after a failure

export class MaskFetcher extends EventTarget {
  constructor(asset) {
    super();
    this.asset = asset;
    this.masks = new Map(); // key → ImageBitmap, least recently used first
    this.errors = new Map(); // key → {message, at}
    this.wanted = new Map(); // frame → {key, body}: the clicks to ask for next
    this.inflight = new Map(); // frame → key
    this.seen = new Set(); // frames answered once: their embedding is on the server
    this.closed = false;
  }

  static key(frame, prompt) {
    return `${frame}:${JSON.stringify(promptBody(prompt))}`;
  }

  /** The mask for these clicks on `frame`: {mask, pending, first, error}; asks if need be. */
  get(frame, prompt) {
    const key = MaskFetcher.key(frame, prompt);
    const mask = this.masks.get(key);
    if (mask) {
      this.masks.delete(key); // most recently used
      this.masks.set(key, mask);
      return { mask, pending: false, first: false, error: null };
    }
    const failed = this.errors.get(key);
    const error = failed && performance.now() - failed.at < RETRY_MS ? failed.message : null;
    if (!error) {
      this.wanted.set(frame, { key, body: promptBody(prompt) });
      if (!this.inflight.has(frame)) this.fetch(frame);
    }
    return { mask: null, pending: !error, first: !this.seen.has(frame), error };
  }

  async fetch(frame) {
    const { key, body } = this.wanted.get(frame);
    this.wanted.delete(frame);
    this.inflight.set(frame, key);
    try {
      const answer = await requestMask(this.asset, frame, body);
      const bytes = Uint8Array.from(atob(answer.png), (c) => c.charCodeAt(0));
      const blob = new Blob([bytes], { type: "image/png" });
      const bitmap = await createImageBitmap(blob, {
        premultiplyAlpha: "none",
        colorSpaceConversion: "none",
      });
      if (this.closed) return;
      this.masks.set(key, bitmap);
      this.errors.delete(key);
      this.seen.add(frame);
      // dropped, not closed: the compositor may still hold one (the garbage collector frees it)
      while (this.masks.size > KEEP) this.masks.delete(this.masks.keys().next().value);
    } catch (err) {
      this.errors.set(key, { message: err.message, at: performance.now() });
    } finally {
      this.inflight.delete(frame);
      if (!this.closed) {
        const next = this.wanted.get(frame);
        if (next && !this.masks.has(next.key)) this.fetch(frame);
        this.dispatchEvent(new CustomEvent("mask", { detail: { frame, key } }));
      }
    }
  }

  /** Another clip is open: answers still on their way are dropped. */
  close() {
    this.closed = true;
    this.masks.clear();
  }
}
