#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace clusterctl {

// A read-only memory map of a whole file. Pages are read on first touch, so a rank
// that reads only its own slices of a tensor only makes those pages resident.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Lets the kernel drop this process's resident pages of [p, p + n) of a read-only file map (the
// whole pages inside the range; the page cache keeps them, a later read maps them again).
void drop_resident_pages(const void* p, size_t n);

}  // namespace clusterctl
