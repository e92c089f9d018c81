// The HTTP API on the real engine (stories260K from ../shared/models): greedy answers over
// HTTP, streamed or not, are exactly what the engine's decode loop gives directly.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "collectives/communicator.h"
#include "tests/unit/shared_data.h"
#include "worker/gguf/gguf_file.h"
#include "worker/model/generate.h"
#include "worker/server/engine_generation_service.h"
#include "worker/server/http_server.h"
#include "worker/tokenizer/stream_decoder.h"
#include "worker/tokenizer/tokenizer.h"

namespace clusterctl::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

std::string post(uint16_t port, const std::string& target, const Json& body) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.body() = body.dump();
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  EXPECT_EQ(res.result_int(), 200u) << res.body();
  return res.body();
}

// What the engine generates for `prompt` greedily, decoded, without the server.
std::string direct_greedy(const std::string& model_path, const std::string& prompt, int max_tokens) {
  gguf::GgufFile file(model_path);
  auto tok = tokenizer::Tokenizer::from_gguf(file);
  auto comm = collectives::make_local_communicator();
  model::Engine engine(file, *comm);
  sampling::SamplerParams sp;
  sp.temperature = 0;
  sampling::Sampler sampler(engine.hparams().n_vocab, sp);
  model::GenerateRequest req;
  req.prompt = tok->tokenize(prompt, true, false);
  req.max_tokens = max_tokens;
  for (auto id : {tok->vocab().eos(), tok->vocab().eot()}) {
    if (id >= 0) req.stop_tokens.push_back(id);
  }
  tokenizer::StreamDecoder decoder(*tok);
  std::string text;
  model::generate(engine, sampler, req, [&](int32_t id) {
    text += decoder.push(id);
    return true;
  });
  return text + decoder.finish();
}

TEST(ServerOnEngine, GreedyAnswersMatchTheDecodeLoop) {
  CLUSTERCTL_REQUIRE_SHARED(model_path, "models/stories260K.gguf");
  const std::string prompt = "Once upon a time";
  const std::string expected = direct_greedy(model_path, prompt, 40);
  ASSERT_FALSE(expected.empty());

  EngineServiceOptions eo;
  eo.model_path = model_path;
  EngineGenerationService service(eo);
  EXPECT_EQ(service.model().id, "stories260K");
  ServerOptions so;
  so.port = 0;
  HttpServer server(so, service);
  server.start();

  Json body = {{"model", "stories260K"}, {"prompt", prompt}, {"max_tokens", 40}, {"temperature", 0}};
  Json whole = Json::parse(post(server.port(), "/v1/completions", body));
  EXPECT_EQ(whole["choices"][0]["text"], expected);
  EXPECT_EQ(whole["usage"]["completion_tokens"].get<int>() <= 40, true);
  const std::string finish = whole["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "length" || finish == "stop") << finish;

  body["stream"] = true;
  std::string events = post(server.port(), "/v1/completions", body);
  std::string streamed;
  size_t pos = 0;
  while ((pos = events.find("data: {", pos)) != std::string::npos) {
    size_t end = events.find("\n\n", pos);
    Json chunk = Json::parse(events.substr(pos + 6, end - pos - 6));
    streamed += chunk["choices"][0]["text"].get<std::string>();
    pos = end;
  }
  EXPECT_EQ(streamed, expected);
  EXPECT_NE(events.find("data: [DONE]\n\n"), std::string::npos);
  server.stop();
}

}  // namespace
}  // namespace clusterctl::server
