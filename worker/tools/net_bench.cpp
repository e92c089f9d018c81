#include "worker/tools/net_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "collectives/algorithms/allreduce.h"
#include "collectives/algorithms/emulated_link.h"
#include "worker/common/error.h"
#include "worker/tools/engine_flags.h"
#include "worker/tools/net_table.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

namespace co = clusterctl::collectives;

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

size_t parse_size(const std::string& s, const char* flag) {
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  const std::string unit = end ? end : "";
  double scale = 0;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "KiB" || unit == "K")
    scale = 1024;
  else if (unit == "MiB" || unit == "M")
    scale = 1024.0 * 1024;
  if (!(x > 0) || scale == 0 || x * scale > double(size_t(1) << 30))
    throw Error(std::string(flag) + " " + s + ": give a size such as 4KiB or 64MiB (at most 1 GiB)");
  return static_cast<size_t>(x * scale);
}

}  // namespace

bool wants_net_bench(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--bench-net")) return true;
  return false;
}

int net_bench(co::Session& session, int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("bench-net", po::bool_switch(), "run the all-reduce benchmark")(
      "min-size", po::value<std::string>()->default_value("1KiB"), "smallest message (bytes of doubles)")(
      "max-size", po::value<std::string>()->default_value("64MiB"), "largest message")(
      "algorithms", po::value<std::string>()->default_value("mpi,one-shot,recursive-doubling,ring"), "which")(
      "transports", po::value<std::string>()->default_value("mpi,tcp"),
      "what carries our algorithms: mpi (MPI point-to-point), tcp (the backend's own sockets)")(
      "tcp-interface", po::value<std::string>()->default_value(""), "the tcp transport's network (as the worker's)")(
      "tcp-timeout", po::value<std::string>()->default_value("5"), "seconds to connect the tcp mesh")(
      "ranks-on-machine", po::value<int>()->default_value(0),
      "the ranks sharing this machine's cores (as the worker's)")(
      "formats", po::value<std::string>()->default_value("double,float32,bf16,q8"), "which wire formats")(
      "iters", po::value<int>()->default_value(0), "iterations per size (0: by size, 20..400)")(
      "emulate-link", po::value<std::string>()->default_value(""), "EMULATION: latency=...,bandwidth=...")(
      "table", po::value<std::string>()->default_value(""),
      "write the selection table here (default: where workers read it; not written under --emulate-link)")(
      "no-table", po::bool_switch(), "write no selection table")("json", po::bool_switch(), "JSON output");
  auto vm = parse_options(argc, argv, "clusterctl bench net --ranks N [--json]", opts, {});
  if (!vm) return 0;
  const int N = session.size(), me = session.rank();
  const size_t lo = parse_size((*vm)["min-size"].as<std::string>(), "--min-size");
  const size_t hi = parse_size((*vm)["max-size"].as<std::string>(), "--max-size");
  std::vector<co::Algorithm> algos;
  for (const auto& a : split_list((*vm)["algorithms"].as<std::string>())) {
    const auto p = co::parse_algorithm(a);
    if (!p) throw Error("--algorithms: unknown '" + a + "': use mpi, one-shot, recursive-doubling, ring");
    algos.push_back(*p);
  }
  std::vector<co::WireFormat> formats;
  for (const auto& f : split_list((*vm)["formats"].as<std::string>())) {
    const auto p = co::parse_wire_format(f);
    if (!p) throw Error("--formats: unknown '" + f + "': use double, float32, bf16, q8");
    formats.push_back(*p);
  }
  std::vector<co::TransportKind> transports;
  for (const auto& t : split_list((*vm)["transports"].as<std::string>())) {
    const auto p = co::parse_transport(t);
    if (!p) throw Error("--transports: unknown '" + t + "': use mpi, tcp");
    transports.push_back(*p);
  }
  const std::string link = (*vm)["emulate-link"].as<std::string>();
  const bool json = (*vm)["json"].as<bool>();
  std::optional<co::LinkSpec> spec;
  if (!link.empty()) spec = co::parse_link_spec(link);

  NetResults results;
  results.ranks = N;
  if (spec) results.link = co::describe(*spec);
  auto& rows = results.rows;
  std::vector<double> buf;
  // One communicator per (transport, algorithm, format), made once: the tcp mesh's setup is not
  // part of an all-reduce.
  struct Case {
    co::Algorithm a;
    co::TransportKind t;
    co::WireFormat f;
    std::unique_ptr<co::Communicator> comm;
  };
  std::vector<Case> cases;
  // --tcp-interface, --tcp-timeout, --ranks-on-machine as the worker reads them; these ranks only
  // all-reduce: one thread each.
  co::CommOptions base = comm_options(argc, argv);
  base.core_share.threads = 1;
  for (co::WireFormat f : formats)
    for (co::TransportKind t : transports)
      for (co::Algorithm a : algos) {
        // MPI_Allreduce carries double only, over MPI only
        if (a == co::Algorithm::kMpi && (f != co::WireFormat::kDouble || t != co::TransportKind::kMpi)) continue;
        co::CommOptions o = base;
        o.algorithm = std::string(co::algorithm_name(a));
        o.transport = std::string(co::transport_name(t));
        o.wire_format = std::string(co::wire_format_name(f));
        o.emulate_link = link;
        o.selection_path = "/dev/null";
        cases.push_back({a, t, f, session.make_communicator(o)});
      }
  for (size_t bytes = lo; bytes <= hi; bytes *= 2) {
    const size_t n = std::max<size_t>(1, bytes / 8);
    int iters = (*vm)["iters"].as<int>();
    if (iters <= 0)
      iters = static_cast<int>(std::clamp<size_t>((size_t(256) << 20) / (bytes * std::max(N, 1)), 20, 400));
    double mpi_median = 0;
    for (auto& c : cases) {
      const co::Algorithm a = c.a;
      const co::WireFormat f = c.f;
      auto& comm = c.comm;
      buf.assign(n, 1.0);
      for (int w = 0; w < 3; ++w) comm->allreduce_sum(buf.data(), n);
      std::vector<double> t(iters);
      const co::CommStats before = comm->stats();
      for (int i = 0; i < iters; ++i) {
        for (size_t k = 0; k < std::min<size_t>(n, 64); ++k) buf[k] = static_cast<double>(me + k);
        comm->barrier();
        const auto t0 = std::chrono::steady_clock::now();
        comm->allreduce_sum(buf.data(), n);
        t[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      std::vector<double> all(static_cast<size_t>(iters) * N);
      comm->gather(t.data(), t.size() * sizeof(double), all.data(), 0);
      const uint64_t held[2] = {comm->stats().emulated_arrivals - before.emulated_arrivals,
                                comm->stats().emulated_late_arrivals - before.emulated_late_arrivals};
      std::vector<uint64_t> all_held(2 * static_cast<size_t>(N));
      comm->gather(held, sizeof held, all_held.data(), 0);
      if (me != 0) continue;
      std::vector<double> worst(iters, 0);
      for (int r = 0; r < N; ++r)
        for (int i = 0; i < iters; ++i) worst[i] = std::max(worst[i], all[static_cast<size_t>(r) * iters + i]);
      std::sort(worst.begin(), worst.end());
      const double med = worst[worst.size() / 2];
      const double p99 = worst[std::min(worst.size() - 1, static_cast<size_t>(std::ceil(0.99 * worst.size())) - 1)];
      const double wire = static_cast<double>(co::wire_bytes(f, n));
      const double busbw = N > 1 ? wire / med * 2 * (N - 1) / N / 1e9 : 0;
      if (a == co::Algorithm::kMpi) mpi_median = med;
      uint64_t arrivals = 0, late = 0;
      for (int r = 0; r < N; ++r) arrivals += all_held[2 * r], late += all_held[2 * r + 1];
      rows.push_back({bytes, std::string(co::algorithm_name(a)), std::string(co::transport_name(c.t)),
                      std::string(co::wire_format_name(f)), med * 1e6, p99 * 1e6, busbw, 0,
                      arrivals ? static_cast<double>(late) / static_cast<double>(arrivals) : -1.0});
    }
    if (me == 0)
      for (auto& r : rows)
        if (r.bytes == bytes) r.mpi_median_us = mpi_median * 1e6;
  }
  if (me != 0) return 0;

  const NetWinners winners = fastest_exact(results);
  std::string table_note;
  const bool write_table =
      !(*vm)["no-table"].as<bool>() && N > 1 && (!spec || !(*vm)["table"].as<std::string>().empty());
  if (write_table) {
    table_note =
        (*vm)["table"].as<std::string>().empty() ? co::default_selection_path() : (*vm)["table"].as<std::string>();
    write_merged_table(table_note, N, winners);
  }
  if (json) {
    auto j = net_json(results);
    j["table"] = table_note;
    std::printf("%s\n", j.dump(1).c_str());
    return 0;
  }
  print_net_text(results, winners);
  if (!table_note.empty()) std::printf("selection table for %d ranks written to %s\n", N, table_note.c_str());
  return 0;
}

}  // namespace clusterctl::cli
