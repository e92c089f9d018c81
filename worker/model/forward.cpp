#include "worker/model/forward.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <numeric>

#include "worker/common/error.h"
#include "worker/model/pool_meetings.h"
#include "worker/model/shard_plan.h"

namespace clusterctl::model {
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] * scale) * w[i];
}

ForwardPass::ForwardPass(const Model& model, KvCache& cache, collectives::Communicator& comm, kernels::ThreadPool& pool,
                         int64_t max_batch)
    : m_(model), cache_(cache), comm_(comm), pool_(pool), max_batch_(max_batch) {
  const HParams& hp = m_.hp;
  if (max_batch < 1) throw Error("the batch size must be at least 1");
  n_q_ = m_.part.q_heads.size();
  const bool latent = hp.latent_attention();
  n_kv_ = latent ? 1 : m_.part.kv_heads(hp).size();
  if (cache.n_heads() != n_kv_ || cache.head_dim() != (latent ? hp.kv_lora_rank + hp.rope_dim : hp.head_dim))
    throw Error("the KV cache was made for a different partition of the model");
  q_dim_ = n_q_ * hp.head_dim;
  kv_dim_ = latent ? 0 : n_kv_ * hp.head_dim;
  n_ff_ = m_.part.ffn.size();
  n_vocab_ = m_.part.vocab.size();
  grid_ = reduction_grid(hp, SplitUnits::from_model(*m_.file, hp));
  const int64_t B = max_batch, E = hp.n_embd;
  x_.resize(B * E);
  xn_.resize(B * E);
  proj_.resize(B * E);
  q_.resize(B * n_q_ * std::max(hp.head_dim, hp.head_dim_k));
  attn_.resize(B * q_dim_);
  k_.resize(B * kv_dim_);
  v_.resize(B * kv_dim_);
  const int64_t widest_ffn = std::max({n_ff_, m_.part.dense_ffn.size(), m_.part.shared_ffn.size()});
  gate_.resize(B * widest_ffn);
  up_.resize(B * widest_ffn);
  if (latent) {
    const int64_t L = hp.kv_lora_rank, R = hp.rope_dim, nope = hp.head_dim_k - hp.rope_dim;
    mla_qa_.resize(B * hp.q_lora_rank);
    mla_kva_.resize(B * (L + R));
    mla_query_.resize(B * n_q_ * (L + R));
    mla_out_.resize(B * n_q_ * L);
    mla_gather_.resize(B * std::max(nope, L));
    mla_head_out_.resize(B * std::max<int64_t>(L, hp.head_dim));
  }
  if (hp.n_expert_shared > 0) shared_out_.resize(B * E);
  if (hp.n_expert > 0) {
    route_expert_.resize(B * hp.n_expert_used);
    route_weight_.resize(B * hp.n_expert_used);
    expert_rows_.resize(B);
    expert_weight_slot_.resize(B);
    expert_x_.resize(B * E);
    expert_scale_.resize(B);
    expert_out_.resize(B * E);
    const int64_t K = hp.n_expert_used, shared_ffn = m_.part.shared_ffn.size();
    moe_gate_.resize(K * n_ff_ + shared_ffn);
    moe_up_.resize(K * n_ff_ + shared_ffn);
    moe_down_.resize((K + 1) * E);
  }
  thread_ws_ = std::make_unique<kernels::Workspace[]>(pool.size());
  rope_cos_.resize(B * m_.rope.dims() / 2);
  rope_sin_.resize(B * m_.rope.dims() / 2);
  out_hidden_.resize(B * E);
  const int64_t ctx = cache.n_ctx();
  const gguf::GgmlType ct = cache.type();
  scratch_floats_ = ctx + floats_for_bytes(kernels::activation_row_bytes(ct, cache.head_dim())) +
                    floats_for_bytes(kernels::activation_row_bytes(ct, ctx)) + 16;
  // A cached row converted to floats, and the attended latent's F16 sums (forward_mla.cpp).
  if (latent) scratch_floats_ += hp.kv_lora_rank + hp.rope_dim + (hp.kv_lora_rank + 1) / 2;
  scratch_floats_ = (scratch_floats_ + 15) / 16 * 16;  // keep each thread's block 64-byte aligned apart
  scratch_.resize(scratch_floats_ * pool.size());
}

