#pragma once
// What every rank of a tensor-parallel job agrees on before computing: that all ranks set up
// (parsed their options, opened their model file or shard, cut their part) and that they hold
// parts of the same model cut the same way. Errors found here end the job on every rank before
// any compute, with one message listing each failing rank, its host and the cause.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/partition.h"
#include "worker/model/shard_file.h"

namespace clusterctl::parallel {

// Thrown on every rank when some rank failed a setup step; what() is the combined message
// (complete on rank 0, which prints it).
class JobRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every rank calls this with its own error ("" when fine). Returns when all ranks are fine;
// otherwise throws JobRefused on every rank.
void agree(collectives::Communicator& comm, const std::string& host, const std::string& error);

// This rank's model file and every rank's part of it.
struct RankModel {
  std::unique_ptr<gguf::GgufFile> file;
  model::ShardPlan plan;
  std::optional<model::ShardInfo> shard;  // set when the file is a per-rank shard
  std::string identity;                   // what all ranks must share: fingerprint, cut
};

// `model_path`: a whole GGUF (each rank maps only its slices of it), a directory of shards cut
// by `clusterctl shard`, or one shard file (world size 1, or the rank's own shard).
// `split`: the --split weights (empty: even); `layout`: --layout (none: a shard's own, else split
// attention). Throws clusterctl::Error, also for shards cut with another layout than `layout`.
RankModel open_rank_model(const std::string& model_path, int rank, int world_size, const std::vector<double>& split,
                          std::optional<model::Layout> layout = std::nullopt);

// Checks that every rank's RankModel::identity is the same; the message names the ranks that differ.
void agree_same_model(collectives::Communicator& comm, const std::string& host, const RankModel& m);

// A thread that ends this process when the launcher (mpirun/orted, the parent) disappears, so
// no rank is left running after the job is gone.
void start_orphan_watchdog(int rank, const std::string& host);

}  // namespace clusterctl::parallel
