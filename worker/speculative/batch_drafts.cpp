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

PlainUnitCosts::PlainUnitCosts(int plain_width, int max_width, bool seconds_as_unit)
    : plain_width_(plain_width), seconds_as_unit_(seconds_as_unit), widths_(max_width) {}

void PlainUnitCosts::record_pass(int width, double seconds) {
  if (!(seconds >= 0)) return;
  if (width == plain_width_) plain_s_.add(seconds);
  if (width <= widths_.max_width()) widest_ = std::max(widest_, width);
  pending_.push_back({width, seconds, -1, -1});
  flush();
}

void PlainUnitCosts::record_draft(double per_token_s, double probe_s) {
  if (per_token_s < 0 && probe_s < 0) return;
  pending_.push_back({0, -1, per_token_s, probe_s});
  flush();
}

double PlainUnitCosts::probe_draft() const {
  if (probe_draft_.value() >= 0) return probe_draft_.value();
  return std::max(draft_per_token(), 0.0) * (kMinProbeEvery + 1);
}

void PlainUnitCosts::flush() {
  const double unit = plain_s_.value() > 0 ? plain_s_.value() : seconds_as_unit_ ? 1.0 : -1.0;
  if (unit <= 0) return;
  for (const Pending& p : pending_) {
    if (p.pass_s >= 0) widths_.record(p.width, p.pass_s / unit);
    if (p.per_token_s >= 0) draft_per_token_.add(p.per_token_s / unit);
    if (p.probe_s >= 0) probe_draft_.add(p.probe_s / unit);
  }
  measured_any_ = measured_any_ || !pending_.empty();
  pending_.clear();
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

BatchDrafting::BatchDrafting(int max_width, int draft_max, bool seconds_as_unit)
    : max_width_(max_width), draft_max_(draft_max), seconds_as_unit_(seconds_as_unit) {}

PlainUnitCosts& BatchDrafting::costs(int decoding) {
  return by_decoding_.try_emplace(decoding, decoding, max_width_, seconds_as_unit_).first->second;
}

std::vector<int> BatchDrafting::drafts(int decoding, std::vector<SequenceDrafts> seqs, const std::vector<int>& idle) {
  const PlainUnitCosts& c = costs(decoding);
  std::vector<int> k(seqs.size());
  if (!c.measured()) {  // the unit first: a plain step
    for (size_t i = 0; i < seqs.size(); ++i) k[i] = std::min(seqs[i].min, seqs[i].max);
    return k;
  }
  const auto pass = [&c](int w) { return c.pass(w); };
  const double per_draft = std::max(c.draft_per_token(), 0.0);
  const int every = probe_every(pass, decoding, static_cast<int>(seqs.size()), draft_max_, per_draft, c.probe_draft());
  for (size_t i = 0; i < seqs.size(); ++i)
    if (i < idle.size() && idle[i] >= every) seqs[i].min = std::max(seqs[i].min, std::min(1, seqs[i].max));
  // Passes wider than the widest measured are guessed as cheap as it: the step's drafts grow
  // towards them kGrowth-fold (the sequences' --draft-min and probes aside).
  const int seq_count = static_cast<int>(seqs.size());
  const int reach = std::max(c.widest() - decoding, 0);
  const int most = grown_draft_length(max_width_, reach, 0, kFirstDraft * seq_count);
  return allot_drafts(seqs, decoding - seq_count, pass, per_draft, std::min(max_width_, decoding + most));
}

void BatchDrafting::record_step(int decoding, int width, double seconds) {
  costs(decoding).record_pass(width, seconds);
}

void BatchDrafting::record_draft(int decoding, double per_token_s, double probe_s) {
  costs(decoding).record_draft(per_token_s, probe_s);
}

}  // namespace clusterctl::speculative
