#include "controller/cli/doctor_link.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>

#include "controller/cli/link_bench_job.h"
#include "controller/cli/plan_transport.h"
#include "controller/launch/interrupt.h"
#include "controller/launch/local_worker.h"
#include "controller/launch/mpirun_command.h"
#include "controller/placement/throughput_model.h"
#include "controller/preflight/node_shell.h"
#include "controller/ssh/ssh_session.h"
#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/model.h"

namespace clusterctl::cli {
namespace {

// The all-reduce the job runs by default (one-shot, exact doubles) over `transport`, of `message`
// bytes and 4x that.
std::vector<std::string> bench_args(const std::string& transport, int64_t message) {
  return {"--bench-net",
          "--json",
          "--no-table",
          "--algorithms",
          "one-shot",
          "--formats",
          "double",
          "--min-size",
          std::to_string(message),
          "--max-size",
          std::to_string(4 * message),
          "--transports",
          transport};
}

// A decode step's all-reduce: the model's n_embd doubles (16 KiB where the model is not known).
int64_t decode_message_bytes(const preflight::PreflightReport& report) {
  try {
    gguf::GgufFile f(report.model.path);
    return std::max<int64_t>(model::Model::read_hparams(f).n_embd, 512) * 8;
  } catch (const std::exception&) {
    return 16384;
  }
}

// The one-shot double rows' medians (microseconds) by message bytes, of bench-net's JSON.
std::map<double, double> medians(const std::string& out) {
  const auto j = nlohmann::json::parse(out.substr(std::min(out.find('{'), out.size())), nullptr, false);
  std::map<double, double> m;
  if (!j.is_object() || !j.contains("rows") || !j["rows"].is_array()) return m;
  for (const auto& r : j["rows"])
    if (r.value("algorithm", "") == "one-shot" && r.value("format", "") == "double" && !m.count(r.value("bytes", 0.0)))
      m[r.value("bytes", 0.0)] = r.value("median_us", 0.0);
  return m;
}

// Runs the job on the head node and returns the medians.
std::map<double, double> run_bench(preflight::NodeShell& head, const config::ClusterConfig& c,
                                   const launch::JobSpec& job, double small, double large, const std::string& what) {
  const auto r = run_link_bench(head, c.nodes[0].name, job, std::chrono::seconds(120));
  auto m = medians(r.out);
  if (r.status != 0 || !m.count(small) || !m.count(large))
    throw Error(what + " failed (exit " + std::to_string(r.status) + "):" + why_it_stopped(r.out, c, job));
  return m;
}

}  // namespace

LinkProbe probe_link(const config::ClusterConfig& c, const preflight::PreflightReport& report,
                     const std::vector<launch::MachineInfo>& machines) {
  LinkProbe p;
  try {
    const int64_t message = decode_message_bytes(report);
    const double small = static_cast<double>(message), large = 4.0 * small;
    // Over the transport the job will run: the link's `transport:`, else plan's choice (as `up`).
    const auto& l = c.nodes[0].link;
    const std::string transport = l && (l->transport == "tcp" || l->transport == "mpi")
                                      ? l->transport
                                      : choose_transport(c, static_cast<size_t>(message), l ? l->allreduce : "").runs;
    const auto job = link_bench_job(c, report, machines, bench_args(transport, message), 0, "doctor");
    const int ranks = c.total_ranks();
    const auto load = launch::machine_loads(c.nodes, machines);
    auto head = preflight::open_node_shell(c, c.nodes[0]);
    const auto link =
        run_bench(*head, c, job, small, large, "the all-reduce over the link (mpirun on " + c.nodes[0].name + ")");
    placement::LinkSpeed fit = placement::link_from_allreduces(small, link.at(small), large, link.at(large), ranks);
    std::string method = "one-shot double all-reduces of a decode step's " + std::to_string(message) +
                         " bytes and 4x that over the cluster's " + std::to_string(ranks) + " ranks over " + transport +
                         " (clusterctl-worker --bench-net, mpirun on " + c.nodes[0].name +
                         " over the link), medians: the bandwidth their slope (at least the small message's bytes "
                         "over half its time), the latency the small message's time less its bytes";
    if (load.size() == 1 && !machines[0].machine_id.empty()) {
      // The nodes' ranks share one machine's cores: the node probe has their meetings already.
      const auto shm = run_bench(
          *head, c, launch::local_job(ranks, load.begin()->second.cores, job.run_as_root, job.worker, *job.worker_args),
          small, large, "the same all-reduce over shared memory on " + c.nodes[0].name);
      const double shared_memory_us = placement::parse_link("shared-memory").latency_us;
      fit.latency_us += shared_memory_us - shm.at(small);
      method +=
          "; its nodes share one machine: less the same ranks' all-reduce over shared memory, plus shared "
          "memory's " +
          std::to_string(static_cast<int>(shared_memory_us)) + " us";
    }
    fit.latency_us = std::max(fit.latency_us, 1.0);
    state::LinkSpeedRecord r{fit.latency_us, fit.bandwidth_gbs, ranks, method,
                             static_cast<int64_t>(std::time(nullptr))};
    state::record_link_speed(c.name, r);
    p.link = r;
  } catch (const launch::Interrupted&) {
    throw;  // doctor ends with it
  } catch (const std::exception& e) {
    p.error = e.what();
  }
  return p;
}

}  // namespace clusterctl::cli