void ForwardPass::check(const Batch& b) const {
  if (b.size() < 1) throw Error("empty batch");
  if (b.size() > max_batch_)
    throw Error("batch of " + std::to_string(b.size()) + " tokens exceeds the batch size " +
                std::to_string(max_batch_));
  if (b.n_decode > b.size())
    throw Error("the batch marks " + std::to_string(b.n_decode) + " decode tokens but holds " +
                std::to_string(b.size()));
  for (int64_t i = 0; i < b.size(); ++i) {
    if (b.token[i] < 0 || b.token[i] >= static_cast<int64_t>(m_.hp.n_vocab))
      throw Error("token id " + std::to_string(b.token[i]) + " is outside the model's vocabulary of " +
                  std::to_string(m_.hp.n_vocab));
    if (b.pos[i] < 0 || b.pos[i] >= cache_.n_ctx())
      throw Error("position " + std::to_string(b.pos[i]) + " is outside the context of " +
                  std::to_string(cache_.n_ctx()) + " tokens; raise --ctx or shorten the input");
    if (b.slot[i] < 0 || b.slot[i] >= cache_.n_slots())
      throw Error("KV-cache slot " + std::to_string(b.slot[i]) + " does not exist (" +
                  std::to_string(cache_.n_slots()) + " slots)");
  }
}

LocalLogits ForwardPass::run(const Batch& b) {
  check(b);
  const HParams& hp = m_.hp;
  const ModelWeights& w = m_.weights;
  const int64_t T = b.size(), E = hp.n_embd;
  const int64_t half = m_.rope.dims() / 2;
  // Tokens [0, n_mv) take the matrix-vector kernels, the rest the tiles (Batch::n_decode).
  const int64_t n_mv = b.n_decode >= 0 ? b.n_decode : (T == 1 ? 1 : 0);

  for (int64_t t = 0; t < T; ++t) {
    kernels::dequantize_row(w.token_embd.type, w.token_embd.data + w.token_embd.row_stride * b.token[t], &x_[t * E], E);
    m_.rope.angles(b.pos[t], &rope_cos_[t * half], &rope_sin_[t * half]);
  }

  batch_ = &b, n_tokens_ = T, n_mv_ = n_mv;
  for (int64_t il = 0; il < static_cast<int64_t>(hp.n_layer); ++il) m_.arch->layer(*this, il);

  // LM head: this rank's vocabulary rows, only for the tokens that want logits.
  int64_t n_out = 0, n_out_mv = 0;
  for (int64_t t = 0; t < T; ++t)
    if (b.want_logits[t]) {
      rms_norm(&x_[t * E], w.output_norm.data(), &out_hidden_[n_out++ * E], E, hp.rms_eps);
      n_out_mv += t < n_mv;
    }
  LocalLogits out{nullptr, n_out, n_vocab_, m_.part.vocab.begin};
  if (n_out == 0) return out;
  // Grows to the largest number of outputs asked for once; decoding reuses it.
  if (logits_.size() < static_cast<size_t>(n_out * n_vocab_)) logits_.resize(n_out * n_vocab_);
  project(w.lm_head, out_hidden_.data(), n_out, n_out_mv, logits_.data());
  out.data = logits_.data();
  return out;
}

