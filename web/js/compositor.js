// The compositor: draws the video frames into a WebGL canvas.
//
// A `stacked` frame carries the colour in its top half and the matte (as luma) in its bottom
// half; the shader puts the colour over a background chosen here in the browser (a colour,
// a blur of the source, a checkerboard for "transparent", an uploaded image). Changing the
// background only redraws the last frame: it never asks the server for anything.
//
// Rotoscoping adds a mask from clicks (a texture the size of the picture) and three matte
// views: the mask alone, the picture with the mask tinted over it, and the composite over the
// background. The matte shown is the clicks' mask where there is one, else the render's own.

const VERTEX = `#version 300 es
in vec2 aPos;
out vec2 vUv;  // (0, 0) is the top left of the picture
void main() {
  vUv = vec2(aPos.x * 0.5 + 0.5, 0.5 - aPos.y * 0.5);
  gl_Position = vec4(aPos, 0.0, 1.0);
}`;

const FRAGMENT = `#version 300 es
precision highp float;
in vec2 vUv;
out vec4 outColor;
uniform sampler2D uMain, uOriginal, uImage, uMask;
uniform bool uStacked, uHasOriginal, uHasMask;
uniform int uBackground;  // 0 colour, 1 blur, 2 checkerboard, 3 image
uniform int uView;        // 0 processed, 1 original, 2 wipe
uniform int uMatteView;   // 0 the effect as rendered, 1 overlay, 2 mask only, 3 composite
uniform vec3 uColor;
uniform float uWipe, uPixelRatio, uCanvasWidth;
uniform vec2 uMainTexel, uImageScale;

vec3 colourAt(vec2 uv) {
  return texture(uMain, uStacked ? vec2(uv.x, uv.y * 0.5) : uv).rgb;
}

float matteAt(vec2 uv) {
  float luma = dot(texture(uMain, vec2(uv.x, 0.5 + uv.y * 0.5)).rgb, vec3(0.299, 0.587, 0.114));
  return clamp((luma - 0.03) / 0.94, 0.0, 1.0);  // limited-range luma: 0 and 1 stay exact
}

vec3 blurred(vec2 uv) {
  // a golden-angle disk of taps on a coarse mip level: a wide, smooth blur for 16 samples;
  // taps stay in the colour half, clear of the matte below it
  vec3 sum = vec3(0.0);
  float bottom = uStacked ? 0.5 - uMainTexel.y * 24.0 : 1.0;
  float half_ = uStacked ? 0.5 : 1.0;
  for (int i = 0; i < 16; i++) {
    float a = float(i) * 2.39996;
    float r = sqrt((float(i) + 0.5) / 16.0) * 0.06;
    vec2 p = clamp(uv + r * vec2(cos(a), sin(a)), 0.0, 1.0);
    sum += textureLod(uMain, vec2(p.x, min(p.y * half_, bottom)), 3.0).rgb;
  }
  return sum / 16.0;
}

vec3 checkerboard() {
  vec2 cell = floor(gl_FragCoord.xy / (10.0 * uPixelRatio));
  return mod(cell.x + cell.y, 2.0) < 1.0 ? vec3(0.40) : vec3(0.27);
}

vec3 background(vec2 uv) {
  if (uBackground == 1) return blurred(uv);
  if (uBackground == 2) return checkerboard();
  if (uBackground == 3) return texture(uImage, (uv - 0.5) * uImageScale + 0.5).rgb;
  return uColor;
}

const vec3 TINT = vec3(0.72, 0.36, 1.0);

vec3 processed(vec2 uv) {
  vec3 colour = colourAt(uv);
  if (uMatteView == 0) return uStacked ? mix(background(uv), colour, matteAt(uv)) : colour;
  // no matte yet (nothing clicked, nothing rendered): nothing is selected
  float m = uHasMask ? texture(uMask, uv).r : (uStacked ? matteAt(uv) : 0.0);
  if (uMatteView == 2) return vec3(m);
  if (uMatteView == 3) return mix(background(uv), colour, m);
  // overlay: the subject tinted, its outline (the 50 % contour) drawn a pixel wide
  float line = 1.0 - smoothstep(0.5, 1.5, abs(m - 0.5) / max(fwidth(m), 1e-4));
  return mix(mix(colour, TINT, 0.5 * m), vec3(1.0, 0.9, 1.0), 0.85 * line);
}

void main() {
  vec3 c;
  if (uView == 1 && uHasOriginal) {
    c = texture(uOriginal, vUv).rgb;
  } else if (uView == 2 && uHasOriginal) {
    c = vUv.x < uWipe ? texture(uOriginal, vUv).rgb : processed(vUv);
    if (abs(gl_FragCoord.x - uWipe * uCanvasWidth) < uPixelRatio) c = vec3(1.0);  // the handle
  } else {
    c = processed(vUv);
  }
  outColor = vec4(c, 1.0);
}`;

