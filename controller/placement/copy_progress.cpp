#include "controller/placement/copy_progress.h"

#include <unistd.h>

#include <string>

#include "worker/common/human_bytes.h"

namespace clusterctl::placement {

std::string format_rate(double bytes_per_second) { return human_bytes(uint64_t(bytes_per_second)) + "/s"; }

CopyProgress::CopyProgress(uint64_t total, std::FILE* out, std::string label)
    : total_(total), out_(out), label_(std::move(label)), tty_(isatty(fileno(out))) {
  if (!tty_) return;
  drawer_ = std::thread([this] {
    std::unique_lock lock(m_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_; })) draw(false);
  });
}

CopyProgress::~CopyProgress() { finish(); }

void CopyProgress::finish() {
  {
    std::lock_guard lock(m_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (drawer_.joinable()) drawer_.join();
  if (tty_) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
}

void CopyProgress::draw(bool) {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const uint64_t done = done_.load();
  const double rate = secs > 0 ? done / secs : 0;
  std::string eta = rate > 0 && total_ > done ? std::to_string(int((total_ - done) / rate + 0.5)) + " s" : "-";
  std::fprintf(out_, "\r\033[K%s: %s / %s, %s, ETA %s", label_.c_str(), human_bytes(done).c_str(),
               human_bytes(total_).c_str(), format_rate(rate).c_str(), eta.c_str());
  std::fflush(out_);
}

}  // namespace clusterctl::placement
