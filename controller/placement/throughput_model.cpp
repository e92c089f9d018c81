#include "controller/placement/throughput_model.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "collectives/algorithms/emulated_link.h"
#include "controller/config/cluster_config.h"
#include "worker/common/error.h"
#include "worker/model/attention_head.h"
#include "worker/model/pool_meetings.h"
#include "worker/speculative/draft_rule.h"

namespace clusterctl::placement {
namespace {
// The soft roofline's exponent (PassTimes::overlapped_s).
constexpr double kOverlapP = 2.5;
}  // namespace

const char* algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::one_shot:
      return "one-shot";
    case Algorithm::recursive_doubling:
      return "recursive-doubling";
    case Algorithm::ring:
      return "ring";
  }
  return "?";
}

const char* wire_name(WireFormat w) {
  switch (w) {
    case WireFormat::f64:
      return "double";
    case WireFormat::f32:
      return "float32";
    case WireFormat::bf16:
      return "bf16";
    case WireFormat::q8:
      return "q8";
  }
  return "?";
}

const char* term_name(Term t) {
  switch (t) {
    case Term::memory:
      return "memory";
    case Term::compute:
      return "compute";
    case Term::link_latency:
      return "link latency";
    case Term::link_bandwidth:
      return "link bandwidth";
    case Term::non_matmul:
      return "non-matmul";
    case Term::handover:
      return "core handover";
  }
  return "?";
}

// q8: a float scale per 32 int8 values (72 KiB for 64 Ki values measured in docs/tuning.md).
double wire_bytes_per_value(WireFormat w) {
  switch (w) {
    case WireFormat::f64:
      return 8;
    case WireFormat::f32:
      return 4;
    case WireFormat::bf16:
      return 2;
    case WireFormat::q8:
      return 1.125;
  }
  return 8;
}

double NodeSpeed::stream_cost(const std::string& type) const {
  const auto r = stream_ratio.find(type);
  return r != stream_ratio.end() && r->second > 0 ? 1 / r->second : 1;
}

// Memory and compute overlap, but not perfectly where they are close (the cores stall on rows
// not yet prefetched): a soft roofline, (m^p + c^p)^(1/p), which is the larger of the two when
// one dominates and 2^(1/p) = 1.32 x it when they are equal. p = 2.5 from llama3-1b and an
// OLMoE-shaped MoE at 1 thread on this project's VM (both 33 and 31 tok/s measured and
// predicted; max() said 42 and 39).
double PassTimes::overlapped_s() const {
  constexpr double p = kOverlapP;
  const double hi = std::max(memory_s, compute_s), lo = std::min(memory_s, compute_s);
  if (hi <= 0) return 0;
  return hi * std::pow(1 + std::pow(lo / hi, p), 1 / p);
}

double PassTimes::total() const {
  return overlapped_s() + meetings_s + non_matmul_s() + latency_s + bandwidth_s + handover_s - overlap_hidden_s;
}

Term PassTimes::limit() const {
  const std::pair<double, Term> terms[] = {{memory_s, Term::memory},           {compute_s, Term::compute},
                                           {latency_s, Term::link_latency},    {bandwidth_s, Term::link_bandwidth},
                                           {non_matmul_s(), Term::non_matmul}, {handover_s, Term::handover}};
  return std::max_element(std::begin(terms), std::end(terms), [](auto& a, auto& b) { return a.first < b.first; })
      ->second;
}

AllreduceCost allreduce_cost(Algorithm a, int ranks, double bytes) {
  if (ranks <= 1) return {};
  const double n = ranks;
  switch (a) {
    case Algorithm::one_shot:
      return {1, (n - 1) * bytes};
    case Algorithm::recursive_doubling: {
      // A rank count that is not a power of two folds the extra ranks in before and out after.
      int pow2 = 1, steps = 0;
      while (pow2 * 2 <= ranks) pow2 *= 2, ++steps;
      const double hops = steps + (pow2 == ranks ? 0 : 2);
      return {hops, hops * bytes};
    }
    case Algorithm::ring:
      return {2 * (n - 1), 2 * (n - 1) / n * bytes};
  }
  return {};
}

