// The editor: wires the library, the effect panel, the player, the compositor, the timeline,
// the session WebSocket, the HUD, the export dialog and the rotoscoping mode together. Holds
// the little state the page has: the open asset and the render on screen.

import { createRender, listEffects, sourcePlaylist } from "./api.js";
import { BackgroundControls } from "./background.js";
import { Compositor } from "./compositor.js";
import { EffectsPanel } from "./effects-panel.js";
import { ExportDialog } from "./export.js";
import { Hud } from "./hud.js";
import { icon, placeIcons } from "./icons.js";
import { Library } from "./library.js";
import { Player } from "./player.js";
import { Qoe } from "./qoe.js";
import { ROTO, RotoMode } from "./roto.js";
import { Session } from "./session.js";
import { Timeline, formatTime } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const effectsRequest = listEffects(); // on the wire while WebGL starts up
placeIcons();

const canvas = $("view");
const compositor = new Compositor(canvas);
const player = new Player($("video"), $("original-video"));
const qoe = new Qoe(player);
const session = new Session();
const timeline = new Timeline($("timeline"));
const hud = new Hud($("hud"), $("hud-toggle"), qoe);
const background = new BackgroundControls($("background"), compositor);
const library = new Library({
  list: $("asset-list"),
  dropzone: $("dropzone"),
  input: $("file-input"),
  progress: $("upload-progress"),
  status: $("upload-status"),
});
const panel = new EffectsPanel({
  select: $("effect-select"),
  description: $("effect-description"),
  form: $("params"),
  status: $("render-status"),
});
const roto = new RotoMode({
  root: $("roto"),
  canvas,
  marks: $("roto-marks"),
  busy: $("roto-busy"),
  compositor,
  player,
  timeline,
});
const state = { asset: null, render: null, request: 0 };
const exporter = new ExportDialog($("export-dialog"), () => ({
  asset: state.asset,
  render: state.render,
  hasMatte: "stacked" in (state.render?.playlists ?? {}),
  background: background.asParam(),
}));

// what the player measures, for the HUD's readers and for tests
Object.defineProperty(window, "__playheadStats", { get: () => qoe.snapshot() });

// --- opening clips and renders ------------------------------------------------------------

library.addEventListener("select", (e) => open(e.detail));
library.addEventListener("deleted", () => close());
panel.addEventListener("change", (e) => show(e.detail.effect, e.detail.params));
roto.addEventListener("apply", (e) => show(panel.effect, panel.params(), e.detail.prompts));

function open(asset) {
  state.asset = asset;
  $("clip-title").textContent = asset.name;
  document.title = `${asset.name} — playhead`;
  $("empty").hidden = true;
  compositor.forgetOriginal();
  roto.open(asset);
  panel.changed(0);
}

function close() {
  state.asset = null;
  state.render = null;
  state.request += 1;
  roto.open(null);
  player.pause();
  player.main.unload();
  player.showOriginal(false);
  session.unwatch();
  compositor.clear();
  timeline.setRender({ segments: 0, segment_frames: 1, frames: 0, fps: 30 });
  $("player").dataset.frame = "-1";
  delete $("player").dataset.render;
  delete $("player").dataset.asset;
  delete $("player").dataset.shown;
  $("clip-title").textContent = "No clip open";
  document.title = "playhead";
  $("empty").hidden = false;
  $("export-open").disabled = true;
}

/**
 * Ask for the render of the current effect and params; continue at the same frame. Roto's
 * params take the clicks applied so far, and with none yet, the source plays.
 */
async function show(effect, params, prompts = roto.applied()) {
  const asset = state.asset;
  if (!asset) return;
  const request = ++state.request;
  roto.setActive(effect.name === ROTO);
  let name = effect.name;
  if (name === ROTO && prompts.length) params = { ...params, prompts };
  else if (name === ROTO) [name, params] = ["passthrough", {}]; // nothing to cut out yet
  let render;
  try {
    render = await createRender(asset.id, name, params);
  } catch (err) {
    if (request === state.request) {
      panel.say(err.message, true);
      roto.failed(err.message);
    }
    return;
  }
  if (request !== state.request) return;
  roto.rendered(render);
  const stacked = "stacked" in render.playlists;
  background.show(stacked || roto.active); // roto's composite view, before the first apply too
  if (render.id === state.render?.id) return;
  const sameAsset = state.render?.asset === asset.id;
  const frame = sameAsset ? (player.target ?? player.frame) : 0;
  const playing = sameAsset && player.playing && player.rate > 0;
  state.render = render;
  hud.setEffect(render.effect);
  timeline.setRender(render);
  session.watch(render.id);
  player.load(
    {
      url: render.playlists[stacked ? "stacked" : "composite"],
      original: sourcePlaylist(asset.id),
      fps: render.fps,
      frames: render.frames,
      stacked,
      render: render.id,
    },
    frame,
    playing,
  );
  $("player").dataset.render = render.id;
  $("player").dataset.effect = render.effect;
  $("player").dataset.asset = render.asset;
  $("export-open").disabled = false;
}

// --- the player drives the picture, the readouts, the timeline and the session -------------

const playState = () => {
  const forward = player.playing && player.rate > 0;
  const frame = forward ? player.frame : (player.target ?? player.frame); // paused: where it goes
  return { frame, playing: forward, rate: forward ? player.rate : 1 };
};

