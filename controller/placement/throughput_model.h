#pragma once
// What tokens/s a cluster gives, predicted before it runs: a roofline per forward pass. Each rank
// reads its weight bytes at its node's memory bandwidth and does its multiply-adds at its node's
// compute (ranks on one node share both; the pass waits for the slowest node), then the
// all-reduces of the pass cross the link one after another: hops x latency plus the bytes each
// rank sends over the link's bandwidth. Memory and compute overlap (a soft roofline: the larger,
// and up to 1.32x it where they are equal); the link's time adds to it, since every all-reduce
// waits for the layer before it.
// Pure arithmetic: plan.cpp fills it from the shard plan, doctor's record and the link presets.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clusterctl::placement {

struct NodeSpeed {
  double bandwidth_gbs = 0;   // decode-shaped read bandwidth of the node, all its cores
  double compute_gflops = 0;  // matmul-shaped multiply-adds x 2 per second, all its cores (prompt tiles)
  // The matrix-vector kernels' rate, weights in cache: what a decode or verify pass multiplies at
  // (each weight used by one token, so no tile amortises its unpacking). 0: compute_gflops.
  double decode_gflops = 0;
  // The tiles' rate at 8 tokens over weights read from memory (a mixture of experts' prompt gives
  // each expert ~8 tokens, and its weights are in no cache); 0: not measured.
  double tile8_gflops = 0;
  // The row-parallel matmuls (attn_output, ffn_down) sum each row in chunks of columns folded into
  // double: their time a flop over the plain kernels' with chunks of these two widths (doctor's
  // probe), a prompt's tiles and a decode's matrix-vector kernels; chunks 0: not measured, no cost.
  int64_t row_parallel_chunks[2] = {0, 0};
  double row_parallel_slowdown[2] = {1, 1}, row_parallel_decode_slowdown[2] = {1, 1};
  // One rank's pool alone, the node's other ranks idle (rank 0 drafting); 0: the node's figures
  // shared among its ranks.
  double one_rank_bandwidth_gbs = 0, one_rank_decode_gflops = 0;
  // One meeting of a rank's pool threads, as every matmul ends in (and a prompt's matmul also
  // starts with one, quantising its tokens); 0: not measured, or pools of one thread.
  double meeting_s = 0;
  // A prompt's matmul of a small matrix beyond its flops, the pool's two meetings between real
  // tiles (doctor's probe: 8-token tiles over ~0.5 MiB matrices against ~4 MiB ones): the thread
  // done first waits for the other (9-27 us on this project's VM, against 0.8 us for an empty
  // meeting). 0: not measured (meeting_s twice).
  double prompt_meeting_s = 0;
  int threads = 0;  // a rank's pool threads (how the engine runs a decode token's experts); 0: not known
  // A pass's work besides its matmuls, each figure one thread's while every thread of its pool is
  // at the same work (doctor's probe): one query head attending over n positions at head
  // dimensions 64 and 128 costs head_s + n position_s (model::attend_head); one element of
  // SwiGLU's silu(gate) * up, and of an RMS norm (a pass's norms, RoPE, KV stores and residual
  // adds are counted as so many norm elements). 0: not measured (NodeVectorWork's fallback).
  double attention_head_s[2] = {0, 0}, attention_position_s[2] = {0, 0};
  double silu_s = 0, norm_s = 0;
  // The share of the node's figures (its memory's reads and its compute alike) its ranks get where
  // their threads outnumber the machine's cores (core_share): 1 where each thread has a core.
  double core_share = 1;
  // Where they outnumber the cores: by how many threads (the machine's ranks' threads less its
  // cores), and what a synchronisation of the ranks (an all-reduce, a next-step exchange) costs
  // beyond their turns, with one thread beyond the `cores` and with `cores` beyond them: a rank
  // notices a message only at its next turn on a core the ranks still computing hold (doctor's
  // handover probe; not measured: kHandoverFallbackS). handover_per_sync_s takes them.
  int threads_beyond_cores = 0, cores = 0;
  double handover_s[2] = {0, 0};
  // Each weight type's decode stream rate over the Q4_0 stream bandwidth_gbs comes from (doctor's
  // probe), by GGUF's name of the type; a type absent: as Q4_0's.
  std::map<std::string, double> stream_ratio{};
  // The Q4_0 stream's flops a byte, where bandwidth_gbs was drawn from that stream: a decode pass's
  // multiply-adds are then its stream bytes at this many flops a byte (a type's stream ratio holds
  // its kernel's cost as well as its reads, so its own flops would count the kernel twice). 0: not
  // measured (what-if nodes): each weight's 2 flops.
  double stream_flops_per_byte = 0;
  // Seconds of reading `bytes` of `type` over a Q4_0 byte's: 1 / its stream ratio.
  double stream_cost(const std::string& type) const;
  // decode_gflops where measured, else compute_gflops.
  double matrix_vector_gflops() const { return decode_gflops > 0 ? decode_gflops : compute_gflops; }
};

