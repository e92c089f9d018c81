#pragma once
// Which drafted tokens a target keeps, and how many to draft next.
//
// Greedy: a draft is kept while it is the target's arg-max after the tokens before it; the
// target's arg-max at the first miss (or after the last draft) is added. The output is plain
// greedy decoding's, token for token.
//
// Sampled (Leviathan et al. 2023, Chen et al. 2023): draft i, drawn from q_i, is kept with
// probability min(1, p_i(x) / q_i(x)); at the first refusal the token is drawn from
// norm(max(0, p_i - q_i)) and the round ends; when all are kept one more is drawn from p_k. Every
// emitted token is then distributed as the target's sampler would draw it. For a deterministic
// drafter (prompt lookup, q one-hot) this is: keep x with probability p_i(x), else draw from p_i
// without x.
#include <cstdint>
#include <vector>

#include "worker/sampling/sampler.h"
#include "worker/speculative/batch_drafts.h"
#include "worker/speculative/drafter.h"

namespace clusterctl::speculative {

struct Verdict {
  int accepted = 0;   // drafts kept
  int32_t next = -1;  // the target's token after them
};

// `target_best[i]`: the target's arg-max after the context and drafts[0, i); k + 1 entries.
Verdict accept_greedy(const std::vector<int32_t>& drafts, const std::vector<int32_t>& target_best);

// `p[i]`: the target sampler's distribution after the context and drafts[0, i) (k + 1 entries);
// draws come from `sampler`'s generator.
Verdict accept_sampled(const Draft& draft, const std::vector<std::vector<sampling::TokenProb>>& p,
                       sampling::Sampler& sampler);

// The draft length k of the next round, in [min, max], from the measured per-token acceptance
// rate a and round cost, by choose_draft_length (draft_rule.h): the target's pass over k + 1
// tokens (measured per width, interpolated), k drafted tokens (measured per token while drafting)
// and, at k = 0, the probes' cost (measured: a probe catches up what the drafter missed). The
// first round drafts kFirstDraft, the second none (a plain pass, the cost unit); then k grows
// towards the rule's choice at most kGrowth-fold a round (draft_rule.h), so a draft that cannot
// pay costs one short round and one that pays reaches its k in a few.
class DraftLength {
 public:
  DraftLength(int min, int max);
  int next() const;
  int min() const { return min_; }
  int max() const { return max_; }
  // One round: `drafted` proposed, `accepted` kept; the target's pass took `verify_s` for
  // drafted + 1 tokens (< 0: it ran beside other sequences, only the acceptance counts), drafting
  // took `draft_s` (< 0: not representative, e.g. it caught up a prompt).
  void record(int drafted, int accepted, double verify_s, double draft_s);
  double acceptance() const;  // the estimate of a
  // At k = 0: rounds between probes (0: none, drafting would not pay even were every draft kept).
  int probe_every() const { return probe_every_; }

 private:
  void choose();
  int min_, max_, k_;
  double kept_ = 0, refused_ = 0;  // decayed counts
  // In plain passes (record()): the target's pass over n = 1 .. max + 1 tokens, a drafted token
  // while drafting every round, a probe's drafting (its catch-up included).
  PlainUnitCosts costs_;
  int rounds_without_draft_ = 0;
  int probe_every_ = 0;
};

}  // namespace clusterctl::speculative
