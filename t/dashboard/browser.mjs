// Copyright (C) ngx_ai_gateway contributors
//
// Drives the dashboard in headless Chromium for t/171-dashboard-browser.t:
//
//   node t/dashboard/browser.mjs URL TOKEN OUTDIR
//
// Chromium is started with --remote-debugging-pipe and spoken to over the
// DevTools protocol on its pipe (file descriptors 3 and 4, one JSON message
// per NUL): no npm package, no debugging port.  The page is used as a user
// would: the token typed, the form sent, the tabs clicked, a filter applied,
// a log opened, thumbs up given; what the page shows is read back from the
// DOM and printed as one JSON object on stdout, for the test to compare with
// the API.  Screenshots at desktop (1280x800) and phone (390x844) widths go
// to OUTDIR.  Console errors and Content-Security-Policy violations are
// reported too.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, token, outdir] = process.argv.slice(2);
const chromium = process.env.CHROMIUM || 'chromium';

mkdirSync(outdir, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), 'aigw-chromium-'));

const proc = spawn(chromium, [
    '--headless=new', '--remote-debugging-pipe', '--no-sandbox',
    '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--disable-background-networking',
    '--disable-dev-shm-usage', '--hide-scrollbars',
    `--user-data-dir=${profile}`, 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });

let stderr = '';
proc.stderr.on('data', (d) => { stderr += d; });

const toBrowser = proc.stdio[3];
const fromBrowser = proc.stdio[4];

let nextId = 1;
const waiting = new Map();
const events = [];
let buf = Buffer.alloc(0);

fromBrowser.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    let i;
    while ((i = buf.indexOf(0)) >= 0) {
        const msg = JSON.parse(buf.subarray(0, i).toString('utf8'));
        buf = buf.subarray(i + 1);
        if (msg.id && waiting.has(msg.id)) {
            const { resolve, reject } = waiting.get(msg.id);
            waiting.delete(msg.id);
            if (msg.error) {
                reject(new Error(JSON.stringify(msg.error)));
            } else {
                resolve(msg.result);
            }
        } else if (msg.method) {
            events.push(msg);
        }
    }
});

