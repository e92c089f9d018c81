#pragma once
// A process's place in a job, from the collectives backend it asks for by name: its rank, the
// job's size, its host, and the communicator its model code talks through. The backend owns its
// start and end (MPI_Init_thread / MPI_Finalize for "mpi"); nothing outside collectives/ names
// a backend's own types.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collectives/communicator.h"
#include "collectives/wait_policy.h"

namespace clusterctl::collectives {

// How a communicator all-reduces (the worker's --allreduce, --transport, --tcp-interface,
// --tcp-timeout, --wire-format, --emulate-link flags).
struct CommOptions {
  std::string algorithm = "auto";      // "auto" (the selection table) or an algorithm's name (allreduce.h)
  std::string transport = "auto";      // what carries our algorithms: "auto" (the table), "mpi" or "tcp"
  std::string tcp_interface;           // the tcp transport's network: CIDRs or interfaces (tcp_transport.h)
  double tcp_timeout_s = 5;            // connecting the tcp mesh, before the job is refused
  std::string wire_format = "double";  // double (exact), float32, bf16, q8
  std::string selection_path;          // "": default_selection_path() where that file exists
  std::string emulate_link;            // "": a real link; else latency=...,bandwidth=...[,jitter=...]
  // A prompt's all-reduces beside the next piece's matmul (--overlap-prompt): "auto" (where they
  // cross a link), "on" or "off" (known_overlap_mode).
  std::string overlap = "auto";
  CoreShare core_share;  // this machine's ranks, threads and cores: whether a wait may poll (wait_policy.h)
};

// Whether `mode` is one CommOptions::overlap takes: auto, on or off.
inline bool known_overlap_mode(std::string_view mode) { return mode == "auto" || mode == "on" || mode == "off"; }

class Session {
 public:
  virtual ~Session() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& host() const = 0;
  // One per process; it must be destroyed before the session.
  // Throws CollectiveError for options that are wrong (naming the option and the fix).
  virtual std::unique_ptr<Communicator> make_communicator(const CommOptions& options = {}) = 0;
  // Ends every rank of the job at once: for an error one rank cannot share in order.
  [[noreturn]] virtual void abort_job(int code) = 0;
};

// The backends open_session knows, in the order --help would list them.
std::vector<std::string_view> backend_names();

// Starts this process's part of a job on `backend` ("mpi": a rank started by mpirun; "local":
// world size 1). The backend may consume its own arguments from argv. Throws CollectiveError
// for an unknown name (listing the known ones) or a backend that cannot start.
std::unique_ptr<Session> open_session(std::string_view backend, int& argc, char**& argv);

}  // namespace clusterctl::collectives
