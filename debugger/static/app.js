// ssekit debug: the page. Plain JavaScript, no build step.
//
// The Go backend makes the watched request and streams what happens as
// records to this page (each SSE event a JSON array of the records ready at
// once): request, open, event, comment, raw, reconnect, error, end. The page
// keeps every record, shows them in a virtualised list (only the visible
// rows exist in the DOM, so 10,000+ events stay smooth) and derives the
// summary from them. Records are applied once per animation frame, a few
// milliseconds' worth at most, so a burst of thousands spreads over frames
// instead of freezing one.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const ROW = 24; // px; the CSS --row
  const OVERSCAN = 10;

  // ---- the token: ?token=… in the address ssekit debug printed, or
  // #token=… where a one-time code sent the browser it opened. It is
  // taken out of the address at once, so that it is not left in the
  // history, a bookmark or a screen share.
  const params = new URLSearchParams(location.search);
  const fromHash = location.hash.match(/(?:^#|&)token=([^&]*)/);
  const given = params.get('token') || (fromHash ? decodeURIComponent(fromHash[1]) : '');
  let token = given || localStorage.getItem('ssekit.token') || '';
  if (given) localStorage.setItem('ssekit.token', token);
  if (params.has('token') || params.has('code') || fromHash) {
    params.delete('token');
    params.delete('code');
    const hash = location.hash.replace(/(^#|&)token=[^&]*/, '$1').replace(/^#&/, '#').replace(/^#$/, '');
    const qs = params.toString();
    history.replaceState(null, '', location.pathname + (qs ? '?' + qs : '') + hash);
  }

  async function api(method, path, body) {
    const resp = await fetch(path, {
      method,
      headers: { 'X-Ssekit-Token': token, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (resp.status === 401) {
      const t = prompt('This debug server needs the token that "ssekit debug" printed:');
      if (t) { token = t.trim(); localStorage.setItem('ssekit.token', token); return api(method, path, body); }
    }
    if (!resp.ok) {
      let msg = resp.status + ' ' + resp.statusText;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return resp.status === 204 ? null : resp.json();
  }

  function toast(msg) {
    const t = $('toast');
    t.textContent = msg;
    t.classList.add('on');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => t.classList.remove('on'), 2200);
  }

  // ---- tabs ----
  document.querySelectorAll('.tabs').forEach((nav) => {
    nav.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-tab]');
      if (!b) return;
      const scope = nav.parentElement;
      nav.querySelectorAll('button').forEach((x) => x.classList.toggle('on', x === b));
      scope.querySelectorAll(':scope > [data-pane]').forEach((p) => p.classList.toggle('on', p.dataset.pane === b.dataset.tab));
    });
  });

  // ---- key/value tables (params, headers) ----
  function kvTable(id, onChange) {
    const tbody = $(id).tBodies[0];
    function add(k = '', v = '', on = true) {
      const tr = document.createElement('tr');
      tr.className = 'kv-row';
      tr.innerHTML = '<td><input type="checkbox"></td><td><input type="text" class="k" placeholder="name" spellcheck="false"></td>' +
        '<td><input type="text" class="v" placeholder="value" spellcheck="false"></td><td><button title="Remove">✕</button></td>';
      const [cb, ki, vi] = tr.querySelectorAll('input');
      cb.checked = on; ki.value = k; vi.value = v;
      tr.querySelector('button').onclick = () => { tr.remove(); onChange(); };
      tr.addEventListener('input', onChange);
      tbody.appendChild(tr);
      return tr;
    }
    function rows() {
      return [...tbody.rows].map((tr) => {
        const [cb, ki, vi] = tr.querySelectorAll('input');
        return { on: cb.checked, name: ki.value, value: vi.value };
      });
    }
    function set(list) {
      tbody.innerHTML = '';
      list.forEach((r) => add(r.name, r.value, r.on !== false));
    }
    return { add, rows, set };
  }

  let syncing = false;
  const paramsTable = kvTable('params', () => { if (!syncing) urlFromParams(); countTabs(); });
  const headersTable = kvTable('headers', countTabs);
  $('add-param').onclick = () => paramsTable.add().querySelector('.k').focus();
  $('add-header').onclick = () => headersTable.add().querySelector('.k').focus();

  function countTabs() {
    const n = (rs) => rs.filter((r) => r.on && r.name).length || '';
    $('params-count').textContent = n(paramsTable.rows());
    $('headers-count').textContent = n(headersTable.rows());
  }

  // The URL and the params table edit the same thing.
  function paramsFromURL() {
    const u = $('url').value;
    const q = u.indexOf('?');
    const list = [];
    if (q >= 0) {
      const hash = u.indexOf('#', q);
      new URLSearchParams(u.slice(q + 1, hash < 0 ? undefined : hash)).forEach((value, name) => list.push({ name, value }));
    }
    syncing = true;
    paramsTable.set(list);
    syncing = false;
    countTabs();
  }
  function urlFromParams() {
    const u = $('url').value;
    const q = u.indexOf('?');
    const base = q < 0 ? u : u.slice(0, q);
    const sp = new URLSearchParams();
    paramsTable.rows().forEach((r) => { if (r.on && r.name) sp.append(r.name, r.value); });
    const qs = sp.toString();
    $('url').value = base + (qs ? '?' + qs : '');
  }
  $('url').addEventListener('input', paramsFromURL);

  // ---- body ----
  function checkBody() {
    const b = $('body').value.trim();
    const st = $('body-status');
    $('body').classList.remove('invalid');
    if (!b) { st.textContent = ''; return; }
    try { JSON.parse(b); st.textContent = '✓ valid JSON'; st.className = 'hint'; } catch (e) {
      if (b[0] === '{' || b[0] === '[') { $('body').classList.add('invalid'); st.textContent = 'not valid JSON: ' + e.message; st.className = 'error'; } else { st.textContent = 'sent as form data (application/x-www-form-urlencoded, as curl -d) unless a Content-Type header says otherwise'; st.className = 'hint'; }
    }
  }
  $('body').addEventListener('input', checkBody);
  $('format-body').onclick = () => {
    try { $('body').value = JSON.stringify(JSON.parse($('body').value), null, 2); checkBody(); } catch (e) { checkBody(); }
  };

  // ---- the request as data ----
  function spec() {
    const headers = headersTable.rows().filter((r) => r.on && r.name.trim()).map((r) => ({ name: r.name.trim(), value: r.value }));
    const bearer = $('bearer').value.trim();
    if (bearer && !headers.some((h) => h.name.toLowerCase() === 'authorization')) headers.push({ name: 'Authorization', value: 'Bearer ' + bearer });
    return {
      method: $('method').value,
      url: $('url').value.trim(),
      headers,
      body: $('body').value,
      lastEventId: $('last-event-id').value,
      noReconnect: !$('reconnect').checked,
      raw: $('raw').checked,
      insecure: $('insecure').checked,
      mcp: $('mcp').checked,
      llmRules: rulesValue(),
    };
  }
  // The merge rules typed in the LLM rules tab: an object, or undefined
  // when the field is empty or not JSON (checkRules says which).
  function rulesValue() {
    const t = $('llm-rules').value.trim();
    if (!t) return undefined;
    try { const r = JSON.parse(t); return r && typeof r === 'object' && !Array.isArray(r) ? r : undefined; } catch (e) { return undefined; }
  }
  function checkRules() {
    const t = $('llm-rules').value.trim(), st = $('rules-status');
    $('llm-rules').classList.remove('invalid');
    $('rules-count').textContent = t ? '✓' : '';
    if (!t) { st.textContent = ''; return true; }
    if (rulesValue()) { st.textContent = '✓ rules in use: the known formats are not read'; st.className = 'hint'; return true; }
    $('llm-rules').classList.add('invalid');
    $('rules-count').textContent = '!';
    st.textContent = 'want a JSON object of JSONPath strings'; st.className = 'error';
    return false;
  }
  $('llm-rules').addEventListener('input', checkRules);
  // The form's state, for saving and links (bearer kept apart).
  function formState(withSecrets) {
    const s = spec();
    s.headers = headersTable.rows().filter((r) => r.name).map((r) => ({ name: r.name, value: r.value, on: r.on }));
    if (withSecrets) s.bearer = $('bearer').value;
    else s.headers = s.headers.filter((h) => !isSecret(h.name));
    return s;
  }
  function isSecret(name) {
    const n = name.toLowerCase();
    return n === 'authorization' || n === 'cookie' || n === 'proxy-authorization' || n.includes('api-key') || n.includes('apikey') || n.includes('token');
  }
  function loadForm(s) {
    if (!s) return;
    const methods = [...$('method').options].map((o) => o.value);
    const m = (s.method || 'GET').toUpperCase();
    if (!methods.includes(m)) $('method').add(new Option(m));
    $('method').value = m;
    $('url').value = s.url || '';
    paramsFromURL();
    headersTable.set(s.headers || []);
    $('body').value = s.body || '';
    $('bearer').value = s.bearer || '';
    $('last-event-id').value = s.lastEventId || '';
    $('reconnect').checked = !s.noReconnect;
    $('raw').checked = !!s.raw;
    $('insecure').checked = !!s.insecure;
    $('mcp').checked = !!s.mcp;
    $('llm-rules').value = s.llmRules ? JSON.stringify(s.llmRules, null, 2) : '';
    checkBody();
    checkRules();
    countTabs();
  }

  // ---- links: the request in the fragment ----
  function b64encode(str) {
    const bytes = new TextEncoder().encode(str);
    let bin = '';
    bytes.forEach((b) => { bin += String.fromCharCode(b); });
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function b64decode(s) {
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
    return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  }
  function linkFor() {
    return location.origin + location.pathname + '#req=' + b64encode(JSON.stringify(formState(false)));
  }
  function fromFragment() {
    const m = location.hash.match(/req=([A-Za-z0-9_-]+)/);
    if (!m) return false;
    try { loadForm(JSON.parse(b64decode(m[1]))); return true; } catch (e) { toast('The link does not hold a valid request'); return false; }
  }
  $('copy-link').onclick = () => copy(linkFor(), 'Link copied (credentials left out)');

  async function copy(text, msg) {
    try { await navigator.clipboard.writeText(text); toast(msg); } catch (e) {
      window.prompt('Copy this:', text);
    }
  }

  // ---- curl ----
  function shellQuote(s) { return /^[A-Za-z0-9_\/:.,=@%+-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }
  function toCurl(s) {
    const parts = ['curl', '-N'];
    if (s.method !== 'GET' && !(s.method === 'POST' && s.body)) parts.push('-X', s.method);
    s.headers.forEach((h) => parts.push('-H', shellQuote(h.name + ': ' + h.value)));
    if (s.lastEventId) parts.push('-H', shellQuote('Last-Event-ID: ' + s.lastEventId));
    if (s.body) parts.push('--data-raw', shellQuote(s.body));
    if (s.insecure) parts.push('-k');
    parts.push(shellQuote(s.url));
    return parts.join(' ');
  }
  $('copy-curl').onclick = () => copy(toCurl(spec()), 'curl command copied');

  // shellWords splits a command line as a POSIX shell would (quotes,
  // backslashes, line continuations); $'…' is taken as '…'.
  function shellWords(line) {
    const words = [];
    let cur = null;
    let i = 0;
    const push = () => { if (cur !== null) words.push(cur); cur = null; };
    while (i < line.length) {
      const c = line[i];
      if (c === '\\' && line[i + 1] === '\n') { i += 2; continue; }
      if (c === '\\' && line[i + 1] === '\r' && line[i + 2] === '\n') { i += 3; continue; }
      if (/\s/.test(c)) { push(); i++; continue; }
      if (cur === null) cur = '';
      if (c === "'" || (c === '$' && line[i + 1] === "'")) {
        if (c === '$') i++;
        const end = line.indexOf("'", i + 1);
        if (end < 0) throw new Error('unterminated single quote');
        cur += line.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && '"\\$`\n'.includes(line[i + 1])) { if (line[i + 1] !== '\n') cur += line[i + 1]; i += 2; } else cur += line[i++];
        }
        if (i >= line.length) throw new Error('unterminated double quote');
        i++;
      } else if (c === '\\') { cur += line[i + 1] || ''; i += 2; } else { cur += c; i++; }
    }
    push();
    return words;
  }
  function fromCurl(cmd) {
    const w = shellWords(cmd.trim());
    if (w[0] !== 'curl') throw new Error('not a curl command');
    const s = { method: '', url: '', headers: [], body: '', insecure: false };
    const takesArg = new Set(['-o', '--output', '-m', '--max-time', '--connect-timeout', '-e', '--referer', '-w', '--write-out', '--retry', '-x', '--proxy', '-T']);
    for (let i = 1; i < w.length; i++) {
      let a = w[i];
      let v = null;
      const eq = a.startsWith('--') ? a.indexOf('=') : -1;
      if (eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq); }
      const next = () => (v !== null ? v : w[++i]);
      switch (a) {
        case '-X': case '--request': s.method = next().toUpperCase(); break;
        case '-H': case '--header': {
          const h = next(); const c = h.indexOf(':');
          if (c > 0) s.headers.push({ name: h.slice(0, c).trim(), value: h.slice(c + 1).trim() });
          break;
        }
        case '-d': case '--data': case '--data-raw': case '--data-binary': case '--data-ascii': case '--data-urlencode':
          s.body += (s.body ? '&' : '') + next(); break;
        case '--json':
          s.body += next();
          if (!s.headers.some((h) => h.name.toLowerCase() === 'content-type')) s.headers.push({ name: 'Content-Type', value: 'application/json' });
          break;
        case '-u': case '--user': s.headers.push({ name: 'Authorization', value: 'Basic ' + btoa(next()) }); break;
        case '-A': case '--user-agent': s.headers.push({ name: 'User-Agent', value: next() }); break;
        case '-b': case '--cookie': s.headers.push({ name: 'Cookie', value: next() }); break;
        case '--url': s.url = next(); break;
        case '-k': case '--insecure': s.insecure = true; break;
        case '-I': case '--head': s.method = 'HEAD'; break;
        default:
          if (takesArg.has(a)) { next(); } else if (!a.startsWith('-')) { s.url = a; } // other flags (-N, -s, -v, --compressed…) change nothing here
      }
    }
    if (!s.url) throw new Error('no URL in the command');
    if (!s.method) s.method = s.body ? 'POST' : 'GET';
    const auth = s.headers.find((h) => h.name.toLowerCase() === 'authorization' && /^bearer /i.test(h.value));
    if (auth) { s.bearer = auth.value.slice(7); s.headers = s.headers.filter((h) => h !== auth); }
    const lid = s.headers.find((h) => h.name.toLowerCase() === 'last-event-id');
    if (lid) { s.lastEventId = lid.value; s.headers = s.headers.filter((h) => h !== lid); }
    if (s.headers.length && s.body) { /* keep as given */ }
    return s;
  }
  $('import-curl').onclick = () => { $('curl-error').textContent = ''; $('curl-dialog').showModal(); $('curl-text').focus(); };
  $('curl-ok').onclick = (e) => {
    try { loadForm(fromCurl($('curl-text').value)); toast('Request imported'); } catch (err) { e.preventDefault(); $('curl-error').textContent = err.message; }
  };

  // ---- saved requests (localStorage) ----
  const SAVED = 'ssekit.saved';
  function savedAll() { try { return JSON.parse(localStorage.getItem(SAVED)) || {}; } catch (e) { return {}; } }
  function listSaved(select) {
    const all = savedAll();
    const sel = $('saved');
    sel.length = 1;
    Object.keys(all).sort().forEach((name) => sel.add(new Option(name, name)));
    if (select) sel.value = select;
  }
  $('save').onclick = () => {
    const s = formState(true);
    const name = prompt('Save this request as:', $('saved').value || (s.method + ' ' + s.url));
    if (!name) return;
    const all = savedAll();
    all[name] = s;
    localStorage.setItem(SAVED, JSON.stringify(all));
    listSaved(name);
    toast('Saved in this browser');
  };
  $('saved').onchange = () => { const s = savedAll()[$('saved').value]; if (s) loadForm(s); };
  $('delete-saved').onclick = () => {
    const name = $('saved').value;
    if (!name) return;
    const all = savedAll();
    delete all[name];
    localStorage.setItem(SAVED, JSON.stringify(all));
    listSaved();
  };

  // ---- the session: records in, list and summary out ----
  let records = []; // every record of the session, for export
  let entries = []; // rows: events, comments and markers
  let view = []; // indices of entries that pass the filter
  let shown = 0; // how many of view the list shows (frozen while paused)
  let selected = -1; // index in entries
  let paused = false;
  let source = null; // the AbortController of the stream from the backend
  let sessionID = null;
  let st = newStats();
  const types = new Set();

  function newStats() {
    return { status: null, proto: '', ttfb: null, firstEvent: null, events: 0, comments: 0, bytes: 0, conns: 0, lastEventT: null, firstEventT: null, longestGap: 0, headers: null, llm: null };
  }
  function setState(cls, text) { const s = $('state'); s.className = 'state ' + cls; s.textContent = text; }

  function fmtMs(v) {
    if (v === null || v === undefined) return '–';
    if (v < 1) return v.toFixed(2) + ' ms';
    if (v < 1000) return Math.round(v) + ' ms';
    if (v < 60000) return (v / 1000).toFixed(2) + ' s';
    return Math.floor(v / 60000) + 'm' + Math.round((v % 60000) / 1000) + 's';
  }
  function fmtBytes(n) { return n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(2) + ' MiB'; }
  let t0 = Date.now(); // wall clock of the session's start, for arrival times
  function clock(t) {
    const d = new Date(t0 + t);
    return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }

  function handle(r) {
    records.push(r);
    if (r.bytes) st.bytes = r.bytes;
    switch (r.kind) {
      case 'request':
        break;
      case 'open':
        st.conns++;
        st.status = r.status; st.proto = r.proto; st.headers = r.header;
        if (st.ttfb === null) st.ttfb = r.ttfb;
        if (st.conns > 1) addEntry({ kind: 'marker', cls: 'open', t: r.t, text: '↻ reconnected (connection ' + st.conns + ', ' + r.status + ', TTFB ' + fmtMs(r.ttfb) + ')', rec: r });
        else addEntry({ kind: 'marker', cls: 'open', t: r.t, text: '● connected: ' + r.proto + ' ' + r.status + ', TTFB ' + fmtMs(r.ttfb), rec: r });
        setState('live', 'streaming');
        renderHeaders();
        break;
      case 'event': {
        st.events++;
        const gap = st.lastEventT === null ? null : r.t - st.lastEventT;
        if (gap !== null && gap > st.longestGap) st.longestGap = gap;
        if (st.firstEventT === null) st.firstEventT = r.t;
        st.lastEventT = r.t;
        const type = r.type || 'message';
        if (!types.has(type)) { types.add(type); $('filter-type').add(new Option(type, type)); }
        addEntry({ kind: 'event', t: r.t, gap, id: r.id || '', type, data: r.data || '', rec: r });
        if (r.llm) llmAdd(r.llm, r.t);
        break;
      }
      case 'comment':
        st.comments++;
        if (!types.has('(comment)')) { types.add('(comment)'); $('filter-type').add(new Option('(comments)', '(comment)')); }
        addEntry({ kind: 'comment', t: r.t, type: '(comment)', data: ':' + (r.text || ''), rec: r });
        break;
      case 'reconnect':
        addEntry({ kind: 'marker', cls: '', t: r.t, text: '⚡ ' + r.text + ' — reconnecting in ' + fmtMs(r.delay) + (r.lastEventId ? ' with Last-Event-ID ' + JSON.stringify(r.lastEventId) : ''), rec: r });
        setState('connecting', 'reconnecting');
        break;
      case 'error':
        addEntry({ kind: 'marker', cls: 'err', t: r.t, text: '✖ ' + r.text + (r.body ? ': ' + r.body.slice(0, 300) : ''), rec: r });
        if (r.status) { st.status = r.status; st.headers = r.header; renderHeaders(); }
        finish('error', 'error');
        break;
      case 'end':
        addEntry({ kind: 'marker', cls: '', t: r.t, text: '■ ' + r.text, rec: r });
        finish('idle', 'ended');
        break;
      default: // raw chunks are kept for export and the raw view
    }
  }

  // ---- records in: applied in the animation frame, within a budget ----
  const BUDGET = 6; // ms of record handling per frame; the rest waits a frame
  // Batches of records received and not applied yet: arrays, or the JSON
  // text of one as it came, parsed only when its turn comes so that the
  // parsing counts in the frame's budget too.
  let inbox = [];
  let inboxAt = 0; // the next record of inbox[0]
  function receive(batch) {
    if (!batch.length) return;
    inbox.push(batch);
    schedule();
  }
  // apply handles the waiting records, oldest first, for budget ms at most.
  function apply(budget) {
    const start = performance.now();
    let n = 0;
    while (inbox.length) {
      if (typeof inbox[0] === 'string') {
        if (performance.now() - start > budget) return; // parsing is not cut short
        const d = JSON.parse(inbox[0]);
        inbox[0] = Array.isArray(d) ? d : [d];
      }
      const batch = inbox[0];
      while (inboxAt < batch.length) {
        handle(batch[inboxAt++]);
        if ((++n & 31) === 0 && performance.now() - start > budget) return;
      }
      inbox.shift();
      inboxAt = 0;
    }
  }
  // drain applies every waiting record now: before what must see them all
  // (Stop, Clear, Export, the end of the backend's stream).
  function drain() {
    apply(Infinity);
    schedule(true);
  }

  function addEntry(e) {
    e.i = entries.length;
    entries.push(e);
    if (matches(e)) view.push(e.i);
  }

  // ---- filter and search ----
  let filterType = '';
  let search = '';
  function matches(e) {
    if (e.kind === 'marker') return !filterType && !search;
    if (filterType && e.type !== filterType) return false;
    if (search && !e.data.toLowerCase().includes(search)) return false;
    return true;
  }
  function refilter() {
    view = [];
    for (const e of entries) if (matches(e)) view.push(e.i);
    shown = view.length;
    schedule(true);
  }
  $('filter-type').onchange = () => { filterType = $('filter-type').value; refilter(); };
  let searchTimer = 0;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { search = $('search').value.toLowerCase(); refilter(); }, 120);
  });
  $('pause').onclick = () => {
    paused = !paused;
    $('pause').setAttribute('aria-pressed', paused);
    $('pause').textContent = paused ? 'Resume' : 'Pause';
    schedule(true);
  };
  $('clear').onclick = () => clearView();
  function clearView() {
    drain();
    entries = []; view = []; shown = 0; selected = -1;
    records = records.filter((r) => r.kind === 'request');
    const keepConn = st.conns, status = st.status, headers = st.headers, proto = st.proto, ttfb = st.ttfb;
    st = newStats();
    Object.assign(st, { conns: keepConn, status, headers, proto, ttfb });
    types.clear();
    $('filter-type').length = 1;
    filterType = '';
    llmReset();
    showDetail(-1);
    schedule(true);
  }

  // ---- the virtualised list ----
  const list = $('list');
  const rowsEl = $('rows');
  let pending = false;
  let force = false;
  function schedule(f) {
    if (f) force = true;
    if (pending) return;
    pending = true;
    requestAnimationFrame(render);
  }
  let lastFirst = -1, lastCount = -1, lastShown = -1, lastSel = -2;
  const renderCost = []; // ms of the last renders, for the benchmark
  function render() {
    const start = performance.now();
    try { renderNow(); } finally {
      if (renderCost.length >= 2000) renderCost.shift();
      renderCost.push(performance.now() - start);
    }
  }
  function renderNow() {
    pending = false;
    apply(BUDGET);
    if (inbox.length) schedule();
    if (!paused) shown = view.length;
    $('spacer').style.height = shown * ROW + 'px';
    $('empty').style.display = entries.length || source ? 'none' : '';
    const follow = $('follow').checked && !paused;
    if (follow) list.scrollTop = list.scrollHeight;
    const first = Math.max(0, Math.floor(list.scrollTop / ROW) - OVERSCAN);
    const count = Math.min(shown - first, Math.ceil(list.clientHeight / ROW) + 2 * OVERSCAN);
    if (force || first !== lastFirst || count !== lastCount || lastShown !== shown || lastSel !== selected) {
      force = false;
      lastFirst = first; lastCount = count; lastShown = shown; lastSel = selected;
      const html = [];
      for (let k = first; k < first + count; k++) html.push(rowHTML(entries[view[k]], k));
      rowsEl.style.transform = 'translateY(' + first * ROW + 'px)';
      rowsEl.innerHTML = html.join('');
    }
    const hidden = view.length - shown;
    $('list-info').textContent = (filterType || search ? view.length + ' of ' + entries.length + ' rows' : entries.length + ' rows') + (hidden > 0 ? ' · paused, ' + hidden + ' new' : '');
    renderSummary();
    renderLLM();
  }
  list.addEventListener('scroll', () => {
    if (list.scrollTop + list.clientHeight < list.scrollHeight - ROW * 2 && $('follow').checked && !paused && Date.now() - lastUserScroll < 500) $('follow').checked = false;
    schedule();
  }, { passive: true });
  let lastUserScroll = 0;
  list.addEventListener('wheel', () => { lastUserScroll = Date.now(); }, { passive: true });
  list.addEventListener('keydown', (e) => {
    lastUserScroll = Date.now();
    const pos = view.indexOf(selected);
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const np = Math.max(0, Math.min(shown - 1, pos + (e.key === 'ArrowDown' ? 1 : -1)));
      if (view[np] !== undefined) { showDetail(view[np]); const top = np * ROW; if (top < list.scrollTop) list.scrollTop = top; else if (top + ROW > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW - list.clientHeight; }
    }
  });

  const esc = (s) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
  function rowHTML(e, k) {
    const sel = e.i === selected ? ' sel' : '';
    if (e.kind === 'marker') {
      return '<div class="row marker ' + e.cls + '" data-i="' + e.i + '"><span class="c-time">' + clock(e.t) + '</span><span class="c-data">' + esc(e.text) + '</span></div>';
    }
    const preview = e.data.length > 300 ? e.data.slice(0, 300) : e.data;
    const d = e.rec && e.rec.llm;
    const piece = d ? (d.text || d.reasoning || (d.tool ? (d.tool.name ? d.tool.name + '(' : '') + (d.tool.args || '') : '')) : '';
    const delta = piece ? '<span class="delta">' + esc(JSON.stringify(piece).slice(1, -1)) + '</span>' : '';
    return '<div class="row ' + e.kind + sel + '" data-i="' + e.i + '"><span class="c-time">' + clock(e.t) + '</span><span class="c-gap">' +
      (e.gap === null || e.gap === undefined ? '' : '+' + fmtMs(e.gap)) + '</span><span class="c-id">' + esc(e.id || '') + '</span><span class="c-type">' +
      esc(e.type) + '</span><span class="c-data">' + delta + esc(preview.replace(/\n/g, '⏎')) + '</span></div>';
  }
  rowsEl.addEventListener('click', (ev) => {
    const row = ev.target.closest('.row');
    if (row) { showDetail(+row.dataset.i); list.focus({ preventScroll: true }); }
  });

  // ---- detail ----
  // jsonHTML colours pretty-printed JSON: the tokens are found in the
  // plain text and each piece is escaped on its own.
  function jsonHTML(text) {
    const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
    let out = '';
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      out += esc(text.slice(last, m.index));
      if (m[1]) out += m[2] ? '<span class="j-key">' + esc(m[1]) + '</span>' + m[2] : '<span class="j-str">' + esc(m[1]) + '</span>';
      else if (m[3]) out += '<span class="j-lit">' + m[3] + '</span>';
      else out += '<span class="j-num">' + m[4] + '</span>';
      last = re.lastIndex;
    }
    return out + esc(text.slice(last));
  }
  function textHTML(raw) {
    return esc(raw).replace(/\r\n|\r|\n/g, (m) => '<span class="eol">' + (m === '\r\n' ? '␍␊' : m === '\r' ? '␍' : '␊') + '</span>\n');
  }
  // rawHTML shows a record's raw bytes: exact from raw64 when they are
  // not valid UTF-8 (each invalid byte shown as \xNN), else from raw.
  function rawHTML(r) {
    if (!r.raw64) return textHTML(r.raw);
    const b = Uint8Array.from(atob(r.raw64), (c) => c.charCodeAt(0));
    const dec = new TextDecoder();
    let out = '';
    let start = 0;
    for (let i = 0; i < b.length;) {
      const n = utf8Len(b, i);
      if (n) { i += n; continue; }
      out += textHTML(dec.decode(b.subarray(start, i))) + '<span class="bad" title="not valid UTF-8">\\x' + b[i].toString(16).toUpperCase().padStart(2, '0') + '</span>';
      start = ++i;
    }
    return out + textHTML(dec.decode(b.subarray(start)));
  }
  // utf8Len returns the length of the valid UTF-8 sequence at b[i], or 0
  // (as Go's utf8.Valid judges: no overlong forms, surrogates or values
  // past U+10FFFF).
  function utf8Len(b, i) {
    const c = b[i];
    if (c < 0x80) return 1;
    const n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!n || i + n > b.length) return 0;
    for (let k = 1; k < n; k++) if ((b[i + k] & 0xC0) !== 0x80) return 0;
    const c1 = b[i + 1];
    if ((c === 0xE0 && c1 < 0xA0) || (c === 0xED && c1 > 0x9F) || (c === 0xF0 && c1 < 0x90) || (c === 0xF4 && c1 > 0x8F)) return 0;
    return n;
  }
  function showDetail(i) {
    selected = i;
    schedule();
    const e = entries[i];
    $('detail').classList.toggle('none', !e || e.kind === 'marker');
    if (!e || e.kind === 'marker') {
      $('detail-title').textContent = 'Event';
      $('detail-meta').textContent = 'Select an event to see its data and raw bytes.';
      $('detail-data').textContent = ''; $('detail-raw').textContent = '';
      return;
    }
    const r = e.rec;
    $('detail-title').textContent = e.kind === 'comment' ? 'Comment' : 'Event #' + r.seq;
    const meta = [clock(e.t)];
    if (e.gap !== null && e.gap !== undefined) meta.push('+' + fmtMs(e.gap) + ' after the previous event');
    if (e.kind === 'event') { meta.push('type ' + e.type); meta.push(r.id ? 'id ' + r.id : 'no id'); meta.push(fmtBytes(new TextEncoder().encode(e.data).length) + ' of data'); }
    if (r.retry !== undefined) meta.push('retry ' + r.retry + ' ms');
    $('detail-meta').textContent = meta.join(' · ');
    let pretty = e.data;
    let isJSON = false;
    const tr = e.data.trim();
    if (tr[0] === '{' || tr[0] === '[') { try { pretty = JSON.stringify(JSON.parse(tr), null, 2); isJSON = true; } catch (x) { /* as text */ } }
    if (isJSON) $('detail-data').innerHTML = jsonHTML(pretty); else $('detail-data').textContent = pretty === '' ? '(empty data)' : pretty;
    const raw = e.kind === 'comment' ? { raw: ':' + (r.text || '') + '\n' } : r;
    if (raw.raw || raw.raw64) $('detail-raw').innerHTML = rawHTML(raw); else $('detail-raw').textContent = '(raw bytes not kept)';
  }

  // ---- summary ----
  function renderSummary() {
    $('s-status').textContent = st.status === null ? '–' : st.status + (st.proto ? ' ' + st.proto.replace('HTTP/', 'h') : '');
    $('s-ttfb').textContent = fmtMs(st.ttfb);
    $('s-first').textContent = fmtMs(st.firstEventT);
    $('s-events').textContent = st.events + (st.comments ? ' (+' + st.comments + ' comments)' : '');
    const span = st.lastEventT !== null && st.firstEventT !== null ? st.lastEventT - st.firstEventT : 0;
    $('s-rate').textContent = st.events > 1 && span > 0 ? ((st.events - 1) / (span / 1000)).toFixed(span > 10000 ? 1 : 2) : '–';
    $('s-gap').textContent = st.events > 1 ? fmtMs(st.longestGap) : '–';
    $('s-bytes').textContent = fmtBytes(st.bytes);
    $('s-conns').textContent = st.conns;
  }
  function renderHeaders() {
    const tb = $('resp-headers').tBodies[0];
    tb.innerHTML = '';
    if (!st.headers) return;
    Object.keys(st.headers).sort().forEach((k) => st.headers[k].forEach((v) => {
      const tr = tb.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = v;
    }));
  }

  // ---- LLM mode: the answer growing ----
  let llm = null;
  let llmDirty = false;
  function llmReset() { llm = null; $('llm').hidden = true; $('llm-text').textContent = ''; $('llm-tools').innerHTML = ''; $('llm-reasoning').textContent = ''; $('llm-reasoning').hidden = true; }
  // llmAdd adds one event's delta (at t ms into the session): the answer,
  // the reported usage (latest counts win), the first and last token's
  // times, and MCP's JSON-RPC messages.
  function llmAdd(d, t) {
    if (!llm) llm = { format: d.format, text: '', reasoning: '', tools: [], finish: '', usage: null, firstT: null, lastT: null, rpc: [] };
    if (d.text || d.reasoning || (d.tool && d.tool.args)) {
      if (llm.firstT === null) llm.firstT = t;
      llm.lastT = t;
    }
    if (d.usage) {
      llm.usage = llm.usage || { in: 0, out: 0 };
      if (d.usage.inputTokens) llm.usage.in = d.usage.inputTokens;
      if (d.usage.outputTokens) llm.usage.out = d.usage.outputTokens;
    }
    if (d.rpc && llm.rpc.length < 1000) llm.rpc.push(d.rpc);
    llm.text += d.text || '';
    llm.reasoning += d.reasoning || '';
    if (d.finish) llm.finish = d.finish;
    if (d.done && !llm.finish) llm.finish = 'done';
    if (d.tool) {
      let t = llm.tools.find((x) => x.index === d.tool.index);
      if (!t) { t = { index: d.tool.index, id: '', name: '', args: '' }; llm.tools.push(t); }
      if (d.tool.id) t.id = d.tool.id;
      if (d.tool.name) t.name = d.tool.name;
      t.args += d.tool.args || '';
    }
    llmDirty = true;
  }
  function renderLLM() {
    if (!llmDirty || !llm) return;
    llmDirty = false;
    if (!llm.text && !llm.tools.length && !llm.reasoning && !llm.finish && !llm.rpc.length) return;
    $('llm').hidden = false;
    $('llm-format').textContent = { openai: 'OpenAI chat', responses: 'OpenAI responses', anthropic: 'Anthropic', gemini: 'Gemini', mcp: 'MCP', custom: 'custom rules' }[llm.format] || llm.format;
    const facts = [llm.finish ? 'finished: ' + llm.finish : (llm.format === 'mcp' ? llm.rpc.length + ' messages' : 'streaming…')];
    if (llm.usage) facts.push('usage: ' + llm.usage.in + ' input, ' + llm.usage.out + ' output tokens');
    if (llm.firstT !== null) facts.push('first token after ' + Math.round(llm.firstT) + ' ms');
    if (llm.usage && llm.usage.out > 1 && llm.lastT > llm.firstT) facts.push(((llm.usage.out - 1) / ((llm.lastT - llm.firstT) / 1000)).toFixed(1) + ' tokens/s');
    $('llm-finish').textContent = facts.join(' · ');
    $('llm-text').textContent = llm.text;
    $('llm-reasoning').hidden = !llm.reasoning;
    $('llm-reasoning').textContent = llm.reasoning;
    $('llm-tools').innerHTML = llm.tools.map((t) => {
      let args = t.args;
      try { args = JSON.stringify(JSON.parse(t.args), null, 2); } catch (e) { /* still growing */ }
      return '<div class="tool">tool call <b>' + esc(t.name || '?') + '</b> <span class="hint">' + esc(t.id) + '</span><pre>' + esc(args) + '</pre></div>';
    }).join('') + llm.rpc.map((m) => {
      let what;
      if (m.method) what = (m.id ? '→ request ' + m.id + ' ' : '→ notification ') + m.method;
      else if (m.error) what = '← error ' + (m.id || '') + ': ' + m.error.code + ' ' + m.error.message;
      else what = '← result ' + (m.id || '');
      const body = m.method ? m.params : m.result;
      return '<div class="rpc ' + (m.method ? (m.id ? 'request' : 'notification') : (m.error ? 'error' : 'result')) + '"><b>' + esc(what) + '</b>' + (body ? '<pre>' + esc(JSON.stringify(body, null, 2)) + '</pre>' : '') + '</div>';
    }).join('');
    const lt = $('llm-text');
    lt.scrollTop = lt.scrollHeight;
  }

  // ---- send, stop, drop ----
  async function send() {
    const s = spec();
    if (!/^https?:\/\//i.test(s.url)) { toast('Enter an http:// or https:// URL'); $('url').focus(); return; }
    if (!checkRules()) { toast('The LLM rules are not a JSON object'); return; }
    stop(true);
    inbox = []; inboxAt = 0;
    records = []; entries = []; view = []; shown = 0; selected = -1; st = newStats(); types.clear(); $('filter-type').length = 1; filterType = '';
    llmReset(); showDetail(-1); renderHeaders();
    t0 = Date.now();
    history.replaceState(null, '', location.pathname + location.search + '#req=' + b64encode(JSON.stringify(formState(false))));
    setState('connecting', 'connecting');
    $('stop').disabled = false; $('drop').disabled = false;
    let res;
    try { res = await api('POST', 'api/sessions', s); } catch (err) {
      handle({ t: 0, kind: 'error', text: err.message });
      schedule(true);
      return;
    }
    sessionID = res.id;
    source = new AbortController();
    readStream('api/sessions/' + encodeURIComponent(res.id) + '/stream', source);
    schedule(true);
  }
  // readStream reads the session's event stream with fetch rather than
  // EventSource: Chromium's EventSource parses on the main thread at a cost
  // that freezes frames for a burst of megabytes, while here the body is
  // decoded by TextDecoderStream, only cut into lines, and each batch's
  // JSON is parsed later, within a frame's budget. The stream's only
  // fields that matter are data lines; ids and comments (heartbeats) are
  // skipped.
  async function readStream(path, ctl) {
    const mine = () => source === ctl;
    let why = 'lost the debug server';
    let data = []; // data lines of the event being read
    let parts = []; // pieces of a line not ended yet
    const line = (l) => {
      if (l.endsWith('\r')) l = l.slice(0, -1);
      if (l === '') {
        if (data.length && mine()) receive(data.length === 1 ? data[0] : data.join('\n'));
        data = [];
      } else if (l.startsWith('data:')) data.push(l.slice(l[5] === ' ' ? 6 : 5));
    };
    try {
      const resp = await fetch(path, { headers: { 'X-Ssekit-Token': token, Accept: 'text/event-stream' }, signal: ctl.signal, cache: 'no-store' });
      if (!resp.ok) throw new Error(resp.status + ' ' + resp.statusText);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        let start = 0;
        for (let nl; (nl = value.indexOf('\n', start)) >= 0; start = nl + 1) {
          let l = value.slice(start, nl);
          if (parts.length) { parts.push(l); l = parts.join(''); parts = []; }
          line(l);
        }
        if (start < value.length) parts.push(value.slice(start));
      }
    } catch (err) {
      if (ctl.signal.aborted) return;
      why += ': ' + err.message;
    }
    if (!mine()) return;
    drain(); // the records that end the session may still wait for a frame
    if (mine()) { finish('error', 'lost the debug server'); toast(why); }
  }
  function finish(cls, text) {
    if (source) source.abort();
    source = null; sessionID = null;
    $('stop').disabled = true; $('drop').disabled = true;
    setState(cls, text);
    schedule(true);
  }
  function stop(quiet) {
    if (sessionID) api('DELETE', 'api/sessions/' + encodeURIComponent(sessionID)).catch(() => {});
    if (source) drain();
    if (source) {
      if (!quiet) handle({ t: Date.now() - t0, kind: 'end', text: 'stopped' });
      finish('idle', 'stopped');
    }
  }
  $('send').onclick = send;
  $('stop').onclick = () => stop(false);
  $('drop').onclick = () => { if (sessionID) api('POST', 'api/sessions/' + encodeURIComponent(sessionID) + '/restart').catch((e) => toast(e.message)); };
  document.addEventListener('keydown', (e) => { if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); send(); } });
  $('url').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); send(); } });

  // ---- export ----
  $('export').onclick = () => {
    drain();
    if (!records.length) { toast('Nothing to export yet'); return; }
    const blob = new Blob([records.map((r) => JSON.stringify(r)).join('\n') + '\n'], { type: 'application/x-ndjson' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'ssekit-session-' + new Date(t0).toISOString().replace(/[:.]/g, '-') + '.jsonl';
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };

  // ---- start ----
  listSaved();
  if (!fromFragment()) {
    const last = localStorage.getItem('ssekit.last');
    if (last) { try { loadForm(JSON.parse(last)); } catch (e) { /* ignore */ } }
  }
  window.addEventListener('beforeunload', () => localStorage.setItem('ssekit.last', JSON.stringify(formState(false))));
  window.addEventListener('resize', () => schedule(true));
  countTabs();
  schedule(true);

  // For tests and benchmarks: feed records as the backend would.
  window.ssekit = {
    // inject applies records at once; receive queues them (an array, or
    // its JSON) as the backend's messages are, to be applied over the next
    // frames.
    inject(recs) { receive(recs); drain(); },
    receive(recs) { receive(recs); },
    stats() { return Object.assign({}, st, { rows: entries.length, view: view.length, domRows: rowsEl.childElementCount }); },
    llm() { return llm; },
    // llmShown: the answer panel shows every delta received.
    llmShown() { return !llmDirty; },
    records() { return records; },
    renderCost() { return renderCost.slice(); },
    fromCurl, toCurl, spec,
  };
})();
