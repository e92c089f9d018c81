#include "controller/ssh/channel_stream.h"

#include <fcntl.h>
#include <libssh/libssh.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace clusterctl::ssh {
namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// libssh's blocking calls wait up to the session timeout (the connect timeout, seconds). While a
// copy streams they wait a second at most, so the stall timeout is checked about every second.
struct WaitSlice {
  ssh_session s;
  long restore;
  WaitSlice(ssh_session session, long restore_seconds) : s(session), restore(restore_seconds) {
    long one = 1;
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &one);
  }
  ~WaitSlice() { ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &restore); }
};

struct Channel {
  ssh_channel ch;
  ~Channel() {
    ssh_channel_close(ch);
    ssh_channel_free(ch);
  }
};

// Whatever the command wrote to stderr so far (it failed): for the message.
std::string drain_stderr(ssh_channel ch) {
  std::string err;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!ssh_channel_is_eof(ch) && std::chrono::steady_clock::now() < deadline) {
    int n = ssh_channel_read_timeout(ch, buf, sizeof buf, 1, 100);
    if (n == SSH_ERROR) break;
    if (n > 0 && err.size() < 4096) err.append(buf, size_t(n));
    if (n <= 0) {  // stdout must be read too, or the channel never reaches EOF
      int m = ssh_channel_read_timeout(ch, buf, sizeof buf, 0, 10);
      if (m == SSH_ERROR) break;
    }
  }
  while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
  return err;
}

