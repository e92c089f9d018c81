#!/usr/bin/env python3
"""Soak of a 2-rank `clusterctl serve` (not in CI; figures for the issue note).

Mixed concurrent load for --duration seconds (default 30 min):
  normal clients   greedy requests over the three APIs (OpenAI chat and completions, Ollama chat
                   and generate, Anthropic messages), streamed and not; every answer must equal
                   the text a 1-rank `serve` of the same model gives (taken before the load)
  cancel client    streamed requests dropped after a few chunks, and requests abandoned by a
                   client timeout shorter than the generation
  hostile clients  malformed JSON, huge fields, wrong types, numbers out of range, deep nesting,
                   oversized headers, garbage request lines, request smuggling; each must get an
                   answer or be closed by the server, never a 5xx or a hang (most get a 4xx)
  slow client      slowloris: a header sent a byte a second that never ends; the server must close it
Every --window seconds it prints: normal requests answered / failed / wrong, cancels, hostile
requests by outcome, each rank's RSS and open fds, and p50/p99 time per token (a request's elapsed
time / its tokens; and for streamed ones from the first chunk to the last, as the client saw them).
At the end: RSS flat within 5 % (each window's lowest, the second window's against the last's: the
first warms up), no fd growth (each rank's fds at idle before the load and after it), every normal
answer correct. Exit 1 otherwise.

  tests/soak/serve_soak.py --build build [--duration 1800] [--window 300] [--model M.gguf]
"""
import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPTS = ["Once upon a time", "The little dog", "Lily went to the park and"]
MAX_TOKENS = 24
KINDS = ["openai_chat", "openai_completion", "ollama_chat", "ollama_generate", "anthropic"]


def request_of(kind, model, prompt, stream):
    """(path, body) of a greedy request of one API."""
    msgs = [{"role": "user", "content": prompt}]
    if kind == "openai_chat":
        return "/v1/chat/completions", {"model": model, "messages": msgs, "max_tokens": MAX_TOKENS,
                                        "temperature": 0, "stream": stream}
    if kind == "openai_completion":
        return "/v1/completions", {"model": model, "prompt": prompt, "max_tokens": MAX_TOKENS,
                                   "temperature": 0, "stream": stream}
    opts = {"temperature": 0, "num_predict": MAX_TOKENS}
    if kind == "ollama_chat":
        return "/api/chat", {"model": model, "messages": msgs, "stream": stream, "options": opts}
    if kind == "ollama_generate":
        return "/api/generate", {"model": model, "prompt": prompt, "stream": stream, "options": opts}
    return "/v1/messages", {"model": model, "messages": msgs, "max_tokens": MAX_TOKENS, "temperature": 0,
                            "stream": stream}


def text_of_whole(kind, j):
    """(text, tokens) of a non-streamed answer."""
    if kind == "openai_chat":
        return j["choices"][0]["message"]["content"], j["usage"]["completion_tokens"]
    if kind == "openai_completion":
        return j["choices"][0]["text"], j["usage"]["completion_tokens"]
    if kind == "ollama_chat":
        return j["message"]["content"], j.get("eval_count", 0)
    if kind == "ollama_generate":
        return j["response"], j.get("eval_count", 0)
    return "".join(b.get("text", "") for b in j["content"] if b.get("type") == "text"), j["usage"]["output_tokens"]


def piece_of_event(kind, j):
    """The text a streamed event carries ('' for none)."""
    if kind == "openai_chat":
        ch = j.get("choices") or [{}]
        return (ch[0].get("delta") or {}).get("content") or ""
    if kind == "openai_completion":
        ch = j.get("choices") or [{}]
        return ch[0].get("text") or ""
    if kind == "ollama_chat":
        return (j.get("message") or {}).get("content") or ""
    if kind == "ollama_generate":
        return j.get("response") or ""
    if j.get("type") == "content_block_delta":
        return (j.get("delta") or {}).get("text") or ""
    return ""


class Failure(Exception):
    pass


