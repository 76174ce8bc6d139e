// Speaker audio: the microphone through an AudioWorklet, resampled to 16 kHz
// mono and cut into PCM16 chunks of `chunkMs` ("pcm16/16000", docs/protocol.md).

import { Chunker, Resampler, RATE } from "./pcm.js";
import { MAX_CHUNK_BYTES } from "./protocol.js";

export class MicCapture {
  /**
   * @param {object} o
   * @param {(pcm: Uint8Array) => void} o.onChunk  a chunk of `chunkMs` of audio
   * @param {(peak: number) => void} [o.onLevel]    the input's peak, about 20 times a second
   * @param {number} [o.chunkMs]  200 ms: 6,400 bytes, well inside one 32 KB frame
   */
  constructor({ onChunk, onLevel = () => {}, chunkMs = 200, workletUrl = new URL("./capture-worklet.js", import.meta.url) }) {
    const samples = Math.round((RATE * chunkMs) / 1000);
    if (samples * 2 > MAX_CHUNK_BYTES) throw new RangeError(`chunkMs ${chunkMs} makes chunks over ${MAX_CHUNK_BYTES} bytes`);
    this._chunker = new Chunker(samples);
    this._onChunk = onChunk;
    this._onLevel = onLevel;
    this._workletUrl = workletUrl;
    this.paused = false;
    this.context = null;
    this._stream = null;
  }

  /** Ask for the microphone and start capturing. Rejects when access is denied. */
  async start() {
    this._stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
    const ctx = new AudioContext();
    this.context = ctx;
    await ctx.audioWorklet.addModule(this._workletUrl);
    const source = ctx.createMediaStreamSource(this._stream);
    const node = new AudioWorkletNode(ctx, "pcm-capture", { numberOfInputs: 1, numberOfOutputs: 0 });
    const resampler = new Resampler(ctx.sampleRate, RATE);
    node.port.onmessage = ({ data }) => {
      this._onLevel(this.paused ? 0 : data.peak);
      if (this.paused) return;
      for (const chunk of this._chunker.push(resampler.push(data.samples))) this._onChunk(chunk);
    };
    source.connect(node);
    this._node = node;
    if (ctx.state === "suspended") await ctx.resume();
  }

  /** While paused nothing is sent, and what was collected is dropped. */
  setPaused(paused) {
    this.paused = Boolean(paused);
    if (this.paused) this._chunker.clear();
  }

  stop() {
    if (this._stream) for (const track of this._stream.getTracks()) track.stop();
    if (this.context) this.context.close();
    this._stream = this.context = null;
  }
}
