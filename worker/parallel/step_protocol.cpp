#include "worker/parallel/step_protocol.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "worker/common/error.h"

namespace clusterctl::parallel {
namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point g_stats_start = Clock::now();

// The communicator's call tags (Communicator::tag_calls): calls outside steps keep tag 0.
constexpr int kStepCalls = 1, kDecodeStepCalls = 2;

// Times one step into a rank's RankFigures: from after its header (a follower's wait for the
// header is idle time, not the step's) to the end of its cross-rank work, and how much the
// communicator's seconds, calls and bytes grew meanwhile. Two clock reads a step. The step's
// calls are tagged for the split of their time (settle_figures).
class StepTimer {
 public:
  StepTimer(collectives::Communicator& comm, RankFigures& figures, bool decode)
      : comm_(comm), figures_(figures), start_(comm.stats()), decode_(decode) {
    comm.tag_calls(decode ? kDecodeStepCalls : kStepCalls);
  }
  void finish() {
    comm_.tag_calls(0);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0_).count();
    const collectives::CommStats& now = comm_.stats();
    const double comm_seconds = now.seconds - start_.seconds;
    RankFigures& f = figures_;
    ++f.steps;
    f.step_seconds += seconds;
    f.comm_seconds += comm_seconds;
    f.allreduces += now.allreduce_calls - start_.allreduce_calls;
    f.bytes_sent += now.bytes_sent - start_.bytes_sent;
    if (!decode_) return;
    ++f.decode_steps;
    f.decode_step_seconds += seconds;
    f.decode_comm_seconds += comm_seconds;
    f.decode_bytes_sent += now.bytes_sent - start_.bytes_sent;
  }

 private:
  collectives::Communicator& comm_;
  RankFigures& figures_;
  collectives::CommStats start_;
  bool decode_;
  Clock::time_point t0_ = Clock::now();
};

// Settles the communicator's call log (every rank at the same point) and adds the steps' split
// of their communication to `f`.
void settle_figures(collectives::Communicator& comm, RankFigures& f) {
  comm.settle_call_log();
  const collectives::CallSplit step = comm.take_settled(kStepCalls), decode = comm.take_settled(kDecodeStepCalls);
  f.comm_link_seconds += step.critical_seconds + decode.critical_seconds;
  f.comm_wait_seconds += step.waiting_seconds + decode.waiting_seconds;
  f.decode_comm_link_seconds += decode.critical_seconds;
  f.decode_comm_wait_seconds += decode.waiting_seconds;
}

// A kReportFigures step's gather, after the step: every rank's figures, by rank, on rank 0 (empty
// elsewhere).
std::vector<RankFigures> gather_figures(collectives::Communicator& comm, RankFigures& mine) {
  settle_figures(comm, mine);
  mine.resident_bytes = resident_bytes();
  std::vector<RankFigures> all(comm.rank() == 0 ? static_cast<size_t>(comm.size()) : 0);
  comm.gather(&mine, sizeof mine, all.data(), 0);
  return all;
}

// Sends (rank 0) or receives the header and its token list.
std::vector<int32_t> exchange(model::Engine& engine, StepHeader& h, const std::vector<int32_t>* tokens) {
  auto& comm = engine.comm();
  comm.broadcast_next_step(&h, sizeof h, 0);  // a follower may wait here as long as the server idles
  if (h.magic != StepHeader::kMagic)
    throw Error("received a malformed step header (magic " + std::to_string(h.magic) +
                "): the ranks run different clusterctl-worker versions");
  if (h.flags & (StepHeader::kShutdown | StepHeader::kHeartbeat)) return {};
  if (h.flags & StepHeader::kResetStats) {
    comm.settle_call_log();  // the calls before belong to the window before
    comm.reset_stats();
    g_stats_start = Clock::now();
  }
  if (h.n_tokens < 1) throw Error("received a step header with " + std::to_string(h.n_tokens) + " tokens");
  if (h.flags & StepHeader::kBatch) return {};  // the StepTokens follow (exchange_batch)
  std::vector<int32_t> out = tokens ? *tokens : std::vector<int32_t>(h.n_tokens);
  if (h.n_tokens > StepHeader::kInlineTokens)
    comm.broadcast(out.data(), out.size() * sizeof(int32_t), 0);
  else if (!tokens)
    out.assign(h.tokens, h.tokens + h.n_tokens);
  return out;
}

