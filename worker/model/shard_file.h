#pragma once
// Per-rank shard files: a valid GGUF holding only one rank's slices of a model (its query/KV
// heads of attn_q/k/v and their columns of attn_output, its FFN rows of gate/up and columns of
// down, its vocabulary rows of the LM head) plus the replicated tensors (embeddings, norms).
// The metadata keeps the source model's keys unchanged (so hyperparameters are the whole
// model's) and adds clusterctl.shard.*: rank, world size, split, every rank's ranges and a
// fingerprint of the source, so ranks can check they hold parts of the same cut of the same model.
// A replicated-attention cut (clusterctl.shard.layout) gives every shard the whole attention weights.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/gguf/gguf_writer.h"
#include "worker/model/hparams.h"
#include "worker/model/partition.h"

namespace clusterctl::model {

struct ShardInfo {
  int rank = 0;
  int world_size = 1;
  std::string split;        // the weights asked for, e.g. "2,1,1" ("" = even)
  std::string fingerprint;  // of the source model
  std::string source;       // the source file's name, for messages
  ShardPlan plan;           // every rank's ranges
};

// The shard metadata of `f`, or nullopt for an ordinary (whole) model file. Throws
// clusterctl::Error when the keys are present but inconsistent.
std::optional<ShardInfo> read_shard_info(const gguf::GgufFile& f);

// The slice of the model `f` stores: its rank's Partition for a shard, everything otherwise.
// Tensor rows/columns in the file are relative to this slice.
Partition stored_partition(const gguf::GgufFile& f, const HParams& hp);

// Identifies a model file's content: a hash of its header (metadata and tensor layout) and of
// the first 4 KiB of every tensor's data (random-weight models share headers).
std::string model_fingerprint(const gguf::GgufFile& f);

// "<stem>.rank<K>of<N>.gguf"
std::string shard_file_name(const std::string& source_path, int rank, int world_size);

// One tensor of a rank's shard: its slice of the source tensor (the whole tensor when replicated).
struct ShardTensor {
  std::string name;
  gguf::GgmlType type;
  std::vector<uint64_t> shape;
  uint64_t bytes = 0;
  gguf::TensorSource source;  // reads the slice from `src`'s map, which must outlive it
};

// The tensors of the shard of `src` that holds Partition `p`, in the source's order.
std::vector<ShardTensor> shard_tensors(const gguf::GgufFile& src, const HParams& hp, const Partition& p);

// Writes one shard per part of `plan` into `dir` (created if missing). Returns the paths. When
// `stop` turns non-zero (a signal noted) the writing stops at the next piece of a tensor with
// ShardingStopped, leaving what it wrote for the caller to remove.
std::vector<std::string> write_shards(const gguf::GgufFile& src, const HParams& hp, const ShardPlan& plan,
                                      const std::string& split, const std::string& dir,
                                      const std::atomic<int>* stop = nullptr);

class ShardingStopped : public Error {
 public:
  using Error::Error;
};

// The shard for `rank` of `world_size` ranks in directory `dir` (exactly one file named
// *.rank<K>of<N>.gguf). Throws clusterctl::Error naming what is missing or ambiguous.
std::string find_shard_in_dir(const std::string& dir, int rank, int world_size);

}  // namespace clusterctl::model
