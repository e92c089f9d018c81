#pragma once
// The forward pass, written once for any world size: this rank computes its Partition's heads,
// FFN columns and vocabulary rows; after the attention output (unless every rank computes every
// head: Layout::replicated_attention) and after the FFN down projection the partial sums are
// all-reduced (a no-op at world size 1). All activations are allocated
// here once for `max_batch` tokens: a forward pass allocates nothing.
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "collectives/communicator.h"
#include "worker/kernels/blocks.h"  // kernels.h uses fp16_t without including it
#include "worker/kernels/kernels.h"
#include "worker/model/attention_head.h"
#include "worker/model/batch.h"
#include "worker/model/kv_cache.h"
#include "worker/model/model.h"
#include "worker/model/shard_plan.h"

namespace clusterctl::model {

// Logits of this rank's vocabulary slice for the batch's tokens that asked for them, in batch order.
struct LocalLogits {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;         // this rank's vocabulary slice
  int64_t vocab_begin = 0;  // global id of column 0
  const float* row(int64_t i) const { return data + i * cols; }
};

// One row slice of a decode token's matrix-vector product, claimed by a pool thread
// (ForwardPass::run_slices): y = w x, or the row-parallel sums of a down projection.
struct SliceJob {
  kernels::Matrix w;
  const float* x = nullptr;
  float* y = nullptr;            // y = w x
  double* y_sums = nullptr;      // or the row-parallel sums, in chunks of `chunk` columns
  const float* scale = nullptr;  // the router weight of a routed expert's down projection
  int64_t chunk = 0;
};

// Rows per SliceJob over matrices of total_rows rows: about 8 items per thread, whole groups of
// 16 rows (the matrix-vector kernels' row block and Packed8's group), 64 to 512 rows.
int64_t decode_slice_rows(int64_t total_rows, int n_threads);

class ForwardPass {
 public:
  ForwardPass(const Model& model, KvCache& cache, collectives::Communicator& comm, kernels::ThreadPool& pool,
              int64_t max_batch);

  int64_t max_batch() const { return max_batch_; }
  // Throws clusterctl::Error for a token outside the vocabulary, a position outside the
  // context, a slot outside the cache or a batch larger than max_batch.
  LocalLogits run(const Batch& batch);

  // The shared pieces of a layer (Architecture::layer) on the batch being run: each adds its
  // all-reduced output to the residual stream.
  // Attention: norm, this rank's query heads and the KV heads they read (biases and per-head
  // norms where the layer has them), RoPE, the KV cache, the output projection.
  void self_attention(int64_t layer);
  // Multi-head latent attention (deepseek2; forward_mla.cpp): norm, this rank's query heads (through
  // the low-rank pair where the layer has one), the token's latent and RoPE key into the cache
  // (every rank the same), attention in the latent with the key expansion absorbed into the
  // query, each head's value expansion, the output projection.
  void latent_attention(int64_t layer);
  // Norm, then this rank's slice of a dense SwiGLU FFN, or of the experts where the layer has a
  // router (and of the shared experts beside them where it has those).
  void feed_forward(int64_t layer);