// The forward passes of one step (in max_batch chunks). Calls `on_rows` with the logits of each
// chunk that has outputs. Every rank runs this identically.
template <class OnRows>
void forward(model::Engine& engine, const StepHeader& h, const std::vector<int32_t>& tokens, OnRows&& on_rows) {
  const bool all = h.flags & StepHeader::kAllLogits;
  const int64_t n = static_cast<int64_t>(tokens.size()), chunk = engine.max_batch();
  if (h.pos0 + n > engine.n_ctx())
    throw Error("the step needs positions up to " + std::to_string(h.pos0 + n) + " but the context holds " +
                std::to_string(engine.n_ctx()) + "; shorten the prompt or raise --ctx");
  model::Batch batch;
  for (int64_t i = 0; i < n; i += chunk) {
    batch.clear();
    const int64_t end = std::min(n, i + chunk);
    for (int64_t j = i; j < end; ++j) batch.add(tokens[j], static_cast<int32_t>(h.pos0 + j), h.slot, all || j == n - 1);
    batch.n_decode = (h.flags & StepHeader::kDecode) ? batch.size() : 0;
    model::LocalLogits logits = engine.forward(batch);
    if (logits.rows > 0) on_rows(logits);
  }
}

// The next token from the last logits row: arg-max on every rank, or gathered and sampled on rank 0.
int32_t pick(model::Engine& engine, const StepHeader& h, const model::LocalLogits& logits, sampling::Sampler* sampler) {
  if (h.flags & StepHeader::kArgmax) return engine.argmax(logits, logits.rows - 1);
  const float* full = engine.gather(logits, logits.rows - 1);
  return sampler && full ? sampler->sample(full) : -1;
}

// A multi-sequence step's tokens, after its header: one broadcast from rank 0.
void exchange_batch(model::Engine& engine, const StepHeader& h, std::vector<StepToken>& tokens) {
  if (h.n_tokens > engine.max_batch())
    throw Error("received a step of " + std::to_string(h.n_tokens) + " tokens but the batch size is " +
                std::to_string(engine.max_batch()) + "; start every rank with the same --batch");
  tokens.resize(static_cast<size_t>(h.n_tokens));
  engine.comm().broadcast(tokens.data(), tokens.size() * sizeof(StepToken), 0);
}

// Each rank's best logit of one row of its vocabulary slice.
struct RowBest {
  float value;
  int32_t unused;
  int64_t index;
};