export const BACKGROUNDS = ["color", "blur", "checkerboard", "image"];
export const VIEWS = ["processed", "original", "wipe"];
export const MATTE_VIEWS = ["rendered", "overlay", "mask", "composite"];

export class Compositor extends EventTarget {
  constructor(canvas) {
    super();
    this.canvas = canvas;
    this.gl = canvas.getContext("webgl2", {
      alpha: false,
      antialias: false,
      preserveDrawingBuffer: true, // the picture stays readable (tests, screenshots, stills)
    });
    if (!this.gl) throw new Error("WebGL 2 is not available in this browser");
    this.picture = null; // {width, height} of one picture (half a stacked frame)
    this.stacked = false;
    this.hasMain = false;
    this.hasOriginal = false;
    this.background = { mode: "color", color: [0.118, 0.533, 0.898], imageScale: [1, 1] };
    this.view = "processed";
    this.matteView = "rendered";
    this.mask = null; // the ImageBitmap in the uMask texture, or null
    this.wipe = 0.5;
    this.imageSize = null;
    this.setup();
    // a lost context (driver reset, too many contexts) comes back empty: rebuild, redraw
    canvas.addEventListener("webglcontextlost", (e) => e.preventDefault());
    canvas.addEventListener("webglcontextrestored", () => {
      this.setup();
      this.hasMain = this.hasOriginal = false;
      this.imageSize = null;
      this.mask = null;
      this.draw();
    });
  }

