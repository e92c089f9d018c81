#include "worker/speculative/drafter.h"

#include <algorithm>
#include <filesystem>

#include "worker/common/error.h"
#include "worker/speculative/model_drafter.h"

namespace clusterctl::speculative {

void NgramDrafter::propose(int32_t, const std::vector<int32_t>& context, int k, sampling::Sampler*, Draft& out) {
  out.clear();
  const int64_t len = static_cast<int64_t>(context.size());
  if (k <= 0) return;
  for (int64_t n = std::min<int64_t>(max_ngram_, len - 1); n >= min_ngram_; --n) {
    const int32_t* suffix = context.data() + len - n;
    // The latest earlier occurrence: its continuation is the most recent evidence.
    for (int64_t at = len - n - 1; at >= 0; --at) {
      if (!std::equal(suffix, suffix + n, context.data() + at)) continue;
      const int64_t from = at + n, to = std::min<int64_t>(len, from + k);
      out.tokens.assign(context.begin() + from, context.begin() + to);
      return;
    }
  }
}

std::unique_ptr<Drafter> open_drafter(const std::string& spec, const DraftTarget& target) {
  if (spec == "ngram") return std::make_unique<NgramDrafter>();
  if (spec.empty()) throw Error("--draft is empty: give 'ngram' (prompt lookup) or a draft model's GGUF file");
  if (!std::filesystem::is_regular_file(spec))
    throw Error("--draft " + spec +
                ": no such file; give a GGUF draft model with the target's vocabulary, or 'ngram' for prompt lookup");
  return std::make_unique<ModelDrafter>(spec, target);
}

}  // namespace clusterctl::speculative
