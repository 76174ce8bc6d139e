// BroadcastClient against fake sockets and a fake clock: the refresh handover,
// reconnects, refusals, ordering, requests and heartbeats of docs/protocol.md.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BroadcastClient } from "../../../web/assets/js/lib/client.js";

class Clock {
  constructor() { this.now = 1_000_000; this.timers = []; this.id = 0; }
  set = (fn, ms) => { const id = ++this.id; this.timers.push({ id, at: this.now + ms, fn }); return id; };
  clear = (id) => { this.timers = this.timers.filter((t) => t.id !== id); };
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      await flush();
      this.timers.sort((a, b) => a.at - b.at);
      const t = this.timers[0];
      if (!t || t.at > end) break;
      this.timers.shift();
      this.now = t.at;
      t.fn();
    }
    this.now = end;
    await flush();
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

function fakeSockets() {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = new URL(url);
      this.readyState = 0;
      this.bufferedAmount = 0;
      this.sent = [];
      sockets.push(this);
    }
    open() { this.readyState = 1; this.onopen(); }
    refuse() { this.readyState = 3; this.onclose({ code: 1006 }); }
    receive(message) { this.onmessage({ data: JSON.stringify(message) }); }
    send(text) { this.sent.push(JSON.parse(text)); }
    close(code = 1000) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.closedByClient = true;
      this.onclose({ code });
    }
    drop() { this.readyState = 3; this.onclose({ code: 1006 }); }
  }
  return { sockets, FakeSocket };
}

function listener(extra = {}) {
  const clock = new Clock();
  const { sockets, FakeSocket } = fakeSockets();
  const client = new BroadcastClient({
    url: "ws://127.0.0.1:1/dev", role: "listener", sessionId: "faithful-shepherd-427", targetLanguage: "es",
    languages: ["es", "fr"], heartbeatIntervalSeconds: 30, WebSocketImpl: FakeSocket,
    now: () => clock.now, setTimer: clock.set, clearTimer: clock.clear, random: () => 0.5, ...extra,
  });
  const seen = { messages: [], gaps: [], refused: [], ended: [], welcomes: [] };
  client.addEventListener("message", (e) => seen.messages.push(e.detail.message));
  client.addEventListener("gap", (e) => seen.gaps.push(e.detail));
  client.addEventListener("refused", (e) => seen.refused.push(e.detail));
  client.addEventListener("ended", (e) => seen.ended.push(e.detail));
  client.addEventListener("welcome", (e) => seen.welcomes.push(e.detail.kind));
  return { client, clock, sockets, seen };
}

const joined = (n = 0, id = "C1=") => ({ type: "sessionJoined", sessionId: "faithful-shepherd-427", targetLanguage: "es",
  connectionId: id, sequenceNumber: n, broadcastState: { isPaused: false, isMuted: false, volume: 1 } });
const published = (n) => ({ type: "translation", targetLanguage: "es", sequenceNumber: n, text: `line ${n}` });
const texts = (seen) => seen.messages.filter((m) => m.type === "translation").map((m) => m.sequenceNumber);

async function joinedListener(extra) {
  const t = listener(extra);
  t.client.start();
  await flush();
  t.sockets[0].open();
  t.sockets[0].receive(joined(0));
  return t;
}

test("a listener joins with its intent and gets messages in order, duplicates dropped", async () => {
  const { client, sockets, seen } = await joinedListener();
  assert.equal(sockets[0].url.searchParams.get("action"), "joinSession");
  assert.equal(client.state, "live");
  for (const n of [2, 1, 3, 3, 1]) sockets[0].receive(published(n));
  assert.deepEqual(texts(seen), [1, 2, 3]);
  assert.equal(client.stats.duplicates, 2);
});

