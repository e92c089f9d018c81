// Starts the test server binary (CLUSTERCTL_TEST_SERVER) on a free port and stops it.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

export function skip(reason) {
  console.log(`SKIPPED: ${reason}`);
  process.exit(77); // ctest SKIP_RETURN_CODE
}

export async function startServer(args = []) {
  const binary = process.env.CLUSTERCTL_TEST_SERVER;
  if (!binary || !existsSync(binary)) {
    throw new Error("set CLUSTERCTL_TEST_SERVER to the word_stream_test_server binary (ctest does)");
  }
  const child = spawn(binary, ["--port", "0", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("the server did not start within 10 s: " + out)), 10000);
    child.stdout.on("data", (data) => {
      out += data;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the server exited with ${code}: ${out}`)); });
  });
  return {
    url,
    stop: () => new Promise((resolve) => { child.once("exit", resolve); child.kill("SIGTERM"); }),
  };
}

// The words the test service streams back for a prompt: "w1", " w2", ...
export function wordsOf(prompt) {
  return prompt.split(/\s+/).filter((w) => w.length > 0);
}