  setup() {
    const gl = this.gl;
    const program = gl.createProgram();
    for (const [type, source] of [
      [gl.VERTEX_SHADER, VERTEX],
      [gl.FRAGMENT_SHADER, FRAGMENT],
    ]) {
      const shader = gl.createShader(type);
      gl.shaderSource(shader, source);
      gl.compileShader(shader);
      if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
        throw new Error(`shader: ${gl.getShaderInfoLog(shader)}`);
      }
      gl.attachShader(program, shader);
    }
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
      throw new Error(`shader program: ${gl.getProgramInfoLog(program)}`);
    }
    gl.useProgram(program);
    this.program = program;

    const quad = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, quad);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const pos = gl.getAttribLocation(program, "aPos");
    gl.enableVertexAttribArray(pos);
    gl.vertexAttribPointer(pos, 2, gl.FLOAT, false, 0, 0);

    this.textures = {};
    ["uMain", "uOriginal", "uImage", "uMask"].forEach((name, unit) => {
      const texture = gl.createTexture();
      gl.activeTexture(gl.TEXTURE0 + unit);
      gl.bindTexture(gl.TEXTURE_2D, texture);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
      gl.uniform1i(gl.getUniformLocation(program, name), unit);
      this.textures[name] = { texture, unit };
    });
    this.uniforms = {};
    for (const name of [
      "uStacked", "uHasOriginal", "uBackground", "uView", "uColor", "uWipe", "uPixelRatio",
      "uMainTexel", "uImageScale", "uCanvasWidth", "uHasMask", "uMatteView",
    ]) {
      this.uniforms[name] = gl.getUniformLocation(program, name);
    }
  }

  upload(name, source, mipmaps = false) {
    const gl = this.gl;
    const { texture, unit } = this.textures[name];
    gl.activeTexture(gl.TEXTURE0 + unit);
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, source);
    if (mipmaps) gl.generateMipmap(gl.TEXTURE_2D);
    const min = mipmaps ? gl.LINEAR_MIPMAP_LINEAR : gl.LINEAR;
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, min);
  }

  /** A new processed frame (a VideoFrame or a <video>); `stacked` says how to read it. */
  drawMain(picture, stacked) {
    const [fullWidth, fullHeight] = size(picture);
    const width = fullWidth;
    const height = stacked ? fullHeight / 2 : fullHeight;
    if (!width || !height) return;
    this.stacked = stacked;
    // mip levels feed the blurred background
    this.upload("uMain", picture, stacked || this.matteView !== "rendered");
    this.mainSize = [fullWidth, fullHeight];
    this.hasMain = true;
    if (this.picture?.width !== width || this.picture?.height !== height) {
      this.picture = { width, height };
      this.fitImage();
      this.dispatchEvent(new CustomEvent("picture", { detail: this.picture }));
    }
    this.draw();
  }

  /** A new frame of the untouched source (original and wipe views). */
  drawOriginal(picture) {
    if (!size(picture)[0]) return;
    this.upload("uOriginal", picture);
    this.hasOriginal = true;
    if (this.view !== "processed") this.draw();
  }

  /** Nothing to show: the empty stage. */
  clear() {
    this.hasMain = false;
    this.hasOriginal = false;
    this.draw();
  }

  forgetOriginal() {
    this.hasOriginal = false;
    this.draw();
  }

  setBackground(mode, color) {
    this.background.mode = mode;
    if (color) this.background.color = hexToRgb(color);
    this.draw();
  }

  setImage(bitmap) {
    this.upload("uImage", bitmap);
    this.imageSize = [bitmap.width, bitmap.height];
    this.fitImage();
    this.draw();
  }

  setView(view) {
    this.view = view;
    this.draw();
  }

  /** How to show the matte: "rendered" (the effect as is), "overlay", "mask", "composite". */
  setMatteView(view) {
    this.matteView = view;
    this.draw();
  }

  /** The mask from clicks for the picture on screen (an ImageBitmap), or null for none. */
  setMask(bitmap) {
    if (bitmap === this.mask) return;
    this.mask = bitmap;
    if (bitmap) {
      const gl = this.gl;
      gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE);
      this.upload("uMask", bitmap);
      gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.BROWSER_DEFAULT_WEBGL);
    }
    this.draw();
  }

  setWipe(x) {
    this.wipe = Math.min(1, Math.max(0, x));
    this.draw();
  }

  /** Size the drawing buffer to the canvas's CSS box at the device's pixel ratio. */
  resize(cssWidth, cssHeight) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(cssWidth * ratio));
    const height = Math.max(1, Math.round(cssHeight * ratio));
    if (this.canvas.width === width && this.canvas.height === height) return;
    this.canvas.width = width;
    this.canvas.height = height;
    this.draw();
  }

  fitImage() {
    // cover: the image fills the picture, cropped, never stretched
    if (!this.imageSize || !this.picture) return;
    const picture = this.picture.width / this.picture.height;
    const image = this.imageSize[0] / this.imageSize[1];
    this.background.imageScale = image > picture ? [picture / image, 1] : [1, image / picture];
  }

  draw() {
    const gl = this.gl;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    if (!this.hasMain) {
      gl.clearColor(0.05, 0.055, 0.065, 1);
      gl.clear(gl.COLOR_BUFFER_BIT);
      return;
    }
    const u = this.uniforms;
    const bg = this.background;
    const mode = bg.mode === "image" && !this.imageSize ? "checkerboard" : bg.mode;
    gl.uniform1i(u.uStacked, this.stacked ? 1 : 0);
    gl.uniform1i(u.uHasOriginal, this.hasOriginal ? 1 : 0);
    gl.uniform1i(u.uBackground, BACKGROUNDS.indexOf(mode));
    gl.uniform1i(u.uView, VIEWS.indexOf(this.view));
    gl.uniform1i(u.uMatteView, MATTE_VIEWS.indexOf(this.matteView));
    gl.uniform1i(u.uHasMask, this.mask ? 1 : 0);
    gl.uniform3fv(u.uColor, bg.color);
    gl.uniform1f(u.uWipe, this.wipe);
    gl.uniform1f(u.uPixelRatio, window.devicePixelRatio || 1);
    gl.uniform1f(u.uCanvasWidth, this.canvas.width);
    gl.uniform2f(u.uMainTexel, 1 / this.mainSize[0], 1 / this.mainSize[1]);
    gl.uniform2fv(u.uImageScale, bg.imageScale);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }
}

function size(picture) {
  return "displayWidth" in picture
    ? [picture.displayWidth, picture.displayHeight]
    : [picture.videoWidth, picture.videoHeight];
}

export function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) / 255, ((n >> 8) & 255) / 255, (n & 255) / 255];
}
