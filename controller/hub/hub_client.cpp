#include "controller/hub/hub_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "controller/hub/hub_cache.h"
#include "controller/hub/text.h"

namespace clusterctl::hub {
namespace {

constexpr size_t kMaxJsonBytes = 64u << 20;  // a listing page or an error body
constexpr int kMaxListingPages = 10000;
constexpr int kMaxRelativeRedirects = 5;
constexpr int kAttemptsWithoutProgress = 5;

std::string unquote(std::string s) {
  if (s.starts_with("W/")) s = s.substr(2);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::once_flag g_curl_init;

// The URL of the rel="next" page in a Link header, or "".
std::string next_link(const std::string& link) {
  size_t at = 0;
  while (at < link.size()) {
    const size_t open = link.find('<', at), close = link.find('>', open == std::string::npos ? at : open);
    if (open == std::string::npos || close == std::string::npos) return "";
    const size_t end = link.find(',', close);
    const std::string params = link.substr(close + 1, end == std::string::npos ? std::string::npos : end - close - 1);
    if (params.find("rel=\"next\"") != std::string::npos || params.find("rel=next") != std::string::npos)
      return link.substr(open + 1, close - open - 1);
    if (end == std::string::npos) return "";
    at = end + 1;
  }
  return "";
}

}  // namespace

struct HubClient::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, of the last response
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

std::string url_path_escape(const std::string& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                       c == '_' || c == '.' || c == '~' || c == '/';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

HubOptions hub_options_from_env() {
  HubOptions o;
  if (const char* e = std::getenv("HF_ENDPOINT"); e && *e) o.endpoint = e;
  while (o.endpoint.ends_with("/")) o.endpoint.pop_back();
  o.token = hub_token();
  return o;
}

HubClient::HubClient(HubOptions options) : options_(std::move(options)) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
  if (!curl_) throw Error("cannot start libcurl");
}

HubClient::~HubClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

namespace {

struct Transfer {
  std::map<std::string, std::string>* headers;
  std::string* body;
  size_t max_body;
  bool too_big = false;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) t->headers->clear();  // a new response (after a redirect)
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos)
    (*t->headers)[ascii_lower(std::string(line.substr(0, colon)))] = trim_space(line.substr(colon + 1));
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->body->size() + size * n > t->max_body) {
    t->too_big = true;
    return 0;
  }
  t->body->append(data, size * n);
  return size * n;
}

