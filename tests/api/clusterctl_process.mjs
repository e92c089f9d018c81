// Real clusterctl processes for the CLI and browser tests: `clusterctl serve` on a small model
// from ../shared (a free port), and one-shot `clusterctl` commands.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { skip } from "./server_process.mjs";

export const clusterctl = process.env.CLUSTERCTL_BIN;

// A model under the shared data folder; skips the test file when it is absent (fails under CI).
export function sharedModel(name) {
  const dir = process.env.CLUSTERCTL_SHARED_DIR ?? path.resolve(import.meta.dirname ?? ".", "../../../shared");
  const file = path.join(dir, "models", name);
  if (!existsSync(file)) {
    if (process.env.CI === "true") throw new Error(`shared model missing under CI: ${file}`);
    skip(`shared model not found: ${file}`);
  }
  return file;
}

export function requireClusterctl() {
  if (!clusterctl || !existsSync(clusterctl)) {
    throw new Error("set CLUSTERCTL_BIN to the clusterctl binary (ctest does)");
  }
}

// Starts `clusterctl serve MODEL --port 0 ...`; resolves to { url, stop, output }.
export async function startServe(model, args = []) {
  requireClusterctl();
  const child = spawn(clusterctl, ["serve", model, "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => { err += d; });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("clusterctl serve did not start within 30 s: " + out + err)), 30000);
    child.stdout.on("data", (data) => {
      out += data;
      const m = out.match(/ on (http:\/\/\S+?)\/? /);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`clusterctl serve exited with ${code}: ${out}${err}`)); });
  });
  return {
    url,
    pid: child.pid,
    output: () => out + err,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", resolve);
      child.kill("SIGTERM");
    }),
  };
}

// Runs clusterctl with `args`; resolves to { code, stdout, stderr } (never rejects on a nonzero exit).
export function runClusterctl(args, { input, env, timeout = 60000 } = {}) {
  requireClusterctl();
  return new Promise((resolve, reject) => {
    const child = execFile(clusterctl, args, { env: { ...process.env, ...env }, timeout, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") return reject(error);
        resolve({ code: error ? error.code : 0, stdout, stderr });
      });
    if (input !== undefined) child.stdin.end(input);
  });
}

// A TCP port nothing listens on (bound, then closed again).
export function deadPort() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// One greedy completion of stories260K from the server at `url`; resolves to { ids, text, finish }
// from the whole answer or from its stream (which must end with [DONE]).
export async function greedyCompletion(url, { prompt, max_tokens, stream }) {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "stories260K", prompt, max_tokens, temperature: 0, stream, return_token_ids: true }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  if (!stream) {
    const j = await res.json();
    return { ids: j.choices[0].token_ids, text: j.choices[0].text, finish: j.choices[0].finish_reason };
  }
  const out = { ids: [], text: "", finish: null };
  const body = await res.text();
  for (const line of body.split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
    const choice = JSON.parse(line.slice(6)).choices[0];
    out.ids.push(...(choice.token_ids ?? []));
    out.text += choice.text ?? "";
    if (choice.finish_reason) out.finish = choice.finish_reason;
  }
  assert.ok(body.trimEnd().endsWith("data: [DONE]"), "the stream ends with [DONE]");
  return out;
}
