// Issue #20's prompt cache against real `clusterctl serve` processes (stories260K; 1 rank and 2
// ranks, 2 KV slots each): a request sharing a prefix with an earlier one reuses its KV cache
// (usage.prompt_tokens_details.cached_tokens, /metrics) and answers exactly the tokens a whole
// prefill gives (greedy and seeded sampling, chat turns, concurrent clients, a draft model); the
// least recently used slot is evicted; a request cancelled mid-prefill leaves nothing wrong
// behind; cache_prompt false computes everything; a cache_prompt of another type is a 400.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { runClusterctl, sharedModel, startServe } from "./clusterctl_process.mjs";

const MODEL = sharedModel("stories260K.gguf");
const COMMON = ["--threads", "1", "--parallel", "2", "--max-queue", "64", "--batch", "32"];
const PREFIX = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with " +
  "her friends. One day, she saw a big red ball under a tree. She ran to the ball and picked it up. Her mom said, " +
  "\"Lily, that ball is not yours. We must find who it belongs to.\" Lily was sad but she knew her mom was right. ";
const QUESTIONS = ["Then Lily", "The next day, a boy", "Lily's mom smiled and", "Suddenly, a dog", "At night,"];

let dir;
let servers = [];
before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "clusterctl-cache-"));
  const draft = path.join(dir, "stories260K-Q4_K_M.gguf");
  const q = await runClusterctl(["model", "quantize", MODEL, draft, "--type", "Q4_K_M"]);
  assert.equal(q.code, 0, q.stderr);
  // One at a time, so after() stops those that started when a later one fails.
  servers.push({ name: "1 rank", server: await startServe(MODEL, COMMON) });
  servers.push({ name: "2 ranks", server: await startServe(MODEL, [...COMMON, "--ranks", "2"]) });
  servers.push({ name: "2 ranks, draft model",
                 server: await startServe(MODEL, [...COMMON, "--ranks", "2", "--draft", draft]) });
});
after(async () => {
  for (const s of servers) await s.server.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function post(url, route, body, signal) {
  return fetch(`${url}${route}`, { method: "POST", headers: { "Content-Type": "application/json" },
                                   body: JSON.stringify(body), signal });
}

// A completion (streamed or not); resolves to { ids, text, usage }.
async function complete(url, body) {
  const res = await post(url, "/v1/completions", { model: "stories260K", return_token_ids: true, ...body,
    ...(body.stream ? { stream_options: { include_usage: true } } : {}) });
  assert.equal(res.status, 200, await res.clone().text());
  if (!body.stream) {
    const j = await res.json();
    return { ids: j.choices[0].token_ids, text: j.choices[0].text, usage: j.usage };
  }
  const out = { ids: [], text: "", usage: null };
  for (const line of (await res.text()).split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
    const chunk = JSON.parse(line.slice(6));
    if (chunk.usage) out.usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    out.ids.push(...(choice.token_ids ?? []));
    out.text += choice.text ?? "";
  }
  return out;
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number((text.match(new RegExp(`^${name}\\s+(\\S+)`, "m")) ?? [])[1]);
}

async function tokenCount(url, text) {
  const res = await post(url, "/tokenize", { content: text, add_special: true });
  return (await res.json()).tokens.length;
}

const cached = (r) => r.usage.prompt_tokens_details.cached_tokens;

test("a shared prefix is reused on every rank and the answer is a whole prefill's, token for token", async () => {
  const prefixTokens = await tokenCount(servers[0].server.url, PREFIX);
  assert.ok(prefixTokens > 60, `the prefix has ${prefixTokens} tokens`);
  const answers = [];
  for (const { name, server } of servers) {
    const got = [];
    const reused0 = await metric(server.url, "clusterctl_prompt_cache_tokens_total");
    await complete(server.url, { prompt: PREFIX + "Once", max_tokens: 4, temperature: 0 });  // fills a slot
    for (const [i, q] of QUESTIONS.entries()) {
      // A drafting server's sampled tokens depend on how many drafts each step took (timing): greedy only.
      const samplings = [{ temperature: 0 }, ...(name.includes("draft") ? [] : [{ temperature: 0.9, seed: 40 + i }])];
      for (const sampling of samplings) {
        const body = { prompt: PREFIX + q, max_tokens: 20, stream: i % 2 === 1, ...sampling };
        const withCache = await complete(server.url, body);
        const without = await complete(server.url, { ...body, cache_prompt: false });
        const what = `${name}: ${JSON.stringify(body)}`;
        assert.ok(cached(withCache) >= prefixTokens - 2 && cached(withCache) < withCache.usage.prompt_tokens,
                  `${what}: ${cached(withCache)} of ${withCache.usage.prompt_tokens} prompt tokens reused`);
        assert.equal(cached(without), 0, what);
        assert.deepEqual(withCache.ids, without.ids, `${what}: the tokens differ with the cache`);
        assert.equal(withCache.text, without.text, what);
        got.push(withCache.ids);
      }
    }
    const reused = (await metric(server.url, "clusterctl_prompt_cache_tokens_total")) - reused0;
    assert.ok(reused >= got.length * (prefixTokens - 2), `${name}: /metrics counts ${reused} reused tokens`);
    assert.ok((await metric(server.url, "clusterctl_prompt_cache_hits_total")) >= got.length, name);
    answers.push(got);
  }
  assert.deepEqual(answers[1], answers[0], "2 ranks answer as 1 rank");
  assert.deepEqual(answers[2], answers[0].filter((_, i) => i % 2 === 0), "a drafting server answers greedy as 1 rank");
});

test("a chat's next turn reuses the earlier turns", async () => {
  for (const { name, server } of servers) {
    const messages = [{ role: "system", content: PREFIX }, { role: "user", content: "Tell me more." }];
    const chat = async (extra) => {
      const res = await post(server.url, "/v1/chat/completions",
                             { model: "stories260K", messages, max_tokens: 12, temperature: 0, ...extra });
      assert.equal(res.status, 200, await res.clone().text());
      return res.json();
    };
    const first = await chat({});
    messages.push(first.choices[0].message, { role: "user", content: "And then?" });
    const second = await chat({});
    const fresh = await chat({ cache_prompt: false });
    assert.ok(second.usage.prompt_tokens_details.cached_tokens > first.usage.prompt_tokens - 4,
              `${name}: turn 2 reused ${second.usage.prompt_tokens_details.cached_tokens} tokens`);
    assert.equal(second.choices[0].message.content, fresh.choices[0].message.content, name);
  }
});

test("concurrent clients sharing a prefix each get their own answer", async () => {
  const bodies = QUESTIONS.flatMap((q, i) => [
    { prompt: PREFIX + q, max_tokens: 16 + i, temperature: 0, stream: i % 2 === 0 },
    { prompt: PREFIX + q + " and", max_tokens: 10, temperature: 0.8, seed: i }]);
  const alone = [];
  for (const b of bodies) alone.push(await complete(servers[0].server.url, { ...b, cache_prompt: false }));
  for (const { name, server } of servers) {
    const together = await Promise.all(bodies.map((b) => complete(server.url, b)));
    for (const [i, t] of together.entries()) {
      if (name.includes("draft") && bodies[i].temperature > 0) continue;  // see above
      assert.deepEqual(t.ids, alone[i].ids, `${name}: request ${i}`);
    }
    assert.ok(together.some((t) => cached(t) > 0), `${name}: some concurrent request reused a prefix`);
  }
});

test("the least recently used slot is evicted", async () => {
  const stories = ["Tom had a big blue car. He liked to drive it fast around the town every day and night. ",
                   "A small bird sat on a branch. It sang a happy song to the sun and the green trees. ",
                   "Sue baked a cake for her dad. She put red cherries and white cream on the top of it. "];
  for (const { name, server } of servers) {
    for (const s of stories) await complete(server.url, { prompt: s + "x", max_tokens: 2, temperature: 0 });
    // Two slots: the third story took the first one's slot; the second and third are still there.
    const third = await complete(server.url, { prompt: stories[2] + "y", max_tokens: 2, temperature: 0 });
    const second = await complete(server.url, { prompt: stories[1] + "y", max_tokens: 2, temperature: 0 });
    const first = await complete(server.url, { prompt: stories[0] + "y", max_tokens: 2, temperature: 0 });
    assert.ok(cached(third) > 15 && cached(second) > 15, `${name}: ${cached(third)}, ${cached(second)}`);
    assert.ok(cached(first) <= 2, `${name}: the evicted story reused ${cached(first)} tokens`);
  }
});

test("a request cancelled during its prefill leaves only a valid prefix behind", async () => {
  const long = PREFIX.repeat(3) + "The end.";
  for (const { name, server } of servers) {
    const expected = await complete(server.url, { prompt: long, max_tokens: 12, temperature: 0, cache_prompt: false });
    for (const delay of [0, 2, 10, 40]) {
      // A different opening each round, so only what the cancelled request computed could be reused.
      const prompt = `${delay} ${long}`;
      const whole = await complete(server.url, { prompt, max_tokens: 12, temperature: 0, cache_prompt: false });
      const abort = new AbortController();
      const pending = post(server.url, "/v1/completions",
                           { model: "stories260K", prompt: `${delay} ${long}`, max_tokens: 200, stream: true },
                           abort.signal).then((r) => r.text()).catch(() => null);
      await new Promise((r) => setTimeout(r, delay));
      abort.abort();
      await pending;
      const again = await complete(server.url, { prompt, max_tokens: 12, temperature: 0 });
      assert.deepEqual(again.ids, whole.ids, `${name}: after a cancel at ${delay} ms`);
    }
    const last = await complete(server.url, { prompt: long, max_tokens: 12, temperature: 0 });
    assert.deepEqual(last.ids, expected.ids, name);
  }
});

test("cache_prompt of another type is a 400 naming it; Anthropic's usage counts cache reads", async () => {
  const { url } = servers[0].server;
  const bad = await post(url, "/v1/completions", { model: "stories260K", prompt: "x", cache_prompt: "yes" });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.param, "cache_prompt");
  const ask = async () => (await post(url, "/v1/messages", { model: "stories260K", max_tokens: 4,
    system: PREFIX, messages: [{ role: "user", content: "Hello" }] })).json();
  await ask();
  const u = (await ask()).usage;
  assert.ok(u.cache_read_input_tokens > 60 && u.input_tokens >= 1, JSON.stringify(u));
  assert.equal(u.cache_creation_input_tokens, 0);
});
