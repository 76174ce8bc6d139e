// Reading (never verifying) a JWT's claims, so the speaker page can tell an
// expired or malformed token before the server refuses it. Pure.

function base64UrlDecode(part) {
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The claims of `token`, or null when it is not a JWT. */
export function claims(token) {
  if (typeof token !== "string") return null;
  const parts = token.trim().split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return null;
  try {
    const value = JSON.parse(base64UrlDecode(parts[1]));
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** Why `token` cannot be used (`"missing"`, `"malformed"`, `"expired"`), or null.
 * `marginSeconds`: a token about to expire counts as expired. */
export function tokenProblem(token, { now = Date.now(), marginSeconds = 30 } = {}) {
  if (!token || !String(token).trim()) return "missing";
  const c = claims(token);
  if (!c) return "malformed";
  if (Number.isFinite(c.exp) && c.exp * 1000 <= now + marginSeconds * 1000) return "expired";
  return null;
}

/** A display name for the token's user (Cognito's username or email), or "". */
export function userName(token) {
  const c = claims(token) || {};
  return String(c["cognito:username"] || c.email || c.username || c.sub || "");
}
