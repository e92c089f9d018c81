#pragma once
// What a speculative round costs by its width, and how many tokens each sequence of a serving
// step drafts (server/batch_scheduler): a step's pass over W generated tokens costs the cluster's
// round trips once and its weight reads and multiply-adds per token, so a single sequence shares
// the round trips among its drafts, while a batch that is already wide has shared them among its
// sequences and gains less from each draft. The drafts go where they most likely turn into
// tokens, as long as the step's expected tokens per second grow.
#include <functional>
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

}  // namespace clusterctl::speculative