void ForwardPass::self_attention(int64_t il) {
  const HParams& hp = m_.hp;
  const LayerWeights& L = m_.weights.layers[il];
  const Batch& b = *batch_;
  const int64_t T = n_tokens_, E = hp.n_embd, D = hp.head_dim, half = m_.rope.dims() / 2;
  // This rank's query heads and the KV heads they read.
  each_token(T, E,
             [&](int64_t t) { rms_norm(&x_[t * E], L.floats(TensorKind::AttnNorm), &xn_[t * E], E, hp.rms_eps); });
  project(L.matrix(TensorKind::AttnQ), xn_.data(), T, n_mv_, q_.data());
  project(L.matrix(TensorKind::AttnK), xn_.data(), T, n_mv_, k_.data());
  project(L.matrix(TensorKind::AttnV), xn_.data(), T, n_mv_, v_.data());
  const bool bias = L.has(TensorKind::AttnQBias), qk_norm = L.has(TensorKind::AttnQNorm);
  // Per token: biases, per-head norms, RoPE, and its keys and values into the cache.
  each_token(T, q_dim_ + 3 * kv_dim_, [&](int64_t t) {
    float* q = &q_[t * q_dim_];
    float* k = &k_[t * kv_dim_];
    float* v = &v_[t * kv_dim_];
    if (bias) {
      const float *qb = L.floats(TensorKind::AttnQBias), *kb = L.floats(TensorKind::AttnKBias),
                  *vb = L.floats(TensorKind::AttnVBias);
      for (int64_t i = 0; i < q_dim_; ++i) q[i] += qb[i];
      for (int64_t i = 0; i < kv_dim_; ++i) k[i] += kb[i];
      for (int64_t i = 0; i < kv_dim_; ++i) v[i] += vb[i];
    }
    for (int64_t h = 0; h < n_q_; ++h) {
      if (qk_norm) rms_norm(q + h * D, L.floats(TensorKind::AttnQNorm), q + h * D, D, hp.rms_eps);
      m_.rope.apply(q + h * D, &rope_cos_[t * half], &rope_sin_[t * half]);
    }
    for (int64_t h = 0; h < n_kv_; ++h) {
      if (qk_norm) rms_norm(k + h * D, L.floats(TensorKind::AttnKNorm), k + h * D, D, hp.rms_eps);
      m_.rope.apply(k + h * D, &rope_cos_[t * half], &rope_sin_[t * half]);
      // Store this token's key and value before attending: tokens later in the batch see it.
      uint8_t* krow = cache_.key(il, b.slot[t], h, b.pos[t]);
      for (int64_t d = 0; d < D; ++d) {
        cache_.store(krow + d * cache_.elem_bytes(), k[h * D + d]);
        cache_.store(cache_.value_row(il, b.slot[t], h, d) + b.pos[t] * cache_.elem_bytes(), v[h * D + d]);
      }
    }
  });
  // The tokens' heads attend piece by piece where the output projection's all-reduce overlaps.
  add_attention_output(L.matrix(TensorKind::AttnOutput), [&](int64_t t0, int64_t t1) { attention(il, b, t0, t1); });
}

void ForwardPass::feed_forward(int64_t il) {
  const HParams& hp = m_.hp;
  const LayerWeights& L = m_.weights.layers[il];
  const int64_t T = n_tokens_, E = hp.n_embd;
  // This rank's slice of the hidden dimension (SwiGLU), of a dense FFN or of the experts.
  each_token(T, E, [&](int64_t t) { rms_norm(&x_[t * E], L.floats(TensorKind::FfnNorm), &xn_[t * E], E, hp.rms_eps); });
  if (!L.has(TensorKind::FfnRouter)) {
    // Piece by piece where the down projection's all-reduce overlaps: each token's gate and up rows.
    return add_row_parallel(L.matrix(TensorKind::FfnDown), grid_.ffn_down, gate_.data(), [&](int64_t t0, int64_t t1) {
      swiglu_hidden(L, TensorKind::FfnGate, TensorKind::FfnUp, t0, t1);
    });
  }
  if (experts_in_two_meetings(T, n_mv_, pool_.size(), hp.n_expert_used)) {
    experts_one_token(L);
  } else {
    experts(L, T, n_mv_);
    if (L.has(TensorKind::FfnGateShexp)) {  // the shared experts, added to the routed ones' sums
      swiglu(L, TensorKind::FfnGateShexp, TensorKind::FfnUpShexp, TensorKind::FfnDownShexp, shared_out_.data());
      for (int64_t i = 0; i < T * E; ++i) proj_[i] += shared_out_[i];
    }
  }
  add_all_reduced();
}

void ForwardPass::swiglu(const LayerWeights& L, TensorKind gate, TensorKind up, TensorKind down, double* out) {
  swiglu_hidden(L, gate, up, 0, n_tokens_);
  project_row_parallel(L.matrix(down), grid_.ffn_down, gate_.data(), n_tokens_, n_mv_, out);
}

void ForwardPass::swiglu_hidden(const LayerWeights& L, TensorKind gate, TensorKind up, int64_t t0, int64_t t1) {
  const int64_t F = L.matrix(gate).rows, E = m_.hp.n_embd;  // F: this rank's slice of the FFN
  const int64_t n = t1 - t0, mv = std::clamp<int64_t>(n_mv_ - t0, 0, n);
  project(L.matrix(gate), &xn_[t0 * E], n, mv, &gate_[t0 * F]);
  project(L.matrix(up), &xn_[t0 * E], n, mv, &up_[t0 * F]);
  gate_by_up(&gate_[t0 * F], &up_[t0 * F], n * F);
}

