#!/usr/bin/env node
// Copyright (C) ngx_ai_gateway contributors

'use strict';
/*
 * Mock LLM-provider upstream for the AI-gateway end-to-end tests (t/*.t).
 * Node.js >= 20, core modules only. Normally started by t/lib/AIGW/Mock.pm.
 *
 *   node t/mock/provider.js [--host 127.0.0.1] [--port 0] [--tls-port 0]
 *        [--badtls-port 0] [--cert-dir t/.certs] [--fixtures t/fixtures]
 *
 * Listens on three ports that behave identically: plain HTTP, HTTPS with
 * server.crt (test CA) and HTTPS with bad.crt (untrusted CA). Port 0 = pick a
 * free one. When all are listening it prints one line to stdout:
 *   MOCK_READY {"port":P,"tls_port":T,"badtls_port":B,"pid":N}
 * It exits when stdin reaches EOF or its parent process goes away (no orphans).
 *
 * Each request is steered by the request header `x-mock`: a `;`-separated
 * list of `key=value` directives (values are percent-decoded, so `%3B` = `;`).
 * No header = echo. Directives (see t/fixtures/README.md for the full table):
 *   status=N  fixture=REL  format=openai|anthropic|cohere|responses|gemini
 *   interval=MS  first_byte_delay=MS  sse=N  size=N  chunked=1  echo=1
 *   hang=1  reset=1  close_after=N  garbage=1  header=Name:Value (repeatable)
 *   cut=N (with size=, chunked=: the body stops after N bytes, then FIN)
 *   drain_body=0|1  broken=NAME (answers a translator cannot take)
 *   interim=100|103: an interim response before the answer
 *   raw=BYTES: the whole answer, written as it is (percent-encoded: %0D%0A)
 *   script=NAME try1=D1 try2=D2 ...: the Nth request of script NAME (since
 *   the last reset) also applies the directives tryN (`;` in them as %3B)
 * Admin API (plain port only): GET /__mock/log, POST /__mock/reset,
 * GET /__mock/health. Admin requests are not logged.
 *
 * --demo 1 (make demo, the package's CI step): no TLS ports, no certificates
 * needed, and a request without x-mock gets an answer in its provider's own
 * format (OpenAI chat completions, embeddings and models, Anthropic
 * messages, Gemini generateContent; streamed when asked) whose text says it
 * comes from this mock, with the header x-mock-provider.
 */

const http = require('http');
const https = require('https');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const dgram = require('dgram');

// ---------------------------------------------------------------- options --
const opts = {
    host: '127.0.0.1', port: 0, 'tls-port': 0, 'badtls-port': 0,
    'cert-dir': path.join(__dirname, '..', '.certs'),
    fixtures: path.join(__dirname, '..', 'fixtures'),
    demo: '',
};
for (let a = process.argv.slice(2); a.length;) {
    const k = a.shift().replace(/^--/, '');
    if (!(k in opts)) { console.error(`provider.js: unknown option --${k}`); process.exit(2); }
    opts[k] = a.shift();
}
const FIXTURES = path.resolve(opts.fixtures);

const warn = (...m) => console.error(`[mock ${new Date().toISOString()}]`, ...m);
const now = () => Math.round((performance.timeOrigin + performance.now()) * 1000) / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ state --
// log: one entry per non-admin request since the last /__mock/reset.
const state = { seq: 0, connSeq: 0, connections: 0, byPort: {}, log: [], dns: [], scripts: {} };
const CONN = Symbol('conn');

/** Per-TCP-connection record, created lazily on the (TLS or plain) socket. */
function connOf(sock) {
    if (!sock[CONN]) sock[CONN] = { id: ++state.connSeq, requests: 0 };
    return sock[CONN];
}

// ------------------------------------------------------------- directives --
/** Parse the x-mock header(s) into {key: value}; `header` collects an array. */
function parseDirectives(raw) {
    const d = { header: [] };
    for (const part of String(raw || '').split(';')) {
        const p = part.trim();
        if (!p) continue;
        const eq = p.indexOf('=');
        const k = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
        let v = eq < 0 ? '1' : p.slice(eq + 1).trim();
        try { v = decodeURIComponent(v); } catch { /* keep raw */ }
        if (k === 'header') d.header.push(v); else d[k] = v;
    }
    return d;
}
/** Integer directive or default (bad input falls back to the default). */
function num(d, k, def) {
    const n = Number.parseInt(d[k], 10);
    return Number.isFinite(n) && n >= 0 ? n : def;
}

