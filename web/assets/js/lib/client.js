// BroadcastClient: one speaker or listener across refreshes and reconnects
// (docs/protocol.md). It owns the sockets; pages listen to its events:
//
//   state    {state, previous}   idle, connecting, live, refreshing, reconnecting, ended, failed, stopped
//   welcome  {message, kind}     sessionCreated / sessionJoined / connectionRefreshComplete; kind start|refresh|reconnect
//   message  {message}           every server message, once, broadcast ones in sequenceNumber order
//   gap      {language, first, last, count, reason}   numbers given up on (timeout, window, reconnect)
//   refused  {code, words, intent}                     the session could not be created or joined
//   ended    {reason, words}                           sessionEnded: no reconnect after it
//
// The refresh handover keeps the old socket until the new one has its
// connectionRefreshComplete, then closes the old one after `drainMs` (messages
// already on their way still arrive); both deliver, and the reorder buffer drops
// what arrives twice. A lost connection is reconnected with backoff.

import { backoff } from "./backoff.js";
import {
  WELCOMES,
  answers,
  checkJoin,
  checkLanguage,
  createUrl,
  joinUrl,
  parseMessage,
  refreshUrl,
  sequenceOf,
  AUDIO_FORMAT,
} from "./protocol.js";
import { describeEnd, describeRefusal } from "./refusals.js";
import { ReorderBuffer } from "./sequence.js";
import { tokenProblem } from "./jwt.js";

const OPEN = 1;

/** An `error` answer to a request. */
export class RequestError extends Error {
  constructor(code, message, action) {
    super(message || code);
    this.code = code;
    this.action = action;
  }
}

export class BroadcastClient extends EventTarget {
  /**
   * @param {object} o
   * @param {string} o.url              the WebSocket URL (config.js `websocketUrl`)
   * @param {"speaker"|"listener"} o.role
   * @param {string} [o.sessionId]      listener: the session to join
   * @param {string} [o.targetLanguage] listener
   * @param {string} [o.sourceLanguage] speaker (default "en")
   * @param {string} [o.qualityTier]    speaker
   * @param {(why: {purpose: string}) => Promise<string>} [o.getToken] speaker: a token, fresh for every connection
   * @param {string[]} [o.languages]    supported languages, checked before connecting
   * @param {number} [o.heartbeatIntervalSeconds] the server's HEARTBEAT_INTERVAL_SECONDS (30)
   */
  constructor({
    url,
    role,
    sessionId = null,
    targetLanguage = null,
    sourceLanguage = "en",
    qualityTier = null,
    getToken = null,
    languages = [],
    heartbeatIntervalSeconds = 30,
    maxReconnects = 8,
    maxRefreshAttempts = 5,
    drainMs = 1000,
    refreshTimeoutMs = 15000,
    welcomeTimeoutMs = 10000,
    answerTimeoutMs = 5000,
    reorder = {},
    WebSocketImpl = globalThis.WebSocket,
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    random = Math.random,
    isOnline = () => (typeof navigator === "undefined" ? true : navigator.onLine !== false),
  }) {
    super();
    if (role !== "speaker" && role !== "listener") throw new TypeError(`role must be speaker or listener, got ${role}`);
    Object.assign(this, { url, role, sessionId, targetLanguage, sourceLanguage, qualityTier, languages });
    this._getToken = getToken;
    this._opts = { maxReconnects, maxRefreshAttempts, drainMs, refreshTimeoutMs, welcomeTimeoutMs, answerTimeoutMs };
    this._heartbeatMs = Math.max(1, heartbeatIntervalSeconds) * 1000;
    this._reorder = reorder;
    this._WS = WebSocketImpl;
    this._now = now;
    this._setTimer = setTimer;
    this._clearTimer = clearTimer;
    this._random = random;
    this._isOnline = isOnline;

    this.state = "idle";
    this.connectionId = null;
    this.broadcastState = null;
    this._sockets = new Map(); // key -> entry
    this._counter = 0;
    this._current = null;
    this._buffers = new Map(); // language -> ReorderBuffer
    this._reconnects = 0;
    this._refreshAttempts = 0;
    this._refreshQuery = null;
    this._queue = [];
    this._inflight = null;
    this._timers = new Set();
    this._heartbeat = null;
    this._reorderTimer = null;
    this._stats = { opened: 0, refreshes: 0, reconnects: 0, delivered: 0, duplicates: 0, late: 0, gaps: 0,
      heartbeats: 0, audioSent: 0, audioDropped: 0 };
  }

