// EventSource against the real Go hub. The Go test e2e/jsclient starts
// `ssekit serve` and runs these with SSEKIT_HUB (the hub's base URL),
// SSEKIT_PUBLISHER_TOKEN and SSEKIT_SUBSCRIBER_TOKEN set; without them
// they are skipped (and SSEKIT_REQUIRE_ALL=1 turns that into a failure).
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventSource, mercureURL, discover, OPEN } from "../ssekit-client.js";
import { waitFor, nextEvent } from "./helpers.js";

const base = process.env.SSEKIT_HUB;
const pub = process.env.SSEKIT_PUBLISHER_TOKEN;
const sub = process.env.SSEKIT_SUBSCRIBER_TOKEN;
const skip = !base && process.env.SSEKIT_REQUIRE_ALL !== "1" ? "no hub: run through 'go test ./e2e/jsclient'" : false;

async function publish(topic, data, id) {
  const form = new URLSearchParams({ topic, data });
  if (id) form.set("id", id);
  const res = await fetch(base + "/.well-known/mercure", { method: "POST", headers: { Authorization: "Bearer " + pub }, body: form });
  assert.equal(res.status, 200, await res.clone().text());
  return res.text();
}

test("receives the hub's updates with a bearer header, and resumes with Last-Event-ID", { skip }, async () => {
  assert.ok(base, "SSEKIT_HUB is not set");
  const topic = "node-" + Date.now();
  const url = mercureURL(base + "/.well-known/mercure", { topic });
  const es = new EventSource(url, { headers: async () => ({ Authorization: "Bearer " + sub }) });
  const got = [];
  es.onmessage = (e) => got.push(e.lastEventId + " " + e.data);
  await nextEvent(es, "open");
  await publish(topic, "one", "n-1");
  await publish(topic, "two", "n-2");
  await waitFor(() => got.length === 2, 10000, "two updates");
  es.close();
  await publish(topic, "three", "n-3");
  // A new source from the last id gets exactly what came after.
  const es2 = new EventSource(url, { headers: { Authorization: "Bearer " + sub }, lastEventId: "n-2" });
  const got2 = [];
  es2.onmessage = (e) => got2.push(e.lastEventId + " " + e.data);
  await waitFor(() => got2.length === 1, 10000, "the replay");
  es2.close();
  assert.deepEqual(got, ["n-1 one", "n-2 two"]);
  assert.deepEqual(got2, ["n-3 three"]);
});

test("an unknown Last-Event-ID is a historygap event, once", { skip }, async () => {
  const topic = "gap-" + Date.now();
  await publish(topic, "kept", "g-1");
  const es = new EventSource(mercureURL(base + "/.well-known/mercure", { topic }), { headers: { Authorization: "Bearer " + sub }, lastEventId: "never-published" });
  const gaps = [];
  es.addEventListener("historygap", (e) => gaps.push(e));
  const m = await nextEvent(es, "message");
  await new Promise((r) => setTimeout(r, 100));
  es.close();
  assert.equal(gaps.length, 1);
  assert.equal(gaps[0].lastEventId, "never-published");
  assert.equal(gaps[0].resumedAfter, "earliest");
  assert.equal(m.data, "kept", "the retained history follows the gap");
});

test("a missing token is a 401 that ends the source with the hub's reason", { skip }, async () => {
  const es = new EventSource(mercureURL(base + "/.well-known/mercure", { topic: "x" }));
  const e = await nextEvent(es, "error");
  assert.equal(e.status, 401);
  assert.equal(e.willReconnect, false);
  assert.match(e.message, /^401 Unauthorized: .*token/);
  assert.notEqual(es.readyState, OPEN);
});

test("discover finds the hub from the Link header", { skip }, async () => {
  const d = await discover(base + "/healthz");
  assert.deepEqual(d.hubs, [base + "/.well-known/mercure"]);
});

test("the hub serves this very module at /ssekit-client.js", { skip }, async () => {
  const { readFileSync } = await import("node:fs");
  const res = await fetch(base + "/ssekit-client.js");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/javascript/);
  assert.equal(await res.text(), readFileSync(new URL("../ssekit-client.js", import.meta.url), "utf8"));
});
