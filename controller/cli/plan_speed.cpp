#include "controller/cli/plan_speed.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "worker/model/architecture.h"
#include "worker/model/shard_file.h"
#include "worker/model/shard_plan.h"

namespace clusterctl::cli {

using placement::Prediction;

namespace {

std::string layout_name(const Prediction& p, size_t ranks) {
  if (ranks <= 1) return "one rank";
  return std::string(placement::algorithm_name(p.algorithm)) + " " + placement::wire_name(p.wire);
}

// A token's work besides the matmuls on this rank, as ForwardPass runs it: its query heads'
// attention in every layer, SwiGLU's gate over the rank's FFN slice (of a dense layer, or of the
// experts a token is routed to among those the rank holds, and the shared ones), and per layer the
// norm-like element-wise work: two norms and two residual adds over the embedding, RoPE and (where
// the layer has them) per-head norms over the rank's queries and keys, the KV stores.
void add_vector_work(const model::HParams& hp, const model::Partition& part, placement::RankWork& w) {
  const double layers = hp.n_layer, E = hp.n_embd;
  if (!hp.latent_attention()) {
    w.attention_layers = layers;
    w.attention_heads = static_cast<double>(part.q_heads.size());
    w.head_dim = hp.head_dim;
  }
  const double q_dim = static_cast<double>(part.q_heads.size()) * hp.head_dim,
               kv_dim = static_cast<double>(part.kv_heads(hp).size()) * hp.head_dim;
  w.norm_elements = layers * (4 * E + 2 * q_dim + 4 * kv_dim);
  if (!hp.n_expert) {
    w.silu_elements = layers * static_cast<double>(part.ffn.size());
    return;
  }
  const double lead = hp.n_layer_dense_lead, held = static_cast<double>(part.experts.size()) / hp.n_expert;
  w.silu_elements = lead * static_cast<double>(part.dense_ffn.size()) +
                    (layers - lead) * (hp.n_expert_used * held * static_cast<double>(part.ffn.size()) +
                                       static_cast<double>(part.shared_ffn.size()));
}

}  // namespace

placement::RankWork rank_work(const gguf::GgufFile& f, const model::HParams& hp, const model::Partition& part,
                              size_t node) {
  placement::RankWork w;
  w.node = node;
  const bool tied = f.find_tensor("output.weight") == nullptr;
  if (hp.n_expert) w.expert_fraction = static_cast<double>(hp.n_expert_used) / hp.n_expert;
  w.n_expert_used = hp.n_expert_used;
  if (hp.latent_attention()) {
    w.latent_attention_layers = hp.n_layer;
    w.latent_heads = static_cast<double>(part.q_heads.size());
    w.low_rank_q = hp.q_lora_rank > 0;
  }
  add_vector_work(hp, part, w);
  // The row-parallel matrices and the column chunks they sum in, as the engine's ForwardPass.
  const model::ReductionGrid grid = model::reduction_grid(hp, model::SplitUnits::from_model(f, hp));
  std::map<std::string, int64_t> chunk_of;
  for (const model::TensorSpec& s : model::find_architecture(hp.arch, f.path()).tensors(hp))
    if (s.row_parallel()) chunk_of[s.name()] = s.split == model::Split::QHeadColumns ? grid.attn_output : grid.ffn_down;
  for (const auto& t : model::shard_tensors(f, hp, part)) {
    double elements = 1;
    for (uint64_t d : t.shape) elements *= static_cast<double>(d);
    if (const auto c = chunk_of.find(t.name); c != chunk_of.end() && c->second > 0) {
      const bool routed = t.name.find("_exps.") != std::string::npos;
      (routed ? w.row_parallel_expert_params : w.row_parallel_dense_params) += elements;
      // As ForwardPass::add_row_parallel: attention outputs, dense FFN down projections.
      if (t.name.ends_with(".attn_output.weight"))
        w.overlap_attention_params += elements, w.overlap_attention_allreduces += 1;
      if (t.name.ends_with(".ffn_down.weight")) w.overlap_ffn_params += elements, w.overlap_ffn_allreduces += 1;
      (routed ? w.row_parallel_expert_per_chunk : w.row_parallel_dense_per_chunk) +=
          elements / static_cast<double>(c->second);
    }
    // A dense FFN's gate and up projections run piece by piece before its down projection.
    if (t.name.ends_with(".ffn_gate.weight") || t.name.ends_with(".ffn_up.weight")) w.overlap_ffn_params += elements;
    const std::string type(gguf::type_name(t.type));
    if (t.name == "token_embd.weight" && t.shape.size() == 2) {
      // Every rank holds the embedding whole but reads one row of it a token; tied, it is also the
      // LM head, of which the rank multiplies only its vocabulary slice.
      const double rows = 1.0 + (tied ? static_cast<double>(part.vocab.size()) : 0.0);
      w.dense_bytes += static_cast<double>(t.bytes) / static_cast<double>(t.shape[1]) * rows;
      w.dense_bytes_of_type[type] += static_cast<double>(t.bytes) / static_cast<double>(t.shape[1]) * rows;
      w.dense_params += static_cast<double>(t.shape[0]) * rows;
      w.lm_head_params += tied ? static_cast<double>(t.shape[0]) * static_cast<double>(part.vocab.size()) : 0.0;
      w.dense_matmuls += tied ? 1 : 0;
    } else if (t.name.find("_exps.") != std::string::npos) {
      // Routed experts by name: deepseek2's per-head attn_k_b/attn_v_b are 3-D too, and read whole.
      w.expert_bytes += static_cast<double>(t.bytes);
      w.expert_bytes_of_type[type] += static_cast<double>(t.bytes);
      w.expert_params += elements;
      if (t.name.find("ffn_down_exps") != std::string::npos) {
        w.expert_layers += 1;
        w.experts_per_layer = static_cast<double>(t.shape[2]);  // the experts this rank holds
      }
    } else {
      w.dense_bytes += static_cast<double>(t.bytes);
      w.dense_bytes_of_type[type] += static_cast<double>(t.bytes);
      w.dense_params += elements;
      if (t.name == "output.weight") w.lm_head_params += elements;
      // The shared experts' matrices meet the pool as the routed ones' path runs them.
      const bool shared_expert = t.name.find("_shexp.") != std::string::npos;
      w.shared_experts = w.shared_experts || shared_expert;
      // Latent attention's matmuls are counted by the way the engine runs them (RankWork); a
      // router's logits are summed by each token's thread (ForwardPass::route), not the pool.
      const bool latent = hp.latent_attention() && t.name.find(".attn_") != std::string::npos;
      const bool router = t.name.find(".ffn_gate_inp") != std::string::npos;
      w.dense_matmuls += t.shape.size() == 2 && !shared_expert && !latent && !router ? 1 : 0;
    }
  }
  return w;
}

SpeedPlan plan_speed(std::vector<placement::RankWork> ranks, const model::HParams& hp, const SpeedInputs& in,
                     model::Layout layout) {
  SpeedPlan p;
  p.model.nodes = in.nodes;
  p.model.ranks = std::move(ranks);
  p.model.link = in.link;
  p.model.step_link = in.step_link;
  p.model.prompt_overlap = in.prompt_overlap;
  p.model.shared_memory = placement::parse_link("shared-memory");
  p.model.allreduces_per_pass = (layout == model::Layout::replicated_attention ? 1 : 2) * static_cast<int>(hp.n_layer);
  if (layout == model::Layout::replicated_attention)  // attention adds no all-reduce to overlap
    for (placement::RankWork& r : p.model.ranks) r.overlap_attention_params = 0, r.overlap_attention_allreduces = 0;
  p.model.n_embd = hp.n_embd;
  if (in.missing.empty()) p.predictions = placement::predict_all(p.model, in.streams, in.prefill_batch);
  if (!p.predictions.empty() && !in.draft.empty() && in.draft_kept_share >= 0) {
    SpeculativePlan s;
    s.plain = p.predictions.front();
    for (const auto& pr : p.predictions)
      if (!in.configured.empty() && layout_name(pr, p.model.ranks.size()) == in.configured) s.plain = pr;
    s.inputs.draft_max = in.draft_max;
    s.inputs.tokens = in.draft_tokens;
    s.inputs.acceptance = placement::acceptance_from_kept_share(in.draft_kept_share, in.draft_max);
    if (in.draft_work) {
      // The draft model runs on rank 0 alone while the other ranks wait: one rank's pool alone on
      // rank 0's node as doctor measured it (else its share of the node's figures).
      placement::ClusterModel d;
      const placement::RankWork& r0 = p.model.ranks.front();
      int on_node = 0;
      for (const auto& r : p.model.ranks) on_node += r.node == r0.node ? 1 : 0;
      placement::NodeSpeed speed = p.model.nodes.at(r0.node);
      speed.bandwidth_gbs =
          speed.one_rank_bandwidth_gbs > 0 ? speed.one_rank_bandwidth_gbs : speed.bandwidth_gbs / on_node;
      speed.decode_gflops =
          speed.one_rank_decode_gflops > 0 ? speed.one_rank_decode_gflops : speed.decode_gflops / on_node;
      speed.compute_gflops /= on_node;
      d.nodes = {speed};
      d.ranks = {*in.draft_work};
      d.ranks.front().node = 0;
      s.inputs.draft_s_per_token =
          placement::pass_times(d, placement::Algorithm::one_shot, placement::WireFormat::f64, 1, false).total();
      s.inputs.draft_catch_up_s = [d](int n) {
        return placement::pass_times(d, placement::Algorithm::one_shot, placement::WireFormat::f64, n, true).total();
      };
    }
    s.predicted = placement::predict_speculative(p.model, s.plain.algorithm, s.plain.wire, s.inputs);
    p.speculative = s;
  }
  return p;
}

namespace {

nlohmann::json pass_json(const placement::PassTimes& t, double tok_s) {
  return {{"tokens_per_s", tok_s},
          {"memory_ms", t.memory_s * 1e3},
          {"compute_ms", t.compute_s * 1e3},
          {"link_latency_ms", t.latency_s * 1e3},
          {"link_bandwidth_ms", t.bandwidth_s * 1e3},
          {"meetings_ms", t.meetings_s * 1e3},
          {"non_matmul_ms", t.non_matmul_s() * 1e3},
          {"attention_ms", t.attention_s * 1e3},
          {"elementwise_ms", t.elementwise_s * 1e3},
          {"handover_ms", t.handover_s * 1e3},
          {"overlap_hidden_ms", t.overlap_hidden_s * 1e3},
          {"limit", placement::term_name(t.limit())}};
}

// "memory 71 %": the limiting term's share of the pass.
std::string limit_text(const placement::PassTimes& t) {
  const double share[] = {t.memory_s, t.compute_s, t.latency_s, t.bandwidth_s, t.non_matmul_s(), t.handover_s};
  const double of = t.total();
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s %.0f %%", placement::term_name(t.limit()),
                100.0 * share[static_cast<int>(t.limit())] / of);
  return buf;
}

}  // namespace

