// Tool calls through the official clients: the openai SDK's round trip (call -> tool result ->
// answer), streamed and not, and the same with @anthropic-ai/sdk (tool_use / tool_result blocks)
// and the ollama client. The "model" is the test server that streams its prompt back, with a
// scripted chat template (data/scripted_tool_calls.jinja) that makes the prompt a Hermes-style
// tool call while tools are offered and an answer from the tool's result after; the server's
// real parser, writers and HTTP layer do the rest. (Each family's own call format is held by
// tests/unit/chat/tool_calls_test.)
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { skip, startServer } from "./server_process.mjs";

let OpenAI, Anthropic, Ollama;
try {
  ({ default: OpenAI } = await import("openai"));
  ({ default: Anthropic } = await import("@anthropic-ai/sdk"));
  ({ Ollama } = await import("ollama"));
} catch {
  skip("tests/api/node_modules lacks openai, @anthropic-ai/sdk or ollama; run `npm ci --prefix tests/api`");
}

const MODEL = "word-stream-test";
const TOKEN = "tool-test-token";
const TEMPLATE = path.join(import.meta.dirname, "data", "scripted_tool_calls.jinja");
const ARGS = { city: "Paris", days: 2 };
const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city"] },
  },
};

let server, openai, anthropic, ollama;
before(async () => {
  server = await startServer(["--token", TOKEN, "--chat-template", TEMPLATE]);
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.url, apiKey: TOKEN, maxRetries: 0 });
  ollama = new Ollama({ host: server.url, headers: { Authorization: `Bearer ${TOKEN}` } });
});
after(async () => { await server.stop(); });

describe("openai SDK", () => {
  test("round trip: the call, the tool's result, the answer", async () => {
    const messages = [{ role: "user", content: "What is the weather in Paris?" }];
    const first = await openai.chat.completions.create({ model: MODEL, messages, tools: [weatherTool] });
    const choice = first.choices[0];
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.content.trim(), "Let me check.");
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, "function");
    assert.equal(call.function.name, "get_weather");
    assert.deepEqual(JSON.parse(call.function.arguments), ARGS);
    assert.match(call.id, /^call_/);

    messages.push(choice.message);  // the assistant's turn as the SDK returned it, tool_calls included
    messages.push({ role: "tool", tool_call_id: call.id, content: "21C" });
    const second = await openai.chat.completions.create({ model: MODEL, messages, tools: [weatherTool] });
    assert.equal(second.choices[0].finish_reason, "stop");
    assert.equal(second.choices[0].message.content, "The weather tool says 21C for get_weather.");
    assert.equal(second.choices[0].message.tool_calls, undefined);
  });

  test("streamed: content deltas, then the call as tool_calls deltas, finish_reason tool_calls", async () => {
    const stream = openai.chat.completions.stream({
      model: MODEL, messages: [{ role: "user", content: "Weather?" }], tools: [weatherTool],
    });
    let content = "";
    const finishes = [];
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
      assert.ok(!(chunk.choices[0]?.delta?.content ?? "").includes("tool_call"), "no call markup leaks as content");
    }
    const final = await stream.finalChatCompletion();
    assert.deepEqual(finishes, ["tool_calls"]);
    assert.equal(content.trim(), "Let me check.");
    const call = final.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, "get_weather");
    assert.deepEqual(JSON.parse(call.function.arguments), ARGS);

    const answer = await openai.chat.completions.create({
      model: MODEL, stream: true, tools: [weatherTool],
      messages: [{ role: "user", content: "Weather?" }, final.choices[0].message,
                 { role: "tool", tool_call_id: call.id, content: "sunny" }],
    });
    let text = "";
    for await (const chunk of answer) text += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(text, "The weather tool says sunny for get_weather.");
  });

  test("two calls: each is sent as its own delta when it closes; parallel_tool_calls false keeps the first",
       async () => {
    const messages = [{ role: "user", content: "Weather in both cities?" }];
    const stream = await openai.chat.completions.create({ model: MODEL, messages, tools: [weatherTool], stream: true });
    const deltas = [];
    let chunksWithCalls = 0;
    for await (const chunk of stream) {
      const calls = chunk.choices[0]?.delta?.tool_calls ?? [];
      if (calls.length) chunksWithCalls++;
      deltas.push(...calls);
    }
    assert.equal(chunksWithCalls, 2, "each call in the chunk after its </tool_call>");
    assert.deepEqual(deltas.map((d) => d.index), [0, 1]);
    assert.deepEqual(deltas.map((d) => JSON.parse(d.function.arguments).city), ["Paris", "Tokyo"]);
    assert.notEqual(deltas[0].id, deltas[1].id);

    const whole = await openai.chat.completions.create({ model: MODEL, messages, tools: [weatherTool] });
    assert.equal(whole.choices[0].message.tool_calls.length, 2);
    const one = await openai.chat.completions.create({ model: MODEL, messages, tools: [weatherTool],
                                                       parallel_tool_calls: false, stream: true });
    const kept = [];
    for await (const chunk of one) kept.push(...(chunk.choices[0]?.delta?.tool_calls ?? []));
    assert.equal(kept.length, 1);
    assert.equal(JSON.parse(kept[0].function.arguments).city, "Paris");
  });

  test("tool_choice none does not offer the tools; required is refused with the reason", async () => {
    const none = await openai.chat.completions.create({
      model: MODEL, messages: [{ role: "user", content: "plain answer" }], tools: [weatherTool], tool_choice: "none",
    });
    assert.equal(none.choices[0].message.content, "plain answer");
    assert.equal(none.choices[0].finish_reason, "stop");
    await assert.rejects(
      openai.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], tools: [weatherTool],
                                      tool_choice: "required" }),
      (e) => e.status === 400 && e.param === "tool_choice" && /constrained sampling/.test(e.message));
    await assert.rejects(
      openai.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }],
                                      tools: [{ type: "function", function: {} }] }),
      (e) => e.status === 400 && e.param === "tools[0].function.name");
  });
});

