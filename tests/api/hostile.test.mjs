// Property: after every hostile request the server still answers a normal one correctly.
// Each hostile body gets a 4xx with an OpenAI error object (or, at a documented bound, a 200),
// and the very next normal request is answered as before, on the test server (the HTTP layer)
// and on a real `clusterctl serve` (the scheduler and sampler behind it; stories260K from ../shared).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { startServer } from "./server_process.mjs";
import { startServe } from "./clusterctl_process.mjs";

const deepArray = "[".repeat(100000) + "]".repeat(100000);
const deepObject = '{"a":'.repeat(100000) + "1" + "}".repeat(100000);

// [name, endpoint, body (string or Buffer) of a model id, expected status, expected error.param]
function hostileRequests(model) {
  const chat = (extra) => JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }).slice(0, -1) + (extra ? "," + extra : "") + "}";
  const completion = (extra) => JSON.stringify({ model, prompt: "hi" }).slice(0, -1) + (extra ? "," + extra : "") + "}";
  const C = "/v1/chat/completions", P = "/v1/completions";
  return [
    ["max_tokens 1e300", C, chat('"max_tokens":1e300'), 400, "max_tokens"],
    ["max_tokens 1e400", C, chat('"max_tokens":1e400'), 400, "max_tokens"],
    ["max_tokens 2^64-1", P, completion('"max_tokens":18446744073709551615'), 400, "max_tokens"],
    ["temperature -1", C, chat('"temperature":-1'), 400, "temperature"],
    ["temperature 1e999", C, chat('"temperature":1e999'), 400, "temperature"],
    ["top_p 2", C, chat('"top_p":2'), 400, "top_p"],
    ["n 0", C, chat('"n":0'), 400, "n"],
    ["stop 5", C, chat('"stop":5'), 400, "stop"],
    ["stream yes", C, chat('"stream":"yes"'), 400, "stream"],
    ["include_usage yes", C, chat('"stream":true,"stream_options":{"include_usage":"yes"}'), 400, "stream_options.include_usage"],
    ["role 5", C, JSON.stringify({ model, messages: [{ role: 5 }] }), 400, "messages[0].role"],
    ["content part text 5", C, JSON.stringify({ model, messages: [{ role: "user", content: [{ type: "text", text: 5 }] }] }), 400, "messages[0].content[0].text"],
    ["tools nested 100000 deep", C, chat('"tools":' + deepArray), 400, null],
    ["metadata nested 100000 deep", C, chat('"metadata":' + deepObject), 400, null],
    ["stop of 10000 strings", C, chat('"stop":' + JSON.stringify(Array(10000).fill("s"))), 400, "stop"],
    ["stop string of 100000 bytes", P, completion('"stop":' + JSON.stringify("x".repeat(100000))), 400, "stop"],
    ["frequency_penalty 1e400", P, completion('"frequency_penalty":1e400'), 400, "frequency_penalty"],
    ["prompt [5]", P, JSON.stringify({ model, prompt: [5] }), 400, "prompt"],
    ["logit_bias of 5000 ids", P, completion('"logit_bias":' + JSON.stringify(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [String(i), 1])))), 400, "logit_bias"],
    ["logit_bias id 2^64", P, completion('"logit_bias":{"18446744073709551616":1}'), 400, "logit_bias.18446744073709551616"],
    ["json_schema of 300 properties", P, completion('"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object","properties":' + JSON.stringify(Object.fromEntries(Array.from({ length: 300 }, (_, i) => ["p" + i, { type: "string" }]))) + "}}}"), 400, "response_format.json_schema.schema.properties"],
    ["json_schema with $ref", C, chat('"response_format":{"type":"json_schema","json_schema":{"schema":{"$ref":"#"}}}'), 400, "response_format.json_schema.schema.$ref"],
    ["model 5", C, JSON.stringify({ model: 5, messages: [] }), 400, "model"],
    ["a JSON array", C, "[]", 400, null],
    ["not JSON", C, "{", 400, null],
    ["empty body", P, "", 400, null],
    ["invalid UTF-8", P, Buffer.concat([Buffer.from(`{"model":"${model}","prompt":"`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), 400, null],
    // At the documented bounds: served.
    ["top_p 0", P, completion('"top_p":0,"temperature":1,"max_tokens":4'), 200, null],
    ["temperature 2 top_p 1", P, completion('"temperature":2,"top_p":1,"max_tokens":4'), 200, null],
    ["temperature 1e-30 top_p 1e-30", P, completion('"temperature":1e-30,"top_p":1e-30,"max_tokens":4'), 200, null],
    ["seed 2^64-1", P, completion('"seed":18446744073709551615,"max_tokens":4'), 200, null],
    ["seed -2^63", P, completion('"seed":-9223372036854775808,"max_tokens":4'), 200, null],
    ["max_tokens 1", C, chat('"max_tokens":1'), 200, null],
    ["json_object, logprobs, penalties at their bounds", P, completion('"max_tokens":4,"logprobs":5,"frequency_penalty":2,"presence_penalty":-2,"top_k":1073741824,"min_p":0.999,"response_format":{"type":"json_object"}'), 200, null],
    ["max_tokens at the limit", P, completion('"max_tokens":4096'), 200, null],
    ["4 stop strings of 1024 bytes", P, completion('"max_tokens":4,"stop":' + JSON.stringify(["a", "b", "c", "d"].map((c) => c.repeat(1024)))), 200, null],
  ];
}