double prompt_seconds_per_flop(const NodeSpeed& n, double batch) {
  const double tile = 1 / (n.compute_gflops * 1e9);
  if (!(n.decode_gflops > 0) || n.decode_gflops >= n.compute_gflops) return tile;
  const double b = std::clamp(batch, 1.0, 64.0);
  // Seconds per flop s(b) = mul + unpack / b through (lo, s_lo) and (hi, s_hi).
  auto through = [b](double lo, double s_lo, double hi, double s_hi) {
    const double unpack = (s_lo - s_hi) / (1 / lo - 1 / hi);
    return s_lo - unpack / lo + unpack / b;
  };
  const double one = 1 / (n.decode_gflops * 1e9);
  if (!(n.tile8_gflops > 0)) return through(1, one, 64, tile);
  const double eight = 1 / (n.tile8_gflops * 1e9);
  return b <= 8 ? through(1, one, 8, eight) : through(8, eight, 64, tile);
}

double decode_bandwidth_gbs(double stream_gbs, double flops_per_byte, double decode_gflops, double reads_gbs) {
  if (!(stream_gbs > 0)) return reads_gbs;
  const double t = 1 / stream_gbs;                                          // ns a byte, reads and kernels together
  const double c = decode_gflops > 0 ? flops_per_byte / decode_gflops : 0;  // ns a byte of compute alone
  const double rest = std::pow(t, kOverlapP) - std::pow(c, kOverlapP);
  // Compute as slow as the stream: its memory share cannot be told apart; plain reads are the bound.
  if (!(rest > 0) || std::pow(rest, 1 / kOverlapP) < 0.05 * t) return reads_gbs > 0 ? reads_gbs : stream_gbs;
  return 1 / std::pow(rest, 1 / kOverlapP);
}

double NodeVectorWork::attention_item_s(int64_t head_dim, double positions) const {
  // Linear in the head's dimensions through the probe's 64 and 128 (the dots' length grows with
  // them, the softmax does not).
  const double f = (static_cast<double>(head_dim) - 64) / 64;
  const double head = attention_head_s[0] + f * (attention_head_s[1] - attention_head_s[0]);
  const double position = attention_position_s[0] + f * (attention_position_s[1] - attention_position_s[0]);
  return std::max(head, 0.0) + std::max(position, 0.0) * positions;
}

NodeVectorWork vector_work(const NodeSpeed& n) {
  NodeVectorWork v;
  if (n.attention_position_s[0] > 0 && n.attention_position_s[1] > 0 && n.silu_s > 0 && n.norm_s > 0) {
    std::copy(std::begin(n.attention_head_s), std::end(n.attention_head_s), v.attention_head_s);
    std::copy(std::begin(n.attention_position_s), std::end(n.attention_position_s), v.attention_position_s);
    v.silu_s = n.silu_s, v.norm_s = n.norm_s;
    v.measured = true;
    return v;
  }
  const double gflops = n.matrix_vector_gflops();
  if (!(gflops > 0)) return v;
  const double flop_s = std::max(n.threads, 1) / (gflops * 1e9);  // one thread's
  const VectorWorkFlops& f = kVectorWorkFallback;
  for (int i = 0; i < 2; ++i) {
    const double dims = 64.0 * (i + 1);
    v.attention_head_s[i] = f.head_per_dim * dims * flop_s;
    v.attention_position_s[i] = f.position_per_dim * dims * flop_s;
  }
  v.silu_s = f.silu * flop_s;
  v.norm_s = f.norm * flop_s;
  return v;
}

double attention_layer_s(const NodeVectorWork& v, int64_t tokens, int64_t context, int64_t heads, int64_t head_dim,
                         int threads) {
  if (tokens <= 0 || heads <= 0) return 0;
  // Token t attends context + t + 1 positions.
  const int64_t positions = tokens * context + tokens * (tokens + 1) / 2;
  const int nth = model::attention_on_pool(positions, heads, head_dim, threads) ? threads : 1;
  const int64_t items = tokens * heads;
  double slowest = 0;
  for (int ith = 0; ith < nth; ++ith) {
    const model::ItemRange r = model::attention_items(items, ith, nth);
    if (r.end <= r.begin) continue;
    // Items are token-major: sum the positions of the run's items token by token.
    double s = 0;
    for (int64_t item = r.begin; item < r.end;) {
      const int64_t t = item / heads, next = std::min(r.end, (t + 1) * heads);
      s += static_cast<double>(next - item) * v.attention_item_s(head_dim, static_cast<double>(context + t + 1));
      item = next;
    }
    slowest = std::max(slowest, s);
  }
  return slowest;
}

