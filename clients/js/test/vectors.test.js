// The project's conformance vectors (testdata/sse-vectors.json) through the
// parser and through EventSource, in every split of their bytes, as the Go
// decoder's tests run them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createParser, EventSource } from "../ssekit-client.js";
import { vectors, scriptedFetch, streamResponse, FakeClock, waitFor } from "./helpers.js";

const enc = new TextEncoder();

function parseChunks(chunks) {
  const events = [];
  let retry = null;
  const p = createParser({ onEvent: (e) => events.push({ type: e.type, data: e.data, id: e.id }), onRetry: (ms) => { retry = ms; } });
  const dec = new TextDecoder("utf-8", { ignoreBOM: true });
  for (const c of chunks) p.feed(dec.decode(c, { stream: true }));
  p.feed(dec.decode());
  return { events, retry, lastEventId: p.lastEventId };
}

// splits returns the ways each vector's bytes are cut: every single cut
// point (for long inputs, every cut within 3 bytes of a line end, and every
// 97th), every pair of cut points for short inputs, and reads of 1, 2 and 3
// bytes.
function* splits(b) {
  yield [["whole"], [b]];
  const cuts = [];
  for (let i = 1; i < b.length; i++) {
    const near = b.length <= 2048 || i % 97 === 0 || [-3, -2, -1, 0, 1, 2, 3].some((d) => b[i + d] === 10 || b[i + d] === 13);
    if (near) cuts.push(i);
  }
  for (const i of cuts) yield [`cut ${i}`, [b.subarray(0, i), b.subarray(i)]];
  if (b.length <= 64) {
    for (let i = 1; i < b.length; i++) for (let j = i; j < b.length; j++) yield [`cuts ${i},${j}`, [b.subarray(0, i), b.subarray(i, j), b.subarray(j)]];
  }
  for (const n of [1, 2, 3]) {
    const parts = [];
    for (let i = 0; i < b.length; i += n) parts.push(b.subarray(i, i + n));
    yield [`reads of ${n}`, parts];
  }
}

test("the vectors are the 32 of testdata/sse-vectors.json", () => {
  assert.equal(vectors.length, 32);
});

for (const v of vectors) {
  test(`vector ${v.name} in every split`, () => {
    const bytes = enc.encode(v.input);
    let n = 0;
    for (const [name, chunks] of splits(bytes)) {
      const got = parseChunks(chunks);
      assert.deepEqual(got.events, v.events, `${v.name} (${name}): events`);
      assert.equal(got.lastEventId, v.last_event_id, `${v.name} (${name}): last event ID`);
      assert.equal(got.retry, v.retry, `${v.name} (${name}): retry`);
      n++;
    }
    assert.ok(n > 3);
  });
}

// Through EventSource: its events, lastEventId on them, and its retry; with
// the body cut at every point for the short inputs.
for (const v of vectors) {
  test(`vector ${v.name} through EventSource`, async () => {
    const bytes = enc.encode(v.input);
    const cuts = bytes.length <= 200 ? [...Array(bytes.length + 1).keys()] : [0, 1, Math.floor(bytes.length / 2), bytes.length - 1];
    for (const cut of cuts) {
      const clock = new FakeClock();
      const fetch = scriptedFetch([() => streamResponse([bytes.subarray(0, cut), bytes.subarray(cut)])]);
      const es = new EventSource("http://127.0.0.1:1/stream", { fetch, clock: clock.bind() });
      const got = [];
      let errors = 0;
      es.addEventListener("error", () => errors++);
      for (const t of new Set(v.events.map((e) => e.type))) es.addEventListener(t, (e) => got.push({ type: e.type, data: e.data, id: e.lastEventId }));
      await clock.advance(0);
      await waitFor(() => errors > 0, 5000, "the end of the stream");
      es.close();
      assert.deepEqual(got, v.events, `${v.name} cut ${cut}`);
      assert.equal(es.lastEventId, v.last_event_id, `${v.name} cut ${cut}: lastEventId`);
      assert.equal(es.retry, v.retry ?? 3000, `${v.name} cut ${cut}: retry`);
    }
  });
}