player.addEventListener("frame", (e) => {
  const { frame, picture, source } = e.detail;
  roto.presented(source.render); // the clicks' mask of this frame, if any, under it
  compositor.drawMain(picture, source.stacked);
  $("player").dataset.frame = String(frame);
  $("player").dataset.shown = source.render; // the render whose frame is on screen
  $("timecode").value = formatClock(frame / player.fps);
  $("frame-readout").value = `frame ${frame} / ${player.frames - 1}`;
  timeline.setPlayhead(frame, player.bufferedFrames());
});
player.addEventListener("original-frame", (e) => compositor.drawOriginal(e.detail.picture));
player.addEventListener("state", () => {
  const { playing, rate } = player;
  const button = $("btn-play");
  button.innerHTML = icon(playing ? "pause" : "play");
  button.setAttribute("aria-label", playing ? "Pause" : "Play");
  $("player").dataset.playing = String(playing);
  $("player").dataset.rate = String(rate);
  $("rate-readout").value = playing ? `${rate}×` : "paused";
  session.report(playState);
  roto.update();
});
player.addEventListener("seek", () => session.report(playState));
player.addEventListener("error", (e) => panel.say(`Playback: ${e.detail.message}`, true));

compositor.addEventListener("picture", layout);
new ResizeObserver(layout).observe($("stage"));

function layout() {
  // the largest box of the picture's shape that fits the stage
  const stage = $("stage");
  const picture = compositor.picture ?? { width: 16, height: 9 };
  const scale = Math.min(stage.clientWidth / picture.width, stage.clientHeight / picture.height);
  const width = Math.max(1, Math.floor(picture.width * scale));
  const height = Math.max(1, Math.floor(picture.height * scale));
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  compositor.resize(width, height);
}

function formatClock(seconds) {
  const m = Math.floor(seconds / 60);
  return `${m}:${(seconds - m * 60).toFixed(2).padStart(5, "0")}`;
}

// --- session ---------------------------------------------------------------------------------

session.addEventListener("render", (e) => timeline.setStates(e.detail.segments));
session.addEventListener("segment", (e) => timeline.setState(e.detail.index, e.detail.state));
session.addEventListener("stats", (e) => hud.setServerStats(e.detail));
for (const [type, label] of [["open", "live"], ["close", "offline"]]) {
  session.addEventListener(type, () => {
    $("connection").dataset.state = type;
    $("connection").textContent = label;
  });
}

// --- controls --------------------------------------------------------------------------------

timeline.addEventListener("seek", (e) => player.seek(e.detail.frame));
$("btn-play").addEventListener("click", () => player.toggle());
$("btn-back").addEventListener("click", () => player.step(-1));
$("btn-forward").addEventListener("click", () => player.step(1));
$("btn-start").addEventListener("click", () => player.seek(0));
$("btn-end").addEventListener("click", () => {
  player.pause();
  player.seek(player.frames - 1);
});
$("export-open").addEventListener("click", () => exporter.open());

for (const radio of document.querySelectorAll("input[name=view]")) {
  radio.addEventListener("change", () => setView(radio.value));
}
$("wipe").addEventListener("input", (e) => compositor.setWipe(Number(e.target.value)));
canvas.addEventListener("pointerdown", (e) => {
  if (compositor.view !== "wipe") return;
  const move = (ev) => {
    const box = canvas.getBoundingClientRect();
    const x = (ev.clientX - box.left) / box.width;
    compositor.setWipe(x);
    $("wipe").value = String(x);
  };
  canvas.setPointerCapture(e.pointerId);
  move(e);
  canvas.addEventListener("pointermove", move);
  canvas.addEventListener("pointerup", () => canvas.removeEventListener("pointermove", move), {
    once: true,
  });
});

function setView(view) {
  compositor.setView(view);
  player.showOriginal(view !== "processed");
  document.querySelector(".wipe-control").hidden = view !== "wipe";
  canvas.classList.toggle("wiping", view === "wipe");
  roto.refresh();
}

const KEYS = {
  " ": () => player.toggle(),
  ArrowLeft: (e) => player.step(e.shiftKey ? -Math.round(player.fps) : -1),
  ArrowRight: (e) => player.step(e.shiftKey ? Math.round(player.fps) : 1),
  j: () => player.shuttle(-1),
  k: () => player.shuttle(0),
  l: () => player.shuttle(1),
  Home: () => player.seek(0),
  End: () => {
    player.pause();
    player.seek(player.frames - 1);
  },
  h: () => hud.toggle(),
};

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
  const target = e.target;
  // text fields, sliders and menus keep their keys; Space is the transport everywhere else,
  // as in every editor (buttons still answer Enter)
  if (target.closest?.("input, select, textarea, dialog[open]")) return;
  const action = KEYS[e.key.length === 1 ? e.key.toLowerCase() : e.key];
  if (!action) return;
  e.preventDefault();
  action(e);
});

// --- start ---------------------------------------------------------------------------------

async function start() {
  try {
    panel.setEffects(await effectsRequest);
    panel.choose("passthrough");
    const assets = await library.refresh();
    if (assets.length) library.select(assets[0].id);
  } catch (err) {
    library.say(`The server cannot be reached: ${err.message}`, true);
  }
}

start();
