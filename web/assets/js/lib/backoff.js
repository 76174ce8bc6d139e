// Reconnect delays: capped exponential backoff with jitter, as the reference
// Python client (broadcast_client.protocol.backoff) and AWS's guidance
// ("Exponential Backoff And Jitter") do, so a room of phones that lost the
// network together does not come back in lock-step.

export const BASE_MS = 500;
export const CAP_MS = 30000;

/** Delay (ms) before reconnect `attempt` (1, 2, ...): between half and all of
 * min(cap, base * 2^(attempt-1)). `random` returns [0, 1). */
export function backoff(attempt, { baseMs = BASE_MS, capMs = CAP_MS, random = Math.random } = {}) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}
