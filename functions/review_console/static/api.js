// The console's calls to its JSON routes, with the ops token from this browser session.
const TOKEN_KEY = "console.token";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export async function call(method, path, { query, body } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value) url.searchParams.set(key, value);
  }
  const headers = { Authorization: `Bearer ${token.get() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export async function localSignIn(name) {
  const response = await fetch("/_local/ops-token", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sub: name }),
  });
  if (!response.ok) throw new ApiError(response.status, null);
  return (await response.json()).token;
}
