// Issue #18: speculative decoding inside the continuous batch. Concurrent greedy clients of a
// server that drafts (its model's own Q4_K_M copy on 2 ranks; prompt lookup on 3 ranks) each get
// exactly the tokens a plain server gives them; streams and plain answers mixed, sequences
// joining and leaving mid-batch, so drafts are verified beside other sequences' tokens.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { greedyCompletion, runClusterctl, sharedModel, startServe } from "./clusterctl_process.mjs";

const MODEL = sharedModel("stories260K.gguf");
const OPENINGS = ["Once upon a time", "Tom had a dog. Tom had a dog. Tom", "The sun was hot", "Lily and Ben went",
                  "A little bird sat", "One day, a girl named Sue"];
const REQUESTS = Array.from({ length: 16 }, (_, i) => ({
  prompt: `${OPENINGS[i % OPENINGS.length]}${i >= OPENINGS.length ? " " + i : ""}`,
  max_tokens: 8 + ((i * 7) % 41),
  stream: i % 2 === 1,
}));
const COMMON = ["--threads", "1", "--parallel", "6", "--max-queue", "64"];

let dir;
let plain;
let servers = [];
before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "clusterctl-spec-"));
  const draft = path.join(dir, "stories260K-Q4_K_M.gguf");
  const q = await runClusterctl(["model", "quantize", MODEL, draft, "--type", "Q4_K_M"]);
  assert.equal(q.code, 0, q.stderr);
  plain = await startServe(MODEL, COMMON);
  servers = [
    { name: "2 ranks, draft model", server: await startServe(MODEL, [...COMMON, "--ranks", "2", "--draft", draft, "--draft-min", "2", "--draft-max", "12"]) },
    { name: "3 ranks, ngram", server: await startServe(MODEL, [...COMMON, "--ranks", "3", "--draft", "ngram", "--draft-min", "1", "--draft-max", "12"]) },
  ];
});
after(async () => {
  await plain?.stop();
  for (const s of servers) await s.server.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("concurrent greedy clients of drafting servers get plain decoding's tokens", async () => {
  const alone = [];
  for (const r of REQUESTS) alone.push(await greedyCompletion(plain.url, r));
  assert.ok(new Set(alone.map((a) => a.ids.join(","))).size > 10, "the requests have different answers");
  for (const { name, server } of servers) {
    const together = await Promise.all(REQUESTS.map((r) => greedyCompletion(server.url, r)));
    for (const [i, t] of together.entries()) {
      assert.deepEqual(t.ids, alone[i].ids, `${name}: request ${i} (${JSON.stringify(REQUESTS[i])}) differs`);
      assert.equal(t.text, alone[i].text, `${name}: request ${i}`);
      assert.equal(t.finish, alone[i].finish, `${name}: request ${i}`);
    }
    // It drafted (at least --draft-min a sequence, fewer beyond it while the batch is wide), and
    // the target refused some drafts: the rollback was exercised.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const drafted = Number((metrics.match(/^clusterctl_draft_tokens_total\s+(\S+)/m) ?? [])[1]);
    const kept = Number((metrics.match(/^clusterctl_draft_accepted_total\s+(\S+)/m) ?? [])[1]);
    assert.ok(drafted > 20 && kept > 0 && kept < drafted, `${name}: ${kept} of ${drafted} drafts kept`);
  }
});
