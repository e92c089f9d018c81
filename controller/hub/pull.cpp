#include "controller/hub/pull.h"

#include <filesystem>
#include <fstream>

#include "controller/hub/hub_cache.h"
#include "controller/hub/hub_client.h"
#include "controller/placement/copy_progress.h"
#include "controller/ssh/sha256.h"
#include "worker/common/error.h"
#include "worker/common/human_bytes.h"

namespace clusterctl::hub {
namespace fs = std::filesystem;
namespace {

// The SHA-256 of the first `bytes` of a file (a part downloaded earlier, to be continued).
void hash_prefix(const fs::path& path, uint64_t bytes, ssh::Sha256& hasher) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (bytes > 0 && in) {
    in.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(bytes, buf.size())));
    const auto got = static_cast<uint64_t>(in.gcount());
    hasher.update(buf.data(), got);
    bytes -= got;
  }
  if (bytes != 0) throw Error("cannot read " + path.string() + " to resume its download");
}

PulledModel from_snapshot(const RepoCache& cache, const ModelRef& ref, const std::string& commit,
                          const std::vector<RepoFile>& files) {
  PulledModel m;
  m.ref = ref;
  m.commit = commit;
  for (const auto& f : files) {
    m.files.push_back(cache.snapshot_file(commit, f.path).string());
    m.bytes += f.size;
  }
  m.path = m.files.front();
  return m;
}

struct FileToPull {
  RepoFile file;
  FileMeta meta;
};

// One file into blobs/<sha256>: already there, or downloaded (resumed) and checked.
void pull_file(HubClient& client, const RepoCache& cache, const FileToPull& f, placement::CopyProgress& progress,
               PulledModel& m) {
  const std::string& sha = f.file.sha256;
  FileLock lock(cache.lock_file(sha));
  const fs::path blob = cache.blob(sha);
  std::error_code ec;
  if (fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == f.file.size) {
    progress.add(f.file.size);
    m.already += f.file.size;
    return;
  }
  fs::create_directories(blob.parent_path(), ec);
  if (ec) throw Error("cannot create " + blob.parent_path().string() + ": " + ec.message());
  const fs::path part = cache.incomplete(sha);
  uint64_t have = fs::is_regular_file(part, ec) ? fs::file_size(part, ec) : 0;
  if (have > f.file.size) {
    fs::resize_file(part, 0, ec);
    have = 0;
  }
  ssh::Sha256 hasher;
  hash_prefix(part, have, hasher);
  progress.add(have);
  m.already += have;
  const std::string what = m.ref.repo + "/" + f.file.path;
  FileMeta meta = f.meta;
  meta.size = f.file.size;
  client.download(
      meta, part.string(), have,
      [&](const char* p, size_t n) {
        hasher.update(p, n);
        progress.add(n);
        m.received += n;
      },
      [&] { hasher = ssh::Sha256(); }, what);
  const std::string got = hasher.hex_digest();
  if (got != sha) {
    fs::remove(part, ec);
    throw Error(what + " failed its SHA-256 check: the hub says " + sha + ", the bytes received hash to " + got +
                "; the bad download was deleted. Pull again; if it fails again, a proxy or the mirror in HF_ENDPOINT "
                "is changing the file");
  }
  fs::rename(part, blob, ec);
  if (ec) throw Error("cannot move " + part.string() + " to " + blob.string() + ": " + ec.message());
}

}  // namespace

std::optional<PulledModel> cached_model(const ModelRef& ref) {
  RepoCache cache(hub_cache_dir(), ref.repo);
  const auto commit = cache.read_ref("main");
  if (!commit) return std::nullopt;
  const auto files = cache.snapshot_files(*commit);
  try {
    auto choice = choose_model_files(files, ref);
    PulledModel m = from_snapshot(cache, ref, *commit, choice.files);
    m.already = m.bytes;
    m.from_cache = true;
    return m;
  } catch (const Error&) {
    return std::nullopt;
  }
}

PulledModel pull_model(const ModelRef& ref, std::FILE* out) {
  const std::string cache_dir = hub_cache_dir();
  if (hub_offline()) {
    if (auto m = cached_model(ref)) return *m;
    throw Error("HF_HUB_OFFLINE is set and " + ref.str() + " is not in the hub cache " + cache_dir +
                ": unset HF_HUB_OFFLINE to pull it");
  }
  HubClient client(hub_options_from_env());
  std::vector<RepoFile> listing;
  try {
    listing = client.list_files(ref.repo, "main");
  } catch (const NetworkError& e) {
    if (auto m = cached_model(ref)) {
      std::fprintf(out, "warning: %s\nusing the copy of %s pulled earlier (commit %s)\n", e.what(), ref.str().c_str(),
                   m->commit.c_str());
      return *m;
    }
    throw NetworkError(std::string(e.what()) + "; " + ref.str() + " is not in the hub cache " + cache_dir + " either");
  }
  const ModelChoice choice = choose_model_files(listing, ref);
  // The first file's metadata names the commit main is at; the others are asked at that commit,
  // so that every part comes from the same one.
  std::vector<FileToPull> todo;
  std::string commit;
  for (const auto& f : choice.files) {
    FileMeta meta = client.file_meta(ref.repo, commit.empty() ? "main" : commit, f.path);
    if (commit.empty()) commit = meta.commit;
    RepoFile file = f;
    if (!file.sha256.empty() && !meta.sha256.empty() && file.sha256 != meta.sha256)
      throw Error("the hub's file listing and its metadata disagree on the SHA-256 of " + ref.repo + "/" + f.path +
                  " (" + file.sha256 + " vs " + meta.sha256 + "): the repo changed while pulling; pull again");
    if (file.sha256.empty()) file.sha256 = meta.sha256;
    if (file.sha256.empty())
      throw Error(ref.repo + "/" + f.path +
                  " has no SHA-256 in the hub's metadata (it is not stored in LFS), so its "
                  "download cannot be verified: clusterctl pulls GGUF files stored in LFS only");
    todo.push_back({file, meta});
  }
  RepoCache cache(cache_dir, ref.repo);
  std::vector<RepoFile> files;
  for (const auto& t : todo) files.push_back(t.file);
  PulledModel m = from_snapshot(cache, ref, commit, files);
  {
    placement::CopyProgress progress(m.bytes, out, "pulling " + ref.str());
    for (const auto& t : todo) {
      pull_file(client, cache, t, progress, m);
      cache.link_snapshot(commit, t.file.path, t.file.sha256);
    }
  }
  cache.write_ref("main", commit);
  return m;
}

std::string pull_if_named(const std::string& model_arg, std::FILE* out) {
  const auto ref = model_ref_to_pull(model_arg);
  if (!ref) return model_arg;
  PulledModel m = pull_model(*ref, out);
  if (m.received > 0)
    std::fprintf(out, "pulled %s: %s (%s downloaded, SHA-256 verified)\n", ref->str().c_str(),
                 human_bytes(m.bytes).c_str(), human_bytes(m.received).c_str());
  return m.path;
}

}  // namespace clusterctl::hub
