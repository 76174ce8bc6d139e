// ReorderBuffer: the ordering rule of docs/protocol.md ("Ordering and duplicates").
import { test } from "node:test";
import assert from "node:assert/strict";
import { ReorderBuffer, WINDOW, GAP_TIMEOUT_MS } from "../../../web/assets/js/lib/sequence.js";

const numbers = (result) => result.deliver.map((m) => m.n);
const msg = (n) => ({ n });

test("the documented window and timeout", () => {
  assert.equal(WINDOW, 128);
  assert.equal(GAP_TIMEOUT_MS, 2000);
});

test("in-order numbers after the baseline are delivered at once", () => {
  const b = new ReorderBuffer();
  b.reset(41);
  assert.deepEqual(numbers(b.push(42, msg(42), 0)), [42]);
  assert.deepEqual(numbers(b.push(43, msg(43), 0)), [43]);
});

test("out-of-order numbers are held and delivered in order once the missing one arrives", () => {
  const b = new ReorderBuffer();
  b.reset(0);
  assert.deepEqual(numbers(b.push(3, msg(3), 0)), []);
  assert.deepEqual(numbers(b.push(2, msg(2), 10)), []);
  assert.equal(b.waiting, 2);
  const r = b.push(1, msg(1), 20);
  assert.deepEqual(numbers(r), [1, 2, 3]);
  assert.deepEqual(r.gaps, []);
});

test("a duplicate (a refresh overlap) is dropped, held or already delivered", () => {
  const b = new ReorderBuffer();
  b.reset(0);
  b.push(1, msg(1), 0);
  assert.equal(b.push(1, msg(1), 1).duplicate, true);
  b.push(3, msg(3), 2);
  assert.equal(b.push(3, msg(3), 3).duplicate, true);
  assert.equal(b.duplicates, 2);
});

test("numbers at or below the baseline were published before we arrived: dropped", () => {
  const b = new ReorderBuffer();
  b.push(5, msg(5), 0); // before the welcome
  b.push(7, msg(7), 0);
  const r = b.reset(5, 0);
  assert.deepEqual(numbers(r), []);
  assert.deepEqual(numbers(b.push(6, msg(6), 1)), [6, 7]);
});

test("a gap is reported only once a later message waited the timeout", () => {
  const b = new ReorderBuffer({ gapTimeoutMs: 2000 });
  b.reset(0);
  b.push(2, msg(2), 1000);
  assert.equal(b.deadline(), 3000);
  assert.deepEqual(b.expire(2999).gaps, []);
  const r = b.expire(3000);
  assert.deepEqual(r.gaps, [{ first: 1, last: 1, count: 1, reason: "timeout" }]);
  assert.deepEqual(numbers(r), [2]);
  assert.equal(b.deadline(), null);
});

test("a number that comes after its gap was reported is dropped as late, not applied", () => {
  const b = new ReorderBuffer({ gapTimeoutMs: 100 });
  b.reset(0);
  b.push(2, msg(2), 0);
  b.expire(100);
  const r = b.push(1, msg(1), 150);
  assert.equal(r.late, true);
  assert.equal(r.duplicate, false);
  assert.deepEqual(numbers(r), []);
  assert.equal(b.late, 1);
});

test("more than WINDOW messages behind a missing one give it up at once", () => {
  const b = new ReorderBuffer({ window: 4, gapTimeoutMs: 1e9 });
  b.reset(0);
  for (let n = 2; n <= 5; n += 1) assert.deepEqual(b.push(n, msg(n), 0).gaps, []);
  const r = b.push(6, msg(6), 0);
  assert.deepEqual(r.gaps, [{ first: 1, last: 1, count: 1, reason: "window" }]);
  assert.deepEqual(numbers(r), [2, 3, 4, 5, 6]);
});

test("after a reconnect, what was published while away and never arrived is a gap at once", () => {
  const b = new ReorderBuffer();
  b.reset(0);
  b.push(1, msg(1), 0);
  b.push(3, msg(3), 0); // 2 missing, then the connection dropped
  const r = b.advance(5, 10); // the server had published up to 5
  assert.deepEqual(numbers(r), [3]);
  assert.deepEqual(r.gaps, [
    { first: 2, last: 2, count: 1, reason: "reconnect" },
    { first: 4, last: 5, count: 2, reason: "reconnect" },
  ]);
  assert.deepEqual(numbers(b.push(6, msg(6), 11)), [6]);
});

test("without a baseline, messages wait the timeout and then start at the lowest", () => {
  const b = new ReorderBuffer({ gapTimeoutMs: 100 });
  b.push(11, msg(11), 0);
  b.push(10, msg(10), 5);
  const r = b.expire(100);
  assert.deepEqual(numbers(r), [10, 11]);
  assert.deepEqual(r.gaps, []);
});
