// Issue #20, the cluster at a glance: headless Chromium opens /dashboard of a 2-rank
// `clusterctl serve`, after a few requests sees both nodes drawn with their link, each with a
// share of the model, its memory and non-zero compute and communication ms per token, and the
// charts with points; /metrics carries the same figures per rank. Saves a screenshot.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromiumOrSkip, launchHeadless } from "./chromium.mjs";
import { sharedModel, startServe } from "./clusterctl_process.mjs";

const chromium = chromiumOrSkip();
const MODEL = sharedModel("stories260K.gguf");
const screenshotDir = process.env.CLUSTERCTL_SCREENSHOT_DIR ?? path.resolve("screenshots");

let server;
let browser;
let page;
before(async () => {
  server = await startServe(MODEL, ["--ranks", "2"]);
  browser = await launchHeadless(chromium);
  page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 820 });
  page.pageErrors = [];
  page.on("pageerror", (e) => page.pageErrors.push(e.message));
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function complete(prompt) {
  const res = await fetch(server.url + "/v1/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "stories260K", prompt, max_tokens: 48, temperature: 0 }),
  });
  const body = await res.text();
  assert.equal(res.status, 200, body);
  return JSON.parse(body);
}

test("the dashboard draws both nodes before any request, with their share and memory", async () => {
  await page.goto(server.url + "/dashboard", { waitUntil: "load" });
  await page.waitForFunction(() => document.querySelectorAll("#picture .node").length === 2, { timeout: 10000 });
  const nodes = await page.$$eval("#picture .node", (gs) => gs.map((g) => ({
    rank: g.dataset.rank, share: g.querySelector(".share").textContent, memory: g.querySelector(".memory").textContent })));
  assert.deepEqual(nodes.map((n) => n.rank), ["0", "1"]);
  for (const n of nodes) {
    assert.match(n.share, /^model [1-9]\d*% · /, "each node holds a share of the model");
    assert.match(n.memory, /^memory [\d.]+ (KiB|MiB|GiB)$/);
  }
  const links = await page.$$eval("#picture .link", (gs) => gs.map((g) => g.dataset.type));
  assert.deepEqual(links, ["shared memory"], "two ranks on one machine talk over shared memory");
  assert.deepEqual(page.pageErrors, []);
});

test("after a few requests every node shows non-zero compute and communication per token, and the charts have points", async () => {
  await Promise.all([complete("Once upon a time"), complete("The little dog"), complete("A red ball")]);
  await complete("Lily wanted to play");
  // The page polls every 2 s.
  await page.waitForFunction(() => {
    const values = [...document.querySelectorAll("#picture .node .compute, #picture .node .comm")]
      .map((t) => Number(t.dataset.value || 0));
    return values.length === 4 && values.every((v) => v > 0);
  }, { timeout: 15000 });
  const tps = await page.$eval("#chart-tps polyline", (p) => Number(p.dataset.nonzero));
  assert.ok(tps >= 1, "the tokens/s chart has a point above zero");
  const series = await page.$$eval("#chart-ms polyline", (ps) => ps.map((p) => [p.dataset.series, Number(p.dataset.nonzero)]));
  assert.equal(series.length, 4, "compute and comm of each rank");
  for (const [name, nonzero] of series) assert.ok(nonzero >= 1, `${name} has points: ${JSON.stringify(series)}`);
  assert.ok(await page.$eval("#chart-queue polyline", (p) => p.getAttribute("points").split(" ").length >= 100),
    "the queue chart spans the last minutes");
  assert.deepEqual(page.pageErrors, []);
});

test("/metrics carries each rank's figures with rank and node labels", async () => {
  const text = await (await fetch(server.url + "/metrics")).text();
  for (const rank of ["0", "1"]) {
    for (const name of ["clusterctl_rank_compute_ms_per_token", "clusterctl_rank_comm_ms_per_token",
      "clusterctl_rank_bytes_sent_total", "clusterctl_rank_resident_bytes"]) {
      const m = text.match(new RegExp(`^${name}\\{rank="${rank}",node="[^"]+"\\} ([0-9.e+-]+)$`, "m"));
      assert.ok(m, `${name} of rank ${rank} in /metrics`);
      assert.ok(Number(m[1]) > 0, `${name} of rank ${rank} is ${m[1]}`);
    }
  }
});

test("the chat page links to the dashboard", async () => {
  await page.goto(server.url + "/", { waitUntil: "load" });
  assert.equal(await page.$eval("#dashboard-link", (a) => a.getAttribute("href")), "/dashboard");
});

test("a screenshot of the dashboard is saved", async () => {
  await page.goto(server.url + "/dashboard", { waitUntil: "load" });
  await page.waitForFunction(() => document.body.dataset.updated, { timeout: 10000 });
  mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, "dashboard.png");
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(existsSync(file));
  console.log(`screenshot: ${file}`);
});
