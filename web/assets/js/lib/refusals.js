// Refusal and error codes (docs/protocol.md, Refusals and Messages) in plain
// words for people. Pure.
//
// Browsers cannot see why a WebSocket handshake was refused: API Gateway answers
// with an HTTP status, and the WebSocket API shows every refused or failed
// handshake as close code 1006 with no status. So the client asks for in-band
// refusals (`refusal=message`): the server then accepts the handshake, says the
// code in an `error` first message and closes. A page also checks what it can
// before connecting (an id's shape, a language not in the supported list, a
// missing or expired token). A handshake refused all the same (API Gateway's own
// throttling, an unreachable server) is HANDSHAKE_REFUSED, worded by intent.

const WORDS = {
  MISSING_PARAMETER: "Something needed to connect is missing.",
  INVALID_ACTION: "This page asked the server for something it does not do. Reload the page.",
  INVALID_SESSION_ID:
    "That is not a session code. Codes look like faithful-shepherd-427: two words and a number.",
  INVALID_LANGUAGE: "That is not a language code. Pick a language from the list.",
  UNSUPPORTED_LANGUAGE: "This broadcast is not offered in that language. Pick one from the list.",
  INVALID_QUALITY_TIER: "That quality setting does not exist.",
  INVALID_PARAMETER: "The server did not accept a value this page sent.",
  UNAUTHORIZED: "Your sign-in was not accepted: it is missing, expired or not valid. Sign in again.",
  FORBIDDEN: "You are not allowed to do that in this session.",
  SESSION_NOT_FOUND: "There is no live session with that code. It may have ended, or the code may be mistyped.",
  RATE_LIMITED: "Too many attempts from here in a short time. Wait a minute and try again.",
  SESSION_FULL: "This session is full. Try again when someone leaves.",
  SERVICE_UNAVAILABLE: "The service is busy or unavailable. Try again in a moment.",
  INVALID_MESSAGE: "The server could not read a message from this page.",
  UNKNOWN_ACTION: "The server does not know a request this page sent.",
  INVALID_AUDIO: "The server could not use a piece of audio from this page.",
  AUDIO_TOO_LARGE: "A piece of audio was too large to send.",
  INTERNAL_ERROR: "Something went wrong on the server. Try again.",
  OFFLINE: "This device is offline. Connect to the network and try again.",
};

const HANDSHAKE_REFUSED = {
  listener:
    "Could not join this session. The code may be mistyped, the session may have ended, or it may be full. " +
    "Check the code with the speaker and try again.",
  speaker:
    "The server did not start a session. Your sign-in may have expired or not be valid, or you started " +
    "too many sessions in the last hour. Sign in again, or wait and retry.",
  reconnect: "The connection was lost and could not be restored. The session has probably ended.",
};

/** Plain words for a refusal or error `code`. `intent` (listener, speaker,
 * reconnect) words HANDSHAKE_REFUSED, whose cause the browser cannot see. */
export function describeRefusal(code, { intent = "listener" } = {}) {
  if (code === "HANDSHAKE_REFUSED") return HANDSHAKE_REFUSED[intent] || HANDSHAKE_REFUSED.listener;
  return WORDS[code] || "Something went wrong. Try again.";
}

/** Every code with its own words (for tests and documentation). */
export const KNOWN_CODES = Object.freeze(Object.keys(WORDS));

/** Why a session ended (`sessionEnded.reason`), in plain words. */
export function describeEnd(reason) {
  switch (reason) {
    case "speakerEnded":
      return "The speaker ended the broadcast.";
    case "speakerDisconnected":
      return "The speaker's connection was lost; the broadcast has ended.";
    case "expired":
      return "The broadcast reached its time limit and has ended.";
    default:
      return "The broadcast has ended.";
  }
}
