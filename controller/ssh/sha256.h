#pragma once
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace clusterctl::ssh {

// SHA-256 (FIPS 180-4), to verify copied shards against `sha256sum` on the node without
// linking a crypto library of our own.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> finish();
  std::string hex_digest();  // finish() as 64 lowercase hex digits

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_ = 0;
};

// The hex SHA-256 of a whole file; throws clusterctl::Error when it cannot be read, and
// SshError(interrupted) within a MiB read once `stop` turns non-zero (a signal noted).
std::string sha256_file(const std::string& path, const std::atomic<int>* stop = nullptr);
// The same, remembered in a hidden ".NAME.sha256" beside the file with its size and modification
// time, so an unchanged multi-GB shard is not hashed again on every `up`. A changed file (size or
// mtime) is hashed again; a record that cannot be written costs only the next hash.
std::string cached_sha256_file(const std::string& path, const std::atomic<int>* stop = nullptr);
// That record's checksum while it still matches the file, else nothing.
std::optional<std::string> recorded_sha256_file(const std::string& path);
// Writes the record for `sha256`, the checksum of the file as it is now (errors ignored).
void record_sha256_file(const std::string& path, const std::string& sha256);

}  // namespace clusterctl::ssh
