// Issue #6 acceptance 3: 32 concurrent greedy clients of a 2-rank tensor-parallel server
// (`clusterctl serve --ranks 2`: mpirun, two clusterctl-worker ranks, the batching scheduler on
// rank 0) all complete, each with exactly the token ids it gets when it is the only request.
// Half stream, half do not; prompts and lengths differ so sequences join and leave mid-batch.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, test } from "node:test";
import { greedyCompletion, sharedModel, startServe } from "./clusterctl_process.mjs";

const MODEL = sharedModel("stories260K.gguf");
const OPENINGS = ["Once upon a time", "Tom had a dog", "The sun was hot", "Lily and Ben went to the park",
                  "A little bird sat", "One day, a girl named Sue"];
const REQUESTS = Array.from({ length: 32 }, (_, i) => ({
  prompt: `${OPENINGS[i % OPENINGS.length]}${i >= OPENINGS.length ? " " + i : ""}`,
  max_tokens: 8 + ((i * 7) % 41),
  stream: i % 2 === 1,
}));

let server;
before(async () => {
  server = await startServe(MODEL, ["--ranks", "2", "--threads", "1", "--parallel", "8", "--max-queue", "64"]);
});
after(async () => { await server?.stop(); });

test("32 concurrent greedy clients under 2 ranks each get their tokens from running alone", async () => {
  const alone = [];
  for (const r of REQUESTS) alone.push(await greedyCompletion(server.url, r));
  for (const [i, a] of alone.entries()) {
    assert.ok(a.ids.length > 0 && a.ids.length <= REQUESTS[i].max_tokens, `request ${i} alone: ${a.ids.length} ids`);
  }
  // Not every request gives the same answer, or the comparison below could not tell requests apart.
  assert.ok(new Set(alone.map((a) => a.ids.join(","))).size > 20, "the 32 requests have different answers");

  const together = await Promise.all(REQUESTS.map((r) => greedyCompletion(server.url, r)));
  for (const [i, t] of together.entries()) {
    assert.deepEqual(t.ids, alone[i].ids, `request ${i} (${JSON.stringify(REQUESTS[i])}) differs when batched`);
    assert.equal(t.text, alone[i].text);
    assert.equal(t.finish, alone[i].finish);
  }

  // The scheduler really ran them side by side: the metrics saw more than one sequence per step.
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const tokens = Number((metrics.match(/^clusterctl_generated_tokens_total\s+(\S+)/m) ?? [])[1]);
  if (!Number.isNaN(tokens)) assert.ok(tokens >= 2 * together.reduce((n, t) => n + t.ids.length, 0));
});

test("stopping the server leaves no rank running", async () => {
  // This server's own processes (mpirun and its ranks), not those of another test's server that
  // ctest -j runs beside this one.
  const descendants = (pid) => {
    let children = [];
    try {
      children = execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).split("\n").filter(Boolean);
    } catch { /* pgrep exits 1 when there are none */ }
    return children.flatMap((c) => [Number(c), ...descendants(c)]);
  };
  const ours = descendants(server.pid);
  assert.ok(ours.length >= 3, `expected mpirun and 2 ranks under clusterctl serve, found ${ours.length}`);
  await server.stop();
  server = undefined;
  await new Promise((r) => setTimeout(r, 1000));
  const left = ours.filter((pid) => {
    try {  // a zombie waiting for its parent to reap it is not running
      return !execFileSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" }).trim().startsWith("Z");
    } catch {
      return false;  // ps exits 1 when the process is gone
    }
  });
  assert.deepEqual(left, [], "mpirun or worker processes left after SIGTERM to clusterctl serve");
});
