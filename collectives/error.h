#pragma once
#include <stdexcept>

namespace clusterctl::collectives {

// A backend that cannot start, or a collective call that failed: the message names the call,
// the rank and its host, and what to check. Programs print it and end the job.
class CollectiveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace clusterctl::collectives
