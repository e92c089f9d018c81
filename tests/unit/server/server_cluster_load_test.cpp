// The cluster-at-a-glance figures: LoadHistory's buckets (tokens/s, queue depth, each rank's
// compute and communication per decode step), the per-rank lines of /metrics and /v1/cluster's
// JSON, and the figures a real scheduler gathers from its ranks (stories260K, world size 1).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "tests/unit/shared_data.h"
#include "worker/server/cluster_view.h"
#include "worker/server/engine_generation_service.h"

namespace clusterctl::server {
namespace {

using Clock = LoadHistory::Clock;

ModelInfo model_named(const std::string& id) {
  ModelInfo m;
  m.id = id;
  return m;
}
using std::chrono::seconds;

// Of comm_s, a quarter on the link and the rest waiting (the split is the collectives' to check).
RankFigures decoded(uint64_t steps, double step_s, double comm_s, uint64_t bytes) {
  RankFigures f;
  f.steps = f.decode_steps = steps;
  f.step_seconds = f.decode_step_seconds = step_s;
  f.comm_seconds = f.decode_comm_seconds = comm_s;
  f.comm_link_seconds = f.decode_comm_link_seconds = comm_s / 4;
  f.comm_wait_seconds = f.decode_comm_wait_seconds = comm_s - comm_s / 4;
  f.bytes_sent = f.decode_bytes_sent = bytes;
  f.resident_bytes = 100 << 20;
  return f;
}

TEST(LoadHistory, BucketsHoldTokensQueueAndEachRanksGrowthPerDecodeStep) {
  LoadHistory h;
  const auto t0 = Clock::now();
  h.observe_ranks({decoded(10, 1.0, 0.2, 1000), decoded(10, 1.0, 0.5, 1000)}, t0);
  h.add_tokens(20, t0 + seconds(1));
  h.observe_queue(3, 2, t0 + seconds(1));
  // 40 more decode steps: rank 0 spent 2 s (0.4 s in collectives), rank 1 2 s (1.2 s).
  h.observe_ranks({decoded(50, 3.0, 0.6, 5000), decoded(50, 3.0, 1.7, 9000)}, t0 + seconds(1));
  const auto points = h.points(t0 + seconds(1));
  ASSERT_EQ(points.size(), LoadHistory::kBuckets);
  const LoadPoint& now = points.back();
  EXPECT_GT(now.tokens_per_second, 0);
  EXPECT_EQ(now.queue_depth, 3u);
  EXPECT_EQ(now.running, 2u);
  ASSERT_EQ(now.ranks.size(), 2u);
  // The first report's steps count too (from zero): 50 steps in all in this bucket.
  EXPECT_EQ(now.ranks[0].decode_steps, 50u);
  EXPECT_NEAR(now.ranks[0].comm_ms, 600.0 / 50, 1e-9);
  EXPECT_NEAR(now.ranks[0].compute_ms, 2400.0 / 50, 1e-9);
  EXPECT_NEAR(now.ranks[1].comm_ms, 1700.0 / 50, 1e-9);
  EXPECT_NEAR(now.ranks[1].link_ms, 1700.0 / 4 / 50, 1e-9);
  EXPECT_NEAR(now.ranks[1].wait_ms, 1700.0 * 3 / 4 / 50, 1e-9);
  EXPECT_NEAR(now.ranks[1].bytes_sent, 9000.0 / 50, 1e-9);
  // Every older bucket is idle.
  for (size_t i = 0; i + 1 < points.size(); ++i) {
    EXPECT_EQ(points[i].tokens_per_second, 0) << i;
    EXPECT_EQ(points[i].ranks[0].decode_steps, 0u) << i;
  }
  const auto per = h.per_token(seconds(60), t0 + seconds(1));
  ASSERT_EQ(per.size(), 2u);
  EXPECT_NEAR(per[1].comm_ms, 1700.0 / 50, 1e-9);
  EXPECT_NEAR(per[1].link_ms + per[1].wait_ms, per[1].comm_ms, 1e-9);
}

TEST(LoadHistory, StaysBoundedAndFallsBackToTotalsWhenTheWindowWasIdle) {
  LoadHistory h;
  const auto t0 = Clock::now();
  h.observe_ranks({decoded(4, 0.4, 0.1, 400)}, t0);
  for (int s = 0; s < 2000; s += 3) h.add_tokens(1, t0 + seconds(s));
  EXPECT_EQ(h.points(t0 + seconds(2000)).size(), LoadHistory::kBuckets);
  // Nothing decoded in the last minute: the figures since the start.
  const auto per = h.per_token(seconds(60), t0 + seconds(2000));
  ASSERT_EQ(per.size(), 1u);
  EXPECT_EQ(per[0].decode_steps, 4u);
  EXPECT_NEAR(per[0].comm_ms, 25.0, 1e-9);
  EXPECT_NEAR(per[0].link_ms, 25.0 / 4, 1e-9);
  EXPECT_NEAR(per[0].compute_ms, 75.0, 1e-9);
}

TEST(ClusterView, MetricsAndJsonCarryEachRankWithItsNodeAndLinks) {
  std::vector<ClusterNode> nodes = {{0, "mini1", "rank 0 (API and model)", "q_heads [0,4)", 3000, "thunderbolt"},
                                    {1, "mini2", "worker", "q_heads [4,8)", 1000, "thunderbolt"},
                                    {2, "mini2", "worker", "q_heads [8,12)", 1000, "thunderbolt"}};
  LoadHistory h;
  const auto t0 = Clock::now();
  h.observe_ranks({decoded(10, 1.0, 0.2, 1000), decoded(10, 1.0, 0.5, 1000), decoded(10, 1.0, 0.3, 1000)}, t0);
  ClusterLoad load{h.totals(), h.per_token(seconds(60), t0), h.points(t0), "mpi; emulated link: latency 300 us"};
  const std::string text = cluster_prometheus_text(nodes, load);
  EXPECT_NE(text.find("clusterctl_rank_comm_ms_per_token{rank=\"1\",node=\"mini2\"} 50\n"), std::string::npos) << text;
  EXPECT_NE(text.find("clusterctl_rank_compute_ms_per_token{rank=\"0\",node=\"mini1\"} 80\n"), std::string::npos);
  EXPECT_NE(text.find("clusterctl_rank_comm_link_ms_per_token{rank=\"1\",node=\"mini2\"} 12.5\n"), std::string::npos);
  EXPECT_NE(text.find("clusterctl_rank_comm_wait_ms_per_token{rank=\"1\",node=\"mini2\"} 37.5\n"), std::string::npos);
  EXPECT_NE(text.find("clusterctl_rank_bytes_sent_per_token{rank=\"1\",node=\"mini2\"} 100\n"), std::string::npos);
  EXPECT_NE(text.find("clusterctl_rank_resident_bytes{rank=\"2\",node=\"mini2\"} 104857600\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE clusterctl_rank_comm_seconds_total counter\n"), std::string::npos);

  const auto j = cluster_json(model_named("m"), nodes, ServiceStats{}, load, 1.5);
  ASSERT_EQ(j["nodes"].size(), 3u);
  EXPECT_DOUBLE_EQ(j["nodes"][0]["model_fraction"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(j["nodes"][1]["comm_ms_per_token"].get<double>(), 50);
  EXPECT_DOUBLE_EQ(j["nodes"][1]["comm_link_ms_per_token"].get<double>(), 12.5);
  EXPECT_DOUBLE_EQ(j["nodes"][1]["comm_wait_ms_per_token"].get<double>(), 37.5);
  ASSERT_EQ(j["links"].size(), 3u);  // every pair
  EXPECT_EQ(j["links"][0]["type"], "thunderbolt");
  EXPECT_EQ(j["links"][2]["type"], "shared memory");  // ranks 1 and 2 on one host
  EXPECT_EQ(j["history"]["points"].size(), LoadHistory::kBuckets);
  EXPECT_EQ(j["allreduce"], "mpi; emulated link: latency 300 us");
}

TEST(ClusterView, ARankNotMeasuredYetHasNoFiguresButItsShare) {
  std::vector<ClusterNode> nodes = {{0, "a", "rank 0", "", 10, ""}, {1, "b", "worker", "", 10, ""}};
  const ClusterLoad load;
  const std::string text = cluster_prometheus_text(nodes, load);
  EXPECT_EQ(text.find("clusterctl_rank_comm_ms_per_token{"), std::string::npos) << text;
  EXPECT_NE(text.find("clusterctl_rank_weight_bytes{rank=\"1\",node=\"b\"} 10\n"), std::string::npos);
  const auto j = cluster_json(model_named("m"), nodes, ServiceStats{}, load, 0);
  EXPECT_TRUE(j["nodes"][1]["comm_ms_per_token"].is_null());
  EXPECT_EQ(j["links"][0]["type"], "tcp");
}

// The real scheduler: its ranks report (here one, the local communicator) and the history fills.
TEST(ClusterLoad, TheSchedulerGathersItsRanksFiguresAndTheirHistory) {
  CLUSTERCTL_REQUIRE_SHARED(model, "models/stories260K.gguf");
  EngineServiceOptions o;
  o.model_path = model;
  o.engine.threads = 1;
  o.engine.n_ctx = 256;
  o.scheduler.parallel = 2;
  EngineGenerationService service(o);
  std::mutex m;
  std::condition_variable cv;
  int done = 0, generated = 0;
  for (int i = 0; i < 2; ++i) {
    GenerationRequest r;
    r.prompt = "Once upon a time";
    r.sampling.temperature = 0;
    r.max_tokens = 24;
    service.submit(r, {{},
                       [&](FinishReason, Usage usage, const std::string&) {
                         std::lock_guard lock(m);
                         ++done;
                         generated += usage.completion_tokens;
                         cv.notify_all();
                       },
                       {}});
  }
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done == 2; }));
  }
  // The scheduler reports as it goes idle; give it the moment to.
  ClusterLoad load;
  ASSERT_GE(generated, 4);
  for (int i = 0; i < 200 && (load.ranks.empty() || load.ranks[0].decode_steps == 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    load = service.load();
  }
  ASSERT_EQ(load.ranks.size(), 1u);
  // Both sequences' tokens after the first come from decode steps (one step serves both).
  EXPECT_GE(load.ranks[0].decode_steps, static_cast<uint64_t>(generated / 2 - 1));
  EXPECT_GT(load.ranks[0].decode_step_seconds, 0);
  EXPECT_GT(load.ranks[0].resident_bytes, 0u);
  ASSERT_EQ(load.per_token.size(), 1u);
  EXPECT_GT(load.per_token[0].compute_ms, 0);
  EXPECT_EQ(load.per_token[0].comm_ms, 0);  // one process: no collective waits
  EXPECT_EQ(load.per_token[0].link_ms, 0);
  EXPECT_EQ(load.per_token[0].wait_ms, 0);
  double tokens = 0;
  for (const auto& p : load.history) tokens += p.tokens_per_second * LoadHistory::kBucketSeconds;
  EXPECT_GE(tokens, generated - 0.01);  // the newest bucket's rate is over its elapsed part: not fewer
  EXPECT_GT(service.nodes()[0].weight_bytes, 0u);
}

}  // namespace
}  // namespace clusterctl::server
