#pragma once
// Splits a server-sent-event stream (bytes in arbitrary pieces) into the payloads of its
// "data:" lines, one per event, as the OpenAI streaming format sends them.
#include <functional>
#include <string>
#include <string_view>

namespace clusterctl::http {

class SseParser {
 public:
  // Called with each event's data (several data lines joined by '\n'); return false to stop.
  using OnData = std::function<bool(const std::string& data)>;
  explicit SseParser(OnData on_data) : on_data_(std::move(on_data)) {}

  // Returns false once on_data asked to stop (the rest of the stream is ignored).
  bool feed(std::string_view bytes);
  // At the end of the stream: delivers an event left without its closing blank line.
  bool finish();

 private:
  bool line(std::string_view l);
  bool dispatch();

  OnData on_data_;
  std::string pending_;  // an incomplete line
  std::string data_;     // the data of the event being read
  bool has_data_ = false;
  bool stopped_ = false;
};

}  // namespace clusterctl::http
