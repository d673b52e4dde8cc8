// Copyright (C) ngx_ai_gateway contributors

// The Vercel AI SDK with Cloudflare's ai-gateway-provider pointed at the
// gateway through examples/ai-gateway-provider.mjs (a binding, no global
// fetch patched), for t/095-ai-gateway-provider-binding.t.
//   node t/sdk/binding.mjs http://127.0.0.1:PORT/v1/acct/gw
// Prints one JSON object with what each call got.

import { generateText, streamText } from 'ai';
import { createAiGateway } from 'ai-gateway-provider';
import { createAnthropic } from 'ai-gateway-provider/providers/anthropic';
import { createOpenAI } from 'ai-gateway-provider/providers/openai';
import { ngxAiGateway } from '../../examples/ai-gateway-provider.mjs';

const url = process.argv[2];
const out = {};
const steps = [];

const binding = ngxAiGateway(url);
const run = binding.run;

binding.run = async (s, o) => {
    const res = await run(s, o);
    steps.push({ status: res.status, step: res.headers.get('cf-aig-step'),
                 providers: s.map((x) => x.provider) });
    return res;
};

const aigateway = createAiGateway({ binding, options: { cacheTtl: 60 } });

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

out.steps = steps;
console.log(JSON.stringify(out));
