// Listener audio: received "pcm16/16000" chunks played through Web Audio in the
// speaker's order (`speakerSequenceNumber`), with a small jitter buffer. The first
// chunk is held `holdMs` too (an earlier one may overtake it: concurrent sendAudio
// invocations), then playing starts at the lowest number seen. A chunk that is
// missing holds the ones after it for `holdMs`, then is skipped; one that comes
// after its turn is dropped (playing it would repeat the past). The same rule as
// `listen --audio-out` (broadcast_client/ordering.py, AudioOrder). An
// AnalyserNode after the volume counts the non-silent samples that reach the
// audio graph (`stats`).

import { base64ToBytes, pcm16ToFloat, RATE } from "./pcm.js";
import { ReorderBuffer } from "./sequence.js";

/** |sample| above this counts as sound (-60 dBFS). */
const SILENCE = 0.001;

export class AudioPlayer {
  constructor({ latencyMs = 250, holdMs = 300, AudioContextImpl = globalThis.AudioContext, now = () => Date.now() } = {}) {
    this.latency = latencyMs / 1000;
    this._order = new ReorderBuffer({ window: 32, gapTimeoutMs: holdMs });
    this._AudioContext = AudioContextImpl;
    this._now = now;
    this.context = null;
    this._gain = null;
    this._analyser = null;
    this._nextTime = 0;
    this._timer = null;
    this._poll = null;
    this._volume = 1;
    this._silenced = false;
    this._stats = { chunksReceived: 0, chunksPlayed: 0, late: 0, skipped: 0, badChunks: 0,
      nonSilentSamples: 0, peak: 0, receivedPeak: 0, played: [] };
  }

  /** Create the audio graph. Call from a user gesture (a click) where autoplay
   * rules need one; `resume()` again after one if `context.state` is "suspended". */
  start() {
    if (this.context) return this.context;
    const ctx = new this._AudioContext();
    this.context = ctx;
    this._gain = ctx.createGain();
    this._analyser = ctx.createAnalyser();
    this._analyser.fftSize = 2048;
    this._gain.connect(this._analyser);
    this._analyser.connect(ctx.destination);
    this._applyGain();
    const frame = new Float32Array(this._analyser.fftSize);
    // The analyser shows the last fftSize samples: poll a little faster than that
    // lasts (2048 samples at 48 kHz: 43 ms) so most samples are seen once.
    this._poll = setInterval(() => {
      this._analyser.getFloatTimeDomainData(frame);
      let loud = 0;
      let peak = 0;
      for (const s of frame) {
        const a = Math.abs(s);
        if (a > SILENCE) loud += 1;
        if (a > peak) peak = a;
      }
      this._stats.nonSilentSamples += loud;
      this._stats.peak = Math.max(this._stats.peak * 0.95, peak);
    }, 40);
    return ctx;
  }

  resume() {
    return this.context ? this.context.resume() : Promise.resolve();
  }

  get stats() {
    return Object.freeze({ ...this._stats, played: [...this._stats.played],
      contextState: this.context ? this.context.state : "none" });
  }

  /** The broadcast's volume (0..1), muted or not. */
  setVolume(level) {
    if (Number.isFinite(level)) this._volume = Math.max(0, Math.min(1, level));
    this._applyGain();
  }

  setSilenced(silenced) {
    this._silenced = Boolean(silenced);
    this._applyGain();
  }

  _applyGain() {
    if (this._gain) this._gain.gain.value = this._silenced ? 0 : this._volume;
  }

  /** One `audio` message. */
  push(message) {
    this._stats.chunksReceived += 1;
    if (message.format && message.format !== "pcm16/16000") {
      this._stats.badChunks += 1; // a format this player cannot play
      return;
    }
    const bytes = base64ToBytes(message.audioData);
    if (!bytes || bytes.length < 2) {
      this._stats.badChunks += 1;
      return;
    }
    const number = message.speakerSequenceNumber;
    if (!Number.isInteger(number)) {
      this._play(bytes, null);
      return;
    }
    // No baseline: the buffer holds the first chunks for holdMs, then starts at the
    // lowest number seen (ReorderBuffer's rule when a welcome was lost).
    const result = this._order.push(number, { bytes, number }, this._now());
    if (result.late || result.duplicate) this._stats.late += 1;
    this._release(result);
  }

  _release({ deliver, gaps }) {
    for (const gap of gaps) this._stats.skipped += gap.count;
    for (const { bytes, number } of deliver) this._play(bytes, number);
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
    const due = this._order.deadline();
    if (due !== null) {
      this._timer = setTimeout(() => {
        this._timer = null;
        this._release(this._order.expire(this._now()));
      }, Math.max(0, due - this._now()));
    }
  }

  _play(bytes, number) {
    const samples = pcm16ToFloat(bytes);
    this._stats.chunksPlayed += 1;
    for (const v of samples) if (Math.abs(v) > this._stats.receivedPeak) this._stats.receivedPeak = Math.abs(v);
    if (number !== null) {
      this._stats.played.push(number);
      if (this._stats.played.length > 5000) this._stats.played.shift();
    }
    const ctx = this.context;
    if (!ctx) return; // not started: counted, not heard
    const buffer = ctx.createBuffer(1, samples.length, RATE);
    buffer.copyToChannel(samples, 0);
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this._gain);
    // After an underrun (or at first) start `latency` ahead: the jitter buffer.
    const at = Math.max(this._nextTime, ctx.currentTime + (this._nextTime < ctx.currentTime ? this.latency : 0));
    source.start(at);
    this._nextTime = at + buffer.duration;
  }

  close() {
    if (this._poll !== null) clearInterval(this._poll);
    if (this._timer !== null) clearTimeout(this._timer);
    this._poll = this._timer = null;
    if (this.context) this.context.close();
    this.context = null;
  }
}