// ---------------------------------------------------------------- helpers --
/** Headers from rawHeaders: lower-cased names, repeats joined with ", ". */
function headerObject(raw) {
    const h = {};
    for (let i = 0; i + 1 < raw.length; i += 2) {
        const k = raw[i].toLowerCase();
        h[k] = k in h ? `${h[k]}, ${raw[i + 1]}` : raw[i + 1];
    }
    return h;
}

/** Read the whole request body into a Buffer (resolves early on abort). */
function readBody(req) {
    return new Promise((resolve) => {
        const parts = [];
        req.on('data', (c) => parts.push(c));
        req.on('end', () => resolve(Buffer.concat(parts)));
        req.on('error', () => resolve(Buffer.concat(parts)));
        req.on('close', () => resolve(Buffer.concat(parts)));
    });
}

/** Response headers a real provider would send, chosen by fixture folder. */
function providerHeaders(folder, n) {
    const id = `req_mock_${n}`;
    switch (folder) {
    case 'anthropic': return { 'request-id': id, 'anthropic-organization-id': 'mock-org' };
    case 'openai-chat': case 'openai-embeddings': case 'openai-responses':
    case 'openai-compatible': case 'mistral':
        return { 'openai-processing-ms': '42', 'openai-version': '2020-10-01' };
    case 'google-gemini': return { 'server-timing': 'gfet4t7; dur=42', vary: 'Origin, X-Origin, Referer' };
    case 'bedrock': return { 'x-amzn-requestid': crypto.randomUUID() };
    case 'cohere': return { 'x-debug-trace-id': crypto.randomBytes(16).toString('hex') };
    default: return {};
    }
}

/** Split raw SSE bytes after each blank line (\n\n or \r\n\r\n); keep a tail. */
function splitSse(buf) {
    const s = buf.toString('latin1'), out = [], re = /\r\n\r\n|\n\n/g;
    let last = 0, m;
    while ((m = re.exec(s))) { out.push(s.slice(last, re.lastIndex)); last = re.lastIndex; }
    if (last < s.length) out.push(s.slice(last));
    return out.map((e) => Buffer.from(e, 'latin1'));
}

/** JSON-lines (*.chunks.txt) -> SSE events, per provider recipe. */
function chunksToSse(buf, format) {
    const lines = buf.toString('utf8').split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim());
    const typeOf = (l) => { try { return JSON.parse(l).type || 'message'; } catch { return 'message'; } };
    switch (format) {
    case 'anthropic': case 'cohere': case 'responses':
        return lines.map((l) => `event: ${typeOf(l)}\ndata: ${l}\n\n`);
    case 'gemini':
        return lines.map((l) => `data: ${l}\r\n\r\n`);
    default: // openai, mistral, groq, ...
        return lines.map((l) => `data: ${l}\n\n`).concat('data: [DONE]\n\n');
    }
}
const FOLDER_FORMAT = { anthropic: 'anthropic', cohere: 'cohere', 'google-gemini': 'gemini', 'openai-responses': 'responses' };

/** Split an AWS eventstream body into frames (by the total-length prelude). */
function splitEventstream(buf) {
    const out = [];
    let off = 0;
    while (off + 12 <= buf.length) {
        const len = buf.readUInt32BE(off);
        if (len < 16 || off + len > buf.length) break;
        out.push(buf.subarray(off, off + len));
        off += len;
    }
    if (off < buf.length) out.push(buf.subarray(off)); // malformed tail: send as-is
    return out;
}

/** Body of exactly n bytes: {"data":"xxx…"} (or n 'x' when n < 11). */
function* sizedBody(n) {
    const CH = 16384, xs = Buffer.alloc(CH, 'x');
    let head = Buffer.from('{"data":"'), tail = Buffer.from('"}');
    if (n < head.length + tail.length) { head = Buffer.alloc(0); tail = head; }
    let fill = n - head.length - tail.length;
    let cur = head;
    while (fill > 0 || cur.length) {
        const take = Math.min(CH - cur.length, fill);
        cur = Buffer.concat([cur, xs.subarray(0, take)]);
        fill -= take;
        if (fill === 0) cur = Buffer.concat([cur, tail]);
        yield cur;
        cur = Buffer.alloc(0);
    }
}

// ----------------------------------------- broken answers (t/064-*.t) --
// broken=NAME: a 200 the Unified API's translators cannot take, or a stream
// that ends badly.  Strings are whole bodies (Content-Length, or chunked=1);
// "cut" sends half of one and closes, "stall" sends half and waits; arrays
// are streams, one event per write (interval=MS).
const brokenGemini = (text, fin) => 'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"'
    + text + '"}]},' + (fin ? '"finishReason":"STOP",' : '') + '"index":0}],"modelVersion":"gemini-2.5-flash"}\r\n\r\n';
