// Acceptance 1 (curl half) and 5: the same API driven by curl, including each kind of bad request.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { skip, startServer, wordsOf } from "./server_process.mjs";

const run = promisify(execFile);
try {
  await run("curl", ["--version"]);
} catch {
  skip("curl is not installed");
}

const TOKEN = "curl-token";
let server;
before(async () => { server = await startServer(["--token", TOKEN, "--max-body", "65536"]); });
after(async () => { await server.stop(); });

// Returns { status, body } of one curl call; `body` may be a string or an object (sent as JSON).
async function curl(path, { method = "POST", body, auth = true, stream = false, raw = false } = {}) {
  const args = ["-sS", "-X", method, "-w", "\n%{http_code}", `${server.url}${path}`];
  if (auth) args.push("-H", `Authorization: Bearer ${TOKEN}`);
  if (stream) args.push("-N");
  if (body !== undefined) {
    args.push("-H", "Content-Type: application/json", "--data-binary", raw ? body : JSON.stringify(body));
  }
  const { stdout } = await run("curl", args, { maxBuffer: 16 << 20 });
  const cut = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

const chat = (text, extra = {}) => ({ model: "word-stream-test", messages: [{ role: "user", content: text }], ...extra });

test("chat completion", async () => {
  const r = await curl("/v1/chat/completions", { body: chat("hi curl") });
  assert.equal(r.status, 200);
  const j = JSON.parse(r.body);
  assert.equal(j.choices[0].message.content, wordsOf("<s>User: hi curl\nAssistant:").join(" "));
  assert.equal(j.choices[0].finish_reason, "stop");
  assert.equal(j.usage.total_tokens, 8);
});

test("streamed chat completion is SSE ending in [DONE]", async () => {
  const r = await curl("/v1/chat/completions", { body: chat("hi curl", { stream: true, max_tokens: 2 }), stream: true });
  assert.equal(r.status, 200);
  const events = r.body.split("\n\n").filter((e) => e.length > 0);
  assert.ok(events.every((e) => e.startsWith("data: ")), r.body);
  assert.equal(events.at(-1), "data: [DONE]");
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
  assert.equal(chunks.map((c) => c.choices[0].delta.content ?? "").join(""), "<s>User: hi");
  assert.equal(chunks.at(-1).choices[0].finish_reason, "length");
});

test("completion", async () => {
  const r = await curl("/v1/completions", { body: { model: "word-stream-test", prompt: "a b c", max_tokens: 5 } });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).choices[0].text, "a b c");
});

test("every kind of bad request gets its 4xx and an OpenAI error object", async () => {
  const cases = [
    [{ path: "/v1/models", method: "GET", auth: false }, 401, "invalid_api_key"],
    [{ path: "/v1/chat/completions", body: "{oops", raw: true }, 400, "invalid_json"],
    [{ path: "/v1/chat/completions", body: { messages: [] } }, 400, "missing_required_parameter"],
    [{ path: "/v1/chat/completions", body: { model: "word-stream-test" } }, 400, "missing_required_parameter"],
    [{ path: "/v1/chat/completions", body: chat("x", { model: "nope" }) }, 404, "model_not_found"],
    [{ path: "/v1/chat/completions", body: chat("x", { max_tokens: 10 ** 7 }) }, 400, "invalid_value"],
    [{ path: "/v1/completions", body: { model: "word-stream-test", prompt: [1, 2] } }, 400, "invalid_value"],
    [{ path: "/v1/chat/completions", body: chat("x".repeat(70000)) }, 413, "request_too_large"],
    [{ path: "/v2/whatever", method: "GET" }, 404, "unknown_url"],
  ];
  for (const [req, status, code] of cases) {
    const r = await curl(req.path, req);
    assert.equal(r.status, status, `${JSON.stringify(req).slice(0, 120)} -> ${r.body}`);
    const err = JSON.parse(r.body).error;
    assert.equal(err.code, code);
    assert.equal(typeof err.message, "string");
    assert.ok("type" in err && "param" in err);
  }
  // ... and the server still serves.
  const r = await curl("/v1/chat/completions", { body: chat("still fine") });
  assert.equal(r.status, 200);
  const health = await curl("/health", { method: "GET" });
  assert.equal(JSON.parse(health.body).status, "ok");
});