def call(port, kind, model, prompt, stream, timeout=120, drop_after=None):
    """Sends one normal request. Returns (text, tokens, elapsed_s, chunk_times). drop_after: close
    the connection after that many streamed events (a client that goes away)."""
    path, body = request_of(kind, model, prompt, stream)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise Failure("HTTP %d: %s" % (resp.status, resp.read(300)))
        if not stream:
            text, tokens = text_of_whole(kind, json.loads(resp.read()))
            return text, tokens, time.monotonic() - t0, []
        text, times, events, done = "", [], 0, False
        for raw in resp:
            line = raw.decode().strip()
            if kind.startswith("ollama"):
                if not line:
                    continue
                j = json.loads(line)
                done = done or j.get("done", False)
            else:
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    continue
                j = json.loads(data)
                if "error" in j:
                    raise Failure("stream error: %s" % data[:300])
                done = done or j.get("type") == "message_stop" or kind.startswith("openai") and bool(
                    (j.get("choices") or [{}])[0].get("finish_reason"))
            piece = piece_of_event(kind, j)
            if piece:
                text += piece
                times.append(time.monotonic())
            events += 1
            if drop_after is not None and events >= drop_after:
                return text, len(times), time.monotonic() - t0, times
        if not done:
            raise Failure("stream ended without its end event")
        return text, len(times), time.monotonic() - t0, times
    finally:
        conn.close()


# Hostile requests: (name, raw bytes builder). Each gets a 4xx or a close from the server.
def post_raw(path, body, extra=""):
    if isinstance(body, str):
        body = body.encode()
    head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n" \
           "Connection: close\r\n\r\n" % (path, extra, len(body))
    return head.encode() + body


API_PATHS = ["/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate", "/v1/messages"]
BAD_BODIES = [
    '{"model":"m","messages":[{"role":"user","content":"hi"}', '{"model":', '[1,2,', '{"messages":"x"}',
    '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":"many"}',
    '{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":[]}',
    '{"model":"m","messages":{"role":"user"},"stream":"yes"}', '{"model":"m","prompt":{"a":1},"max_tokens":4}',
    '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}',
    '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":-5,"top_p":7,"seed":-1}',
    '{"model":"m","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":99999999999999999999}}',
    '{"model":"m","max_tokens":8,"messages":[{"role":"user","content":[{"type":"image"}]}]}',
    '\x00\xff\xfe garbage', '{"model":"m","messages":[{"role":"user","content":"\\ud800"}],"stop":[1,2]}',
]


