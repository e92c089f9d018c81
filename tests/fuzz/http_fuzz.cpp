// libFuzzer target: what one client's bytes reach on rank 0's API. The input is read as a raw
// HTTP/1.1 request stream by Beast's parser with the session's limits (several pipelined requests),
// then each parsed request goes through the session's checks (authorization, Host/Origin) and,
// on the OpenAI endpoints, request validation (parse_api_request, chat template rendering) and the
// response path (stop strings, UTF-8 joining, chunks); the raw input is also fed to
// parse_api_request as a body on its own; the Ollama (/api/chat, /api/generate) and Anthropic
// (/v1/messages) parsers and writers likewise, and the tool-call parser of every format reads
// the input as a model's answer. Anything but an ApiError escaping validation is a bug:
// it would be a 500 (or, before, an abort), so the target traps. CLUSTERCTL_FUZZ_API (fuzz_api.h)
// aims a run at one API: the input is then only that API's request body (or, for http, only a
// raw request stream).
//   cmake --preset fuzz && cmake --build build-fuzz --target http_fuzz
//   build-fuzz/tests/fuzz/http_fuzz -max_len=65536 CORPUS tests/fuzz/seeds-http
//   tests/fuzz/run_api.sh http_fuzz openai 600
#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/fuzz/fuzz_api.h"
#include "worker/chat/tool_calls.h"
#include "worker/server/anthropic_protocol.h"
#include "worker/server/ollama_protocol.h"
#include "worker/server/openai_protocol.h"
#include "worker/server/request_checks.h"
#include "worker/server/stop_matcher.h"

