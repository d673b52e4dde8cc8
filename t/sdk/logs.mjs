// Copyright (C) ngx_ai_gateway contributors

// Drives the gateway's Logs API with the official "cloudflare" SDK, its
// base URL changed and nothing else, and prints what the SDK understood, as
// one JSON object, for t/113-logs-sdk.t to check.
//
//   node t/sdk/logs.mjs http://127.0.0.1:PORT

import Cloudflare from 'cloudflare';

const base = process.argv[2];
const gw = `${base}/v1/acct/gw`;
const out = {};

const client = new Cloudflare({ apiToken: 'sdk-token',
                                baseURL: `${base}/client/v4`,
                                maxRetries: 0 });
const account_id = 'acct';
const ids = { gateway_id: 'gw', account_id };

async function run(name, fn) {
    try {
        out[name] = await fn();
    } catch (e) {
        out[name] = { error: true, status: e.status ?? null,
                      name: e.constructor.name, message: String(e.message) };
    }
}

async function post(path, body, headers = {}) {
    const r = await fetch(`${gw}/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
    });
    await r.text();
    return r.headers.get('cf-aig-log-id');
}

// none yet (the test's own request made one): a delete of everything

await run('clear', async () => (await client.aiGateway.logs.delete('gw', { account_id })).success);

// six requests: three OpenAI (one failing), two Anthropic, one more OpenAI

const made = [];
made.push(await post('openai/chat/completions', { model: 'gpt-4o', n: 1 }));
made.push(await post('openai/chat/completions', { model: 'gpt-4o', n: 2 },
                     { 'x-mock': 'status=500' }));
made.push(await post('anthropic/v1/messages', { model: 'claude-haiku', n: 3 },
                     { 'x-mock': 'fixture=anthropic/text.json' }));
made.push(await post('openai/chat/completions', { model: 'gpt-4o-mini', n: 4 }));
made.push(await post('anthropic/v1/messages', { model: 'claude-sonnet', n: 5 },
                     { 'x-mock': 'fixture=anthropic/text.json' }));
made.push(await post('openai/chat/completions', { model: 'gpt-4o', n: 6 }));
out.made = made;

await run('list_all', async () => {
    const seen = [];
    for await (const log of client.aiGateway.logs.list('gw', { account_id, per_page: 2 })) {
        seen.push(log.id);
    }
    return seen;
});

await run('first_page', async () => {
    const page = await client.aiGateway.logs.list('gw', { account_id, per_page: 4 });
    return { ids: page.result.map((l) => l.id), info: page.result_info,
             first: page.result[0], more: page.hasNextPage() };
});

await run('second_page', async () => {
    const page = await client.aiGateway.logs.list('gw', { account_id, per_page: 4, page: 2 });
    return page.result.map((l) => l.id);
});

await run('filtered', async () => {
    const page = await client.aiGateway.logs.list('gw', {
        account_id,
        filters: [{ key: 'provider', operator: 'eq', value: ['anthropic'] }],
    });
    return page.result.map((l) => l.provider);
});

await run('two_filters', async () => {
    const page = await client.aiGateway.logs.list('gw', {
        account_id,
        filters: [{ key: 'provider', operator: 'eq', value: ['openai'] },
                  { key: 'success', operator: 'eq', value: [false] }],
    });
    return page.result.map((l) => l.status_code);
});

await run('bad_filter', async () => {
    await client.aiGateway.logs.list('gw', {
        account_id,
        filters: [{ key: 'nope', operator: 'eq', value: ['x'] }],
    });
    return 'no error';
});

await run('ordered', async () => {
    const page = await client.aiGateway.logs.list('gw', {
        account_id, order_by: 'model', order_by_direction: 'asc',
    });
    return page.result.map((l) => l.model);
});

await run('deprecated', async () => {
    const page = await client.aiGateway.logs.list('gw', { account_id, provider: 'anthropic', direction: 'asc' });
    return page.result.map((l) => l.model);
});

await run('get', async () => {
    const log = await client.aiGateway.logs.get(made[0], ids);
    return log;
});

await run('edit', async () => {
    const r = await client.aiGateway.logs.edit(made[0], {
        ...ids, feedback: 1, score: 80, metadata: { user: 'sdk', n: 2 },
    });
    const log = await client.aiGateway.logs.get(made[0], ids);
    return { returned: r ?? null, feedback: log.feedback, score: log.score,
             metadata: log.metadata };
});

await run('feedback_filter', async () => {
    const page = await client.aiGateway.logs.list('gw', {
        account_id, filters: [{ key: 'feedback', operator: 'eq', value: [1] }],
    });
    return page.result.map((l) => l.id);
});

await run('request', async () => client.aiGateway.logs.request(made[3], ids));
await run('response', async () => client.aiGateway.logs.response(made[3], ids));

await run('missing', async () => {
    await client.aiGateway.logs.get('01ARZ3NDEKTSV4RRFFQ69G5FAV', ids);
    return 'no error';
});

await run('delete', async () => {
    const r = await client.aiGateway.logs.delete('gw', {
        account_id,
        filters: [{ key: 'provider', operator: 'eq', value: ['anthropic'] }],
    });
    const page = await client.aiGateway.logs.list('gw', { account_id });
    return { success: r.success, left: page.result_info.total_count };
});

await run('bad_token', async () => {
    const other = new Cloudflare({ apiToken: 'wrong', baseURL: `${base}/client/v4`,
                                   maxRetries: 0 });
    await other.aiGateway.logs.list('gw', { account_id });
    return 'no error';
});

console.log(JSON.stringify(out));
