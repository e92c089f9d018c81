#pragma once
// The MPI backend of collectives::Communicator: MPI_Allreduce, MPI_Bcast, MPI_Gather and an
// MPI_MAXLOC reduction on MPI_COMM_WORLD. Every MPI call returns its error (MPI_ERRORS_RETURN)
// and a failed call throws CollectiveError naming the call, this rank and its host, so the
// caller can report it and end the job instead of hanging or dying without a word.
#include <memory>

#include "collectives/algorithms/allreduce.h"
#include "collectives/session.h"

namespace clusterctl::collectives {

// MPI_Init_thread for this process (MPI_Finalize when the session ends). Threads of the compute
// pool never call MPI; the communicator's overlap thread (start_allreduce_sum) calls it only while
// the caller's thread does not, so MPI_THREAD_SERIALIZED is asked for (a library that gives less
// runs without the overlap). Its communicator times and counts every collective call in stats().
std::unique_ptr<Session> open_mpi_session(int& argc, char**& argv);

// The point-to-point transport our all-reduce algorithms run on over MPI (a duplicate of
// MPI_COMM_WORLD), for what is tested over it alone. Collective; needs an open MPI session.
// `poll`: its waits may poll (the ranks fit the cores, wait_policy.h), else they yield the core
// between tests, then sleep.
std::unique_ptr<Transport> make_mpi_transport(bool poll = true);

}  // namespace clusterctl::collectives
