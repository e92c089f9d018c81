#include "worker/parallel/step_protocol.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "worker/common/error.h"

namespace clusterctl::parallel {
namespace {

std::chrono::steady_clock::time_point g_stats_start = std::chrono::steady_clock::now();

// Sends (rank 0) or receives the header and its token list.
std::vector<int32_t> exchange(model::Engine& engine, StepHeader& h, const std::vector<int32_t>* tokens) {
  auto& comm = engine.comm();
  comm.broadcast(&h, sizeof h, 0);
  if (h.magic != StepHeader::kMagic)
    throw Error("received a malformed step header (magic " + std::to_string(h.magic) +
                "): the ranks run different clusterctl-worker versions");
  if (h.flags & StepHeader::kShutdown) return {};
  if (h.flags & StepHeader::kResetStats) {
    comm.reset_stats();
    g_stats_start = std::chrono::steady_clock::now();
  }
  if (h.n_tokens < 1) throw Error("received a step header with " + std::to_string(h.n_tokens) + " tokens");
  std::vector<int32_t> out = tokens ? *tokens : std::vector<int32_t>(h.n_tokens);
  if (h.n_tokens > StepHeader::kInlineTokens) comm.broadcast(out.data(), out.size() * sizeof(int32_t), 0);
  else if (!tokens) out.assign(h.tokens, h.tokens + h.n_tokens);
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

}  // namespace

StepLeader::StepLeader(model::Engine& engine, sampling::Sampler& sampler) : engine_(engine), sampler_(sampler) {
  const auto& p = sampler.params();
  // Penalties need the full distribution even when greedy.
  argmax_ = p.greedy() && p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f;
}

int32_t StepLeader::step(const std::vector<int32_t>& tokens, int32_t pos0, int32_t seq_id, int32_t slot,
                         bool reset_stats) {
  if (tokens.empty()) throw Error("nothing to process: the step has no tokens");
  StepHeader h;
  h.flags = (argmax_ ? uint32_t{StepHeader::kArgmax} : 0u) | (reset_stats ? uint32_t{StepHeader::kResetStats} : 0u);
  h.seq_id = seq_id;
  h.slot = slot;
  h.pos0 = pos0;
  h.n_tokens = static_cast<int32_t>(tokens.size());
  std::copy_n(tokens.begin(), std::min<size_t>(tokens.size(), StepHeader::kInlineTokens), h.tokens);
  exchange(engine_, h, &tokens);
  int32_t next = -1;
  forward(engine_, h, tokens, [&](const model::LocalLogits& l) { next = pick(engine_, h, l, &sampler_); });
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
  const int64_t V = engine_.hparams().n_vocab;
  std::vector<float> out;
  out.reserve(tokens.size() * V);
  forward(engine_, h, tokens, [&](const model::LocalLogits& l) {
    for (int64_t r = 0; r < l.rows; ++r) {
      const float* full = engine_.gather(l, r);
      out.insert(out.end(), full, full + V);
    }
  });
  return out;
}

double stats_window_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - g_stats_start).count();
}

void StepLeader::shutdown() {
  StepHeader h;
  h.flags = StepHeader::kShutdown;
  exchange(engine_, h, nullptr);
}

void follow_steps(model::Engine& engine) {
  for (;;) {
    StepHeader h;
    const auto tokens = exchange(engine, h, nullptr);
    if (h.flags & StepHeader::kShutdown) return;
    forward(engine, h, tokens, [&](const model::LocalLogits& l) {
      if (h.flags & StepHeader::kAllLogits)
        for (int64_t r = 0; r < l.rows; ++r) engine.gather(l, r);
      else
        pick(engine, h, l, nullptr);
    });
  }
}

}  // namespace clusterctl::parallel