// The forward pass of a multi-sequence step and the cross-rank work on its logits, run identically
// on every rank: greedy rows in ONE gather of per-rank bests (rank 0 keeps the largest value, the
// lowest id on ties, as Communicator::argmax does); sampled rows one gather each. Returns on rank 0
// the next token of every output row, in order (`sample` is null on the other ranks).
std::vector<int32_t> run_batch(model::Engine& engine, const StepHeader& h, const std::vector<StepToken>& tokens,
                               model::Batch& batch, const StepLeader::SampleFn* sample) {
  if (h.n_decode < 0 || h.n_decode > h.n_tokens)
    throw Error("received a step of " + std::to_string(h.n_tokens) + " tokens with " + std::to_string(h.n_decode) +
                " generated ones: the ranks run different clusterctl-worker versions");
  batch.clear();
  for (const StepToken& t : tokens) {
    if (t.output < StepToken::kNone || t.output > StepToken::kSampled)
      throw Error("received a step token with output kind " + std::to_string(t.output) +
                  ": the ranks run different clusterctl-worker versions");
    batch.add(t.token, t.pos, t.slot, t.output != StepToken::kNone);
  }
  batch.n_decode = h.n_decode;
  const model::LocalLogits logits = engine.forward(batch);
  auto& comm = engine.comm();
  std::vector<RowBest> mine;
  std::vector<int64_t> greedy_rows, sampled_rows;
  std::vector<size_t> sampled_index;
  int64_t row = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t out = tokens[i].output;
    if (out == StepToken::kNone) continue;
    if (out == StepToken::kGreedy) {
      const float* r = logits.row(row);
      int64_t best = 0;
      for (int64_t c = 1; c < logits.cols; ++c)
        if (r[c] > r[best]) best = c;
      mine.push_back({r[best], 0, logits.vocab_begin + best});
      greedy_rows.push_back(row);
    } else if (out == StepToken::kSampled) {
      sampled_rows.push_back(row);
      sampled_index.push_back(i);
    }
    ++row;
  }
  std::vector<RowBest> all;
  if (!mine.empty()) {
    if (comm.rank() == 0) all.resize(mine.size() * static_cast<size_t>(comm.size()));
    comm.gather(mine.data(), mine.size() * sizeof(RowBest), all.data(), 0);
  }
  std::vector<int32_t> sampled(sampled_rows.size(), -1);
  for (size_t k = 0; k < sampled_rows.size(); ++k) {
    const float* full = engine.gather(logits, sampled_rows[k]);
    if (full && sample) sampled[k] = (*sample)(sampled_index[k], full);
  }
  if (comm.rank() != 0) return {};
  std::vector<int32_t> next;
  size_t g = 0, s = 0;
  for (const StepToken& t : tokens) {
    if (t.output == StepToken::kGreedy) {
      RowBest best = all[g];
      for (int r = 1; r < comm.size(); ++r) {
        const RowBest& o = all[static_cast<size_t>(r) * mine.size() + g];
        if (o.value > best.value || (o.value == best.value && o.index < best.index)) best = o;
      }
      next.push_back(static_cast<int32_t>(best.index));
      ++g;
    } else if (t.output == StepToken::kSampled) {
      next.push_back(sampled[s++]);
    }
  }
  return next;
}

}  // namespace

StepLeader::StepLeader(model::Engine& engine, sampling::Sampler* sampler) : engine_(engine), sampler_(sampler) {
  argmax_ = true;
  if (sampler) {
    const auto& p = sampler->params();
    // Penalties need the full distribution even when greedy.
    argmax_ = p.greedy() && p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f;
  }
}

std::vector<int32_t> StepLeader::step_batch(const std::vector<StepToken>& tokens, int64_t n_decode,
                                            const SampleFn& sample, bool reset_stats) {
  if (tokens.empty()) throw Error("nothing to process: the step has no tokens");
  if (static_cast<int64_t>(tokens.size()) > engine_.max_batch())
    throw Error("a step of " + std::to_string(tokens.size()) + " tokens exceeds the batch size " +
                std::to_string(engine_.max_batch()));
  StepHeader h;
  h.flags = StepHeader::kBatch | (reset_stats ? uint32_t{StepHeader::kResetStats} : 0u) | report_flag();
  h.n_tokens = static_cast<int32_t>(tokens.size());
  h.n_decode = static_cast<int32_t>(n_decode);
  exchange(engine_, h, nullptr);
  StepTimer timer(engine_.comm(), own_, h.n_decode == h.n_tokens);
  std::vector<StepToken> sent = tokens;
  exchange_batch(engine_, h, sent);
  std::vector<int32_t> next = run_batch(engine_, h, sent, batch_, &sample);
  timer.finish();
  report(h);
  return next;
}

int32_t StepLeader::step(const std::vector<int32_t>& tokens, int32_t pos0, int32_t seq_id, int32_t slot,
                         bool reset_stats, bool decode) {
  if (tokens.empty()) throw Error("nothing to process: the step has no tokens");
  StepHeader h;
  h.flags = (argmax_ ? uint32_t{StepHeader::kArgmax} : 0u) | (reset_stats ? uint32_t{StepHeader::kResetStats} : 0u) |
            (decode ? uint32_t{StepHeader::kDecode} : 0u) | report_flag();
  h.seq_id = seq_id;
  h.slot = slot;
  h.pos0 = pos0;
  h.n_tokens = static_cast<int32_t>(tokens.size());
  std::copy_n(tokens.begin(), std::min<size_t>(tokens.size(), StepHeader::kInlineTokens), h.tokens);
  exchange(engine_, h, &tokens);
  StepTimer timer(engine_.comm(), own_, decode);
  int32_t next = -1;
  forward(engine_, h, tokens, [&](const model::LocalLogits& l) { next = pick(engine_, h, l, sampler_); });
  timer.finish();
  report(h);
  return next;
}

