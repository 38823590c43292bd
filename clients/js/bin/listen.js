#!/usr/bin/env node
// listen.js: `ssekit listen` on Node, with the same flags, --json line
// contract and exit codes (docs/client-js.md, "The listen command"), so the
// same conformance tooling runs against both.
import { readFileSync } from "node:fs";
import { EventSource } from "../ssekit-client.js";

const EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 124;

const usage = `Usage: node listen.js [flags] URL

Connects to an SSE endpoint (text/event-stream) and prints every event as it
arrives, as 'ssekit listen' does. Flags may come before or after the URL.

It reconnects as a browser's EventSource does (sending Last-Event-ID); a
response other than a 200 event stream ends it, and so does a first
connection that fails. With --json, stdout carries exactly one JSON object
per event: {"type":"message","data":"…","id":"…"}, plus "retry":N when the
event's block set a retry. Diagnostics go to stderr.

Exit status: 0 when the stream ends cleanly (--max-events reached, the end
of the stream with --no-reconnect, or 204 No Content); 1 with a one-line
reason on stderr when the connection fails or the response is not a 200
event stream; 2 for a bad command line; 124 when --timeout expires.

Flags:
  -X METHOD            request method (default GET, or POST with -d)
  -H 'Name: value'     request header (repeatable)
  -d BODY              request body; @file reads a file, @- stdin (implies POST)
  --last-event-id ID   send Last-Event-ID: ID on the first request
  --max-events N       exit after N events (0: no limit)
  --timeout DURATION   give up after DURATION (Go syntax: 500ms, 30s, 1m) with exit status 124
  --no-reconnect       exit when the stream ends instead of reconnecting
  --json               one JSON object per event, and nothing else, on stdout
  --insecure           do not verify the server's TLS certificate
  --color WHEN         auto, always or never (accepted; the output is plain)
`;

class UsageError extends Error {}

// parseDuration reads a Go duration ("1m30s", "500ms", "0") as ms.
export function parseDuration(s) {
  if (s === "0") return 0;
  const unit = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/y;
  let ms = 0, i = 0, m;
  const t = s.startsWith("-") || s.startsWith("+") ? s.slice(1) : s;
  if (t === "") throw new UsageError(`invalid duration "${s}"`);
  while (i < t.length) {
    re.lastIndex = i;
    if (!(m = re.exec(t))) throw new UsageError(`invalid duration "${s}"`);
    ms += parseFloat(m[1]) * unit[m[2]];
    i = re.lastIndex;
  }
  return s.startsWith("-") ? -ms : ms;
}

