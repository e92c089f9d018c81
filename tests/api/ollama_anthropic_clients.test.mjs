// Issue #20 acceptance 2: the official `ollama` and `@anthropic-ai/sdk` clients against a 2-rank
// `clusterctl serve` (mpirun, two clusterctl-worker ranks, stories260K), streamed and not. Greedy
// answers through either dialect equal the OpenAI endpoint's for the same conversation (one
// scheduler, one chat template); options and fields are used or refused in the dialect's shape.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { sharedModel, startServe } from "./clusterctl_process.mjs";
import { skip } from "./server_process.mjs";

let Anthropic, Ollama;
try {
  ({ default: Anthropic } = await import("@anthropic-ai/sdk"));
  ({ Ollama } = await import("ollama"));
} catch {
  skip("tests/api/node_modules lacks @anthropic-ai/sdk or ollama; run `npm ci --prefix tests/api`");
}

const MODEL_FILE = sharedModel("stories260K.gguf");
const MODEL = "stories260K";
const TOKEN = "dialects-token";
const dir = mkdtempSync(path.join(tmpdir(), "clusterctl-dialects-"));
const tokenFile = path.join(dir, "token");
writeFileSync(tokenFile, TOKEN + "\n");

let server, ollama, anthropic;
before(async () => {
  server = await startServe(MODEL_FILE, ["--ranks", "2", "--threads", "1", "--parallel", "4", "--token-file", tokenFile]);
  ollama = new Ollama({ host: server.url, headers: { Authorization: `Bearer ${TOKEN}` } });
  anthropic = new Anthropic({ baseURL: server.url, apiKey: TOKEN, maxRetries: 0 });  // sends x-api-key
});
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// The OpenAI endpoint's greedy answer for the same conversation: the reference.
async function openaiChat(messages, max_tokens) {
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ model: MODEL, messages, max_tokens, temperature: 0 }),
  });
  assert.equal(res.status, 200);
  return (await res.json()).choices[0];
}

const conversation = [{ role: "system", content: "A story." }, { role: "user", content: "Once upon a time" }];

describe("ollama client", () => {
  test("list, ps, show, version", async () => {
    const list = await ollama.list();
    assert.equal(list.models.length, 1);
    assert.equal(list.models[0].name, MODEL);
    assert.equal(list.models[0].details.format, "gguf");
    assert.equal(list.models[0].details.family, "llama");
    assert.equal((await ollama.ps()).models[0].name, MODEL);
    const show = await ollama.show({ model: MODEL });
    assert.deepEqual(show.capabilities, ["completion"]);
    assert.equal(show.model_info["general.architecture"], "llama");
    assert.match((await ollama.version()).version, /^\d+\.\d+\.\d+$/);
  });

  test("chat, whole and streamed, equals the OpenAI endpoint's greedy answer", async () => {
    const reference = await openaiChat(conversation, 24);
    const options = { temperature: 0, num_predict: 24 };
    const whole = await ollama.chat({ model: MODEL, messages: conversation, options, stream: false });
    assert.equal(whole.message.role, "assistant");
    assert.equal(whole.message.content, reference.message.content);
    assert.equal(whole.done, true);
    assert.equal(whole.done_reason, reference.finish_reason === "length" ? "length" : "stop");
    assert.ok(whole.eval_count > 0 && whole.prompt_eval_count > 0 && whole.total_duration > 0);

    let streamed = "";
    let last;
    for await (const part of await ollama.chat({ model: `${MODEL}:latest`, messages: conversation, options, stream: true })) {
      streamed += part.message.content;
      last = part;
    }
    assert.equal(streamed, reference.message.content);
    assert.equal(last.done, true);
    assert.equal(last.eval_count, whole.eval_count);
  });

  test("options reach the sampler: top_k 1 at temperature 1 is the greedy answer", async () => {
    const reference = await openaiChat(conversation, 24);
    const res = await ollama.chat({ model: MODEL, messages: conversation, stream: false,
                                    options: { temperature: 1, top_k: 1, seed: 5, num_predict: 24 } });
    assert.equal(res.message.content, reference.message.content);
    const msg = await anthropic.messages.create({ model: MODEL, max_tokens: 24, temperature: 1, top_k: 1,
                                                  system: "A story.", messages: [conversation[1]] });
    assert.equal(msg.content[0].text, reference.message.content);
  });

  test("generate, whole and streamed; raw skips the template; stop ends early", async () => {
    const options = { temperature: 0, num_predict: 16, seed: 7 };
    const whole = await ollama.generate({ model: MODEL, prompt: "Once upon a time", options, stream: false });
    assert.equal(whole.response, (await openaiChat([{ role: "user", content: "Once upon a time" }], 16)).message.content);
    let streamed = "";
    for await (const part of await ollama.generate({ model: MODEL, prompt: "Once upon a time", options, stream: true })) {
      streamed += part.response;
    }
    assert.equal(streamed, whole.response);

    const raw = await ollama.generate({ model: MODEL, prompt: "Once upon a time", raw: true, options, stream: false });
    const completion = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ model: MODEL, prompt: "Once upon a time", max_tokens: 16, temperature: 0 }),
    });
    assert.equal(raw.response, (await completion.json()).choices[0].text);

    const word = raw.response.trim().split(/\s+/)[1];
    const stopped = await ollama.generate({ model: MODEL, prompt: "Once upon a time", raw: true, stream: false,
                                            options: { ...options, stop: [word] } });
    assert.ok(raw.response.startsWith(stopped.response) && !stopped.response.includes(word), stopped.response);
  });

  test("an unsupported option, another model and a bad field are refused in Ollama's shape", async () => {
    await assert.rejects(
      ollama.chat({ model: MODEL, messages: conversation, options: { mirostat: 2 }, stream: false }),
      (e) => e.name === "ResponseError" && e.status_code === 400 && /option 'mirostat' is not supported/.test(e.error));
    await assert.rejects(ollama.chat({ model: "llama3:8b", messages: conversation, stream: false }),
                         (e) => e.status_code === 404 && /not found/.test(e.error));
    await assert.rejects(ollama.generate({ model: MODEL, prompt: "x", format: "xml", stream: false }),
                         (e) => e.status_code === 400 && /'format'/.test(e.error));
    const res = await fetch(`${server.url}/api/chat`, { method: "POST", body: "{}" });  // no token
    assert.equal(res.status, 401);
    assert.match((await res.json()).error, /API key/);
  });
});

