#include "worker/job_setup.h"

#include <string>
#include <vector>

#include "worker/model/shard_plan.h"
#include "worker/tools/engine_flags.h"

namespace clusterctl::worker {

namespace po = boost::program_options;

parallel::RankModel open_agreed_rank_model(collectives::Session& session, collectives::Communicator& comm,
                                           const po::variables_map& vm, const std::function<void()>& parse_flags) {
  std::string error;
  parallel::RankModel m;
  try {
    parse_flags();
    const auto split = vm.count("split") ? model::parse_split(vm["split"].as<std::string>()) : std::vector<double>{};
    m = parallel::open_rank_model(vm["model"].as<std::string>(), session.rank(), session.size(), split,
                                  cli::layout_flag(vm));
  } catch (const po::error& e) {
    error = std::string(e.what()) + " (see 'clusterctl-worker --help')";
  } catch (const std::exception& e) {
    error = e.what();
  }
  parallel::agree(comm, session.host(), error);
  parallel::agree_same_model(comm, session.host(), m);
  return m;
}

}  // namespace clusterctl::worker
