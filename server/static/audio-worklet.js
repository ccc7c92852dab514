// The audio thread of the web interview: microphone in, the interviewer's voice out.
//
// Capture: the microphone at the AudioContext's rate (often 48 kHz) is low-pass filtered and resampled
// to 16 kHz, converted to PCM16 and posted to the page as 20 ms frames (320 samples), which the page
// sends on the WebSocket. Playback: PCM16 16 kHz from the server goes into a ring buffer and is played,
// resampled to the context's rate. {type: "clear"} empties it (the candidate barged in); {type: "flush"}
// plays out the rest at the end. When it runs dry after playing, the page gets {type: "drained"}.

const WIRE_RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz
const RING_SECONDS = 30; // upper bound of queued playback; older audio is dropped first
const PRIME_SAMPLES = 640; // 40 ms buffered before playback starts, to ride out network jitter
const TAPS = 31;

function lowPass(cutoff, taps) {
  // Windowed-sinc (Hamming) FIR; cutoff as a fraction of the sample rate.
  const h = new Float32Array(taps);
  const mid = (taps - 1) / 2;
  let sum = 0;
  for (let i = 0; i < taps; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    h[i] = sinc * (0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (taps - 1)));
    sum += h[i];
  }
  for (let i = 0; i < taps; i++) h[i] /= sum;
  return h;
}

class PcmBridge extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / WIRE_RATE; // context samples per wire sample
    this.filter = this.step > 1 ? lowPass((0.45 * WIRE_RATE) / sampleRate, TAPS) : null;
    this.delay = new Float32Array(TAPS); // recent input, for the filter
    this.delayAt = 0;
    this.filtered = new Float32Array(0);
    this.prev = 0; // the last filtered sample of the previous block
    this.next = 0; // where the next wire sample falls, in this block's sample positions
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.frameLength = 0;

    this.ring = new Float32Array(WIRE_RATE * RING_SECONDS);
    this.readAt = 0;
    this.count = 0;
    this.primed = false;
    this.phase = 0; // fractional position between ring[readAt] and the sample after it
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "play") this.enqueue(new Int16Array(message.pcm));
    else if (message.type === "clear") { this.count = 0; this.primed = false; this.phase = 0; }
    else if (message.type === "flush") { // the call is over: play what is left, then say so
      if (this.count >= 2) this.primed = true;
      else this.port.postMessage({ type: "drained" });
    }
  }

  enqueue(pcm) {
    const size = this.ring.length;
    for (let i = 0; i < pcm.length; i++) {
      if (this.count === size) { this.readAt = (this.readAt + 1) % size; this.count--; }
      this.ring[(this.readAt + this.count) % size] = pcm[i] / 32768;
      this.count++;
    }
  }

  capture(input) {
    let samples = input;
    if (this.filter) {
      if (this.filtered.length !== input.length) this.filtered = new Float32Array(input.length);
      for (let i = 0; i < input.length; i++) {
        this.delay[this.delayAt] = input[i];
        let acc = 0;
        let at = this.delayAt;
        for (let k = 0; k < TAPS; k++) {
          acc += this.filter[k] * this.delay[at];
          at = at === 0 ? TAPS - 1 : at - 1;
        }
        this.filtered[i] = acc;
        this.delayAt = (this.delayAt + 1) % TAPS;
      }
      samples = this.filtered;
    }
    // Linear interpolation between filtered samples; position -1 is the previous block's last one.
    const n = samples.length;
    while (this.next < n - 1) {
      const base = Math.floor(this.next);
      const frac = this.next - base;
      const a = base < 0 ? this.prev : samples[base];
      const b = samples[base + 1];
      this.push(a + (b - a) * frac);
      this.next += this.step;
    }
    this.next -= n;
    this.prev = samples[n - 1];
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.frame[this.frameLength++] = Math.round(clipped * 32767);
    if (this.frameLength === FRAME_SAMPLES) {
      this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
      this.frame = new Int16Array(FRAME_SAMPLES);
      this.frameLength = 0;
    }
  }

  play(output) {
    const size = this.ring.length;
    if (!this.primed && this.count >= PRIME_SAMPLES) this.primed = true;
    for (let i = 0; i < output.length; i++) {
      if (!this.primed || this.count < 2) { output[i] = 0; continue; }
      const a = this.ring[this.readAt];
      const b = this.ring[(this.readAt + 1) % size];
      output[i] = a + (b - a) * this.phase;
      this.phase += 1 / this.step;
      while (this.phase >= 1 && this.count > 1) {
        this.phase -= 1;
        this.readAt = (this.readAt + 1) % size;
        this.count--;
      }
    }
    if (this.primed && this.count < 2) {
      this.primed = false;
      this.count = 0;
      this.port.postMessage({ type: "drained" });
    }
  }

  process(inputs, outputs) {
    const input = inputs[0] && inputs[0][0];
    if (input && input.length) this.capture(input);
    const output = outputs[0];
    if (output && output[0]) {
      this.play(output[0]);
      for (let c = 1; c < output.length; c++) output[c].set(output[0]);
    }
    return true;
  }
}

registerProcessor("pcm-bridge", PcmBridge);
