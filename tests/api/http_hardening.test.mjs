// curl against the test server: HEAD, 431, the bearer scheme in any case, /health opened by an
// explicit option, and the DNS-rebinding / cross-site guard of a tokenless loopback server with
// its CORS allow-list (docs/api.md, "Safety defaults").
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { skip, startServer } from "./server_process.mjs";

const run = promisify(execFile);
try {
  await run("curl", ["--version"]);
} catch {
  skip("curl is not installed");
}

// { status, headers (lower-case names), body } of one curl call.
async function curl(url, args = []) {
  const { stdout } = await run("curl", ["-sS", "-i", ...args, url], { maxBuffer: 16 << 20 });
  const cut = stdout.indexOf("\r\n\r\n");
  const head = stdout.slice(0, cut).split("\r\n");
  const headers = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(":");
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(head[0].split(" ")[1]), headers, body: stdout.slice(cut + 4) };
}

const chatBody = JSON.stringify({ model: "word-stream-test", messages: [{ role: "user", content: "hello there" }] });
const post = ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", chatBody];

describe("a tokenless server on loopback", () => {
  let server, port;
  before(async () => {
    server = await startServer(["--cors-origin", "https://app.example"]);
    port = new URL(server.url).port;
  });
  after(async () => { await server.stop(); });

  test("HEAD is answered like GET without the body", async () => {
    const get = await curl(`${server.url}/health`);
    const head = await curl(`${server.url}/health`, ["-I"]);
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], String(Buffer.byteLength(get.body)));
    assert.equal(head.body, "");
  });

  test("1 MB of headers get 431", async () => {
    // Over a plain socket: curl refuses a header this large itself.
    const answer = await new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), "127.0.0.1");
      let data = "";
      socket.on("data", (d) => { data += d; });
      socket.on("error", () => resolve(data));  // the server may reset after answering
      socket.on("close", () => resolve(data));
      socket.setTimeout(10000, () => reject(new Error("no answer in 10 s")));
      socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"a".repeat(1 << 20)}\r\n\r\n`);
    });
    assert.match(answer, /^HTTP\/1\.1 431 /);
    assert.match(answer, /request_header_fields_too_large/);
    assert.equal((await curl(`${server.url}/health`)).status, 200);
  });

  test("a rebinding Host and a foreign Origin get 403; its own and allowed origins are served", async () => {
    const rebind = await curl(`${server.url}/v1/chat/completions`, [...post, "-H", `Host: attacker.example:${port}`]);
    assert.equal(rebind.status, 403);
    assert.equal(JSON.parse(rebind.body).error.code, "host_not_allowed");
    const foreign = await curl(`${server.url}/v1/chat/completions`, [...post, "-H", "Origin: https://attacker.example"]);
    assert.equal(foreign.status, 403);
    assert.equal(JSON.parse(foreign.body).error.code, "origin_not_allowed");
    const own = await curl(`${server.url}/v1/chat/completions`, [...post, "-H", `Origin: http://localhost:${port}`]);
    assert.equal(own.status, 200);
    const allowed = await curl(`${server.url}/v1/chat/completions`, [...post, "-H", "Origin: https://app.example"]);
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers["access-control-allow-origin"], "https://app.example");
    const plain = await curl(`${server.url}/v1/chat/completions`, post);
    assert.equal(plain.status, 200);
  });

  test("a preflight from an allowed origin gets the CORS headers; from another, 403", async () => {
    const ok = await curl(`${server.url}/v1/chat/completions`, ["-X", "OPTIONS", "-H", "Origin: https://app.example",
      "-H", "Access-Control-Request-Method: POST", "-H", "Access-Control-Request-Headers: authorization, content-type"]);
    assert.equal(ok.status, 204);
    assert.equal(ok.headers["access-control-allow-origin"], "https://app.example");
    assert.match(ok.headers["access-control-allow-methods"], /POST/);
    assert.equal(ok.headers["access-control-allow-headers"], "authorization, content-type");
    const bad = await curl(`${server.url}/v1/chat/completions`, ["-X", "OPTIONS", "-H", "Origin: https://attacker.example",
      "-H", "Access-Control-Request-Method: POST"]);
    assert.equal(bad.status, 403);
  });
});

describe("a server with a token", () => {
  let closed, open;
  before(async () => {
    closed = await startServer(["--token", "tok"]);
    open = await startServer(["--token", "tok", "--health-open", "1"]);
  });
  after(async () => { await closed.stop(); await open.stop(); });

  test("the bearer scheme is matched in any case", async () => {
    for (const scheme of ["Bearer", "bearer", "BEARER"]) {
      assert.equal((await curl(`${closed.url}/v1/models`, ["-H", `Authorization: ${scheme} tok`])).status, 200, scheme);
    }
    assert.equal((await curl(`${closed.url}/v1/models`, ["-H", "Authorization: bearer nope"])).status, 401);
  });

  test("/health is open to probes only with --health-open", async () => {
    assert.equal((await curl(`${closed.url}/health`)).status, 401);
    assert.equal((await curl(`${open.url}/health`)).status, 200);
    assert.equal((await curl(`${open.url}/v1/models`)).status, 401);
    assert.equal((await curl(`${open.url}/v1/chat/completions`, post)).status, 401);
  });

  test("with a token, another Host is served (the token is the guard)", async () => {
    const r = await curl(`${closed.url}/v1/models`, ["-H", "Authorization: Bearer tok", "-H", "Host: proxy.example"]);
    assert.equal(r.status, 200);
  });
});
