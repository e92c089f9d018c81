#pragma once
#include <stdexcept>
#include <string>

namespace clusterctl {

// Every failure a user can cause ends as one of these: the message names the cause
// (and, where there is one, the fix). The executables print it and exit non-zero.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace clusterctl