// parseArgs reads the flags as Go's flag package does: -name or --name,
// a value as the next argument or after "=", flags before or after the URL,
// "--" ends the flags.
export function parseArgs(argv) {
  const o = { headers: [], method: "", data: null, lastEventId: "", maxEvents: 0, timeout: 0, noReconnect: false, json: false, insecure: false };
  const positional = [];
  const valued = new Set(["X", "H", "d", "last-event-id", "max-events", "timeout", "color"]);
  const bools = new Set(["no-reconnect", "json", "insecure", "h", "help"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") { positional.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith("-") || a === "-") { positional.push(a); continue; }
    let name = a.replace(/^--?/, ""), value;
    const eq = name.indexOf("=");
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
    if (bools.has(name)) {
      const b = value === undefined ? true : /^(1|t|true|T|TRUE|True)$/.test(value) ? true : /^(0|f|false|F|FALSE|False)$/.test(value) ? false : null;
      if (b === null) throw new UsageError(`invalid boolean value "${value}" for -${name}`);
      if (name === "h" || name === "help") return { help: true };
      o[{ "no-reconnect": "noReconnect", json: "json", insecure: "insecure" }[name]] = b;
      continue;
    }
    if (!valued.has(name)) {
      if (["raw", "llm", "record"].includes(name)) throw new UsageError(`--${name} is not supported by listen.js; use 'ssekit listen'`);
      throw new UsageError(`flag provided but not defined: -${name}`);
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: -${name}`);
      value = argv[++i];
    }
    switch (name) {
      case "X": o.method = value; break;
      case "H": {
        const c = value.indexOf(":");
        const hn = c < 0 ? "" : value.slice(0, c).trim();
        if (c < 0 || hn === "" || /[ \t]/.test(hn)) throw new UsageError(`invalid value "${value}" for flag -H: want 'Name: value', got "${value}"`);
        o.headers.push([hn, value.slice(c + 1).trim()]);
        break;
      }
      case "d": o.data = value; break;
      case "last-event-id": o.lastEventId = value; break;
      case "max-events":
        if (!/^[-+]?[0-9]+$/.test(value)) throw new UsageError(`invalid value "${value}" for flag -max-events: parse error`);
        o.maxEvents = parseInt(value, 10);
        break;
      case "timeout": o.timeout = parseDuration(value); break;
      case "color":
        if (!["auto", "always", "never"].includes(value)) throw new UsageError(`--color must be auto, always or never, not "${value}"`);
        break;
    }
  }
  if (positional.length !== 1) throw new UsageError(`want exactly one URL, got ${positional.length} arguments (see 'listen.js --help')`);
  let u;
  try { u = new URL(positional[0]); } catch { u = null; }
  if (!u || (u.protocol !== "http:" && u.protocol !== "https:") || !u.host) throw new UsageError(`"${positional[0]}" is not an http:// or https:// URL`);
  if (o.maxEvents < 0) throw new UsageError("--max-events must not be negative");
  if (o.timeout < 0) throw new UsageError("--timeout must not be negative");
  o.url = positional[0];
  return o;
}

function readData(d) {
  if (!d.startsWith("@")) return d;
  const name = d.slice(1);
  try {
    return readFileSync(name === "-" ? 0 : name, "utf8");
  } catch (e) {
    throw new Error("reading the body: " + e.message);
  }
}

function isJSON(s) {
  try { JSON.parse(s); return true; } catch { return false; }
}

export function main(argv, { stdout = process.stdout, stderr = process.stderr, exit = process.exit } = {}) {
  const log = (msg) => stderr.write("listen.js: " + String(msg).replace(/[\r\n]+/g, " ") + "\n");
  let o;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) { log(e.message); return exit(EXIT_USAGE); }
    throw e;
  }
  if (o.help) { stdout.write(usage); return exit(0); }
  const headers = {};
  let host = "";
  for (const [k, v] of o.headers) {
    if (k.toLowerCase() === "host") host = v;
    else headers[k] = headers[k] !== undefined ? headers[k] + ", " + v : v;
  }
  if (host) log("a Host header cannot be set from Node's fetch; it is ignored");
  let body;
  if (o.data !== null) {
    try { body = readData(o.data); } catch (e) { log(e.message); return exit(EXIT_FAIL); }
    if (!Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) {
      headers["Content-Type"] = isJSON(body) ? "application/json" : "application/x-www-form-urlencoded";
    }
  }
  if (o.insecure) process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";

  let events = 0, connections = 0, done = false, timer = null;
  const es = new EventSource(o.url, {
    method: o.method || (body !== undefined ? "POST" : "GET"),
    headers,
    body,
    lastEventId: o.lastEventId,
    reconnect: !o.noReconnect,
  });
  const finish = (code, msg) => {
    if (done) return;
    done = true;
    es.close();
    if (timer) clearTimeout(timer);
    if (msg) log(msg);
    // Let stdout drain before exiting.
    if (stdout.writableLength > 0) stdout.once("drain", () => exit(code));
    else exit(code);
  };
  if (o.timeout > 0) {
    timer = setTimeout(() => finish(EXIT_TIMEOUT, `timed out after ${argv[argv.indexOf("--timeout") + 1] || o.timeout + "ms"} (${events} event${events === 1 ? "" : "s"})`), o.timeout);
  }
  es.addEventListener("open", () => {
    connections++;
    log(`connected to ${o.url}`);
  });
  const onEvent = (e) => {
    if (done) return;
    events++;
    if (o.json) {
      const line = { type: e.type, data: e.data, id: e.lastEventId };
      if (e.retry !== undefined) line.retry = e.retry;
      stdout.write(JSON.stringify(line) + "\n");
    } else {
      const meta = [new Date().toISOString().slice(11, 23), e.type];
      if (e.lastEventId) meta.push("id=" + e.lastEventId);
      if (e.retry !== undefined) meta.push("retry=" + e.retry + "ms");
      stdout.write(meta.join("  ") + "\n" + (e.data === "" ? "  (empty data)" : e.data.split("\n").map((l) => "  " + l).join("\n")) + "\n\n");
    }
    if (o.maxEvents > 0 && events >= o.maxEvents) finish(0);
  };
  // Every event type, not only "message": wrap dispatchEvent.
  const dispatch = es.dispatchEvent.bind(es);
  es.dispatchEvent = (ev) => {
    if (typeof ev.data === "string" && "lastEventId" in ev && ev.type !== "historygap") onEvent(ev);
    return dispatch(ev);
  };
  es.addEventListener("error", (e) => {
    if (done) return;
    if (e.kind === "status" && e.status === 204) return finish(0, "the server answered 204 No Content: the stream is over");
    if (e.kind === "status" || e.kind === "content-type") return finish(EXIT_FAIL, `${o.url}: ${e.message}`);
    if (connections === 0) return finish(EXIT_FAIL, `cannot connect to ${o.url}: ${e.message.replace(/^cannot connect: /, "")}`);
    if (!e.willReconnect) {
      if (e.kind === "end") return finish(0, "the server ended the stream");
      return finish(EXIT_FAIL, `${o.url}: ${e.message}`);
    }
    const resume = es.lastEventId ? ` with Last-Event-ID ${JSON.stringify(es.lastEventId)}` : "";
    log(`${e.message}; reconnecting in ${e.delay}ms${resume}`);
  });
  const stop = () => finish(130);
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (import.meta.url === new URL(process.argv[1], "file://").href || process.argv[1]?.endsWith("listen.js")) {
  main(process.argv.slice(2));
}
