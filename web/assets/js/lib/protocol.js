// The wire contract of docs/protocol.md, for browsers: intents (connect URLs),
// validation a client can do before it connects, and message parsing. Pure: no
// DOM, no sockets, so `node --test` covers it.

/** Session ids: `{adjective}-{noun}-{NNN}`, lower-case words and 100..999. */
export const SESSION_ID = /^[a-z]+-[a-z]+-[1-9][0-9]{2}$/;
/** ISO 639-1 codes: two lower-case letters. */
export const LANGUAGE_CODE = /^[a-z]{2}$/;
export const QUALITY_TIERS = Object.freeze(["standard", "premium"]);
export const AUDIO_FORMAT = "pcm16/16000";
/** The largest `audioData` the server accepts (docs/protocol.md, Audio in). */
export const MAX_AUDIO_BASE64_CHARS = 129024;
/** Raw PCM bytes per chunk at most: base64 of 16 KB and its envelope fit one
 * 32 KB WebSocket frame (API Gateway closes the socket on a larger frame). */
export const MAX_CHUNK_BYTES = 16 * 1024;

/** First messages of a connection (they carry the sequence baseline). */
export const WELCOMES = Object.freeze(["sessionCreated", "sessionJoined", "connectionRefreshComplete"]);

/** Reply types that answer an action (besides `error` and `controlAck` naming it). */
const ANSWERS = Object.freeze({
  getSessionStatus: "sessionStatus",
  changeLanguage: "languageChanged",
  endSession: "sessionEnded",
});

/** Speaker controls and the listener notice each one produces. */
export const CONTROLS = Object.freeze({
  pauseBroadcast: "broadcastPaused",
  resumeBroadcast: "broadcastResumed",
  muteBroadcast: "broadcastMuted",
  unmuteBroadcast: "broadcastUnmuted",
  setVolume: "volumeChanged",
});

/**
 * Parse one server frame. Returns the message object, or null for anything that
 * is not a JSON object. API Gateway's own integration failure
 * (`{"message": "Internal server error", ...}`) has no `type`: it comes back as
 * `{type: "gatewayError", message}` so callers handle one shape.
 */
export function parseMessage(text) {
  if (typeof text !== "string") return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  if (typeof value.type !== "string") {
    if (typeof value.message === "string") return { type: "gatewayError", message: value.message };
    return null;
  }
  return value;
}

/** The message's `sequenceNumber` when it is a non-negative integer, else null. */
export function sequenceOf(message) {
  const n = message && message.sequenceNumber;
  return Number.isInteger(n) && n >= 0 ? n : null;
}

/** Whether `message` answers a request with `action` (docs/protocol.md, Messages). */
export function answers(message, action) {
  if (!message) return false;
  if (message.type === "error" || message.type === "controlAck") return message.action === action;
  return ANSWERS[action] === message.type;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  return search.toString();
}

// Every handshake asks for an in-band refusal (docs/protocol.md, Refusals): a
// browser sees nothing of a refused handshake, so the server accepts it, says why
// in an `error` first message, and closes.
function withQuery(url, params) {
  return `${url}${url.includes("?") ? "&" : "?"}${query({ ...params, refusal: "message" })}`;
}

export function createUrl(url, { sourceLanguage, qualityTier, token }) {
  return withQuery(url, { action: "createSession", sourceLanguage, qualityTier, token });
}

export function joinUrl(url, { sessionId, targetLanguage }) {
  return withQuery(url, { action: "joinSession", sessionId, targetLanguage });
}

/**
 * The refreshConnection URL. The server's `reconnectQuery` wins when given; a
 * speaker adds its (fresh) token; a listener replacing a live connection names it
 * in `previousConnectionId` (docs/protocol.md, Long sessions).
 */
export function refreshUrl(url, { role, sessionId, targetLanguage, token, previousConnectionId, reconnectQuery }) {
  let params;
  if (reconnectQuery && typeof reconnectQuery === "object" && reconnectQuery.action) {
    params = { ...reconnectQuery };
    delete params.token;
    delete params.previousConnectionId;
  } else if (role === "speaker") {
    params = { action: "refreshConnection", sessionId, role: "speaker" };
  } else {
    params = { action: "refreshConnection", sessionId, role: "listener", targetLanguage };
  }
  if (role === "speaker") params.token = token;
  else if (previousConnectionId) params.previousConnectionId = previousConnectionId;
  return withQuery(url, params);
}

/**
 * What can be refused before connecting, with the code the server would give.
 * Returns null when the intent looks acceptable. `languages` is the supported
 * list (config.js); when it is empty only the code's shape is checked.
 */
export function checkJoin({ sessionId, targetLanguage }, languages = []) {
  if (!sessionId) return { code: "MISSING_PARAMETER", field: "sessionId" };
  if (!SESSION_ID.test(sessionId)) return { code: "INVALID_SESSION_ID", field: "sessionId" };
  return checkLanguage(targetLanguage, languages, "targetLanguage");
}

export function checkLanguage(code, languages = [], field = "targetLanguage") {
  if (!code) return { code: "MISSING_PARAMETER", field };
  if (!LANGUAGE_CODE.test(code)) return { code: "INVALID_LANGUAGE", field };
  if (languages.length && !languages.includes(code)) return { code: "UNSUPPORTED_LANGUAGE", field };
  return null;
}

/** Normalise a session id typed or pasted by a person ("Faithful Shepherd 427"). */
export function normaliseSessionId(text) {
  return String(text || "")
    .trim()
    .toLowerCase()
    .replace(/[\s_]+/g, "-")
    .replace(/-+/g, "-");
}

/** The listener page's URL for a session (the share link and the QR code). */
export function shareLink(listenPageUrl, sessionId, targetLanguage) {
  const url = new URL(listenPageUrl);
  url.search = "";
  url.hash = "";
  url.searchParams.set("session", sessionId);
  if (targetLanguage) url.searchParams.set("lang", targetLanguage);
  return url.toString();
}