void ForwardPass::gate_by_up(float* gate, const float* up, int64_t n) {
  // Element by element, so any cut among the threads gives the same bits.
  auto span = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) gate[i] = silu(gate[i]) * up[i];
  };
  if (pool_.size() == 1 || n < kInlineElements)
    span(0, n);
  else
    pool_.parallel_for(n, span);
}

void ForwardPass::each_token(int64_t T, int64_t elements_per_token, const std::function<void(int64_t)>& fn) {
  if (pool_.size() == 1 || T == 1 || T * elements_per_token < kInlineElements) {
    for (int64_t t = 0; t < T; ++t) fn(t);
    return;
  }
  pool_.parallel_for(T, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) fn(t);
  });
}

// Row-parallel: summed on the reduction grid in double, all-reduced in double, rounded once, so any
// split of the heads gives one rank's bits (kernels::matmul_row_parallel).
void ForwardPass::add_attention_output(const kernels::Matrix& w, const ProduceRows& produce) {
  if (!m_.part.replicated_attention) return add_row_parallel(w, grid_.attn_output, attn_.data(), produce);
  // Every rank computed every head: proj_ holds the whole sum one rank computes, rounded once as
  // after the all-reduce, so this is one rank's residual without a message.
  if (produce) produce(0, n_tokens_);
  project_row_parallel(w, grid_.attn_output, attn_.data(), n_tokens_, n_mv_, proj_.data());
  add_proj();
}

void ForwardPass::add_all_reduced() {
  comm_.allreduce_sum(proj_.data(), static_cast<size_t>(n_tokens_ * m_.hp.n_embd));
  add_proj();
}

void ForwardPass::add_proj() {
  const int64_t n = n_tokens_ * m_.hp.n_embd;
  for (int64_t i = 0; i < n; ++i) x_[i] += static_cast<float>(proj_[i]);
}

void ForwardPass::add_row_parallel(const kernels::Matrix& w, int64_t chunk, const float* x,
                                   const ProduceRows& produce) {
  const int64_t T = n_tokens_, E = m_.hp.n_embd;
  const int64_t piece = comm_.overlaps() ? overlap_piece_tokens(T, T - n_mv_) : 0;
  if (piece == 0) {
    if (produce) produce(0, T);
    project_row_parallel(w, chunk, x, T, n_mv_, proj_.data());
    return add_all_reduced();
  }
  // Started all-reduces write into proj_ until waited for: an error that leaves here first still waits.
  struct WaitOnUnwind {
    collectives::Communicator& comm;
    ~WaitOnUnwind() {
      if (std::uncaught_exceptions() == 0) return;
      try {
        comm.wait_allreduces();
      } catch (...) {  // the error already leaving is the one to report
      }
    }
  } wait_on_unwind{comm_};
  for (int64_t b = 0; b < T; b += piece) {
    const int64_t n = std::min(piece, T - b), mv = std::clamp<int64_t>(n_mv_ - b, 0, n);
    if (produce) produce(b, b + n);
    project_row_parallel(w, chunk, x + b * w.cols, n, mv, &proj_[b * E]);
    comm_.start_allreduce_sum(&proj_[b * E], static_cast<size_t>(n * E));
  }
  comm_.wait_allreduces();
  add_proj();
}

void ForwardPass::project(const kernels::Matrix& w, const float* x, int64_t T, int64_t n_mv, float* y) {
  if (n_mv > 0) kernels::matmul(w, x, n_mv, y, pool_, ws_, kernels::Kernels::MatrixVector);
  if (T > n_mv) kernels::matmul(w, x + n_mv * w.cols, T - n_mv, y + n_mv * w.rows, pool_, ws_, kernels::Kernels::Tiles);
}

void ForwardPass::project_row_parallel(const kernels::Matrix& w, int64_t chunk, const float* x, int64_t T, int64_t n_mv,
                                       double* y, const float* token_scale) {
  if (n_mv > 0)
    kernels::matmul_row_parallel(w, chunk, x, n_mv, y, pool_, ws_, kernels::Kernels::MatrixVector, token_scale);
  if (T > n_mv)
    kernels::matmul_row_parallel(w, chunk, x + n_mv * w.cols, T - n_mv, y + n_mv * w.rows, pool_, ws_,
                                 kernels::Kernels::Tiles, token_scale ? token_scale + n_mv : nullptr);
}

