// The effect panel: an effect picker and a form generated from the effect's JSON schema
// (sliders for bounded numbers, selects for enums, colour pickers for #rrggbb, text fields
// for strings). Every committed change asks for a new render. A param no form field can hold
// (a list of objects, such as rotoscoping's `prompts`) is left to the tool that edits it.

const HEX = /^#[0-9a-fA-F]{6}$/;
const BROWSER_SIDE = "background"; // with a matte, the browser draws the background itself

export class EffectsPanel extends EventTarget {
  constructor({ select, description, form, status }) {
    super();
    this.select = select;
    this.description = description;
    this.form = form;
    this.status = status;
    this.effects = [];
    this.effect = null;
    this.timer = 0;
    select.addEventListener("change", () => this.choose(select.value));
    form.addEventListener("submit", (e) => e.preventDefault());
    // sliders commit on release ("change"), their readout follows the drag ("input")
    form.addEventListener("change", () => this.changed());
    form.addEventListener("input", (e) => {
      const out = e.target.closest(".field")?.querySelector("output");
      if (out) out.value = e.target.value;
    });
  }

  setEffects(effects) {
    this.effects = effects;
    this.select.replaceChildren(
      ...effects.map((e) => new Option(e.name, e.name, false, e.name === this.effect?.name)),
    );
  }

  /** Show `name`'s form with its defaults (or `params`), and ask for its render. */
  choose(name, params = {}) {
    const effect = this.effects.find((e) => e.name === name);
    if (!effect) return;
    this.effect = effect;
    this.select.value = name;
    this.description.textContent = effect.description;
    const schema = effect.params;
    const fields = Object.entries(schema.properties ?? {})
      .filter(([key]) => !(key === BROWSER_SIDE && this.hasMatte()))
      .filter(([, prop]) => formable(resolve(prop)))
      .map(([key, prop]) => field(key, resolve(prop), (schema.required ?? []).includes(key),
        params[key]));
    this.form.replaceChildren(...fields);
    if (!fields.length) {
      const none = document.createElement("p");
      none.className = "hint";
      none.textContent = "No parameters.";
      this.form.append(none);
    }
    this.changed(0);
  }

  hasMatte() {
    return this.effect?.variants.includes("stacked") ?? false;
  }

  changed(delay = 120) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (!this.form.checkValidity()) {
        const bad = this.form.querySelector(":invalid");
        this.say(`${bad.closest(".field").dataset.title}: ${bad.validationMessage}`, true);
        return;
      }
      this.say("");
      this.dispatchEvent(new CustomEvent("change", {
        detail: { effect: this.effect, params: this.params() },
      }));
    }, delay);
  }

  params() {
    const out = {};
    for (const el of this.form.querySelectorAll(".field")) {
      const value = el.read();
      if (value !== undefined) out[el.dataset.key] = value;
    }
    return out;
  }

  say(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", error);
  }
}

/** `anyOf: [{…}, {type: "null"}]` is an optional value: the first non-null branch. */
function resolve(prop) {
  if (!prop.anyOf) return prop;
  const branch = prop.anyOf.find((b) => b.type !== "null") ?? {};
  return { ...prop, ...branch, nullable: prop.anyOf.some((b) => b.type === "null") };
}

let ids = 0;

function field(key, prop, required, initial) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  wrap.dataset.key = key;
  const title = prop.title ?? key;
  wrap.dataset.title = title;
  const id = `param-${key}-${++ids}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = title;
  wrap.append(label);
  const value = initial ?? prop.default;
  let control;
  let read;

  if (prop.enum) {
    control = document.createElement("select");
    for (const option of prop.enum) control.append(new Option(option, option));
    control.value = value ?? prop.enum[0];
    read = () => control.value;
  } else if ((prop.type === "number" || prop.type === "integer") && bounded(prop)) {
    let lo = prop.minimum ?? prop.exclusiveMinimum;
    let hi = prop.maximum ?? prop.exclusiveMaximum;
    const step = prop.type === "integer" ? 1 : niceStep((hi - lo) / 200);
    if (prop.minimum === undefined) lo += step; // an exclusive bound is not a value
    if (prop.maximum === undefined) hi -= step;
    control = document.createElement("input");
    Object.assign(control, { type: "range", min: lo, max: hi, step });
    control.value = value ?? lo;
    const out = document.createElement("output");
    out.htmlFor = id;
    out.value = control.value;
    label.append(out);
    read = () => Number(control.value);
  } else if (prop.type === "number" || prop.type === "integer") {
    control = document.createElement("input");
    control.type = "number";
    control.step = prop.type === "integer" ? "1" : "any";
    if (prop.minimum !== undefined) control.min = prop.minimum;
    if (prop.maximum !== undefined) control.max = prop.maximum;
    control.value = value ?? "";
    if (prop.nullable) control.placeholder = "auto";
    read = () => (control.value === "" ? (prop.nullable ? null : undefined) : Number(control.value));
  } else if (prop.type === "boolean") {
    control = document.createElement("input");
    control.type = "checkbox";
    control.checked = Boolean(value);
    wrap.classList.add("check");
    read = () => control.checked;
  } else if (prop.type === "array" && prop.prefixItems) {
    control = document.createElement("div");
    control.className = "tuple";
    control.setAttribute("role", "group");
    const inputs = prop.prefixItems.map((_, i) => {
      const input = document.createElement("input");
      Object.assign(input, { type: "number", step: "any", value: value?.[i] ?? 0 });
      input.setAttribute("aria-label", `${title} ${i + 1}`);
      return input;
    });
    control.append(...inputs);
    read = () => inputs.map((input) => Number(input.value));
  } else if (prop.type === "string" && (HEX.test(value ?? "") || /#\[0-9a-fA-F\]\{6\}/.test(prop.pattern ?? ""))) {
    control = document.createElement("input");
    control.type = "color";
    control.value = HEX.test(value ?? "") ? value : "#ffffff";
    read = () => control.value;
  } else {
    control = document.createElement("input");
    control.type = "text";
    control.value = value ?? "";
    control.spellcheck = false;
    if (prop.pattern) control.pattern = prop.pattern.replace(/^\^|\$$/g, "");
    if (prop.maxLength) control.maxLength = prop.maxLength;
    if (/path|file/i.test(prop.description ?? "")) control.placeholder = "path on the server";
    read = () => (control.value === "" && !required ? undefined : control.value);
  }
  control.id = id;
  if (required && control.tagName === "INPUT") control.required = true;
  wrap.append(control);
  if (control.tagName === "DIV") control.setAttribute("aria-labelledby", `${id}-label`);
  label.id = `${id}-label`;
  if (prop.description) {
    const help = document.createElement("small");
    help.id = `${id}-help`;
    help.textContent = prop.description;
    control.setAttribute("aria-describedby", help.id);
    wrap.append(help);
  }
  wrap.read = read;
  return wrap;
}

/** Whether a form field can edit it: not a list of any length (a tuple is fine). */
function formable(prop) {
  return prop.type !== "array" || Boolean(prop.prefixItems);
}

function bounded(prop) {
  const lo = prop.minimum ?? prop.exclusiveMinimum;
  const hi = prop.maximum ?? prop.exclusiveMaximum;
  return lo !== undefined && hi !== undefined && hi - lo <= 10000;
}

function niceStep(x) {
  const p = 10 ** Math.floor(Math.log10(x));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= x);
}
