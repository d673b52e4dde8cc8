// Copyright (C) ngx_ai_gateway contributors

// Cloudflare's ai-gateway-provider (npm), pointed at this gateway.
//
// The package posts to the hosted gateway's URL, which it does not let you
// change; but it takes a "binding" instead (in Workers, env.AI.gateway()):
// any object whose run(steps) returns the Universal Endpoint's Response.
// This one posts the steps to the Universal Endpoint of ngx_ai_gateway,
// POST /v1/{account_id}/{gateway_id}:
//
//   import { generateText } from "ai";
//   import { createAiGateway } from "ai-gateway-provider";
//   import { createOpenAI } from "ai-gateway-provider/providers/openai";
//   import { createAnthropic } from "ai-gateway-provider/providers/anthropic";
//   import { ngxAiGateway } from "./ai-gateway-provider.mjs";
//
//   const aigateway = createAiGateway({
//       binding: ngxAiGateway("http://127.0.0.1:8080/v1/ACCOUNT/default"),
//       options: { cacheTtl: 60 },    // cf-aig-* settings, for every step
//   });
//
//   const { text } = await generateText({
//       model: aigateway([            // in order: the first that answers
//           createAnthropic({ apiKey: process.env.ANTHROPIC_API_KEY })
//               ("claude-sonnet-4-6"),
//           createOpenAI({ apiKey: process.env.OPENAI_API_KEY })
//               .chat("gpt-4o-mini"),
//       ]),
//       prompt: "Invent a holiday",
//   });
//
// t/095-ai-gateway-provider-binding.t runs this with generateText and
// streamText, falling back from a failing Anthropic to OpenAI.

export function ngxAiGateway(url, init = {}) {
    return {
        run: (steps, { signal } = {}) => fetch(url, {
            method: "POST",
            headers: { "Content-Type": "application/json",
                       ...(init.headers || {}) },
            body: JSON.stringify(steps),
            signal,
        }),
    };
}
