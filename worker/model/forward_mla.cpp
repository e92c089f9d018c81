// Multi-head latent attention (deepseek2), the ForwardPass block of architectures/deepseek2.cpp.
// Per token the cache holds [latent (kv_lora_rank), RoPE key (rope_dim)]; head h's key at a
// position is (k_b_h latent, RoPE key) and its value v_b_h latent, so its score is
// (k_b_h^T q_nope) . latent + q_rope . RoPE key and its output v_b_h (sum_j p_j latent_j):
// the expansions are applied once to the query and once to the attended latent, never to the
// cache. This rank's heads are its Partition's query heads; the latent is every rank's.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "worker/common/error.h"
#include "worker/model/forward.h"
#include "worker/model/pool_meetings.h"

namespace clusterctl::model {
void ForwardPass::latent_attention(int64_t il) {
  const HParams& hp = m_.hp;
  const LayerWeights& L = m_.weights.layers[il];
  const Batch& b = *batch_;
  const int64_t T = n_tokens_, E = hp.n_embd, H = n_q_, half = m_.rope.dims() / 2;
  const int64_t DK = hp.head_dim_k, DV = hp.head_dim, R = hp.rope_dim, nope = DK - R;
  const int64_t KVL = hp.kv_lora_rank, QL = hp.q_lora_rank, row = KVL + R;
  // One decode token on several threads: the projections of the normed input in one pool
  // meeting, the heads in another (each pool meeting costs about as much as a small matmul).
  const bool one_token = latent_heads_in_one_meeting(T, n_mv_, pool_.size());
  each_token(T, E,
             [&](int64_t t) { rms_norm(&x_[t * E], L.floats(TensorKind::AttnNorm), &xn_[t * E], E, hp.rms_eps); });
  // This rank's query heads, [nope | rope] each (through the low-rank query where the layer has
  // one), and the token's latent and RoPE key.
  const kernels::Matrix& q_in = L.matrix(QL > 0 ? TensorKind::AttnQA : TensorKind::AttnQ);
  float* q_out = QL > 0 ? mla_qa_.data() : q_.data();
  const kernels::Matrix& kv_a = L.matrix(TensorKind::AttnKvAMqa);
  if (one_token) {
    const int64_t rows_per_slice = decode_slice_rows(q_in.rows + kv_a.rows, pool_.size());
    add_slices(q_in, xn_.data(), q_out, rows_per_slice);
    add_slices(kv_a, xn_.data(), mla_kva_.data(), rows_per_slice);
    run_slices();
  } else {
    project(q_in, xn_.data(), T, n_mv_, q_out);
    project(kv_a, xn_.data(), T, n_mv_, mla_kva_.data());
  }
  if (QL > 0) {
    for (int64_t t = 0; t < T; ++t)
      rms_norm(&mla_qa_[t * QL], L.floats(TensorKind::AttnQANorm), &mla_qa_[t * QL], QL, hp.rms_eps);
    project(L.matrix(TensorKind::AttnQB), mla_qa_.data(), T, n_mv_, q_.data());
  }
  // The latent (normed) and RoPE key stored before attending: later tokens of the batch see it.
  for (int64_t t = 0; t < T; ++t) {
    float* kva = &mla_kva_[t * row];
    rms_norm(kva, L.floats(TensorKind::AttnKvANorm), kva, KVL, hp.rms_eps);
    m_.rope.apply(kva + KVL, &rope_cos_[t * half], &rope_sin_[t * half]);
    uint8_t* cached = cache_.key(il, b.slot[t], 0, b.pos[t]);
    for (int64_t i = 0; i < row; ++i) cache_.store(cached + i * cache_.elem_bytes(), kva[i]);
    for (int64_t h = 0; h < H; ++h) {
      float* q = &q_[(t * H + h) * DK];
      m_.rope.apply(q + nope, &rope_cos_[t * half], &rope_sin_[t * half]);
      std::copy_n(q + nope, R, &mla_query_[(t * H + h) * row + KVL]);
    }
  }
  // llama.cpp's scale: YaRN's magnitude enters the scores squared (its attn_factor cancels the
  // factor ggml's RoPE applies, then DeepSeek's mscale_all_dim is applied to both q and k).
  const float fs = m_.rope.freq_scale();
  const float attn_factor_org = m_.rope.attn_factor() * (1.0f + 0.1f * std::log(1.0f / fs));
  const float mscale = attn_factor_org * (1.0f + 0.1f * hp.rope_yarn_log_mul * std::log(1.0f / fs));
  const float kq_scale = 1.0f * mscale * mscale / std::sqrt(static_cast<float>(DK));
  if (one_token) {
    latent_heads_one_token(il, kq_scale);
  } else {
    // Head by head over the batch: the absorbed query k_b_h^T q_nope.
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t t = 0; t < T; ++t) std::copy_n(&q_[(t * H + h) * DK], nope, &mla_gather_[t * nope]);
      project(L.expert(TensorKind::AttnKB, m_.part.q_heads.begin + h), mla_gather_.data(), T, n_mv_,
              mla_head_out_.data());
      for (int64_t t = 0; t < T; ++t) std::copy_n(&mla_head_out_[t * KVL], KVL, &mla_query_[(t * H + h) * row]);
    }
    latent_attend(il, b, kq_scale);
    // Each head's value expansion v_b_h of its attended latent, into attn_ as [head][DV].
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t t = 0; t < T; ++t) std::copy_n(&mla_out_[(t * H + h) * KVL], KVL, &mla_gather_[t * KVL]);
      project(L.expert(TensorKind::AttnVB, m_.part.q_heads.begin + h), mla_gather_.data(), T, n_mv_,
              mla_head_out_.data());
      for (int64_t t = 0; t < T; ++t) std::copy_n(&mla_head_out_[t * DV], DV, &attn_[t * q_dim_ + h * DV]);
    }
  }
  add_attention_output(L.matrix(TensorKind::AttnOutput));
}

