// Parse throughput of createParser against eventsource-parser on the same
// streams, fed in 4 KiB pieces. Bounded: a few rounds of a few MB. Runs in
// Node (node test/bench.js) and in a browser (test/bench.html, which maps
// eventsource-parser to its file in node_modules); each result line is
// logged, and in a browser also appended to the page.
import { createParser } from "../ssekit-client.js";
import { createParser as esp } from "eventsource-parser";
const streams = {
  "small events (hub-like)": Array.from({ length: 20000 }, (_, i) => `id: urn:uuid:${i}\nevent: update\ndata: {"n":${i},"msg":"hello world"}\n\n`).join(""),
  "LLM deltas": Array.from({ length: 20000 }, (_, i) => `data: {"choices":[{"delta":{"content":"tok${i} "}}]}\n\n`).join(""),
  "large events (64 KiB data)": Array.from({ length: 40 }, () => "data: " + "x".repeat(65536) + "\n\n").join(""),
};
function pieces(s) { const out = []; for (let i = 0; i < s.length; i += 4096) out.push(s.slice(i, i + 4096)); return out; }
function time(feed, ps) { const t = performance.now(); for (const p of ps) feed(p); return performance.now() - t; }
function report(line) {
  console.log(line);
  if (globalThis.document) document.body.append(line, document.createElement("br"));
}
for (const [name, s] of Object.entries(streams)) {
  const ps = pieces(s);
  const mb = s.length / 1e6;
  const res = {};
  for (const [lib, make] of [["ssekit", () => { let n = 0; const p = createParser({ onEvent: () => n++ }); return (x) => p.feed(x); }], ["eventsource-parser", () => { let n = 0; const p = esp({ onEvent: () => n++ }); return (x) => p.feed(x); }]]) {
    const runs = [];
    time(make(), ps); // warm-up
    for (let r = 0; r < 5; r++) runs.push(time(make(), ps));
    runs.sort((a, b) => a - b);
    res[lib] = (mb / (runs[2] / 1000)).toFixed(0) + " MB/s";
  }
  report(`${name} (${mb.toFixed(1)} MB): ssekit ${res.ssekit}, eventsource-parser ${res["eventsource-parser"]}`);
}
if (globalThis.document) document.title = "done";