test("a refresh handover loses and duplicates nothing, names the old connection, closes it after draining", async () => {
  const { client, clock, sockets, seen } = await joinedListener({ drainMs: 1000 });
  sockets[0].receive(published(1));
  sockets[0].receive({ type: "connectionRefreshRequired", role: "listener", refreshBy: clock.now + 60000,
    reconnectQuery: { action: "refreshConnection", sessionId: "faithful-shepherd-427", role: "listener", targetLanguage: "es" } });
  await flush();
  assert.equal(sockets.length, 2);
  const fresh = sockets[1];
  assert.equal(fresh.url.searchParams.get("action"), "refreshConnection");
  assert.equal(fresh.url.searchParams.get("previousConnectionId"), "C1=");
  fresh.open();
  sockets[0].receive(published(2));
  fresh.receive(published(3)); // the new socket is registered: both deliver from here
  sockets[0].receive(published(3));
  fresh.receive({ type: "connectionRefreshComplete", role: "listener", connectionId: "C2=", sequenceNumber: 3, targetLanguage: "es" });
  sockets[0].receive(published(4));
  fresh.receive(published(5));
  fresh.receive(published(4));
  assert.equal(sockets[0].closedByClient, undefined, "the old socket drains first");
  await clock.advance(1000);
  assert.equal(sockets[0].closedByClient, true);
  fresh.receive(published(6));
  assert.deepEqual(texts(seen), [1, 2, 3, 4, 5, 6]);
  assert.equal(client.connectionId, "C2=");
  assert.equal(client.stats.refreshes, 1);
  assert.deepEqual(seen.gaps, []);
  assert.deepEqual(seen.welcomes, ["start", "refresh"]);
});

test("an unexpected close reconnects with backoff and reports what was published meanwhile", async () => {
  const { client, clock, sockets, seen } = await joinedListener();
  sockets[0].receive(published(1));
  sockets[0].drop();
  assert.equal(client.state, "reconnecting");
  await clock.advance(374); // backoff(1) with random 0.5: 375 ms
  assert.equal(sockets.length, 1);
  await clock.advance(1);
  assert.equal(sockets.length, 2);
  const again = sockets[1];
  assert.equal(again.url.searchParams.get("action"), "refreshConnection");
  assert.equal(again.url.searchParams.get("previousConnectionId"), null, "the lost connection is not named");
  again.open();
  again.receive({ type: "connectionRefreshComplete", role: "listener", connectionId: "C3=", sequenceNumber: 4, targetLanguage: "es" });
  again.receive(published(5));
  assert.deepEqual(texts(seen), [1, 5]);
  assert.deepEqual(seen.gaps.map((g) => [g.first, g.last, g.reason]), [[2, 4, "reconnect"]]);
  assert.equal(client.state, "live");
});

test("a refused join is reported in words, and nothing reconnects", async () => {
  const { client, clock, sockets, seen } = listener();
  client.start();
  await flush();
  sockets[0].refuse();
  await clock.advance(60000);
  assert.equal(sockets.length, 1);
  assert.equal(client.state, "failed");
  assert.equal(seen.refused[0].code, "HANDSHAKE_REFUSED");
  assert.match(seen.refused[0].words, /Could not join/);
});

test("what the client can check itself is refused with the server's code, without connecting", async () => {
  const { client, sockets, seen } = listener({ targetLanguage: "xx" });
  client.start();
  await flush();
  assert.equal(sockets.length, 0);
  assert.equal(seen.refused[0].code, "UNSUPPORTED_LANGUAGE");
});

test("an error as the first message is a refusal with that exact code", async () => {
  const { client, sockets, seen } = listener();
  client.start();
  await flush();
  sockets[0].open();
  sockets[0].receive({ type: "error", code: "SESSION_FULL", message: "full" });
  assert.equal(seen.refused[0].code, "SESSION_FULL");
  assert.equal(client.state, "failed");
});

test("sessionEnded ends the client: no reconnect when the server closes", async () => {
  const { client, clock, sockets, seen } = await joinedListener();
  sockets[0].receive({ type: "sessionEnded", reason: "speakerEnded" });
  sockets[0].drop();
  await clock.advance(60000);
  assert.equal(sockets.length, 1);
  assert.equal(client.state, "ended");
  assert.match(seen.ended[0].words, /speaker ended/);
});