// As ggml's CPU flash attention, which llama.cpp runs MLA with: a pass of fewer than 64 tokens
// (decoding, short prompts) converts the query to the cache type, dots it with each cached row and
// keeps the weighted sum of latents in that type (F16: rounded after every position, with the
// online softmax's rescaling); a pass of 64 or more attends in tiles of 64 positions in float.
// Matching its roundings matters here: a mixture of experts routes on small differences.
void ForwardPass::latent_attend(int64_t il, const Batch& b, float kq_scale) {
  constexpr int64_t kTile = 64;  // ggml's GGML_FA_TILE_Q and GGML_FA_TILE_KV
  const int64_t T = b.size(), H = n_q_, KVL = m_.hp.kv_lora_rank, row = KVL + m_.hp.rope_dim;
  const gguf::GgmlType ct = cache_.type();
  const bool half_cache = ct == gguf::GgmlType::F16, tiled = T >= kTile;
  const size_t eb = cache_.elem_bytes();
  const int64_t ctx = cache_.n_ctx();
  const int64_t n_items = T * H;
  // The tiled path reads every cached row once per head and token: for a batch of one sequence
  // (a prompt) its rows are converted to floats once here instead (exact: the same bits), and
  // also transposed (rows_t[i * n_max + j] = element i of position j), the layout in which
  // f32_column_dots gives a tile's scores as ggml's simd_gemm sums them.
  bool one_slot = tiled;
  int64_t n_max = 0;
  for (int64_t t = 0; t < T; ++t)
    one_slot = one_slot && b.slot[t] == b.slot[0], n_max = std::max<int64_t>(n_max, b.pos[t] + 1);
  std::vector<float> rows_f(one_slot ? static_cast<size_t>(n_max * row) : 0), rows_t(rows_f.size());
  if (one_slot) {
    const uint8_t* rows = cache_.key(il, b.slot[0], 0, 0);
    if (half_cache)
      kernels::f16_to_f32(n_max * row, reinterpret_cast<const kernels::fp16_t*>(rows), rows_f.data());
    else
      for (int64_t j = 0; j < n_max; ++j) kernels::dequantize_row(ct, rows + j * row * eb, &rows_f[j * row], row);
    for (int64_t j = 0; j < n_max; ++j)
      for (int64_t i = 0; i < row; ++i) rows_t[i * n_max + j] = rows_f[j * row + i];
  }
  auto work = [&](int ith, int nth) {
    float* scores = thread_scratch(ith);
    float* latent = scores + ctx + floats_for_bytes(kernels::activation_row_bytes(ct, row));
    // Items dealt round-robin: a prompt's later tokens attend to more positions, so contiguous
    // ranges would leave the last thread with most of the work (3/4 of it with two threads).
    for (int64_t item = ith; item < n_items; item += nth) {
      const int64_t t = item / H, h = item % H;
      const int64_t slot = b.slot[t], n_pos = b.pos[t] + 1;
      const float* query = &mla_query_[(t * H + h) * row];
      const uint8_t* rows = cache_.key(il, slot, 0, 0);
      float* out = &mla_out_[(t * H + h) * KVL];
      if (!tiled) {
        attend_latent_rows(query, rows, n_pos, kq_scale, ith, out);
        continue;
      }
      std::fill_n(out, KVL, 0.0f);
      float M = -INFINITY, S = 0.0f;
      // Float query against the cached rows as floats, softmax and sums tile by tile.
      for (int64_t j0 = 0; j0 < n_pos; j0 += kTile) {
        const int64_t j1 = std::min(n_pos, j0 + kTile);
        float tile_max = -INFINITY;
        if (one_slot) kernels::f32_column_dots(row, j1 - j0, &rows_t[j0], n_max, query, &scores[j0]);
        for (int64_t j = j0; j < j1; ++j) {
          if (!one_slot) {
            kernels::dequantize_row(ct, rows + j * row * eb, latent, row);
            kernels::f32_column_dots(row, 1, latent, 1, query, &scores[j]);
          }
          scores[j] *= kq_scale;
          tile_max = std::max(tile_max, scores[j]);
        }
        const float m_new = std::max(M, tile_max);
        if (m_new > M) {
          const float ms = std::exp(M - m_new);
          for (int64_t r = 0; r < KVL; ++r) out[r] *= ms;
          S *= ms;
        }
        M = m_new;
        double sum = 0;
        for (int64_t j = j0; j < j1; ++j) sum += scores[j] = std::exp(scores[j] - M);
        S += static_cast<float>(sum);
        for (int64_t j = j0; j < j1; ++j) {
          const float* lat = one_slot ? &rows_f[j * row] : latent;
          if (!one_slot) kernels::dequantize_row(ct, rows + j * row * eb, latent, KVL);
          kernels::f32_mad(KVL, out, lat, scores[j]);
        }
      }
      const float inv = S == 0.0f ? 0.0f : 1.0f / S;
      for (int64_t r = 0; r < KVL; ++r) out[r] *= inv;
    }
  };
  int64_t positions = 0;
  for (int64_t t = 0; t < T; ++t) positions += b.pos[t] + 1;
  if (pool_.size() == 1 || positions * H * row < kInlineAttentionWork)
    work(0, 1);
  else
    pool_.run(work);
}

