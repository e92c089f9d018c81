#include "controller/cli/plan_transport.h"

#include <unistd.h>

#include <limits>

#include "collectives/algorithms/allreduce.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/model.h"

namespace clusterctl::cli {
namespace {

std::string size_text(size_t b) {
  if (b == std::numeric_limits<size_t>::max()) return "any size";
  if (b >= (size_t(1) << 20)) return std::to_string((b + 1) >> 20) + " MiB";
  if (b >= 1024) return std::to_string((b + 1) >> 10) + " KiB";
  return std::to_string(b) + " B";
}

}  // namespace

TransportChoice choose_transport(const config::ClusterConfig& config, size_t decode_bytes,
                                 const std::string& algorithm) {
  namespace co = collectives;
  TransportChoice c;
  const config::LinkConfig* link =
      !config.nodes.empty() && config.nodes.front().link ? &*config.nodes.front().link : nullptr;
  if (link && link->transport != "auto") c.configured = link->transport;
  const int ranks = config.total_ranks();
  if (ranks < 2) {
    c.reason = "one rank: nothing is all-reduced";
    return c;
  }
  if (!c.configured.empty()) {
    c.runs = c.configured;
    c.reason = "the cluster file's transport: " + c.configured;
    return c;
  }
  if (algorithm == "mpi") {
    c.reason = "the all-reduce is MPI_Allreduce (allreduce: mpi), which runs over MPI only";
    return c;
  }
  const std::string path = co::default_selection_path();
  const std::string measure =
      "; 'clusterctl bench net' over the cluster's ranks measures the tcp transport against it and writes the table";
  if (::access(path.c_str(), R_OK) != 0) {
    c.reason = "no all-reduce table at " + path + ": MPI point-to-point, the default" + measure;
    return c;
  }
  co::Selection table;
  try {
    table = co::Selection::read(path);
  } catch (const std::exception& e) {
    c.reason = std::string(e.what()) + ": MPI point-to-point, the default";
    return c;
  }
  for (const auto& r : table.rules) {
    if (r.ranks != ranks || decode_bytes > r.up_to_bytes) continue;
    // The table's rule for MPI_Allreduce names no transport: MPI's own is the measured winner.
    c.runs = std::string(co::transport_name(r.transport));
    const std::string winner = r.algorithm == co::Algorithm::kMpi
                                   ? std::string("MPI_Allreduce")
                                   : std::string(co::algorithm_name(r.algorithm)) + " over " + c.runs;
    c.reason = "bench net's table (" + path + ") measured " + winner + " fastest on " + std::to_string(ranks) +
               " ranks up to " + size_text(r.up_to_bytes) + ", which holds a decode step's all-reduce (" +
               size_text(decode_bytes) + ")";
    return c;
  }
  c.reason = "the all-reduce table " + path + " has no rule for " + std::to_string(ranks) +
             " ranks at a decode step's all-reduce (" + size_text(decode_bytes) + "): MPI point-to-point" + measure;
  return c;
}

void print_transport_text(const TransportChoice& c) {
  std::printf("transport: %s: %s\n", c.runs.c_str(), c.reason.c_str());
}

nlohmann::json transport_json(const TransportChoice& c) {
  return {{"runs", c.runs},
          {"configured", c.configured.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.configured)},
          {"reason", c.reason}};
}

void resolve_auto_transport(config::ClusterConfig& config, std::FILE* out) {
  if (config.total_ranks() < 2 || config.nodes.empty() || !config.nodes.front().link) return;
  const auto& link = *config.nodes.front().link;
  if (!link.transport.empty() && link.transport != "auto") return;
  TransportChoice c;
  try {
    gguf::GgufFile f(config.model_path);
    const model::HParams hp = model::Model::read_hparams(f);
    c = choose_transport(config, size_t(hp.n_embd) * sizeof(double), link.allreduce);
  } catch (const std::exception& e) {
    c.reason = std::string("it could not be chosen (") + e.what() + "); MPI point-to-point, the default";
  }
  for (auto& n : config.nodes)
    if (n.link) n.link->transport = c.runs;
  std::fprintf(out, "transport: auto -> %s: %s\n", c.runs.c_str(), c.reason.c_str());
}

}  // namespace clusterctl::cli
