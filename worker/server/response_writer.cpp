#include "worker/server/response_writer.h"

namespace clusterctl::server {

Json error_body(Dialect dialect, const ApiError& error) {
  switch (dialect) {
    case Dialect::ollama:
      return Json{{"error", error.what()}};
    case Dialect::anthropic: {
      // Anthropic's error types by status (docs.anthropic.com/en/api/errors).
      const int s = error.status();
      const char* type = s == 401   ? "authentication_error"
                         : s == 403 ? "permission_error"
                         : s == 404 ? "not_found_error"
                         : s == 413 ? "request_too_large"
                         : s == 429 ? "rate_limit_error"
                         : s >= 500 ? "api_error"
                                    : "invalid_request_error";
      return Json{{"type", "error"}, {"error", Json{{"type", type}, {"message", error.what()}}}};
    }
    case Dialect::openai:
      break;
  }
  return error.body();
}

Dialect dialect_of_path(const std::string& path) {
  if (path.rfind("/api/", 0) == 0) return Dialect::ollama;
  if (path == "/v1/messages" || path.rfind("/v1/messages/", 0) == 0) return Dialect::anthropic;
  return Dialect::openai;
}

void assign_tool_call_ids(std::vector<chat::ToolCall>& calls, const std::string& prefix, const std::string& request_id,
                          size_t first_index) {
  for (size_t i = 0; i < calls.size(); ++i) {
    if (calls[i].id.empty()) calls[i].id = prefix + request_id + "_" + std::to_string(first_index + i);
  }
}

}  // namespace clusterctl::server
