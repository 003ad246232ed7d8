// The Vercel AI SDK (`@ai-sdk/openai` responses model) reading a reasoning summary from the gateway.
// Usage: node ai_sdk_reasoning.mjs <gateway base URL incl. /v1>
// Prints one JSON object: per mode (stream, generate) the reasoning text the SDK shows, the text,
// the reasoning stream parts it saw, and what it sent as `reasoning`.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const baseURL = process.argv[2];
const sent = [];

async function recordingFetch(url, init) {
  if (init && typeof init.body === "string") sent.push(JSON.parse(init.body).reasoning ?? null);
  return fetch(url, init);
}

const openai = createOpenAI({ baseURL, apiKey: "sk-test", fetch: recordingFetch });
const options = {
  model: openai.responses("gpt-5-mini"),
  prompt: "[reasoning] why",
  providerOptions: { openai: { reasoningSummary: "auto" } },
};

const parts = [];
const streamed = streamText(options);
for await (const part of streamed.fullStream) {
  if (part.type.startsWith("reasoning")) parts.push(part.type === "reasoning-delta" ? part.text : part.type);
  if (part.type === "error") throw part.error;
}
const generated = await generateText(options);

console.log(
  JSON.stringify({
    stream: { reasoning: await streamed.reasoningText, text: await streamed.text, parts },
    generate: { reasoning: generated.reasoningText, text: generated.text },
    sent,
  }),
);
