#include "worker/tools/net_table.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "worker/common/error.h"

namespace clusterctl::cli {
namespace {

namespace co = clusterctl::collectives;

std::string size_text(size_t b) {
  if (b >= (size_t(1) << 20)) return std::to_string(b >> 20) + " MiB";
  if (b >= 1024) return std::to_string(b >> 10) + " KiB";
  return std::to_string(b) + " B";
}

}  // namespace

NetWinners fastest_exact(const NetResults& r) {
  NetWinners winners;
  for (const auto& row : r.rows) {
    if (row.format != "double") continue;
    const NetRow* best = nullptr;
    for (const auto& other : r.rows)
      if (other.bytes == row.bytes && other.format == "double" && (!best || other.median_us < best->median_us))
        best = &other;
    if (best != &row) continue;
    const auto a = co::parse_algorithm(row.algorithm);
    const auto t = co::parse_transport(row.transport);
    if (a && t) winners.push_back({row.bytes, {*a, *t}});
  }
  std::sort(winners.begin(), winners.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  return winners;
}

co::Selection merge_rules(const co::Selection& old, int ranks, const NetWinners& winners) {
  co::Selection sel;
  for (const auto& r : old.rules)
    if (r.ranks != ranks) sel.rules.push_back(r);
  for (size_t i = 0; i < winners.size(); ++i) {
    if (i + 1 < winners.size() && winners[i + 1].second.algorithm == winners[i].second.algorithm &&
        winners[i + 1].second.transport == winners[i].second.transport)
      continue;
    const size_t up_to = i + 1 < winners.size() ? winners[i + 1].first - 1 : std::numeric_limits<size_t>::max();
    sel.rules.push_back({ranks, up_to, winners[i].second.algorithm, winners[i].second.transport});
  }
  return sel;
}

void write_merged_table(const std::string& path, int ranks, const NetWinners& winners) {
  co::Selection old;
  if (std::filesystem::exists(path)) {
    try {
      old = co::Selection::read(path);
    } catch (const std::exception&) {  // an unreadable old table is replaced
    }
  }
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream out(tmp, std::ios::binary);
  out << merge_rules(old, ranks, winners).to_text();
  out.close();
  if (!out || (std::filesystem::rename(tmp, path, ec), ec)) {
    std::filesystem::remove(tmp, ec);
    throw Error("cannot write the all-reduce selection table " + path +
                " (check that its folder is writable, or set $CLUSTERCTL_NET_TABLE to a writable path)");
  }
}

nlohmann::json net_json(const NetResults& r) {
  nlohmann::json j;
  j["ranks"] = r.ranks;
  j["link"] = r.link;
  j["rows"] = nlohmann::json::array();
  for (const auto& row : r.rows) {
    j["rows"].push_back({{"bytes", row.bytes},
                         {"algorithm", row.algorithm},
                         {"transport", row.transport},
                         {"format", row.format},
                         {"median_us", row.median_us},
                         {"p99_us", row.p99_us},
                         {"busbw_gbs", row.busbw_gbs},
                         {"mpi_allreduce_median_us", row.mpi_median_us}});
    if (row.emulated_late_share >= 0) j["rows"].back()["emulated_late_share"] = row.emulated_late_share;
  }
  return j;
}

NetResults net_results_from_json(const nlohmann::json& j) {
  try {
    NetResults r;
    r.ranks = j.at("ranks").get<int>();
    r.link = j.value("link", "real");
    for (const auto& row : j.at("rows"))
      r.rows.push_back({row.at("bytes").get<size_t>(), row.at("algorithm").get<std::string>(),
                        row.at("transport").get<std::string>(), row.at("format").get<std::string>(),
                        row.at("median_us").get<double>(), row.at("p99_us").get<double>(),
                        row.at("busbw_gbs").get<double>(), row.value("mpi_allreduce_median_us", 0.0),
                        row.value("emulated_late_share", -1.0)});
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("the ranks' bench net results are not what this clusterctl reads (") + e.what() +
                "): install the same version of clusterctl-worker on every node");
  }
}

void print_net_text(const NetResults& r, const NetWinners& winners) {
  const bool emulated = r.link != "real";
  std::printf("# all-reduce, %d ranks, %s\n", r.ranks,
              emulated ? (r.link + " (EMULATION; MPI_Allreduce's own messages cannot be held back, so its rows run "
                                   "Open MPI's choice, recursive doubling below 64 KiB and ring above, on the emulated "
                                   "link)")
                             .c_str()
                       : "real link");
  std::printf(
      "| size | algorithm | transport | format | median us | p99 us | bus GB/s | MPI_Allreduce median us |\n"
      "|---|---|---|---|---|---|---|---|\n");
  for (const auto& row : r.rows) {
    char mpi[32] = "-";
    if (row.mpi_median_us > 0) std::snprintf(mpi, sizeof mpi, "%.1f", row.mpi_median_us);
    std::printf("| %s | %s | %s | %s | %.1f | %.1f | %.2f | %s |\n", size_text(row.bytes).c_str(),
                row.algorithm.c_str(), row.transport.c_str(), row.format.c_str(), row.median_us, row.p99_us,
                row.busbw_gbs, mpi);
  }
  std::printf(
      "\n# selected (exact double) vs MPI_Allreduce, %d ranks\n| size | selected | median us | bus GB/s | "
      "MPI_Allreduce us | speed-up |\n|---|---|---|---|---|---|\n",
      r.ranks);
  // Where the real transfer came later than the emulated link would have delivered, the figure is
  // this machine's, not the link's: said beside the selection.
  std::string late;
  for (const auto& [bytes, c] : winners)
    for (const auto& row : r.rows) {
      if (row.bytes != bytes || row.format != "double" || row.algorithm != co::algorithm_name(c.algorithm) ||
          row.transport != co::transport_name(c.transport))
        continue;
      std::printf("| %s | %s over %s | %.1f | %.2f | %.1f | %.2fx |\n", size_text(bytes).c_str(), row.algorithm.c_str(),
                  row.transport.c_str(), row.median_us, row.busbw_gbs, row.mpi_median_us,
                  row.median_us > 0 && row.mpi_median_us > 0 ? row.mpi_median_us / row.median_us : 0.0);
      if (row.emulated_late_share < 0) continue;
      char one[64];
      std::snprintf(one, sizeof one, "%s%s %.0f %%", late.empty() ? "" : ", ", size_text(bytes).c_str(),
                    row.emulated_late_share * 100);
      late += one;
    }
  if (!late.empty())
    std::printf(
        "\n# EMULATION: the selected rows' messages that arrived after their emulated arrival time (there this "
        "machine's own transfer, not the emulated link, set the pace): %s\n",
        late.c_str());
}

}  // namespace clusterctl::cli
