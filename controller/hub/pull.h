#pragma once
// `clusterctl pull`: a model named as on Hugging Face into the hub cache (hub_cache.h), each file
// resumed where an earlier download stopped and checked against the hub's SHA-256 before it is
// renamed into place. run, serve, chat, bench and `up` (a cluster file's `model:`) pull through
// here on the controller; the workers never touch the network.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "controller/hub/model_ref.h"

namespace clusterctl::hub {

struct PulledModel {
  ModelRef ref;
  std::string path;  // the model to open: snapshots/<commit>/<file, or its first part>
  std::string commit;
  std::vector<std::string> files;  // every file's path in the snapshot
  uint64_t bytes = 0;              // of all its files
  uint64_t received = 0;           // bytes downloaded this time
  uint64_t already = 0;            // bytes that were in the cache (whole blobs or a resumed part)
  bool from_cache = false;         // the hub was not asked (HF_HUB_OFFLINE) or could not be reached
};

// Asks the hub (HF_ENDPOINT, HF_TOKEN) which files the name means, downloads what the cache lacks
// and links the snapshot. Progress and notes go to `out`. Without the network (or with
// HF_HUB_OFFLINE=1) a complete copy pulled earlier is used. Throws clusterctl::Error naming the
// cause and the fix.
PulledModel pull_model(const ModelRef& ref, std::FILE* out);

// The copy of the model in the cache, complete, without asking the hub; nullopt when there is none.
std::optional<PulledModel> cached_model(const ModelRef& ref);

// A model argument as a file on this machine: the argument itself when it is not a Hugging Face
// name (or a file of that name exists), else the pulled model's path.
std::string pull_if_named(const std::string& model_arg, std::FILE* out);

}  // namespace clusterctl::hub