void common_options(CURL* c, const std::string& url, curl_slist* headers) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "clusterctl; hf_hub-compatible");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  // A connection that moves under 1 byte/s for 60 s is dead (a silent network cut).
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85: protocols by name
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, long(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, long(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

bool network_failure(CURLcode rc) {
  return rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_COULDNT_CONNECT ||
         rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
         rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
}

// The hub's own words for an error: X-Error-Message, or the body's {"error": "..."}.
std::string hub_words(const std::string& message_header, const std::string& body) {
  if (!message_header.empty()) return message_header;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  return "";
}

}  // namespace

HubClient::Response HubClient::request(const std::string& url, bool head, bool with_token, size_t max_body) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  Response r;
  curl_slist* headers = nullptr;
  if (with_token && options_.token)
    headers = curl_slist_append(headers, ("Authorization: Bearer " + *options_.token).c_str());
  common_options(c, url, headers);
  Transfer t{&r.headers, &r.body, max_body};
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (head) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (t.too_big)
    throw Error("the hub's answer to " + url + " is larger than " + std::to_string(max_body >> 20) + " MiB");
  if (rc != CURLE_OK) {
    const std::string why = curl_easy_strerror(rc);
    if (network_failure(rc))
      throw NetworkError("cannot reach the Hugging Face hub at " + options_.endpoint + " (" + why +
                         "): check the network connection, or set HF_ENDPOINT to a mirror that can be reached");
    throw Error("request to " + url + " failed: " + why);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

namespace {

// One message naming the cause and the fix for an HTTP error of the hub.
[[noreturn]] void throw_hub_error(long status, const std::string& code, const std::string& words, const HubOptions& o,
                                  const std::string& repo, const std::string& file) {
  const std::string page = o.endpoint + "/" + repo;
  const std::string said = words.empty() ? "" : " (the hub says: " + words + ")";
  const std::string http = "HTTP " + std::to_string(status);
  const bool gated = code == "GatedRepo" || ascii_lower(words).find("gated") != std::string::npos ||
                     ascii_lower(words).find("restricted") != std::string::npos;
  if (gated && !o.token)
    throw Error(repo + " is a gated model (" + http +
                "): its files need a Hugging Face token. Accept the model's "
                "licence at " +
                page + ", create a token at " + o.endpoint +
                "/settings/tokens and set HF_TOKEN to it"
                " (or log in with `hf auth login`), then pull again" +
                said);
  if (gated)
    throw Error(repo + " is a gated model and the token in HF_TOKEN has no access to it (" + http +
                "): accept the model's licence at " + page + " with the account of that token, then pull again" + said);
  if (code == "RepoNotFound" || (file.empty() && (status == 404 || status == 401)))
    throw Error("there is no model " + repo + " on " + o.endpoint + " (" + http +
                "): check the name (ORG/NAME as on "
                "the model's page)" +
                (o.token ? std::string() : "; a private repo needs HF_TOKEN") + said);
  if (code == "RevisionNotFound") throw Error(repo + " has no branch 'main' (" + http + ")" + said);
  if (status == 404 || code == "EntryNotFound")
    throw Error(repo + " has no file " + file + " (" + http + "): see its files at " + page + "/tree/main" + said);
  if (status == 401 && o.token)
    throw Error("the hub refused the token in HF_TOKEN (" + http + "): it is invalid or expired; create a new one at " +
                o.endpoint + "/settings/tokens" + said);
  if (status == 401 || status == 403)
    throw Error(repo + " needs a Hugging Face token (" + http + "): set HF_TOKEN (create one at " + o.endpoint +
                "/settings/tokens)" + said);
  if (status == 429)
    throw Error("the hub limits the rate of requests (" + http + "): wait a minute and pull again" + said);
  throw Error("the hub answered " + http + " for " + repo + (file.empty() ? "" : "/" + file) + ": try again later" +
              said);
}

}  // namespace

std::vector<RepoFile> HubClient::list_files(const std::string& repo, const std::string& revision) {
  std::vector<RepoFile> files;
  std::string url =
      options_.endpoint + "/api/models/" + repo + "/tree/" + url_path_escape(revision) + "?recursive=true";
  for (int page = 0; !url.empty(); ++page) {
    if (page == kMaxListingPages) throw Error("the hub's file listing of " + repo + " has too many pages");
    // Each page's link is on the endpoint (the token goes with it); anything else is not followed.
    if (!url.starts_with(options_.endpoint + "/"))
      throw Error("the hub's file listing of " + repo + " points at another server (" + url + ")");
    Response r = request(url, false, true, kMaxJsonBytes);
    if (r.status != 200)
      throw_hub_error(r.status, r.header("x-error-code"), hub_words(r.header("x-error-message"), r.body), options_,
                      repo, "");
    auto page_files = parse_tree_page(r.body);
    files.insert(files.end(), page_files.begin(), page_files.end());
    url = next_link(r.header("link"));
    if (url.starts_with("/")) url = options_.endpoint + url;
  }
  return files;
}

FileMeta HubClient::file_meta(const std::string& repo, const std::string& revision, const std::string& path) {
  const std::string resolve =
      options_.endpoint + "/" + repo + "/resolve/" + url_path_escape(revision) + "/" + url_path_escape(path);
  std::string url = resolve;
  for (int hop = 0;; ++hop) {
    Response r = request(url, true, true, kMaxJsonBytes);
    const std::string location = r.header("location");
    // A relative redirect stays on the hub (a renamed repo): follow it for the metadata.
    if (r.status >= 300 && r.status < 400 && location.starts_with("/") && hop < kMaxRelativeRedirects) {
      url = options_.endpoint + location;
      continue;
    }
    if (r.status >= 400)
      throw_hub_error(r.status, r.header("x-error-code"), r.header("x-error-message"), options_, repo, path);
    FileMeta m;
    m.commit = r.header("x-repo-commit");
    if (m.commit.empty())
      throw Error(options_.endpoint + " answered for " + repo + "/" + path +
                  " without X-Repo-Commit: it does not "
                  "seem to be a Hugging Face hub; check HF_ENDPOINT");
    const std::string etag = ascii_lower(unquote(r.header("x-linked-etag")));
    if (is_sha256_hex(etag)) m.sha256 = etag;
    const std::string size = r.header("x-linked-size").empty() ? r.header("content-length") : r.header("x-linked-size");
    m.size = std::strtoull(size.c_str(), nullptr, 10);
    if (r.status >= 300 && r.status < 400 && !location.empty()) {
      m.location = location;
    } else {
      m.location = url;
      m.on_endpoint = true;
    }
    return m;
  }
}

namespace {

struct Download {
  std::FILE* file;
  uint64_t have;
  uint64_t limit;
  long first_status = 0;
  bool started = false;
  bool overflow = false;
  bool write_failed = false;
  CURL* curl;
  const std::function<void(const char*, size_t)>* on_bytes;
  const std::function<void()>* restart;
  std::string error_body;
};

size_t on_download(char* data, size_t size, size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  const size_t bytes = size * n;
  if (d->first_status == 0) curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &d->first_status);
  if (d->first_status != 200 && d->first_status != 206) {
    if (d->error_body.size() < 4096) d->error_body.append(data, std::min<size_t>(bytes, 4096));
    return bytes;
  }
  if (d->first_status == 200 && d->have > 0 && !d->started) {
    // The server ignored the range: its answer starts at byte 0.
    std::fflush(d->file);
    if (::ftruncate(fileno(d->file), 0) != 0) {
      d->write_failed = true;
      return 0;
    }
    (*d->restart)();
    d->have = 0;
  }
  d->started = true;
  if (d->have + bytes > d->limit) {
    d->overflow = true;
    return 0;
  }
  if (std::fwrite(data, 1, bytes, d->file) != bytes) {
    d->write_failed = true;
    return 0;
  }
  (*d->on_bytes)(data, bytes);
  d->have += bytes;
  return bytes;
}

}  // namespace

uint64_t HubClient::download(const FileMeta& meta, const std::string& part, uint64_t have,
                             const std::function<void(const char*, size_t)>& on_bytes,
                             const std::function<void()>& restart, const std::string& what) {
  CURL* c = static_cast<CURL*>(curl_);
  int attempts = 0;
  while (have < meta.size) {
    std::FILE* f = std::fopen(part.c_str(), "ab");
    if (!f) throw Error("cannot write " + part + ": check the permissions and free space of the hub cache");
    curl_easy_reset(c);
    curl_slist* headers = nullptr;
    if (meta.on_endpoint && options_.token)
      headers = curl_slist_append(headers, ("Authorization: Bearer " + *options_.token).c_str());
    common_options(c, meta.location, headers);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    const std::string range = std::to_string(have) + "-";
    if (have > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    Download d{f, have, meta.size, 0, false, false, false, c, &on_bytes, &restart, ""};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_download);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
    const uint64_t before = have;
    const CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    const bool closed_ok = std::fclose(f) == 0;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    have = d.have;
    if (d.write_failed || !closed_ok)
      throw Error("cannot write " + part + ": the disk is full or the hub cache is not writable");
    if (d.overflow)
      throw Error("the server sent more than the " + std::to_string(meta.size) + " bytes of " + what +
                  "; the download was stopped");
    if (status == 416 && have > 0) {
      // The range is past what the server has: start again from byte 0.
      std::error_code ec;
      std::filesystem::resize_file(part, 0, ec);
      if (ec) throw Error("cannot truncate " + part + ": " + ec.message());
      restart();
      have = 0;
      continue;
    }
    if (rc == CURLE_OK && status != 200 && status != 206)
      throw Error("downloading " + what + " failed: HTTP " + std::to_string(status) +
                  (status == 403 || status == 401 ? " (the download link may have expired: pull again)" : "") +
                  (d.error_body.empty() ? "" : " (" + trim_space(d.error_body.substr(0, 300)) + ")"));
    if (rc == CURLE_OK && have == meta.size) break;
    // A cut connection (or a short answer): resume from what the file holds.
    attempts = have > before ? 1 : attempts + 1;
    if (attempts > kAttemptsWithoutProgress) {
      const std::string why = rc == CURLE_OK ? "the answer ended early" : curl_easy_strerror(rc);
      const std::string msg = "downloading " + what + " stopped at " + std::to_string(have) + " of " +
                              std::to_string(meta.size) + " bytes (" + why +
                              "): pull again to resume from there (the bytes received are kept)";
      if (network_failure(rc)) throw NetworkError(msg);
      throw Error(msg);
    }
    std::fprintf(stderr, "\nconnection for %s ended at %llu of %llu bytes (%s); resuming\n", what.c_str(),
                 static_cast<unsigned long long>(have), static_cast<unsigned long long>(meta.size),
                 rc == CURLE_OK ? "short answer" : curl_easy_strerror(rc));
    std::this_thread::sleep_for(std::chrono::milliseconds(300 * attempts));
  }
  return have;
}

}  // namespace clusterctl::hub
