// `clusterctl bench net CLUSTER.yaml [--json]`: the all-reduce benchmark of `bench net --ranks N`
// with each node's `ranks:` on it, the rank count the cluster's jobs run (their table's rules), over its real link as
// `up` runs the job (mpirun on the head node, the link's network, its transport, each node's tcp_interface, its
// emulate:), and the selection table it makes written where each node's workers read it and where `plan` reads it here.
#include <cstdio>
#include <set>

#include "clusterctl/version.h"
#include "controller/cli/link_bench_job.h"
#include "controller/launch/interrupt.h"
#include "controller/preflight/report.h"
#include "worker/common/error.h"
#include "worker/tools/net_table.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

namespace co = clusterctl::collectives;

// The checks a benchmark of the link needs (not the model's memory or disk).
const std::set<std::string> kLinkChecks = {"ssh", "os/arch", "link", "worker", "mpirun", "reach", "head ssh"};

// The node's table: where its workers read it (their rule, collectives::default_selection_path,
// in the node's login environment), with this rank count's rules replaced, written beside it and
// renamed over it. Returns the path.
std::string write_node_table(preflight::NodeShell& shell, const std::string& node, int ranks,
                             const NetWinners& winners) {
  const auto fail = [&](const std::string& cause) {
    return Error(node + ": writing the all-reduce selection table failed: " + cause +
                 "\n  fix: make ~/.config/clusterctl writable on " + node + " (or set CLUSTERCTL_NET_TABLE there)");
  };
  const auto old = shell.run(
      "t=\"${CLUSTERCTL_NET_TABLE:-$HOME/.config/clusterctl/allreduce-table}\"; printf '%s\\n' \"$t\"; "
      "head -c 1048576 \"$t\" 2>/dev/null; true");
  const auto eol = old.out.find('\n');
  if (old.status != 0 || eol == std::string::npos || eol == 0) throw fail("cannot find its path: " + old.err);
  const std::string path = old.out.substr(0, eol);
  co::Selection before;
  try {
    before = co::Selection::parse(std::string_view(old.out).substr(eol + 1), node + ":" + path);
  } catch (const std::exception&) {  // an unreadable old table is replaced, as the worker does
  }
  const std::string q = ssh::shell_quote(path), tmp = ssh::shell_quote(path + ".tmp-bench-net");
  const auto r = shell.run("mkdir -p \"$(dirname " + q + ")\" && printf '%s' " +
                           ssh::shell_quote(merge_rules(before, ranks, winners).to_text()) + " > " + tmp +
                           " && mv -f " + tmp + " " + q + " || { rm -f " + tmp + "; exit 1; }");
  if (r.status != 0) throw fail(r.err.empty() ? "exit " + std::to_string(r.status) : r.err);
  return path;
}

// "one a node", "2 a node", or "2 on node1, 1 on node2".
std::string ranks_per_node_text(const config::ClusterConfig& c) {
  bool even = true;
  for (const auto& n : c.nodes) even = even && n.ranks == c.nodes[0].ranks;
  if (even) return c.nodes[0].ranks == 1 ? "one a node" : std::to_string(c.nodes[0].ranks) + " a node";
  std::string s;
  for (const auto& n : c.nodes) s += (s.empty() ? "" : ", ") + std::to_string(n.ranks) + " on " + n.name;
  return s;
}

}  // namespace