nlohmann::json speed_json(const SpeedPlan& p, const SpeedInputs& in, const std::vector<std::string>& node_names) {
  nlohmann::json j;
  for (size_t n = 0; n < in.nodes.size(); ++n)
    j["nodes"].push_back({{"name", n < node_names.size() ? node_names[n] : ""},
                          {"bandwidth_gb_s", in.nodes[n].bandwidth_gbs},
                          {"compute_gflops", in.nodes[n].compute_gflops},
                          {"decode_gflops", in.nodes[n].decode_gflops},
                          {"core_share", in.nodes[n].core_share},
                          {"threads_beyond_cores", in.nodes[n].threads_beyond_cores},
                          {"handover_per_sync_us", placement::handover_per_sync_s(in.nodes[n]) * 1e6},
                          {"from", in.node_from[n]}});
  j["link"] = in.link ? nlohmann::json{{"name", in.link->name},
                                       {"latency_us", in.link->latency_us},
                                       {"bandwidth_gb_s", in.link->bandwidth_gbs},
                                       {"from", in.link_from}}
                      : nlohmann::json(nullptr);
  double bytes = 0;
  for (const auto& r : p.model.ranks) bytes = std::max(bytes, r.dense_bytes + r.expert_bytes * r.expert_fraction);
  j["largest_rank_bytes_per_token"] = bytes;
  j["allreduces_per_token"] = p.model.allreduces_per_pass;
  j["streams"] = in.streams;
  j["prefill_batch"] = in.prefill_batch;
  j["missing"] = in.missing.empty() ? nlohmann::json(nullptr) : nlohmann::json(in.missing);
  j["draft"] = in.draft.empty() ? nlohmann::json(nullptr) : nlohmann::json(in.draft);
  if (p.speculative) {
    const auto& s = *p.speculative;
    j["speculative"] = {
        {"layout", layout_name(s.plain, p.model.ranks.size())},
        {"kept_share", in.draft_kept_share},
        {"acceptance", s.inputs.acceptance},
        {"draft_ms_per_token", s.inputs.draft_s_per_token * 1e3},
        {"draft_max", s.inputs.draft_max},
        {"k", s.predicted.k},
        {"probe_every", s.predicted.probing() ? nlohmann::json(s.predicted.probe_every) : nlohmann::json()},
        {"tokens", s.inputs.tokens},
        {"opening_drafts", s.predicted.opening},
        {"tokens_per_round", s.predicted.run_tokens_per_round},
        {"tokens_per_s", s.predicted.run_tok_s},
        {"settled_tokens_per_round", s.predicted.tokens_per_round},
        {"round_ms", s.predicted.round_s * 1e3},
        {"settled_tokens_per_s", s.predicted.tok_s},
        {"plain_tokens_per_s", s.plain.decode_tok_s},
        {"limit", placement::term_name(s.predicted.verify.limit())}};
  } else {
    j["speculative"] = nullptr;
  }
  j["predictions"] = nlohmann::json::array();
  for (const auto& pr : p.predictions)
    j["predictions"].push_back({{"algorithm", p.model.ranks.size() > 1 ? placement::algorithm_name(pr.algorithm) : ""},
                                {"wire_format", p.model.ranks.size() > 1 ? placement::wire_name(pr.wire) : ""},
                                {"decode", pass_json(pr.decode_one, pr.decode_tok_s)},
                                {"decode_streams", pass_json(pr.decode_streams, pr.decode_streams_tok_s)},
                                {"prefill", pass_json(pr.prefill, pr.prefill_tok_s)}});
  return j;
}