std::vector<float> StepLeader::score(const std::vector<int32_t>& tokens, int32_t pos0, int32_t seq_id, int32_t slot) {
  StepHeader h;
  h.flags = StepHeader::kAllLogits;
  h.seq_id = seq_id;
  h.slot = slot;
  h.pos0 = pos0;
  h.n_tokens = static_cast<int32_t>(tokens.size());
  std::copy_n(tokens.begin(), std::min<size_t>(tokens.size(), StepHeader::kInlineTokens), h.tokens);
  exchange(engine_, h, &tokens);
  StepTimer timer(engine_.comm(), own_, false);
  const int64_t V = engine_.hparams().n_vocab;
  std::vector<float> out;
  out.reserve(tokens.size() * V);
  forward(engine_, h, tokens, [&](const model::LocalLogits& l) {
    for (int64_t r = 0; r < l.rows; ++r) {
      const float* full = engine_.gather(l, r);
      out.insert(out.end(), full, full + V);
    }
  });
  timer.finish();
  return out;
}

double stats_window_seconds() { return std::chrono::duration<double>(Clock::now() - g_stats_start).count(); }

void StepLeader::heartbeat() {
  StepHeader h;
  h.flags = StepHeader::kHeartbeat | report_flag();
  exchange(engine_, h, nullptr);
  report(h);
}

void StepLeader::report_now() {
  if (report_interval_ == Clock::duration::zero()) return;
  last_report_ = Clock::now();
  StepHeader h;
  h.flags = StepHeader::kHeartbeat | StepHeader::kReportFigures;
  exchange(engine_, h, nullptr);
  report(h);
}

void StepLeader::set_report_interval(double seconds) {
  report_interval_ = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::max(0.0, seconds)));
}

uint32_t StepLeader::report_flag() {
  if (report_interval_ == Clock::duration::zero()) return 0;
  const auto now = Clock::now();
  if (now - last_report_ < report_interval_) return 0;
  last_report_ = now;
  return StepHeader::kReportFigures;
}

void StepLeader::report(const StepHeader& h) {
  if (!(h.flags & StepHeader::kReportFigures)) return;
  figures_ = gather_figures(engine_.comm(), own_);
  ++reports_;
}

void StepLeader::shutdown() {
  StepHeader h;
  h.flags = StepHeader::kShutdown;
  exchange(engine_, h, nullptr);
}

void follow_steps(model::Engine& engine) {
  model::Batch batch;
  std::vector<StepToken> batch_tokens;
  RankFigures figures;
  for (;;) {
    StepHeader h;
    const auto tokens = exchange(engine, h, nullptr);
    if (h.flags & StepHeader::kShutdown) return;
    if (h.flags & StepHeader::kHeartbeat) {
      if (h.flags & StepHeader::kReportFigures) gather_figures(engine.comm(), figures);
      continue;
    }
    const bool decode =
        (h.flags & StepHeader::kBatch) ? h.n_decode == h.n_tokens : (h.flags & StepHeader::kDecode) != 0;
    StepTimer timer(engine.comm(), figures, decode);
    if (h.flags & StepHeader::kBatch) {
      exchange_batch(engine, h, batch_tokens);
      run_batch(engine, h, batch_tokens, batch, nullptr);
    } else {
      forward(engine, h, tokens, [&](const model::LocalLogits& l) {
        if (h.flags & StepHeader::kAllLogits)
          for (int64_t r = 0; r < l.rows; ++r) engine.gather(l, r);
        else
          pick(engine, h, l, nullptr);
      });
    }
    timer.finish();
    if (h.flags & StepHeader::kReportFigures) gather_figures(engine.comm(), figures);
  }
}

}  // namespace clusterctl::parallel