def hostile_bytes(rng, model):
    """(kind, bytes) of one hostile request; bodies name the served model, so that what is wrong
    in them is what the server must refuse (not an unknown model)."""
    kind = rng.choice(["malformed", "huge_field", "deep_nesting", "oversized_headers", "garbage_line", "smuggle"])
    path = rng.choice(API_PATHS)
    named = '"model":%s' % json.dumps(model)
    if kind == "malformed":
        return kind, post_raw(path, rng.choice(BAD_BODIES).replace('"model":"m"', named))
    if kind == "huge_field":  # the prompt or message the endpoint reads: longer than the context, or the body limit
        size = rng.choice([200_000, 900_000, 3_000_000])
        api = KINDS[API_PATHS.index(path)]
        body = request_of(api, model, "a " * (size // 2), rng.random() < 0.5)[1]
        return kind, post_raw(path, json.dumps(body))
    if kind == "deep_nesting":
        n = rng.choice([1000, 100_000])
        return kind, post_raw(path, '{%s,"messages":[{"role":"user","content":"x"}],"metadata":%s%s}' % (named, "[" * n, "]" * n))
    if kind == "oversized_headers":
        return kind, post_raw(path, "{}", "X-Big: %s\r\n" % ("b" * rng.choice([20_000, 200_000])))
    if kind == "garbage_line":
        return kind, b"\x16\x03\x01\x02\x00 GET / HTTP/9.9\r\n\r\n" + os.urandom(rng.randint(0, 2000))
    return kind, (b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\n\r\n")


def hostile_exchange(port, data, rng):
    """Returns the outcome: 'http NNN' or 'closed' (no answer, connection closed by the server), or
    'hang' (still open after 30 s). A 5xx or a hang is a failure; a 200 is not (an endpoint may not
    read the field that is wrong: Ollama's API has no max_tokens)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (413/431) and closed before reading it all
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        got = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                return "hang"
            if not b:
                break
            got += b
        if not got:
            return "closed"
        code = got[9:12].decode(errors="replace")
        return "http %s" % code
    finally:
        s.close()


def slowloris(port):
    """A request whose header arrives one byte a second and never ends: the server must close it
    (it gives a request 60 s, its idle timeout). Returns ('closed' or 'http NNN', seconds) or
    ('hang', seconds) when still open after 120 s."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(1.0)
    start = time.monotonic()
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 100000
    try:
        for i in range(len(head)):
            if time.monotonic() - start > 120:
                return "hang", time.monotonic() - start
            try:
                s.sendall(head[i:i + 1])
                b = s.recv(4096)
                return ("http " + b[9:12].decode(errors="replace")) if b else "closed", time.monotonic() - start
            except socket.timeout:
                pass
            except (BrokenPipeError, ConnectionResetError):
                return "closed", time.monotonic() - start
        return "hang", time.monotonic() - start
    finally:
        s.close()


class Window:
    def __init__(self):
        self.lock = threading.Lock()
        self.answered = self.failed = self.wrong = self.cancels = self.timeouts = 0
        self.hostile = {}
        self.token_ms = []  # ms per token of a request: elapsed (queue and prefill included) / tokens
        self.stream_ms = []  # ms per token of a streamed request, from its first chunk to its last
        self.slow = []  # (outcome, seconds) of slowloris connections
        self.errors = []
        self.samples = {}  # rank -> [(rss_kib, fds)]


def mmss(seconds):
    return "%d:%02d" % (seconds // 60, seconds % 60)


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


def find_ranks(port):
    """pids of the worker processes serving on `port`, rank order (by pid)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                if not f.read().startswith("clusterctl-wor"):
                    continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"--port" in args and args[args.index(b"--port") + 1] == str(port).encode():
            pids.append(int(d))
    return sorted(pids)


def rss_and_fds(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def start_serve(clusterctl, model, port, ranks, parallel, log):
    cmd = [clusterctl, "serve", model, "--port", str(port), "--parallel", str(parallel)]
    if ranks > 1:
        cmd += ["--ranks", str(ranks)]
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(600):
        if p.poll() is not None:
            raise SystemExit("serve ended (exit %s) before answering; see %s" % (p.returncode, log.name))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v1/models")
            r = c.getresponse()
            body = r.read()
            c.close()
            if r.status == 200:
                return p, json.loads(body)["data"][0]["id"]
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.5)
    raise SystemExit("serve did not answer within 300 s")


def stop_serve(p):
    try:
        os.killpg(p.pid, 15)
    except ProcessLookupError:
        return
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.wait()


def references(port, model):
    ref = {}
    for kind in KINDS:
        for prompt in PROMPTS:
            whole = call(port, kind, model, prompt, False)[0]
            streamed = call(port, kind, model, prompt, True)[0]
            if whole != streamed:
                raise SystemExit("%s %r: streamed %r but whole %r" % (kind, prompt, streamed, whole))
            ref[(kind, prompt)] = whole
    return ref


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--model", default=os.path.realpath(os.path.join(REPO, "..", "shared", "models", "stories260K.gguf")))
    ap.add_argument("--duration", type=int, default=1800)
    ap.add_argument("--window", type=int, default=300)
    ap.add_argument("--port", type=int, default=18431)
    ap.add_argument("--clients", type=int, default=4, help="normal clients")
    ap.add_argument("--hostile", type=int, default=2, help="hostile clients")
    ap.add_argument("--parallel", type=int, default=4)
    a = ap.parse_args()
    clusterctl = os.path.join(os.path.realpath(a.build), "controller", "clusterctl")
    if not os.path.exists(a.model):
        raise SystemExit("no model at %s (--model)" % a.model)
    log = open("/tmp/serve_soak.%d.log" % os.getpid(), "w")

    # The reference: every normal request's greedy text from a 1-rank server.
    p1, model = start_serve(clusterctl, a.model, a.port, 1, a.parallel, log)
    try:
        ref = references(a.port, model)
    finally:
        stop_serve(p1)
    p2, model = start_serve(clusterctl, a.model, a.port, 2, a.parallel, log)
    ranks = find_ranks(a.port)
    print("serve --ranks 2 of %s on port %d: rank pids %s; %d normal + 1 cancel + %d hostile clients, %d s"
          % (os.path.basename(a.model), a.port, ranks, a.clients, a.hostile, a.duration), flush=True)
    if len(ranks) != 2:
        stop_serve(p2)
        raise SystemExit("expected 2 worker processes on port %d, found %s" % (a.port, ranks))
    idle = references(a.port, model)
    time.sleep(2)
    idle_before = [rss_and_fds(pid) for pid in ranks]
    bad_idle = [k for k in ref if ref[k] != idle[k]]
    if bad_idle:
        print("2-rank idle answers differ from 1-rank for %s" % bad_idle, flush=True)

    windows = [Window()]
    stop = threading.Event()
    t_start = time.monotonic()

    def current():
        return windows[-1]

    def normal_client(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            kind, prompt, stream = rng.choice(KINDS), rng.choice(PROMPTS), rng.random() < 0.5
            w = current()
            try:
                text, tokens, elapsed, times = call(a.port, kind, model, prompt, stream)
            except Exception as e:  # noqa: BLE001 (any failure of a normal request is reported)
                with w.lock:
                    w.failed += 1
                    w.errors.append("%s %s: %s" % (kind, "stream" if stream else "whole", str(e)[:200]))
                time.sleep(0.2)
                continue
            with w.lock:
                if text != ref[(kind, prompt)]:
                    w.wrong += 1
                    w.errors.append("%s %r: %r, expected %r" % (kind, prompt, text[:80], ref[(kind, prompt)][:80]))
                    continue
                w.answered += 1
                if tokens > 0:
                    w.token_ms.append(elapsed * 1000 / tokens)
                if stream and len(times) >= 2:
                    w.stream_ms.append((times[-1] - times[0]) * 1000 / (len(times) - 1))

    def cancel_client(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            kind, prompt = rng.choice(KINDS), rng.choice(PROMPTS)
            w = current()
            try:
                if rng.random() < 0.5:
                    call(a.port, kind, model, prompt, True, drop_after=rng.randint(1, 6))
                    with w.lock:
                        w.cancels += 1
                else:
                    try:
                        call(a.port, kind, model, prompt, rng.random() < 0.5, timeout=rng.uniform(0.005, 0.08))
                    except socket.timeout:
                        pass
                    with w.lock:
                        w.timeouts += 1
            except Exception as e:  # noqa: BLE001
                with w.lock:
                    w.errors.append("cancel client %s: %s" % (kind, str(e)[:200]))
            time.sleep(rng.uniform(0, 0.3))

    def hostile_client(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            w = current()
            try:
                name, data = hostile_bytes(rng, model)
                outcome = hostile_exchange(a.port, data, rng)
            except Exception as e:  # noqa: BLE001
                name, outcome = "connect", "error %s" % type(e).__name__
            with w.lock:
                w.hostile[(name, outcome)] = w.hostile.get((name, outcome), 0) + 1
            time.sleep(rng.uniform(0, 0.2))

    def slow_client():
        while not stop.is_set():
            try:
                r = slowloris(a.port)
            except OSError as e:
                r = ("error %s" % type(e).__name__, 0)
            w = current()  # the window it ended in
            with w.lock:
                w.slow.append(r)

    threads = [threading.Thread(target=normal_client, args=(i,), daemon=True) for i in range(a.clients)]
    threads.append(threading.Thread(target=cancel_client, args=(1000,), daemon=True))
    threads.append(threading.Thread(target=slow_client, daemon=True))
    threads += [threading.Thread(target=hostile_client, args=(2000 + i,), daemon=True) for i in range(a.hostile)]
    for t in threads:
        t.start()

    ok = True
    n_windows = max(1, a.duration // a.window)
    for wi in range(n_windows):
        w_end = t_start + (wi + 1) * a.window
        while time.monotonic() < w_end:
            if p2.poll() is not None:
                print("serve ended (exit %s) during the soak" % p2.returncode, flush=True)
                ok = False
                break
            for r, pid in enumerate(ranks):
                try:
                    current().samples.setdefault(r, []).append(rss_and_fds(pid))
                except OSError:
                    pass
            time.sleep(min(5, max(0, w_end - time.monotonic())))
        w = current()
        if wi + 1 < n_windows:
            windows.append(Window())
        with w.lock:
            hostile_fail = {k: v for k, v in w.hostile.items()
                            if not (k[1] == "closed" or k[1].startswith("http 4") or k[1].startswith("http 2"))}
            slow_bad = [r for r in w.slow if r[0] not in ("closed",) and not r[0].startswith("http 4")]
            print("[%s-%s] normal: %d answered, %d failed, %d wrong; %d cancelled, %d timed out; hostile: %d sent, %d bad"
                  % (mmss(wi * a.window), mmss((wi + 1) * a.window), w.answered, w.failed, w.wrong, w.cancels,
                     w.timeouts, sum(w.hostile.values()), sum(hostile_fail.values())), flush=True)
            for r in sorted(w.samples):
                s = w.samples[r]
                print("    rank %d: RSS %d..%d KiB (end %d), fds %d..%d" % (r, min(x[0] for x in s), max(x[0] for x in s),
                                                                     s[-1][0], min(x[1] for x in s), max(x[1] for x in s)))
            print("    slowloris: %d closed by the server after %s s, %d bad"
                  % (len(w.slow) - len(slow_bad), "/".join("%.0f" % r[1] for r in w.slow if r not in slow_bad)[:60] or "-",
                     len(slow_bad)))
            print("    time per token (request elapsed / tokens): p50 %.1f ms p99 %.1f ms; streamed, first to last chunk: "
                  "p50 %.1f ms p99 %.1f ms" % (pct(w.token_ms, 0.5), pct(w.token_ms, 0.99), pct(w.stream_ms, 0.5),
                                               pct(w.stream_ms, 0.99)), flush=True)
            outcomes = {}
            for (name, outcome), n in w.hostile.items():
                outcomes.setdefault(outcome, 0)
                outcomes[outcome] += n
            print("    hostile outcomes: %s" % ", ".join("%s %d" % kv for kv in sorted(outcomes.items())))
            answered = sorted("%s %d" % (k[0], v) for k, v in w.hostile.items() if k[1].startswith("http 2"))
            if answered:
                print("    hostile requests answered 200 (a field the endpoint does not read): %s" % ", ".join(answered))
            for k, v in sorted(hostile_fail.items()):
                print("    BAD hostile %s -> %s: %d" % (k[0], k[1], v))
            for e in w.errors[:5]:
                print("    error: %s" % e)
            if w.failed or w.wrong or hostile_fail or slow_bad:
                ok = False
        if not ok and p2.poll() is not None:
            break
    stop.set()
    for t in threads:
        t.join(timeout=150)
    time.sleep(5)  # the server closes what the clients left
    idle_after = [rss_and_fds(pid) for pid in ranks] if p2.poll() is None else []

    # Verdicts over the whole run.
    # RSS: each window's lowest (between the bursts of hostile bodies), the second window's (the first
    # warms the allocator up) against the last's.
    first, last = windows[min(1, len(windows) - 1)], windows[-1]
    for r in range(len(ranks)):
        if r not in first.samples or r not in last.samples:
            continue
        a_rss, b_rss = min(x[0] for x in first.samples[r]), min(x[0] for x in last.samples[r])
        growth = (b_rss - a_rss) * 100.0 / a_rss
        fd_a, fd_b = idle_before[r][1], idle_after[r][1] if idle_after else -1
        flat = abs(growth) <= 5.0
        print("rank %d: lowest RSS %d -> %d KiB (second window -> last: %+.1f %%, %s); idle fds %d before "
              "the load, %d after (%s)" % (r, a_rss, b_rss, growth, "flat" if flat else "NOT flat", fd_a, fd_b,
                                          "no growth" if 0 <= fd_b <= fd_a else "GREW"))
        ok = ok and flat and 0 <= fd_b <= fd_a
    total = sum(w.answered for w in windows)
    print("normal requests: %d answered correctly, %d failed, %d wrong; 2-rank idle answers %s the 1-rank ones"
          % (total, sum(w.failed for w in windows), sum(w.wrong for w in windows),
             "equal" if not bad_idle else "DIFFER from"))
    ok = ok and not bad_idle
    stop_serve(p2)
    log.close()
    print("soak %s (serve log %s)" % ("passed" if ok else "FAILED", log.name))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
