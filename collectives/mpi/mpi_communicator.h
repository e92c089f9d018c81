#pragma once
// The MPI backend of collectives::Communicator: MPI_Allreduce, MPI_Bcast, MPI_Gather and an
// MPI_MAXLOC reduction on MPI_COMM_WORLD. Every MPI call returns its error (MPI_ERRORS_RETURN)
// and a failed call throws clusterctl::Error naming the call, this rank and its host, so the
// caller can report it and end the job instead of hanging or dying without a word.
#include <memory>
#include <string>

#include "collectives/communicator.h"

namespace clusterctl::collectives {

// MPI must be initialised (see MpiSession). Times and counts every collective call in stats().
std::unique_ptr<Communicator> make_mpi_communicator();

// Owns MPI_Init_thread / MPI_Finalize for a process. Threads of the compute pool never call MPI,
// so MPI_THREAD_FUNNELED is enough.
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& host() const { return host_; }

  // Ends every rank of the job at once (MPI_Abort): for an error one rank cannot share in order.
  [[noreturn]] static void abort_job(int code);

 private:
  int rank_ = 0, size_ = 1;
  std::string host_;
};

// "rank R on HOST": how messages name a rank.
std::string rank_name(int rank, const std::string& host);

}  // namespace clusterctl::collectives
