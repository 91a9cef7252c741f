// The library: the assets with a thumbnail, duration and resolution; upload by drag-and-drop
// or file picker, with progress and the server's own error message; delete.

import { createRender, deleteAsset, framePng, listAssets, uploadAsset } from "./api.js";
import { icon } from "./icons.js";

export class Library extends EventTarget {
  constructor({ list, dropzone, input, progress, status }) {
    super();
    this.list = list;
    this.dropzone = dropzone;
    this.progress = progress;
    this.status = status;
    this.assets = [];
    this.selected = null;
    this.thumbnails = new Map(); // asset id → frame 0 of its passthrough render

    input.addEventListener("change", async () => {
      for (const file of input.files) await this.upload(file);
      input.value = "";
    });
    // a file dropped anywhere on the page is an upload, never a navigation away
    for (const type of ["dragenter", "dragover"]) {
      document.addEventListener(type, (e) => {
        if (!e.dataTransfer?.types.includes("Files")) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
        dropzone.classList.add("dragging");
      });
    }
    document.addEventListener("dragleave", (e) => {
      if (!e.relatedTarget) dropzone.classList.remove("dragging");
    });
    document.addEventListener("drop", async (e) => {
      if (!e.dataTransfer?.files.length) return;
      e.preventDefault();
      dropzone.classList.remove("dragging");
      for (const file of e.dataTransfer.files) await this.upload(file);
    });
  }

  async refresh() {
    this.assets = await listAssets();
    this.render();
    return this.assets;
  }

  async upload(file) {
    this.progress.hidden = false;
    this.progress.value = 0;
    this.say(`Uploading ${file.name}…`);
    try {
      const asset = await uploadAsset(file, (fraction) => {
        this.progress.value = fraction;
        this.say(fraction < 1 ? `Uploading ${file.name}… ${Math.round(fraction * 100)} %`
          : `Preparing ${file.name} for editing…`);
      });
      this.say(`Added ${asset.name}`);
      await this.refresh();
      this.select(asset.id);
    } catch (err) {
      this.say(`${file.name}: ${err.message}`, true);
    } finally {
      this.progress.hidden = true;
    }
  }

  say(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", error);
    this.status.setAttribute("role", error ? "alert" : "status");
  }

  select(id) {
    const asset = this.assets.find((a) => a.id === id);
    if (!asset) return;
    this.selected = id;
    for (const button of this.list.querySelectorAll("button.asset")) {
      button.setAttribute("aria-pressed", String(button.dataset.id === id));
    }
    this.dispatchEvent(new CustomEvent("select", { detail: asset }));
  }

  async remove(asset) {
    try {
      await deleteAsset(asset.id);
      this.thumbnails.delete(asset.id);
      this.say(`Deleted ${asset.name}`);
      if (this.selected === asset.id) {
        this.selected = null;
        this.dispatchEvent(new CustomEvent("deleted", { detail: asset }));
      }
      await this.refresh();
    } catch (err) {
      this.say(`${asset.name}: ${err.message}`, true);
    }
  }

  render() {
    this.list.replaceChildren(...this.assets.map((asset) => this.item(asset)));
    if (!this.assets.length) {
      const empty = document.createElement("li");
      empty.className = "hint";
      empty.textContent = "No clips yet.";
      this.list.append(empty);
    }
  }

  item(asset) {
    const li = document.createElement("li");
    const open = document.createElement("button");
    open.className = "asset";
    open.dataset.id = asset.id;
    open.setAttribute("aria-pressed", String(asset.id === this.selected));
    const img = document.createElement("img");
    img.alt = "";
    img.width = 96;
    img.height = Math.round((96 * asset.height) / asset.width);
    this.thumbnail(asset).then((url) => url && (img.src = url));
    const text = document.createElement("span");
    text.className = "asset-text";
    const name = document.createElement("span");
    name.className = "asset-name";
    name.textContent = asset.name;
    const meta = document.createElement("span");
    meta.className = "asset-meta";
    meta.textContent = `${duration(asset.duration)} · ${asset.width}×${asset.height}`;
    open.title = `${asset.name}\n${asset.width}×${asset.height}, ${+asset.fps.toFixed(3)} fps, ${asset.frames} frames`;
    text.append(name, meta);
    open.append(img, text);
    open.addEventListener("click", () => this.select(asset.id));

    const remove = document.createElement("button");
    remove.className = "icon delete";
    remove.setAttribute("aria-label", `Delete ${asset.name}`);
    remove.title = "Delete";
    remove.innerHTML = icon("trash");
    let armed = 0;
    remove.addEventListener("click", () => {
      if (armed) return this.remove(asset); // second click within 3 s confirms
      remove.classList.add("armed");
      remove.setAttribute("aria-label", `Really delete ${asset.name}? Press again`);
      remove.title = "Press again to delete";
      armed = setTimeout(() => {
        armed = 0;
        remove.classList.remove("armed");
        remove.setAttribute("aria-label", `Delete ${asset.name}`);
        remove.title = "Delete";
      }, 3000);
    });
    li.append(open, remove);
    return li;
  }

  async thumbnail(asset) {
    if (!this.thumbnails.has(asset.id)) {
      const url = createRender(asset.id, "passthrough").then((r) => framePng(r.id, 0), () => null);
      this.thumbnails.set(asset.id, url);
    }
    return this.thumbnails.get(asset.id);
  }
}

function duration(seconds) {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return m ? `${m}:${String(s).padStart(2, "0")}` : `${seconds.toFixed(1)} s`;
}
