#include "controller/preflight/report.h"

#include <algorithm>

namespace clusterctl::preflight {

void print_report(const PreflightReport& report, std::ostream& out) {
  size_t node_w = 4, check_w = 5;
  for (const auto& r : report.results) {
    node_w = std::max(node_w, r.node.size());
    check_w = std::max(check_w, r.check.size());
  }
  auto pad = [](std::string s, size_t w) {
    s.resize(std::max(s.size(), w), ' ');
    return s;
  };
  out << pad("NODE", node_w) << "  " << pad("CHECK", check_w) << "  " << pad("STATUS", 7) << "  DETAIL\n";
  for (const auto& r : report.results)
    out << pad(r.node, node_w) << "  " << pad(r.check, check_w) << "  " << pad(std::string(status_name(r.status)), 7)
        << "  " << r.detail << "\n";
  size_t failed = 0, warned = 0;
  for (const auto& r : report.results) {
    if (r.status != CheckStatus::fail && r.status != CheckStatus::warn) continue;
    (r.status == CheckStatus::fail ? failed : warned)++;
    if (failed + warned == 1) out << "\n";
    out << (r.status == CheckStatus::fail ? "FAIL " : "WARN ") << r.node << " " << r.check << ": " << r.cause << "\n"
        << "     fix: " << r.fix << "\n";
  }
  out << "\n";
  if (failed)
    out << failed << (failed == 1 ? " check failed" : " checks failed");
  else
    out << "all checks passed";
  if (warned) out << ", " << warned << (warned == 1 ? " warning" : " warnings");
  out << "\n";
}

nlohmann::json report_json(const config::ClusterConfig& config, const PreflightReport& report) {
  nlohmann::json j;
  j["cluster"] = config.name;
  j["file"] = config.file;
  j["ok"] = report.ok();
  auto& checks = j["checks"] = nlohmann::json::array();
  for (const auto& r : report.results) {
    nlohmann::json c = {
        {"node", r.node}, {"check", r.check}, {"status", std::string(status_name(r.status))}, {"detail", r.detail}};
    if (!r.cause.empty()) c["cause"] = r.cause;
    if (!r.fix.empty()) c["fix"] = r.fix;
    checks.push_back(c);
  }
  for (auto& c : checks) {
    std::string s = c["status"];
    std::transform(s.begin(), s.end(), s.begin(), ::tolower);
    c["status"] = s;
  }
  return j;
}

std::string failures_text(const PreflightReport& report, const std::function<bool(const std::string& check)>& counts) {
  std::string s;
  for (const auto& r : report.results) {
    if (r.status != CheckStatus::fail || (counts && !counts(r.check))) continue;
    s += "\n  " + r.node + ": " + r.check + " failed: " + r.cause;
    if (!r.fix.empty()) s += "\n    fix: " + r.fix;
  }
  return s;
}

}  // namespace clusterctl::preflight
