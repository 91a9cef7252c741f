// The player: hls.js feeds a hidden <video>; every presented frame is announced (with its
// frame number, on requestVideoFrameCallback) so the compositor can draw it.
//
// Frame maths: frame n is presented at n / fps, so the frame on screen is
// Math.round(mediaTime × fps), and a seek targets the middle of the frame, (n + 0.5) / fps,
// so that rounding on either side still lands on n.
//
// Reverse shuttle (J): browsers refuse negative playbackRate, so it is emulated by seeking
// backwards on a timer. It keeps the requested speed by skipping frames when a seek takes
// longer than a frame, so it is smooth only as far as seeks are fast.

import Hls from "/vendor/hls.mjs";

const HLS_CONFIG = {
  enableWorker: false, // fMP4 needs no transmuxing: no worker to ship with the ESM build
  maxBufferLength: 8, // seconds ahead: the server renders just in time, so no need to hoard
  maxMaxBufferLength: 16,
  backBufferLength: 8,
  // a segment not rendered yet is held by the server up to 20 s before a 503
  fragLoadPolicy: {
    default: {
      maxTimeToFirstByteMs: 25000,
      maxLoadTimeMs: 60000,
      timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
      errorRetry: { maxNumRetry: 8, retryDelayMs: 250, maxRetryDelayMs: 4000 },
    },
  },
};

const MAX_RECOVERIES = 5; // fatal errors in a row before the player gives up and says so

/** One hls.js pipeline into one <video>; reports every presented frame. */
class Stream extends EventTarget {
  constructor(video) {
    super();
    this.video = video;
    this.hls = null;
    this.fps = 30;
    this.callback = 0;
    this.failures = 0;
  }

  load(url, fps, startFrame) {
    this.unload();
    this.fps = fps;
    const hls = new Hls({ ...HLS_CONFIG, startPosition: (startFrame + 0.5) / fps });
    this.hls = hls;
    hls.on(Hls.Events.ERROR, (_, data) => this.recover(hls, data));
    hls.on(Hls.Events.MEDIA_ATTACHED, () => this.dispatchEvent(new Event("attached")));
    hls.on(Hls.Events.FRAG_BUFFERED, () => (this.failures = 0));
    this.failures = 0;
    hls.attachMedia(this.video);
    hls.loadSource(url);
    this.watchFrames();
  }

  unload() {
    if (this.callback) this.video.cancelVideoFrameCallback(this.callback);
    this.callback = 0;
    this.hls?.destroy();
    this.hls = null;
  }

  watchFrames() {
    const onFrame = (_now, meta) => {
      this.callback = this.video.requestVideoFrameCallback(onFrame);
      // By the time this runs the element may already hold a newer frame than `meta` names
      // (seen while seeking fast and under load). Take that frame itself, so the number and
      // the pixels drawn are always the same frame.
      let picture = this.video;
      let time = meta.mediaTime;
      try {
        picture = new VideoFrame(this.video);
        time = picture.timestamp / 1e6;
      } catch {
        // no WebCodecs, or no frame yet: the callback's own numbers
      }
      const frame = Math.round(time * this.fps);
      const detail = { frame, picture, video: this.video };
      try {
        this.dispatchEvent(new CustomEvent("frame", { detail })); // listeners draw it now
      } finally {
        if (picture !== this.video) picture.close();
      }
    };
    this.callback = this.video.requestVideoFrameCallback(onFrame);
  }

  recover(hls, data) {
    if (!data.fatal || hls !== this.hls) return;
    this.failures += 1;
    if (this.failures > MAX_RECOVERIES) {
      const detail = { message: `${data.details}; giving up after ${MAX_RECOVERIES} retries` };
      this.dispatchEvent(new CustomEvent("error", { detail }));
    } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      hls.startLoad(this.video.currentTime); // the server answers again: carry on from here
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else {
      this.dispatchEvent(new CustomEvent("error", { detail: { message: data.details } }));
    }
  }
}