async function post(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body });
  return { status: r.status, text: await r.text() };
}

function checkHostile(name, r, status, param) {
  assert.equal(r.status, status, `${name}: ${r.text.slice(0, 300)}`);
  if (status === 200) return;
  const j = JSON.parse(r.text);
  assert.equal(typeof j.error.message, "string", name);
  assert.ok(j.error.message.length > 0, name);
  assert.equal(j.error.type, "invalid_request_error", name);
  assert.ok("param" in j.error && "code" in j.error, name);
  if (param !== null) assert.equal(j.error.param, param, `${name}: ${r.text.slice(0, 300)}`);
}

async function runProperty(url, model, normal) {
  const expected = await normal(url);
  for (const [name, endpoint, body, status, param] of hostileRequests(model)) {
    checkHostile(name, await post(url + endpoint, body), status, param);
    assert.deepEqual(await normal(url), expected, `after "${name}" the normal request's answer changed`);
  }
  const health = await fetch(url + "/health");
  assert.equal(health.status, 200);
}

describe("the HTTP layer (word-stream test server)", () => {
  let server;
  before(async () => { server = await startServer(["--max-body", "4194304"]); });
  after(async () => { await server.stop(); });
  test("after each hostile request a normal one is answered", async () => {
    await runProperty(server.url, "word-stream-test", async (url) => {
      const r = await post(url + "/v1/chat/completions",
        JSON.stringify({ model: "word-stream-test", messages: [{ role: "user", content: "still here" }] }));
      assert.equal(r.status, 200, r.text);
      return JSON.parse(r.text).choices[0].message.content;
    });
  });
});

const sharedDir = process.env.CLUSTERCTL_SHARED_DIR ?? path.resolve(import.meta.dirname ?? ".", "../../../shared");
const model = path.join(sharedDir, "models", "stories260K.gguf");
const noServe = !process.env.CLUSTERCTL_BIN || !existsSync(model) ? `no clusterctl or no ${model}` : false;
// One rank, and two under mpirun: a request that once aborted a rank must not end the MPI job.
for (const ranks of [1, 2]) {
  describe(`clusterctl serve --ranks ${ranks} (scheduler and sampler)`, { skip: noServe }, () => {
    let serve;
    before(async () => {
      serve = await startServe(model, ["--max-body", "4194304", "--ctx", "256", "--parallel", "2", "--ranks", String(ranks),
        "--threads", "1"]);
    });
    after(async () => { await serve.stop(); });
    test("after each hostile request a normal one is answered with the same greedy tokens", async () => {
      await runProperty(serve.url, "stories260K", async (url) => {
        const r = await post(url + "/v1/completions",
          JSON.stringify({ model: "stories260K", prompt: "Once upon a time", max_tokens: 12, temperature: 0 }));
        assert.equal(r.status, 200, r.text);
        return JSON.parse(r.text).choices[0].text;
      });
    });
  });
}
