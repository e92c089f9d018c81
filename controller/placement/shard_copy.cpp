#include "controller/placement/shard_copy.h"

#include <chrono>
#include <filesystem>
#include <optional>

#include "controller/launch/step_error.h"
#include "controller/placement/copy_progress.h"
#include "controller/ssh/parallel.h"
#include "controller/ssh/sftp_upload.h"
#include "worker/common/human_bytes.h"

namespace clusterctl::placement {
namespace fs = std::filesystem;

std::string absolute_on_node(preflight::NodeShell& shell, const std::string& path) {
  if (!path.starts_with("~/") && path != "~") return path;
  auto r = shell.run("cd && pwd", std::chrono::seconds(15));
  std::string home = r.out.substr(0, r.out.find('\n'));
  if (r.status != 0 || home.empty() || home[0] != '/')
    throw Error("cannot find the login user's home folder (" + r.err + ")");
  return path == "~" ? home : home + path.substr(1);
}

std::vector<NodeCopy> copy_shards(const config::ClusterConfig& c,
                                  std::vector<std::unique_ptr<preflight::NodeShell>>& shells, const ShardSet& shards,
                                  const RankSplit& split, std::FILE* out, const std::atomic<int>* stop) {
  std::vector<NodeCopy> copies(c.nodes.size());
  std::vector<std::optional<launch::StepError>> errors(c.nodes.size());
  CopyProgress progress(shards.total_bytes, out);
  ssh::for_each_node_in_parallel(c.nodes.size(), [&](size_t i) {
    const auto& node = c.nodes[i];
    NodeCopy& copy = copies[i];
    auto t0 = std::chrono::steady_clock::now();
    try {
      auto* remote = dynamic_cast<preflight::SshShell*>(shells[i].get());
      if (!remote) {  // this machine: the controller's cut is the node's
        copy.in_place = true;
        copy.shard_dir = shards.dir;
        for (int r = 0; r < node.ranks; ++r) copy.shard_paths.push_back(shards.files[size_t(split.first_rank[i] + r)]);
        copy.files = copy.files_already_there = node.ranks;
        return;
      }
      copy.shard_dir = (fs::path(absolute_on_node(*remote, node.cache_dir)) / shards.key).string();
      for (int r = 0; r < node.ranks && !(stop && *stop); ++r) {
        const std::string& local = shards.files[size_t(split.first_rank[i] + r)];
        const std::string target = (fs::path(copy.shard_dir) / fs::path(local).filename()).string();
        uint64_t reported = 0;
        ssh::UploadOptions options;
        options.cache_local_sha256 = true;  // the cut is hashed once, not on every up
        options.stop = stop;
        auto result = ssh::sftp_upload(
            remote->session(), local, target,
            [&](uint64_t done, uint64_t) {
              if (done > reported) progress.add(done - reported);
              reported = done;
            },
            options);
        copy.bytes_sent += result.bytes_sent;
        copy.files += 1;
        copy.files_already_there += result.already_there ? 1 : 0;
        copy.shard_paths.push_back(target);
      }
    } catch (const ssh::SshError& e) {
      errors[i].emplace(node.name, "copy shards", e.cause(), e.fix());
    } catch (const std::exception& e) {
      errors[i].emplace(node.name, "copy shards", e.what(),
                        "check free disk space and permissions of '" + node.cache_dir + "' on " + node.name);
    }
    copy.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
  progress.finish();
  if (stop && *stop)
    throw ssh::SshError(ssh::SshFailure::interrupted, "the copies were stopped on every node",
                        "each node keeps what it received, and the next copy resumes from there");
  for (auto& e : errors)
    if (e) throw *e;
  for (size_t i = 0; i < c.nodes.size(); ++i) {
    const NodeCopy& copy = copies[i];
    const std::string shard_word = copy.files == 1 ? "shard" : std::to_string(copy.files) + " shards";
    if (copy.in_place)
      std::fprintf(out, "  %s: 0 B copied, %s used in place on this machine (%s)\n", c.nodes[i].name.c_str(),
                   shard_word.c_str(), copy.shard_dir.c_str());
    else if (copy.bytes_sent == 0 && copy.files_already_there == copy.files)
      std::fprintf(out, "  %s: 0 B copied, %s already on node (%s)\n", c.nodes[i].name.c_str(), shard_word.c_str(),
                   copy.shard_dir.c_str());
    else
      std::fprintf(out, "  %s: %s copied (%s, %d already there) in %.1f s, %s, to %s\n", c.nodes[i].name.c_str(),
                   human_bytes(copy.bytes_sent).c_str(), shard_word.c_str(), copy.files_already_there, copy.seconds,
                   format_rate(copy.seconds > 0 ? copy.bytes_sent / copy.seconds : 0).c_str(), copy.shard_dir.c_str());
  }
  return copies;
}

}  // namespace clusterctl::placement
