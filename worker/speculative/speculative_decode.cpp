#include "worker/speculative/speculative_decode.h"

#include <algorithm>
#include <chrono>

namespace clusterctl::speculative {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

bool speculation_keeps(const sampling::SamplerParams& p) {
  return p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f &&
         p.generated_presence_penalty == 0.0f && p.logprobs < 0;
}

std::vector<int32_t> decode_speculative(parallel::StepLeader& leader, Drafter& drafter, DraftLength& length,
                                        sampling::Sampler& sampler, const SpecRequest& req,
                                        const std::function<bool(int32_t)>& on_token, SpecStats* stats) {
  using parallel::StepToken;
  SpecStats local;
  SpecStats& st = stats ? *stats : local;
  std::vector<int32_t> out, context = req.prompt;
  std::vector<StepToken> step;
  std::vector<std::vector<sampling::TokenProb>> p;
  Draft draft;
  int32_t pos = static_cast<int32_t>(req.prompt.size());
  // Emits one token; false when generation ends with it (or before it).
  auto emit = [&](int32_t t) {
    if (std::find(req.stop_tokens.begin(), req.stop_tokens.end(), t) != req.stop_tokens.end()) return false;
    out.push_back(t);
    sampler.accept(t, true);
    return on_token(t) && static_cast<int64_t>(out.size()) < req.budget;
  };
  int32_t token = req.first;
  for (bool first_round = true; req.budget > 0 && emit(token); first_round = false) {
    context.push_back(token);
    // At most budget tokens in all: the round emits its kept drafts and one of its own.
    const int k = static_cast<int>(std::min<int64_t>(length.next(), req.budget - static_cast<int64_t>(out.size()) - 1));
    auto t0 = Clock::now();
    drafter.propose(req.slot, context, k, req.greedy ? nullptr : &sampler, draft);
    const double draft_s = since(t0);
    const int n = static_cast<int>(draft.tokens.size());
    const int32_t kind = req.greedy ? StepToken::kGreedy : StepToken::kSampled;
    step.assign(1, {token, pos, req.slot, kind});
    for (int i = 0; i < n; ++i) step.push_back({draft.tokens[i], pos + 1 + i, req.slot, kind});
    p.resize(static_cast<size_t>(n) + 1);
    t0 = Clock::now();
    const std::vector<int32_t> best = leader.step_batch(
        step, static_cast<int64_t>(step.size()),
        [&](size_t i, const float* logits) {
          p[i] = sampler.distribution(logits);
          return int32_t{-1};
        },
        first_round && req.reset_stats_first_round);
    const double verify_s = since(t0);
    const Verdict v = req.greedy ? accept_greedy(draft.tokens, best) : accept_sampled(draft, p, sampler);
    // The first round caught up the prompt first: its drafting alone tells the cost of a drafted
    // token (the catch-up of a round's one or few new tokens costs about one draft step).
    double round_draft_s = draft_s;
    if (first_round) round_draft_s = n >= 2 ? (draft_s - drafter.last_catch_up_s()) * n / (n - 1) : -1.0;
    length.record(n, v.accepted, verify_s, round_draft_s);
    st.rounds += 1;
    st.drafted += n;
    st.accepted += v.accepted;
    st.emitted += v.accepted + 1;
    st.draft_s += draft_s;
    st.verify_s += verify_s;
    bool go_on = true;
    for (int i = 0; i < v.accepted && go_on; ++i) {
      go_on = emit(draft.tokens[i]);
      if (go_on) context.push_back(draft.tokens[i]);
    }
    if (!go_on) break;
    pos += 1 + v.accepted;
    token = v.next;
  }
  return out;
}

}  // namespace clusterctl::speculative
