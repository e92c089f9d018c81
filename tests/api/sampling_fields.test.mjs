// Issue #20: every sampling field of the OpenAI API works or is refused with 400, shown on a real
// `clusterctl serve` of stories260K (../shared): logprobs/top_logprobs, frequency/presence/repetition
// penalties, logit_bias, top_k, min_p, seed, n, and response_format (json_object, json_schema; its
// answers validate for 50 seeded sampled requests on stories260K and on a synthetic model); and
// GET /v1/models/{id}, POST /tokenize and POST /detokenize.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { runClusterctl, sharedModel, startServe } from "./clusterctl_process.mjs";
import { validate } from "./json_schema_subset.mjs";

const MODEL = sharedModel("stories260K.gguf");
let serve;
before(async () => {
  serve = await startServe(MODEL, ["--ctx", "512", "--parallel", "4", "--threads", "1"]);
});
after(async () => { await serve?.stop(); });

async function post(url, endpoint, body) {
  const r = await fetch(url + endpoint, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: JSON.parse(text), text };
}
async function complete(body, url = serve.url, model = "stories260K") {
  const r = await post(url, "/v1/completions", { model, prompt: "Once upon a time", max_tokens: 24, ...body });
  assert.equal(r.status, 200, r.text);
  return r.json.choices[0];
}
async function chat(body) {
  const r = await post(serve.url, "/v1/chat/completions",
    { model: "stories260K", messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 12, ...body });
  assert.equal(r.status, 200, r.text);
  return r.json.choices[0];
}
// The events of a streamed answer, [DONE] excluded.
async function streamed(endpoint, body) {
  const r = await fetch(serve.url + endpoint, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...body, stream: true }) });
  assert.equal(r.status, 200);
  const text = await r.text();
  assert.ok(text.trimEnd().endsWith("data: [DONE]"));
  return text.split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6)));
}
async function refused(endpoint, body, param) {
  const base = endpoint === "/v1/chat/completions"
    ? { model: "stories260K", messages: [{ role: "user", content: "hi" }] }
    : { model: "stories260K", prompt: "hi" };
  const r = await post(serve.url, endpoint, { ...base, max_tokens: 2, ...body });
  assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
  assert.equal(r.json.error.type, "invalid_request_error");
  assert.equal(r.json.error.param, param, r.text);
  return r.json.error.message;
}
// How many generated tokens repeat an earlier one.
const repeats = (ids) => ids.length - new Set(ids).size;