export class Player extends EventTarget {
  constructor(video, originalVideo) {
    super();
    this.video = video;
    this.main = new Stream(video);
    this.original = new Stream(originalVideo); // the source, slaved to the main clock
    this.withOriginal = false;
    this.source = null; // {url, original, fps, frames, stacked, render}
    this.frame = 0; // the frame on screen
    this.target = null; // a seek in flight: the frame it goes to
    this.landed = false; // the seek in flight has landed ("seeked"); its frame comes next
    this.queued = null; // the latest seek asked for while one was in flight
    this.playing = false; // the user's intent, true while shuttling backwards too
    this.rate = 1;
    this.reverseTimer = 0;

    this.main.addEventListener("frame", (e) => this.presented(e.detail));
    this.main.addEventListener("error", (e) => this.emit("error", e.detail));
    this.original.addEventListener("frame", (e) => this.emit("original-frame", e.detail));
    video.addEventListener("seeked", () => this.seeked());
    video.addEventListener("ended", () => this.setPlaying(false));
    this.main.addEventListener("attached", () => {
      if (this.playing && this.rate > 0) video.play().catch(() => {});
    });
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  get fps() {
    return this.source?.fps ?? 30;
  }

  get frames() {
    return this.source?.frames ?? 0;
  }

  /** Play `source` from `frame`; keeps the last picture on screen until the new one comes. */
  load(source, frame = 0, playing = false) {
    this.stopReverse();
    this.source = source;
    this.frame = clamp(frame, 0, source.frames - 1);
    this.target = this.frame;
    this.landed = false;
    this.queued = null;
    this.main.load(source.url, source.fps, this.frame);
    if (this.withOriginal) this.original.load(source.original, source.fps, this.frame);
    this.emit("load", { source, frame: this.frame });
    this.setPlaying(playing, this.rate);
  }

  /** Follow the untouched source too (for the original and wipe views), or stop. */
  showOriginal(on) {
    if (on === this.withOriginal) return;
    this.withOriginal = on;
    if (!on) return this.original.unload();
    if (this.source) this.original.load(this.source.original, this.fps, this.frame);
    this.syncOriginal(true);
  }

  presented({ frame, picture, video }) {
    this.frame = frame;
    // the seek is over once its frame is shown, or once it landed (and nothing is queued)
    if (frame === this.target || (this.landed && this.queued === null)) this.target = null;
    if (this.playing && this.rate > 0) this.syncOriginal(false);
    this.emit("frame", { frame, picture, video, source: this.source });
  }

  // --- transport ------------------------------------------------------------------------

  toggle() {
    this.setPlaying(!this.playing, this.rate === 0 ? 1 : this.rate);
  }

  play(rate = this.rate || 1) {
    this.setPlaying(true, rate);
  }

  pause() {
    this.setPlaying(false);
  }

  setPlaying(playing, rate = this.rate) {
    if (!this.source) return;
    this.stopReverse();
    this.playing = playing;
    this.rate = rate;
    if (playing && rate > 0) {
      if (this.frame >= this.frames - 1) this.seek(0);
      this.video.playbackRate = rate;
      this.video.play().catch(() => {}); // a play() cut short by a pause or a new source
    } else {
      this.video.pause();
      if (playing && rate < 0) this.startReverse();
    }
    this.syncOriginal(true);
    this.emit("state", { playing, rate });
  }

  /** J/K/L: K stops; L goes forward 1×, 2×; J backward −1×, −2×. */
  shuttle(direction) {
    if (direction === 0) return this.setPlaying(false, 1);
    const current = this.playing ? this.rate : 0;
    const same = Math.sign(current) === direction;
    const rate = same ? clamp(current * 2, -2, 2) : direction;
    this.setPlaying(true, rate);
  }

  seek(frame, { user = true } = {}) {
    if (!this.source) return;
    frame = clamp(Math.round(frame), 0, this.frames - 1);
    this.target = frame;
    this.landed = false;
    if (user) this.emit("seek", { frame });
    if (this.video.seeking) {
      this.queued = frame; // latest wins: go there when the seek in flight lands
      return;
    }
    this.video.currentTime = (frame + 0.5) / this.fps;
    this.syncOriginal(true);
  }

  seeked() {
    this.landed = true;
    if (this.queued === null) return;
    const frame = this.queued;
    this.queued = null;
    this.video.currentTime = (frame + 0.5) / this.fps;
    this.syncOriginal(true);
  }

  /** Exactly one frame (or more) from the frame on screen, or from the seek in flight. */
  step(delta) {
    if (this.playing) this.setPlaying(false);
    this.seek((this.target ?? this.frame) + delta);
  }

  // --- reverse shuttle ------------------------------------------------------------------

  startReverse() {
    let last = performance.now() - 1000 / this.fps;
    const tick = () => {
      const now = performance.now();
      if (!this.video.seeking) {
        const back = Math.max(1, Math.round((-this.rate * this.fps * (now - last)) / 1000));
        last = now;
        const to = (this.target ?? this.frame) - back;
        this.seek(Math.max(0, to), { user: false });
        if (to <= 0) return this.setPlaying(false, 1);
      }
      this.reverseTimer = setTimeout(tick, 1000 / (this.fps * -this.rate));
    };
    tick();
  }

  stopReverse() {
    clearTimeout(this.reverseTimer);
    this.reverseTimer = 0;
  }

  // --- the original, slaved to the main clock --------------------------------------------

  syncOriginal(force) {
    const other = this.original.video;
    if (!this.withOriginal || !this.original.hls) return;
    const forward = this.playing && this.rate > 0;
    const time = forward ? this.video.currentTime : ((this.target ?? this.frame) + 0.5) / this.fps;
    const drift = Math.abs(other.currentTime - time) * this.fps;
    if ((force && drift > 0.25) || drift > 3) other.currentTime = time;
    other.playbackRate = forward ? this.rate : 1;
    if (forward && other.paused) other.play().catch(() => {});
    if (!forward && !other.paused) other.pause();
  }

  /** Seconds buffered ahead of the playhead. */
  bufferAhead() {
    const { buffered, currentTime } = this.video;
    for (let i = 0; i < buffered.length; i++) {
      if (buffered.start(i) <= currentTime + 0.05 && currentTime < buffered.end(i)) {
        return buffered.end(i) - currentTime;
      }
    }
    return 0;
  }

  /** Buffered ranges as [firstFrame, endFrame) pairs. */
  bufferedFrames() {
    const { buffered } = this.video;
    const out = [];
    for (let i = 0; i < buffered.length; i++) {
      out.push([buffered.start(i) * this.fps, buffered.end(i) * this.fps]);
    }
    return out;
  }
}

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}
