// The routes of the Ollama and Anthropic dialects: the same generation path as OpenAI's, with
// their request parsers and response writers.
#include "worker/server/anthropic_protocol.h"
#include "worker/server/http_session.h"
#include "worker/server/ollama_protocol.h"

namespace clusterctl::server {

bool HttpSession::route_dialects(const Request& request, const std::string& path) {
  const bool get = request.method() == http::verb::get || request.method() == http::verb::head;
  const bool post = request.method() == http::verb::post;
  const bool keep_alive = request.keep_alive();
  const ModelInfo& model = ctx_.service.model();
  try {
    if (post && (path == "/api/chat" || path == "/api/generate")) {
      const OllamaEndpoint endpoint = path == "/api/chat" ? OllamaEndpoint::chat : OllamaEndpoint::generate;
      if (auto reply = ollama_load_reply(endpoint, request.body(), model)) {
        send_json(*reply, path, keep_alive);
      } else {
        start_generation(request, path, [&](const std::string&, int64_t) {
          return prepare_ollama(endpoint, request.body(), model, ctx_.chat_template, ctx_.options.limits);
        });
      }
      return true;
    }
    if (get && (path == "/api/tags" || path == "/api/ps")) {
      send_json(ollama_tags(model, path == "/api/ps"), path, keep_alive);
      return true;
    }
    if (get && path == "/api/version") {
      send_json(Json{{"version", kOllamaApiVersion}}, path, keep_alive);
      return true;
    }
    if (post && path == "/api/show") {
      send_json(ollama_show(request.body(), model, ctx_.chat_template), path, keep_alive);
      return true;
    }
    if (post && path == "/v1/messages") {
      start_generation(request, path, [&](const std::string& id, int64_t) {
        return prepare_anthropic(request.body(), model, ctx_.chat_template, ctx_.options.limits, id);
      });
      return true;
    }
  } catch (const ApiError& e) {
    send_error(e, path, keep_alive);
    return true;
  }
  return false;
}

void HttpSession::send_json(const Json& body, const std::string& endpoint, bool keep_alive) {
  Response res{http::status::ok, 11};
  res.set(http::field::server, "clusterctl");
  res.set(http::field::content_type, "application/json; charset=utf-8");
  res.keep_alive(keep_alive);
  res.body() = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  send(std::move(res), endpoint);
}

}  // namespace clusterctl::server