const brokenAnthropic = (type, o) => `event: ${type}\ndata: ${JSON.stringify({ type, ...o })}\n\n`;
const brokenMessage = [
    brokenAnthropic('message_start', { message: { id: 'msg_b', type: 'message', role: 'assistant', model: 'claude-x',
        content: [], stop_reason: null, usage: { input_tokens: 5, output_tokens: 1 } } }),
    brokenAnthropic('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    brokenAnthropic('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hello' } }),
    brokenAnthropic('content_block_stop', { index: 0 }),
    brokenAnthropic('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } }),
    brokenAnthropic('message_stop', {}),
];
const BROKEN = {
    text: 'upstream connect error or disconnect/reset before headers',
    shape: '{"object":"list","data":[]}',
    truncated: '{"id":"msg_b","type":"message","role":"assistant","content":[{"type":"text","text":"Hel',
    cut: '{"id":"msg_b","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Hello"}],'
        + '"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":1}}',
    stall: '{"id":"msg_b","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Hello"}]}',
    'gemini-error': [brokenGemini('Hello'), brokenGemini(' world', true),
        '{\n  "error": {\n    "code": 499,\n    "message": "The operation was cancelled.",\n    "status": "CANCELLED"\n  }\n}\n'],
    'gemini-late': [brokenGemini('Hello', true), brokenGemini(' again')],
    'anthropic-error': [...brokenMessage,
        brokenAnthropic('error', { error: { type: 'overloaded_error', message: 'Overloaded' } })],
    'anthropic-late': [...brokenMessage,
        brokenAnthropic('content_block_delta', { index: 0, delta: { type: 'text_delta', text: ' again' } })],
};

// -------------------------------------------------------- request handler --
async function handle(req, res, kind) {
    const sock = req.socket;
    const conn = connOf(sock);
    conn.requests++;
    const [rawPath, ...q] = req.url.split('?');
    const query = q.join('?');

    if (rawPath.startsWith('/__mock/')) {
        if (conn.requests === 1 && !conn.admin) { // do not count admin connections
            conn.admin = true;
            state.connections = Math.max(0, state.connections - 1);
            state.byPort[sock.localPort] = Math.max(0, (state.byPort[sock.localPort] || 0) - 1);
        }
        return admin(req, res, kind, rawPath);
    }

    const n = ++state.seq;
    const headers = headerObject(req.rawHeaders);
    const xmock = []; // repeated x-mock headers are concatenated with ';'
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        if (req.rawHeaders[i].toLowerCase() === 'x-mock') xmock.push(req.rawHeaders[i + 1]);
    }
    const d = parseDirectives(xmock.join(';'));
    let attempt = null;
    if (d.script !== undefined) { // per-attempt behaviour, for retry tests
        attempt = state.scripts[d.script] = (state.scripts[d.script] || 0) + 1;
        const more = d[`try${attempt}`];
        if (more !== undefined) {
            const m = parseDirectives(more);
            Object.assign(d, m, { header: d.header.concat(m.header) });
        }
    }
    const entry = {
        seq: n, conn_id: conn.id, conn_requests: conn.requests, port: sock.localPort, tls: !!sock.encrypted,
        attempt, sni: sock.servername || null, method: req.method, path: rawPath, query, headers,
        body_len: 0, body_sha256: null, body: null, t_start: now(), t_end: null, status: null,
        aborted: false, mock_closed: false, events_sent: 0, directives: xmock.length ? xmock.join(';') : null,
    };
    state.log.push(entry);
    let done = false;
    const finish = () => { if (!entry.t_end) entry.t_end = now(); };
    res.on('finish', () => { done = true; finish(); });
    res.on('close', () => { if (!done && !entry.mock_closed) entry.aborted = true; finish(); });
    res.on('error', (e) => warn(`#${n} response error: ${e.message}`));
    const gone = () => done || res.destroyed || sock.destroyed;
    const waitDrain = () => new Promise((r) => {
        const f = () => { res.off('drain', f); res.off('close', f); r(); };
        res.on('drain', f); res.on('close', f);
    });
    // rst: abortive close (TCP RST); else flush what was written, FIN, then destroy.
    const killSocket = (rst) => {
        entry.mock_closed = true;
        const raw = sock._parent || sock; // TLS: the underlying TCP socket
        try {
            if (rst && raw.resetAndDestroy) return raw.resetAndDestroy();
            sock.end();
            setTimeout(() => sock.destroy(), 1000).unref();
        } catch { sock.destroy(); }
    };

    if (d.reset === '1') return killSocket(true);

    let body = Buffer.alloc(0);
    if (d.drain_body !== '0') body = await readBody(req);
    entry.body_len = body.length;
    entry.body_sha256 = crypto.createHash('sha256').update(body).digest('hex');
    entry.body = body.length <= 1048576 ? body.toString('utf8') : null;

    if (opts.demo && !xmock.length) return demoAnswer(req, res, rawPath, query, body, entry);
    if (d.hang === '1') return; // never answer; the entry records the abort
    if (rawPath === '/token' && req.method === 'POST' && headers.host === 'oauth2.googleapis.com') {
        return googleToken(body, res, entry, n);
    }
    const fbd = num(d, 'first_byte_delay', 0);
    if (fbd) await sleep(fbd);
    if (gone()) return;

    if (d.raw !== undefined) { // hand-made answers, for framing errors
        entry.mock_closed = true;
        sock.end(Buffer.from(d.raw, 'latin1'));
        return;
    }
    if (d.interim === '100') res.writeContinue();
    if (d.interim === '103') res.writeEarlyHints({ link: '</x>; rel=preload' });

    if (d.garbage === '1') {
        entry.mock_closed = true;
        sock.end('HTTP/9 nonsense\r\n\r\n\x00\x01garbage\xff\r\n\r\n');
        return;
    }

    // ---- status, default headers, extra headers
    let status = d.status !== undefined ? num(d, 'status', 500) : 200;
    if (status < 100 || status > 999) status = 500;
    const fixture = d.fixture;
    const folder = fixture ? fixture.split('/')[0] : '';
    const hdrs = { 'x-request-id': `req_mock_${n}`, 'x-mock-conn-id': String(conn.id), ...providerHeaders(folder, n) };
    const extra = (h) => {
        for (const kv of d.header) {
            const i = kv.indexOf(':');
            if (i > 0) h[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
        }
        return h;
    };
    const interval = num(d, 'interval', 50);
    const closeAfter = d.close_after !== undefined ? num(d, 'close_after', Infinity) : Infinity;

    /** Send a complete body with Content-Length (or chunked with chunked=1). */
    const sendBody = async (ctype, buf) => {
        if (status === 204 || status === 304 || status < 200) buf = Buffer.alloc(0);
        const h = { 'content-type': ctype, ...hdrs };
        if (d.chunked !== '1') h['content-length'] = buf.length;
        return writeChunks(h, (function* () { for (let o = 0; o < buf.length; o += 16384) yield buf.subarray(o, o + 16384); })(), 0);
    };
    /** Write head then pieces (each its own write); pace with `gap` ms. */
    const writeChunks = async (h, pieces, gap, isStream) => {
        res.statusCode = status;
        for (const [k, v] of Object.entries(extra(h))) {
            try { res.setHeader(k, v); } catch (e) { warn(`#${n} bad header ${k}: ${e.message}`); }
        }
        res.flushHeaders();
        entry.status = status;
        if (isStream && closeAfter === 0) return killSocket(false);
        let first = true;
        for (const p of pieces) {
            if (!first && gap) await sleep(gap);
            first = false;
            if (gone()) return;
            const ok = res.write(typeof p === 'function' ? p() : p); // thunk: build at send time
            if (isStream && ++entry.events_sent >= closeAfter) return killSocket(false);
            if (!ok) await waitDrain();
        }
        if (!gone()) res.end();
    };
    const stream = (ctype, events, gap) =>
        writeChunks({ 'content-type': ctype, 'cache-control': 'no-cache', ...hdrs }, events, gap, true);

    // ---- a body cut short: the head promises size= bytes (default 1000)
    // with Content-Length, or chunked with chunked=1; cut=N of them leave,
    // then FIN (no terminating chunk, a Content-Length never reached)
    if (d.cut !== undefined) {
        const size = num(d, 'size', 1000), cut = Math.min(num(d, 'cut', 0), size);
        const h = extra({ 'content-type': 'application/json', ...hdrs });
        if (d.chunked !== '1') h['content-length'] = size;
        res.statusCode = status;
        for (const [k, v] of Object.entries(h)) res.setHeader(k, v);
        res.flushHeaders();
        entry.status = status;
        const part = Buffer.concat([...sizedBody(size)]).subarray(0, cut);
        if (part.length) res.write(part);
        return killSocket(false);
    }

    // ---- synthetic SSE stream
    if (d.sse !== undefined) {
        const count = num(d, 'sse', 0);
        const events = (function* () {
            for (let i = 0; i < count; i++) yield () => `data: {"i":${i},"t":${Date.now()}}\n\n`;
            yield 'data: [DONE]\n\n';
        })();
        return stream('text/event-stream; charset=utf-8', events, interval);
    }

    // ---- broken answers (see BROKEN)
    if (d.broken !== undefined) {
        const b = BROKEN[d.broken] ?? '';
        if (Array.isArray(b)) return stream('text/event-stream; charset=utf-8', b, interval);
        if (d.broken !== 'cut' && d.broken !== 'stall') return sendBody('application/json', Buffer.from(b));
        const h = { 'content-type': 'application/json', ...hdrs };
        if (d.chunked !== '1') h['content-length'] = b.length;
        res.writeHead(status, extra(h));
        entry.status = status;
        res.write(b.slice(0, b.length >> 1));
        if (d.broken === 'cut') killSocket(false);
        return;
    }

    // ---- fixture file
    if (fixture) {
        const file = path.resolve(FIXTURES, fixture);
        let buf;
        try {
            if (!file.startsWith(FIXTURES + path.sep)) throw new Error('outside t/fixtures');
            buf = await fs.promises.readFile(file);
        } catch (e) {
            warn(`#${n} fixture ${fixture}: ${e.message}`);
            status = 500;
            return sendBody('application/json', Buffer.from(JSON.stringify(
                { error: { message: `mock: cannot read fixture ${fixture}: ${e.message}`, type: 'mock_fixture_error', param: null, code: null } })));
        }
        const m = /(?:^|\/)error-(\d{3})-/.exec(fixture);
        if (m && d.status === undefined) status = Number(m[1]);
        if (folder === 'bedrock' && status >= 400) {
            hdrs['x-amzn-errortype'] = `${status === 429 ? 'ThrottlingException' : 'ValidationException'}:http://internal.amazon.com/coral/com.amazon.bedrock/`;
        }
        if (fixture.endsWith('.sse')) return stream('text/event-stream; charset=utf-8', splitSse(buf), interval);
        if (fixture.endsWith('.chunks.txt')) {
            const fmt = (d.format || FOLDER_FORMAT[folder] || 'openai').toLowerCase();
            return stream('text/event-stream; charset=utf-8', chunksToSse(buf, fmt), interval);
        }
        if (fixture.endsWith('.eventstream.bin')) return stream('application/vnd.amazon.eventstream', splitEventstream(buf), interval);
        if (fixture.endsWith('.json')) return sendBody('application/json', buf);
        return sendBody('application/octet-stream', buf);
    }

    // ---- sized body
    if (d.size !== undefined) {
        const size = num(d, 'size', 0);
        const h = { 'content-type': 'application/json', ...hdrs };
        if (d.chunked !== '1') h['content-length'] = size;
        return writeChunks(h, sizedBody(size), 0);
    }

    // ---- provider-shaped error
    if (d.status !== undefined && d.echo !== '1') {
        return sendBody('application/json', Buffer.from(JSON.stringify(
            { error: { message: `mock error ${status}`, type: 'mock_error', param: null, code: null } })));
    }

    // ---- echo (default)
    const bodyStr = body.toString('utf8');
    const echo = {
        method: req.method, path: rawPath, query, headers,
        raw_headers: req.rawHeaders.reduce((a, v, i) => (i % 2 ? a[a.length - 1].push(v) : a.push([v]), a), []),
        body: bodyStr, body_len: body.length, body_sha256: entry.body_sha256,
        host: headers.host === undefined ? null : headers.host, sni: entry.sni, tls: entry.tls,
        conn_id: conn.id, conn_requests: entry.conn_requests, port: sock.localPort, seq: n,
    };
    if (!Buffer.from(bodyStr, 'utf8').equals(body)) echo.body_base64 = body.toString('base64');
    return sendBody('application/json', Buffer.from(JSON.stringify(echo)));
}

// ------------------------------------------------- Google OAuth tokens --
// POST https://oauth2.googleapis.com/token with a JWT signed by the test
// service-account key (cert dir sa.key).  The answer depends on the JWT's
// "iss": refuse@... 400 invalid_grant, broken@... 500 HTML, hang@... none,
// short@... a token valid 30 s; inject@... a token with a CRLF in it;
// else a token valid 3599 s.  The JWT is
// verified like Google does: RS256 signature, aud, scope, iat/exp.
let saPublic = null;
function googleToken(body, res, entry, n) {
    const reply = (code, obj, ctype = 'application/json; charset=utf-8') => {
        const b = Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj));
        entry.status = code;
        res.writeHead(code, { 'content-type': ctype, 'content-length': b.length });
        res.end(b);
    };
    const bad = (desc) => reply(400, { error: 'invalid_grant', error_description: desc });
    const form = new URLSearchParams(body.toString('utf8'));
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
        return reply(400, { error: 'unsupported_grant_type', error_description: 'Invalid grant_type' });
    }
    const parts = (form.get('assertion') || '').split('.');
    if (parts.length !== 3) return bad('Invalid JWT.');
    let header, claims;
    try {
        header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
        claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch { return bad('Invalid JWT.'); }
    if (!saPublic) saPublic = crypto.createPublicKey(fs.readFileSync(path.join(opts['cert-dir'], 'sa.key')));
    const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), saPublic,
        Buffer.from(parts[2], 'base64url'));
    if (header.alg !== 'RS256' || !ok) return bad('Invalid JWT Signature.');
    const t = Math.floor(Date.now() / 1000);
    if (claims.aud !== 'https://oauth2.googleapis.com/token'
        || claims.scope !== 'https://www.googleapis.com/auth/cloud-platform'
        || typeof claims.iss !== 'string' || Math.abs(claims.iat - t) > 300
        || claims.exp - claims.iat !== 3600) {
        return bad('Invalid JWT: claims');
    }
    entry.jwt = { header, claims };
    if (claims.iss.startsWith('refuse@')) return bad('Invalid grant: account not found');
    if (claims.iss.startsWith('broken@')) return reply(500, '<html>oops</html>', 'text/html');
    if (claims.iss.startsWith('hang@')) return;
    if (claims.iss.startsWith('inject@')) {
        return reply(200, { access_token: 'ya29.x\r\nX-Injected: 1', expires_in: 3599, token_type: 'Bearer' });
    }
    return reply(200, { access_token: `ya29.mock-${n}`, expires_in: claims.iss.startsWith('short@') ? 30 : 3599,
        token_type: 'Bearer' });
}

