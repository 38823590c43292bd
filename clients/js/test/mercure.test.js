// The Mercure helpers: subscribe URLs, Link headers, subscription events.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mercureURL, parseLinks, discover, subscriptionsTopic, subscribeSubscriptions } from "../ssekit-client.js";
import { scriptedFetch, streamResponse, waitFor } from "./helpers.js";

test("mercureURL builds topic, match, match_urlpattern and last_event_id", () => {
  const u = new URL(mercureURL("https://hub.test/.well-known/mercure", {
    topic: ["https://a.test/books/1", "b"], match: "https://a.test/x", match_urlpattern: "https://a.test/users/:id", lastEventId: "urn:uuid:1",
  }));
  assert.deepEqual(u.searchParams.getAll("topic"), ["https://a.test/books/1", "b"]);
  assert.equal(u.searchParams.get("match"), "https://a.test/x");
  assert.equal(u.searchParams.get("match_urlpattern"), "https://a.test/users/:id");
  assert.equal(u.searchParams.get("last_event_id"), "urn:uuid:1");
  assert.equal(new URL(mercureURL("https://hub.test/m", { topic: "t", lastEventId: "1", legacy: true })).searchParams.get("lastEventID"), "1");
  assert.equal(mercureURL("https://hub.test/m?x=1", { topic: "a b&c" }), "https://hub.test/m?x=1&topic=a+b%26c");
});

test("parseLinks reads several links, quoted params and relative URLs", () => {
  const l = parseLinks('</.well-known/mercure>; rel="mercure", <https://b.test/hub>;rel=mercure, <./book/1>; rel="self"; title="a, b"', "https://a.test/books/1");
  assert.deepEqual(l.map((x) => [x.url, x.rel]), [
    ["https://a.test/.well-known/mercure", ["mercure"]],
    ["https://b.test/hub", ["mercure"]],
    ["https://a.test/books/book/1", ["self"]],
  ]);
  assert.equal(l[2].params.title, "a, b");
  assert.deepEqual(parseLinks("", "https://a.test/"), []);
  assert.deepEqual(parseLinks("garbage", "https://a.test/"), []);
});

test("discover returns the hubs and the self topic", async () => {
  const fetch = scriptedFetch([() => new Response("{}", { headers: { link: '<https://hub.test/.well-known/mercure>; rel="mercure", <https://a.test/books/1>; rel="self"' } })]);
  const d = await discover("https://a.test/books/1?x", { fetch });
  assert.deepEqual(d.hubs, ["https://hub.test/.well-known/mercure"]);
  assert.equal(d.topic, "https://a.test/books/1");
});

test("subscription events arrive as subscription events", async () => {
  assert.equal(subscriptionsTopic(), "/.well-known/mercure/subscriptions/{topic}/{subscriber}");
  assert.equal(subscriptionsTopic("https://a.test/b/1"), "/.well-known/mercure/subscriptions/https%3A%2F%2Fa.test%2Fb%2F1/{subscriber}");
  const s = { id: "/.well-known/mercure/subscriptions/t/s", type: "Subscription", topic: "t", subscriber: "s", active: true };
  const fetch = scriptedFetch([() => streamResponse(["id: 1\ndata: " + JSON.stringify(s) + "\n\ndata: not json\n\n"], {}, { end: false })]);
  const es = subscribeSubscriptions("https://hub.test/.well-known/mercure", { topic: "t", fetch });
  const got = [];
  es.addEventListener("subscription", (e) => got.push(e.subscription));
  await waitFor(() => got.length === 1, 5000, "a subscription event");
  es.close();
  assert.deepEqual(got, [s]);
  assert.equal(new URL(fetch.calls[0].url).searchParams.get("topic"), "/.well-known/mercure/subscriptions/t/{subscriber}");
});
