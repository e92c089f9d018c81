// `clusterctl bench-serve URL --concurrency 1,4,16 -n 128`: a load generator for any
// OpenAI-compatible server (ours, llama.cpp's llama-server, ...). For each concurrency C it
// opens C streamed completions at once and reports the aggregate generation tokens/s (all
// streams' tokens over the wall time), the per-stream decode rate and the time to first token.
// With --shared-prefix N it measures the prompt cache instead (bench_serve_prefix.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <thread>

#include "controller/cli/bench_serve_prefix.h"
#include "controller/http/openai_stream.h"
#include "worker/common/error.h"
#include "worker/tools/options.h"

namespace clusterctl::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<int> parse_concurrency(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    int c = 0;
    try {
      size_t used = 0;
      c = std::stoi(item, &used);
      if (used != item.size()) c = 0;
    } catch (const std::exception&) {
      c = 0;
    }
    if (c < 1 || c > 1024) throw Error("--concurrency '" + text + "': give numbers from 1 to 1024, e.g. 1,4,16");
    out.push_back(c);
  }
  if (out.empty()) throw Error("--concurrency is empty: give e.g. 1,4,16");
  return out;
}

struct LevelResult {
  int concurrency = 0;
  int streams_ok = 0;
  long long tokens = 0;
  double wall_s = 0;
  double aggregate_tokens_per_s = 0;
  double stream_tokens_per_s_mean = 0;
  double ttft_mean_s = 0, ttft_max_s = 0;
  std::vector<std::string> errors;
};

double mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

// Each stream's prompt starts with its own number, so no server can answer it from a prompt cache
// filled by an earlier stream (llama-server reuses a slot's matching prefix): every stream pays
// for its own prompt, as distinct users do.
nlohmann::json numbered(nlohmann::json request, int level, int stream) {
  request["prompt"] =
      "Story " + std::to_string(level) + "." + std::to_string(stream) + ": " + request["prompt"].get<std::string>();
  return request;
}

