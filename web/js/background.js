// The background under a matte, chosen and drawn in the browser: a colour, a blur of the
// source, a checkerboard (transparent) or an uploaded image. Never a new render.

export class BackgroundControls extends EventTarget {
  constructor(fieldset, compositor) {
    super();
    this.fieldset = fieldset;
    this.compositor = compositor;
    this.color = fieldset.querySelector("#bg-color");
    this.image = fieldset.querySelector("#bg-image");
    this.imageName = null;
    fieldset.addEventListener("change", (e) => {
      if (e.target === this.image) return this.loadImage();
      this.apply();
    });
    this.color.addEventListener("input", () => {
      this.fieldset.querySelector("input[value=color]").checked = true;
      this.apply();
    });
    this.apply();
  }

  get mode() {
    return this.fieldset.querySelector("input[name=bg]:checked").value;
  }

  /** What the editor shows as the effect's `background` param (to bake into an MP4), or null. */
  asParam() {
    return { color: this.color.value, blur: "blur" }[this.mode] ?? null;
  }

  apply() {
    this.compositor.setBackground(this.mode, this.color.value);
    this.dispatchEvent(new Event("change"));
  }

  async loadImage() {
    const file = this.image.files[0];
    const error = this.fieldset.querySelector(".bg-error");
    error.textContent = "";
    if (!file) return;
    try {
      const bitmap = await createImageBitmap(file);
      this.compositor.setImage(bitmap);
      bitmap.close();
      this.imageName = file.name;
      this.fieldset.querySelector("input[value=image]").checked = true;
      this.apply();
    } catch {
      error.textContent = `${file.name} is not an image`;
    }
  }

  show(visible) {
    this.fieldset.hidden = !visible;
  }
}
