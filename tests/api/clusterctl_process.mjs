// Real clusterctl processes for the CLI and browser tests: `clusterctl serve` on a small model
// from ../shared (a free port), and one-shot `clusterctl` commands.
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
