// TEST-ONLY server for tests/api: the real HTTP layer (clusterctl_server) in front of the
// test service that streams the prompt's words back (tests/unit/server/server_test_word_service.h).
// Prints "listening on http://127.0.0.1:PORT" once ready; runs until SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/unit/server/server_test_word_service.h"
#include "worker/server/http_server.h"

int main(int argc, char** argv) {
  using namespace clusterctl::server;
  ServerOptions options;
  options.port = 0;
  testing::WordStreamTestOptions service_options;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--port")
      options.port = static_cast<uint16_t>(std::stoi(value));
    else if (flag == "--token")
      options.bearer_token = value;
    else if (flag == "--cors-origin")
      options.cors_origins.push_back(value);
    else if (flag == "--health-open")
      options.health_open = value == "1";
    else if (flag == "--max-body")
      options.max_body_bytes = std::stoul(value);
    else if (flag == "--max-tokens-limit")
      options.limits.max_tokens_limit = std::stoi(value);
    else if (flag == "--delay-ms")
      service_options.step_delay = std::chrono::milliseconds(std::stoi(value));
    else if (flag == "--chat-template") {
      // A template that scripts the "model's" answer (the service streams the prompt back).
      std::ifstream in(value, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "cannot read %s\n", value.c_str());
        return 2;
      }
      service_options.chat_template = std::string(std::istreambuf_iterator<char>(in), {});
    } else if (flag == "--slots")
      service_options.slots = std::stoul(value);
    else if (flag == "--queue")
      service_options.max_queued = std::stoul(value);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  try {
    testing::WordStreamTestService service(service_options);
    HttpServer server(options, service);
    server.start();
    std::printf("listening on http://127.0.0.1:%u\n", static_cast<unsigned>(server.port()));
    std::fflush(stdout);
    int sig = 0;
    sigwait(&signals, &sig);
    server.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
