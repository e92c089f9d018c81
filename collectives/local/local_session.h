#pragma once
#include <memory>

#include "collectives/session.h"

namespace clusterctl::collectives {

// World size 1 on this machine: rank 0, make_local_communicator()'s no-op collectives.
std::unique_ptr<Session> open_local_session();

}  // namespace clusterctl::collectives
