#include "controller/http/sse_parser.h"

namespace clusterctl::http {

bool SseParser::feed(std::string_view bytes) {
  if (stopped_) return false;
  pending_.append(bytes);
  size_t start = 0;
  for (;;) {
    const size_t end = pending_.find('\n', start);
    if (end == std::string::npos) break;
    std::string_view l(pending_.data() + start, end - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    start = end + 1;
    if (!line(l)) {
      stopped_ = true;
      return false;
    }
  }
  pending_.erase(0, start);
  return true;
}

bool SseParser::finish() {
  if (stopped_) return false;
  if (!pending_.empty()) {
    std::string last = std::move(pending_);
    pending_.clear();
    if (!line(last)) return !(stopped_ = true);
  }
  return dispatch();
}

bool SseParser::line(std::string_view l) {
  if (l.empty()) return dispatch();
  if (l.front() == ':') return true;  // comment (keep-alive)
  const auto colon = l.find(':');
  std::string_view field = l.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
  }
  return true;  // event:, id:, retry: carry nothing the OpenAI format uses
}

bool SseParser::dispatch() {
  if (!has_data_) return true;
  std::string data = std::move(data_);
  data_.clear();
  has_data_ = false;
  return on_data_(data);
}

}  // namespace clusterctl::http