// ---------------------------------------------------------------- admin --
function admin(req, res, kind, p) {
    const reply = (code, obj) => {
        const b = Buffer.from(JSON.stringify(obj));
        res.writeHead(code, { 'content-type': 'application/json', 'content-length': b.length });
        res.end(b);
    };
    req.resume(); // discard any body
    if (kind !== 'plain') return reply(404, { error: 'admin API is on the plain port only' });
    if (p === '/__mock/log' && req.method === 'GET') {
        return reply(200, { requests: state.log, connections: state.connections, connections_by_port: state.byPort, dns: state.dns });
    }
    if (p === '/__mock/reset' && req.method === 'POST') {
        state.log = []; state.connections = 0; state.byPort = {}; state.dns = []; state.scripts = {};
        return reply(200, { ok: true });
    }
    if (p === '/__mock/health') return reply(200, { ok: true, pid: process.pid, ports });
    return reply(404, { error: `unknown admin endpoint ${req.method} ${p}` });
}

// ---------------------------------------------------------------- servers --
const ports = {};
function makeServer(kind) {
    const base = { insecureHTTPParser: true, requestTimeout: 0, headersTimeout: 60000, keepAliveTimeout: 120000 };
    const onReq = (req, res) => handle(req, res, kind).catch((e) => {
        warn(`handler error on ${req.method} ${req.url}: ${e.stack || e}`);
        try {
            if (!res.headersSent) { res.writeHead(500, { 'content-type': 'application/json' }); res.end('{"error":{"message":"mock internal error"}}'); } else res.destroy();
        } catch { /* ignore */ }
    });
    let srv;
    if (kind === 'plain') {
        srv = http.createServer(base, onReq);
    } else {
        const dir = opts['cert-dir'], name = kind === 'tls' ? 'server' : 'bad';
        srv = https.createServer({
            ...base,
            key: fs.readFileSync(path.join(dir, `${name}.key`)),
            cert: fs.readFileSync(path.join(dir, `${name}.crt`)),
        }, onReq);
        srv.on('tlsClientError', () => { /* expected for the bad-cert port */ });
    }
    srv.keepAliveTimeout = base.keepAliveTimeout;
    srv.on('connection', (s) => {
        state.connections++;
        state.byPort[s.localPort] = (state.byPort[s.localPort] || 0) + 1;
        s.on('error', (e) => { if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') warn(`socket error: ${e.message}`); });
    });
    srv.on('clientError', (e, s) => {
        if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') warn(`client error (${kind}): ${e.code || e.message}`);
        if (s.writable && !s.destroyed && e.code !== 'ECONNRESET') s.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        else s.destroy();
    });
    srv.on('error', (e) => { warn(`server ${kind} error: ${e.message}`); process.exit(1); });
    return srv;
}

// ---------------------------------------------- demo answers (--demo 1) --
const DEMO_NOTE = 'This answer comes from the mock provider of the ngx_ai_gateway demo'
    + ' (t/mock/provider.js), not from a model.';

/** The text of the last user turn, in any of the three dialects. */
function demoSaid(j) {
    const text = (c) => typeof c === 'string' ? c
        : Array.isArray(c) ? c.map((b) => (b && (b.text || '')) || '').join(' ') : '';
    if (Array.isArray(j.messages)) {
        const u = j.messages.filter((m) => m && m.role === 'user').pop();
        if (u) return text(u.content);
    }
    if (Array.isArray(j.contents) && j.contents.length) {
        return text((j.contents[j.contents.length - 1] || {}).parts);
    }
    return '';
}

function demoAnswer(req, res, p, query, body, entry) {
    let j = {};
    try { j = JSON.parse(body.toString('utf8') || '{}') || {}; } catch { /* not JSON */ }
    const said = demoSaid(j).slice(0, 200);
    const text = `[mock] ${DEMO_NOTE}` + (said ? ` You said: "${said}"` : '');
    const words = text.split(/(?<= )/);
    const gm = p.match(/\/models\/([^/:]+):(generateContent|streamGenerateContent)$/);
    const model = String(j.model || (gm && gm[1]) || 'mock-model');
    const h = { 'x-mock-provider': 'ngx_ai_gateway demo (t/mock/provider.js)' };
    const created = Math.floor(Date.now() / 1000);
    const id = `mock-${entry.seq}`;
    const json = (status, o) => {
        entry.status = status;
        res.writeHead(status, { 'content-type': 'application/json', ...h });
        res.end(JSON.stringify(o));
    };
    const sse = (events) => {
        entry.status = 200;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...h });
        for (const e of events) { res.write(e); entry.events_sent++; }
        res.end();
    };
    const usage = { prompt_tokens: said.split(' ').length, completion_tokens: words.length };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;

    if (req.method === 'POST' && p.endsWith('/chat/completions')) {
        if (!j.stream) {
            return json(200, { id, object: 'chat.completion', created, model,
                choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
                usage });
        }
        const chunk = (delta, fin) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model,
            choices: [{ index: 0, delta, finish_reason: fin || null }] })}\n\n`;
        return sse([chunk({ role: 'assistant', content: '' }), ...words.map((w) => chunk({ content: w })),
            chunk({}, 'stop'), 'data: [DONE]\n\n']);
    }
    if (req.method === 'POST' && p.endsWith('/embeddings')) {
        const inputs = Array.isArray(j.input) ? j.input : [j.input || ''];
        return json(200, { object: 'list', model,
            data: inputs.map((_, i) => ({ object: 'embedding', index: i, embedding: [0.1, 0.2, 0.3] })),
            usage: { prompt_tokens: inputs.length, total_tokens: inputs.length } });
    }
    if (req.method === 'GET' && p.endsWith('/models')) {
        return json(200, { object: 'list', data: [{ id: 'mock-model', object: 'model', created, owned_by: 'mock' }] });
    }
    if (req.method === 'POST' && p.endsWith('/messages')) {
        const u = { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens };
        if (!j.stream) {
            return json(200, { id, type: 'message', role: 'assistant', model,
                content: [{ type: 'text', text }], stop_reason: 'end_turn', stop_sequence: null, usage: u });
        }
        const ev = (type, o) => `event: ${type}\ndata: ${JSON.stringify({ type, ...o })}\n\n`;
        return sse([
            ev('message_start', { message: { id, type: 'message', role: 'assistant', model, content: [],
                stop_reason: null, stop_sequence: null, usage: { input_tokens: u.input_tokens, output_tokens: 1 } } }),
            ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
            ...words.map((w) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: w } })),
            ev('content_block_stop', { index: 0 }),
            ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null },
                usage: { output_tokens: u.output_tokens } }),
            ev('message_stop', {}),
        ]);
    }
    if (req.method === 'POST' && gm) {
        const meta = { promptTokenCount: usage.prompt_tokens, candidatesTokenCount: usage.completion_tokens,
            totalTokenCount: usage.total_tokens };
        const cand = (t, fin) => ({ content: { role: 'model', parts: [{ text: t }] }, index: 0,
            ...(fin ? { finishReason: 'STOP' } : {}) });
        if (gm[2] === 'generateContent') {
            return json(200, { candidates: [cand(text, true)], usageMetadata: meta, modelVersion: model });
        }
        return sse(words.map((w, i) => `data: ${JSON.stringify({ candidates: [cand(w, i === words.length - 1)],
            ...(i === words.length - 1 ? { usageMetadata: meta } : {}), modelVersion: model })}\r\n\r\n`));
    }
    return json(404, { error: { message: `the demo's mock provider does not serve ${req.method} ${p}`,
        type: 'invalid_request_error' } });
}

