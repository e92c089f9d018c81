#pragma once
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace clusterctl::ssh {

// Runs fn(0) .. fn(n-1), one thread each, and waits for all. Nodes are few (2..8) and the work
// is network-bound, so a thread per node is the simplest thing that overlaps the round trips.
// `fn` must not throw; catch per node and record the outcome.
template <typename Fn>
void for_each_node_in_parallel(size_t n, Fn fn) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t i = 0; i < n; ++i) threads.emplace_back([&fn, i] { fn(i); });
  for (auto& t : threads) t.join();
}

}  // namespace clusterctl::ssh
