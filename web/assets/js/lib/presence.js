// The speaker's live listener count by language (docs/protocol.md,
// listenerPresence): a snapshot from `sessionStatus.languageDistribution`, moved
// by `listenerPresence` deltas pushed by the server. A delta whose timestamp is
// later than the snapshot's is applied on top of a snapshot that arrives after
// it; earlier ones are taken to be in the snapshot already. Pure.

/** How long (ms) deltas are kept to be re-applied over a newer snapshot. */
const KEEP_MS = 60000;

export class LanguageCounts {
  constructor() {
    this._counts = new Map();
    this._recent = []; // {timestamp, joined, left}
    this.snapshotAt = null; // sessionStatus.timestamp of the last snapshot
  }

  /** Replace the counts with a `sessionStatus` (speaker's, with languageDistribution). */
  applyStatus(status) {
    const distribution = status && status.languageDistribution;
    if (!distribution || typeof distribution !== "object") return false;
    this._counts = new Map();
    for (const [language, count] of Object.entries(distribution)) {
      if (Number.isInteger(count) && count > 0) this._counts.set(language, count);
    }
    this.snapshotAt = Number.isFinite(status.timestamp) ? status.timestamp : null;
    this._recent = this._recent.filter((d) => this.snapshotAt === null || d.timestamp > this.snapshotAt - KEEP_MS);
    for (const delta of this._recent) {
      if (this.snapshotAt !== null && delta.timestamp > this.snapshotAt) this._apply(delta);
    }
    return true;
  }

  /** Apply a `listenerPresence` message ({joined}, {left} or both). */
  applyPresence(message) {
    const delta = {
      timestamp: Number.isFinite(message.timestamp) ? message.timestamp : Date.now(),
      joined: typeof message.joined === "string" ? message.joined : null,
      left: typeof message.left === "string" ? message.left : null,
    };
    if (!delta.joined && !delta.left) return false;
    this._recent.push(delta);
    const horizon = delta.timestamp - KEEP_MS;
    while (this._recent.length && this._recent[0].timestamp < horizon) this._recent.shift();
    this._apply(delta);
    return true;
  }

  _apply({ joined, left }) {
    if (left) {
      const n = (this._counts.get(left) || 0) - 1;
      // Never below zero: a leave the snapshot had already counted out.
      if (n > 0) this._counts.set(left, n);
      else this._counts.delete(left);
    }
    if (joined) this._counts.set(joined, (this._counts.get(joined) || 0) + 1);
  }

  /** `{language: count}` with languages in alphabetical order, zeros left out. */
  snapshot() {
    return Object.fromEntries([...this._counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  get total() {
    let sum = 0;
    for (const n of this._counts.values()) sum += n;
    return sum;
  }
}