  /** A copy of the counters (read-only for callers). */
  get stats() {
    return Object.freeze({ ...this._stats });
  }

  get live() {
    return this._current !== null && this._current.ws && this._current.ws.readyState === OPEN && this._current.welcomed;
  }

  // -- lifecycle ---------------------------------------------------------------

  /** Create (speaker) or join (listener) the session. */
  start() {
    if (this.state !== "idle") throw new Error(`start() once; the client is ${this.state}`);
    const problem =
      this.role === "listener"
        ? checkJoin({ sessionId: this.sessionId, targetLanguage: this.targetLanguage }, this.languages)
        : checkLanguage(this.sourceLanguage, this.languages, "sourceLanguage");
    if (problem) {
      this._fail(problem.code, this.role);
      return;
    }
    this._setState("connecting");
    this._open("start");
  }

  /** Close everything; no reconnect. A speaker's session ends with its connection. */
  stop() {
    if (["stopped", "ended", "failed"].includes(this.state)) return;
    this._shutdown();
    this._setState("stopped");
  }

  /** Start a refresh handover now, as `connectionRefreshRequired` would. */
  refresh() {
    if (this._current && this._current.welcomed && !this._pendingRefresh()) this._open("refresh");
  }

  // -- requests ------------------------------------------------------------------

  /** Send `{action, ...fields}` once the previous request was answered (the server
   * handles one connection's messages concurrently, so order is kept here). Resolves
   * with the answer; rejects with RequestError on an `error` answer. */
  request(action, fields = {}) {
    return new Promise((resolve, reject) => {
      if (["stopped", "ended", "failed"].includes(this.state)) {
        reject(new RequestError("NOT_CONNECTED", `the client is ${this.state}`, action));
        return;
      }
      this._queue.push({ action, body: { ...fields, action }, resolve, reject });
      this._pump();
    });
  }

  pause() { return this.request("pauseBroadcast"); }
  resume() { return this.request("resumeBroadcast"); }
  mute() { return this.request("muteBroadcast"); }
  unmute() { return this.request("unmuteBroadcast"); }
  setVolume(level) { return this.request("setVolume", { volumeLevel: level }); }
  status() { return this.request("getSessionStatus"); }
  end() { return this.request("endSession"); }
  changeLanguage(code) { return this.request("changeLanguage", { targetLanguage: code }); }

  /** Send one audio chunk (base64) on the current socket; false when it could not
   * go (no live socket, or the socket is backed up: late audio is useless). */
  sendAudio(audioData, { sequenceNumber, format = AUDIO_FORMAT } = {}) {
    const entry = this._current;
    if (!entry || !entry.welcomed || entry.ws.readyState !== OPEN || entry.ws.bufferedAmount > 512 * 1024) {
      this._stats.audioDropped += 1;
      return false;
    }
    const body = { action: "sendAudio", audioData, format };
    if (Number.isInteger(sequenceNumber)) body.sequenceNumber = sequenceNumber;
    entry.ws.send(JSON.stringify(body));
    this._stats.audioSent += 1;
    return true;
  }

  // -- sockets --------------------------------------------------------------------

