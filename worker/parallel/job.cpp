#include "worker/parallel/job.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "worker/common/error.h"
#include "worker/model/model.h"
#include "worker/model/shard_plan.h"

namespace clusterctl::parallel {
namespace {

constexpr size_t kMessageBytes = 1024;  // per rank, in the gathered error table

std::vector<std::string> gather_strings(collectives::Communicator& comm, const std::string& s) {
  std::vector<char> send(kMessageBytes, 0), recv;
  std::memcpy(send.data(), s.data(), std::min(s.size(), kMessageBytes - 1));
  if (comm.rank() == 0) recv.resize(kMessageBytes * comm.size());
  comm.gather(send.data(), kMessageBytes, recv.data(), 0);
  std::vector<std::string> out;
  if (comm.rank() == 0)
    for (int r = 0; r < comm.size(); ++r) out.emplace_back(recv.data() + r * kMessageBytes);
  return out;
}

}  // namespace

void agree(collectives::Communicator& comm, const std::string& host, const std::string& error) {
  const auto errors =
      gather_strings(comm, error.empty() ? std::string() : collectives::rank_name(comm.rank(), host) + ": " + error);
  int failed = 0;
  std::string message;
  if (comm.rank() == 0) {
    // Identical causes (an option every rank rejects) are reported once.
    std::vector<std::string> seen;
    for (const auto& e : errors) {
      if (e.empty()) continue;
      ++failed;
      const std::string cause = e.substr(e.find(": ") + 2);
      if (std::find(seen.begin(), seen.end(), cause) != seen.end()) continue;
      seen.push_back(cause);
      message += (message.empty() ? "" : "\n") + e;
    }
  }
  comm.broadcast(&failed, sizeof failed, 0);
  if (failed) throw JobRefused(message.empty() ? "another rank failed to set up" : message);
}

RankModel open_rank_model(const std::string& model_path, int rank, int world_size, const std::vector<double>& split,
                          std::optional<model::Layout> layout) {
  namespace fs = std::filesystem;
  RankModel m;
  std::string path = model_path;
  if (fs::is_directory(path))
    path = model::find_shard_in_dir(path, rank, world_size);
  else if (!fs::exists(path))
    throw Error("the model file " + path + " does not exist on this node");
  m.file = std::make_unique<gguf::GgufFile>(path);
  const model::HParams hp = model::Model::read_hparams(*m.file);
  m.shard = model::read_shard_info(*m.file);
  if (m.shard) {
    if (m.shard->world_size != world_size || m.shard->rank != rank)
      throw Error(path + " is the shard for rank " + std::to_string(m.shard->rank) + " of " +
                  std::to_string(m.shard->world_size) + " ranks, but this is rank " + std::to_string(rank) + " of " +
                  std::to_string(world_size) + "; start " + std::to_string(m.shard->world_size) +
                  " ranks, or pass the directory that holds every rank's shard");
    if (!split.empty() && model::format_split(split) != m.shard->split)
      throw Error(path + " was cut with --split '" + m.shard->split + "', not " + model::format_split(split) +
                  "; cut new shards with 'clusterctl shard' or drop --split");
    if (layout && *layout != m.shard->plan.layout() && world_size > 1)
      throw Error(path + " was cut with --layout " + model::layout_name(m.shard->plan.layout()) + ", not " +
                  model::layout_name(*layout) + "; cut new shards with 'clusterctl shard --layout " +
                  model::layout_name(*layout) + "' or drop --layout");
    m.plan = m.shard->plan;
    m.plan.validate(hp);
    m.identity = m.shard->fingerprint + " cut " + m.shard->split + " over " + std::to_string(world_size);
  } else {
    m.plan = model::plan_shards(hp, model::SplitUnits::from_model(*m.file, hp), world_size, split,
                                layout.value_or(model::Layout::split_attention));
    m.identity = model::model_fingerprint(*m.file) + " cut " + model::format_split(split) + " over " +
                 std::to_string(world_size);
  }
  for (const auto& p : m.plan.parts) m.identity += " " + p.describe();
  return m;
}

void agree_same_model(collectives::Communicator& comm, const std::string& host, const RankModel& m) {
  const auto ids = gather_strings(comm, m.identity);
  std::string error;
  if (comm.rank() == 0) {
    for (int r = 1; r < comm.size(); ++r)
      if (ids[r] != ids[0]) {
        error = "rank " + std::to_string(r) + " holds a different model or cut than rank 0 (" + ids[r].substr(0, 16) +
                " vs " + ids[0].substr(0, 16) +
                "); every rank needs the shards cut together from one model by one 'clusterctl shard' run";
        break;
      }
  }
  agree(comm, host, error);
}

void start_orphan_watchdog(int rank, const std::string& host) {
  const pid_t parent = getppid();
  std::thread([=] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      if (getppid() != parent) {
        std::fprintf(stderr, "error: %s: the launcher (mpirun) is gone; this rank stops\n",
                     collectives::rank_name(rank, host).c_str());
        std::_Exit(1);
      }
    }
  }).detach();
}

}  // namespace clusterctl::parallel