describe("@anthropic-ai/sdk", () => {
  const tools = [{ name: "get_weather", description: "Current weather in a city",
                   input_schema: weatherTool.function.parameters }];

  test("round trip: tool_use out, tool_result in, the answer", async () => {
    const messages = [{ role: "user", content: "What is the weather in Paris?" }];
    const first = await anthropic.messages.create({ model: MODEL, max_tokens: 100, tools, messages });
    assert.equal(first.stop_reason, "tool_use");
    assert.equal(first.content[0].type, "text");
    assert.equal(first.content[0].text.trim(), "Let me check.");
    const use = first.content[1];
    assert.equal(use.type, "tool_use");
    assert.equal(use.name, "get_weather");
    assert.deepEqual(use.input, ARGS);
    assert.match(use.id, /^toolu_/);

    messages.push({ role: "assistant", content: first.content });
    messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "21C" }] });
    const second = await anthropic.messages.create({ model: MODEL, max_tokens: 100, tools, messages });
    assert.equal(second.stop_reason, "end_turn");
    assert.deepEqual(second.content, [{ type: "text", text: "The weather tool says 21C for get_weather." }]);
  });

  test("streamed: text block, tool_use block from input_json_delta, stop_reason tool_use", async () => {
    const stream = anthropic.messages.stream({ model: MODEL, max_tokens: 100, tools,
                                               messages: [{ role: "user", content: "Weather?" }] });
    const types = [];
    stream.on("streamEvent", (e) => types.push(e.type));
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, "tool_use");
    assert.equal(final.content[1].type, "tool_use");
    assert.deepEqual(final.content[1].input, ARGS);
    assert.equal(types[0], "message_start");
    assert.equal(types.at(-1), "message_stop");
    assert.equal(types.filter((t) => t === "content_block_start").length, 2);
  });
});

describe("ollama client", () => {
  test("tool_calls in the answer, streamed and not; the tool's result answered", async () => {
    const messages = [{ role: "user", content: "What is the weather in Paris?" }];
    const res = await ollama.chat({ model: MODEL, messages, tools: [weatherTool], stream: false });
    assert.equal(res.done, true);
    assert.deepEqual(res.message.tool_calls, [{ function: { name: "get_weather", arguments: ARGS } }]);

    const calls = [];
    for await (const part of await ollama.chat({ model: MODEL, messages, tools: [weatherTool], stream: true })) {
      if (part.message.tool_calls) calls.push(...part.message.tool_calls);
    }
    assert.deepEqual(calls, [{ function: { name: "get_weather", arguments: ARGS } }]);

    messages.push(res.message, { role: "tool", content: "21C", tool_name: "get_weather" });
    const answer = await ollama.chat({ model: MODEL, messages, tools: [weatherTool], stream: false });
    assert.equal(answer.message.content, "The weather tool says 21C for get_weather.");
  });
});
