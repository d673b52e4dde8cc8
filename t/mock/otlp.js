#!/usr/bin/env node
// Copyright (C) ngx_ai_gateway contributors
//
// A test OTLP/HTTP receiver for t/160-otel.t.  Every POST body is decoded
// with the official OTLP definitions (the protobuf types generated from
// opentelemetry-proto that @opentelemetry/otlp-transformer ships): the
// OTLP/JSON ids (hex) become bytes, the request goes through
// ExportTraceServiceRequest.fromObject(), encode(), decode() and toObject(),
// and must come back identical, so that every field is one the definitions
// know, of the right type; then verify() must pass.
//
//   node t/mock/otlp.js
//   -> OTLP_READY {"port":P,"tls_port":T,"hang_port":H,"closed_port":C}
//
// port and tls_port (t/.certs/server.crt) receive exports; hang_port
// accepts connections and never answers; closed_port is a port nothing
// listens on.  Admin (plain port): GET /__otlp/log (the exports received:
// path, headers, valid, error, body), POST /__otlp/reset,
// POST /__otlp/status?code=N[&length=1] (the status of the next answers;
// with a Content-Length rather than chunked).
// It exits when its parent goes away.

'use strict';

const http = require('http');
const https = require('https');
const net = require('net');
const fs = require('fs');
const path = require('path');

const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const P = root.opentelemetry.proto;
const Traces = P.collector.trace.v1.ExportTraceServiceRequest;
const Logs = P.collector.logs.v1.ExportLogsServiceRequest;

const certDir = process.argv[2] || path.join(__dirname, '..', '.certs');

const state = { log: [], status: 200, hung: 0, length: false };

const HEX = { traceId: 32, spanId: 16, parentSpanId: 16 };

// OTLP/JSON ids are hex strings, the proto3 mapping's bytes are base64:
// hex in, bytes for the definitions; and back.

function idsToBytes(o) {
    if (Array.isArray(o)) return o.map(idsToBytes);
    if (o === null || typeof o !== 'object') return o;
    const r = {};
    for (const [k, v] of Object.entries(o)) {
        if (k in HEX && typeof v === 'string') {
            if (v.length !== HEX[k] || !/^[0-9a-f]+$/.test(v)) {
                throw new Error(`${k} "${v}" is not ${HEX[k]} lowercase hex digits`);
            }
            r[k] = Buffer.from(v, 'hex');
        } else {
            r[k] = idsToBytes(v);
        }
    }
    return r;
}

function bytesToIds(o) {
    if (Array.isArray(o)) return o.map(bytesToIds);
    if (o === null || typeof o !== 'object') return o;
    const r = {};
    for (const [k, v] of Object.entries(o)) {
        r[k] = (k in HEX) ? Buffer.from(v, 'base64').toString('hex') : bytesToIds(v);
    }
    return r;
}

function canonical(o) {
    if (Array.isArray(o)) return o.map(canonical);
    if (o === null || typeof o !== 'object') return o;
    const r = {};
    for (const k of Object.keys(o).sort()) r[k] = canonical(o[k]);
    return r;
}

function check(type, text) {
    const json = JSON.parse(text);
    const msg = type.fromObject(idsToBytes(json));
    const back = type.toObject(type.decode(type.encode(msg).finish()),
                               { longs: String, enums: Number, bytes: String });
    const a = JSON.stringify(canonical(json));
    const b = JSON.stringify(canonical(bytesToIds(back)));
    if (a !== b) throw new Error(`not an exact ${type.name}: ${a} != ${b}`);
    const err = type.verify(type.decode(type.encode(msg).finish()));
    if (err) throw new Error(err);
    return json;
}

function receive(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        const url = new URL(req.url, 'http://x');
        const text = Buffer.concat(chunks).toString('utf8');
        if (url.pathname === '/__otlp/log') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ exports: state.log, hung: state.hung }));
            return;
        }
        if (url.pathname === '/__otlp/reset') {
            state.log = []; state.status = 200; state.hung = 0;
            state.length = false;
            res.end('{}');
            return;
        }
        if (url.pathname === '/__otlp/status') {
            state.status = Number(url.searchParams.get('code'));
            state.length = url.searchParams.get('length') === '1';
            res.end('{}');
            return;
        }
        const e = { path: url.pathname, method: req.method,
                    headers: req.headers, valid: false, error: null,
                    body: null, tls: !!req.socket.encrypted,
                    conn: req.socket.remotePort };
        try {
            e.body = check(url.pathname === '/v1/logs' ? Logs : Traces, text);
            e.valid = true;
        } catch (err) {
            e.error = String(err && err.message || err);
            e.raw = text.slice(0, 4096);
        }
        state.log.push(e);
        const out = state.status < 300 ? '{}' : '{"error":"refused"}';
        const h = { 'content-type': 'application/json' };
        if (state.length) h['content-length'] = Buffer.byteLength(out);
        res.writeHead(state.status, h);
        res.end(out);
    });
}

const listen = (srv) => new Promise((r) => srv.listen(0, '127.0.0.1', () => r(srv.address().port)));

// "localhost" is ::1 as well on a stock Debian (/etc/hosts), and the
// exporter takes a name's first address: the same port on ::1, when the
// machine has IPv6
const also6 = (srv, port) => new Promise((r) => {
    srv.once('error', () => r());
    srv.listen(port, '::1', () => r());
});

(async () => {
    const ports = {};
    const tls = () => https.createServer({
        key: fs.readFileSync(path.join(certDir, 'server.key')),
        cert: fs.readFileSync(path.join(certDir, 'server.crt')),
    }, receive);
    ports.port = await listen(http.createServer(receive));
    await also6(http.createServer(receive), ports.port);
    ports.tls_port = await listen(tls());
    await also6(tls(), ports.tls_port);
    const hang = net.createServer((s) => { state.hung++; s.on('error', () => {}); });
    ports.hang_port = await listen(hang);
    const closed = net.createServer();
    ports.closed_port = await listen(closed);
    await new Promise((r) => closed.close(r));
    process.stdout.write(`OTLP_READY ${JSON.stringify(ports)}\n`);
})();

const ppid = process.ppid;
setInterval(() => { if (process.ppid !== ppid) process.exit(0); }, 500).unref();
setInterval(() => {}, 1 << 30);
