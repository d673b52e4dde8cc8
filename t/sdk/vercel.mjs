// Copyright (C) ngx_ai_gateway contributors

// The Vercel AI SDK with Cloudflare's ai-gateway-provider, through the
// gateway's Universal Endpoint, for t/092-ai-gateway-provider.t.  The
// package posts to the hosted gateway's URL; the global fetch sends that
// one request to ours instead (argv[2]: http://127.0.0.1:PORT).
// Prints one JSON object with what each call got.

import { generateText, streamText } from 'ai';
import { createAiGateway } from 'ai-gateway-provider';
import { createAnthropic } from 'ai-gateway-provider/providers/anthropic';
import { createOpenAI } from 'ai-gateway-provider/providers/openai';

const gw = process.argv[2];
const hosted = 'https://gateway.ai.cloudflare.com';
const realFetch = globalThis.fetch;
const posts = [];

globalThis.fetch = async (url, init) => {
    const u = String(url);
    if (!u.startsWith(hosted)) return realFetch(url, init);
    const res = await realFetch(gw + u.slice(hosted.length), init);
    posts.push({ path: u.slice(hosted.length), status: res.status,
                 step: res.headers.get('cf-aig-step'),
                 body: JSON.parse(init.body) });
    return res;
};

const out = {};
const aigateway = createAiGateway({ accountId: 'acct', gateway: 'gw',
                                    apiKey: 'cf-token' });

const models = (ok) => [
    createAnthropic({ apiKey: 'ant-key', headers: { 'x-mock': 'status=529' } })
        ('claude-sonnet-4-5'),
    createOpenAI({ apiKey: 'sk-openai', headers: { 'x-mock': ok } })
        .chat('gpt-4o-mini'),
];

try {
    const r = await generateText({
        model: aigateway(models('fixture=openai-chat/text.json')),
        prompt: 'Invent a holiday', maxRetries: 0 });
    out.generate = { text: r.text, finish: r.finishReason,
                     tokens: r.usage.totalTokens };
} catch (e) {
    out.generate = { error: String(e) };
}

try {
    const s = streamText({
        model: aigateway(models('fixture=openai-chat/stream-text-usage.sse')),
        prompt: 'Count', maxRetries: 0 });
    let text = '';
    for await (const t of s.textStream) text += t;
    out.stream = { text, finish: await s.finishReason };
} catch (e) {
    out.stream = { error: String(e) };
}

out.posts = posts;
console.log(JSON.stringify(out));