describe("logprobs", () => {
  test("completions: logprobs N gives tokens, token_logprobs, N top_logprobs and text_offset; streamed alike", async () => {
    const c = await complete({ temperature: 0, logprobs: 3, max_tokens: 10 });
    const lp = c.logprobs;
    assert.equal(lp.tokens.length, 10);
    assert.equal(lp.token_logprobs.length, 10);
    assert.equal(lp.text_offset[0], 0);
    for (const [i, top] of lp.top_logprobs.entries()) {
      const entries = Object.entries(top);
      assert.equal(entries.length, 3);
      assert.ok(lp.token_logprobs[i] <= 0);
      // Greedy: the chosen token is the most likely one.
      assert.equal(Math.max(...entries.map(([, v]) => v)), lp.token_logprobs[i]);
      if (i > 0) assert.equal(lp.text_offset[i], lp.text_offset[i - 1] + Buffer.byteLength(lp.tokens[i - 1]));
    }
    const events = await streamed("/v1/completions",
      { model: "stories260K", prompt: "Once upon a time", max_tokens: 10, temperature: 0, logprobs: 3 });
    const tokens = events.flatMap((e) => e.choices[0]?.logprobs?.tokens ?? []);
    const offsets = events.flatMap((e) => e.choices[0]?.logprobs?.text_offset ?? []);
    assert.deepEqual(tokens, lp.tokens);
    assert.deepEqual(offsets, lp.text_offset);
    // Without logprobs the field is null.
    assert.equal((await complete({ temperature: 0, max_tokens: 2 })).logprobs, null);
  });

  test("chat: logprobs true with top_logprobs gives content entries with token, logprob, bytes, top_logprobs", async () => {
    const c = await chat({ temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = c.logprobs.content;
    assert.equal(content.length, 12);
    for (const e of content) {
      assert.equal(typeof e.token, "string");
      assert.deepEqual(e.bytes, [...Buffer.from(e.token)]);
      assert.equal(e.top_logprobs.length, 2);
      assert.equal(e.top_logprobs[0].logprob, e.logprob);
      assert.ok(e.top_logprobs[1].logprob <= e.logprob);
    }
    assert.equal(content.map((e) => e.token).join("").trimStart(), c.message.content);
    const events = await streamed("/v1/chat/completions", { model: "stories260K",
      messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 12, temperature: 0, logprobs: true,
      top_logprobs: 2 });
    assert.deepEqual(events.flatMap((e) => e.choices[0]?.logprobs?.content ?? []), content);
    // The model's log-probabilities do not depend on the temperature that picks among them.
    const hot = await chat({ temperature: 1.5, seed: 3, logprobs: true, max_tokens: 1 });
    assert.equal(hot.logprobs.content[0].top_logprobs.length, 0);
    const first = content[0];
    if (hot.logprobs.content[0].token === first.token) assert.equal(hot.logprobs.content[0].logprob, first.logprob);
  });

  test("out of range or without logprobs: 400", async () => {
    await refused("/v1/chat/completions", { logprobs: true, top_logprobs: 21 }, "top_logprobs");
    await refused("/v1/chat/completions", { top_logprobs: 2 }, "top_logprobs");
    await refused("/v1/chat/completions", { logprobs: 2 }, "logprobs");
    await refused("/v1/completions", { logprobs: 6 }, "logprobs");
    await refused("/v1/completions", { logprobs: true }, "logprobs");
  });
});

describe("penalties", () => {
  test("frequency_penalty and presence_penalty count generated tokens: fewer repeats, and negative ones more", async () => {
    const plain = await complete({ temperature: 0, max_tokens: 48, return_token_ids: true });
    const freq = await complete({ temperature: 0, max_tokens: 48, return_token_ids: true, frequency_penalty: 2 });
    const pres = await complete({ temperature: 0, max_tokens: 48, return_token_ids: true, presence_penalty: 2 });
    const more = await complete({ temperature: 0, max_tokens: 48, return_token_ids: true, frequency_penalty: -2 });
    assert.ok(repeats(plain.token_ids) > 0, "the plain answer repeats tokens");
    assert.ok(repeats(freq.token_ids) < repeats(plain.token_ids), `${freq.text} | ${plain.text}`);
    assert.ok(repeats(pres.token_ids) < repeats(plain.token_ids), `${pres.text} | ${plain.text}`);
    assert.ok(repeats(more.token_ids) > repeats(plain.token_ids), `${more.text} | ${plain.text}`);
    // The prompt does not count: a penalty changes nothing before the first generated token repeats.
    const one = await complete({ temperature: 0, max_tokens: 1, return_token_ids: true, presence_penalty: 2 });
    assert.deepEqual(one.token_ids, plain.token_ids.slice(0, 1));
  });

  test("repetition_penalty (llama.cpp's) changes a greedy answer toward fewer repeats", async () => {
    const plain = await complete({ temperature: 0, max_tokens: 48, return_token_ids: true });
    const pen = await complete({ temperature: 0, max_tokens: 48, return_token_ids: true, repetition_penalty: 1.5 });
    assert.ok(repeats(pen.token_ids) < repeats(plain.token_ids), `${pen.text} | ${plain.text}`);
  });

  test("out of range: 400", async () => {
    await refused("/v1/completions", { frequency_penalty: 2.5 }, "frequency_penalty");
    await refused("/v1/chat/completions", { presence_penalty: -3 }, "presence_penalty");
    await refused("/v1/completions", { repetition_penalty: 0 }, "repetition_penalty");
    await refused("/v1/completions", { frequency_penalty: "1" }, "frequency_penalty");
  });
});

describe("logit_bias, top_k, min_p, seed, n", () => {
  test("logit_bias: -100 bans a token, +100 forces it; ids are range-checked", async () => {
    const plain = await complete({ temperature: 0, max_tokens: 16, return_token_ids: true });
    const banned = plain.token_ids[0];
    const without = await complete({ temperature: 0, max_tokens: 16, return_token_ids: true,
      logit_bias: { [banned]: -100 } });
    assert.ok(!without.token_ids.includes(banned), `${banned} in ${without.token_ids}`);
    const forced = await complete({ temperature: 1, seed: 1, max_tokens: 4, return_token_ids: true,
      logit_bias: { 300: 100 } });
    assert.deepEqual(forced.token_ids, [300, 300, 300, 300]);
    await refused("/v1/completions", { logit_bias: { 512: 1 } }, "logit_bias.512");
    await refused("/v1/completions", { logit_bias: { "-1": 1 } }, "logit_bias.-1");
    await refused("/v1/completions", { logit_bias: { abc: 1 } }, "logit_bias.abc");
    await refused("/v1/completions", { logit_bias: { 5: 101 } }, "logit_bias.5");
    await refused("/v1/completions", { logit_bias: [5] }, "logit_bias");
  });

  test("top_k 1 and min_p near 1 are greedy at any temperature; seeds repeat answers", async () => {
    const greedy = (await complete({ temperature: 0 })).text;
    for (const seed of [1, 2, 3]) {
      assert.equal((await complete({ temperature: 2, seed, top_k: 1 })).text, greedy, `top_k 1, seed ${seed}`);
      assert.equal((await complete({ temperature: 2, seed, min_p: 0.99 })).text, greedy, `min_p 0.99, seed ${seed}`);
    }
    const a = await complete({ temperature: 1, seed: 42 });
    const b = await complete({ temperature: 1, seed: 42 });
    assert.equal(a.text, b.text);
    const others = await Promise.all([43, 44, 45].map((seed) => complete({ temperature: 1, seed })));
    assert.ok(others.some((o) => o.text !== a.text), "different seeds give different answers");
    // top_k widens again: top_k 2 at temperature 2 leaves the greedy path for some seed.
    const wide = await Promise.all([1, 2, 3, 4].map((seed) => complete({ temperature: 2, seed, top_k: 2 })));
    assert.ok(wide.some((w) => w.text !== greedy));
    await refused("/v1/completions", { top_k: -1 }, "top_k");
    await refused("/v1/completions", { top_k: 1.5 }, "top_k");
    await refused("/v1/completions", { min_p: 1 }, "min_p");
    await refused("/v1/chat/completions", { min_p: -0.1 }, "min_p");
  });

  test("n, best_of above 1, echo and suffix are refused with what to do instead", async () => {
    assert.match(await refused("/v1/chat/completions", { n: 2 }, "n"), /one choice per request/);
    await refused("/v1/completions", { best_of: 2 }, "best_of");
    await refused("/v1/completions", { echo: true }, "echo");
    await refused("/v1/completions", { suffix: "x" }, "suffix");
    assert.equal((await complete({ n: 1, max_tokens: 2 })).index, 0);
  });
});

// Schemas whose answers are bounded (maxLength, maxItems, enums, no additional keys).
const SCHEMAS = [
  { type: "object", additionalProperties: false, required: ["name", "age", "tags"],
    properties: { name: { type: "string", maxLength: 12 }, age: { type: "integer" },
      tags: { type: "array", items: { enum: ["cat", "dog"] }, maxItems: 3 } } },
  { type: "array", minItems: 1, maxItems: 4, items: { anyOf: [{ type: "integer" }, { type: "boolean" }, { type: "null" }] } },
  { type: "object", additionalProperties: false, required: ["ok", "label", "inner"],
    properties: { ok: { type: "boolean" }, score: { type: "number" }, label: { enum: ["a", "b", 3, null] },
      note: { type: ["string", "null"], maxLength: 8 },
      inner: { type: "object", properties: { x: { const: 1 } }, required: ["x"], additionalProperties: false } } },
];

async function fiftySeeded(url, model) {
  const jobs = Array.from({ length: 50 }, (_, i) => ({ i, schema: SCHEMAS[i % SCHEMAS.length] }));
  const out = [];
  for (let k = 0; k < jobs.length; k += 4) {
    out.push(...await Promise.all(jobs.slice(k, k + 4).map(async ({ i, schema }) => {
      const c = await complete({ temperature: 1, seed: 1000 + i, max_tokens: 400,
        response_format: { type: "json_schema", json_schema: { name: "s", schema, strict: true } } }, url, model);
      return { i, schema, c };
    })));
  }
  for (const { i, schema, c } of out) {
    assert.equal(c.finish_reason, "stop", `request ${i}: ${c.text}`);
    let value;
    assert.doesNotThrow(() => { value = JSON.parse(c.text); }, `request ${i}: ${c.text}`);
    assert.deepEqual(validate(value, schema), [], `request ${i}: ${c.text}`);
  }
  return out;
}

describe("response_format", () => {
  test("json_schema: 50 seeded sampled answers of stories260K parse and validate", async () => {
    const out = await fiftySeeded(serve.url, "stories260K");
    assert.ok(new Set(out.map((o) => o.c.text)).size > 40, "the answers differ");
  });

  test("json_schema: 50 seeded sampled answers of a synthetic model parse and validate", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "clusterctl-schema-"));
    const file = path.join(dir, "tiny.gguf");
    const made = await runClusterctl(["model", "synth", "--shape", "tiny", "--type", "Q8_0", "--seed", "7", file]);
    assert.equal(made.code, 0, made.stderr);
    const synth = await startServe(file, ["--ctx", "512", "--parallel", "4", "--threads", "1"]);
    try {
      await fiftySeeded(synth.url, "tiny");
    } finally {
      await synth.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("greedy under a schema that allows the unconstrained answer gives that answer", async () => {
    // stories260K answers "Mom said:" with a quoted sentence: its tokens up to the closing quote are a
    // JSON string, which {"type": "string"} allows; constrained, the answer ends right there.
    const free = await complete({ prompt: "Mom said:", temperature: 0, max_tokens: 40, logprobs: 0 });
    let text = "", n = 0;
    for (const [i, t] of free.logprobs.tokens.entries()) {
      text = (text + t).replace(/^ /, "");
      try { if (typeof JSON.parse(text) === "string") { n = i + 1; break; } } catch { /* not yet whole */ }
    }
    assert.ok(n > 3, `the greedy answer starts with a quoted sentence: ${free.text}`);
    assert.ok(free.text.startsWith(text));
    const constrained = await complete({ prompt: "Mom said:", temperature: 0, max_tokens: 40,
      response_format: { type: "json_schema", json_schema: { name: "s", schema: { type: "string" } } } });
    assert.equal(constrained.text, text);
    assert.equal(constrained.finish_reason, "stop");
    // Sampled, every draw the schema allows is kept: the same seed gives the same start.
    const sampledFree = await complete({ prompt: "Mom said:", temperature: 0.3, seed: 5, max_tokens: 4 });
    const sampledConstrained = await complete({ prompt: "Mom said:", temperature: 0.3, seed: 5, max_tokens: 4,
      response_format: { type: "json_schema", json_schema: { name: "s", schema: { type: "string" } } } });
    if (sampledFree.text.startsWith('"') && !sampledFree.text.slice(1).includes('"'))
      assert.equal(sampledConstrained.text, sampledFree.text);
  });

  test("json_object: greedy and streamed answers are JSON objects", async () => {
    const c = await complete({ temperature: 0, max_tokens: 60, response_format: { type: "json_object" } });
    assert.ok(c.text.startsWith("{"), c.text);
    const events = await streamed("/v1/chat/completions", { model: "stories260K", max_tokens: 200, temperature: 0.7,
      seed: 11, messages: [{ role: "user", content: "hi" }],
      response_format: { type: "json_object", schema: { type: "object", properties: { a: { enum: [1, 2] } },
        required: ["a"], additionalProperties: false } } });
    const text = events.map((e) => e.choices[0]?.delta?.content ?? "").join("");
    assert.deepEqual(Object.keys(JSON.parse(text)), ["a"]);
  });

  test("unsupported keywords, bad shapes and oversized schemas: 400 naming them", async () => {
    const js = (schema) => ({ response_format: { type: "json_schema", json_schema: { name: "s", schema } } });
    const msg = await refused("/v1/completions", js({ type: "string", pattern: "^a" }),
      "response_format.json_schema.schema.pattern");
    assert.match(msg, /'pattern' is not supported/);
    await refused("/v1/completions", js({ type: "object", properties: { a: { $ref: "#/x" } } }),
      "response_format.json_schema.schema.properties.a.$ref");
    await refused("/v1/completions", js({ type: "text" }), "response_format.json_schema.schema.type");
    await refused("/v1/completions", js({ type: "string", minLength: 3, maxLength: 2 }),
      "response_format.json_schema.schema");
    let deep = { type: "string" };
    for (let i = 0; i < 20; ++i) deep = { type: "array", items: deep };
    await refused("/v1/completions", js(deep), "response_format.json_schema.schema" + ".items".repeat(17));
    await refused("/v1/completions", { response_format: { type: "xml" } }, "response_format.type");
    await refused("/v1/completions", { response_format: "json" }, "response_format");
    await refused("/v1/completions", { response_format: { type: "json_schema" } }, "response_format.json_schema");
  });
});

describe("GET /v1/models/{id}, POST /tokenize, POST /detokenize", () => {
  test("the served model's entry, and 404 in OpenAI's shape for any other id", async () => {
    for (const id of ["stories260K", "%73tories260K"]) {
      const r = await fetch(`${serve.url}/v1/models/${id}`);
      assert.equal(r.status, 200);
      const j = await r.json();
      assert.equal(j.id, "stories260K");
      assert.equal(j.object, "model");
    }
    const r = await fetch(`${serve.url}/v1/models/gpt-4o`);
    assert.equal(r.status, 404);
    const j = await r.json();
    assert.equal(j.error.code, "model_not_found");
    assert.equal(j.error.type, "invalid_request_error");
  });

  test("tokenize and detokenize round-trip, with BOS and pieces on request", async () => {
    const content = "Once upon a time, Lily saw a big dog.";
    const plain = await post(serve.url, "/tokenize", { content });
    assert.equal(plain.status, 200, plain.text);
    assert.ok(plain.json.tokens.length > 5 && plain.json.tokens.every(Number.isInteger));
    const bos = await post(serve.url, "/tokenize", { content, add_special: true });
    assert.deepEqual(bos.json.tokens.slice(1), plain.json.tokens);
    const pieces = await post(serve.url, "/tokenize", { content, with_pieces: true });
    assert.deepEqual(pieces.json.tokens.map((t) => t.id), plain.json.tokens);
    assert.equal(pieces.json.tokens.map((t) => t.piece).join("").trimStart(), content);
    const back = await post(serve.url, "/detokenize", { tokens: plain.json.tokens });
    assert.equal(back.status, 200, back.text);
    assert.equal(back.json.content, content);
    // The ids /tokenize gives are the ones logit_bias takes: banning one keeps it out of an answer.
    const free = await complete({ prompt: "Lily saw a big", temperature: 0, max_tokens: 24, return_token_ids: true });
    // SentencePiece puts a space before the text: "was" is the one token " was".
    const was = (await post(serve.url, "/tokenize", { content: "was", with_pieces: true })).json.tokens;
    assert.deepEqual(was.map((t) => t.piece), [" was"]);
    const banned = was[0];
    assert.ok(free.token_ids.includes(banned.id), free.text);
    const ans = await complete({ prompt: "Lily saw a big", temperature: 0, max_tokens: 24, return_token_ids: true,
      logit_bias: { [banned.id]: -100 } });
    assert.ok(!ans.token_ids.includes(banned.id), ans.text);
  });

  test("bad or oversized requests: 400 naming the field; other methods: 405", async () => {
    const bad = async (endpoint, body, param) => {
      const r = await post(serve.url, endpoint, body);
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.param, param, r.text);
    };
    await bad("/tokenize", {}, "content");
    await bad("/tokenize", { content: 5 }, "content");
    await bad("/tokenize", { content: "x", add_special: "yes" }, "add_special");
    await bad("/detokenize", { tokens: [1, 512] }, "tokens[1]");
    await bad("/detokenize", { tokens: ["a"] }, "tokens[0]");
    await bad("/detokenize", { tokens: new Array(131073).fill(1) }, "tokens");
    assert.equal((await fetch(`${serve.url}/tokenize`)).status, 405);
  });
});

describe("two ranks", () => {
  // The sampler runs on rank 0 after the logits are gathered: every field gives one rank's answer.
  let two;
  before(async () => {
    two = await startServe(MODEL, ["--ctx", "512", "--parallel", "4", "--threads", "1", "--ranks", "2"]);
  });
  after(async () => { await two?.stop(); });

  test("logprobs, penalties, logit_bias, top_k/min_p and json_schema answers equal one rank's", async () => {
    const requests = [
      { temperature: 0, logprobs: 5, max_tokens: 16 },
      { temperature: 0, frequency_penalty: 1.5, presence_penalty: 0.5, repetition_penalty: 1.2, max_tokens: 32 },
      { temperature: 1, seed: 9, top_k: 20, min_p: 0.05, logit_bias: { 300: 3, 301: -100 }, max_tokens: 32 },
      { temperature: 1, seed: 21, max_tokens: 400,
        response_format: { type: "json_schema", json_schema: { name: "s", schema: SCHEMAS[2] } } },
    ];
    for (const body of requests) {
      const one = await complete({ ...body, return_token_ids: true });
      const many = await complete({ ...body, return_token_ids: true }, two.url);
      assert.deepEqual(many, one, JSON.stringify(body));
    }
  });
});

describe("the Ollama and Anthropic dialects", () => {
  test("Ollama options top_k/min_p/penalties and format (json, a schema) work on /api/generate", async () => {
    const generate = async (body) => {
      const r = await post(serve.url, "/api/generate", { model: "stories260K", prompt: "Once upon a time", raw: true,
        stream: false, ...body });
      assert.equal(r.status, 200, r.text);
      return r.json.response;
    };
    const greedy = await generate({ options: { temperature: 0, num_predict: 16 } });
    assert.equal(await generate({ options: { temperature: 2, seed: 4, top_k: 1, num_predict: 16 } }), greedy);
    assert.equal(await generate({ options: { temperature: 2, seed: 4, min_p: 0.99, num_predict: 16 } }), greedy);
    const long = await generate({ options: { temperature: 0, num_predict: 48 } });
    assert.notEqual(await generate({ options: { temperature: 0, num_predict: 48, frequency_penalty: 2 } }), long);
    assert.notEqual(await generate({ options: { temperature: 0, num_predict: 48, repeat_penalty: 1.5 } }), long);
    for (const seed of [1, 2, 3]) {
      const text = await generate({ format: SCHEMAS[0], options: { temperature: 1, seed, num_predict: 400 } });
      assert.deepEqual(validate(JSON.parse(text), SCHEMAS[0]), [], text);
    }
    const obj = await generate({ format: "json", options: { temperature: 0, num_predict: 8 } });
    assert.ok(obj.startsWith("{"), obj);
    const r = await post(serve.url, "/api/generate", { model: "stories260K", prompt: "x", format: { pattern: "a" } });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error, /'pattern' is not supported/);
  });

  test("Anthropic top_k 1 is greedy at any temperature", async () => {
    const message = async (body) => {
      const r = await post(serve.url, "/v1/messages", { model: "stories260K", max_tokens: 12,
        messages: [{ role: "user", content: "Tell me a story" }], ...body });
      assert.equal(r.status, 200, r.text);
      return r.json.content[0].text;
    };
    const greedy = await message({ temperature: 0 });
    assert.equal(await message({ temperature: 1, top_k: 1 }), greedy);
  });
});
