#include "controller/placement/shard_cache.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/model.h"
#include "worker/model/shard_file.h"
#include "worker/model/shard_plan.h"

namespace clusterctl::placement {
namespace fs = std::filesystem;

std::string controller_cache_dir() {
  if (const char* d = std::getenv("CLUSTERCTL_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "clusterctl").string();
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : "/tmp") / ".cache/clusterctl").string();
}

namespace {

std::string split_key(const std::vector<double>& split) {
  if (split.empty()) return "even";
  std::string s = model::format_split(split);
  for (char& ch : s)
    if (ch == ',') ch = '_';
  return s;
}

// The shard files of a finished cut, in rank order, or empty when the folder is not one.
std::vector<std::string> complete_cut(const fs::path& dir, int ranks) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  try {
    for (int r = 0; r < ranks; ++r) files.push_back(model::find_shard_in_dir(dir.string(), r, ranks));
  } catch (const Error&) {
    return {};
  }
  return files;
}

// Cuts write into "<cut>/.tmp-<key>-<pid>". One whose process no longer runs was killed before it
// could remove its folder (SIGKILL, a restart): it would hold up to a model's size for good.
void remove_abandoned_cuts(const fs::path& root) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    const auto dash = name.rfind('-');
    if (!name.starts_with(".tmp-") || dash == std::string::npos) continue;
    const std::string pid_text = name.substr(dash + 1);
    if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code rm;
    fs::remove_all(e.path(), rm);
  }
}

}  // namespace

ShardSet find_cut(const gguf::GgufFile& file, int ranks, const std::vector<double>& split, model::Layout layout) {
  ShardSet set;
  set.key = fs::path(file.path()).stem().string() + "-" + model::model_fingerprint(file).substr(0, 16) + "-" +
            std::to_string(ranks) + "r-" + split_key(split);
  // A one-rank cut is the whole model either way.
  if (layout == model::Layout::replicated_attention && ranks > 1)
    set.key += std::string("-") + model::layout_name(layout);
  set.dir = (fs::path(controller_cache_dir()) / "cut" / set.key).string();
  set.files = complete_cut(set.dir, ranks);
  set.reused = !set.files.empty();
  for (const auto& f : set.files) set.total_bytes += fs::file_size(f);
  return set;
}

ShardSet cut_or_reuse(const std::string& model_path, int ranks, const std::vector<double>& split, model::Layout layout,
                      const std::atomic<int>* stop) {
  gguf::GgufFile file(model_path);
  ShardSet set = find_cut(file, ranks, split, layout);
  const fs::path root = fs::path(controller_cache_dir()) / "cut";
  const fs::path dir = set.dir;
  if (!set.reused) {
    const model::HParams hp = model::Model::read_hparams(file);
    model::ShardPlan plan;
    try {
      plan = model::plan_shards(hp, model::SplitUnits::from_model(file, hp), ranks, split, layout);
    } catch (const Error& e) {
      throw ImpossibleSplit(e.what());
    }
    remove_abandoned_cuts(root);
    const fs::path tmp = root / (".tmp-" + set.key + "-" + std::to_string(getpid()));
    std::error_code ec;
    fs::remove_all(tmp, ec);
    try {
      model::write_shards(file, hp, plan, split.empty() ? "" : model::format_split(split), tmp.string(), stop);
    } catch (...) {
      fs::remove_all(tmp, ec);
      throw;
    }
    fs::remove_all(dir, ec);  // a broken earlier cut
    fs::rename(tmp, dir, ec);
    if (ec)
      throw Error("cannot move the cut shards into " + dir.string() + ": " + ec.message() +
                  " (check free space and permissions, or set CLUSTERCTL_CACHE_DIR)");
    set.files = complete_cut(dir, ranks);
    if (set.files.empty())
      throw Error("cutting " + model_path + " into " + std::to_string(ranks) + " shards in " + dir.string() +
                  " left an incomplete set; delete the folder and run again");
    for (const auto& f : set.files) set.total_bytes += fs::file_size(f);
  }
  return set;
}

}  // namespace clusterctl::placement
