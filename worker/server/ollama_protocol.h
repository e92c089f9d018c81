#pragma once
// The Ollama API (github.com/ollama/ollama docs/api.md) beside the OpenAI one, on the same
// service: POST /api/chat and /api/generate (NDJSON streams by default, or one JSON with
// "stream": false), GET /api/tags, /api/ps, /api/version, POST /api/show. Every field and option
// a request carries is used or refused with a 400 ({"error": "..."}), never ignored.
#include <optional>
#include <string>

#include "worker/server/response_writer.h"

namespace clusterctl::server {

enum class OllamaEndpoint { chat, generate };

// The Ollama API version /api/version reports (the clients check it for features).
inline constexpr const char* kOllamaApiVersion = "0.9.0";

// Parses and checks a /api/chat or /api/generate body. Throws ApiError (400, 404 for another model).
PreparedRequest prepare_ollama(OllamaEndpoint endpoint, const std::string& body, const ModelInfo& model,
                               const chat::ChatTemplate& chat_template, const ProtocolLimits& limits);

// A request with nothing to generate (no messages / an empty prompt) loads the model in Ollama:
// the answer is at once {"done": true, "done_reason": "load"}. nullopt: generate.
std::optional<Json> ollama_load_reply(OllamaEndpoint endpoint, const std::string& body, const ModelInfo& model);

Json ollama_tags(const ModelInfo& model, bool running);  // /api/tags (running = false), /api/ps
Json ollama_show(const std::string& body, const ModelInfo& model, const chat::ChatTemplate& chat_template);

// RFC 3339 UTC time with nanoseconds, as Ollama's created_at.
std::string rfc3339_now();

}  // namespace clusterctl::server
