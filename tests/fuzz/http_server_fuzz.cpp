// libFuzzer target: the property that nothing a client sends stops the server. A real HttpServer
// (the word-streaming test service behind it) runs in this process; each input goes to it over a
// fresh loopback connection as raw bytes, half-closed, and is read until the server closes (a
// connection still open after 15 s is a hang); then a normal chat request on a new connection must
// get its 200 with the expected words. A crash, a sanitizer report, a hang or a wrong normal
// answer ends the run. With CLUSTERCTL_FUZZ_API (fuzz_api.h) set to openai, ollama or anthropic
// the input is that API's request body, posted to each of its endpoints, and the normal request
// that must then be answered is one of that API too.
//   cmake --preset fuzz && cmake --build build-fuzz --target http_server_fuzz
//   build-fuzz/tests/fuzz/http_server_fuzz -max_len=65536 CORPUS tests/fuzz/seeds-http
//   tests/fuzz/run_api.sh http_server_fuzz anthropic 600
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_api.h"
#include "tests/unit/server/server_test_word_service.h"
#include "worker/server/http_server.h"

namespace {

using namespace clusterctl::server;

uint16_t g_port = 0;

int connect_loopback() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(g_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = -1;
  // libFuzzer's -timeout alarm (SIGALRM, every second) can interrupt a connect on a loaded
  // machine: that is not the server's doing, so try again on a fresh socket.
  for (int attempt = 0;; ++attempt) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (err == EINTR && attempt < 100) continue;
    errno = err;
    std::perror("connect to the server under test");
    std::abort();
  }
  timeval tv{15, 0};  // generous: under a sanitizer on a loaded machine; a hang is still caught
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Sends `bytes`, half-closes, reads until the server closes. False when it did not within 15 s.
bool send_and_read(const std::string& bytes, std::string* answer) {
  const int fd = connect_loopback();
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;  // libFuzzer's -timeout alarm
    if (n <= 0) break;                      // the server may answer (413, 431, 400) and close before reading it all
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buf[16384];
  bool closed = false;
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;  // libFuzzer's -timeout alarm (SIGALRM), not the server
    if (n > 0) {
      if (answer) answer->append(buf, static_cast<size_t>(n));
      continue;
    }
    closed = n == 0 || errno == ECONNRESET;
    if (n < 0 && errno == ECONNRESET) std::fprintf(stderr, "(the server reset the connection)\n");
    break;
  }
  ::close(fd);
  return closed;
}

std::string post(const std::string& path, const std::string& body) {
  return "POST " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// One API: the endpoints a fuzzed body goes to, and a normal request with what its answer holds
// (the word service streams the prompt's words back: "User: still serving Assistant:").
struct Target {
  std::vector<std::string> paths;
  std::string normal;
};

Target target_for(clusterctl::fuzz::FuzzApi api) {
  using clusterctl::fuzz::FuzzApi;
  const std::string messages = R"("messages":[{"role":"user","content":"still serving"}])";
  switch (api) {
    case FuzzApi::ollama:
      return {{"/api/chat", "/api/generate"},
              post("/api/chat", R"({"model":"word-stream-test","stream":false,)" + messages + "}")};
    case FuzzApi::anthropic:
      return {{"/v1/messages"},
              post("/v1/messages", R"({"model":"word-stream-test","max_tokens":64,)" + messages + "}")};
    case FuzzApi::openai:
      return {{"/v1/chat/completions", "/v1/completions"},
              post("/v1/chat/completions", R"({"model":"word-stream-test","max_tokens":64,)" + messages + "}")};
    case FuzzApi::http:
    case FuzzApi::all:
      break;
  }
  return {{}, post("/v1/chat/completions", R"({"model":"word-stream-test","max_tokens":64,)" + messages + "}")};
}

const Target& target() {
  static const Target t = target_for(clusterctl::fuzz::fuzz_api_from_env());
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)target();  // an unknown CLUSTERCTL_FUZZ_API stops here, before the first input
  clusterctl::server::testing::WordStreamTestOptions so;
  so.step_delay = std::chrono::milliseconds(0);
  static auto* service = new clusterctl::server::testing::WordStreamTestService(so);
  ServerOptions o;
  o.port = 0;
  o.max_body_bytes = 1 << 16;
  o.cors_origins = {"https://app.example"};
  static auto* server = new HttpServer(o, *service);  // lives for the whole run
  server->start();
  g_port = server->port();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> sends;
  for (const auto& path : target().paths) sends.push_back(post(path, input));
  if (sends.empty()) sends.push_back(input);  // raw bytes on the connection
  for (const auto& bytes : sends) {
    if (!send_and_read(bytes, nullptr)) {
      std::fprintf(stderr, "the server kept a half-closed connection open for 15 s\n");
      std::abort();
    }
  }
  std::string answer;
  if (!send_and_read(target().normal, &answer) || answer.rfind("HTTP/1.1 200 ", 0) != 0 ||
      answer.find("still serving Assistant:") == std::string::npos) {
    std::string metrics;
    send_and_read("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", &metrics);
    std::fprintf(stderr, "after that input a normal request got:\n%s\n(%zu bytes; errno %d)\nmetrics:\n%s\n",
                 answer.substr(0, 2000).c_str(), answer.size(), errno, metrics.c_str());
    std::abort();
  }
  return 0;
}
