#pragma once
// A failure of one step of `up`/`down` on one node: what `up` reports (node, step, cause, fix)
// after it has stopped everything it started.
#include <string>

#include "worker/common/error.h"

namespace clusterctl::launch {

class StepError : public Error {
 public:
  StepError(std::string node, std::string step, std::string cause, std::string fix)
      : Error(node + ": " + step + " failed: " + cause + (fix.empty() ? "" : "\n  fix: " + fix)),
        node_(std::move(node)),
        step_(std::move(step)),
        cause_(std::move(cause)),
        fix_(std::move(fix)) {}
  const std::string& node() const { return node_; }
  const std::string& step() const { return step_; }
  const std::string& cause() const { return cause_; }
  const std::string& fix() const { return fix_; }

 private:
  std::string node_, step_, cause_, fix_;
};

}  // namespace clusterctl::launch
