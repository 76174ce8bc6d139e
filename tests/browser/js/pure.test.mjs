// The small pure modules: protocol, backoff, refusals, presence, jwt, pcm, cognito.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as protocol from "../../../web/assets/js/lib/protocol.js";
import { backoff } from "../../../web/assets/js/lib/backoff.js";
import { describeRefusal, describeEnd, KNOWN_CODES } from "../../../web/assets/js/lib/refusals.js";
import { LanguageCounts } from "../../../web/assets/js/lib/presence.js";
import { claims, tokenProblem, userName } from "../../../web/assets/js/lib/jwt.js";
import * as pcm from "../../../web/assets/js/lib/pcm.js";
import { authorizeUrl, pkcePair, tokenRequest } from "../../../web/assets/js/lib/cognito.js";

test("parseMessage: objects with a type; gateway errors; nothing else", () => {
  assert.deepEqual(protocol.parseMessage('{"type":"heartbeatAck","timestamp":1}'), { type: "heartbeatAck", timestamp: 1 });
  assert.deepEqual(protocol.parseMessage('{"message":"Internal server error","connectionId":"x"}'),
    { type: "gatewayError", message: "Internal server error" });
  for (const bad of ["", "nope", "[1]", "null", "3", '{"type":3}']) assert.equal(protocol.parseMessage(bad), null, bad);
});

test("sequenceOf accepts non-negative integers only", () => {
  assert.equal(protocol.sequenceOf({ sequenceNumber: 0 }), 0);
  for (const v of [-1, 1.5, "3", true, null, undefined]) assert.equal(protocol.sequenceOf({ sequenceNumber: v }), null);
});

test("intent URLs carry every parameter URL-encoded, and ask for in-band refusals", () => {
  assert.equal(protocol.createUrl("ws://h/dev", { sourceLanguage: "en", qualityTier: null, token: "a.b.c" }),
    "ws://h/dev?action=createSession&sourceLanguage=en&token=a.b.c&refusal=message");
  assert.equal(protocol.joinUrl("ws://h/dev", { sessionId: "faithful-shepherd-427", targetLanguage: "es" }),
    "ws://h/dev?action=joinSession&sessionId=faithful-shepherd-427&targetLanguage=es&refusal=message");
  const refresh = new URL(protocol.refreshUrl("ws://h/dev", { role: "listener", sessionId: "a-b-123", targetLanguage: "es" }));
  assert.equal(refresh.searchParams.get("refusal"), "message");
});

test("a listener refresh names the connection it replaces; a speaker's carries its token", () => {
  const q = { action: "refreshConnection", sessionId: "a-b-123", role: "listener", targetLanguage: "es" };
  const listener = new URL(protocol.refreshUrl("ws://h/dev", { role: "listener", previousConnectionId: "C1=", reconnectQuery: q }));
  assert.equal(listener.searchParams.get("previousConnectionId"), "C1=");
  assert.equal(listener.searchParams.get("targetLanguage"), "es");
  assert.equal(listener.searchParams.get("token"), null);
  const speaker = new URL(protocol.refreshUrl("ws://h/dev", { role: "speaker", sessionId: "a-b-123", token: "t.o.k" }));
  assert.equal(speaker.searchParams.get("role"), "speaker");
  assert.equal(speaker.searchParams.get("token"), "t.o.k");
});

test("checkJoin finds what the server would refuse, with its code", () => {
  const langs = ["de", "es"];
  assert.equal(protocol.checkJoin({ sessionId: "faithful-shepherd-427", targetLanguage: "es" }, langs), null);
  assert.equal(protocol.checkJoin({ sessionId: "", targetLanguage: "es" }, langs).code, "MISSING_PARAMETER");
  assert.equal(protocol.checkJoin({ sessionId: "Faithful", targetLanguage: "es" }, langs).code, "INVALID_SESSION_ID");
  assert.equal(protocol.checkJoin({ sessionId: "a-b-099", targetLanguage: "es" }, langs).code, "INVALID_SESSION_ID");
  assert.equal(protocol.checkJoin({ sessionId: "a-b-100", targetLanguage: "EN" }, langs).code, "INVALID_LANGUAGE");
  assert.equal(protocol.checkJoin({ sessionId: "a-b-100", targetLanguage: "fr" }, langs).code, "UNSUPPORTED_LANGUAGE");
});

test("session ids typed by people are normalised", () => {
  assert.equal(protocol.normaliseSessionId("  Faithful Shepherd 427 "), "faithful-shepherd-427");
});

test("answers matches replies to actions", () => {
  assert.ok(protocol.answers({ type: "controlAck", action: "pauseBroadcast" }, "pauseBroadcast"));
  assert.ok(!protocol.answers({ type: "controlAck", action: "muteBroadcast" }, "pauseBroadcast"));
  assert.ok(protocol.answers({ type: "sessionStatus" }, "getSessionStatus"));
  assert.ok(protocol.answers({ type: "error", action: "changeLanguage" }, "changeLanguage"));
});

test("backoff doubles up to the cap, jittered within the upper half", () => {
  assert.equal(backoff(1, { random: () => 0 }), 250);
  assert.equal(backoff(1, { random: () => 1 }), 500);
  assert.equal(backoff(4, { random: () => 1 }), 4000);
  assert.equal(backoff(30, { random: () => 1 }), 30000);
});

