#pragma once
// Speculative decoding of one sequence through the step protocol, for any world size: each round
// the drafter proposes k tokens on rank 0 and the target runs the last emitted token and the k
// drafts as ONE multi-token step on every rank (StepLeader::step_batch, generated tokens, so each
// row's logits are bit for bit those of a one-token decode step), so the round trips of a pass
// are shared by every kept token. Rejected positions need no undo on any rank: a token at
// position p attends to positions 0..p of its slot only, and the next round writes its tokens
// over the rejected ones' keys and values (kv_cache.h).
#include <cstdint>
#include <functional>
#include <vector>

#include "worker/parallel/step_protocol.h"
#include "worker/sampling/sampler.h"
#include "worker/speculative/acceptance.h"
#include "worker/speculative/drafter.h"

namespace clusterctl::speculative {

// Whether speculation keeps this sampler exact as written: penalties over generated tokens (and
// any sampler state beyond its generator, such as a constraint the caller knows of) make a
// position's distribution depend on the drafts before it, and logprobs are reported per sampled
// token, so such requests decode without drafts. A logit bias is stateless and stays.
bool speculation_keeps(const sampling::SamplerParams& p);

struct SpecStats {
  int64_t rounds = 0;    // target passes after the prompt
  int64_t drafted = 0;   // tokens proposed
  int64_t accepted = 0;  // proposed tokens kept
  int64_t emitted = 0;   // tokens emitted by the rounds (kept drafts and the target's own)
  double draft_s = 0, verify_s = 0;
  double acceptance_rate() const { return drafted ? static_cast<double>(accepted) / drafted : 0.0; }
  double tokens_per_round() const { return rounds ? static_cast<double>(emitted) / rounds : 0.0; }
};

struct SpecRequest {
  std::vector<int32_t> prompt;       // already run by the target (its KV in `slot`)
  int32_t first = -1;                // the target's token after the prompt
  int64_t budget = 0;                // tokens to emit at most, `first` included
  std::vector<int32_t> stop_tokens;  // end generation, not emitted
  int32_t slot = 0;
  bool greedy = true;                    // arg-max (no penalties); else `sampler` draws
  bool reset_stats_first_round = false;  // StepLeader's measured window starts with the first round
};

// Rank 0: emits tokens through `on_token` (false: stop) until the budget, a stop token or a stop
// from on_token. `sampler` accepts every emitted token. Returns the emitted tokens.
std::vector<int32_t> decode_speculative(parallel::StepLeader& leader, Drafter& drafter, DraftLength& length,
                                        sampling::Sampler& sampler, const SpecRequest& req,
                                        const std::function<bool(int32_t)>& on_token, SpecStats* stats = nullptr);

}  // namespace clusterctl::speculative
