// AudioWorklet processor: the microphone's first input, mixed down to mono, sent
// to the page in blocks of BLOCK samples at the context's rate, with their peak.
// Resampling and encoding happen on the page (pcm.js), where they are tested.

const BLOCK = 2048;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this._block = new Float32Array(BLOCK);
    this._filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length) {
      const frames = channels[0].length;
      for (let i = 0; i < frames; i += 1) {
        let sum = 0;
        for (let c = 0; c < channels.length; c += 1) sum += channels[c][i];
        this._block[this._filled++] = sum / channels.length;
        if (this._filled === BLOCK) {
          let peak = 0;
          for (let j = 0; j < BLOCK; j += 1) peak = Math.max(peak, Math.abs(this._block[j]));
          this.port.postMessage({ samples: this._block, peak }, [this._block.buffer]);
          this._block = new Float32Array(BLOCK);
          this._filled = 0;
        }
      }
    }
    return true; // keep running while the page wants it
  }
}

registerProcessor("pcm-capture", PcmCapture);
