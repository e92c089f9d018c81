#pragma once
// The engine options `run`, `perplexity` and `bench` share (--threads, --ctx, --batch, --kv-type, --isa).
#include "collectives/session.h"
#include "worker/model/engine.h"
#include "worker/sampling/sampler.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {

void add_engine_flags(po::options_description& opts);
// Throws clusterctl::Error naming a bad value.
model::EngineOptions engine_options(const po::variables_map& vm);

// A multi-rank job's own flag (clusterctl-worker): --step-timeout, the seconds one collective
// call of a step may wait for the other ranks, and a rank for rank 0's next step
// (Communicator::set_stall_timeout).
void add_job_flags(po::options_description& opts);
// Throws clusterctl::Error naming a bad value.
double step_timeout_seconds(const po::variables_map& vm);
// A serving job's heartbeat over the cluster link (parallel::Heartbeat): --heartbeat-link CIDR
// (none: no heartbeat), --heartbeat-interval and --node-timeout in seconds.
struct HeartbeatFlags {
  std::string link_cidr;
  double interval_s = 1;
  double timeout_s = 6;
};
// Throws clusterctl::Error naming a bad value.
HeartbeatFlags heartbeat_flags(const po::variables_map& vm);
// --layout split-attention | replicated-attention (model::Layout): a multi-rank job's layout;
// absent: a shard directory's own, else split-attention.
void add_layout_flag(po::options_description& opts);
// Throws clusterctl::Error naming a bad value.
std::optional<model::Layout> layout_flag(const po::variables_map& vm);
// The job flags that shape its communicator (--allreduce, --transport, --wire-format,
// --allreduce-table, --emulate-link), read from argv before the communicator exists; the communicator checks them.
collectives::CommOptions comm_options(int argc, char** argv);

}  // namespace clusterctl::cli

namespace clusterctl::cli {

// The generation options `run` and `clusterctl-worker` share: -n, --temp, --top-k, --top-p,
// --min-p, --repeat-penalty, --presence-penalty, --repeat-last-n, --seed, --stop, --json, and
// the speculative decoding flags (add_draft_flags).
void add_generation_flags(po::options_description& opts);
// -n's default, the tokens a run generates: also `clusterctl bench --draft`'s, and the run plan's.
inline constexpr int64_t kGenerateTokens = 128;

// Speculative decoding: --draft (ngram or a draft model's GGUF), --draft-max, --draft-min.
void add_draft_flags(po::options_description& opts);
struct DraftFlags {
  std::string spec;  // empty: no speculation
  int min = 0, max = 8;
  bool enabled() const { return !spec.empty(); }
};
// Throws clusterctl::Error naming a bad value.
DraftFlags draft_flags(const po::variables_map& vm);
// Throws clusterctl::Error naming a bad value. `seed` is random when --seed is absent.
sampling::SamplerParams sampler_params(const po::variables_map& vm);

}  // namespace clusterctl::cli