namespace {

using namespace clusterctl::server;
namespace beast = boost::beast;
namespace http = beast::http;

const ModelInfo& model() {
  static const ModelInfo m{"m", std::nullopt, "<s>", "</s>", 256, "llama", 0};
  return m;
}

// The fallback transcript and a ChatML template with tools (the interpreter walks every field).
const clusterctl::chat::ChatTemplate& fallback() {
  static const clusterctl::chat::ChatTemplate t(std::nullopt, "<s>", "</s>");
  return t;
}
const clusterctl::chat::ChatTemplate& chatml() {
  static const clusterctl::chat::ChatTemplate t(
      std::string(
          "{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n"
          "{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
      "<s>", "</s>");
  return t;
}

[[noreturn]] void bug(const char* where, const std::exception& e) {
  std::fprintf(stderr, "%s threw a non-ApiError: %s\n", where, e.what());
  std::abort();
}

void exercise_answer(const ApiRequest& req, const std::string& input) {
  // The response path with the request's stop strings, fed the input as generated text.
  StopMatcher stop(req.generation.stop);
  Utf8Joiner utf8;
  std::string text;
  for (size_t i = 0; i < input.size(); i += 7) text += stop.feed(utf8.feed(std::string_view(input).substr(i, 7)));
  text += stop.feed(utf8.flush());
  text += stop.flush();
  Usage usage{1, 2};
  std::vector<int32_t> ids{1, 2, 3};
  (void)sse_event(stream_chunk(req, "id", 0, text, true, std::nullopt, &ids));
  (void)sse_event(stream_usage_chunk(req, "id", 0, usage));
  (void)completion_response(req, "id", 0, text, "stop", usage, &ids)
      .dump(-1, ' ', false, Json::error_handler_t::replace);
}

void validate(Endpoint endpoint, const std::string& body, const clusterctl::chat::ChatTemplate& tmpl) {
  ProtocolLimits limits;
  limits.max_tokens_limit = 4096;
  try {
    ApiRequest req = parse_api_request(endpoint, body, model(), tmpl, limits);
    if (req.generation.max_tokens < 1 || req.generation.max_tokens > limits.max_tokens_limit) std::abort();
    const auto& s = req.generation.sampling;
    if (!(s.temperature >= kTemperatureMin && s.temperature <= kTemperatureMax)) std::abort();
    if (!(s.top_p >= kTopPMin && s.top_p <= kTopPMax)) std::abort();
    exercise_answer(req, body.substr(0, 4096));
  } catch (const ApiError& e) {
    if (e.status() != 400 && e.status() != 404) std::abort();
    (void)e.body().dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (const std::exception& e) {
    bug("parse_api_request", e);
  }
}

// A model's answer through the tool-call parser of each format, in pieces, then the writers.
void exercise_tool_calls(const std::string& answer) {
  using clusterctl::chat::ToolCallFormat;
  for (ToolCallFormat f : {ToolCallFormat::hermes, ToolCallFormat::llama3, ToolCallFormat::deepseek,
                           ToolCallFormat::kimi_k2, ToolCallFormat::mistral}) {
    clusterctl::chat::ToolCallParser parser(f);
    std::string content;
    for (size_t i = 0; i < answer.size(); i += 5) content += parser.feed(std::string_view(answer).substr(i, 5));
    auto r = parser.finish();
    for (const auto& call : r.calls) {
      if (!Json::accept(call.arguments) || !Json::parse(call.arguments).is_object()) std::abort();
    }
  }
}

// The other dialects' parsers: a prepared request's writer answers it whole and streamed.
template <class Prepare>
void validate_dialect(Prepare prepare, const std::string& body) {
  try {
    PreparedRequest p = prepare();
    if (p.generation.max_tokens < 1 || p.generation.max_tokens > 4096) std::abort();
    Outcome outcome;
    outcome.tool_calls.push_back({"id", "f", R"({"a":1})"});
    std::vector<int32_t> ids{1};
    (void)p.writer->stream_begin();
    (void)p.writer->stream_text(body.substr(0, 64), ids);
    (void)p.writer->stream_end(outcome, ids);
    (void)p.writer->whole(body.substr(0, 64), outcome, ids);
  } catch (const ApiError& e) {
    if (e.status() != 400 && e.status() != 404) std::abort();
    (void)error_body(Dialect::anthropic, e).dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (const std::exception& e) {
    bug("a dialect's parser", e);
  }
}

void validate_anthropic(const std::string& body) {
  ProtocolLimits limits;
  limits.max_tokens_limit = 4096;
  for (const auto* tmpl : {&fallback(), &chatml()}) {
    validate_dialect([&] { return prepare_anthropic(body, model(), *tmpl, limits, "id"); }, body);
  }
}

void validate_ollama(const std::string& body) {
  ProtocolLimits limits;
  limits.max_tokens_limit = 4096;
  for (const auto* tmpl : {&fallback(), &chatml()}) {
    for (OllamaEndpoint e : {OllamaEndpoint::chat, OllamaEndpoint::generate}) {
      validate_dialect([&] { return prepare_ollama(e, body, model(), *tmpl, limits); }, body);
    }
  }
}

void validate_openai(const std::string& body) {
  validate(Endpoint::chat_completions, body, fallback());
  validate(Endpoint::chat_completions, body, chatml());
  validate(Endpoint::completions, body, fallback());
}

void validate_dialects(const std::string& body) {
  validate_anthropic(body);
  validate_ollama(body);
}

void handle(const http::request<http::string_body>& req) {
  RequestCheckOptions checks;
  checks.bearer_token = "tok";
  checks.loopback_guard = true;
  checks.port = 8080;
  checks.cors_origins = {"https://app.example"};
  (void)check_request(checks, req);
  (void)cors_headers(checks, req);
  const std::string target(req.target());
  const std::string path = target.substr(0, target.find('?'));
  if (req.method() != http::verb::post) return;
  if (path == "/v1/chat/completions") {
    validate(Endpoint::chat_completions, req.body(), fallback());
    validate(Endpoint::chat_completions, req.body(), chatml());
  } else if (path == "/v1/completions") {
    validate(Endpoint::completions, req.body(), fallback());
  } else if (path == "/v1/messages" || path == "/api/chat" || path == "/api/generate") {
    validate_dialects(req.body());
  }
}

// As a raw request stream, the way a session reads it (pipelined requests one after another).
void parse_stream(const std::string& input) {
  std::string_view rest = input;
  for (int n = 0; n < 8 && !rest.empty(); ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(1 << 20);
    parser.eager(true);
    beast::error_code ec;
    size_t used = 0;
    while (!parser.is_done() && used < rest.size()) {
      size_t k = parser.put(boost::asio::buffer(rest.data() + used, rest.size() - used), ec);
      if (ec == http::error::need_more) break;
      if (ec) break;
      if (k == 0) break;
      used += k;
    }
    if (ec && ec != http::error::need_more) break;
    if (!parser.is_done()) break;
    handle(parser.get());
    rest.remove_prefix(used);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using clusterctl::fuzz::FuzzApi;
  static const FuzzApi api = clusterctl::fuzz::fuzz_api_from_env();
  const std::string input(reinterpret_cast<const char*>(data), size);
  switch (api) {
    case FuzzApi::http:
      parse_stream(input);
      return 0;
    case FuzzApi::openai:  // the tool-call parser reads answers for every API; it runs with OpenAI's
      validate_openai(input);
      exercise_tool_calls(input.substr(0, 8192));
      return 0;
    case FuzzApi::ollama:
      validate_ollama(input);
      return 0;
    case FuzzApi::anthropic:
      validate_anthropic(input);
      return 0;
    case FuzzApi::all:
      break;
  }
  parse_stream(input);
  // As a body on its own.
  validate_openai(input);
  validate_dialects(input);
  exercise_tool_calls(input.substr(0, 8192));
  return 0;
}
