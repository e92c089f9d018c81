// `clusterctl status [CLUSTER] [--json]`: what is up, and whether it answers.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controller/cli/cluster_arg.h"
#include "controller/config/cluster_config.h"
#include "controller/launch/cluster_up.h"
#include "controller/launch/http_probe.h"
#include "controller/launch/job_control.h"
#include "controller/preflight/node_shell.h"
#include "controller/state/cluster_state.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

// A value of rank 0's Prometheus text (/metrics), or nullopt.
std::optional<double> metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(name + " ")) return std::atof(line.c_str() + name.size() + 1);
  return std::nullopt;
}

std::string duration_text(long s) {
  char buf[64];
  if (s >= 86400)
    std::snprintf(buf, sizeof buf, "%ldd %ldh", s / 86400, s % 86400 / 3600);
  else if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh %ldm", s / 3600, s % 3600 / 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ldm %lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

// The error /health gives when a node is lost ({"status":"unavailable","error":"node ... is lost"}).
std::string health_error(const std::string& body) {
  try {
    const auto j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  } catch (const std::exception&) {
  }
  return "";
}

// When rank 0 no longer answers at all: the job's last "error:" lines in its log on the head node
// (a lost node, a rank that died), so status names the cause without a second command.
std::string last_errors(const state::ClusterState& s) {
  try {
    const auto config = config::load_cluster_config(s.config_path);
    for (const auto& n : config.nodes) {
      if (n.name != s.head_node) continue;
      auto shell = preflight::open_node_shell(config, n);
      std::istringstream in(launch::tail_file(*shell, s.log_path, 40));
      std::string last, lost;  // a lost node tells most; else the last error
      for (std::string line; std::getline(in, line);) {
        const auto at = line.find("error: ");
        if (at == std::string::npos || at > 40) continue;
        last = line.substr(at + 7);
        if (last.find(") is lost: ") != std::string::npos) lost = last;
      }
      return lost.empty() ? last : lost;
    }
  } catch (const std::exception&) {
  }
  return "";
}

// Each rank's figures from rank 0's GET /v1/cluster (the dashboard's source), by rank; empty when
// it did not answer. Ranks are numbered node by node, in the cluster file's order.
struct RankLine {
  // comm_ms = link_ms (the collectives' cost on the critical path) + wait_ms (for slower ranks)
  std::optional<double> compute_ms, comm_ms, link_ms, wait_ms;
  double resident_bytes = 0;
};
std::vector<RankLine> rank_lines(const std::string& body) {
  std::vector<RankLine> out;
  try {
    const auto j = nlohmann::json::parse(body);
    for (const auto& n : j.at("nodes")) {
      const auto r = n.at("rank").get<size_t>();
      if (r >= 4096) continue;
      if (out.size() <= r) out.resize(r + 1);
      auto number = [&](const char* key, std::optional<double>& v) {
        if (n.contains(key) && n[key].is_number()) v = n[key].get<double>();
      };
      number("compute_ms_per_token", out[r].compute_ms);
      number("comm_ms_per_token", out[r].comm_ms);
      number("comm_link_ms_per_token", out[r].link_ms);
      number("comm_wait_ms_per_token", out[r].wait_ms);
      if (n.contains("resident_bytes") && n["resident_bytes"].is_number())
        out[r].resident_bytes = n["resident_bytes"].get<double>();
    }
  } catch (const std::exception&) {
    out.clear();
  }
  return out;
}

// A node's ranks' mean of one per-token figure ("-" before any token).
std::string per_token_text(const std::vector<RankLine>& ranks, int first, int count,
                           std::optional<double> RankLine::*figure) {
  double sum = 0;
  int n = 0;
  for (int r = first; r < first + count && r < static_cast<int>(ranks.size()); ++r) {
    const auto& v = ranks[static_cast<size_t>(r)].*figure;
    if (!v) continue;
    sum += *v;
    ++n;
  }
  if (n == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", sum / n);
  return buf;
}

// Whether `problem` names this node as lost: the heartbeat's message gives "(rank R, LINK-ADDRESS)".
bool names_node(const std::string& problem, const state::NodeState& n) {
  return !n.link_address.empty() && problem.find(", " + n.link_address + ")") != std::string::npos;
}

}  // namespace

int status_main(int argc, char** argv) {
  auto args = parse_cluster_verb(argc, argv,
                                 "clusterctl status [CLUSTER.yaml | NAME] [--json]\n\n"
                                 "Shows a cluster started by 'clusterctl up': its nodes, ranks, split, link, model,\n"
                                 "endpoint and uptime, and asks rank 0 whether it answers (/health) and how many\n"
                                 "tokens/s it generates (/metrics). Exits 0 when it answers, 1 when it is recorded\n"
                                 "but does not answer, 3 when it is not up.",
                                 "print the status as JSON");
  if (!args) return 0;
  const bool json = args->json;
  const std::string& name = args->name;
  auto& s = args->state;
  if (!s) {
    if (json)
      std::cout << nlohmann::json{{"cluster", name}, {"up", false}}.dump(2) << "\n";
    else
      std::printf("%s\n", name.empty() ? "no cluster is up (start one with 'clusterctl up CLUSTER.yaml')"
                                       : ("cluster '" + name + "' is not up").c_str());
    return 3;
  }
  std::string token, why;
  try {
    token = launch::read_token(s->token_file);
  } catch (const Error&) {
  }
  auto health = launch::http_get(s->endpoint, "/health", std::chrono::seconds(3), token, &why);
  const bool answering = health && health->status == 200;
  std::string problem;  // a lost node, from /health's 503 or the log
  if (health && !answering) {
    problem = health_error(health->body);
    why = "HTTP " + std::to_string(health->status) + " " + (problem.empty() ? health->body.substr(0, 120) : problem);
  } else if (!health) {
    problem = last_errors(*s);
    if (!problem.empty()) why += "; the log's last error: " + problem;
  }
  std::optional<double> tps, generated;
  std::vector<RankLine> ranks;
  if (answering) {
    if (auto m = launch::http_get(s->endpoint, "/metrics", std::chrono::seconds(3), token); m && m->status == 200) {
      tps = metric(m->body, "clusterctl_generation_tokens_per_second");
      generated = metric(m->body, "clusterctl_generation_tokens_total");
    }
    if (auto c = launch::http_get(s->endpoint, "/v1/cluster", std::chrono::seconds(3), token); c && c->status == 200)
      ranks = rank_lines(c->body);
  }
  const long uptime = long(std::time(nullptr) - s->started_at);
  // The supervisor records why it restarts the job while it does (only believed while it runs:
  // one killed mid-restart restarts nothing).
  const bool restarting = !answering && !s->restarting.empty() && s->supervisor_pid > 1 &&
                          ::kill(static_cast<pid_t>(s->supervisor_pid), 0) == 0;
  if (json) {
    auto j = nlohmann::json::parse(state::to_json(*s));
    j["up"] = true;
    j["answering"] = answering;
    if (!answering) j["problem"] = why;
    if (!restarting) j.erase("restarting");
    int first = 0;
    for (size_t i = 0; i < s->nodes.size(); ++i) {
      j["nodes"][i]["health"] = names_node(problem, s->nodes[i]) ? "lost" : "ok";
      // Per token (one decode step), over the last minute: this node's ranks.
      nlohmann::json per_rank = nlohmann::json::array();
      for (int r = first; r < first + s->nodes[i].ranks && r < static_cast<int>(ranks.size()); ++r) {
        const RankLine& l = ranks[static_cast<size_t>(r)];
        per_rank.push_back({{"rank", r},
                            {"compute_ms_per_token", l.compute_ms ? nlohmann::json(*l.compute_ms) : nullptr},
                            {"comm_ms_per_token", l.comm_ms ? nlohmann::json(*l.comm_ms) : nullptr},
                            {"comm_link_ms_per_token", l.link_ms ? nlohmann::json(*l.link_ms) : nullptr},
                            {"comm_wait_ms_per_token", l.wait_ms ? nlohmann::json(*l.wait_ms) : nullptr},
                            {"resident_bytes", l.resident_bytes}});
      }
      j["nodes"][i]["rank_figures"] = per_rank;
      first += s->nodes[i].ranks;
    }
    j["uptime_s"] = uptime;
    j["ranks"] = s->total_ranks();
    j["tokens_per_second"] = tps ? nlohmann::json(*tps) : nlohmann::json(nullptr);
    j["tokens_generated"] = generated ? nlohmann::json(*generated) : nlohmann::json(nullptr);
    std::cout << j.dump(2) << "\n";
    return answering ? 0 : 1;
  }
  std::printf("cluster:   %s (%s)\n", s->cluster.c_str(), s->config_path.c_str());
  std::printf("model:     %s (%s)\n", s->model_id.c_str(), s->model_path.c_str());
  std::printf("endpoint:  %s  %s\n", s->endpoint.c_str(), answering ? "answering" : "NOT ANSWERING");
  std::printf("uptime:    %s (mpirun pid %lld on %s, log %s)\n", duration_text(uptime).c_str(),
              static_cast<long long>(s->mpirun_pid), s->head_node.c_str(), s->log_path.c_str());
  std::printf("ranks:     %d, split %s\n", s->total_ranks(), s->split.c_str());
  if (s->supervisor_pid > 0)
    std::printf("restart:   on-failure (supervisor pid %lld), %d restart(s)%s%s\n",
                static_cast<long long>(s->supervisor_pid), s->restarts,
                s->last_restart.empty() ? "" : ", last: ", s->last_restart.c_str());
  if (restarting) std::printf("restart:   RESTARTING %s\n", s->restarting.c_str());
  if (tps) std::printf("tokens/s:  %.1f (last 10 s), %.0f generated since start\n", *tps, generated.value_or(0));
  // Compute and communication per token: the node's ranks' mean over the last minute's decode steps;
  // communication = on the link (the collectives' cost on the critical path) + waiting for slower ranks.
  std::printf("%-10s %-16s %-6s %-8s %-11s %-8s %-8s %-8s %s\n", "NODE", "HOST", "RANKS", "THREADS", "COMPUTE ms",
              "COMM ms", "ON-LINK", "WAITING", "LINK");
  int first = 0;
  for (const auto& n : s->nodes) {
    std::printf("%-10s %-16s %-6d %-8s %-11s %-8s %-8s %-8s %s%s\n", n.name.c_str(), n.host.c_str(), n.ranks,
                n.threads ? std::to_string(n.threads).c_str() : "auto",
                per_token_text(ranks, first, n.ranks, &RankLine::compute_ms).c_str(),
                per_token_text(ranks, first, n.ranks, &RankLine::comm_ms).c_str(),
                per_token_text(ranks, first, n.ranks, &RankLine::link_ms).c_str(),
                per_token_text(ranks, first, n.ranks, &RankLine::wait_ms).c_str(),
                n.link_interface.empty() ? "-" : (n.link_interface + " " + n.link_address).c_str(),
                names_node(problem, n) ? "  LOST" : "");
    first += n.ranks;
  }
  if (!ranks.empty())
    std::printf(
        "(COMM ms = ON-LINK, the collectives' own cost on the critical path, + WAITING, for slower ranks or "
        "a free core)\n");
  if (restarting) {
    std::printf(
        "\ncluster '%s' is being restarted by its supervisor (pid %lld): the nodes above are the job that failed.\n"
        "Its log: %s/%s.supervisor.log; 'clusterctl status' again shows the new job when it answers.\n",
        s->cluster.c_str(), static_cast<long long>(s->supervisor_pid), state::state_dir().c_str(), s->cluster.c_str());
    return 1;
  }
  if (!answering) {
    std::printf(
        "\ncluster '%s' is recorded as up but is NOT ANSWERING at %s (%s).\n"
        "'clusterctl logs %s' shows rank 0's log; 'clusterctl down %s' clears it away.\n",
        s->cluster.c_str(), s->endpoint.c_str(), why.c_str(), s->cluster.c_str(), s->cluster.c_str());
    return 1;
  }
  return 0;
}

}  // namespace clusterctl::cli