// Threads that outnumber the cores take turns on them. Each all-reduce waits for every rank, so
// between two of them the busiest core runs ceil(T / C) threads' work, at the rate the machine
// gives with every core busy: (T / C) / ceil(T / C) of it (3 one-thread ranks on 2 cores: 0.75;
// 4 on 2: 1). The threads left for a last turn do not run it alone at one core's faster rate
// (where one core alone reads more than its share of the memory): the scheduler interleaves them
// with the turn before (measured, 3 ranks of llama3-1b on this project's 2-core VM: each rank's
// CPU time for its third of a token 22.3-25.0 ms, as at two ranks' shared rate, 22.1-22.9, not
// one rank's alone, ~17; in 45 % of the all-reduces the last rank started before the other two
// were done; docs/tuning.md). 1 where each thread has a core or the cores are not known.
double core_share(int machine_threads, int cores);

// What summing in chunks adds to a pass's row-parallel matmuls over `flops` of them, whose weights
// over their chunk widths are `flops_per_chunk` (in flops: x 2 x tokens as `flops`): a fold per
// chunk of a row and token, so the time a flop grows as A + B / chunk, through the probe's two
// widths; a prompt's at the plain tiles' rate (compute_gflops), a decode or verify pass's at the
// matrix-vector kernels' (decode_gflops: compute, which overlaps the weights' reads, so it shows
// where the kernels barely keep up with them, as one thread's). 0 where not measured.
double row_parallel_s(const NodeSpeed& n, bool prefill, double flops, double flops_per_chunk);

// One synchronisation's handover on a node whose threads outnumber its cores: along the line
// through its two measured points (1 and `cores` threads beyond them), past them straight on, never
// below 0; with one core (or one point) that many times the first. 0 where each thread has a core.
double handover_per_sync_s(const NodeSpeed& n);

struct LinkSpeed {
  std::string name;          // "thunderbolt-bridge", "10gbe", "300us,10gbit", "shared memory"
  double latency_us = 0;     // one message from one rank to the next, empty
  double bandwidth_gbs = 0;  // bytes one rank sends per second
};

// One rank's share of a token's work.
struct RankWork {
  size_t node = 0;
  double dense_bytes = 0;      // weight bytes every token reads (attention, dense FFN, LM head, one embedding row)
  double expert_bytes = 0;     // bytes of all the routed experts the rank holds
  double expert_fraction = 0;  // of those, the share one token reads on average (n_expert_used / n_expert)
  double dense_params = 0, expert_params = 0;  // weights (elements): 2 flops each per token read
  // Matmuls a pass runs on every token: each dense matrix but the shared experts'.
  double dense_matmuls = 0;
  // The layers with routed experts, the routed experts the rank holds in each, how many a token is
  // routed to, and whether shared experts run beside them: their pool meetings a pass are the
  // engine's own count (model::expert_layer_meetings).
  double expert_layers = 0, experts_per_layer = 0;
  int64_t n_expert_used = 0;
  bool shared_experts = false;
  // deepseek2's latent attention: its layers, the rank's query heads and whether the query is
  // low-rank; its matmuls are not in dense_matmuls: they meet the pool as the engine runs them
  // (model::latent_attention_meetings), a decode token's heads all in one meeting.
  double latent_attention_layers = 0, latent_heads = 0;
  bool low_rank_q = false;
  // Of dense_params, the LM head's (the rank's vocabulary rows): a prompt's pass multiplies them
  // for its last token alone (model::Engine::prefill asks logits of the last token only).
  double lm_head_params = 0;
  // Of dense_params and expert_params, the row-parallel matrices' weights, and those weights over
  // the width of the chunks their rows sum in (model::reduction_grid): row_parallel_s.
  double row_parallel_dense_params = 0, row_parallel_dense_per_chunk = 0;
  double row_parallel_expert_params = 0, row_parallel_expert_per_chunk = 0;
  // What a prompt multiplies piece by piece beside the all-reduces it overlaps (model::
  // overlap_piece_tokens, ForwardPass::add_row_parallel): the split attention's output projections
  // (after each piece's attention, PassTimes::attention_s) and the dense FFNs' gate, up and down
  // projections; their weights and their all-reduces a pass (one a layer each). A mixture of
  // experts' layer reduces in one piece after all its experts.
  double overlap_attention_params = 0, overlap_ffn_params = 0;
  int overlap_attention_allreduces = 0, overlap_ffn_allreduces = 0;
  // Self-attention (not deepseek2's latent attention): its layers, the rank's query heads and their
  // dimension. Per token a pass: silu elements of the SwiGLUs (model::ForwardPass::gate_by_up) and
  // norm-like elements (norms, RoPE, KV stores, residual adds).
  double attention_layers = 0, attention_heads = 0;
  int64_t head_dim = 0;
  double silu_elements = 0, norm_elements = 0;
  // Of dense_bytes and expert_bytes, each weight type's (GGUF's name): read at the node's stream
  // of that type (NodeSpeed::stream_ratio; llama3-1b's Q6_K head is 28 % of its bytes a token).
  std::map<std::string, double> dense_bytes_of_type{}, expert_bytes_of_type{};
};