test("every refusal and error code of docs/protocol.md has its own plain words", () => {
  const codes = ["MISSING_PARAMETER", "INVALID_ACTION", "INVALID_SESSION_ID", "INVALID_LANGUAGE", "UNSUPPORTED_LANGUAGE",
    "INVALID_QUALITY_TIER", "INVALID_PARAMETER", "UNAUTHORIZED", "FORBIDDEN", "SESSION_NOT_FOUND", "RATE_LIMITED",
    "SESSION_FULL", "SERVICE_UNAVAILABLE", "INVALID_MESSAGE", "UNKNOWN_ACTION", "INVALID_AUDIO", "AUDIO_TOO_LARGE",
    "INTERNAL_ERROR"];
  const words = new Set();
  for (const code of codes) {
    assert.ok(KNOWN_CODES.includes(code), code);
    words.add(describeRefusal(code));
  }
  assert.equal(words.size, codes.length);
  assert.match(describeRefusal("HANDSHAKE_REFUSED", { intent: "listener" }), /full/);
  assert.match(describeRefusal("HANDSHAKE_REFUSED", { intent: "speaker" }), /sign-in/);
  assert.match(describeEnd("speakerEnded"), /ended/);
});

test("listener counts: a snapshot, deltas on top, later deltas re-applied over an older snapshot", () => {
  const c = new LanguageCounts();
  c.applyStatus({ timestamp: 1000, languageDistribution: { es: 2, fr: 1 } });
  c.applyPresence({ timestamp: 1100, joined: "de" });
  c.applyPresence({ timestamp: 1200, left: "fr" });
  assert.deepEqual(c.snapshot(), { de: 1, es: 2 });
  c.applyPresence({ timestamp: 1300, joined: "es", left: "de" }); // a language change
  assert.deepEqual(c.snapshot(), { es: 3 });
  // A status taken at 1250 knew the first two deltas, not the change.
  c.applyStatus({ timestamp: 1250, languageDistribution: { de: 1, es: 2 } });
  assert.deepEqual(c.snapshot(), { es: 3 });
  assert.equal(c.total, 3);
  c.applyPresence({ timestamp: 1400, left: "it" }); // never below zero
  assert.deepEqual(c.snapshot(), { es: 3 });
});

const jwt = (payload) => `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.c2ln`;

test("tokens are read, never trusted: missing, malformed, expired", () => {
  const now = 1_000_000_000_000;
  assert.equal(tokenProblem("", { now }), "missing");
  assert.equal(tokenProblem("not a token", { now }), "malformed");
  assert.equal(tokenProblem(jwt({ exp: now / 1000 - 1 }), { now }), "expired");
  assert.equal(tokenProblem(jwt({ exp: now / 1000 + 3600 }), { now }), null);
  assert.equal(userName(jwt({ "cognito:username": "alice" })), "alice");
  assert.equal(claims("a.b"), null);
});

test("PCM16: little-endian, clipped, and back", () => {
  const bytes = pcm.floatToPcm16(Float32Array.from([0, 1, -1, 2, 0.5]));
  assert.deepEqual([...bytes.slice(0, 6)], [0, 0, 0xff, 0x7f, 0x00, 0x80]);
  const back = pcm.pcm16ToFloat(bytes);
  assert.ok(Math.abs(back[4] - 0.5) < 1e-3);
  assert.equal(pcm.pcm16ToFloat(Uint8Array.from([1, 2, 3])).length, 1);
});

test("base64 round trip; invalid base64 is null", () => {
  const bytes = Uint8Array.from({ length: 70000 }, (_, i) => i % 256);
  assert.deepEqual(pcm.base64ToBytes(pcm.bytesToBase64(bytes)), bytes);
  assert.equal(pcm.base64ToBytes("***"), null);
});

test("resampling 48 kHz to 16 kHz keeps a 440 Hz tone and the count of samples across calls", () => {
  const r = new pcm.Resampler(48000, 16000);
  let out = [];
  for (let block = 0; block < 10; block += 1) {
    const input = Float32Array.from({ length: 4800 }, (_, i) => Math.sin((2 * Math.PI * 440 * (block * 4800 + i)) / 48000));
    out = out.concat([...r.push(input)]);
  }
  assert.ok(Math.abs(out.length - 16000) <= 1, `${out.length}`);
  assert.ok(pcm.peak(Float32Array.from(out)) > 0.9);
  const r2 = new pcm.Resampler(44100, 16000);
  const n = r2.push(new Float32Array(44100)).length;
  assert.ok(Math.abs(n - 16000) <= 1, `${n}`);
});

test("chunks of exactly the asked size; clear drops the partial one", () => {
  const chunker = new pcm.Chunker(3200);
  assert.equal(chunker.push(new Float32Array(3000)).length, 0);
  const chunks = chunker.push(new Float32Array(3500));
  assert.equal(chunks.length, 2);
  assert.equal(chunks[0].length, 6400);
  chunker.push(new Float32Array(100));
  chunker.clear();
  assert.equal(chunker.push(new Float32Array(3199)).length, 0);
});

test("Hosted UI: PKCE S256 and the code flow's URLs", async () => {
  const { verifier, challenge } = await pkcePair();
  assert.ok(verifier.length >= 43);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  assert.equal(challenge, Buffer.from(digest).toString("base64url"));
  const url = new URL(authorizeUrl({ domain: "auth.example.com", clientId: "abc", redirectUri: "https://s/speak", challenge, state: "st" }));
  assert.equal(url.origin + url.pathname, "https://auth.example.com/oauth2/authorize");
  assert.equal(url.searchParams.get("code_challenge_method"), "S256");
  assert.equal(url.searchParams.get("response_type"), "code");
  const refresh = tokenRequest({ domain: "https://auth.example.com/", clientId: "abc", refreshToken: "r" });
  assert.equal(refresh.url, "https://auth.example.com/oauth2/token");
  assert.equal(new URLSearchParams(refresh.body).get("grant_type"), "refresh_token");
});
