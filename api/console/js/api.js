// The service's HTTP API, called with the API key the user saved in this browser.

const KEY_STORAGE = "semsearch.apiKey";

/** An answer that was not 2xx, with the service's `detail` (every error carries one). */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
  }
}

export function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function saveApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled: nothing can be remembered
  }
}

/**
 * Call the API: `body` is sent as JSON (a FormData as multipart), the JSON answer returned
 * (null for 204). Throws ApiError; a 401 also fires the window event "semsearch:unauthorized".
 */
export async function request(method, path, body) {
  const headers = { accept: "application/json" };
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined || form ? body : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, String(error.message || error));
  }
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => null);
  if (response.ok) return payload;
  const detail =
    payload && typeof payload.detail === "string"
      ? payload.detail
      : `${response.status} ${response.statusText}`;
  const error = new ApiError(response.status, detail);
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent("semsearch:unauthorized", { detail: error }));
  }
  throw error;
}

const path = (name) => encodeURIComponent(name);

export const api = {
  models: () => request("GET", "/models"),
  collections: () => request("GET", "/collections"),
  collection: (name) => request("GET", `/collections/${path(name)}`),
  createCollection: (body) => request("POST", "/collections", body),
  updateCollection: (name, body) => request("PATCH", `/collections/${path(name)}`, body),
  deleteCollection: (name) => request("DELETE", `/collections/${path(name)}`),
  ingest: (name, documents) =>
    request("POST", `/collections/${path(name)}/documents`, { documents }),
  uploadFiles: (name, files) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    return request("POST", `/collections/${path(name)}/files`, form);
  },
  job: (id) => request("GET", `/jobs/${path(id)}`),
  jobs: (name, limit = 10) =>
    request("GET", `/collections/${path(name)}/jobs?limit=${limit}`),
  search: (name, body) => request("POST", `/collections/${path(name)}/search`, body),
  explainSimilarity: (body) => request("POST", "/similarity/explain", body),
  calibrate: (name, body) => request("POST", `/collections/${path(name)}/calibrate`, body),
  calibration: (name) => request("GET", `/collections/${path(name)}/calibration`),
};
