#include "worker/server/cluster_view.h"

#include <iterator>
#include <sstream>

namespace clusterctl::server {
namespace {

using Json = nlohmann::json;

// A Prometheus label value: backslash, quote and newline escaped.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? 'n' : c;
  }
  return out;
}

}  // namespace

std::string link_between(const ClusterNode& a, const ClusterNode& b) {
  if (a.host == b.host) return "shared memory";
  if (!a.link.empty() && a.link == b.link) return a.link;
  if (!a.link.empty() && !b.link.empty()) return a.link + " / " + b.link;
  return "tcp";
}

Json cluster_json(const ModelInfo& model, const std::vector<ClusterNode>& nodes, const ServiceStats& stats,
                  const ClusterLoad& load, double tokens_per_second) {
  uint64_t all_weights = 0;
  for (const auto& n : nodes) all_weights += n.weight_bytes;
  Json out_nodes = Json::array();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const ClusterNode& n = nodes[i];
    Json j = {{"rank", n.rank},
              {"host", n.host},
              {"role", n.role},
              {"share", n.share},
              {"weight_bytes", n.weight_bytes},
              {"model_fraction", all_weights ? double(n.weight_bytes) / double(all_weights) : 0.0},
              {"link", n.link}};
    const auto r = static_cast<size_t>(n.rank);
    if (r < load.ranks.size()) {
      const RankFigures& f = load.ranks[r];
      j["resident_bytes"] = f.resident_bytes;
      j["steps"] = f.steps;
      j["decode_steps"] = f.decode_steps;
      j["bytes_sent"] = f.bytes_sent;
    }
    if (r < load.per_token.size() && load.per_token[r].decode_steps > 0) {
      j["compute_ms_per_token"] = load.per_token[r].compute_ms;
      j["comm_ms_per_token"] = load.per_token[r].comm_ms;
      j["comm_link_ms_per_token"] = load.per_token[r].link_ms;
      j["comm_wait_ms_per_token"] = load.per_token[r].wait_ms;
      j["bytes_sent_per_token"] = load.per_token[r].bytes_sent;
    } else {
      j["compute_ms_per_token"] = nullptr;
      j["comm_ms_per_token"] = nullptr;
      j["comm_link_ms_per_token"] = nullptr;
      j["comm_wait_ms_per_token"] = nullptr;
      j["bytes_sent_per_token"] = nullptr;
    }
    out_nodes.push_back(std::move(j));
  }
  Json links = Json::array();
  for (size_t a = 0; a < nodes.size(); ++a)
    for (size_t b = a + 1; b < nodes.size(); ++b)
      links.push_back({{"from", nodes[a].rank}, {"to", nodes[b].rank}, {"type", link_between(nodes[a], nodes[b])}});
  Json points = Json::array();
  for (const LoadPoint& p : load.history) {
    Json ranks = Json::array();
    for (const RankPerToken& r : p.ranks)
      ranks.push_back(r.decode_steps ? Json{{"compute_ms", r.compute_ms},
                                            {"comm_ms", r.comm_ms},
                                            {"comm_link_ms", r.link_ms},
                                            {"comm_wait_ms", r.wait_ms}}
                                     : Json(nullptr));
    points.push_back({{"seconds_ago", p.seconds_ago},
                      {"tokens_per_second", p.tokens_per_second},
                      {"queue_depth", p.queue_depth},
                      {"running", p.running},
                      {"ranks", std::move(ranks)}});
  }
  return {{"model", model.id},
          {"nodes", std::move(out_nodes)},
          {"links", std::move(links)},
          {"allreduce", load.allreduce},
          {"tokens_per_second", tokens_per_second},
          {"queue_depth", stats.queued},
          {"running", stats.running},
          {"history", {{"bucket_seconds", LoadHistory::kBucketSeconds}, {"points", std::move(points)}}}};
}

std::string cluster_prometheus_text(const std::vector<ClusterNode>& nodes, const ClusterLoad& load) {
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
  };
  static constexpr Metric kMetrics[] = {
      {"clusterctl_rank_step_seconds_total", "counter",
       "Wall time inside forward steps, per rank (idle waits excluded)."},
      {"clusterctl_rank_comm_seconds_total", "counter",
       "Of it, time inside collectives (sending and waiting), per rank."},
      {"clusterctl_rank_steps_total", "counter", "Forward steps run, per rank."},
      {"clusterctl_rank_decode_steps_total", "counter", "Forward steps of generated tokens only, per rank."},
      {"clusterctl_rank_bytes_sent_total", "counter", "Bytes this rank sent in collectives."},
      {"clusterctl_rank_allreduce_total", "counter", "All-reduces run, per rank."},
      {"clusterctl_rank_resident_bytes", "gauge", "Resident memory of the rank's process at its last report."},
      {"clusterctl_rank_weight_bytes", "gauge", "Weight bytes the rank reads per token (its share of the model)."},
      {"clusterctl_rank_compute_ms_per_token", "gauge",
       "Compute per decode step (one token per running sequence), last minute (since start when idle)."},
      {"clusterctl_rank_comm_ms_per_token", "gauge",
       "Communication per decode step, last minute (since start when idle)."},
      {"clusterctl_rank_bytes_sent_per_token", "gauge",
       "Bytes sent per decode step, last minute (since start when idle)."},
      {"clusterctl_rank_comm_link_ms_per_token", "gauge",
       "Of the communication per decode step, the collectives' own cost on the critical path (the link)."},
      {"clusterctl_rank_comm_wait_ms_per_token", "gauge",
       "Of the communication per decode step, waiting for slower ranks (or for a core)."},
  };
  std::ostringstream out;
  out.precision(15);  // byte counts whole, times without noise digits
  for (size_t m = 0; m < std::size(kMetrics); ++m) {
    out << "# HELP " << kMetrics[m].name << " " << kMetrics[m].help << "\n# TYPE " << kMetrics[m].name << " "
        << kMetrics[m].type << "\n";
    for (const ClusterNode& n : nodes) {
      const auto r = static_cast<size_t>(n.rank);
      const bool measured = r < load.ranks.size();
      const RankFigures f = measured ? load.ranks[r] : RankFigures{};
      const bool per_token = r < load.per_token.size() && load.per_token[r].decode_steps > 0;
      const RankPerToken t = per_token ? load.per_token[r] : RankPerToken{};
      double v = 0;
      switch (m) {
        case 0:
          v = f.step_seconds;
          break;
        case 1:
          v = f.comm_seconds;
          break;
        case 2:
          v = double(f.steps);
          break;
        case 3:
          v = double(f.decode_steps);
          break;
        case 4:
          v = double(f.bytes_sent);
          break;
        case 5:
          v = double(f.allreduces);
          break;
        case 6:
          v = double(f.resident_bytes);
          break;
        case 7:
          v = double(n.weight_bytes);
          break;
        case 8:
          v = t.compute_ms;
          break;
        case 9:
          v = t.comm_ms;
          break;
        case 10:
          v = t.bytes_sent;
          break;
        case 11:
          v = t.link_ms;
          break;
        default:
          v = t.wait_ms;
          break;
      }
      if (!measured && m != 7) continue;
      if (m >= 8 && !per_token) continue;
      out << kMetrics[m].name << "{rank=\"" << n.rank << "\",node=\"" << label(n.host) << "\"} " << v << "\n";
    }
  }
  return out.str();
}

}  // namespace clusterctl::server