enum class Algorithm { one_shot, recursive_doubling, ring };
enum class WireFormat { f64, f32, bf16, q8 };
enum class Term { memory, compute, link_latency, link_bandwidth, non_matmul, handover };
const char* algorithm_name(Algorithm a);  // as --allreduce spells it
const char* wire_name(WireFormat w);      // as --wire-format spells it
// "memory", "compute", "link latency", "link bandwidth", "non-matmul", "core handover"
const char* term_name(Term t);
double wire_bytes_per_value(WireFormat w);

struct ClusterModel {
  std::vector<NodeSpeed> nodes;
  std::vector<RankWork> ranks;
  std::optional<LinkSpeed> link;  // between ranks; none: shared_memory (one node)
  LinkSpeed shared_memory;        // between ranks of one node
  // The step header and the next token's exchange cross the transport itself: an emulated link
  // holds back only the all-reduces. None: they cross `link` (or shared memory) like the rest.
  std::optional<LinkSpeed> step_link;
  int allreduces_per_pass = 0;  // 2 x n_layer
  int64_t n_embd = 0;
  int exchanges_per_step = 2;  // a decode step also gathers the next token and broadcasts it
  // Positions a decode (or verify) pass's first token finds in the cache already: what its
  // attention reads. A prompt's pass starts at position 0.
  int64_t decode_context = 0;
  bool prompt_overlap = true;  // the workers' --overlap-prompt (on unless a benchmark turns it off)
};

// How a node runs a pass's work besides its matmuls: doctor's figures, or where the record has
// none (an older probe, --what-if) a fallback from its matrix-vector rate (kVectorWorkFallback).
struct NodeVectorWork {
  double attention_head_s[2] = {0, 0}, attention_position_s[2] = {0, 0}, silu_s = 0, norm_s = 0;
  bool measured = false;
  // One query head of `head_dim` attending `positions` positions, one thread.
  double attention_item_s(int64_t head_dim, double positions) const;
};
NodeVectorWork vector_work(const NodeSpeed& n);

// Seconds of one layer's attention for `tokens` tokens at positions context, context + 1, ... on
// `threads` threads (the slowest thread's share, as model::attention_items cuts the items).
double attention_layer_s(const NodeVectorWork& v, int64_t tokens, int64_t context, int64_t heads, int64_t head_dim,
                         int threads);

// Seconds of one forward pass of `tokens` tokens (decode: one per stream; prefill: a batch).
struct PassTimes {
  double memory_s = 0, compute_s = 0, latency_s = 0, bandwidth_s = 0;
  // The pool's meetings beyond the one per 4 MiB the probe's bandwidth already paid: a MoE's many
  // small expert matmuls (OLMoE: ~460 a token, ~6300 for a prompt of 64), one after another. A
  // prompt's pass pays prompt_meeting_s for each matmul beyond one per 4 MiB (its tiles' rates were
  // measured over matrices of ~4 MiB and larger).
  double meetings_s = 0;
  // Work besides the matmuls, on the slowest node: attention (grows with the positions each token
  // attends: a prompt's, quadratic in its length) and element-wise work (norms, SwiGLU's gate,
  // RoPE, KV stores). It does not overlap the weights' reads: it runs between the matmuls.
  double attention_s = 0, elementwise_s = 0;
  double non_matmul_s() const { return attention_s + elementwise_s; }
  // Ranks outnumbering a machine's cores: each synchronisation of the pass (its all-reduces and,
  // decoding, the next-step exchanges) pays the handover of a core to each thread beyond them, on
  // the machine where that costs most, less what the synchronisation's own link latency hides (the
  // ranks then sleep to a moment the link sets, all cores free: an emulated 300 us link's 3 ranks
  // on 2 cores were predicted within 4 % without the term).
  double handover_s = 0;
  // A prompt's all-reduces cut in pieces, each piece's sums travelling while the next piece's
  // row-parallel matmul computes: the link time that hides (less the pieces' extra latencies; it
  // can be negative where the link's latency dominates and the matmuls are short).
  double overlap_hidden_s = 0;
  double overlapped_s() const;  // memory and compute, as they overlap
  double total() const;
  Term limit() const;  // the largest term
};