 private:
  void add_all_reduced();  // x += all-reduce(proj_)
  void add_proj();         // x += proj_
  // x += all-reduce(w x), the row-parallel product (partials summed in chunks of `chunk` columns) of
  // the batch's rows of x, after `produce(t0, t1)` has made rows [t0, t1) of x (none: x is ready).
  // A prompt goes in pieces of tokens where the communicator overlaps
  // (Communicator::start_allreduce_sum): each piece's sums travel while the next piece is produced
  // and multiplied, so only the last piece's all-reduce is not hidden. A token's rows and sums are
  // the same bits in a batch of any size (the kernels' promise; produce's too), so the pieces
  // change no bit.
  using ProduceRows = std::function<void(int64_t t0, int64_t t1)>;
  void add_row_parallel(const kernels::Matrix& w, int64_t chunk, const float* x, const ProduceRows& produce = {});
  // The attention output projection of attn_ added to x: add_row_parallel, or where every rank
  // computed every head, its own sum without a message.
  void add_attention_output(const kernels::Matrix& w, const ProduceRows& produce = {});
  void check(const Batch& batch) const;
  // Each of tokens [t0, t1)'s query heads attending its positions: q_ -> attn_. A token's heads
  // attend alone, so any cut of the tokens gives the same bits.
  void attention(int64_t layer, const Batch& batch, int64_t t0, int64_t t1);
  void latent_attend(int64_t layer, const Batch& batch, float kq_scale);  // mla_query_ -> mla_out_
  // One head of one token attending per position (the path of fewer than 64 tokens): query
  // (latent, RoPE part) against the n_pos cached rows, the attended latent into out.
  void attend_latent_rows(const float* query, const uint8_t* rows, int64_t n_pos, float kq_scale, int ith, float* out);
  // One decode token's heads on several threads in one pool meeting, the same bits as the
  // k_b matmuls, latent_attend and the v_b matmuls: a thread claims a head and runs all three.
  void latent_heads_one_token(int64_t layer, float kq_scale);
  // Decode: row slices of several matrix-vector products (slices_), all run in one pool meeting.
  // A row's sum does not depend on the rows around it (kernels::row_slice): the bits of one
  // matmul per matrix.
  void add_slices(const kernels::Matrix& w, const float* x, float* y, int64_t rows_per_slice);
  void add_slices_row_parallel(const kernels::Matrix& w, int64_t chunk, const float* x, double* y_sums,
                               const float* scale, int64_t rows_per_slice);
  void run_slices();
  // A dense SwiGLU of the gate/up/down kinds given on the batch's xn_: out = this rank's partial sums.
  void swiglu(const LayerWeights& L, TensorKind gate, TensorKind up, TensorKind down, double* out);
  // gate_ = silu(gate xn_) * up xn_ for tokens [t0, t1): a SwiGLU's hidden activations.
  void swiglu_hidden(const LayerWeights& L, TensorKind gate, TensorKind up, int64_t t0, int64_t t1);
  // gate[i] = silu(gate[i]) * up[i] for n elements, on the pool where there are enough of them.
  void gate_by_up(float* gate, const float* up, int64_t n);
  // fn(t) for each of the batch's T tokens, on the pool where T x elements_per_token is worth a
  // meeting: a token's norm, RoPE and KV stores touch only its own rows.
  void each_token(int64_t T, int64_t elements_per_token, const std::function<void(int64_t)>& fn);
  // y = w x for T tokens: the first n_mv with the matrix-vector kernels, the rest with the tiles.
  void project(const kernels::Matrix& w, const float* x, int64_t T, int64_t n_mv, float* y);
  // The same for the row-parallel matmuls; `token_scale` (per token, or null) weights their chunks.
  void project_row_parallel(const kernels::Matrix& w, int64_t chunk, const float* x, int64_t T, int64_t n_mv, double* y,
                            const float* token_scale = nullptr);
  // The mixture of experts of one layer on xn_ for the batch: proj_ = this rank's partial sums.
  void experts(const LayerWeights& L, int64_t T, int64_t n_mv);
  // The same for one decode token with its shared experts added (forward_moe.cpp), the same bits
  // in two pool meetings: every expert's gate and up rows, then every expert's down rows.
  void experts_one_token(const LayerWeights& L);
  // Each token's n_expert_used experts and their weights (route_expert_, route_weight_).
  void route(const LayerWeights& L, int64_t T);
  float* thread_scratch(int ith) { return scratch_.data() + ith * scratch_floats_; }

  const Model& m_;
  KvCache& cache_;
  collectives::Communicator& comm_;
  kernels::ThreadPool& pool_;
  kernels::Workspace ws_;
  int64_t max_batch_;
  int64_t n_q_, n_kv_, q_dim_, kv_dim_, n_ff_, n_vocab_;
  ReductionGrid grid_;
  const Batch* batch_ = nullptr;     // the batch run() is on
  int64_t n_tokens_ = 0, n_mv_ = 0;  // chunk widths of the row-parallel matmuls (the same on every rank)
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_, rope_cos_, rope_sin_;
  std::vector<double> proj_;  // row-parallel partial sums, all-reduced in double
  // Mixture of experts: per token its experts and weights; per expert the batch rows routed to
  // it (decode tokens first), those rows' inputs, and its down projection's partial sums.
  std::vector<int32_t> route_expert_;
  std::vector<float> route_weight_;
  std::vector<int64_t> expert_rows_, expert_weight_slot_;
  std::vector<float> expert_x_, expert_scale_;
  std::vector<double> expert_out_;
  // experts_one_token: each expert's gate, up (routed in route order, then the shared ones) and
  // down sums.
  std::vector<float> moe_gate_, moe_up_;
  std::vector<double> moe_down_;
  // Work claimed inside one pool meeting (run_slices, latent_attention_one_token): a workspace
  // per pool thread, and a pool of one so each matmul runs where it was claimed.
  std::unique_ptr<kernels::Workspace[]> thread_ws_;
  kernels::ThreadPool serial_pool_{1};
  std::vector<SliceJob> slices_;  // run_slices' items
  std::vector<float> out_hidden_, logits_;
  // Multi-head latent attention: the low-rank query, the query heads (nope then RoPE part), the
  // latent and RoPE key, per head the absorbed query (latent then RoPE part) and the attended
  // latent, and one head's rows gathered for its k_b / v_b matmul.
  std::vector<float> mla_qa_, mla_kva_, mla_query_, mla_out_, mla_gather_, mla_head_out_;
  std::vector<double> shared_out_;  // the shared experts' partial sums
  std::vector<float> scratch_;      // per thread: scores, converted query, converted weights
  int64_t scratch_floats_ = 0;
};

// Pieces the blocks (forward.cpp, forward_mla.cpp) share.
// ggml's RMSNorm (sum of squares in double), then the weight, element by element; y may be x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
// Elements of element-wise work (SwiGLU's silu(gate) * up, a batch's norms, RoPE and KV stores)
// below which it runs on the calling thread alone (an exp and a division ~5 ns: 4096 of them are
// worth one pool meeting).
constexpr int64_t kInlineElements = 1 << 12;
// SwiGLU's activation, x * sigmoid(x), as ggml computes it in float.
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

inline size_t floats_for_bytes(size_t bytes) { return (bytes + sizeof(float) - 1) / sizeof(float); }

// The common decoder's layer: self_attention, then feed_forward.
void decoder_layer(ForwardPass& pass, int64_t layer);

}  // namespace clusterctl::model