double core_share(int machine_threads, int cores) {
  if (machine_threads <= cores || cores <= 0) return 1;
  const int turns = (machine_threads + cores - 1) / cores;  // on the busiest core
  return static_cast<double>(machine_threads) / cores / turns;
}

double row_parallel_s(const NodeSpeed& n, bool prefill, double flops, double flops_per_chunk) {
  const double c0 = static_cast<double>(n.row_parallel_chunks[0]), c1 = static_cast<double>(n.row_parallel_chunks[1]);
  const double gflops = prefill ? n.compute_gflops : n.matrix_vector_gflops();
  if (!(c0 > 0) || !(c1 > c0) || !(gflops > 0) || !(flops > 0)) return 0;
  const double(&slowdown)[2] = prefill ? n.row_parallel_slowdown : n.row_parallel_decode_slowdown;
  const double per_fold = (slowdown[0] - slowdown[1]) / (1 / c0 - 1 / c1);
  const double per_flop = slowdown[1] - 1 - per_fold / c1;
  return std::max(per_flop * flops + per_fold * flops_per_chunk, 0.0) / (gflops * 1e9);
}

double handover_per_sync_s(const NodeSpeed& n) {
  const int beyond = n.threads_beyond_cores;
  if (beyond <= 0) return 0;
  const double one = n.handover_s[0], all = n.handover_s[1];
  if (n.cores <= 1 || !(all > 0)) return std::max(one, 0.0) * beyond;
  return std::max(one + (beyond - 1) * (all - one) / (n.cores - 1), 0.0);
}

