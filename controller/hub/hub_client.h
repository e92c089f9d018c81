#pragma once
// The subset of the Hugging Face hub's HTTP API that `pull` uses, over libcurl (HTTPS):
//   GET  {endpoint}/api/models/ORG/NAME/tree/REV?recursive=true   the file listing (pages: Link rel="next")
//   HEAD {endpoint}/ORG/NAME/resolve/REV/PATH                     X-Repo-Commit, X-Linked-Etag (the
//        LFS SHA-256), X-Linked-Size, and a redirect to where the bytes are (a CDN)
//   GET  that location with Range: bytes=N-                       the bytes, resumed
// The token (HF_TOKEN) goes to the endpoint only, never to the CDN a redirect points at.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "controller/hub/repo_files.h"
#include "worker/common/error.h"

namespace clusterctl::hub {

// The hub cannot be reached (no network, DNS, refused, TLS, timeout): a copy pulled earlier may do.
class NetworkError : public Error {
 public:
  using Error::Error;
};

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT
  std::optional<std::string> token;                 // HF_TOKEN
};
// HF_ENDPOINT (trailing '/' removed) and the token of hub_token().
HubOptions hub_options_from_env();

struct FileMeta {
  std::string commit;        // X-Repo-Commit
  std::string sha256;        // X-Linked-Etag when it is an LFS SHA-256, else ""
  uint64_t size = 0;         // X-Linked-Size, else Content-Length
  std::string location;      // where to GET the bytes (the redirect's target, or the resolve URL)
  bool on_endpoint = false;  // `location` is the resolve URL itself (the token goes with it)
};

class HubClient {
 public:
  explicit HubClient(HubOptions options);
  ~HubClient();
  HubClient(const HubClient&) = delete;
  HubClient& operator=(const HubClient&) = delete;

  const HubOptions& options() const { return options_; }

  // Every file of the repo at `revision`, all pages.
  std::vector<RepoFile> list_files(const std::string& repo, const std::string& revision);
  FileMeta file_meta(const std::string& repo, const std::string& revision, const std::string& path);

  // Appends the bytes of `meta.location` from offset `have` on to the file `part` (opened for
  // append by the caller's path), passing each chunk to `on_bytes` (hashing, progress). Resumes
  // with Range after a cut connection (a few attempts); when the server ignores the range, calls
  // `restart` and starts from 0. Returns the bytes the file holds at the end (= meta.size).
  uint64_t download(const FileMeta& meta, const std::string& part, uint64_t have,
                    const std::function<void(const char*, size_t)>& on_bytes, const std::function<void()>& restart,
                    const std::string& what);

 private:
  struct Response;
  Response request(const std::string& url, bool head, bool with_token, size_t max_body);

  HubOptions options_;
  void* curl_;
};

// "%2F"-style escaping of a path inside a repo for a URL (slashes kept).
std::string url_path_escape(const std::string& path);

}  // namespace clusterctl::hub