describe("@anthropic-ai/sdk", () => {
  const messages = [{ role: "user", content: "Once upon a time" }];

  test("messages.create: system prompt, content, usage, end_turn or max_tokens", async () => {
    const reference = await openaiChat(conversation, 20);
    const msg = await anthropic.messages.create({ model: MODEL, max_tokens: 20, temperature: 0, system: "A story.", messages });
    assert.equal(msg.type, "message");
    assert.equal(msg.role, "assistant");
    assert.deepEqual(msg.content, [{ type: "text", text: reference.message.content }]);
    assert.equal(msg.stop_reason, reference.finish_reason === "length" ? "max_tokens" : "end_turn");
    assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);

    // The system prompt as text blocks is the same prompt.
    const blocks = await anthropic.messages.create({ model: MODEL, max_tokens: 20, temperature: 0, messages,
                                                     system: [{ type: "text", text: "A story." }] });
    assert.deepEqual(blocks.content, msg.content);
  });

  test("messages.stream: the events add up to the whole answer; stop_sequences", async () => {
    const whole = await anthropic.messages.create({ model: MODEL, max_tokens: 24, temperature: 0, messages });
    const stream = anthropic.messages.stream({ model: MODEL, max_tokens: 24, temperature: 0, messages });
    const types = new Set();
    let text = "";
    stream.on("streamEvent", (e) => types.add(e.type));
    stream.on("text", (delta) => { text += delta; });
    const final = await stream.finalMessage();
    assert.equal(text, whole.content[0].text);
    assert.deepEqual(final.content, whole.content);
    assert.equal(final.stop_reason, whole.stop_reason);
    assert.equal(final.usage.output_tokens, whole.usage.output_tokens);
    for (const t of ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]) {
      assert.ok(types.has(t), `event ${t}`);
    }

    const word = whole.content[0].text.trim().split(/\s+/)[1];
    const stopped = await anthropic.messages.create({ model: MODEL, max_tokens: 24, temperature: 0, messages,
                                                      stop_sequences: [word] });
    assert.equal(stopped.stop_reason, "stop_sequence");
    assert.equal(stopped.stop_sequence, word);
    assert.ok(!stopped.content[0].text.includes(word));
  });

  test("errors in Anthropic's shape: missing max_tokens, another model, a wrong key, tools without a template",
       async () => {
    await assert.rejects(anthropic.messages.create({ model: MODEL, messages }),
                         (e) => e.status === 400 && e.error?.error?.type === "invalid_request_error" &&
                                /max_tokens/.test(e.message));
    await assert.rejects(anthropic.messages.create({ model: "claude-x", max_tokens: 5, messages }),
                         (e) => e.status === 404 && e.error?.error?.type === "not_found_error");
    const wrong = new Anthropic({ baseURL: server.url, apiKey: "nope", maxRetries: 0 });
    await assert.rejects(wrong.messages.create({ model: MODEL, max_tokens: 5, messages }),
                         (e) => e.status === 401 && e.error?.error?.type === "authentication_error");
    await assert.rejects(
      anthropic.messages.create({ model: MODEL, max_tokens: 5, messages,
                                  tools: [{ name: "f", input_schema: { type: "object" } }] }),
      (e) => e.status === 400 && /no chat template/.test(e.message));
    await assert.rejects(anthropic.messages.create({ model: MODEL, max_tokens: 5, messages, top_k: -1 }),
                         (e) => e.status === 400 && /top_k/.test(e.message));
  });
});