// ------------------------------------------------------------------- dns --
// A name server for the gateway's resolver tests: every A question gets
// 127.0.0.1 (TTL 5), names under "nx." get NXDOMAIN, other types no data.
// Questions are counted in state.dns so tests can see lookups happen.
function makeDns() {
    const sock = dgram.createSocket('udp4');
    sock.on('message', (q, rinfo) => {
        if (q.length < 12) return;
        let i = 12;
        const labels = [];
        while (i < q.length && q[i] !== 0) { labels.push(q.slice(i + 1, i + 1 + q[i]).toString()); i += q[i] + 1; }
        const qtype = q.readUInt16BE(i + 1), qend = i + 5;
        const name = labels.join('.').toLowerCase();
        state.dns.push({ name, qtype });
        const nx = name.startsWith('nx.');
        const a = qtype === 1 && !nx;
        const head = Buffer.alloc(12);
        q.copy(head, 0, 0, 2);                             // id
        head.writeUInt16BE(0x8180 | (nx ? 3 : 0), 2);      // response, RD, RA
        head.writeUInt16BE(1, 4);                          // QDCOUNT
        head.writeUInt16BE(a ? 1 : 0, 6);                  // ANCOUNT
        const ans = a ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]) : Buffer.alloc(0);
        sock.send(Buffer.concat([head, q.slice(12, qend), ans]), rinfo.port, rinfo.address);
    });
    return new Promise((r) => sock.bind(0, opts.host, () => r(sock.address().port)));
}

