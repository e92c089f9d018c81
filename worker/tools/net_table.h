#pragma once
// What `bench net` measured, wherever its ranks ran (this machine's, or one per node of a
// cluster): the rows, the selection they make (the fastest exact algorithm and transport per
// size), that selection merged into a table file, and the text and JSON both forms print. The
// ranks' rank 0 (clusterctl-worker --bench-net) and the controller (bench net CLUSTER.yaml, which
// reads the ranks' JSON back) share it, so both give the same table from the same figures.
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "collectives/algorithms/allreduce.h"

namespace clusterctl::cli {

struct NetRow {
  size_t bytes = 0;
  std::string algorithm, transport, format;
  double median_us = 0, p99_us = 0, busbw_gbs = 0;
  double mpi_median_us = 0;  // MPI_Allreduce (double) at this size, for the comparison
  // Under an emulated link: the share of the timed calls' receives, over all ranks, whose real
  // transfer ended after their emulated arrival time (where this machine set the pace); -1 without.
  double emulated_late_share = -1;
};

struct NetResults {
  int ranks = 0;
  std::string link = "real";  // or the EMULATED link's description (collectives::describe)
  std::vector<NetRow> rows;
};

// Per measured size (ascending), the fastest exact (double) algorithm and transport.
using NetWinners = std::vector<std::pair<size_t, collectives::Choice>>;
NetWinners fastest_exact(const NetResults& r);

// `old`'s rules for other rank counts, then `ranks`' rules from `winners`: a run of one winner
// is one rule, and a size between two measured ones goes to the smaller one's winner.
collectives::Selection merge_rules(const collectives::Selection& old, int ranks, const NetWinners& winners);

// The table at `path` (none, or an unreadable one, counts as empty) with `ranks`' rules replaced,
// written to a temporary file beside it and renamed over it. Throws clusterctl::Error naming the
// path and the fix.
void write_merged_table(const std::string& path, int ranks, const NetWinners& winners);

// {"ranks", "link", "rows": [{bytes, algorithm, transport, format, median_us, p99_us, busbw_gbs,
// mpi_allreduce_median_us[, emulated_late_share]}]} and its reverse (throws clusterctl::Error on another shape).
nlohmann::json net_json(const NetResults& r);
NetResults net_results_from_json(const nlohmann::json& j);

// The OSU-style table of every row, then the selection beside MPI_Allreduce.
void print_net_text(const NetResults& r, const NetWinners& winners);

}  // namespace clusterctl::cli
