#!/usr/bin/env python3
"""A local stand-in for the Hugging Face hub, speaking the subset of its HTTP API that
`clusterctl pull` uses, over real HTTP/1.1 (keep-alive, redirects, ranges):

  GET  /api/models/ORG/NAME/tree/REV?recursive=true   the file listing, paged (Link: rel="next")
  HEAD|GET /ORG/NAME/resolve/REV/PATH                 302 to the "CDN" with X-Repo-Commit,
                                                      X-Linked-Etag (the LFS SHA-256), X-Linked-Size
  GET  /cdn/SHA256/ORG/NAME/PATH                      the bytes; Range: bytes=N- answered with 206

Repos are the folders ROOT/ORG/NAME; every file is "in LFS" (its SHA-256 in the listing). The
commit is derived from the files, so it changes when they do. Faults, each by repo path
ORG/NAME/FILE: --gated ORG/NAME (401 without the token, 403 with another), --cut-once FILE:BYTES
(the first download of FILE stops after BYTES and the connection is closed), --corrupt FILE (one
byte of the bytes served differs from the file the listing's SHA-256 was taken of). The CDN
refuses requests that carry an Authorization header, as a presigned CDN URL does.

Every download is logged to --log as one JSON line: {"path", "sha256", "start", "sent", "cut"}.
Prints "port N" on stdout once listening.
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hub:
    def __init__(self, args):
        self.root = os.path.abspath(args.root)
        self.gated = set(args.gated or [])
        self.token = args.token
        self.cut_once = {}
        for spec in args.cut_once or []:
            path, _, n = spec.rpartition(":")
            self.cut_once[path] = int(n)
        self.corrupt = set(args.corrupt or [])
        self.page_size = args.page_size
        self.log_path = args.log
        self.lock = threading.Lock()
        self.repos = {}  # "ORG/NAME" -> {"commit": ..., "files": {path: (size, sha256, sha1)}}
        self.by_sha = {}  # sha256 -> repo path ORG/NAME/FILE (one of them: the same bytes may be in several repos)
        for org in sorted(os.listdir(self.root)):
            for name in sorted(os.listdir(os.path.join(self.root, org))):
                self.add_repo(org + "/" + name)

    def add_repo(self, repo):
        base = os.path.join(self.root, repo)
        files = {}
        for dirpath, _, names in os.walk(base):
            for n in sorted(names):
                full = os.path.join(dirpath, n)
                rel = os.path.relpath(full, base).replace(os.sep, "/")
                data = open(full, "rb").read()
                sha256 = hashlib.sha256(data).hexdigest()
                sha1 = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                files[rel] = (len(data), sha256, sha1)
                self.by_sha[sha256] = repo + "/" + rel
        commit = hashlib.sha1(json.dumps(sorted(files.items())).encode()).hexdigest()
        self.repos[repo] = {"commit": commit, "files": files}

    def log(self, entry):
        with self.lock:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub = None

    def log_message(self, fmt, *args):  # quiet: the JSON log is what tests read
        pass

    def send(self, status, body=b"", headers=None, content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message):
        self.send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            return self.tree("/".join(parts[2:4]), parts[5], urllib.parse.parse_qs(url.query))
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        if len(parts) >= 3 and parts[0] == "cdn":
            return self.cdn(parts[1], "/".join(parts[2:]))
        self.error(404, "NotFound", "no route " + url.path)

    def repo_or_error(self, repo):
        r = self.hub.repos.get(repo)
        if r is None:  # the hub answers 401 to anonymous requests for a repo it does not show
            self.error(401, "RepoNotFound", "Repository Not Found for url: " + self.path)
        return r

    def tree(self, repo, rev, query):
        r = self.repo_or_error(repo)
        if r is None:
            return
        if rev not in ("main", r["commit"]):
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
        entries, dirs = [], set()
        for path, (size, sha256, sha1) in sorted(r["files"].items()):
            d = path.rpartition("/")[0]
            if d and d not in dirs:
                dirs.add(d)
                entries.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d})
            entries.append({"type": "file", "oid": sha1, "size": size, "path": path,
                            "lfs": {"oid": sha256, "size": size, "pointerSize": 134}})
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start:start + self.hub.page_size]
        headers = {}
        if start + self.hub.page_size < len(entries):
            nxt = "/api/models/%s/tree/%s?recursive=true&cursor=%d" % (repo, rev, start + self.hub.page_size)
            headers["Link"] = '<http://%s%s>; rel="next"' % (self.headers.get("Host"), nxt)
        self.send(200, page, headers)

    def resolve(self, repo, rev, path):
        r = self.repo_or_error(repo)
        if r is None:
            return
        if repo in self.hub.gated:
            auth = self.headers.get("Authorization")
            if auth is None:
                return self.error(401, "GatedRepo", "Access to model %s is restricted. You must have access to it "
                                  "and be authenticated to access it. Please log in." % repo)
            if auth != "Bearer " + self.hub.token:
                return self.error(403, "GatedRepo", "Access to model %s is restricted and you are not in the "
                                  "authorized list." % repo)
        if rev not in ("main", r["commit"]):
            return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
        if path not in r["files"]:
            return self.error(404, "EntryNotFound", "Entry not found")
        size, sha256, _ = r["files"][path]
        location = "http://%s/cdn/%s/%s?expires=never" % (self.headers.get("Host"), sha256,
                                                          urllib.parse.quote(repo + "/" + path))
        self.send(302, b"", {"Location": location, "X-Repo-Commit": r["commit"], "X-Linked-Etag": '"%s"' % sha256,
                             "X-Linked-Size": str(size), "ETag": '"%s"' % sha256}, "text/plain")

    def cdn(self, sha256, repo_path):
        if "Authorization" in self.headers:
            return self.send(400, b"the CDN refuses an Authorization header", {}, "text/plain")
        full = os.path.join(self.hub.root, repo_path)
        if self.hub.by_sha.get(sha256) is None or not os.path.isfile(full):
            return self.send(404, b"no such object", {}, "text/plain")
        data = bytearray(open(full, "rb").read())
        if repo_path in self.hub.corrupt:
            data[len(data) // 2] ^= 0xFF
        start, status, headers = 0, 200, {"Accept-Ranges": "bytes"}
        rng = self.headers.get("Range")
        if rng:
            first = rng.removeprefix("bytes=").split("-")[0]
            start = int(first)
            if start >= len(data):
                return self.send(416, b"", {"Content-Range": "bytes */%d" % len(data)}, "text/plain")
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
        body = bytes(data[start:])
        cut = None
        with self.hub.lock:
            if repo_path in self.hub.cut_once:
                cut = self.hub.cut_once.pop(repo_path)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = body if cut is None else body[:cut]
        self.wfile.write(sent)
        self.wfile.flush()
        self.hub.log({"path": repo_path, "sha256": sha256, "start": start, "sent": len(sent), "cut": cut is not None})
        if cut is not None:  # the connection dies mid-file
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--gated", action="append")
    p.add_argument("--token", default="hf_test_token")
    p.add_argument("--cut-once", action="append")
    p.add_argument("--corrupt", action="append")
    p.add_argument("--page-size", type=int, default=1000)
    args = p.parse_args()
    Handler.hub = Hub(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
