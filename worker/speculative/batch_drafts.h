#pragma once
// What a speculative round costs by its width, and how many tokens each sequence of a serving
// step drafts (server/batch_scheduler): a step's pass over W generated tokens costs the cluster's
// round trips once and its weight reads and multiply-adds per token, so a single sequence shares
// the round trips among its drafts, while a batch that is already wide has shared them among its
// sequences and gains less from each draft. The drafts go where they most likely turn into
// tokens, as long as the step's expected tokens per second grow.
#include <functional>
#include <map>
#include <vector>

namespace clusterctl::speculative {

// A time as the last three samples tell it: their median (of two, the faster: the first pass at
// a width may meet cold caches), so one round that another process preempted (a shared machine)
// does not move it, while a lasting change (a longer context, a loaded machine) gets through at
// the second sample. -1 before any.
class RecentTime {
 public:
  void add(double seconds);
  double value() const;

 private:
  double s_[3] = {0, 0, 0};
  int n_ = 0, next_ = 0;
};

// Seconds of a forward pass by its width in generated tokens, 1 .. max_width: measured, else
// interpolated between the nearest measured widths; below them in proportion to the width, above
// them flat (optimistic both, so an unmeasured width gets tried and measured); 1 s when none is.
class WidthCosts {
 public:
  explicit WidthCosts(int max_width);
  void record(int width, double seconds);
  double pass_s(int width) const;
  int max_width() const { return static_cast<int>(measured_.size()); }

 private:
  std::vector<RecentTime> measured_;  // by width - 1
  mutable std::vector<double> table_;
  mutable bool stale_ = true;
};

// Measured costs in units of the latest plain pass (every sequence of the pass one token, no
// drafts) over the same sequences: attention makes every pass and draft step slower as the text
// grows, so a pass measured 300 tokens ago compares with the plain pass measured then, not with
// today's. What is measured before any plain pass waits for one (waiting(): the caller runs a
// plain pass next); with `seconds_as_unit` (--draft-min above 0: no plain pass ever runs) seconds
// are the unit.
class PlainUnitCosts {
 public:
  PlainUnitCosts(int plain_width, int max_width, bool seconds_as_unit);
  // A pass over `width` generated tokens (plain_width of them the sequences' own) took `seconds`.
  void record_pass(int width, double seconds);
  // Drafting took `per_token_s` a drafted token while drafting every round, or `probe_s` for a
  // probe (its catch-up of the rounds without drafts included); < 0: not measured.
  void record_draft(double per_token_s, double probe_s);
  bool waiting() const { return !pending_.empty(); }
  // Something is measured in units and nothing waits.
  bool measured() const { return measured_any_ && pending_.empty(); }
  // In plain passes; a drafted token's cost < 0 until measured.
  double pass(int width) const { return widths_.pass_s(width); }
  double draft_per_token() const { return draft_per_token_.value(); }
  // The widest pass recorded (0: none): wider ones are only guessed (WidthCosts), so the drafts
  // grow kGrowth-fold past it at most (grown_draft_length).
  int widest() const { return widest_; }
  // A probe's drafting; not measured yet: a probe after the fewest rounds (kMinProbeEvery),
  // catching those up at the drafting rate.
  double probe_draft() const;

 private:
  void flush();
  int plain_width_;
  bool seconds_as_unit_, measured_any_ = false;
  int widest_ = 0;
  WidthCosts widths_;
  RecentTime plain_s_, draft_per_token_, probe_draft_;
  struct Pending {
    int width;
    double pass_s, per_token_s, probe_s;
  };
  std::vector<Pending> pending_;
};

struct SequenceDrafts {
  double acceptance = 0;  // its per-token acceptance rate a
  int min = 0, max = 0;   // its drafts this step: at least min, at most max
};

// Drafts per sequence for one step that also holds `base_width` generated tokens besides these
// sequences' own decode tokens: starting from every sequence's `min`, each further draft (the
// j-th of a sequence turns into a token with probability a^j) is added most likely first, and the
// step takes the count that maximises expected tokens / (pass over its width + drafted tokens x
// draft_s_per_token). The width never passes `max_width`. One sequence alone: choose_draft_length's k.
std::vector<int> allot_drafts(const std::vector<SequenceDrafts>& seqs, int base_width,
                              const std::function<double(int)>& pass_s, double draft_s_per_token, int max_width);

// For a sequence not drafting in steps of `width` generated tokens: steps between its one-token
// probes (choose_draft_length's rule for a step: its `sequences` such sequences' probes, each
// costing `probe_draft_s` and a token more in the pass, stay within kProbeShare of the steps),
// at least kRareProbeEvery when no count of drafts up to `max_drafts` would pay were every draft kept.
int probe_every(const std::function<double(int)>& pass_s, int width, int sequences, int max_drafts,
                double draft_s_per_token, double probe_draft_s);

// A serving step's drafts (server/batch_scheduler) from costs measured per count n of decoding
// sequences, each in units of the plain step of n sequences (PlainUnitCosts), so a step measured
// early in the sequences' answers still compares with today's plain step. A count whose plain
// step has not been measured yet runs one first (its sequences' --draft-min only). Then the
// step's drafts grow as one sequence's do (grown_draft_length): kFirstDraft a sequence, then at
// most kGrowth times the most drafts a measured step of n held, so each wider step is measured
// before a wider one is tried, a draft that does not pay costs one short step, and a step wide
// enough to hide the round trips stops growing where its measured costs say drafts no longer pay.
class BatchDrafting {
 public:
  // `max_width`: the step's size in generated tokens; `draft_max`: --draft-max; with
  // `seconds_as_unit` (--draft-min above 0: no step is ever plain) seconds are the unit.
  BatchDrafting(int max_width, int draft_max, bool seconds_as_unit);
  // Drafts of each of `seqs` (the speculating ones among `decoding` sequences decoding this
  // step), by allot_drafts; a sequence that has not drafted for `idle[i]` steps, at least
  // probe_every's, drafts one token to see whether its acceptance changed.
  std::vector<int> drafts(int decoding, std::vector<SequenceDrafts> seqs, const std::vector<int>& idle);
  // A step of `decoding` sequences over `width` generated tokens, drafts included, took `seconds`
  // (steps without prompt tokens only).
  void record_step(int decoding, int width, double seconds);
  // Drafting in a step of `decoding` sequences: PlainUnitCosts::record_draft.
  void record_draft(int decoding, double per_token_s, double probe_s);

 private:
  PlainUnitCosts& costs(int decoding);
  int max_width_, draft_max_;
  bool seconds_as_unit_;
  std::map<int, PlainUnitCosts> by_decoding_;
};

}  // namespace clusterctl::speculative