struct Prediction {
  Algorithm algorithm = Algorithm::one_shot;
  WireFormat wire = WireFormat::f64;
  int streams = 1, prefill_batch = 512;
  PassTimes decode_one, decode_streams, prefill;
  double decode_tok_s = 0;          // one stream
  double decode_streams_tok_s = 0;  // all `streams` together
  double prefill_tok_s = 0;
};

PassTimes pass_times(const ClusterModel& m, Algorithm a, WireFormat w, int tokens, bool prefill);
// PassTimes::overlap_hidden_s of a prompt's pass of `tokens` tokens whose all-reduces carry
// `bytes` each over `link`, the pass's self-attention taking `attention_s` (split over its pieces).
double prompt_overlap_hidden_s(const ClusterModel& m, Algorithm a, const LinkSpeed& link, double bytes, int tokens,
                               double attention_s);
// Seconds per flop of a prompt's tile of `batch` tokens: the tile unpacks each weight once for
// its tokens and multiplies it once per token, so mul + unpack / batch, fitted through the node's
// matrix-vector rate (1 token), its tile rate at 8 tokens where measured and at 64 (as doctor
// measures them), piece by piece; no faster past 64. A mixture of experts' prompt gives each
// expert only the tokens routed to it (~8 of 64 with 8 of 64 experts a token): its tiles run at
// nearer the 8-token rate, which a fit through 1 and 64 alone missed (OLMoE's prompt +30 %).
double prompt_seconds_per_flop(const NodeSpeed& n, double batch);

// The bandwidth a node's memory gives a decode, from doctor's decode stream: the engine's
// matrix-vector kernels over weights read from memory at `stream_gbs` GB/s of weights, each byte
// `flops_per_byte` flops, less the time of those flops at `decode_gflops` (in cache) as a pass's
// memory and compute overlap (PassTimes::overlapped_s), so that a pass of the stream's own shape is
// predicted at the stream's measured rate. `reads_gbs` (plain reads) is the answer where no stream
// was measured or the compute alone takes as long as the stream; it is no bound on the others: the
// kernels ask for their lines ahead and stream faster than plain reads (here 1 thread 20 GB/s
// against 18, 2 threads 32-35 against 31), and a bound at the reads predicted the stream's own
// shape 15 % slow.
double decode_bandwidth_gbs(double stream_gbs, double flops_per_byte, double decode_gflops, double reads_gbs);
Prediction predict(const ClusterModel& m, Algorithm a, WireFormat w, int streams, int prefill_batch);
// Every algorithm and wire format, fastest single-stream decode first (one entry without a link
// between nodes or ranks: nothing is sent).
std::vector<Prediction> predict_all(const ClusterModel& m, int streams, int prefill_batch);

