// The server's HTTP API (docs/api.md). Every failure becomes an ApiError carrying the
// server's own JSON message, so the UI can show it as is.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(response) {
  let code = "http_error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    code = body.error?.code ?? code;
    message = body.error?.message ?? message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

async function request(method, url, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, "network", `the server cannot be reached (${err.message})`);
  }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

export const listAssets = () => request("GET", "/api/assets");
export const deleteAsset = (id) => request("DELETE", `/api/assets/${encodeURIComponent(id)}`);
export const listEffects = () => request("GET", "/api/effects");

// The same render asked for twice at once (a thumbnail and the player, say) is one request.
const rendering = new Map();

export function createRender(asset, effect, params = {}) {
  const body = { asset, effect, params };
  const key = JSON.stringify(body);
  if (!rendering.has(key)) {
    const pending = request("POST", "/api/renders", body);
    rendering.set(key, pending);
    pending.finally(() => rendering.delete(key)).catch(() => {});
  }
  return rendering.get(key);
}
/** The mask of frame `n` for clicks ({points: [{x, y, label}], box?}) in frame pixels. */
export const requestMask = (asset, n, prompt) =>
  request("POST", `/api/assets/${encodeURIComponent(asset)}/frames/${n}/mask`, prompt);
export const getRender = (id) => request("GET", `/api/renders/${encodeURIComponent(id)}`);
export const createExport = (render, format) =>
  request("POST", `/api/renders/${encodeURIComponent(render)}/exports`, { format });
export const getExport = (id) => request("GET", `/api/exports/${encodeURIComponent(id)}`);

export const framePng = (render, n) => `/api/renders/${encodeURIComponent(render)}/frames/${n}.png`;
export const sourcePlaylist = (asset) => `/api/assets/${encodeURIComponent(asset)}/index.m3u8`;
export const exportFile = (id) => `/api/exports/${encodeURIComponent(id)}/file`;

/** Upload with progress (fetch cannot report upload progress; XHR can). */
export function uploadAsset(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/assets");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.upload.onload = () => onProgress(1);
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload was interrupted"));
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status === 201) return resolve(body);
      const error = body?.error ?? {};
      reject(new ApiError(xhr.status, error.code ?? "http_error",
        error.message ?? `upload failed: ${xhr.status} ${xhr.statusText}`));
    };
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