void ForwardPass::route(const LayerWeights& L, int64_t T) {
  const HParams& hp = m_.hp;
  const int64_t E = hp.n_embd, X = hp.n_expert, K = hp.n_expert_used;
  const bool sigmoid = hp.expert_gating == HParams::Gating::Sigmoid;
  const float* bias = L.has(TensorKind::FfnExpProbsB) ? L.floats(TensorKind::FfnExpProbsB) : nullptr;
  const int64_t groups = hp.n_expert_groups > 1 ? hp.n_expert_groups : 1, per_group = X / groups;
  // In double with a fixed order (products of floats are exact in double), so every rank, on any
  // CPU, computes the same logits and picks the same experts.
  auto route_token = [&](int64_t t) {
    const float* x = &xn_[t * E];
    double logits[kMaxExperts];
    for (int64_t e = 0; e < X; ++e) {
      const float* w = L.floats(TensorKind::FfnRouter) + e * E;
      double acc[4] = {0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 4 <= E; i += 4)
        for (int j = 0; j < 4; ++j) acc[j] += static_cast<double>(w[i + j]) * x[i + j];
      for (; i < E; ++i) acc[0] += static_cast<double>(w[i]) * x[i];
      logits[e] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
    // The experts' probabilities, prob / total: each one's sigmoid, or a softmax over all of them.
    double prob[kMaxExperts];
    const double mx = *std::max_element(logits, logits + X);
    double sum = 0;
    for (int64_t e = 0; e < X; ++e)
      sum += prob[e] = sigmoid ? 1.0 / (1.0 + std::exp(-logits[e])) : std::exp(logits[e] - mx);
    const double total = sigmoid ? 1.0 : sum;
    // The choice is made on the logits where they order the experts as the probabilities do (the
    // lower index first on a tie), so libm's rounding on another node cannot change it; with a
    // score-correction bias or groups it must be made on the probabilities, as llama.cpp does.
    const bool on_probs = bias || groups > 1;
    double score[kMaxExperts];
    for (int64_t e = 0; e < X; ++e) score[e] = on_probs ? prob[e] / total + (bias ? bias[e] : 0.0f) : logits[e];
    auto better = [&](int32_t a, int32_t c) { return score[a] > score[c] || (score[a] == score[c] && a < c); };
    if (groups > 1) {
      // Group-limited: only the n_group_used groups whose two best scores sum highest.
      double group_score[kMaxExperts];
      int32_t group_order[kMaxExperts];
      for (int64_t g = 0; g < groups; ++g) {
        int32_t in[kMaxExperts];
        std::iota(in, in + per_group, static_cast<int32_t>(g * per_group));
        std::partial_sort(in, in + std::min<int64_t>(2, per_group), in + per_group, better);
        group_score[g] = score[in[0]] + (per_group > 1 ? score[in[1]] : 0.0);
      }
      std::iota(group_order, group_order + groups, 0);
      std::partial_sort(group_order, group_order + hp.n_group_used, group_order + groups, [&](int32_t a, int32_t c) {
        return group_score[a] > group_score[c] || (group_score[a] == group_score[c] && a < c);
      });
      for (int64_t g = hp.n_group_used; g < groups; ++g)
        for (int64_t e = group_order[g] * per_group; e < (group_order[g] + 1) * per_group; ++e) score[e] = -INFINITY;
    }
    int32_t order[kMaxExperts];
    std::iota(order, order + X, 0);
    std::partial_sort(order, order + K, order + X, better);
    double chosen = 0;
    for (int64_t k = 0; k < K; ++k) chosen += prob[order[k]];
    // Rescaled to sum to 1 (the sum kept from zero as llama.cpp does), then scaled.
    const double norm = hp.expert_weights_norm ? std::max(chosen, 6.103515625e-5 * total) : total;
    const float scale = hp.expert_weights_scale != 0.0f ? hp.expert_weights_scale : 1.0f;
    for (int64_t k = 0; k < K; ++k) {
      route_expert_[t * K + k] = order[k];
      route_weight_[t * K + k] = static_cast<float>(prob[order[k]] / norm) * scale;
    }
  };
  if (pool_.size() == 1 || T == 1 || T * X * E < kInlineAttentionWork) {
    for (int64_t t = 0; t < T; ++t) route_token(t);
  } else {
    pool_.parallel_for(T, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) route_token(t);
    });
  }
}