PassTimes pass_times(const ClusterModel& m, Algorithm a, WireFormat w, int tokens, bool prefill) {
  PassTimes t;
  std::vector<double> mem(m.nodes.size()), compute(m.nodes.size()), attention(m.nodes.size()),
      elementwise(m.nodes.size());
  // A prompt's pass starts at position 0 and wants the logits of its last token alone.
  const int64_t context = prefill ? 0 : m.decode_context;
  const double logits_tokens = prefill ? 1 : tokens;
  for (const RankWork& r : m.ranks) {
    // Of the experts the rank holds, the share at least one of the pass's tokens is routed to.
    const double touched = 1 - std::pow(1 - r.expert_fraction, tokens);
    const double bytes = r.dense_bytes + r.expert_bytes * touched;
    const NodeSpeed& n = m.nodes.at(r.node);
    // In bytes of the Q4_0 stream the node's bandwidth is: each type's at its own stream's rate.
    double dense_stream = r.dense_bytes, expert_stream = r.expert_bytes;
    for (const auto& [type, b] : r.dense_bytes_of_type) dense_stream += b * (n.stream_cost(type) - 1);
    for (const auto& [type, b] : r.expert_bytes_of_type) expert_stream += b * (n.stream_cost(type) - 1);
    mem.at(r.node) += dense_stream + expert_stream * touched;
    // Each rank's pool meets on its own (the node's ranks at once): the slowest rank's meetings.
    const double expert_meetings =
        r.expert_layers * model::expert_layer_meetings(tokens, prefill ? 0 : tokens, n.threads, r.n_expert_used,
                                                       r.experts_per_layer * touched, r.shared_experts);
    const double attention_meetings =
        r.latent_attention_layers *
        model::latent_attention_meetings(tokens, prefill ? 0 : tokens, n.threads, r.low_rank_q, r.latent_heads);
    const double matmuls = r.dense_matmuls + expert_meetings + attention_meetings,
                 probe_paid = bytes / kProbeMatrixBytes;
    const double meetings_s = prefill && n.prompt_meeting_s > 0
                                  ? std::max(matmuls - probe_paid, 0.0) * n.prompt_meeting_s
                                  : std::max(matmuls * (tokens > 1 ? 2 : 1) - probe_paid, 0.0) * n.meeting_s;
    t.meetings_s = std::max(t.meetings_s, meetings_s);
    const double dense_flops = 2.0 * tokens * (r.dense_params - r.lm_head_params),
                 lm_head_flops = 2.0 * logits_tokens * r.lm_head_params,
                 expert_flops = 2.0 * tokens * r.expert_params * r.expert_fraction;
    // The row-parallel matmuls' flops, each token's through the routed share of the experts.
    const double routed = 2.0 * tokens * r.expert_fraction, each = 2.0 * tokens;
    const double row_parallel_extra_s =
        row_parallel_s(n, prefill, each * r.row_parallel_dense_params + routed * r.row_parallel_expert_params,
                       each * r.row_parallel_dense_per_chunk + routed * r.row_parallel_expert_per_chunk);
    if (!prefill) {  // decode and verify passes run the matrix-vector kernels, each token its logits
      const double gflops = n.matrix_vector_gflops();
      const double flops = n.stream_flops_per_byte > 0
                               ? tokens * (dense_stream + expert_stream * r.expert_fraction) * n.stream_flops_per_byte
                               : dense_flops + lm_head_flops + expert_flops;
      if (gflops > 0) compute[r.node] += flops / (gflops * 1e9) + row_parallel_extra_s;
    } else if (n.compute_gflops > 0) {
      // A prompt's tokens routed to one expert are that expert's tile: ~tokens x k / E of them.
      const double per_expert = touched > 0 ? tokens * r.expert_fraction / touched : 1;
      compute[r.node] += dense_flops * prompt_seconds_per_flop(n, tokens) +
                         lm_head_flops * prompt_seconds_per_flop(n, logits_tokens) +
                         expert_flops * prompt_seconds_per_flop(n, per_expert) + row_parallel_extra_s;
    }
    // Each rank's attention and element-wise work runs on its own pool (the node's ranks at once).
    const NodeVectorWork v = vector_work(n);
    const int threads = std::max(n.threads, 1);
    attention[r.node] =
        std::max(attention[r.node],
                 r.attention_layers * attention_layer_s(v, tokens, context, static_cast<int64_t>(r.attention_heads),
                                                        r.head_dim, threads));
    // A batch's element-wise loops are cut evenly among the threads (one token's norms run inline).
    const double norm_threads = tokens > 1 ? threads : 1;
    elementwise[r.node] = std::max(elementwise[r.node], tokens * (r.silu_elements * v.silu_s / threads +
                                                                  r.norm_elements * v.norm_s / norm_threads));
  }
  for (size_t n = 0; n < m.nodes.size(); ++n) {
    const NodeSpeed& node = m.nodes[n];
    const double share = node.core_share > 0 ? node.core_share : 1;
    if (mem[n] > 0) t.memory_s = std::max(t.memory_s, mem[n] / (node.bandwidth_gbs * 1e9) / share);
    t.compute_s = std::max(t.compute_s, compute[n] / share);
    // The slowest node's; its threads share the cores as its matmuls' do.
    if ((attention[n] + elementwise[n]) / share > t.non_matmul_s()) {
      t.attention_s = attention[n] / share;
      t.elementwise_s = elementwise[n] / share;
    }
  }
  const int ranks = static_cast<int>(m.ranks.size());
  if (ranks <= 1) return t;
  // The slowest link a message crosses: the link when one is given, else the node's memory.
  const LinkSpeed& link = m.link ? *m.link : m.shared_memory;
  const double bytes = static_cast<double>(m.n_embd) * tokens * wire_bytes_per_value(w);
  const AllreduceCost c = allreduce_cost(a, ranks, bytes);
  const int exchanges = prefill ? 0 : m.exchanges_per_step;
  const LinkSpeed& step_link = m.step_link ? *m.step_link : link;
  t.latency_s = (m.allreduces_per_pass * c.hops * link.latency_us + exchanges * step_link.latency_us) * 1e-6;
  t.bandwidth_s = m.allreduces_per_pass * c.bytes_sent / (link.bandwidth_gbs * 1e9);
  double handover = 0;  // one synchronisation's, on the machine where it costs most
  for (const NodeSpeed& node : m.nodes) handover = std::max(handover, handover_per_sync_s(node));
  t.handover_s = m.allreduces_per_pass * std::max(handover - c.hops * link.latency_us * 1e-6, 0.0) +
                 exchanges * std::max(handover - step_link.latency_us * 1e-6, 0.0);
  if (prefill && m.prompt_overlap)
    t.overlap_hidden_s = prompt_overlap_hidden_s(m, a, link, bytes, tokens, t.attention_s);
  return t;
}

