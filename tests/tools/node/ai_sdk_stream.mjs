// The Vercel AI SDK (`ai` + `@ai-sdk/openai`, the responses model) against the gateway.
// Usage: node ai_sdk_stream.mjs <gateway base URL incl. /v1>
// Prints one JSON object: per scenario the text, steps, tool calls/results, finish reason, and
// what the SDK sent (input item types per request), for tests/tools/test_ai_sdk.py to assert on.
import { createOpenAI } from "@ai-sdk/openai";
import { stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const baseURL = process.argv[2];
const sent = [];

// record each request body the SDK sends, then send it unchanged
async function recordingFetch(url, init) {
  if (init && typeof init.body === "string") {
    const body = JSON.parse(init.body);
    sent.push({
      url: String(url),
      stream: body.stream === true,
      input: (body.input || []).map((i) => i.type || `role:${i.role}`),
      references: (body.input || []).filter((i) => i.type === "item_reference").map((i) => i.id),
      tools: (body.tools || []).map((t) => t.name),
    });
  }
  return fetch(url, init);
}

const openai = createOpenAI({ baseURL, apiKey: "sk-test", fetch: recordingFetch });

const ran = [];
const tools = {
  get_weather: tool({
    description: "The weather in a city.",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      ran.push(city);
      return { city, temp: 21 };
    },
  }),
};

async function run(options) {
  const before = sent.length;
  const result = streamText({ tools, stopWhen: stepCountIs(4), ...options });
  const deltas = [];
  for await (const part of result.fullStream) {
    if (part.type === "text-delta") deltas.push(part.text);
    if (part.type === "error") throw part.error;
  }
  const steps = await result.steps;
  const response = await result.response;
  return {
    out: {
      text: await result.text,
      deltas: deltas.length,
      finishReason: await result.finishReason,
      usage: await result.totalUsage,
      steps: steps.map((s) => ({
        finishReason: s.finishReason,
        text: s.text,
        toolCalls: s.toolCalls.map((c) => ({ name: c.toolName, input: c.input, id: c.toolCallId })),
        toolResults: s.toolResults.map((r) => ({ name: r.toolName, output: r.output })),
        responseId: s.providerMetadata?.openai?.responseId ?? null,
        reasoning: s.reasoningText ?? null,
      })),
      requests: sent.slice(before),
    },
    messages: response.messages,
  };
}

const prompt = '[call:get_weather {"city": "Paris"}]';
const loop = await run({ model: openai.responses("qwen3"), prompt });
// the next chat turn: earlier assistant output goes back as item_reference (default store)
const next = await run({
  model: openai.responses("qwen3"),
  messages: [{ role: "user", content: prompt }, ...loop.messages, { role: "user", content: "and tomorrow?" }],
});
// a reasoning model id: step 2 references step 1's reasoning item inside the same tool loop
const reasoning = await run({
  model: openai.responses("gpt-5-mini"),
  prompt: '[reasoning] [call:get_weather {"city": "Lima"}]',
});

console.log(JSON.stringify({ loop: loop.out, next: next.out, reasoning: reasoning.out, ran }));
