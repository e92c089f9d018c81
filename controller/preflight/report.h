#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "controller/preflight/preflight.h"

namespace clusterctl::preflight {

// The table `doctor` prints: one line per check, then every problem with its cause and fix.
void print_report(const PreflightReport& report, std::ostream& out);
nlohmann::json report_json(const config::ClusterConfig& config, const PreflightReport& report);

// The failed checks (those `counts` accepts; all without it), each "\n  NODE: CHECK failed: CAUSE"
// and its "\n    fix: FIX", for an error message; "" when none failed.
std::string failures_text(const PreflightReport& report,
                          const std::function<bool(const std::string& check)>& counts = nullptr);

}  // namespace clusterctl::preflight