double prompt_overlap_hidden_s(const ClusterModel& m, Algorithm a, const LinkSpeed& link, double bytes, int tokens,
                               double attention_s) {
  const int64_t piece = model::overlap_piece_tokens(tokens, tokens);
  const int ranks = static_cast<int>(m.ranks.size());
  if (piece == 0 || ranks <= 1 || m.ranks.empty()) return 0;
  // The pieces as equal shares of the prompt (the engine's last is the shorter one).
  const double pieces = std::ceil(static_cast<double>(tokens) / static_cast<double>(piece)),
               piece_tokens = tokens / pieces;
  auto link_s = [&](const AllreduceCost& c) {
    return c.hops * link.latency_us * 1e-6 + c.bytes_sent / (link.bandwidth_gbs * 1e9);
  };
  const double whole = link_s(allreduce_cost(a, ranks, bytes)),
               one_piece = link_s(allreduce_cost(a, ranks, bytes / pieces));
  // Per all-reduce of a group: a piece's work on the slowest rank, and what its pipeline leaves
  // exposed: the last piece's all-reduce, and the earlier pieces' where they outlast the work.
  auto hidden = [&](double RankWork::*params, int RankWork::*allreduces, double other_s) {
    const int count = m.ranks.front().*allreduces;
    if (count <= 0) return 0.0;
    double matmul_s = 0;
    for (const RankWork& r : m.ranks) {
      const NodeSpeed& n = m.nodes.at(r.node);
      if (n.compute_gflops <= 0) return 0.0;
      const double share = n.core_share > 0 ? n.core_share : 1;
      matmul_s = std::max(matmul_s,
                          2.0 * piece_tokens * (r.*params / count) * prompt_seconds_per_flop(n, piece_tokens) / share);
    }
    const double work_s = matmul_s + other_s / count / pieces;
    const double exposed = std::max(one_piece, pieces * one_piece - (pieces - 1) * work_s);
    return count * (whole - exposed);
  };
  return hidden(&RankWork::overlap_attention_params, &RankWork::overlap_attention_allreduces, attention_s) +
         hidden(&RankWork::overlap_ffn_params, &RankWork::overlap_ffn_allreduces, 0);
}

Prediction predict(const ClusterModel& m, Algorithm a, WireFormat w, int streams, int prefill_batch) {
  Prediction p;
  p.algorithm = a;
  p.wire = w;
  p.streams = std::max(streams, 1);
  p.prefill_batch = std::max(prefill_batch, 1);
  p.decode_one = pass_times(m, a, w, 1, false);
  p.decode_streams = pass_times(m, a, w, p.streams, false);
  p.prefill = pass_times(m, a, w, p.prefill_batch, true);
  p.decode_tok_s = 1 / p.decode_one.total();
  p.decode_streams_tok_s = p.streams / p.decode_streams.total();
  p.prefill_tok_s = p.prefill_batch / p.prefill.total();
  return p;
}