  async _open(purpose, { delay = 0 } = {}) {
    const key = ++this._counter;
    const entry = { key, purpose, ws: null, opened: false, welcomed: false, connectionId: null, timer: null };
    this._sockets.set(key, entry);
    if (delay > 0) {
      await new Promise((resolve) => this._later(resolve, delay));
      if (this._sockets.get(key) !== entry) return;
    }
    let token = null;
    if (this.role === "speaker") {
      try {
        token = this._getToken ? await this._getToken({ purpose }) : null;
      } catch {
        token = null;
      }
      if (this._sockets.get(key) !== entry) return; // given up meanwhile
      if (tokenProblem(token, { now: this._now() })) {
        this._sockets.delete(key);
        if (purpose === "start") this._fail("UNAUTHORIZED", "speaker");
        else this._attemptFailed(entry);
        return;
      }
    }
    let url;
    if (purpose === "start") {
      url =
        this.role === "speaker"
          ? createUrl(this.url, { sourceLanguage: this.sourceLanguage, qualityTier: this.qualityTier, token })
          : joinUrl(this.url, { sessionId: this.sessionId, targetLanguage: this.targetLanguage });
    } else {
      url = refreshUrl(this.url, {
        role: this.role,
        sessionId: this.sessionId,
        targetLanguage: this.targetLanguage,
        token,
        // Only a refresh replaces a live connection; after a loss there is none to name.
        previousConnectionId: purpose === "refresh" ? this.connectionId : null,
        reconnectQuery: purpose === "refresh" ? this._refreshQuery : null,
      });
    }
    let ws;
    try {
      ws = new this._WS(url);
    } catch {
      this._sockets.delete(key);
      this._attemptFailed(entry);
      return;
    }
    entry.ws = ws;
    ws.onopen = () => this._onOpen(entry);
    ws.onmessage = (event) => this._onMessage(entry, event.data);
    ws.onclose = (event) => this._onClose(entry, event.code);
    ws.onerror = () => {}; // a close event follows with the details browsers give (none)
  }

  _onOpen(entry) {
    if (this._sockets.get(entry.key) !== entry) {
      entry.ws.close(1000);
      return;
    }
    entry.opened = true;
    this._stats.opened += 1;
    if (entry.purpose === "reconnect" && this._current && this._current !== entry) {
      // A refresh took over meanwhile: a second carrier would stay open, unheard.
      this._drop(entry);
      return;
    }
    if (entry.purpose !== "refresh") this._current = entry;
    const limit = entry.purpose === "refresh" ? this._opts.refreshTimeoutMs : this._opts.welcomeTimeoutMs;
    entry.timer = this._later(() => {
      entry.timer = null;
      if (!entry.welcomed) this._drop(entry, true);
    }, limit);
  }

  _onMessage(entry, data) {
    if (this._sockets.get(entry.key) !== entry) return;
    const message = parseMessage(typeof data === "string" ? data : "");
    if (!message) return;
    if (!entry.welcomed) {
      if (message.type === "error" && entry.purpose !== "refresh" && !this._anyWelcomed()) {
        // A server that refuses in a message instead of the handshake: its code is exact.
        this._fail(message.code || "HANDSHAKE_REFUSED", this.role);
        return;
      }
      if (WELCOMES.includes(message.type)) {
        this._welcome(entry, message);
        return;
      }
    }
    if (message.type === "connectionRefreshRequired") {
      if (entry === this._current && !this._pendingRefresh()) {
        this._refreshQuery = message.reconnectQuery || null;
        this._refreshAttempts = 0;
        this._open("refresh");
      }
      this._deliver(message);
      return;
    }
    const number = sequenceOf(message);
    if (this.role === "listener" && number !== null && message.type !== "languageChanged" && !WELCOMES.includes(message.type)) {
      const buffer = this._buffer(message.targetLanguage || this.targetLanguage);
      const result = buffer.push(number, message, this._now());
      if (result.duplicate) this._stats.duplicates += 1;
      if (result.late) this._stats.late += 1;
      this._release(message.targetLanguage || this.targetLanguage, result);
      return;
    }
    this._deliver(message);
  }

  _welcome(entry, message) {
    entry.welcomed = true;
    if (entry.timer !== null) {
      this._clearTimer(entry.timer);
      this._timers.delete(entry.timer);
      entry.timer = null;
    }
    entry.connectionId = message.connectionId || null;
    const kind = entry.purpose;
    const previous = this._current;
    this._current = entry;
    entry.purpose = "carrier";
    this.connectionId = entry.connectionId;
    this._reconnects = 0;
    if (message.sessionId) this.sessionId = message.sessionId;
    if (typeof message.targetLanguage === "string") this.targetLanguage = message.targetLanguage;
    if (message.broadcastState && typeof message.broadcastState === "object") this.broadcastState = message.broadcastState;
    if (kind === "refresh") {
      this._stats.refreshes += 1;
      if (previous && previous !== entry) this._retire(previous);
    } else if (kind === "reconnect") {
      this._stats.reconnects += 1;
    }
    this._startHeartbeat();
    this._setState("live");
    this.dispatchEvent(new CustomEvent("welcome", { detail: { message, kind } }));
    this._emitMessage(message);
    // Then what arrived before the welcome and follows its baseline.
    const number = sequenceOf(message);
    if (this.role === "listener" && number !== null) {
      const language = this.targetLanguage;
      const buffer = this._buffer(language);
      if (kind === "reconnect") this._release(language, buffer.advance(number, this._now()));
      else if (buffer.next === null) this._release(language, buffer.reset(number, this._now()));
      // A refresh keeps its place: the old socket may still deliver numbers below this baseline.
    }
    this._pump();
  }