void ForwardPass::attend_latent_rows(const float* query, const uint8_t* rows, int64_t n_pos, float kq_scale, int ith,
                                     float* out) {
  const int64_t KVL = m_.hp.kv_lora_rank, row = KVL + m_.hp.rope_dim;
  const gguf::GgmlType ct = cache_.type();
  const bool half_cache = ct == gguf::GgmlType::F16;
  const size_t eb = cache_.elem_bytes();
  float* scores = thread_scratch(ith);
  void* q_conv = scores + cache_.n_ctx();
  float* latent = scores + cache_.n_ctx() + floats_for_bytes(kernels::activation_row_bytes(ct, row));
  kernels::fp16_t* acc16 = reinterpret_cast<kernels::fp16_t*>(latent + row);
  std::fill_n(out, KVL, 0.0f);
  float M = -INFINITY, S = 0.0f;
  kernels::quantize_activations(ct, query, q_conv, row);
  std::fill_n(acc16, half_cache ? KVL : 0, kernels::fp32_to_fp16(0.0f));
  kernels::vec_dots(ct, row, rows, row * eb, n_pos, q_conv, scores);
  for (int64_t j = 0; j < n_pos; ++j) {
    const float s = scores[j] * kq_scale;
    float ms = 1.0f, vs = 1.0f;
    if (s > M) {  // a new maximum: what was summed is rescaled, this position weighs 1
      const float m_old = M;
      M = s;
      ms = std::exp(m_old - M);
      if (half_cache)
        kernels::f16_scale(KVL, acc16, ms);
      else
        for (int64_t r = 0; r < KVL; ++r) out[r] *= ms;
    } else {
      vs = std::exp(s - M);
    }
    if (half_cache) {
      kernels::f16_mad(KVL, acc16, reinterpret_cast<const kernels::fp16_t*>(rows + j * row * eb), vs);
    } else {
      kernels::dequantize_row(ct, rows + j * row * eb, latent, KVL);
      kernels::f32_mad(KVL, out, latent, vs);
    }
    S = S * ms + vs;
  }
  if (half_cache) kernels::f16_to_f32(KVL, acc16, out);
  const float inv = S == 0.0f ? 0.0f : 1.0f / S;
  for (int64_t r = 0; r < KVL; ++r) out[r] *= inv;
}

void ForwardPass::latent_heads_one_token(int64_t il, float kq_scale) {
  const LayerWeights& L = m_.weights.layers[il];
  const int64_t H = n_q_, DK = m_.hp.head_dim_k, DV = m_.hp.head_dim, KVL = m_.hp.kv_lora_rank;
  const int64_t row = KVL + m_.hp.rope_dim, n_pos = batch_->pos[0] + 1, first = m_.part.q_heads.begin;
  const uint8_t* rows = cache_.key(il, batch_->slot[0], 0, 0);
  std::atomic<int64_t> next{0};
  pool_.run([&](int ith, int) {
    kernels::Workspace& ws = thread_ws_[ith];
    for (int64_t h = next.fetch_add(1, std::memory_order_relaxed); h < H;
         h = next.fetch_add(1, std::memory_order_relaxed)) {
      float* query = &mla_query_[h * row];  // its RoPE part is in place
      kernels::matmul(L.expert(TensorKind::AttnKB, first + h), &q_[h * DK], 1, query, serial_pool_, ws,
                      kernels::Kernels::MatrixVector);
      float* attended = &mla_out_[h * KVL];
      attend_latent_rows(query, rows, n_pos, kq_scale, ith, attended);
      kernels::matmul(L.expert(TensorKind::AttnVB, first + h), attended, 1, &attn_[h * DV], serial_pool_, ws,
                      kernels::Kernels::MatrixVector);
    }
  });
}

}  // namespace clusterctl::model
