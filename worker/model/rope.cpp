#include "worker/model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "worker/common/error.h"

namespace clusterctl::model {

std::vector<float> llama3_freq_factors(const HParams& hp) {
  const double factor = hp.rope_scaling_factor > 0 ? hp.rope_scaling_factor : 8.0;
  const double low = hp.rope_low_freq_factor > 0 ? hp.rope_low_freq_factor : 1.0;
  const double high = hp.rope_high_freq_factor > 0 ? hp.rope_high_freq_factor : 4.0;
  const double old_ctx = hp.rope_scaling_orig_ctx > 0 ? hp.rope_scaling_orig_ctx : 8192.0;
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  std::vector<float> out;
  for (uint32_t i = 0; i < hp.rope_dim; i += 2) {
    const double freq = 1.0 / std::pow(double(hp.rope_freq_base), double(i) / hp.rope_dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      out.push_back(static_cast<float>(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

Rope::Rope(const HParams& hp, RopeLayout layout, std::vector<float> freq_factors, const std::string& file)
    : layout_(layout), n_dims_(static_cast<int>(hp.rope_dim)), freq_factors_(std::move(freq_factors)) {
  if (n_dims_ <= 0 || n_dims_ % 2 != 0 || n_dims_ > static_cast<int>(hp.head_dim))
    throw Error(file + ": rope.dimension_count " + std::to_string(n_dims_) +
                " must be even and at most the head size " + std::to_string(hp.head_dim));
  theta_scale_ = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(n_dims_));
  const std::string& type = hp.rope_scaling_type;
  const bool llama3 = type == "llama3" || (type.empty() && hp.rope_low_freq_factor > 0 && hp.rope_high_freq_factor > 0);
  if (type == "linear") {
    if (hp.rope_scaling_factor > 0) freq_scale_ = 1.0f / hp.rope_scaling_factor;
  } else if (type == "yarn") {
    // As llama.cpp: interpolation by the factor, the original frequencies kept (ext_factor 1)
    // for the pairs whose wavelength fits the original context many times (beta_fast = 32
    // rotations) down to none for those that rotate less than once (beta_slow = 1).
    if (hp.rope_scaling_factor > 0) freq_scale_ = 1.0f / hp.rope_scaling_factor;
    ext_factor_ = 1.0f;
    mscale_ = hp.rope_attn_factor;
    if (hp.rope_yarn_log_mul != 0.0f) {
      // llama.cpp's magnitude with DeepSeek's mscale_all_dim (the file's yarn_log_multiplier):
      // the ratio of two YaRN magnitudes (1 but for rounding) over the one ggml multiplies by.
      auto get_mscale = [](float scale, float m) { return scale <= 1.0f ? 1.0f : (0.1f * m * std::log(scale) + 1.0f); };
      const float factor = 1.0f / freq_scale_;
      const float all_dims = hp.rope_yarn_log_mul;
      const float m = hp.arch == "deepseek2" && all_dims != 1.0f ? all_dims : 1.0f;
      mscale_ = get_mscale(factor, m) / get_mscale(factor, all_dims);
      mscale_ *= 1.0f / (1.0f + 0.1f * std::log(factor));
      mscale_ *= hp.rope_attn_factor;
    }
    const float orig_ctx = static_cast<float>(hp.rope_scaling_orig_ctx ? hp.rope_scaling_orig_ctx : hp.n_ctx_train);
    auto corr_dim = [&](float rotations) {
      return static_cast<float>(n_dims_) * std::log(orig_ctx / (rotations * 2 * static_cast<float>(std::numbers::pi))) /
             (2 * std::log(hp.rope_freq_base));
    };
    corr_dims_[0] = std::max(0.0f, std::floor(corr_dim(32.0f)));
    corr_dims_[1] = std::min(static_cast<float>(n_dims_ - 1), std::ceil(corr_dim(1.0f)));
  } else if (llama3) {
    if (freq_factors_.empty()) freq_factors_ = llama3_freq_factors(hp);
  } else if (!type.empty() && type != "none") {
    throw Error(file + ": RoPE scaling '" + type + "' is not supported (supported: none, linear, llama3, yarn)");
  }
  if (!freq_factors_.empty() && static_cast<int>(freq_factors_.size()) != n_dims_ / 2)
    throw Error(file + ": rope_freqs has " + std::to_string(freq_factors_.size()) + " values, expected " +
                std::to_string(n_dims_ / 2));
}

void Rope::angles(int64_t pos, float* cos_out, float* sin_out) const {
  float theta = static_cast<float>(pos);
  for (int i = 0; i < n_dims_ / 2; ++i) {
    const float ff = freq_factors_.empty() ? 1.0f : freq_factors_[i];
    const float extrap = theta / ff;
    float t = freq_scale_ * extrap;
    float mscale = mscale_;
    if (ext_factor_ != 0.0f) {
      const float y = (static_cast<float>(i) - corr_dims_[0]) / std::max(0.001f, corr_dims_[1] - corr_dims_[0]);
      const float ramp = (1 - std::min(1.0f, std::max(0.0f, y))) * ext_factor_;
      t = t * (1 - ramp) + extrap * ramp;
      mscale *= 1.0f + 0.1f * std::log(1.0f / freq_scale_);
    }
    cos_out[i] = std::cos(t) * mscale;
    sin_out[i] = std::sin(t) * mscale;
    theta *= theta_scale_;
  }
}

void Rope::apply(float* x, const float* c, const float* s) const {
  const int half = n_dims_ / 2;
  if (layout_ == RopeLayout::Adjacent) {
    for (int i = 0; i < half; ++i) {
      const float x0 = x[2 * i], x1 = x[2 * i + 1];
      x[2 * i] = x0 * c[i] - x1 * s[i];
      x[2 * i + 1] = x0 * s[i] + x1 * c[i];
    }
  } else {
    for (int i = 0; i < half; ++i) {
      const float x0 = x[i], x1 = x[i + half];
      x[i] = x0 * c[i] - x1 * s[i];
      x[i + half] = x0 * s[i] + x1 * c[i];
    }
  }
}

}  // namespace clusterctl::model
