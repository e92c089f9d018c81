#include "controller/config/nearest_name.h"

#include <algorithm>
#include <vector>

namespace clusterctl::config {

size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: insertions, deletions, substitutions and swaps of neighbours,
  // because "prot" for "port" is one slip of the fingers, not two.
  const size_t w = b.size() + 1;
  std::vector<size_t> d((a.size() + 1) * w);
  for (size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t v = std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1, d[(i - 1) * w + j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = std::min(v, d[(i - 2) * w + j - 2] + 1);
      d[i * w + j] = v;
    }
  return d[a.size() * w + b.size()];
}

std::string nearest_name(std::string_view word, std::span<const std::string_view> candidates) {
  size_t limit = std::max<size_t>(std::max<size_t>(1, word.size() / 3), word.size() >= 6 ? 2 : 1);
  std::string_view best;
  size_t best_distance = limit + 1;
  for (auto c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  return std::string(best);
}

}  // namespace clusterctl::config
