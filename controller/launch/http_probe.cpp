#include "controller/launch/http_probe.h"

#include "controller/http/http_client.h"

namespace clusterctl::launch {

std::optional<HttpReply> http_get(const std::string& endpoint, const std::string& path,
                                  std::chrono::milliseconds timeout, const std::string& bearer_token,
                                  std::string* why) {
  try {
    http::ClientOptions options;
    options.connect_timeout = timeout;
    options.read_timeout = timeout;
    if (!bearer_token.empty()) options.bearer_token = bearer_token;
    http::HttpClient client(http::Url::parse(endpoint), options);
    auto r = client.get(path);
    return HttpReply{r.status, r.body};
  } catch (const Error& e) {  // ConnectionError, or an endpoint that is not a URL
    if (why) *why = e.what();
    return std::nullopt;
  }
}

}  // namespace clusterctl::launch
