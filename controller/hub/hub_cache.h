#pragma once
// The Hugging Face hub cache, laid out as huggingface_hub lays it out so that other tools
// (huggingface-cli, transformers, llama.cpp's -hf) share the downloads:
//   $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
//     models--ORG--NAME/blobs/<sha256>                  the file's bytes
//     models--ORG--NAME/blobs/<sha256>.incomplete       a download in progress (resumed)
//     models--ORG--NAME/snapshots/<commit>/<path>       relative symlink to ../../blobs/<sha256>
//     models--ORG--NAME/refs/main                       the commit main pointed at
//   $HF_HUB_CACHE/.locks/models--ORG--NAME/<sha256>.lock  held while a blob is written
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "controller/hub/repo_files.h"

namespace clusterctl::hub {

// $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
std::string hub_cache_dir();
// HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token
// (written by `hf auth login`); nullopt when none.
std::optional<std::string> hub_token();
// HF_HUB_OFFLINE set to 1/true/yes/on.
bool hub_offline();

class RepoCache {
 public:
  RepoCache(const std::string& cache_dir, const std::string& repo);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path blob(const std::string& sha256) const { return dir_ / "blobs" / sha256; }
  std::filesystem::path incomplete(const std::string& sha256) const;
  std::filesystem::path lock_file(const std::string& sha256) const;
  std::filesystem::path snapshot_file(const std::string& commit, const std::string& path) const;

  // snapshots/<commit>/<path> -> ../../blobs/<sha256> (relative, as huggingface_hub makes it).
  void link_snapshot(const std::string& commit, const std::string& path, const std::string& sha256) const;
  // refs/<revision> = commit, written to a temporary name and renamed.
  void write_ref(const std::string& revision, const std::string& commit) const;
  std::optional<std::string> read_ref(const std::string& revision) const;
  // The files of a snapshot whose blobs are present, with their sizes and SHA-256 (the blob's name).
  std::vector<RepoFile> snapshot_files(const std::string& commit) const;

 private:
  std::filesystem::path cache_;
  std::filesystem::path dir_;
  std::string folder_;  // models--ORG--NAME
};

// An exclusive lock on a file (flock), held until destroyed; blocks while another process holds it.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace clusterctl::hub