void print_speed_text(const SpeedPlan& p, const SpeedInputs& in, const std::vector<std::string>& node_names) {
  std::printf("\npredicted speed (a roofline per forward pass; docs/tuning.md says how, and how close it came):\n");
  for (size_t n = 0; n < in.nodes.size(); ++n) {
    // The matrix-vector rate decode multiplies at, where the probe measured it.
    const std::string decode =
        in.nodes[n].decode_gflops > 0 ? ", decode " + std::to_string(std::lround(in.nodes[n].decode_gflops)) : "";
    std::printf("  %-14s %.1f GB/s, %.0f GFLOPS%s (%s)\n", n < node_names.size() ? node_names[n].c_str() : "?",
                in.nodes[n].bandwidth_gbs, in.nodes[n].compute_gflops, decode.c_str(), in.node_from[n].c_str());
  }
  if (in.link)
    std::printf("  link: %s, %.0f us, %.2f GB/s (%s)\n", in.link->name.c_str(), in.link->latency_us,
                in.link->bandwidth_gbs, in.link_from.c_str());
  if (!in.missing.empty()) {
    std::printf("  not predicted: %s\n", in.missing.c_str());
    return;
  }
  std::printf("  %d all-reduces of %lld values per token\n\n", p.model.allreduces_per_pass,
              static_cast<long long>(p.model.n_embd));
  std::printf("%-28s %-10s %-24s %-14s %-24s %-10s %s\n", "ALL-REDUCE", "DECODE", "LIMIT", "DECODE x", "LIMIT",
              "PREFILL", "LIMIT");
  for (const auto& pr : p.predictions) {
    std::string head = layout_name(pr, p.model.ranks.size());
    if (!in.configured.empty() && head == in.configured) head += " (configured)";
    char streams[32];
    std::snprintf(streams, sizeof streams, "%.1f (%d)", pr.decode_streams_tok_s, pr.streams);
    std::printf("%-28s %-10.1f %-24s %-14s %-24s %-10.0f %s\n", head.c_str(), pr.decode_tok_s,
                limit_text(pr.decode_one).c_str(), streams, limit_text(pr.decode_streams).c_str(), pr.prefill_tok_s,
                limit_text(pr.prefill).c_str());
  }
  std::printf("tokens/s; DECODE x: all %d streams of api.parallel together; PREFILL: batches of %d tokens\n",
              in.streams, in.prefill_batch);
  if (p.speculative) {
    const auto& s = *p.speculative;
    // At k = 0 the engine may still draft one token every probe_every rounds, the draft catching up first.
    const std::string probe =
        s.predicted.probing()
            ? " (the engine probes k=1 every " + std::to_string(s.predicted.probe_every) + " rounds: the means)"
            : "";
    // The engine's first rounds draft less while k settles: a run's figure, and the settled one.
    std::string opening;
    for (const int k : s.predicted.opening) opening += (opening.empty() ? "" : ", ") + std::to_string(k);
    opening = opening.empty() ? "k settled from the first round" : "the first rounds draft " + opening;
    std::printf(
        "speculative (--draft %s, %.0f %% of drafts kept as measured -> %.2f a token, %.2f ms a draft): %s k=%d%s, "
        "%.2f tokens a round of %.1f ms: %.1f tok/s once k settles (plain %.1f), verify pass %s\n"
        "  over a run of %lld tokens (--tokens; %s): %.1f tok/s, %.2f tokens a round\n",
        in.draft.c_str(), 100 * in.draft_kept_share, s.inputs.acceptance, s.inputs.draft_s_per_token * 1e3,
        layout_name(s.plain, p.model.ranks.size()).c_str(), s.predicted.k, probe.c_str(), s.predicted.tokens_per_round,
        s.predicted.round_s * 1e3, s.predicted.tok_s, s.plain.decode_tok_s, limit_text(s.predicted.verify).c_str(),
        static_cast<long long>(s.inputs.tokens), opening.c_str(), s.predicted.run_tok_s,
        s.predicted.run_tokens_per_round);
  } else if (!in.draft.empty()) {
    std::printf(
        "speculative (--draft %s): not predicted without the share of drafts kept, which depends on the draft and "
        "the text, not the cluster: measure it on any machine with 'clusterctl bench MODEL --draft %s' (or a "
        "server's /metrics) and give it as --draft-acceptance 0.8\n",
        in.draft.c_str(), in.draft.c_str());
  }
}

}  // namespace clusterctl::cli