  _onClose(entry, code) {
    if (entry.timer !== null) {
      this._clearTimer(entry.timer);
      this._timers.delete(entry.timer);
    }
    if (this._sockets.get(entry.key) !== entry) return; // dropped or retired on purpose
    this._sockets.delete(entry.key);
    if (["stopped", "ended", "failed"].includes(this.state)) return;
    if (entry === this._current) {
      this._current = null;
      this._stopHeartbeat();
      const refresh = this._pendingRefresh();
      if (refresh) {
        // The old socket went before the handover finished: the refresh socket
        // carries on (its connectionRefreshComplete makes it current).
        if (refresh.opened) this._current = refresh;
        return;
      }
      if (!entry.welcomed && entry.purpose === "start") {
        this._fail(this._isOnline() ? "HANDSHAKE_REFUSED" : "OFFLINE", this.role);
        return;
      }
      this._reconnect();
      return;
    }
    if (!entry.opened) {
      this._attemptFailed(entry);
      return;
    }
    if (entry.purpose === "refresh") this._attemptFailed(entry); // opened, closed before completing
  }

  /** A socket that never carried the session failed (refused, network, no token). */
  _attemptFailed(entry) {
    if (["stopped", "ended", "failed"].includes(this.state)) return;
    if (entry.purpose === "start") {
      this._fail(this._isOnline() ? "HANDSHAKE_REFUSED" : "OFFLINE", this.role);
    } else if (entry.purpose === "refresh") {
      if (!this._current) {
        this._reconnect();
      } else if (++this._refreshAttempts <= this._opts.maxRefreshAttempts) {
        // Keep the current connection and try again while it lasts.
        this._open("refresh", { delay: backoff(this._refreshAttempts, { random: this._random }) });
      }
    } else if (entry.purpose === "reconnect" && !this._current) {
      this._reconnect();
    }
  }

  _reconnect() {
    this._reconnects += 1;
    if (this._reconnects > this._opts.maxReconnects) {
      this._fail(this._isOnline() ? "HANDSHAKE_REFUSED" : "OFFLINE", "reconnect");
      return;
    }
    this._setState("reconnecting");
    this._open("reconnect", { delay: backoff(this._reconnects, { random: this._random }) });
  }

  /** Close a socket we no longer want (no reconnect follows). */
  _drop(entry, asFailure = false) {
    this._sockets.delete(entry.key);
    if (entry === this._current) this._current = null;
    if (entry.ws) entry.ws.close(1000);
    if (asFailure) this._attemptFailed(entry);
  }

  /** The replaced socket: keep reading it for `drainMs`, then close it. */
  _retire(entry) {
    entry.purpose = "retired";
    this._later(() => {
      this._sockets.delete(entry.key);
      if (entry.ws) entry.ws.close(1000);
    }, this._opts.drainMs);
  }

  _pendingRefresh() {
    for (const entry of this._sockets.values()) if (entry.purpose === "refresh") return entry;
    return null;
  }

  _anyWelcomed() {
    return this.connectionId !== null;
  }

  // -- messages -------------------------------------------------------------------

  _buffer(language) {
    let buffer = this._buffers.get(language);
    if (!buffer) {
      buffer = new ReorderBuffer(this._reorder);
      this._buffers.set(language, buffer);
    }
    return buffer;
  }

  _release(language, { deliver, gaps }) {
    for (const gap of gaps) {
      this._stats.gaps += gap.count;
      this.dispatchEvent(new CustomEvent("gap", { detail: { language, ...gap } }));
    }
    for (const message of deliver) this._deliver(message);
    this._armReorderTimer();
  }

