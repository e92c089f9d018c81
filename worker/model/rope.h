#pragma once
// Rotary position embedding, computed as ggml computes it (theta advanced by repeated
// multiplication in float) so positions rotate bit-for-bit like llama.cpp's.
#include <vector>

#include "worker/model/architecture.h"
#include "worker/model/hparams.h"

namespace clusterctl::model {

class Rope {
 public:
  // freq_factors: rope_freqs.weight when the file has it (Llama 3.1+); else derived from
  // rope.scaling.* metadata when that asks for Llama 3 scaling; else none. rope.scaling.type
  // "yarn" (Qwen3 and Qwen2.5 past their native context) interpolates frequencies as YaRN does.
  Rope(const HParams& hp, RopeLayout layout, std::vector<float> freq_factors, const std::string& file);

  int dims() const { return n_dims_; }
  // llama.cpp's attn_factor and freq_scale (the magnitude the angles carry before YaRN's own
  // factor; 1 over the position scaling), from which deepseek2 derives its attention scale.
  float attn_factor() const { return mscale_; }
  float freq_scale() const { return freq_scale_; }
  // cos/sin of every rotated pair at position `pos` (n_dims/2 values each).
  void angles(int64_t pos, float* cos_out, float* sin_out) const;
  // Rotates one head (head_dim values; only the first n_dims rotate) in place.
  void apply(float* head, const float* cos_v, const float* sin_v) const;

 private:
  RopeLayout layout_;
  int n_dims_;
  float theta_scale_;
  float freq_scale_ = 1.0f;
  // YaRN: how much of the original frequency each pair keeps (0: plain interpolation), the pairs
  // between which it ramps, and the magnitude every cos/sin is scaled by.
  float ext_factor_ = 0.0f;
  float corr_dims_[2] = {0, 0};
  float mscale_ = 1.0f;
  std::vector<float> freq_factors_;
};

// Llama 3 frequency factors (wavelength-dependent), as the Hugging Face conversion derives them.
std::vector<float> llama3_freq_factors(const HParams& hp);

}  // namespace clusterctl::model