const listen = (srv, port) => new Promise((r) => srv.listen(Number(port) || 0, opts.host, () => r(srv.address().port)));

// "localhost" is ::1 as well as 127.0.0.1 on a stock Debian (/etc/hosts),
// and nginx tries the addresses of a name in turn: the same port on ::1,
// when the machine has IPv6 (otherwise only 127.0.0.1)
const listenLocal = async (kind, port) => {
    const p = await listen(makeServer(kind), port);
    if (opts.host === '127.0.0.1') {
        const v6 = makeServer(kind);
        v6.removeAllListeners('error');
        await new Promise((r) => {
            v6.once('error', () => r());
            v6.listen(p, '::1', () => r());
        });
    }
    return p;
};

(async () => {
    ports.port = await listenLocal('plain', opts.port);
    if (!opts.demo) {
        ports.tls_port = await listenLocal('tls', opts['tls-port']);
        ports.badtls_port = await listenLocal('badtls', opts['badtls-port']);
    }
    ports.dns_port = await makeDns();
    process.stdout.write(`MOCK_READY ${JSON.stringify({ ...ports, pid: process.pid })}\n`);
})().catch((e) => { warn(`startup failed: ${e.stack || e}`); process.exit(1); });

// ------------------------------------------------------------ lifecycle --
process.on('uncaughtException', (e) => warn(`uncaught: ${e.stack || e}`));
process.on('unhandledRejection', (e) => warn(`unhandled rejection: ${e && e.stack ? e.stack : e}`));
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => process.exit(0));
// The parent (AIGW::Mock) keeps our stdin open; EOF means it is gone.
// (Only when stdin is a pipe, so `node provider.js </dev/null &` still works.)
try {
    if (fs.fstatSync(0).isFIFO()) {
        process.stdin.on('end', () => process.exit(0));
        process.stdin.on('error', () => process.exit(0));
        process.stdin.resume();
    }
} catch { /* no stdin */ }
// Belt and braces: exit when re-parented (parent killed with SIGKILL).
const ppid = process.ppid;
setInterval(() => { if (process.ppid !== ppid) process.exit(0); }, 500).unref();