// Speculative decoding: rank 0 drafts k tokens (draft_s_per_token each), then one verify pass
// over k + 1 tokens on every rank keeps the drafts up to the first the model disagrees with, and
// one token of its own. k and, at k = 0, how often the engine probes a one-token draft come from
// the engine's own rule (worker/speculative/draft_rule.h, which DraftLength applies to what it
// measures) applied to the predicted costs: a probe after P plain rounds first catches up the
// P + 1 tokens the draft model missed (at most kRestartTokens + 1 past kCatchUpMax), and where
// drafting could not pay even with every draft kept there are no probes: plain decoding.
struct Speculation {
  double acceptance = 0;         // a: the chance a draft is kept, given the one before it was
  double draft_s_per_token = 0;  // the drafter's time per drafted token (ngram: ~0)
  int draft_min = 0, draft_max = 8;
  // The draft model's prompt pass over n tokens (a probe's catch-up); empty: free (ngram).
  std::function<double(int)> draft_catch_up_s;
  // A run of this many tokens, the first from the prompt's pass (as `bench -n`): its rounds
  // emit the others, the first few before k settles (opening_draft_lengths). 0: settled only.
  int64_t tokens = 0;
};
struct SpeculativePrediction {
  int k = 0;
  // k = 0 with a probe round every probe_every plain rounds: tokens_per_round and round_s are
  // the cycle's means. 0: no probes.
  int probe_every = 0;
  bool probing() const { return probe_every > 0; }
  double tokens_per_round = 1, round_s = 0, tok_s = 0;  // once k has settled
  PassTimes verify;                                     // the pass over k + 1 tokens
  // The run of Speculation::tokens: its first rounds' k (before k settles), and its rounds'
  // tokens per round and tokens/s over the tokens they emit (as bench measures them: all but the
  // prompt's). The draft model's pass over the prompt, in the first round, is not counted (plan is
  // not told the prompt); nor is the last round's cut to the budget.
  std::vector<int> opening;
  double run_tokens_per_round = 1, run_tok_s = 0;
};
SpeculativePrediction predict_speculative(const ClusterModel& m, Algorithm a, WireFormat w, const Speculation& s);
// The per-token acceptance a from the share of drafted tokens kept, as `bench --draft` and the
// server's /metrics report it, measured while drafting k a round: share = a (1 - a^k) / (k (1 - a)).
double acceptance_from_kept_share(double share, int k);

// Hops and bytes each rank sends per all-reduce of `bytes` over `ranks` ranks.
struct AllreduceCost {
  double hops = 0, bytes_sent = 0;
};
AllreduceCost allreduce_cost(Algorithm a, int ranks, double bytes);

// A link from one-shot all-reduces of a decode step's message and a larger one over `ranks` ranks
// (medians in microseconds; each rank sends ranks - 1 copies), as doctor measures it: the
// bandwidth from their slope, but at least the small message's bytes over half its time (a
// loaded machine's slope can say anything, and a decode message's time is mostly latency); the
// latency the small message's time less its bytes at that bandwidth, so that a pass's latency and
// bandwidth terms give the measured time of a decode message.
LinkSpeed link_from_allreduces(double small_bytes, double small_us, double large_bytes, double large_us, int ranks);

// --link: a preset (thunderbolt-bridge, 10gbe, 1gbe, shared-memory) or "LATENCY,BANDWIDTH"
// ("300us,10gbit", "50us,1.25GB/s"). Throws clusterctl::Error naming the presets and the form.
LinkSpeed parse_link(const std::string& text);
std::vector<LinkSpeed> link_presets();

// --nodes: "4x192GB@800GB/s" or with compute "4x64GB@273GB/s@2TFLOPS"; groups joined by '+'
// ("2x64GB@273GB/s+1x128GB@546GB/s"). Memory is bytes.
struct NodeGroup {
  int count = 0;
  uint64_t memory_bytes = 0;
  NodeSpeed speed;
  bool compute_given = false;
};
std::vector<NodeGroup> parse_nodes(const std::string& text);

// Without a measured compute figure: the node's bandwidth times this many flops per byte (the
// ratio doctor measured on an AVX-512 VM core, rounded down: compute rarely limits decode).
constexpr double kAssumedFlopsPerByte = 8.0;
// Without doctor's figures for the work besides the matmuls (an older record, --what-if): each at
// one thread's share of the node's matrix-vector rate (decode_gflops, else compute_gflops, over its
// threads) as this many flops, the ratios doctor measured on this project's VM (docs/tuning.md).
struct VectorWorkFlops {
  double head_per_dim = 0, position_per_dim = 0, silu = 0, norm = 0;
};
constexpr VectorWorkFlops kVectorWorkFallback{12, 0.9, 70, 13};
// Without doctor's handover figures (an older record): as the probe measured them on this project's
// 2-core VM with the waits yielding, one synchronisation with 1 and 2 single-thread ranks beyond
// the cores, the medians of 16 probes (6-52 and 11-286 us; docs/tuning.md).
constexpr double kHandoverFallbackS[2] = {15e-6, 110e-6};
// The probe's read bandwidth meets the pool's threads once per this many bytes (speed_probe.h).
constexpr double kProbeMatrixBytes = 4.0 * 1024 * 1024;

}  // namespace clusterctl::placement
