// What the viewer feels, measured by the real player: startup time, seek-to-first-frame,
// stalls. Readable as window.__playheadStats (the HUD shows it; tests read it).

export class Qoe {
  constructor(player) {
    this.player = player;
    this.startupMs = null; // first load → first frame on screen
    this.switchMs = null; // a later load (new params) → its first frame
    this.seekMs = null; // last seek → the first frame of its target on screen
    this.seekHistory = [];
    this.stalls = 0;
    this.stallMs = 0;
    this.framesShown = 0;
    this.loadAt = null;
    this.seekAt = null;
    this.seekTarget = null;
    this.stallAt = null;

    const video = player.video;
    player.addEventListener("load", () => {
      this.loadAt = performance.now();
      this.endStall();
    });
    player.addEventListener("seek", (e) => {
      this.seekAt = performance.now();
      this.seekTarget = e.detail.frame;
      this.endStall();
    });
    player.addEventListener("frame", (e) => this.presented(e.detail.frame));
    player.addEventListener("state", () => {
      if (!player.playing) this.endStall();
    });
    video.addEventListener("waiting", () => {
      const busy = this.loadAt !== null || this.seekAt !== null || video.seeking;
      if (player.playing && player.rate > 0 && !busy && this.stallAt === null) {
        this.stallAt = performance.now();
        this.stalls += 1;
      }
    });
    video.addEventListener("playing", () => this.endStall());
  }

  presented(frame) {
    const now = performance.now();
    this.framesShown += 1;
    if (this.loadAt !== null) {
      const ms = now - this.loadAt;
      if (this.startupMs === null) this.startupMs = ms;
      else this.switchMs = ms;
      this.loadAt = null;
    }
    if (this.seekAt !== null && Math.abs(frame - this.seekTarget) <= 1) {
      this.seekMs = now - this.seekAt;
      this.seekHistory.push(Math.round(this.seekMs));
      this.seekAt = null;
    }
    this.endStall();
  }

  endStall() {
    if (this.stallAt === null) return;
    this.stallMs += performance.now() - this.stallAt;
    this.stallAt = null;
  }

  snapshot() {
    const open = this.stallAt === null ? 0 : performance.now() - this.stallAt;
    const round = (x) => (x === null ? null : Math.round(x));
    return {
      startupMs: round(this.startupMs),
      switchMs: round(this.switchMs),
      seekMs: round(this.seekMs),
      seekHistory: this.seekHistory.slice(-20),
      stalls: this.stalls,
      stallMs: Math.round(this.stallMs + open),
      bufferAheadS: Number(this.player.bufferAhead().toFixed(2)),
      framesShown: this.framesShown,
      droppedFrames: this.player.video.getVideoPlaybackQuality?.().droppedVideoFrames ?? 0,
    };
  }
}