SpeculativePrediction predict_speculative(const ClusterModel& m, Algorithm a, WireFormat w, const Speculation& s) {
  using speculative::kCatchUpMax;
  using speculative::kRestartTokens;
  const int lo = std::max(s.draft_min, 0), hi = std::max(s.draft_max, lo);
  std::vector<double> pass(static_cast<size_t>(hi) + 2, 0.0);  // by width n (index n)
  for (int n = 1; n <= std::max(hi + 1, 2); ++n) pass[static_cast<size_t>(n)] = pass_times(m, a, w, n, false).total();
  speculative::DraftCosts c;
  c.acceptance = s.acceptance;
  c.pass_s = [&pass](int n) { return pass[static_cast<size_t>(n)]; };
  c.draft_s_per_token = s.draft_s_per_token;
  // A probe after `gap` plain rounds: the draft model catches up what it missed (model_drafter.h),
  // whose last logits are its one draft.
  c.probe_draft_s = [&s](int gap) {
    if (!s.draft_catch_up_s) return s.draft_s_per_token;
    return s.draft_catch_up_s(gap + 1 > kCatchUpMax ? kRestartTokens + 1 : gap + 1);
  };
  const speculative::DraftChoice d = speculative::choose_draft_length(c, lo, hi);
  SpeculativePrediction p;
  p.k = d.k;
  p.verify = pass_times(m, a, w, d.k + 1, false);
  p.tokens_per_round = d.tokens_per_round;
  p.round_s = d.round_s;
  p.tok_s = d.tokens_per_round / d.round_s;
  if (d.probe_every > 0) {
    // probe_every plain rounds, then the probe: its draft and a pass over two tokens, 1 + a tokens.
    p.probe_every = d.probe_every;
    const double rounds = d.probe_every + 1.0;
    const double tokens = d.probe_every + 1 + std::clamp(s.acceptance, 0.0, 0.999);
    const double cycle_s = d.probe_every * pass[1] + c.probe_draft_s(d.probe_every) + pass[2];
    p.tokens_per_round = tokens / rounds;
    p.round_s = cycle_s / rounds;
    p.tok_s = tokens / cycle_s;
  }
  p.run_tokens_per_round = p.tokens_per_round;
  p.run_tok_s = p.tok_s;
  if (s.tokens > 1) {
    // The first rounds as the engine takes them, then the settled rounds' means for the rest.
    p.opening = speculative::opening_draft_lengths(c, lo, hi);
    double left = static_cast<double>(s.tokens - 1), rounds = 0, time_s = 0;
    for (const int k : p.opening) {
      if (left <= 0) break;
      const int drafted = std::min(k, static_cast<int>(std::ceil(left)) - 1);  // the engine's budget cut
      left -= std::min(speculative::expected_tokens(s.acceptance, drafted), left);
      time_s += pass[static_cast<size_t>(drafted) + 1] + drafted * s.draft_s_per_token;
      rounds += 1;
    }
    if (left > 0) {
      rounds += left / p.tokens_per_round;
      time_s += left / p.tok_s;
    }
    p.run_tokens_per_round = static_cast<double>(s.tokens - 1) / rounds;
    p.run_tok_s = static_cast<double>(s.tokens - 1) / time_s;
  }
  return p;
}

