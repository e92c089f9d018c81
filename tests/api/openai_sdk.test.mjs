// Acceptance 1: the official OpenAI Node.js SDK against the server: chat and completion,
// streamed and not; content, usage and finish reasons; errors as the SDK's typed errors.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { skip, startServer, wordsOf } from "./server_process.mjs";

let OpenAI;
try {
  ({ default: OpenAI } = await import("openai"));
} catch {
  skip("tests/api/node_modules has no 'openai' package; run `npm ci --prefix tests/api`");
}

const MODEL = "word-stream-test";
const TOKEN = "api-test-token";
// The test service has no chat template, so the server uses its documented fallback.
const chatPrompt = (text) => `<s>User: ${text}\nAssistant:`;

let server;
let client;
before(async () => {
  server = await startServer(["--token", TOKEN, "--max-tokens-limit", "1000"]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
});
after(async () => { await server.stop(); });

describe("chat completions", () => {
  test("whole answer: content, usage, finish_reason stop", async () => {
    const res = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Hello from the SDK" }],
      temperature: 0,
      seed: 1,
    });
    const words = wordsOf(chatPrompt("Hello from the SDK"));
    assert.equal(res.object, "chat.completion");
    assert.equal(res.model, MODEL);
    assert.equal(res.choices.length, 1);
    assert.equal(res.choices[0].message.role, "assistant");
    assert.equal(res.choices[0].message.content, words.join(" "));
    assert.equal(res.choices[0].finish_reason, "stop");
    assert.deepEqual(res.usage, { prompt_tokens: words.length, completion_tokens: words.length,
                                  total_tokens: 2 * words.length, prompt_tokens_details: { cached_tokens: 0 } });
  });

  test("max_tokens ends with finish_reason length", async () => {
    const res = await client.chat.completions.create({
      model: MODEL, messages: [{ role: "user", content: "one two three four" }], max_tokens: 3,
    });
    assert.equal(res.choices[0].message.content, wordsOf(chatPrompt("one two three four")).slice(0, 3).join(" "));
    assert.equal(res.choices[0].finish_reason, "length");
    assert.equal(res.usage.completion_tokens, 3);
  });

  test("streamed: deltas add up, one finish_reason, usage in the last chunk", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "stream me" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = "";
    let role = null;
    const finishes = [];
    let usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "chat.completion.chunk");
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        if (choice.delta.role) role = choice.delta.role;
        content += choice.delta.content ?? "";
        if (choice.finish_reason) finishes.push(choice.finish_reason);
      }
    }
    const words = wordsOf("<s>Be brief.\n\nUser: stream me\nAssistant:");
    assert.equal(role, "assistant");
    assert.equal(content, words.join(" "));
    assert.deepEqual(finishes, ["stop"]);
    assert.equal(usage.completion_tokens, words.length);
    assert.equal(usage.total_tokens, 2 * words.length);
  });

  test("aborting a stream cancels it and the server keeps serving", async () => {
    const controller = new AbortController();
    const long = Array(400).fill("w").join(" ");
    const stream = await client.chat.completions.create(
      { model: MODEL, messages: [{ role: "user", content: long }], stream: true },
      { signal: controller.signal });
    let chunks = 0;
    try {
      for await (const _ of stream) { if (++chunks === 3) controller.abort(); }
    } catch (e) {
      if (e.name !== "APIUserAbortError" && e.name !== "AbortError") throw e;
    }
    assert.ok(chunks < 100, `the stream went on after the abort (${chunks} chunks)`);
    // The server notices the hang-up and counts the request as closed by the client (499).
    const deadline = Date.now() + 5000;
    let metrics = "";
    while (Date.now() < deadline) {
      metrics = await (await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).text();
      if (metrics.includes('code="499"')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(metrics, /clusterctl_http_requests_total\{endpoint="\/v1\/chat\/completions",code="499"\} 1/);
    const res = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "still here" }] });
    assert.equal(res.choices[0].finish_reason, "stop");
  });
});

describe("completions", () => {
  test("whole answer with a stop string", async () => {
    const res = await client.completions.create({ model: MODEL, prompt: "one two three four", stop: ["three"], max_tokens: 10 });
    assert.equal(res.object, "text_completion");
    assert.equal(res.choices[0].text, "one two ");
    assert.equal(res.choices[0].finish_reason, "stop");
    assert.equal(res.usage.prompt_tokens, 4);
  });

  test("streamed with max_tokens", async () => {
    const stream = await client.completions.create({ model: MODEL, prompt: "alpha beta gamma delta", max_tokens: 2,
                                                     stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.text;
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    assert.equal(text, "alpha beta");
    assert.equal(finish, "length");
    assert.deepEqual(usage, { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6,
                              prompt_tokens_details: { cached_tokens: 0 } });
  });
});

describe("errors the SDK sees", () => {
  test("models.list names the served model", async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, [MODEL]);
  });

  test("wrong key: AuthenticationError 401", async () => {
    const bad = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  });

  test("unknown model: NotFoundError 404 with code model_not_found", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }),
      (e) => e instanceof OpenAI.NotFoundError && e.code === "model_not_found" && e.param === "model");
  });

  test("max_tokens over the limit: BadRequestError 400 naming the parameter", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], max_tokens: 100000 }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === "max_tokens" && /1000/.test(e.message));
  });
});
