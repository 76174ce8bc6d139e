// Audio as the protocol carries it: "pcm16/16000", 16-bit little-endian mono
// PCM at 16 kHz, base64 in `audioData`. Pure.

export const RATE = 16000;

/** A streaming resampler to 16 kHz. Downsampling averages the input samples
 * under each output sample (a box filter), enough against aliasing for speech;
 * upsampling interpolates linearly. Keeps its phase across calls. */
export class Resampler {
  constructor(inputRate, outputRate = RATE) {
    if (!(inputRate > 0 && outputRate > 0)) throw new RangeError("sample rates must be > 0");
    this.step = inputRate / outputRate; // input samples per output sample
    this._pos = 0; // position of the next output sample, in input samples, relative to the pending buffer
    this._pending = new Float32Array(0);
  }

  /** Resample `input` (Float32Array at the input rate); returns the samples ready. */
  push(input) {
    const data = new Float32Array(this._pending.length + input.length);
    data.set(this._pending);
    data.set(input, this._pending.length);
    const out = [];
    const step = this.step;
    let pos = this._pos;
    if (step >= 1) {
      while (pos + step <= data.length) {
        const start = Math.floor(pos);
        const end = Math.floor(pos + step);
        let sum = 0;
        for (let i = start; i < end; i += 1) sum += data[i];
        out.push(end > start ? sum / (end - start) : data[start]);
        pos += step;
      }
    } else {
      while (pos + 1 < data.length) {
        const i = Math.floor(pos);
        const frac = pos - i;
        out.push(data[i] * (1 - frac) + data[i + 1] * frac);
        pos += step;
      }
    }
    const keep = Math.floor(pos);
    this._pending = data.slice(keep);
    this._pos = pos - keep;
    return Float32Array.from(out);
  }
}

/** Float samples (-1..1) to 16-bit little-endian PCM bytes (clipped). */
export function floatToPcm16(samples) {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < samples.length; i += 1) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(i * 2, s < 0 ? Math.round(s * 32768) : Math.round(s * 32767), true);
  }
  return bytes;
}

/** 16-bit little-endian PCM bytes to float samples (-1..1); an odd last byte is ignored. */
export function pcm16ToFloat(bytes) {
  const count = Math.floor(bytes.length / 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * 2);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 1) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

export function bytesToBase64(bytes) {
  let binary = "";
  const CHUNK = 0x8000; // String.fromCharCode's argument count is limited
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Base64 to bytes; null when `text` is not base64. */
export function base64ToBytes(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Collects 16 kHz float samples into PCM16 chunks of `chunkSamples`. */
export class Chunker {
  constructor(chunkSamples) {
    if (!(Number.isInteger(chunkSamples) && chunkSamples > 0)) throw new RangeError("chunkSamples must be > 0");
    this.chunkSamples = chunkSamples;
    this._buffer = new Float32Array(chunkSamples);
    this._filled = 0;
  }

  /** Add samples; returns the PCM16 chunks (Uint8Array) completed. */
  push(samples) {
    const chunks = [];
    let offset = 0;
    while (offset < samples.length) {
      const n = Math.min(this.chunkSamples - this._filled, samples.length - offset);
      this._buffer.set(samples.subarray(offset, offset + n), this._filled);
      this._filled += n;
      offset += n;
      if (this._filled === this.chunkSamples) {
        chunks.push(floatToPcm16(this._buffer));
        this._filled = 0;
      }
    }
    return chunks;
  }

  /** Drop what was collected (on pause: stale audio must not go out later). */
  clear() {
    this._filled = 0;
  }
}

/** Peak absolute value of `samples` (0..1). */
export function peak(samples) {
  let p = 0;
  for (let i = 0; i < samples.length; i += 1) p = Math.max(p, Math.abs(samples[i]));
  return p;
}