test("heartbeats at the server's interval on the current socket", async () => {
  const { clock, sockets } = await joinedListener({ heartbeatIntervalSeconds: 5 });
  await clock.advance(15000);
  assert.equal(sockets[0].sent.filter((m) => m.action === "heartbeat").length, 3);
});

test("requests go one at a time, each after the previous answer", async () => {
  const { client, sockets } = await joinedListener();
  const first = client.status();
  const second = client.changeLanguage("fr");
  assert.deepEqual(sockets[0].sent.map((m) => m.action), ["getSessionStatus"]);
  sockets[0].receive({ type: "sessionStatus", listenerCount: 1 });
  assert.equal((await first).listenerCount, 1);
  assert.deepEqual(sockets[0].sent.map((m) => m.action), ["getSessionStatus", "changeLanguage"]);
  sockets[0].receive({ type: "error", code: "UNSUPPORTED_LANGUAGE", action: "changeLanguage" });
  await assert.rejects(second, (e) => e.code === "UNSUPPORTED_LANGUAGE");
});

test("languageChanged restarts ordering at its baseline in the new language", async () => {
  const { client, sockets, seen } = await joinedListener();
  sockets[0].receive({ type: "languageChanged", targetLanguage: "fr", previousLanguage: "es", sequenceNumber: 40 });
  sockets[0].receive({ type: "translation", targetLanguage: "fr", sequenceNumber: 41, text: "bonjour" });
  assert.equal(client.targetLanguage, "fr");
  assert.deepEqual(seen.messages.filter((m) => m.type === "translation").map((m) => m.text), ["bonjour"]);
});

test("a speaker gets a fresh token for every connection, and a refresh carries it", async () => {
  const clock = new Clock();
  const { sockets, FakeSocket } = fakeSockets();
  const jwt = (n) => `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ exp: 9e9, n })).toString("base64url")}.c2ln`;
  let issued = 0;
  const client = new BroadcastClient({
    url: "ws://127.0.0.1:1/dev", role: "speaker", sourceLanguage: "en", WebSocketImpl: FakeSocket,
    getToken: async () => jwt(++issued), now: () => clock.now, setTimer: clock.set, clearTimer: clock.clear,
  });
  client.start();
  await flush();
  assert.equal(sockets[0].url.searchParams.get("action"), "createSession");
  assert.equal(sockets[0].url.searchParams.get("token"), jwt(1));
  sockets[0].open();
  sockets[0].receive({ type: "sessionCreated", sessionId: "faithful-shepherd-427", connectionId: "S1=" });
  sockets[0].receive({ type: "connectionRefreshRequired", role: "speaker",
    reconnectQuery: { action: "refreshConnection", sessionId: "faithful-shepherd-427", role: "speaker" } });
  await flush();
  assert.equal(sockets[1].url.searchParams.get("token"), jwt(2));
  assert.equal(sockets[1].url.searchParams.get("previousConnectionId"), null);
  sockets[1].open();
  sockets[1].receive({ type: "connectionRefreshComplete", role: "speaker", connectionId: "S2=" });
  assert.ok(client.sendAudio("AAAA", { sequenceNumber: 1 }));
  assert.deepEqual(sockets[1].sent.map((m) => [m.action, m.sequenceNumber, m.format]), [["sendAudio", 1, "pcm16/16000"]]);
});

test("a speaker without a usable token is refused before connecting", async () => {
  const { sockets, FakeSocket } = fakeSockets();
  const client = new BroadcastClient({ url: "ws://h/dev", role: "speaker", WebSocketImpl: FakeSocket, getToken: async () => "junk" });
  const refused = [];
  client.addEventListener("refused", (e) => refused.push(e.detail.code));
  client.start();
  await flush();
  assert.equal(sockets.length, 0);
  assert.deepEqual(refused, ["UNAUTHORIZED"]);
});
