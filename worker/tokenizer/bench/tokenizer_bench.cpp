// tokenizer_bench: how long a vocabulary takes to load and how fast text turns into ids and back.
//   load: GGUF metadata parse and tokenizer build, each the fastest of --repeat runs.
//   tokenize / detokenize: MB of text per second over the given file, fastest of --repeat runs.
// Every figure is the fastest of repeated runs (the machine is shared and noisy).
// Usage: tokenizer_bench MODEL.gguf TEXT_FILE [--repeat N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "worker/common/error.h"
#include "worker/gguf/gguf_file.h"
#include "worker/tokenizer/stream_decoder.h"
#include "worker/tokenizer/tokenizer.h"

using namespace clusterctl;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the text file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::fprintf(stderr, "usage: tokenizer_bench MODEL.gguf TEXT_FILE [--repeat N]\n");
    return 2;
  }
  int repeat = 5;
  for (int i = 3; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::max(1, std::atoi(argv[i + 1]));
  const std::string text = read_file(argv[2]);

  double parse_ms = std::numeric_limits<double>::max(), build_ms = parse_ms;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    gguf::GgufFile file(argv[1]);
    parse_ms = std::min(parse_ms, ms_since(t0));
    auto t1 = Clock::now();
    tok = tokenizer::Tokenizer::from_gguf(file);
    build_ms = std::min(build_ms, ms_since(t1));
  }

  double encode_ms = std::numeric_limits<double>::max(), decode_ms = encode_ms, stream_ms = encode_ms;
  std::vector<tokenizer::TokenId> ids;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    ids = tok->tokenize(text, false, false);
    encode_ms = std::min(encode_ms, ms_since(t0));
    auto t1 = Clock::now();
    std::string back = tok->detokenize(ids);
    decode_ms = std::min(decode_ms, ms_since(t1));
    auto t2 = Clock::now();
    tokenizer::StreamDecoder dec(*tok);
    size_t streamed = 0;
    for (auto id : ids) streamed += dec.push(id).size();
    streamed += dec.finish().size();
    stream_ms = std::min(stream_ms, ms_since(t2));
    if (back.size() != streamed && back == text) std::fprintf(stderr, "note: stream and detokenize differ in size\n");
  }
  const auto& v = tok->vocab();
  double mb = text.size() / 1e6;
  std::printf("vocab        %s: %s/%s, %zu tokens, %zu merges\n", argv[1], v.model_name().c_str(),
              v.pre_name().empty() ? "-" : v.pre_name().c_str(), v.size(), v.merge_count());
  std::printf("load         metadata parse %.1f ms + tokenizer build %.1f ms (fastest of %d)\n", parse_ms, build_ms,
              repeat);
  std::printf("tokenize     %.2f MB/s (%zu bytes -> %zu ids, %.2f bytes/id)\n", mb / (encode_ms / 1e3), text.size(),
              ids.size(), ids.empty() ? 0.0 : double(text.size()) / ids.size());
  std::printf("detokenize   %.1f MB/s; streaming %.1f M ids/s\n", mb / (decode_ms / 1e3),
              ids.size() / 1e6 / (stream_ms / 1e3));
  return 0;
} catch (const Error& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
