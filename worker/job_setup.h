#pragma once
// The set-up both kinds of clusterctl-worker job share (a generation in worker_main.cpp, the API
// server in serve_main.cpp): every rank parses its flags and opens its part of the model, and all
// ranks agree before anything is loaded.
#include <boost/program_options.hpp>
#include <functional>

#include "collectives/communicator.h"
#include "collectives/session.h"
#include "worker/parallel/job.h"

namespace clusterctl::worker {

// Runs `parse_flags` (which fills `vm` and checks the job's own flags), then opens this rank's
// part of the model named by --model, --split and --layout. Each rank reports its own error
// (a bad flag naming 'clusterctl-worker --help'); throws parallel::JobRefused on every rank when
// any failed or when the ranks hold different models.
parallel::RankModel open_agreed_rank_model(collectives::Session& session, collectives::Communicator& comm,
                                           const boost::program_options::variables_map& vm,
                                           const std::function<void()>& parse_flags);

}  // namespace clusterctl::worker
