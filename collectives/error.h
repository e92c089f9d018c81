#pragma once
#include <stdexcept>

namespace clusterctl::collectives {

// A backend that cannot start, or a collective call that failed: the message names the call,
// the rank and its host, and what to check. Programs print it and end the job.
class CollectiveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A CollectiveError every rank of the job threw alike, with the same message, after agreeing on it
// (a tcp mesh that could not be connected): rank 0 prints it and every rank ends normally, so the
// user reads it once and no rank needs to abort the job.
class JobWideCollectiveError : public CollectiveError {
 public:
  using CollectiveError::CollectiveError;
};

}  // namespace clusterctl::collectives
