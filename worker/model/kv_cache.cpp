#include "worker/model/kv_cache.h"

#include <cstring>

#include "worker/common/error.h"

namespace clusterctl::model {

KvCache::KvCache(const HParams& hp, const Partition& part, int64_t n_ctx, int64_t n_slots, gguf::GgmlType type)
    : type_(type),
      n_ctx_(n_ctx),
      n_slots_(n_slots),
      n_heads_(hp.latent_attention() ? 1 : part.kv_heads(hp).size()),
      head_dim_(hp.latent_attention() ? hp.kv_lora_rank + hp.rope_dim : hp.head_dim) {
  if (type != gguf::GgmlType::F16 && type != gguf::GgmlType::F32)
    throw Error("the KV cache type must be f16 or f32 (got " + std::string(gguf::type_name(type)) + ")");
  if (n_ctx < 1 || n_slots < 1) throw Error("the context and the number of sequences must be at least 1");
  elem_ = type == gguf::GgmlType::F16 ? 2 : 4;
  const size_t n = static_cast<size_t>(hp.n_layer) * n_slots * n_heads_ * n_ctx * head_dim_ * elem_;
  // Left uninitialised: a position is always written before it is read, and untouched pages of
  // a long context cost no memory.
  bytes_each_ = n;
  k_ = std::make_unique_for_overwrite<uint8_t[]>(n);
  if (!hp.latent_attention()) v_ = std::make_unique_for_overwrite<uint8_t[]>(n);
}

uint64_t KvCache::bytes_per_token(const HParams& hp, const Partition& part, size_t elem_bytes) {
  if (hp.latent_attention()) return uint64_t{hp.n_layer} * (hp.kv_lora_rank + hp.rope_dim) * elem_bytes;
  return 2ull * hp.n_layer * static_cast<uint64_t>(part.kv_heads(hp).size()) * hp.head_dim * elem_bytes;
}

void KvCache::store(uint8_t* p, float v) const {
  if (type_ == gguf::GgmlType::F16) {
    kernels::fp16_t h = kernels::fp32_to_fp16(v);
    std::memcpy(p, &h, 2);
  } else {
    std::memcpy(p, &v, 4);
  }
}

}  // namespace clusterctl::model