void ForwardPass::experts(const LayerWeights& L, int64_t T, int64_t n_mv) {
  const HParams& hp = m_.hp;
  const int64_t E = hp.n_embd, X = hp.n_expert, K = hp.n_expert_used, F = n_ff_;
  route(L, T);
  std::fill(proj_.begin(), proj_.begin() + T * E, 0.0);
  for (int64_t e = 0; e < X; ++e) {
    if (!m_.part.holds_expert(e)) continue;  // another rank's (expert parallelism)
    // The batch rows routed to expert e, in batch order (so its decode tokens come first).
    int64_t m = 0, m_mv = 0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < K; ++k)
        if (route_expert_[t * K + k] == e) {
          expert_rows_[m] = t;
          expert_weight_slot_[m++] = t * K + k;
          m_mv += t < n_mv;
        }
    if (m == 0) continue;
    for (int64_t j = 0; j < m; ++j) std::copy_n(&xn_[expert_rows_[j] * E], E, &expert_x_[j * E]);
    project(L.expert(TensorKind::FfnGateExps, e), expert_x_.data(), m, m_mv, gate_.data());
    project(L.expert(TensorKind::FfnUpExps, e), expert_x_.data(), m, m_mv, up_.data());
    gate_by_up(gate_.data(), up_.data(), m * F);
    // The router weight scales each float chunk of the down projection's row-parallel sums (the
    // expert's output, as in llama.cpp): the sums still add only floats, so any split of the
    // FFN columns gives one rank's bits, as for a dense FFN.
    for (int64_t j = 0; j < m; ++j) expert_scale_[j] = route_weight_[expert_weight_slot_[j]];
    project_row_parallel(L.expert(TensorKind::FfnDownExps, e), grid_.ffn_down, gate_.data(), m, m_mv,
                         expert_out_.data(), expert_scale_.data());
    for (int64_t j = 0; j < m; ++j) {
      double* y = &proj_[expert_rows_[j] * E];
      const double* d = &expert_out_[j * E];
      for (int64_t i = 0; i < E; ++i) y[i] += d[i];
    }
  }
}

void ForwardPass::attention(int64_t il, const Batch& b, int64_t t0, int64_t t1) {
  const int64_t T = t1 - t0, D = m_.hp.head_dim;
  const int64_t group = m_.hp.n_head / m_.hp.n_head_kv;
  const int64_t q0 = m_.part.q_heads.begin, kv0 = m_.part.kv_heads(m_.hp).begin;
  const gguf::GgmlType ct = cache_.type();
  const size_t eb = cache_.elem_bytes();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t ctx = cache_.n_ctx();
  const int64_t n_items = T * n_q_;
  auto work = [&](int ith, int nth) {
    float* scores = thread_scratch(ith);
    const AttentionScratch s{scores, scores + ctx,
                             scores + ctx + floats_for_bytes(kernels::activation_row_bytes(ct, D))};
    const ItemRange items = attention_items(n_items, ith, nth);
    for (int64_t item = items.begin; item < items.end; ++item) {
      const int64_t t = t0 + item / n_q_, h = item % n_q_;
      const int64_t kvh = (q0 + h) / group - kv0;
      const int64_t slot = b.slot[t];
      // The value rows (one per dimension, over positions) lie n_ctx elements apart.
      attend_head(ct, D, &q_[t * q_dim_ + h * D], cache_.key(il, slot, kvh, 0), D * eb,
                  cache_.value_row(il, slot, kvh, 0), ctx * eb, b.pos[t] + 1, scale, s, &attn_[t * q_dim_ + h * D]);
    }
  };
  int64_t positions = 0;
  for (int64_t t = t0; t < t1; ++t) positions += b.pos[t] + 1;
  if (attention_on_pool(positions, n_q_, D, pool_.size()))
    pool_.run(work);
  else
    work(0, 1);
}

void decoder_layer(ForwardPass& pass, int64_t layer) {
  pass.self_attention(layer);
  pass.feed_forward(layer);
}

}  // namespace clusterctl::model