  _armReorderTimer() {
    if (this._reorderTimer !== null) {
      this._clearTimer(this._reorderTimer);
      this._timers.delete(this._reorderTimer);
      this._reorderTimer = null;
    }
    let due = Infinity;
    for (const buffer of this._buffers.values()) {
      const d = buffer.deadline();
      if (d !== null) due = Math.min(due, d);
    }
    if (due === Infinity) return;
    this._reorderTimer = this._later(() => {
      this._reorderTimer = null;
      for (const [language, buffer] of this._buffers) this._release(language, buffer.expire(this._now()));
      this._armReorderTimer();
    }, Math.max(0, due - this._now()));
  }

  _deliver(message) {
    if (["stopped", "failed"].includes(this.state)) return;
    if (message.broadcastState && typeof message.broadcastState === "object") this.broadcastState = message.broadcastState;
    if (message.type === "languageChanged" && typeof message.targetLanguage === "string") {
      this.targetLanguage = message.targetLanguage;
      const number = sequenceOf(message);
      if (number !== null) {
        // docs/protocol.md: restart duplicate detection at this number.
        const buffer = this._buffer(message.targetLanguage);
        this._emitMessage(message);
        this._release(message.targetLanguage, buffer.reset(number, this._now()));
        this._answer(message);
        return;
      }
    }
    this._emitMessage(message);
    this._answer(message);
    if (message.type === "sessionEnded") {
      this._shutdown();
      this._setState("ended");
      this.dispatchEvent(new CustomEvent("ended", { detail: { reason: message.reason, words: describeEnd(message.reason) } }));
    }
  }

  _emitMessage(message) {
    this._stats.delivered += 1;
    this.dispatchEvent(new CustomEvent("message", { detail: { message } }));
  }

  _answer(message) {
    const item = this._inflight;
    if (!item || !answers(message, item.action)) return;
    this._clearTimer(item.timer);
    this._timers.delete(item.timer);
    this._inflight = null;
    if (message.type === "error") item.reject(new RequestError(message.code, message.message, item.action));
    else item.resolve(message);
    this._pump();
  }

  _pump() {
    if (this._inflight || this._queue.length === 0 || !this.live) return;
    const item = this._queue.shift();
    this._inflight = item;
    this._current.ws.send(JSON.stringify(item.body));
    item.timer = this._later(() => {
      if (this._inflight !== item) return;
      this._inflight = null;
      item.reject(new RequestError("TIMEOUT", `no answer to ${item.action}`, item.action));
      this._pump();
    }, this._opts.answerTimeoutMs);
  }

  // -- timers and state ------------------------------------------------------------

  _later(fn, ms) {
    const id = this._setTimer(() => {
      this._timers.delete(id);
      fn();
    }, ms);
    this._timers.add(id);
    return id;
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    const beat = () => {
      this._heartbeat = this._later(beat, this._heartbeatMs);
      const entry = this._current;
      if (entry && entry.ws && entry.ws.readyState === OPEN) {
        entry.ws.send(JSON.stringify({ action: "heartbeat" }));
        this._stats.heartbeats += 1;
      }
    };
    this._heartbeat = this._later(beat, this._heartbeatMs);
  }

  _stopHeartbeat() {
    if (this._heartbeat !== null) {
      this._clearTimer(this._heartbeat);
      this._timers.delete(this._heartbeat);
      this._heartbeat = null;
    }
  }

  _shutdown() {
    for (const id of this._timers) this._clearTimer(id);
    this._timers.clear();
    this._heartbeat = this._reorderTimer = null;
    // Forget the sockets before closing them: their close events are ours, not losses.
    const entries = [...this._sockets.values()];
    this._sockets.clear();
    this._current = null;
    for (const entry of entries) if (entry.ws) entry.ws.close(1000);
    const pending = this._inflight ? [this._inflight, ...this._queue] : [...this._queue];
    this._inflight = null;
    this._queue = [];
    for (const item of pending) item.reject(new RequestError("NOT_CONNECTED", "the connection is closed", item.action));
  }

  _fail(code, intent) {
    this._shutdown();
    this._setState("failed");
    this.dispatchEvent(new CustomEvent("refused", { detail: { code, intent, words: describeRefusal(code, { intent }) } }));
  }

  _setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, previous } }));
  }
}