function send(method, params = {}, sessionId) {
    const id = nextId++;
    const msg = { id, method, params };
    if (sessionId) {
        msg.sessionId = sessionId;
    }
    toBrowser.write(JSON.stringify(msg) + '\0');
    return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let session;

async function evaluate(expression) {
    const r = await send('Runtime.evaluate', {
        expression, returnByValue: true, awaitPromise: true,
    }, session);
    if (r.exceptionDetails) {
        throw new Error('page: ' + JSON.stringify(r.exceptionDetails));
    }
    return r.result.value;
}

function step(what) {
    if (process.env.AIGW_BROWSER_TRACE) {
        process.stderr.write(`browser: ${what}\n`);
    }
}

async function until(expression, what, ms = 10000) {
    step(`waiting for ${what}`);
    const end = Date.now() + ms;
    for (;;) {
        const v = await evaluate(expression);
        if (v) {
            return v;
        }
        if (Date.now() > end) {
            const s = await evaluate(
                "document.getElementById('status').textContent");
            throw new Error(`timed out waiting for ${what} (status: ${s})`);
        }
        await sleep(50);
    }
}

async function screenshot(name) {
    const r = await send('Page.captureScreenshot', { format: 'png' },
                         session);
    const file = join(outdir, name);
    writeFileSync(file, Buffer.from(r.data, 'base64'));
    return file;
}

async function viewport(width, height, mobile) {
    await send('Emulation.setDeviceMetricsOverride', {
        width, height, deviceScaleFactor: 1, mobile,
    }, session);
}

async function open(width, height, mobile) {
    await viewport(width, height, mobile);
    const t0 = Date.now();
    await send('Page.navigate', { url }, session);
    await until("document.readyState === 'complete'"
                + " && document.body && document.body.dataset.ready === '1'",
                'the page');
    // the page's own timing: from its request to its load event (the
    // browser's own start-up is not the page's)
    const nav = await evaluate(`(() => {
        const e = performance.getEntriesByType('navigation')[0];
        return e ? e.loadEventEnd - e.startTime : -1;
    })()`);
    return nav >= 0 ? Math.round(nav) : Date.now() - t0;
}

// a text set by the page after an answer: wait for it, cleared first

const statusIs = (prefix) =>
    `document.getElementById('status').textContent.startsWith(${
        JSON.stringify(prefix)})`;

const clearStatus = "document.getElementById('status').textContent = ''";

async function run() {
    const out = { screenshots: [] };

    const { targetInfos } = await send('Target.getTargets');
    const page = targetInfos.find((t) => t.type === 'page');
    ({ sessionId: session } = await send('Target.attachToTarget', {
        targetId: page.targetId, flatten: true,
    }));

    await send('Page.enable', {}, session);
    await send('Runtime.enable', {}, session);
    await send('Log.enable', {}, session);

    // desktop: the analytics, with the token typed

    out.load_ms = await open(1280, 800, false);

    const t0 = Date.now();
    await evaluate(`(() => {
        document.getElementById('token').value = ${JSON.stringify(token)};
        ${clearStatus};
        document.getElementById('conn').requestSubmit();
    })()`);
    await until(statusIs('Analytics loaded'), 'the analytics');
    out.analytics_ms = Date.now() - t0;

    out.cards = await evaluate(`(() => {
        const c = {};
        for (const k of ['requests', 'tokens', 'cost', 'errors', 'cached']) {
            c[k] = document.getElementById('k-' + k).textContent;
        }
        return c;
    })()`);

    out.breakdown = await evaluate(`Array.from(
        document.querySelectorAll('#breakdown tbody tr'),
        (tr) => Array.from(tr.cells, (td) => td.textContent))`);

    out.bars = await evaluate(
        "document.querySelectorAll('#c-requests svg rect').length");
    out.images = await evaluate("document.querySelectorAll('img').length");
    out.token_in_storage = await evaluate(
        "sessionStorage.getItem('aigw.token')");

    out.screenshots.push(await screenshot('desktop-analytics.png'));

    // the logs: a page, then filtered

    await evaluate(`(() => { ${clearStatus};
        document.getElementById('tab-logs').click(); })()`);
    await until(statusIs('Logs loaded'), 'the logs');

    out.logs_page = await evaluate(
        "document.getElementById('page-info').textContent");
    out.logs_rows = await evaluate(
        "document.querySelectorAll('#logs tbody tr').length");

    await evaluate(`(() => { ${clearStatus};
        document.getElementById('f-provider').value = 'anthropic';
        document.getElementById('filters').requestSubmit(); })()`);
    await until(statusIs('Logs loaded'), 'the filtered logs');

    out.filtered_page = await evaluate(
        "document.getElementById('page-info').textContent");
    out.filtered_providers = await evaluate(`Array.from(
        document.querySelectorAll('#logs tbody td.provider'),
        (td) => td.textContent)`);

    out.screenshots.push(await screenshot('desktop-logs.png'));

    // one log: its details, its payloads, thumbs up

    await evaluate(
        "document.querySelector('#logs tbody tr[data-id]').click()");
    await until(`document.querySelectorAll('#d-fields dt').length > 0
                 && document.getElementById('d-request').textContent
                    !== 'Loading...'
                 && document.getElementById('d-response').textContent
                    !== 'Loading...'`, 'the log');

    out.detail_id = await evaluate(
        "document.getElementById('d-id').textContent");
    out.detail_request = await evaluate(
        "document.getElementById('d-request').textContent");
    out.detail_response = await evaluate(
        "document.getElementById('d-response').textContent");

    await evaluate(`(() => { ${clearStatus};
        document.getElementById('fb-up').click(); })()`);
    await until(statusIs('Feedback saved'), 'the feedback');

    out.feedback_text = await evaluate(
        "document.getElementById('d-feedback').textContent");
    out.feedback_cell = await evaluate(
        "document.querySelector('#logs tr.sel td.feedback').textContent");

    out.screenshots.push(await screenshot('desktop-detail.png'));

    // a phone: the same page, the token still in the tab's storage

    out.phone_load_ms = await open(390, 844, true);
    await until(statusIs('Analytics loaded'), 'the analytics on a phone');

    out.phone_width = await evaluate(
        'document.documentElement.scrollWidth');
    out.phone_cards_columns = await evaluate(
        "getComputedStyle(document.querySelector('.cards'))"
        + ".gridTemplateColumns.split(' ').length");
    out.screenshots.push(await screenshot('phone-analytics.png'));

    await evaluate(`(() => { ${clearStatus};
        document.getElementById('tab-logs').click(); })()`);
    await until(statusIs('Logs loaded'), 'the logs on a phone');
    out.screenshots.push(await screenshot('phone-logs.png'));

    // what the console said: errors, CSP violations

    out.console_errors = events
        .filter((e) => (e.method === 'Log.entryAdded'
                        && e.params.entry.level === 'error')
                       || (e.method === 'Runtime.exceptionThrown'))
        .map((e) => e.params.entry
                    ? `${e.params.entry.text} ${e.params.entry.url || ''}`
                    : JSON.stringify(e.params));

    return out;
}

let code = 0;

try {
    const out = await Promise.race([
        run(),
        sleep(60000).then(() => { throw new Error('timed out'); }),
    ]);
    process.stdout.write(JSON.stringify(out) + '\n');
} catch (e) {
    process.stderr.write(`browser: ${e.message}\n${stderr.slice(-2000)}\n`);
    code = 1;
} finally {
    const exited = new Promise((r) => proc.once('exit', r));
    send('Browser.close').catch(() => {});
    await Promise.race([exited, sleep(3000)]);
    if (proc.exitCode === null) {
        proc.kill('SIGKILL');
        await Promise.race([exited, sleep(2000)]);
    }
    try {
        rmSync(profile, { recursive: true, force: true });
    } catch (e) {
        // Chromium's leftovers in the temporary directory
    }
}

process.exit(code);