double acceptance_from_kept_share(double share, int k) {
  if (k <= 1 || share <= 0) return std::clamp(share, 0.0, 1.0);
  if (share >= 1) return 1;
  // The share grows with a: bisection.
  double lo = 0, hi = 1;
  for (int i = 0; i < 60; ++i) {
    const double mid = (lo + hi) / 2;
    const double kept = mid * (1 - std::pow(mid, k)) / (k * (1 - mid));
    (kept < share ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

std::vector<Prediction> predict_all(const ClusterModel& m, int streams, int prefill_batch) {
  if (m.ranks.size() <= 1) return {predict(m, Algorithm::one_shot, WireFormat::f64, streams, prefill_batch)};
  std::vector<Prediction> out;
  for (Algorithm a : {Algorithm::one_shot, Algorithm::recursive_doubling, Algorithm::ring})
    for (WireFormat w : {WireFormat::f64, WireFormat::f32, WireFormat::bf16, WireFormat::q8})
      out.push_back(predict(m, a, w, streams, prefill_batch));
  std::stable_sort(out.begin(), out.end(),
                   [](const Prediction& x, const Prediction& y) { return x.decode_tok_s > y.decode_tok_s; });
  return out;
}

// Where each figure comes from: docs/tuning.md ("Link presets").
std::vector<LinkSpeed> link_presets() {
  return {{"thunderbolt-bridge", 300, 2.5},
          {"10gbe", 50, 1.1},
          {"1gbe", 120, 0.11},
          {"veth", 20, 1.5},
          {"shared-memory", 10, 4}};
}

LinkSpeed link_from_allreduces(double small_bytes, double small_us, double large_bytes, double large_us, int ranks) {
  const double copies = std::max(ranks - 1, 1);
  const double floor_gbs = copies * small_bytes / (0.5 * small_us) / 1e3;
  LinkSpeed l{"measured", 0, floor_gbs};
  if (large_us > small_us && large_bytes > small_bytes)
    l.bandwidth_gbs = std::max(copies * (large_bytes - small_bytes) / (large_us - small_us) / 1e3, floor_gbs);
  l.latency_us = small_us - copies * small_bytes / (l.bandwidth_gbs * 1e3);
  return l;
}

LinkSpeed parse_link(const std::string& text) {
  for (const LinkSpeed& p : link_presets())
    if (p.name == text) return p;
  std::string names;
  for (const LinkSpeed& p : link_presets()) names += (names.empty() ? "" : ", ") + p.name;
  const std::string form = "a preset (" + names + ") or LATENCY,BANDWIDTH such as 300us,10gbit or 50us,1gbyte";
  const auto comma = text.find(',');
  if (comma == std::string::npos) throw Error("--link '" + text + "' is neither " + form);
  std::string spec = text;
  if (text.find('=') == std::string::npos)
    spec = "latency=" + text.substr(0, comma) + ",bandwidth=" + text.substr(comma + 1);
  try {
    const collectives::LinkSpec s = collectives::parse_link_spec(spec);
    if (s.bandwidth_bytes_per_s <= 0) throw Error("a bandwidth above 0 is needed");
    return {text, s.latency_s * 1e6, s.bandwidth_bytes_per_s / 1e9};
  } catch (const std::exception& e) {
    throw Error("--link '" + text + "': " + e.what() + "; write " + form);
  }
}

namespace {

// "800GB/s" -> 800 (GB/s); "2TFLOPS" -> 2000 (GFLOPS): a number and one of `units`.
std::optional<double> number_with_unit(const std::string& text, const std::map<std::string, double>& units) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = text.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto it = units.find(unit);
  if (it == units.end() || !(v > 0) || !std::isfinite(v)) return std::nullopt;
  return v * it->second;
}

NodeGroup parse_node_group(const std::string& g, const std::string& whole) {
  const std::string form = "write COUNTxMEMORY@BANDWIDTH[@COMPUTE], e.g. 4x192GB@800GB/s or 2x64GB@273GB/s@2TFLOPS";
  auto bad = [&](const std::string& why) { return Error("--nodes '" + whole + "': " + why + "; " + form); };
  const auto x = g.find('x');
  const auto at = g.find('@');
  if (x == std::string::npos || at == std::string::npos || at < x)
    throw bad("'" + g + "' lacks a count, memory or bandwidth");
  NodeGroup n;
  try {
    size_t used = 0;
    n.count = std::stoi(g.substr(0, x), &used);
    if (used != x) throw std::invalid_argument("count");
  } catch (const std::exception&) {
    throw bad("'" + g.substr(0, x) + "' is not a node count");
  }
  if (n.count < 1 || n.count > 64) throw bad("the node count must be 1 to 64");
  const auto mem = config::parse_byte_size(g.substr(x + 1, at - x - 1));
  if (!mem || *mem == 0) throw bad("'" + g.substr(x + 1, at - x - 1) + "' is not a memory size such as 64GB");
  n.memory_bytes = *mem;
  const auto at2 = g.find('@', at + 1);
  const std::string bw = g.substr(at + 1, at2 == std::string::npos ? std::string::npos : at2 - at - 1);
  const auto gbs = number_with_unit(bw, {{"GB/S", 1}, {"TB/S", 1000}, {"MB/S", 1e-3}});
  if (!gbs) throw bad("'" + bw + "' is not a memory bandwidth such as 800GB/s");
  n.speed.bandwidth_gbs = *gbs;
  if (at2 != std::string::npos) {
    const auto gf = number_with_unit(g.substr(at2 + 1), {{"GFLOPS", 1}, {"TFLOPS", 1000}});
    if (!gf) throw bad("'" + g.substr(at2 + 1) + "' is not a compute figure such as 2TFLOPS or 500GFLOPS");
    n.speed.compute_gflops = *gf;
    n.compute_given = true;
  } else {
    n.speed.compute_gflops = n.speed.bandwidth_gbs * kAssumedFlopsPerByte;
  }
  return n;
}

}  // namespace

std::vector<NodeGroup> parse_nodes(const std::string& text) {
  std::vector<NodeGroup> out;
  size_t b = 0;
  while (true) {
    const auto e = text.find('+', b);
    out.push_back(parse_node_group(text.substr(b, e == std::string::npos ? std::string::npos : e - b), text));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  int total = 0;
  for (const auto& g : out) total += g.count;
  if (total > 64) throw Error("--nodes '" + text + "': more than 64 nodes");
  return out;
}

}  // namespace clusterctl::placement
