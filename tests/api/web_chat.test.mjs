// Acceptance 2 of issue #6: headless Chromium loads the web chat page of `clusterctl serve`,
// sends a prompt, sees the answer stream into the page (its text grows, then the answer is
// done), stops a long answer with the Stop button, sees the nodes panel, and saves a screenshot.
// The browser's network is throttled so that the tiny model's answer arrives over seconds,
// which is what makes "grows over time" and "stop while streaming" observable.
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
  server = await startServe(MODEL);
  browser = await launchHeadless(chromium);
  page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 800 });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.pageErrors = errors;
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const bubbleText = () => page.$$eval(".msg.assistant", (els) => els.at(-1)?.textContent ?? "");

// Samples the last answer's text every 50 ms until it is done; returns the samples.
async function watchAnswer(timeoutMs) {
  const samples = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await page.$$eval(".msg.assistant", (els) => {
      const b = els.at(-1);
      return b ? { text: b.textContent, done: b.dataset.done === "true" } : { text: "", done: false };
    });
    samples.push(s);
    if (s.done) return samples;
    if (Date.now() > deadline) throw new Error("the answer did not finish within " + timeoutMs + " ms: " + s.text);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function send(prompt) {
  await page.click("#prompt");
  await page.type("#prompt", prompt);
  await page.keyboard.press("Enter");
}

test("the page loads and shows the model and the nodes panel", async () => {
  await page.goto(server.url + "/", { waitUntil: "load" });
  await page.waitForFunction(() => document.getElementById("model").textContent === "stories260K", { timeout: 10000 });
  await page.waitForFunction(() => document.querySelectorAll("#nodes li").length > 0, { timeout: 10000 });
  const nodes = await page.$$eval("#nodes li", (lis) => lis.map((li) => li.textContent));
  assert.match(nodes[0], /rank 0/);
  assert.deepEqual(page.pageErrors, []);
});

test("a prompt's answer streams into the page and finishes", async () => {
  // ~100 chunks of ~180 bytes per second: the answer arrives over seconds, not at once.
  await page.emulateNetworkConditions({ download: 20000, upload: 1e6, latency: 0 });
  await send("Tell me a story about a cat.");
  await page.waitForFunction(() => document.querySelectorAll(".msg.user").length === 1, { timeout: 5000 });
  assert.equal(await page.$eval(".msg.user", (e) => e.textContent), "Tell me a story about a cat.");
  assert.equal(await page.$eval("#stop", (b) => b.disabled), false, "Stop is enabled while the answer streams");
  const samples = await watchAnswer(60000);
  const lengths = [...new Set(samples.map((s) => s.text.length))];
  assert.ok(lengths.length >= 3, `the answer should grow in steps, saw lengths ${lengths}`);
  for (let i = 1; i < lengths.length; ++i) assert.ok(lengths[i] > lengths[i - 1], `text shrank: ${lengths}`);
  const answer = samples.at(-1).text;
  assert.ok(answer.trim().length > 0);
  await page.waitForFunction(() => /tokens\/s · finish: (stop|length)/.test(document.querySelector(".meta")?.textContent ?? ""),
    { timeout: 5000 });
  assert.equal(await page.$eval("#stop", (b) => b.disabled), true);
  assert.equal(await page.$eval("#send", (b) => b.disabled), false);
  assert.deepEqual(page.pageErrors, []);
});

test("the Stop button ends a long answer and frees the server's slot", async () => {
  await page.emulateNetworkConditions({ download: 1500, upload: 1e6, latency: 0 });  // ~8 chunks/s
  await send("Once upon a time there was a dragon. Tell me everything about it.");
  await page.waitForFunction(() => {
    const b = [...document.querySelectorAll(".msg.assistant")].at(-1);
    return b && b.dataset.streaming === "true" && b.textContent.length > 10;
  }, { timeout: 30000 });
  await page.click("#stop");
  await page.waitForFunction(() => [...document.querySelectorAll(".meta")].at(-1)?.textContent === "stopped",
    { timeout: 5000 });
  const stoppedAt = await bubbleText();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await bubbleText(), stoppedAt, "no text arrives after Stop");
  assert.equal(await page.$eval("#stop", (b) => b.disabled), true);
  await page.emulateNetworkConditions(null);
  // The server sees the closed connection and frees the sequence.
  const deadline = Date.now() + 10000;
  for (;;) {
    const c = await (await fetch(server.url + "/v1/cluster")).json();
    if (c.running === 0 && c.queue_depth === 0) break;
    if (Date.now() > deadline) throw new Error("the server still runs the stopped answer: " + JSON.stringify(c));
    await new Promise((r) => setTimeout(r, 100));
  }
});

test("a screenshot of the page is saved", async () => {
  mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, "web_chat.png");
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(existsSync(file));
  console.log(`screenshot: ${file}`);
});