LevelResult run_level(const http::HttpClient& client, const nlohmann::json& request, int concurrency) {
  std::vector<http::StreamResult> results(concurrency);
  std::vector<std::string> errors(concurrency);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int i = 0; i < concurrency; ++i) {
    threads.emplace_back([&, i] {
      try {
        results[i] =
            http::stream_completion(client, http::ApiKind::completions, numbered(request, concurrency, i), nullptr);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  LevelResult r;
  r.concurrency = concurrency;
  r.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> rates, ttfts;
  for (int i = 0; i < concurrency; ++i) {
    if (!errors[i].empty()) {
      r.errors.push_back(errors[i]);
      continue;
    }
    ++r.streams_ok;
    r.tokens += results[i].completion_tokens;
    rates.push_back(results[i].generate_tokens_per_s());
    ttfts.push_back(results[i].time_to_first_token_s);
  }
  r.aggregate_tokens_per_s = r.wall_s > 0 ? static_cast<double>(r.tokens) / r.wall_s : 0;
  r.stream_tokens_per_s_mean = mean(rates);
  r.ttft_mean_s = mean(ttfts);
  r.ttft_max_s = ttfts.empty() ? 0 : *std::max_element(ttfts.begin(), ttfts.end());
  return r;
}

}  // namespace

int bench_serve_main(int argc, char** argv) {
  po::options_description opts("Options");
  opts.add_options()("url", po::value<std::string>()->required(), "the server, e.g. http://127.0.0.1:8080")(
      "concurrency,c", po::value<std::string>()->default_value("1,4,16"), "concurrent streams per level, e.g. 1,4,16")(
      "n-predict,n", po::value<int>()->default_value(128), "max_tokens of each completion")(
      "prompt,p", po::value<std::string>()->default_value("Once upon a time, there was a little robot who"),
      "the prompt of every stream")("model", po::value<std::string>(),
                                    "model field (default: the server's first model)")(
      "token-file", po::value<std::string>(), "file holding the API token")(
      "shared-prefix", po::value<int>(),
      "instead: time to first token of prompts sharing their first N tokens, with the prompt cache and without")(
      "new-tokens", po::value<int>()->default_value(20), "with --shared-prefix: each prompt's own tokens after it")(
      "rounds", po::value<int>()->default_value(5), "with --shared-prefix: requests with and without the cache")(
      "json", po::bool_switch(), "print the results as JSON");
  po::positional_options_description pos;
  pos.add("url", 1);
  auto vm = parse_options(argc, argv,
                          "clusterctl bench-serve URL [--concurrency 1,4,16 | --shared-prefix 1500] [-n 128] [--json]",
                          opts, pos);
  if (!vm) return 0;
  const auto& args = *vm;
  const std::vector<int> levels = parse_concurrency(args["concurrency"].as<std::string>());
  const int n_predict = args["n-predict"].as<int>();
  if (n_predict < 1) throw Error("-n must be at least 1");
  http::ClientOptions co;
  if (args.count("token-file")) co.bearer_token = http::read_token_file(args["token-file"].as<std::string>());
  http::HttpClient client(http::Url::parse(args["url"].as<std::string>()), co);
  const std::string model = args.count("model") ? args["model"].as<std::string>() : http::served_model_id(client);
  if (args.count("shared-prefix")) {
    PrefixBenchOptions prefix{model, args["shared-prefix"].as<int>(), args["new-tokens"].as<int>(),
                              args["rounds"].as<int>(), args["n-predict"].as<int>()};
    const nlohmann::json result = run_prefix_bench(client, prefix, args["json"].as<bool>());
    if (args["json"].as<bool>()) std::cout << result.dump(2) << "\n";
    return 0;
  }

  // Greedy, and asked to run to max_tokens (llama-server honours ignore_eos; a server that does
  // not stops at end-of-text, which the token counts show).
  nlohmann::json request = {{"model", model},
                            {"prompt", args["prompt"].as<std::string>()},
                            {"max_tokens", n_predict},
                            {"temperature", 0},
                            {"ignore_eos", true}};
  // One short request first, so the model's pages are in memory before anything is timed.
  nlohmann::json warmup = numbered(request, 0, 0);
  warmup["max_tokens"] = 4;
  http::stream_completion(client, http::ApiKind::completions, warmup, nullptr);

  const bool json = args["json"].as<bool>();
  nlohmann::json out = nlohmann::json::array();
  if (!json) {
    std::printf("server %s, model %s, max_tokens %d\n", client.url().str().c_str(), model.c_str(), n_predict);
    std::printf("%11s %8s %8s %12s %14s %10s %10s\n", "concurrency", "streams", "tokens", "aggr tok/s", "stream tok/s",
                "TTFT mean", "TTFT max");
  }
  int failures = 0;
  for (int c : levels) {
    LevelResult r = run_level(client, request, c);
    failures += static_cast<int>(r.errors.size());
    if (json) {
      out.push_back({{"concurrency", r.concurrency},
                     {"streams_ok", r.streams_ok},
                     {"generated_tokens", r.tokens},
                     {"wall_s", r.wall_s},
                     {"aggregate_tokens_per_s", r.aggregate_tokens_per_s},
                     {"stream_tokens_per_s_mean", r.stream_tokens_per_s_mean},
                     {"time_to_first_token_mean_s", r.ttft_mean_s},
                     {"time_to_first_token_max_s", r.ttft_max_s},
                     {"errors", r.errors}});
    } else {
      std::printf("%11d %5d/%-2d %8lld %12.1f %14.1f %9.3fs %9.3fs\n", r.concurrency, r.streams_ok, r.concurrency,
                  r.tokens, r.aggregate_tokens_per_s, r.stream_tokens_per_s_mean, r.ttft_mean_s, r.ttft_max_s);
      for (const auto& e : r.errors) std::fprintf(stderr, "  stream failed: %s\n", e.c_str());
      std::fflush(stdout);
    }
  }
  if (json)
    std::cout << nlohmann::json{{"server", client.url().str()},
                                {"model", model},
                                {"max_tokens", n_predict},
                                {"levels", out}}
                     .dump(2)
              << "\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace clusterctl::cli
