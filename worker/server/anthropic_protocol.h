#pragma once
// The Anthropic Messages API (POST /v1/messages) beside the OpenAI one, on the same service:
// system prompt, text content blocks, tool use (tools -> the chat template, tool_use blocks out,
// tool_result blocks in), stop sequences, streaming events, errors in Anthropic's shape.
// Every field is used or refused with a 400, never ignored.
#include <string>

#include "worker/server/response_writer.h"

namespace clusterctl::server {

// Parses and checks a /v1/messages body; `id` is the request's id (the answer's is "msg_" + id).
// Throws ApiError (400, 404 for another model).
PreparedRequest prepare_anthropic(const std::string& body, const ModelInfo& model,
                                  const chat::ChatTemplate& chat_template, const ProtocolLimits& limits,
                                  const std::string& id);

}  // namespace clusterctl::server