// Ends the session's connection once `stop` turns non-zero, while it lives. A blocked send()
// holds libssh until the kernel took a whole buffer (half a MiB: a minute on a slow link), and
// what is queued would go on flowing to the node, its command running until it had. Shutting the
// socket down wakes the send and makes every later call on the session fail at once; closing it
// then resets the connection, which ends the node's session and command.
class ConnectionStopper {
 public:
  ConnectionStopper(ssh_session s, const std::atomic<int>* stop) {
    if (!stop) return;
    watcher_ = std::thread([this, s, stop] {
      std::unique_lock lock(mu_);
      while (!done_) {
        if (*stop) {
          const int fd = ssh_get_fd(s);
          linger reset{1, 0};
          setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
          shutdown(fd, SHUT_RDWR);
          fired_ = true;
          return;
        }
        wake_.wait_for(lock, std::chrono::milliseconds(50));
      }
    });
  }
  ~ConnectionStopper() {
    if (!watcher_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    wake_.notify_one();
    watcher_.join();
  }
  bool fired() {
    std::lock_guard lock(mu_);
    return fired_;
  }

 private:
  std::mutex mu_;
  std::condition_variable wake_;
  bool done_ = false, fired_ = false;
  std::thread watcher_;
};

std::string stream_to_command(SshSession& session, const std::string& command, const std::string& local, uint64_t from,
                              uint64_t count, const std::function<void(uint64_t)>& sent, Sha256* hash,
                              std::chrono::seconds stall_timeout) {
  ssh_session s = static_cast<ssh_session>(session.native_handle());
  const std::string node = session.target().address();
  auto fail = [&](const std::string& what, const std::string& fix) { return SshError(SshFailure::sftp, what, fix); };
  const std::string disk_fix = "check free disk space and permissions of the cache folder on the node";

  Fd in{::open(local.c_str(), O_RDONLY)};
  if (in.fd < 0) throw Error("cannot read " + local + ": " + std::strerror(errno));

  ssh_channel raw = ssh_channel_new(s);
  if (!raw)
    throw fail("cannot open a channel to " + node + ": " + ssh_get_error(s), "check that the node is reachable");
  Channel ch{raw};
  if (ssh_channel_open_session(ch.ch) != SSH_OK || ssh_channel_request_exec(ch.ch, command.c_str()) != SSH_OK)
    throw fail("cannot start the copy on " + node + ": " + ssh_get_error(s),
               "check that sshd on the node allows sessions");

  auto command_failed = [&](uint64_t done) {
    std::string err = drain_stderr(ch.ch);
    int status = ssh_channel_get_exit_status(ch.ch);
    return fail("copying to " + node + " stopped after " + std::to_string(from + done) + " bytes (" +
                    (status >= 0 ? "exit status " + std::to_string(status) : std::string("no exit status")) +
                    (err.empty() ? "" : ": " + err) + ")",
                disk_fix);
  };

  WaitSlice slice(s, session.target().connect_timeout_s);
  const auto started = std::chrono::steady_clock::now();
  std::vector<char> buf(1 << 20);
  uint64_t done = 0;
  while (done < count) {
    const size_t want = size_t(std::min<uint64_t>(buf.size(), count - done));
    ssize_t n = ::pread(in.fd, buf.data(), want, off_t(from + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Error("cannot read " + local + " at byte " + std::to_string(from + done) + ": " +
                  (n == 0 ? "the file got shorter while it was copied" : std::strerror(errno)));
    // Hashed on another core while this one encrypts and sends the same (read-only) bytes.
    std::future<void> hashed;
    if (hash) hashed = std::async(std::launch::async, [&, n] { hash->update(buf.data(), size_t(n)); });
    auto last_progress = std::chrono::steady_clock::now();
    for (size_t off = 0; off < size_t(n);) {
      // Blocking write: returns once the node's window had room for (part of) the data, or with 0
      // after the session timeout (a second here: see WaitSlice).
      const int w = ssh_channel_write(ch.ch, buf.data() + off, uint32_t(size_t(n) - off));
      if (w == SSH_ERROR || !ssh_channel_is_open(ch.ch) || ssh_channel_is_eof(ch.ch)) throw command_failed(done + off);
      if (w == 0) {
        if (std::chrono::steady_clock::now() - last_progress > stall_timeout)
          throw fail(node + " took no data for " + std::to_string(stall_timeout.count()) + " s while copying " + local +
                         " (" + std::to_string(from + done + off) + " of " + std::to_string(from + count) +
                         " bytes sent)",
                     "check the link to the node and its load, then run the command again (the copy resumes)");
        continue;
      }
      off += size_t(w);
      last_progress = std::chrono::steady_clock::now();
    }
    if (hashed.valid()) hashed.get();
    done += uint64_t(n);
    if (sent) sent(done);
  }
  // The EOF goes out behind the data still in flight: up to a window (2 MiB) that a slow link
  // (500 kbit/s: 34 s) has not carried yet. send_eof queues it and then waits for that flush only
  // a WaitSlice, so a timeout there is no failure while the channel is open: the reads below
  // flush the rest, and the command's exit status (it checks the size it got) is the verdict.
  if (ssh_channel_send_eof(ch.ch) != SSH_OK && (!ssh_channel_is_open(ch.ch) || ssh_is_connected(s) == 0))
    throw command_failed(done);
  // Wait for the command to write out what it got and exit: as long as the bytes in flight take
  // at the rate the copy ran (twice that, for a link that slows down), plus the stall timeout.
  char sink[1024];
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const double rate = elapsed > 0.1 ? double(done) / elapsed : 0;  // bytes handed to SSH per second
  const double in_flight = double(std::min<uint64_t>(done, uint64_t(4) << 20));
  const auto drain = std::chrono::seconds(rate > 0 ? int64_t(std::min(2 * in_flight / rate, 3600.0)) : 0);
  auto deadline = std::chrono::steady_clock::now() + stall_timeout + drain;
  std::string err, out;
  while (!ssh_channel_is_eof(ch.ch)) {
    int n = ssh_channel_read_timeout(ch.ch, sink, sizeof sink, 1, 100);
    if (n == SSH_ERROR) break;
    if (n > 0 && err.size() < 4096) err.append(sink, size_t(n));
    n = ssh_channel_read_timeout(ch.ch, sink, sizeof sink, 0, 1);
    if (n == SSH_ERROR) break;
    if (n > 0 && out.size() < 4096) out.append(sink, size_t(n));
    if (std::chrono::steady_clock::now() > deadline)
      throw fail(node + " did not finish writing the copy within " + std::to_string((stall_timeout + drain).count()) +
                     " s after the last byte was sent",
                 "check the link to the node and its load, then " + disk_fix);
  }
  for (int n; (n = ssh_channel_read_timeout(ch.ch, sink, sizeof sink, 0, 0)) > 0;)  // what is left after EOF
    if (out.size() < 4096) out.append(sink, size_t(n));
  int status = ssh_channel_get_exit_status(ch.ch);
  if (status != 0) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    throw fail(
        "copying to " + node + " failed (exit status " + std::to_string(status) + (err.empty() ? "" : ": " + err) + ")",
        disk_fix);
  }
  return out;
}

}  // namespace

std::string stream_file_to_command(SshSession& session, const std::string& command, const std::string& local,
                                   uint64_t from, uint64_t count, const std::function<void(uint64_t)>& sent,
                                   Sha256* hash, std::chrono::seconds stall_timeout, const std::atomic<int>* stop) {
  ConnectionStopper stopper(static_cast<ssh_session>(session.native_handle()), stop);
  try {
    return stream_to_command(session, command, local, from, count, sent, hash, stall_timeout);
  } catch (const Error&) {
    if (!stopper.fired()) throw;
  }
  throw SshError(SshFailure::interrupted, "the copy to " + session.target().address() + " was stopped",
                 "the copies were stopped on every node");
}

}  // namespace clusterctl::ssh
