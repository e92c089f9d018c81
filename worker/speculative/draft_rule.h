#pragma once
// The rule that picks a speculative round's draft length k, shared by the engine (DraftLength,
// from the costs it measures) and the planner (`clusterctl plan`, from the costs it predicts), so
// that what plan predicts is what the engine does.
//
// k maximises expected tokens per second: a round drafts k tokens (draft_s_per_token each) and
// the target verifies k + 1 in one pass, keeping the drafts up to the first refused one and one
// token of its own, (1 - a^(k+1)) / (1 - a) tokens for a per-token acceptance rate a.
// At k = 0 (drafting does not pay at the current a) the engine drafts one token now and then to
// see whether a changed: such a probe first catches up the tokens the drafter missed, so probes
// come only as often as their cost stays within kProbeShare of plain decoding, and where drafting
// could not pay even were every draft kept (a draft as slow as the model) at most every
// kRareProbeEvery rounds: costs measured once (a round that met a cold cache or another
// process) are measured again now and then, for well under 1 % of the time.
#include <functional>
#include <vector>

namespace clusterctl::speculative {

inline constexpr int kMinProbeEvery = 16;
inline constexpr int kMaxProbeEvery = 1 << 14;
inline constexpr int kRareProbeEvery = 256;
inline constexpr double kProbeShare = 0.03;
// Drafting must promise this much more than plain decoding, every draft kept, to be probed for
// more often than kRareProbeEvery.
inline constexpr double kPaysMargin = 0.03;
// A draft model that fell more than kCatchUpMax tokens behind (rounds without drafts) catches up
// the context's first token and its last kRestartTokens instead of every missed token: a probe
// costs at most that much, however long the draft was idle (model_drafter.h).
inline constexpr int kCatchUpMax = 80, kRestartTokens = 32;
// The engine's first round drafts kFirstDraft tokens, before any cost is known; later rounds at
// most kGrowth times the most a measured round drafted, so k grows 2, 4, 8 towards the rule's
// choice while each wider pass is measured before a wider one is tried (passes wider than any
// measured are guessed as cheap as the widest measured one). Two, not one: the first round's
// draft cost is measured apart from the draft model's catch-up of the prompt only when it drafts
// a token beyond the catch-up's (speculative_decode.cpp), so with one a draft that cannot pay
// would need a second drafting round to be found out.
inline constexpr int kFirstDraft = 2, kGrowth = 2;

// The first round's k, before any cost is known: kFirstDraft within [min, max].
int first_draft_length(int min, int max);
// The k a round may draft when the rule chose `chosen` and the most a measured round drafted is
// `reach` (0: none yet): at most kGrowth * reach, else `first`; never below min. serve's steps
// grow the drafts of all their sequences together (BatchDrafting): `first` is then kFirstDraft a
// sequence.
int grown_draft_length(int chosen, int reach, int min, int first = kFirstDraft);

struct DraftCosts {
  double acceptance = 0;              // a
  std::function<double(int)> pass_s;  // the target's pass over n tokens, n = 1 .. max + 1
  double draft_s_per_token = 0;       // drafting while drafting every round, per drafted token
  // A probe's drafting after `gap` rounds without drafts (its catch-up and one drafted token).
  std::function<double(int gap)> probe_draft_s;
};

struct DraftChoice {
  int k = 0;
  int probe_every = 0;  // at k = 0: a one-token probe after this many rounds without drafts; 0: never
  double tokens_per_round = 1, round_s = 0;  // k's round (no probe)
};

// Expected tokens of a round drafting k at per-token acceptance a: (1 - a^(k+1)) / (1 - a).
double expected_tokens(double a, int k);
// k in [min, max]; probe_every only when k = 0 < max.
DraftChoice choose_draft_length(const DraftCosts& c, int min, int max);

// The k of a run's first rounds, before k settles at choose_draft_length(c, min, max).k, as
// DraftLength takes them where each round measures `c` itself (the planner's costs): the first
// round drafts first_draft_length; with min 0 the second is plain (the cost unit); then each
// round the rule's k over the passes measured so far (wider ones guessed as the widest measured,
// as WidthCosts guesses them), grown at most kGrowth-fold (grown_draft_length). E.g. {2, 0, 4}
// before k settles at 8, {2} before 0. The acceptance is c's from the first round (the engine's
// estimate starts at 1/2 and moves towards it) and probes at k = 0 belong to the settled rounds.
std::vector<int> opening_draft_lengths(const DraftCosts& c, int min, int max);

}  // namespace clusterctl::speculative
