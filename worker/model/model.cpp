#include "worker/model/model.h"

#include "worker/common/error.h"

namespace clusterctl::model {

HParams Model::read_hparams(const gguf::GgufFile& f) {
  if (f.architecture().empty())
    throw Error(f.path() + ": metadata key 'general.architecture' is missing: not a model file");
  find_architecture(f.architecture(), f.path());
  return HParams::from_gguf(f);
}

Model Model::load(const gguf::GgufFile& f, const Partition& part) {
  HParams hp = read_hparams(f);
  const Architecture& arch = find_architecture(hp.arch, f.path());
  if (hp.head_dim == 0 || hp.n_ff == 0)
    throw Error(f.path() + ": head size or FFN size is zero in the metadata: the file is not a complete model");
  if (arch.experts_required && hp.n_expert == 0)
    throw Error(f.path() + ": a " + hp.arch + " model needs '" + f.arch_key("expert_count") +
                "' in its metadata: the file is not a complete model");
  if (part.q_heads.begin < 0 || part.q_heads.end > hp.n_head || part.q_heads.size() <= 0 || part.ffn.begin < 0 ||
      part.ffn.end > hp.n_ff || part.ffn.size() <= 0 || part.vocab.begin < 0 || part.vocab.end > hp.n_vocab ||
      part.vocab.size() <= 0 || part.experts.begin < 0 || part.experts.end > hp.n_expert ||
      (hp.n_expert > 0 && part.experts.size() <= 0) || part.dense_ffn.begin < 0 || part.dense_ffn.end > hp.n_ff_dense ||
      part.shared_ffn.begin < 0 || part.shared_ffn.end > int64_t{hp.n_ff} * hp.n_expert_shared)
    throw Error(f.path() + ": partition " + part.describe() + " lies outside the model (" + std::to_string(hp.n_head) +
                " heads, FFN " + std::to_string(hp.n_ff) + ", vocabulary " + std::to_string(hp.n_vocab) + ")");
  ModelWeights w = ModelWeights::load(f, hp, arch, part);
  Rope rope(hp, arch.rope, w.rope_freq_factors, f.path());
  return Model{&f, std::move(hp), &arch, part, std::move(w), std::move(rope)};
}

}  // namespace clusterctl::model
