#pragma once
// `clusterctl-worker --serve`: the OpenAI-compatible API as a tensor-parallel job. Rank 0 runs
// the HTTP server and the continuous-batching scheduler, which drives every rank through the
// step protocol; the other ranks follow steps. SIGTERM/SIGINT (mpirun forwards them) end the job
// in order: rank 0 stops serving, then sends the shutdown step.
#include "collectives/communicator.h"
#include "collectives/session.h"

namespace clusterctl::worker {

// True when argv asks for serve mode.
bool wants_serve(int argc, char** argv);
// Returns the process exit code; throws parallel::JobRefused when set-up fails on any rank.
int serve_job(collectives::Session& session, collectives::Communicator& comm, int argc, char** argv);

}  // namespace clusterctl::worker
