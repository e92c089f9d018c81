#include "worker/model/generate.h"

#include <algorithm>

#include "worker/common/error.h"

namespace clusterctl::model {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::vector<int32_t> generate(Engine& engine, sampling::Sampler& sampler, const GenerateRequest& req,
                              const std::function<bool(int32_t)>& on_token, GenerateStats* stats) {
  auto& comm = engine.comm();
  const bool root = comm.rank() == 0;
  const auto& sp = sampler.params();
  // Penalties need the full distribution even when greedy.
  const bool plain_greedy = sp.greedy() && sp.repeat_penalty == 1.0f && sp.presence_penalty == 0.0f;
  const int64_t budget = std::min<int64_t>(req.max_tokens, engine.n_ctx() - static_cast<int64_t>(req.prompt.size()));

  auto t0 = std::chrono::steady_clock::now();
  LocalLogits logits = engine.prefill(req.prompt, 0, req.slot);
  if (stats) {
    stats->prompt_tokens = static_cast<int64_t>(req.prompt.size());
    stats->prompt_seconds = seconds_since(t0);
  }
  for (int32_t t : req.prompt) sampler.accept(t);

  std::vector<int32_t> out;
  Batch batch;
  int64_t pos = static_cast<int64_t>(req.prompt.size());
  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < budget; ++i) {
    int32_t step[2] = {0, 0};  // token, stop flag
    if (plain_greedy) {
      step[0] = engine.argmax(logits, logits.rows - 1);
    } else {
      const float* full = engine.gather(logits, logits.rows - 1);
      if (root) step[0] = sampler.sample(full);
    }
    if (root) {
      const bool eog = std::find(req.stop_tokens.begin(), req.stop_tokens.end(), step[0]) != req.stop_tokens.end();
      step[1] = eog || !on_token(step[0]);
      if (!eog) sampler.accept(step[0]);
    }
    comm.broadcast(step, sizeof step, 0);
    if (!root && !step[1]) sampler.accept(step[0]);
    const bool eog = std::find(req.stop_tokens.begin(), req.stop_tokens.end(), step[0]) != req.stop_tokens.end();
    if (!eog) out.push_back(step[0]);
    if (step[1] || i + 1 == budget) break;
    batch.clear();
    batch.add(step[0], static_cast<int32_t>(pos++), req.slot, true);
    batch.n_decode = 1;
    logits = engine.forward(batch);
  }
  if (stats) {
    stats->generated = static_cast<int64_t>(out.size());
    stats->generate_seconds = seconds_since(t0);
  }
  return out;
}

}  // namespace clusterctl::model
