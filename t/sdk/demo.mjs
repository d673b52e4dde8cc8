// Copyright (C) ngx_ai_gateway contributors

// make demo-try: the OpenAI SDK through the demo gateway, in front of the
// mock provider: an answer, then a streamed one.
//
//   node t/sdk/demo.mjs http://127.0.0.1:8080/v1/ACCOUNT/default

import OpenAI from "openai";

const gw = process.argv[2] || "http://127.0.0.1:8080/v1/ACCOUNT/default";

// the key is the provider's; the demo's mock takes any
const openai = new OpenAI({ baseURL: `${gw}/openai`, apiKey: "demo-key" });

const r = await openai.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "Hello from the OpenAI SDK" }],
});
console.log(`chat.completions.create: ${r.choices[0].message.content}`);

const stream = await openai.chat.completions.create({
    model: "gpt-4o-mini",
    stream: true,
    messages: [{ role: "user", content: "Stream, please" }],
});
let text = "";
for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content || "";
}
console.log(`streamed: ${text}`);

// the Unified API, through the same SDK: Anthropic, translated
const compat = new OpenAI({ baseURL: `${gw}/compat`, apiKey: "demo-key" });
const c = await compat.chat.completions.create({
    model: "anthropic/claude-sonnet-4-6",
    messages: [{ role: "user", content: "Hello, Claude, through /compat" }],
});
console.log(`compat (anthropic): ${c.choices[0].message.content}`);