int bench_net_cluster(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("file", po::value<std::string>()->required(), "cluster file (YAML)")(
      "json", po::bool_switch(), "print the rows, the selection and where it was written as JSON")(
      "min-size", po::value<std::string>(), "smallest message (default 1KiB)")("max-size", po::value<std::string>(),
                                                                               "largest message (default 64MiB)")(
      "algorithms", po::value<std::string>(), "default mpi,one-shot,recursive-doubling,ring")(
      "transports", po::value<std::string>(), "default the link's transport: when it names one, else mpi,tcp")(
      "formats", po::value<std::string>(), "default double,float32,bf16,q8")(
      "iters", po::value<std::string>(), "iterations per size (default by size, 20..400)")(
      "tcp-timeout", po::value<std::string>(), "seconds to connect the tcp mesh (default 5)")(
      "no-table", po::bool_switch(), "measure only; write no selection table");
  po::positional_options_description pos;
  pos.add("file", 1);
  auto vm = parse_options(
      argc, argv,
      "clusterctl bench net CLUSTER.yaml [--json] [--min-size 1KiB] [--max-size 64MiB] [--no-table]\n\n"
      "Runs the all-reduce benchmark of 'bench net --ranks N' with each node's 'ranks:' on it (the rank\n"
      "count of the cluster's jobs, whose rules they read), over its link as 'up' runs the job: mpirun on the first "
      "node, MPI pinned to the link's network, the\n"
      "link's transport:, each node's tcp_interface: and an emulate: link (EMULATION, marked so). Prints\n"
      "median and p99 latency and bus bandwidth per size for every algorithm, transport and wire format\n"
      "beside MPI_Allreduce, and the fastest exact one per size. That selection becomes this rank count's\n"
      "rules in the table each node's workers read ($CLUSTERCTL_NET_TABLE there, else\n"
      "~/.config/clusterctl/allreduce-table) and in the one 'plan' reads here, each written to a temporary\n"
      "file and renamed over the old one. Checks the nodes first as 'doctor' does; a node that cannot be\n"
      "reached or a rank that fails ends it with the cause and the fix, and nothing left running.\n"
      "'clusterctl bench net --ranks N' runs the same on N ranks of this machine.",
      opts, pos);
  if (!vm) return 0;
  const std::string file = (*vm)["file"].as<std::string>();
  const auto config = config::load_cluster_config(file);
  // As `up` runs the job: each node's `ranks:`, so the rules written are the ones its workers read.
  const int ranks = config.total_ranks();
  if (config.nodes.size() < 2)
    throw Error(file +
                " has one node: bench net over a cluster measures the link between several nodes; for this "
                "machine's ranks run 'clusterctl bench net --ranks N'");
  const auto report = launch::run_preflight_interruptible(
      config, kVersion, "bench net",
      "no selection table was written (run 'clusterctl bench net " + file + "' again to measure the link)");
  if (const auto why =
          preflight::failures_text(report, [](const std::string& check) { return kLinkChecks.count(check) > 0; });
      !why.empty())
    throw Error("bench net: the cluster's nodes cannot run the benchmark:" + why + "\n  ('clusterctl doctor " + file +
                "' shows every check)");

  std::vector<std::string> args = {"--bench-net", "--json", "--no-table"};
  for (const char* f : {"min-size", "max-size", "algorithms", "transports", "formats", "iters", "tcp-timeout"})
    if (vm->count(f)) args.insert(args.end(), {std::string("--") + f, (*vm)[f].as<std::string>()});
  const auto& link = config.nodes[0].link;
  if (!vm->count("transports") && link && (link->transport == "mpi" || link->transport == "tcp"))
    args.insert(args.end(), {"--transports", link->transport});
  if (link && !link->emulate.empty()) args.insert(args.end(), {"--emulate-link", link->emulate});

  const auto job = link_bench_job(config, report, probe_machines(config), args, 0, "bench-net");
  const std::string per_node = ranks_per_node_text(config);
  const std::string head_name = config.nodes[0].name;
  std::fprintf(stderr, "bench net: %d ranks (%s), mpirun on %s over %s%s ...\n", ranks, per_node.c_str(),
               head_name.c_str(), job.link_cidr.c_str(), link && !link->emulate.empty() ? " (EMULATED link)" : "");
  ssh::ExecResult run;
  try {
    auto head = preflight::open_node_shell(config, config.nodes[0]);
    run = run_link_bench(*head, head_name, job, std::chrono::hours(1));
  } catch (const launch::Interrupted& e) {
    throw launch::Interrupted(e.signal(), "bench net: interrupted by " + launch::signal_name(e.signal()) + "; " +
                                              e.what() +
                                              "; no selection table was written (run 'clusterctl bench net " + file +
                                              "' again to measure the link)");
  } catch (const std::exception& e) {
    // A run past its time has had mpirun's process group ended on the node, and mpirun ends its
    // ranks. (Orteds are not swept by mpirun's address: a job `up` started there shares it.)
    throw Error("bench net: the benchmark on " + head_name + " did not finish: " + e.what());
  }
  NetResults results;
  const auto brace = run.out.find('{');
  const auto j = nlohmann::json::parse(run.out.substr(std::min(brace, run.out.size())), nullptr, false);
  if (run.status != 0 || !j.is_object())
    throw Error("bench net: the benchmark over the cluster's " + std::to_string(ranks) + " ranks failed (mpirun on " +
                head_name + ", exit " + std::to_string(run.status) + "):" + why_it_stopped(run.out, config, job) +
                "\n  fix: check the nodes with 'clusterctl doctor " + file + "' and run bench net again");
  results = net_results_from_json(j);
  const NetWinners winners = fastest_exact(results);

  nlohmann::json written = nlohmann::json::array();
  if (!(*vm)["no-table"].as<bool>()) {
    // One node at a time: nodes may share a home (a test cluster's namespaces).
    for (const auto& n : config.nodes) {
      auto shell = preflight::open_node_shell(config, n);
      written.push_back({{"node", n.name}, {"path", write_node_table(*shell, n.name, ranks, winners)}});
    }
    const std::string here = co::default_selection_path();
    write_merged_table(here, ranks, winners);
    written.push_back({{"node", "this machine (plan)"}, {"path", here}});
  }
  if ((*vm)["json"].as<bool>()) {
    auto out = net_json(results);
    out["cluster"] = config.name;
    out["selection"] = nlohmann::json::array();
    for (const auto& r : merge_rules({}, ranks, winners).rules)
      out["selection"].push_back(
          {{"ranks", r.ranks},
           {"up_to_bytes", r.up_to_bytes == SIZE_MAX ? nlohmann::json("max") : nlohmann::json(r.up_to_bytes)},
           {"algorithm", co::algorithm_name(r.algorithm)},
           {"transport", co::transport_name(r.transport)}});
    out["written"] = written;
    std::printf("%s\n", out.dump(1).c_str());
    return 0;
  }
  print_net_text(results, winners);
  if (!written.empty()) {
    std::printf("selection table for %d ranks (%s) written", ranks, per_node.c_str());
    for (size_t i = 0; i < written.size(); ++i)
      std::printf("%s %s (%s)",
                  i == 0                    ? " on"
                  : i + 1 == written.size() ? " and on"
                                            : ",",
                  written[i]["node"].get<std::string>().c_str(), written[i]["path"].get<std::string>().c_str());
    std::printf("\n");
  }
  return 0;
}

}  // namespace clusterctl::cli
