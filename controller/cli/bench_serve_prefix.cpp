#include "controller/cli/bench_serve_prefix.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "controller/http/openai_stream.h"
#include "worker/common/error.h"

namespace clusterctl::cli {
namespace {

// Words for prompts of a given length; a fixed pseudo-random order, so runs are comparable.
constexpr const char* kWords[] = {"the",   "river", "stone", "light",  "quiet", "garden", "winter", "market",
                                  "paper", "north", "bread", "silver", "cloud", "engine", "letter", "forest",
                                  "smile", "tower", "salt",  "window", "green", "harbor", "music",  "orange"};

std::string words(size_t n, uint64_t seed) {
  std::string out;
  uint64_t x = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    out += (i == 0 ? "" : " ") + std::string(kWords[(x >> 33) % std::size(kWords)]);
    if (i % 12 == 11) out += ".";
  }
  return out;
}

nlohmann::json post(const http::HttpClient& client, const std::string& path, const nlohmann::json& body) {
  const http::Response r = client.post_json(path, body.dump());
  if (r.status != 200) throw http::ApiStatusError(r.status, http::describe_status(client, r));
  return nlohmann::json::parse(r.body);
}

// Text of exactly `n` of the server's tokens (no BOS): words, cut in the server's own tokens.
std::string text_of_tokens(const http::HttpClient& client, int n, uint64_t seed) {
  try {
    nlohmann::json ids = post(client, "/tokenize", {{"content", words(static_cast<size_t>(n), seed)}})["tokens"];
    if (ids.size() > static_cast<size_t>(n)) ids.erase(ids.begin() + n, ids.end());
    return post(client, "/detokenize", {{"tokens", ids}})["content"].get<std::string>();
  } catch (const http::ApiStatusError& e) {
    throw Error("--shared-prefix sizes its prompts with the server's POST /tokenize and /detokenize, which failed (" +
                std::string(e.what()) + "); run it against clusterctl serve or llama-server");
  }
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace

nlohmann::json run_prefix_bench(const http::HttpClient& client, const PrefixBenchOptions& o, bool json) {
  if (o.prefix_tokens < 1 || o.new_tokens < 1 || o.rounds < 1)
    throw Error("--shared-prefix, --new-tokens and --rounds must be at least 1");
  const std::string prefix = text_of_tokens(client, o.prefix_tokens, 1);
  auto request = [&](int round, bool cache) {
    // Each round's own part starts with its own number, so only the prefix is shared.
    return nlohmann::json{{"model", o.model},
                          {"prompt", prefix + "\n\n" + std::to_string(round) + " " +
                                         text_of_tokens(client, o.new_tokens - 3, 100 + round)},
                          {"max_tokens", o.n_predict},
                          {"temperature", 0},
                          {"return_token_ids", true},
                          {"cache_prompt", cache}};
  };
  // The first request fills the cache with the prefix (and pages the model in); not timed.
  http::stream_completion(client, http::ApiKind::completions, request(0, true), nullptr);
  if (!json) {
    std::printf(
        "shared prefix of %d tokens + %d new, max_tokens %d, %d rounds (with and without the cache "
        "interleaved)\n%6s %8s %14s %14s %8s %10s\n",
        o.prefix_tokens, o.new_tokens, o.n_predict, o.rounds, "round", "prompt", "TTFT uncached", "TTFT cached",
        "reused", "same text");
  }
  std::vector<double> with, without;
  int same = 0;
  nlohmann::json rounds = nlohmann::json::array();
  for (int r = 1; r <= o.rounds; ++r) {
    // With the cache first: the slot still holds the previous round's prompt, of which only the
    // prefix is this round's.
    const http::StreamResult c = http::stream_completion(client, http::ApiKind::completions, request(r, true), nullptr);
    const http::StreamResult u =
        http::stream_completion(client, http::ApiKind::completions, request(r, false), nullptr);
    const bool identical = c.text == u.text && c.token_ids == u.token_ids;
    same += identical ? 1 : 0;
    with.push_back(c.time_to_first_token_s);
    without.push_back(u.time_to_first_token_s);
    rounds.push_back({{"prompt_tokens", c.prompt_tokens.value_or(-1)},
                      {"cached_tokens", c.cached_tokens.value_or(-1)},
                      {"ttft_uncached_s", u.time_to_first_token_s},
                      {"ttft_cached_s", c.time_to_first_token_s},
                      {"identical", identical}});
    if (!json) {
      std::printf("%6d %8d %13.3fs %13.3fs %8d %10s\n", r, c.prompt_tokens.value_or(-1), u.time_to_first_token_s,
                  c.time_to_first_token_s, c.cached_tokens.value_or(-1), identical ? "yes" : "NO");
      std::fflush(stdout);
    }
  }
  const double speedup = mean(with) > 0 ? mean(without) / mean(with) : 0;
  if (!json) {
    std::printf("mean TTFT uncached %.3fs, cached %.3fs: %.1fx faster; same text and tokens in %d of %d rounds\n",
                mean(without), mean(with), speedup, same, o.rounds);
  }
  return {{"shared_prefix_tokens", o.prefix_tokens},
          {"new_tokens", o.new_tokens},
          {"max_tokens", o.n_predict},
          {"rounds", rounds},
          {"ttft_uncached_mean_s", mean(without)},
          {"ttft_cached_mean_s", mean(with)},
          {"speedup", speedup},
          {"identical_rounds", same}};
}

}  // namespace clusterctl::cli
