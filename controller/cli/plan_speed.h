#pragma once
// The speed part of `plan`: each rank's bytes and weights per token from the shard plan, the
// nodes' and link's speeds with where each came from, and the predicted tokens/s of every
// all-reduce algorithm and wire format, each saying which term limits it.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "controller/placement/throughput_model.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/hparams.h"
#include "worker/model/partition.h"
#include "worker/tools/engine_flags.h"

namespace clusterctl::cli {

// One rank's work per token: its shard's tensors (experts: all it holds, read k/E of them per
// token; the token embedding: one row, unless it doubles as the LM head).
placement::RankWork rank_work(const gguf::GgufFile& f, const model::HParams& hp, const model::Partition& part,
                              size_t node);

struct SpeedInputs {
  std::vector<placement::NodeSpeed> nodes;
  std::vector<std::string> node_from;  // where each node's figures come from
  std::optional<placement::LinkSpeed> link;
  std::string link_from;
  std::optional<placement::LinkSpeed> step_link;  // under an emulated link: the transport beneath it
  std::string missing;                            // why nothing is predicted ("" when predicted)
  std::string configured;                         // "one-shot/double" when the cluster file chose them
  int streams = 4, prefill_batch = 512;
  bool prompt_overlap = true;  // the link's overlap_prompt (placement::ClusterModel::prompt_overlap)
  // Speculative decoding (api.draft or --draft): "ngram" or a draft model's path ("" none), its
  // work per token on rank 0 (none for ngram), the share of drafted tokens kept that the user
  // measured (`bench --draft`, /metrics; < 0 not given) and the most drafted per round.
  std::string draft;
  std::optional<placement::RankWork> draft_work;
  double draft_kept_share = -1;
  int draft_max = 8;
  // The run's length (plan --tokens): by default as long as `bench -n` and `run -n` generate.
  int64_t draft_tokens = kGenerateTokens;
};

// The configured (else the fastest) layout's decode with speculation.
struct SpeculativePlan {
  placement::Prediction plain;
  placement::Speculation inputs;
  placement::SpeculativePrediction predicted;
};

struct SpeedPlan {
  placement::ClusterModel model;
  std::vector<placement::Prediction> predictions;  // fastest first; empty when inputs are missing
  std::optional<SpeculativePlan> speculative;      // when a draft and its kept share are given
};

// `layout`: replicated attention all-reduces once per layer instead of twice.
SpeedPlan plan_speed(std::vector<placement::RankWork> ranks, const model::HParams& hp, const SpeedInputs& in,
                     model::Layout layout = model::Layout::split_attention);
nlohmann::json speed_json(const SpeedPlan& p, const SpeedInputs& in, const std::vector<std::string>& node_names);
void print_speed_text(const SpeedPlan& p, const SpeedInputs& in, const std::vector<std::string>& node_names);

}  // namespace clusterctl::cli
