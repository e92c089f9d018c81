#include "controller/launch/http_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef MSG_NOSIGNAL  // macOS: SO_NOSIGPIPE on the socket instead
#define MSG_NOSIGNAL 0
#endif

namespace clusterctl::launch {
namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? int(left) : 0;
}

}  // namespace

std::optional<HttpReply> http_get(const std::string& endpoint, const std::string& path, std::chrono::milliseconds timeout,
                                  const std::string& bearer_token, std::string* why) {
  auto set_why = [&](const std::string& w) {
    if (why) *why = w;
    return std::nullopt;
  };
  std::string hostport = endpoint.starts_with("http://") ? endpoint.substr(7) : endpoint;
  if (auto slash = hostport.find('/'); slash != std::string::npos) hostport.resize(slash);
  const size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) return set_why("endpoint " + endpoint + " has no port");
  const std::string host = hostport.substr(0, colon), port = hostport.substr(colon + 1);
  const auto deadline = Clock::now() + timeout;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return set_why("cannot resolve " + host + ": " + gai_strerror(rc));
  int fd = -1;
  std::string last_error = "no address";
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last_error = std::strerror(errno);
      close(fd), fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, ms_left(deadline)) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      last_error = err ? std::strerror(err) : "timed out";
      close(fd), fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) return set_why("cannot connect to " + hostport + ": " + last_error);

  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + hostport + "\r\nConnection: close\r\n";
  if (!bearer_token.empty()) request += "Authorization: Bearer " + bearer_token + "\r\n";
  request += "\r\n";
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) sent += size_t(n);
    else if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, ms_left(deadline)) != 1) break;
    } else break;
  }
  std::string response;
  char buf[8192];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms_left(deadline)) != 1) break;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    response.append(buf, size_t(n));
  }
  close(fd);
  if (!response.starts_with("HTTP/1.")) return set_why(response.empty() ? "no answer from " + hostport + " in time"
                                                                         : "not an HTTP answer from " + hostport);
  HttpReply reply;
  reply.status = std::atoi(response.c_str() + response.find(' ') + 1);
  const size_t body = response.find("\r\n\r\n");
  if (body != std::string::npos) reply.body = response.substr(body + 4);
  // Chunked bodies are only used for streams, which these probes never ask for.
  return reply;
}

}  // namespace clusterctl::launch
