#pragma once
// The transport part of `plan` (issue #17): what carries the all-reduce between the ranks, MPI
// point-to-point or the backend's own TCP mesh, from what `clusterctl bench net` measured on this
// cluster (its selection table) at the size of a decode step's all-reduce, and why.
#include <cstddef>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "controller/config/cluster_config.h"

namespace clusterctl::cli {

struct TransportChoice {
  std::string runs = "mpi";  // "mpi" or "tcp": what `up` passes as --transport
  std::string configured;    // the cluster file's `transport:` ("" when absent)
  std::string reason;        // why, naming the table and its rule
};

// `decode_bytes`: one decode step's all-reduce (n_embd doubles); `algorithm`: the one that runs
// ("mpi" is MPI_Allreduce, which runs over MPI only; "" or "auto": the table's). The table is
// the one `bench net` wrote where the workers read it ($CLUSTERCTL_NET_TABLE, else
// ~/.config/clusterctl/allreduce-table); without one, or without rules for this rank count, mpi.
TransportChoice choose_transport(const config::ClusterConfig& config, size_t decode_bytes,
                                 const std::string& algorithm);
void print_transport_text(const TransportChoice& c);
nlohmann::json transport_json(const TransportChoice& c);

// `transport: auto` (or none) in a cluster of several ranks, for `up` and the supervisor's
// restart: sets every node's link transport to plan's choice for `config`'s model and prints
// "transport: auto -> TRANSPORT: why" to `out`. A transport the file names is left as it is.
void resolve_auto_transport(config::ClusterConfig& config, std::FILE* out);

}  // namespace clusterctl::cli
