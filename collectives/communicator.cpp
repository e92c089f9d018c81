#include "collectives/communicator.h"

namespace clusterctl::collectives {

std::string rank_name(int rank, const std::string& host) { return "rank " + std::to_string(rank) + " on " + host; }

}  // namespace clusterctl::collectives
