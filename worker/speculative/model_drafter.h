#pragma once
// A draft model on rank 0: a world-size-1 engine over its own GGUF file, one KV slot per
// sequence. Each slot remembers which tokens its cache holds, so a round runs only what is new
// since the last one (the accepted tokens and the target's own token) and then drafts one token
// per forward pass; positions the target rejected are overwritten by the next round, as the
// target's are (kv_cache.h). A slot that fell more than kCatchUpMax tokens behind (rounds without
// drafts) restarts from the context's first token and its last kRestartTokens (draft_rule.h), so
// a probe after many rounds costs a short prompt pass of the draft, not one token per round missed:
// the draft then sees that window only, which changes its drafts, never what the target emits.
#include <memory>
#include <vector>

#include "collectives/communicator.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/engine.h"
#include "worker/speculative/drafter.h"

namespace clusterctl::speculative {

class ModelDrafter : public Drafter {
 public:
  // Throws clusterctl::Error when the file is no model or its vocabulary differs from the target's.
  ModelDrafter(const std::string& path, const DraftTarget& target);
  ~ModelDrafter() override;
  void propose(int32_t slot, const std::vector<int32_t>& context, int k, sampling::Sampler* sampler,
               Draft& out) override;
  void retain(int32_t slot, size_t n_tokens) override;
  std::string describe() const override { return path_; }
  double last_catch_up_s() const override { return catch_up_s_; }

 private:
  std::string path_;
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<collectives::Communicator> comm_;
  std::unique_ptr<model::Engine> engine_;
  // Per slot: the context with [skip_from, skip_to) left out (after a restart) is what the draft
  // sees, its token i at position i; `tokens`: those whose keys and values the cache holds.
  struct SlotCache {
    std::vector<int32_t> tokens;
    size_t skip_from = 0, skip_to = 0;
  };
  std::vector<SlotCache> slots_;
  std::vector<int32_t> view_;
  double catch_up_s_ = 0;
  model::Batch batch_;
};

}  // namespace clusterctl::speculative
