#include "controller/cli/plan_layout.h"

#include <cstdio>

#include "worker/common/human_bytes.h"

namespace clusterctl::cli {
namespace {

double link_s(const placement::PassTimes& t) { return t.latency_s + t.bandwidth_s; }
double node_s(const placement::PassTimes& t) { return std::max(t.memory_s, t.compute_s); }

std::string ms(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f ms", s * 1e3);
  return b;
}

// Why `rec` beats `other` (or the reverse), in the terms that decide it.
std::string compare(const LayoutOption& split, const LayoutOption& repl, bool replicated_wins) {
  const auto& s = split.best->decode_one;
  const auto& r = repl.best->decode_one;
  const double extra_bytes = repl.node_bytes_per_token - split.node_bytes_per_token;
  const double extra_kv = static_cast<double>(repl.node_kv_bytes) - static_cast<double>(split.node_kv_bytes);
  char b[512];
  std::snprintf(b, sizeof b,
                "the %d all-reduces per token it %s take %s of link time (%s -> %s per token), %s the %s more "
                "attention weights each node reads per token take (%s -> %s of memory or compute); replicated "
                "attention keeps %s more KV cache per node; predicted decode %.1f (split) vs %.1f (replicated) tok/s",
                split.allreduces_per_token - repl.allreduces_per_token, replicated_wins ? "saves" : "would save",
                ms(link_s(s) - link_s(r)).c_str(), ms(link_s(s)).c_str(), ms(link_s(r)).c_str(),
                replicated_wins ? "more than" : "less than", human_bytes(static_cast<uint64_t>(extra_bytes)).c_str(),
                ms(node_s(s)).c_str(), ms(node_s(r)).c_str(),
                human_bytes(static_cast<uint64_t>(std::max(0.0, extra_kv))).c_str(), split.best->decode_tok_s,
                repl.best->decode_tok_s);
  return b;
}

}  // namespace

LayoutChoice choose_layout(std::vector<LayoutOption> options, const std::string& configured,
                           const std::string& missing) {
  LayoutChoice c;
  c.options = std::move(options);
  c.configured = configured;
  if (c.options.size() < 2) {
    c.reason = "one rank: nothing is all-reduced, the layouts are the same";
  } else {
    const LayoutOption &split = c.options[0], &repl = c.options[1];
    if (!repl.fits && split.fits) {
      c.reason = "replicated attention does not fit: every node would need the whole attention weights and " +
                 human_bytes(repl.node_kv_bytes) + " of KV cache";
    } else if (!missing.empty() || !split.best || !repl.best) {
      c.reason = "the speeds are not predicted (" + (missing.empty() ? std::string("no link") : missing) +
                 "), so the exact default, split attention, stays";
    } else {
      const bool replicated_wins = repl.best->decode_tok_s > split.best->decode_tok_s;
      c.recommended = replicated_wins ? model::Layout::replicated_attention : model::Layout::split_attention;
      c.reason = compare(split, repl, replicated_wins);
    }
  }
  if (configured == "auto")
    c.runs = c.recommended;
  else if (auto l = model::parse_layout(configured))
    c.runs = *l;
  return c;
}

void print_layout_text(const LayoutChoice& c, const std::string& cluster_file) {
  std::printf("\nlayout (attention split over the ranks: 2 all-reduces per layer; replicated on every rank: 1):\n");
  for (const auto& o : c.options) {
    char speed[48] = "decode ?";
    if (o.best) std::snprintf(speed, sizeof speed, "decode %.1f tok/s", o.best->decode_tok_s);
    std::printf("  %-21s %3d all-reduces/token  %-18s busiest node reads %s/token, KV cache %s%s\n",
                model::layout_name(o.layout), o.allreduces_per_token, speed,
                human_bytes(static_cast<uint64_t>(o.node_bytes_per_token)).c_str(),
                human_bytes(o.node_kv_bytes).c_str(), o.fits ? "" : " (does NOT fit)");
  }
  std::printf("  recommended: %s: %s\n", model::layout_name(c.recommended), c.reason.c_str());
  if (cluster_file.empty()) return;
  const std::string how = c.configured.empty()     ? "(no 'layout:' in " + cluster_file + ")"
                          : c.configured == "auto" ? "(layout: auto)"
                                                   : "(layout: " + c.configured + " in " + cluster_file + ")";
  std::printf("  up runs: %s %s\n", model::layout_name(c.runs), how.c_str());
  if (c.runs != c.recommended && c.options.size() > 1)
    std::printf("  set 'layout: %s' (or 'layout: auto') in %s to run the recommended one\n",
                model::layout_name(c.recommended), cluster_file.c_str());
}

nlohmann::json layout_json(const LayoutChoice& c) {
  nlohmann::json j;
  j["configured"] = c.configured.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.configured);
  j["runs"] = model::layout_name(c.runs);
  j["recommended"] = model::layout_name(c.recommended);
  j["reason"] = c.reason;
  j["options"] = nlohmann::json::array();
  for (const auto& o : c.options)
    j["options"].push_back(
        {{"layout", model::layout_name(o.layout)},
         {"allreduces_per_token", o.allreduces_per_token},
         {"decode_tokens_per_s", o.best ? nlohmann::json(o.best->decode_tok_s) : nlohmann::json(nullptr)},
         {"node_bytes_per_token", o.node_bytes_per_token},
         {"node_kv_bytes", o.node_kv_bytes},
         {"fits", o.fits}});
  return j;
}

}  // namespace clusterctl::cli
