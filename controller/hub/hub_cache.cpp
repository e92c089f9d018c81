#include "controller/hub/hub_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "controller/config/cluster_config.h"
#include "controller/hub/text.h"
#include "worker/common/error.h"

namespace clusterctl::hub {
namespace fs = std::filesystem;
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string hf_home() {
  if (auto h = env("HF_HOME"); !h.empty()) return config::expand_home(h);
  const std::string xdg = env("XDG_CACHE_HOME");
  return (xdg.empty() ? config::expand_home("~/.cache") : xdg) + "/huggingface";
}

}  // namespace

std::string hub_cache_dir() {
  if (auto c = env("HF_HUB_CACHE"); !c.empty()) return config::expand_home(c);
  if (auto c = env("HUGGINGFACE_HUB_CACHE"); !c.empty()) return config::expand_home(c);
  return hf_home() + "/hub";
}

std::optional<std::string> hub_token() {
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
    if (auto t = trim_space(env(name)); !t.empty()) return t;
  std::string path = env("HF_TOKEN_PATH");
  path = path.empty() ? hf_home() + "/token" : config::expand_home(path);
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string token;
  std::getline(in, token);
  token = trim_space(token);
  if (token.empty() || token.size() > 4096) return std::nullopt;
  return token;
}

bool hub_offline() {
  const std::string v = ascii_lower(env("HF_HUB_OFFLINE"));
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

RepoCache::RepoCache(const std::string& cache_dir, const std::string& repo) : cache_(cache_dir) {
  folder_ = "models--" + repo;
  for (size_t at = folder_.find('/'); at != std::string::npos; at = folder_.find('/', at)) folder_.replace(at, 1, "--");
  dir_ = cache_ / folder_;
}

fs::path RepoCache::incomplete(const std::string& sha256) const { return dir_ / "blobs" / (sha256 + ".incomplete"); }

fs::path RepoCache::lock_file(const std::string& sha256) const {
  return cache_ / ".locks" / folder_ / (sha256 + ".lock");
}

fs::path RepoCache::snapshot_file(const std::string& commit, const std::string& path) const {
  return dir_ / "snapshots" / commit / path;
}

void RepoCache::link_snapshot(const std::string& commit, const std::string& path, const std::string& sha256) const {
  const fs::path link = snapshot_file(commit, path);
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  if (ec) throw Error("cannot create " + link.parent_path().string() + ": " + ec.message());
  const fs::path target = fs::relative(blob(sha256), link.parent_path(), ec);
  if (ec) throw Error("cannot link " + link.string() + ": " + ec.message());
  const fs::path tmp = link.string() + ".link-tmp";
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, link, ec);
  if (ec)
    throw Error("cannot link " + link.string() + " to its blob: " + ec.message() + "; check the permissions of " +
                dir_.string());
}

void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  const fs::path ref = dir_ / "refs" / revision;
  std::error_code ec;
  fs::create_directories(ref.parent_path(), ec);
  const fs::path tmp = ref.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << commit;
    if (!out) throw Error("cannot write " + tmp.string() + ": check the permissions of " + dir_.string());
  }
  fs::rename(tmp, ref, ec);
  if (ec) throw Error("cannot write " + ref.string() + ": " + ec.message());
}

std::optional<std::string> RepoCache::read_ref(const std::string& revision) const {
  std::ifstream in(dir_ / "refs" / revision);
  std::string commit;
  if (!in || !std::getline(in, commit)) return std::nullopt;
  commit = trim_space(commit);
  if (commit.empty() || commit.size() > 128 || commit.find('/') != std::string::npos || commit.starts_with("."))
    return std::nullopt;
  return commit;
}

std::vector<RepoFile> RepoCache::snapshot_files(const std::string& commit) const {
  std::vector<RepoFile> out;
  const fs::path root = dir_ / "snapshots" / commit;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_symlink(ec) && !it->is_regular_file(ec)) continue;
    std::error_code e2;
    const fs::path target = fs::canonical(it->path(), e2);
    if (e2 || !fs::is_regular_file(target, e2)) continue;  // a link whose blob is gone
    const std::string name = target.filename().string();
    RepoFile f{it->path().lexically_relative(root).generic_string(), fs::file_size(target, e2),
               is_sha256_hex(name) ? name : ""};
    if (!e2) out.push_back(std::move(f));
  }
  return out;
}

FileLock::FileLock(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error("cannot create the lock file " + path.string() + ": " + std::strerror(errno) +
                "; check the permissions of the hub cache");
  while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace clusterctl::hub
