#include "worker/server/openai_writer.h"

namespace clusterctl::server {

Json openai_tool_calls(const std::vector<chat::ToolCall>& calls, bool with_index, size_t first_index) {
  Json out = Json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    Json call = Json::object();
    if (with_index) call["index"] = first_index + i;
    call["id"] = calls[i].id;
    call["type"] = "function";
    call["function"] = Json{{"name", calls[i].name}, {"arguments", calls[i].arguments}};
    out.push_back(std::move(call));
  }
  return out;
}

namespace {

class OpenAiWriter : public ResponseWriter {
 public:
  OpenAiWriter(const ApiRequest& request, std::string id, int64_t created)
      : request_(request), id_(std::move(id)), created_(created) {}

  std::string stream_begin() override {
    // The chat stream opens with the assistant role; completions have no first chunk.
    if (request_.endpoint != Endpoint::chat_completions) return {};
    return sse_event(stream_chunk(request_, id_, created_, "", true, std::nullopt));
  }

  std::string stream_text(const std::string& text, std::vector<int32_t>& token_ids) override {
    return chunk(text, std::nullopt, token_ids);
  }

  void add_logprobs(const TokenLogprobs& logprobs) override { logprobs_.push_back(logprobs); }

  std::string stream_tool_calls(const std::vector<chat::ToolCall>& calls, size_t first_index) override {
    std::vector<int32_t> no_ids;
    Json chunk = stream_chunk(request_, id_, created_, "", false, std::nullopt, &no_ids);
    chunk["choices"][0]["delta"]["tool_calls"] = openai_tool_calls(calls, true, first_index);
    return sse_event(chunk);
  }

  std::string stream_end(const Outcome& outcome, std::vector<int32_t>& token_ids) override {
    std::string out;
    if (outcome.tool_calls.size() > outcome.streamed_calls) {
      out += stream_tool_calls({outcome.tool_calls.begin() + outcome.streamed_calls, outcome.tool_calls.end()},
                               outcome.streamed_calls);
    }
    // Ids (and logprobs) whose text was held back and never sent (a stop string's start, a cut
    // character) ride on the last chunk.
    out += chunk("", finish(outcome), token_ids);
    if (request_.include_usage) out += sse_event(stream_usage_chunk(request_, id_, created_, outcome.usage));
    out += kSseDone;
    return out;
  }

  std::string stream_error(const ApiError& error) override { return sse_event(error.body()) + std::string(kSseDone); }

  std::string whole(const std::string& text, const Outcome& outcome, const std::vector<int32_t>& token_ids) override {
    Json out =
        completion_response(request_, id_, created_, text, finish(outcome), outcome.usage, &token_ids, &logprobs_);
    if (!outcome.tool_calls.empty()) {
      Json& message = out["choices"][0]["message"];
      if (text.empty()) message["content"] = nullptr;  // as OpenAI answers a call without text
      message["tool_calls"] = openai_tool_calls(outcome.tool_calls, false);
    }
    return out.dump(-1, ' ', false, Json::error_handler_t::replace);
  }

 private:
  // A chunk with `text` and the ids and logprobs not sent yet.
  std::string chunk(const std::string& text, const std::optional<std::string>& finish_reason,
                    std::vector<int32_t>& token_ids) {
    std::string out = sse_event(
        stream_chunk(request_, id_, created_, text, false, finish_reason, &token_ids, &logprobs_, logprobs_offset_));
    token_ids.clear();
    for (const TokenLogprobs& lp : logprobs_) logprobs_offset_ += lp.chosen.text.size();
    logprobs_.clear();
    return out;
  }

  std::string finish(const Outcome& outcome) const {
    if (!outcome.tool_calls.empty()) return "tool_calls";
    if (outcome.stop_sequence) return "stop";
    return finish_reason_name(outcome.reason);
  }

  const ApiRequest request_;
  std::string id_;
  int64_t created_;
  std::vector<TokenLogprobs> logprobs_;  // all (whole answers) / not sent yet (streams)
  size_t logprobs_offset_ = 0;           // streamed: bytes of the tokens whose logprobs went out
};

}  // namespace

std::unique_ptr<ResponseWriter> make_openai_writer(const ApiRequest& request, std::string id, int64_t created) {
  return std::make_unique<OpenAiWriter>(request, std::move(id), created);
}

}  // namespace clusterctl::server
