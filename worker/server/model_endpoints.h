#pragma once
// The small model endpoints beside generation: GET /v1/models/{id} (OpenAI), and llama-server's
// POST /tokenize and POST /detokenize, as pure functions of the request (no sockets).
#include <cstdint>
#include <string>

#include "worker/server/generation_service.h"
#include "worker/server/openai_protocol.h"

namespace clusterctl::server {

inline constexpr size_t kMaxDetokenizeTokens = 131072;  // ids in one /detokenize request

// The model entry for GET /v1/models/{id} (`id` as in the path, percent-encoded); 404
// model_not_found in OpenAI's shape for any other id.
Json model_reply(const ModelInfo& model, const std::string& encoded_id, int64_t created);

// {"content": TEXT, "add_special"?: false, "parse_special"?: true, "with_pieces"?: false}
//   -> {"tokens": [ID, ...]} or, with_pieces, {"tokens": [{"id", "piece"}, ...]} (the piece a string
//   when it is valid UTF-8, else its bytes).
Json tokenize_reply(const std::string& body, const GenerationService& service);
// {"tokens": [ID, ...]} -> {"content": TEXT}.
Json detokenize_reply(const std::string& body, const GenerationService& service);

}  // namespace clusterctl::server
