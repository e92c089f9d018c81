#include "worker/speculative/batch_drafts.h"

#include <algorithm>
#include <cmath>

#include "worker/speculative/draft_rule.h"

namespace clusterctl::speculative {
void RecentTime::add(double seconds) {
  s_[next_] = seconds;
  next_ = (next_ + 1) % 3;
  n_ = std::min(n_ + 1, 3);
}

double RecentTime::value() const {
  if (n_ == 0) return -1;
  if (n_ == 1) return s_[0];
  if (n_ == 2) return std::min(s_[0], s_[1]);
  return std::max(std::min(s_[0], s_[1]), std::min(std::max(s_[0], s_[1]), s_[2]));
}

WidthCosts::WidthCosts(int max_width) : measured_(static_cast<size_t>(std::max(max_width, 1))) {}

void WidthCosts::record(int width, double seconds) {
  if (width < 1 || width > max_width() || !(seconds >= 0)) return;
  measured_[static_cast<size_t>(width - 1)].add(seconds);
  stale_ = true;
}

double WidthCosts::pass_s(int width) const {
  const int n = max_width();
  if (stale_) {
    table_.assign(static_cast<size_t>(n), 1.0);
    int last = -1;  // the last measured index
    double at_last = 0;
    for (int i = 0; i < n; ++i) {
      const double t = measured_[i].value();
      if (t < 0) continue;
      if (last < 0) {
        for (int j = 0; j < i; ++j) table_[j] = t * (j + 1) / (i + 1);
      } else {
        for (int j = last + 1; j < i; ++j) table_[j] = at_last + (t - at_last) * (j - last) / (i - last);
      }
      table_[i] = t;
      last = i;
      at_last = t;
    }
    if (last >= 0)
      for (int j = last + 1; j < n; ++j) table_[j] = at_last;
    stale_ = false;
  }
  return table_[static_cast<size_t>(std::clamp(width, 1, n) - 1)];
}

std::vector<int> allot_drafts(const std::vector<SequenceDrafts>& seqs, int base_width,
                              const std::function<double(int)>& pass_s, double draft_s_per_token, int max_width) {
  const double per_draft = std::max(draft_s_per_token, 0.0);
  std::vector<int> k(seqs.size(), 0);
  int width = base_width, drafts = 0;
  double tokens = base_width;
  struct Extra {
    double gain;
    size_t seq;
  };
  std::vector<Extra> extras;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const double a = std::clamp(seqs[i].acceptance, 0.0, 0.999);
    k[i] = std::max(seqs[i].min, 0);
    width += 1 + k[i];
    drafts += k[i];
    tokens += expected_tokens(a, k[i]);
    for (int j = k[i] + 1; j <= seqs[i].max; ++j) extras.push_back({std::pow(a, j), i});
  }
  // Most likely first; a sequence's own drafts come in order, as their gains fall with j.
  std::stable_sort(extras.begin(), extras.end(), [](const Extra& x, const Extra& y) { return x.gain > y.gain; });
  size_t best_n = 0;
  double best_rate = tokens / (pass_s(width) + drafts * per_draft);
  for (size_t n = 0; n < extras.size() && width < max_width; ++n) {
    tokens += extras[n].gain;
    ++width;
    ++drafts;
    const double rate = tokens / (pass_s(width) + drafts * per_draft);
    if (rate > best_rate * (1 + 1e-9)) {
      best_rate = rate;
      best_n = n + 1;
    }
  }
  for (size_t n = 0; n < best_n; ++n) ++k[extras[n].seq];
  return k;
}

int probe_every(const std::function<double(int)>& pass_s, int width, int sequences, int max_drafts,
                double draft_s_per_token, double probe_draft_s) {
  const double per_draft = std::max(draft_s_per_token, 0.0), plain_s = pass_s(width);
  bool could_pay = false;
  for (int k = 1; k <= max_drafts && !could_pay; ++k)
    could_pay = (width + k) / (pass_s(width + k) + k * per_draft) > (1 + kPaysMargin) * width / plain_s;
  const double probe_s = std::max(probe_draft_s, 0.0) + std::max(pass_s(width + 1) - plain_s, 0.0);
  const double every = std::ceil(std::max(sequences, 1) * probe_s / (kProbeShare * plain_s));
  const int lo = could_pay ? kMinProbeEvery : kRareProbeEvery;
  return static_cast<int>(std::clamp(every, static_cast<double>(lo), static_cast<double>(kMaxProbeEvery)));
}

}  // namespace clusterctl::speculative
