#pragma once
// The step protocol of a tensor-parallel job. Rank 0 (the leader) owns the requests: before every
// forward pass it broadcasts a small StepHeader (sequence, KV slot, first position, tokens, flags);
// every rank runs the same forward pass on its slice; then the logits are reduced (arg-max for
// greedy decoding) or gathered to rank 0 (sampling, scoring). A header with kShutdown ends the
// other ranks' loops in order. Followers need no tokenizer and no sampler.
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "worker/common/rank_figures.h"
#include "worker/model/engine.h"
#include "worker/sampling/sampler.h"

namespace clusterctl::parallel {

struct StepHeader {
  static constexpr uint32_t kMagic = 0x50455453;  // "STEP"
  static constexpr int kInlineTokens = 8;         // a decode step's tokens travel in the header
  enum Flags : uint32_t {
    kShutdown = 1,    // leave the loop; no forward pass
    kArgmax = 2,      // pick the next token by the cross-rank arg-max (greedy, no penalties)
    kAllLogits = 4,   // gather the logits of every position to rank 0 (teacher-forced scoring)
    kResetStats = 8,  // every rank zeroes its communication counters and restarts its stats clock
    kBatch = 16,      // a multi-sequence step: n_tokens StepTokens follow in a second broadcast
    kDecode = 32,     // a single-sequence step of generated tokens (else prompt tokens): model::Batch::n_decode
    kHeartbeat = 64,  // nothing to run: rank 0 is alive (the others' wait for it is watched)
    // After the step every rank sends rank 0 its RankFigures (one small gather, about once a
    // second: StepLeader::set_report_interval), so no step waits on it.
    kReportFigures = 128,
  };
  uint32_t magic = kMagic;
  uint32_t flags = 0;
  int32_t seq_id = 0;
  int32_t slot = 0;
  int32_t pos0 = 0;      // position of tokens[0]; the rest follow
  int32_t n_tokens = 0;  // > kInlineTokens: the tokens follow in a second broadcast
  int32_t tokens[kInlineTokens] = {};
  int32_t n_decode = 0;  // kBatch: the first n_decode StepTokens are generated tokens (model::Batch::n_decode)
};

// One token of a multi-sequence step: its sequence's KV slot and position, and what rank 0
// wants from its logits.
struct StepToken {
  enum Output : int32_t {
    kNone = 0,     // no logits (a prompt token before the last)
    kGreedy = 1,   // the next token by the cross-rank arg-max
    kSampled = 2,  // the full logits, gathered to rank 0 for its sampler
  };
  int32_t token = 0;
  int32_t pos = 0;
  int32_t slot = 0;
  int32_t output = kNone;
};

// Rank 0's side.
class StepLeader {
 public:
  // `sampler` serves step()'s single-sequence decoding; a leader that only runs
  // step_batch() needs none.
  explicit StepLeader(model::Engine& engine, sampling::Sampler* sampler = nullptr);
  StepLeader(model::Engine& engine, sampling::Sampler& sampler) : StepLeader(engine, &sampler) {}
  // Runs `tokens` of sequence `seq_id` from `pos0` on every rank and returns the next token
  // (arg-max over all ranks when greedy without penalties, else sampled here from the gathered logits).
  // `reset_stats`: the measured window (stats_window_seconds, the communicator's stats) starts
  // with this step on every rank.
  // `decode`: the tokens were generated (matrix-vector kernels), else they are prompt tokens
  // (tiles), as model::Batch::n_decode.
  int32_t step(const std::vector<int32_t>& tokens, int32_t pos0, int32_t seq_id, int32_t slot, bool reset_stats = false,
               bool decode = false);
  // Teacher-forced scoring: the full-vocabulary logits of every position, row after row.
  std::vector<float> score(const std::vector<int32_t>& tokens, int32_t pos0, int32_t seq_id, int32_t slot);
  // A multi-sequence step: ONE forward pass over `tokens` (at most engine.max_batch(), any mix of
  // sequences, slots and positions) on every rank. Returns one token per kGreedy/kSampled entry,
  // in order: greedy rows from one batched cross-rank arg-max, sampled rows from `sample(i, logits)`
  // (i = index into `tokens`, logits = the full vocabulary, gathered here). The first `n_decode`
  // entries are generated tokens, the rest prompt tokens (model::Batch::n_decode).
  using SampleFn = std::function<int32_t(size_t index, const float* logits)>;
  std::vector<int32_t> step_batch(const std::vector<StepToken>& tokens, int64_t n_decode, const SampleFn& sample,
                                  bool reset_stats = false);
  // A step with nothing to run, which an idle leader sends so the others know it is alive.
  // With a report interval set it gathers every rank's figures too.
  void heartbeat();

  // Every `seconds` (0: never, the default) a step also gathers each rank's RankFigures to
  // this rank (kReportFigures): figures() then holds them, by rank, and reports() counts the gathers.
  void set_report_interval(double seconds);
  // A heartbeat step that gathers the figures now (with a report interval set): a leader going
  // idle sends one, so the figures include the last steps before the pause.
  void report_now();
  const std::vector<RankFigures>& figures() const { return figures_; }
  uint64_t reports() const { return reports_; }
  // This rank's own totals, up to the last step.
  const RankFigures& own_figures() const { return own_; }
  // Ends the followers' loops.
  void shutdown();

 private:
  model::Engine& engine_;
  sampling::Sampler* sampler_;
  bool argmax_;
  model::Batch batch_;
  RankFigures own_;
  std::vector<RankFigures> figures_;
  uint64_t reports_ = 0;
  std::chrono::steady_clock::duration report_interval_{};
  std::chrono::steady_clock::time_point last_report_{};
  uint32_t report_flag();  // kReportFigures when a report is due
  void report(const StepHeader& h);
};

// Wall seconds since the last kResetStats step on this rank (since start when none).
double stats_window_seconds();

// Every other rank: follows headers until kShutdown. Throws clusterctl::Error on a malformed header.
void follow_steps(model::Engine& engine);

}  // namespace clusterctl::parallel
