#pragma once
// The OpenAI dialect's answers (chat.completion, text_completion, their chunks) as a ResponseWriter.
#include "worker/server/response_writer.h"

namespace clusterctl::server {

std::unique_ptr<ResponseWriter> make_openai_writer(const ApiRequest& request, std::string id, int64_t created);

// OpenAI's tool_calls array: [{"id", "type": "function", "function": {"name", "arguments"}}]
// (with "index" in a stream delta).
Json openai_tool_calls(const std::vector<chat::ToolCall>& calls, bool with_index, size_t first_index = 0);

}  // namespace clusterctl::server
