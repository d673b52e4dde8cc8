// Copyright (C) ngx_ai_gateway contributors

// Drives the gateway with the real OpenAI and Anthropic SDKs and prints
// what they understood, as one JSON object, for t/070-sdk.t to check.
//
//   node t/sdk/clients.mjs http://127.0.0.1:PORT/v1/acct/gw

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const gw = process.argv[2];
const out = {};

const openai = new OpenAI({ apiKey: 'prov-key', baseURL: `${gw}/compat`,
                            maxRetries: 0 });
const mock = (m) => ({ headers: { 'x-mock': m } });

async function run(name, fn) {
    try {
        out[name] = await fn();
    } catch (e) {
        out[name] = { error: true, status: e.status ?? null,
                      message: String(e.message), type: e.type ?? null };
    }
}

await run('anthropic_text', async () => {
    const r = await openai.chat.completions.create({
        model: 'anthropic/claude-sonnet-4-5',
        messages: [{ role: 'user', content: 'Hello' }],
    }, mock('fixture=anthropic/text.json'));
    return { content: r.choices[0].message.content,
             finish: r.choices[0].finish_reason, usage: r.usage,
             object: r.object };
});

await run('anthropic_stream_tools', async () => {
    const s = await openai.chat.completions.create({
        model: 'anthropic/claude-sonnet-4-5',
        messages: [{ role: 'user', content: 'Weather in Paris?' }],
        tools: [{ type: 'function', function: { name: 'get_weather',
                  parameters: { type: 'object', properties:
                                { location: { type: 'string' } } } } }],
        stream: true, stream_options: { include_usage: true },
    }, mock('fixture=anthropic/stream-tool-use.sse;interval=2'));

    let text = '', finish = null, usage = null, role = null;
    const calls = [];
    for await (const c of s) {
        if (c.usage) usage = c.usage;
        for (const ch of c.choices) {
            if (ch.delta.role) role = ch.delta.role;
            if (ch.delta.content) text += ch.delta.content;
            for (const t of ch.delta.tool_calls ?? []) {
                calls[t.index] ??= { id: '', name: '', arguments: '' };
                if (t.id) calls[t.index].id = t.id;
                if (t.function?.name) calls[t.index].name = t.function.name;
                if (t.function?.arguments) {
                    calls[t.index].arguments += t.function.arguments;
                }
            }
            if (ch.finish_reason) finish = ch.finish_reason;
        }
    }
    return { role, text, finish, usage,
             calls: calls.map((c) => ({ ...c,
                                        args: JSON.parse(c.arguments) })) };
});

await run('gemini_stream', async () => {
    const s = await openai.chat.completions.create({
        model: 'google/gemini-2.5-flash',
        messages: [{ role: 'user', content: 'Hi' }], stream: true,
    }, mock('fixture=google-gemini/stream-text.sse;interval=2'));
    let text = '', finish = null;
    for await (const c of s) {
        for (const ch of c.choices) {
            text += ch.delta.content ?? '';
            if (ch.finish_reason) finish = ch.finish_reason;
        }
    }
    return { text, finish };
});

await run('openai_stream', async () => {
    const s = await openai.chat.completions.create({
        model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'x' }],
        stream: true,
    }, mock('fixture=openai-chat/stream-tool-call-usage.sse;interval=2'));
    let n = 0, name = '';
    for await (const c of s) {
        n++;
        for (const ch of c.choices) {
            name += ch.delta.tool_calls?.[0]?.function?.name ?? '';
        }
    }
    return { chunks: n, name };
});

await run('anthropic_error', async () => {
    await openai.chat.completions.create({
        model: 'anthropic/claude-sonnet-4-5',
        messages: [{ role: 'user', content: 'x' }],
    }, mock('status=400;fixture=anthropic/error-400-invalid-request.json'));
    return { error: false };
});

await run('gateway_error', async () => {
    await openai.chat.completions.create({
        model: 'nope/x', messages: [{ role: 'user', content: 'x' }] });
    return { error: false };
});

await run('gemini_embeddings', async () => {
    const r = await openai.embeddings.create({
        model: 'google/text-embedding-004', input: ['a', 'b'],
    }, mock('fixture=google-gemini/batch-embed.json'));
    return { vectors: r.data.map((d) => Array.from(d.embedding)),
             model: r.model };
});

await run('anthropic_native', async () => {
    const a = new Anthropic({ apiKey: 'ant-key', baseURL: `${gw}/anthropic`,
                              maxRetries: 0 });
    const m = await a.messages.create({
        model: 'claude-test-model', max_tokens: 64,
        messages: [{ role: 'user', content: 'Hello' }],
    }, mock('fixture=anthropic/text.json'));
    return { text: m.content[0].text, stop: m.stop_reason };
});

// a tool-call round trip with thinking on: the SDK user appends the
// returned message to the history, thinking_blocks included
await run('anthropic_thinking_round_trip', async () => {
    const tools = [{ type: 'function', function: { name: 'get_weather',
                     parameters: { type: 'object', properties:
                                   { location: { type: 'string' } } } } }];
    const messages = [{ role: 'user', content: 'Weather in Paris?' }];
    const r = await openai.chat.completions.create({
        model: 'anthropic/claude-sonnet-4-5', messages, tools,
        reasoning_effort: 'low',
    }, mock('fixture=anthropic/thinking-tool-use.json'));
    const m = r.choices[0].message;
    messages.push(m);
    messages.push({ role: 'tool', tool_call_id: m.tool_calls[0].id,
                    content: '18C, sunny' });
    const r2 = await openai.chat.completions.create({
        model: 'anthropic/claude-sonnet-4-5', messages, tools,
        reasoning_effort: 'low',
    }, { headers: { 'x-mock': 'fixture=anthropic/text.json',
                    'x-test': 'round-trip' } });
    return { blocks: m.thinking_blocks, reasoning: m.reasoning_content,
             finish: r.choices[0].finish_reason,
             second: r2.choices[0].message.content };
});

// Vertex AI with a service-account key as the API key
await run('vertex', async () => {
    const fs = await import('node:fs');
    const key = fs.readFileSync(`${process.env.TEST_NGINX_CERT_DIR}/sa.key`,
                                'utf8');
    const sa = { type: 'service_account', project_id: 'sdk-proj',
                 private_key_id: 'k1', private_key: key,
                 client_email: 'sdk@sdk-proj.iam.gserviceaccount.com',
                 token_uri: 'https://oauth2.googleapis.com/token',
                 region: 'us-central1' };
    const v = new OpenAI({ baseURL: `${gw}/compat`, maxRetries: 0,
                           apiKey: Buffer.from(JSON.stringify(sa))
                                         .toString('base64') });
    const r = await v.chat.completions.create({
        model: 'google-vertex-ai/google/gemini-2.5-flash',
        messages: [{ role: 'user', content: 'Hi' }],
    }, mock('fixture=google-gemini/text.json'));
    const s = await v.chat.completions.create({
        model: 'google-vertex-ai/google/gemini-2.5-flash',
        messages: [{ role: 'user', content: 'Hi' }], stream: true,
    }, mock('fixture=google-gemini/stream-text.sse;interval=2'));
    let text = '';
    for await (const c of s) {
        for (const ch of c.choices) text += ch.delta.content ?? '';
    }
    return { content: r.choices[0].message.content, stream: text };
});

process.stdout.write(JSON.stringify(out) + '\n');
