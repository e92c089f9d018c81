#pragma once
#include <nlohmann/json.hpp>
#include <ostream>

#include "controller/preflight/preflight.h"

namespace clusterctl::preflight {

// The table `doctor` prints: one line per check, then every problem with its cause and fix.
void print_report(const PreflightReport& report, std::ostream& out);
nlohmann::json report_json(const config::ClusterConfig& config, const PreflightReport& report);

}  // namespace clusterctl::preflight
