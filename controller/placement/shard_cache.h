#pragma once
// The controller's own cache of cut shards: a model is cut into per-rank shard files once per
// (model content, rank count, split) and reused by every later `up`. It lives on this machine
// only (never a node's cache_dir), under $CLUSTERCTL_CACHE_DIR, else $XDG_CACHE_HOME/clusterctl,
// else ~/.cache/clusterctl, in cut/<key>/.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/partition.h"

namespace clusterctl::placement {

struct ShardSet {
  std::string key;  // "<model stem>-<fingerprint>-<N>r-<split>[-replicated-attention]": names the cut everywhere
  std::string dir;  // local folder holding every rank's shard
  std::vector<std::string> files;  // local path of each rank's shard, in rank order
  uint64_t total_bytes = 0;
  bool reused = false;  // found in the cache, not cut now
};

std::string controller_cache_dir();

// The split cannot be cut from this model (a rank would get less than one unit, more ranks than
// heads, ...): a problem of the cluster file's weights or ranks, not of the model file.
class ImpossibleSplit : public Error {
 public:
  using Error::Error;
};

// Where the cut of `file` into `ranks` shards with `split` lives in the cache, and its files when
// it is complete there (`reused`); cuts nothing.
ShardSet find_cut(const gguf::GgufFile& file, int ranks, const std::vector<double>& split,
                  model::Layout layout = model::Layout::split_attention);

// Cuts `model_path` into `ranks` shards with `split` (one weight per rank; empty = even) and
// `layout` (replicated attention: every shard holds the whole attention weights), or
// finds that cut in the cache. Cutting writes into a temp folder renamed into place, so an
// interrupted cut is never mistaken for a finished one; a cut that fails or is stopped (`stop`
// turned non-zero: model::ShardingStopped) removes its temp folder, and the temp folders of cuts
// whose process is gone (killed, the machine restarted) are removed before cutting. Throws
// ImpossibleSplit, or clusterctl::Error for an unreadable model or an unwritable cache.
ShardSet cut_or_reuse(const std::string& model_path, int ranks, const std::vector<double>& split,
                      model::Layout layout = model::Layout::split_attention, const std::atomic<int>* stop = nullptr);

}  // namespace clusterctl::placement
