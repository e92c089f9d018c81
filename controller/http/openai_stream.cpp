#include "controller/http/openai_stream.h"

#include <chrono>

namespace clusterctl::http {

std::string describe_status(const HttpClient& client, const Response& response) {
  std::string msg =
      "HTTP " + std::to_string(response.status) + " from " + client.url().str() + ": " + error_message(response);
  if (response.status == 401)
    msg += " (the server needs an API token: pass --token-file FILE, or check the cluster's token file)";
  return msg;
}

StreamResult stream_completion(const HttpClient& client, ApiKind kind, nlohmann::json request,
                               const std::function<void(std::string_view)>& on_text, StreamCancel* cancel) {
  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  const std::string path = kind == ApiKind::chat_completions ? "/v1/chat/completions" : "/v1/completions";
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const auto since = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  StreamResult r;
  std::optional<int> usage_completion;
  bool done = false;
  auto on_data = [&](const std::string& data) {
    if (data == "[DONE]") {
      done = true;
      return false;
    }
    auto chunk = nlohmann::json::parse(data, nullptr, false);
    if (chunk.is_discarded())
      throw ApiStatusError(200, "the server sent an event that is not JSON: " + data.substr(0, 200));
    if (chunk.contains("error"))
      throw ApiStatusError(200, "the server stopped the answer: " + error_message({200, data}));
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      const auto& u = chunk["usage"];
      if (u.contains("prompt_tokens")) r.prompt_tokens = u["prompt_tokens"].get<int>();
      if (u.contains("completion_tokens")) usage_completion = u["completion_tokens"].get<int>();
      const auto details = u.find("prompt_tokens_details");
      if (details != u.end() && details->is_object() && details->contains("cached_tokens") &&
          (*details)["cached_tokens"].is_number_integer())
        r.cached_tokens = (*details)["cached_tokens"].get<int>();
    }
    if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) return true;
    const auto& choice = chunk["choices"][0];
    std::string piece;
    if (kind == ApiKind::chat_completions) {
      if (choice.contains("delta") && choice["delta"].contains("content") && choice["delta"]["content"].is_string())
        piece = choice["delta"]["content"].get<std::string>();
    } else if (choice.contains("text") && choice["text"].is_string()) {
      piece = choice["text"].get<std::string>();
    }
    if (choice.contains("token_ids") && choice["token_ids"].is_array()) {
      r.has_token_ids = true;
      for (const auto& id : choice["token_ids"]) r.token_ids.push_back(id.get<int32_t>());
    }
    if (!piece.empty()) {
      if (r.content_chunks == 0) r.time_to_first_token_s = since();
      ++r.content_chunks;
      r.text += piece;
      if (on_text) on_text(piece);
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string())
      r.finish_reason = choice["finish_reason"].get<std::string>();
    return true;
  };
  Response resp = client.post_sse(path, request.dump(), on_data, cancel);
  r.total_s = since();
  if (resp.status != 200) throw ApiStatusError(resp.status, describe_status(client, resp));
  r.cancelled = cancel && cancel->cancelled();
  if (!done && !r.cancelled)
    throw ConnectionError(client.url().str() + " closed the stream before its end ([DONE]); see the server's log");
  r.completion_tokens =
      usage_completion.value_or(r.has_token_ids ? static_cast<int>(r.token_ids.size()) : r.content_chunks);
  if (r.content_chunks == 0) r.time_to_first_token_s = r.total_s;
  return r;
}

std::string served_model_id(const HttpClient& client) {
  Response resp = client.get("/v1/models");
  if (resp.status != 200) throw ApiStatusError(resp.status, describe_status(client, resp));
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].contains("id"))
    throw Error(client.url().str() + "/v1/models lists no model: is this an OpenAI-compatible server?");
  return j["data"][0]["id"].get<std::string>();
}

}  // namespace clusterctl::http
