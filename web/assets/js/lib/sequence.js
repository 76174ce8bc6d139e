// Ordering of broadcast messages by `sequenceNumber` (docs/protocol.md,
// "Ordering and duplicates"). Numbers count per session and target language;
// concurrent Lambda invocations and the concurrent fan-out can deliver them out of
// order, and a refresh overlap delivers them twice. A buffer delivers every number
// once, in order; a number that is missing holds back the ones after it until it
// arrives, or until a later one has waited GAP_TIMEOUT_MS, or until WINDOW numbers
// wait behind it: only then is the gap reported and skipped. Pure: time is passed in.

/** How many messages may wait behind a missing number before it is given up. */
export const WINDOW = 128;
/** How long (ms) a message waits for a missing number before that number is given up. */
export const GAP_TIMEOUT_MS = 2000;
/** How many given-up numbers are remembered, to tell "late" from "duplicate". */
const SKIPPED_MEMORY = 1024;

export class ReorderBuffer {
  constructor({ window = WINDOW, gapTimeoutMs = GAP_TIMEOUT_MS } = {}) {
    this.window = window;
    this.gapTimeoutMs = gapTimeoutMs;
    /** The next number to deliver; null until a baseline (welcome) or a timeout sets it. */
    this.next = null;
    this._held = new Map(); // number -> {message, at}
    this._skipped = new Set();
    this.duplicates = 0;
    this.late = 0;
  }

  /** Start after `baseline`, the last number published before this client arrived
   * (sessionJoined, languageChanged). Held numbers at or below it are dropped. */
  reset(baseline, now = 0) {
    this.next = baseline + 1;
    for (const n of [...this._held.keys()]) if (n <= baseline) this._held.delete(n);
    return this._drain(now);
  }

  /** After a reconnect: everything up to `baseline` was published while we were
   * away; what never arrived is reported at once (it cannot arrive any more). */
  advance(baseline, now = 0) {
    if (this.next === null) return this.reset(baseline, now);
    const out = { deliver: [], gaps: [] };
    while (this.next <= baseline) {
      if (this._held.has(this.next)) {
        out.deliver.push(this._take(this.next));
        this.next += 1;
      } else {
        let last = this.next;
        while (last + 1 <= baseline && !this._held.has(last + 1)) last += 1;
        out.gaps.push(this._skip(this.next, last, "reconnect"));
        this.next = last + 1;
      }
    }
    const rest = this._drain(now);
    out.deliver.push(...rest.deliver);
    out.gaps.push(...rest.gaps);
    return out;
  }

  /**
   * One numbered message arrived. Returns `{deliver: [...messages in order],
   * gaps: [...], duplicate: bool, late: bool}`.
   */
  push(number, message, now) {
    if ((this.next !== null && number < this.next) || this._held.has(number)) {
      const late = this._skipped.has(number);
      if (late) {
        // Its gap was reported and later messages delivered: applying it now would
        // put old state (a pause, a volume) over newer state. Dropped.
        this._skipped.delete(number);
        this.late += 1;
      } else {
        this.duplicates += 1;
      }
      return { deliver: [], gaps: [], duplicate: !late, late };
    }
    this._held.set(number, { message, at: now });
    return { ...this._drain(now), duplicate: false, late: false };
  }

  /** Give up on missing numbers whose followers waited long enough. */
  expire(now) {
    return this._drain(now);
  }

  /** When `expire` must run next (epoch ms), or null when nothing waits. */
  deadline() {
    if (this._held.size === 0) return null;
    return this._oldest() + this.gapTimeoutMs;
  }

  /** Numbers that arrived but wait for a missing one. */
  get waiting() {
    return this._held.size;
  }

  _oldest() {
    let oldest = Infinity;
    for (const { at } of this._held.values()) oldest = Math.min(oldest, at);
    return oldest;
  }

  _lowest() {
    let low = Infinity;
    for (const n of this._held.keys()) low = Math.min(low, n);
    return low;
  }

  _take(number) {
    const { message } = this._held.get(number);
    this._held.delete(number);
    return message;
  }

  _skip(first, last, reason) {
    for (let n = first; n <= last; n += 1) {
      this._skipped.add(n);
      if (this._skipped.size > SKIPPED_MEMORY) this._skipped.delete(this._skipped.values().next().value);
    }
    return { first, last, count: last - first + 1, reason };
  }

  _drain(now) {
    const out = { deliver: [], gaps: [] };
    for (;;) {
      if (this.next !== null && this._held.has(this.next)) {
        out.deliver.push(this._take(this.next));
        this.next += 1;
        continue;
      }
      if (this._held.size === 0) break;
      const timedOut = now - this._oldest() >= this.gapTimeoutMs;
      const overflow = this._held.size > this.window;
      if (!timedOut && !overflow) break;
      const low = this._lowest();
      if (this.next === null) {
        // No baseline came (a welcome lost): start at the lowest number seen.
        this.next = low;
        continue;
      }
      out.gaps.push(this._skip(this.next, low - 1, timedOut ? "timeout" : "window"));
      this.next = low;
    }
    return out;
  }
}
