// The export dialog: pick a format, follow the server's progress, download the file.

import { createExport, createRender, exportFile, getExport } from "./api.js";

const FORMATS = [
  { value: "mp4", label: "MP4 (H.264)", matte: false },
  { value: "mov-alpha", label: "MOV with alpha (ProRes 4444)", matte: true },
  { value: "webm-alpha", label: "WebM with alpha (VP9)", matte: true },
  { value: "png-matte", label: "PNG mattes (zip)", matte: true },
];
const POLL_MS = 300;

export class ExportDialog {
  /** `context()` gives {asset, render, hasMatte, background}, background as an effect param. */
  constructor(dialog, context) {
    this.dialog = dialog;
    this.context = context;
    this.format = dialog.querySelector("#export-format");
    this.note = dialog.querySelector("#export-note");
    this.progress = dialog.querySelector("#export-progress");
    this.status = dialog.querySelector("#export-status");
    this.link = dialog.querySelector("#export-link");
    this.start = dialog.querySelector("#export-start");
    this.running = null;
    dialog.querySelector("#export-close").addEventListener("click", () => dialog.close());
    this.start.addEventListener("click", () => this.run());
    this.format.addEventListener("change", () => this.explain());
  }

  open() {
    this.running = null; // an export still polling from before no longer owns the dialog
    const { asset, render, hasMatte } = this.context();
    this.dialog.querySelector("#export-what").textContent =
      `${asset.name} · ${render.effect} · ${render.frames} frames`;
    this.format.replaceChildren(
      ...FORMATS.filter((f) => hasMatte || !f.matte).map((f) => new Option(f.label, f.value)),
    );
    this.progress.value = 0;
    this.progress.hidden = true;
    this.link.hidden = true;
    this.say("");
    this.start.disabled = false;
    this.explain();
    this.dialog.showModal();
  }

  explain() {
    const { hasMatte, background } = this.context();
    let text = "";
    if (this.format.value === "mp4" && hasMatte) {
      text = background
        ? "The background you see is baked in."
        : "MP4 has no transparency and cannot carry an uploaded image: it gets the effect's " +
          "own background. Pick an alpha format to composite elsewhere.";
    } else if (this.format.value !== "mp4") {
      text = "The matte comes from the losslessly stored bands.";
    }
    this.note.textContent = text;
  }

  say(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", error);
  }

  async run() {
    const { asset, render, hasMatte, background } = this.context();
    const format = this.format.value;
    this.start.disabled = true;
    this.link.hidden = true;
    this.progress.hidden = false;
    this.progress.value = 0;
    this.say("Starting…");
    const run = {};
    this.running = run;
    try {
      let target = render;
      if (format === "mp4" && hasMatte && background && background !== render.params.background) {
        // mp4 has no alpha: bake the editor's background into the composite of a sibling render
        target = await createRender(asset.id, render.effect, { ...render.params, background });
      }
      let job = await createExport(target.id, format);
      while (job.state !== "done" && job.state !== "failed") {
        if (this.running !== run) return;
        this.progress.value = job.progress;
        this.say(job.state === "writing" ? "Writing the file…" : `Rendering… ${Math.round(job.progress * 100)} %`);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        job = await getExport(job.id);
      }
      if (job.state === "failed") throw new Error(job.error ?? "the export failed");
      this.progress.value = 1;
      this.say("Ready.");
      this.link.href = exportFile(job.id);
      this.link.textContent = `Download ${format}`;
      this.link.hidden = false;
      this.link.focus();
    } catch (err) {
      this.say(err.message, true);
    } finally {
      if (this.running === run) this.start.disabled = false;
    }
  }
}
