#pragma once
// Streams a byte range of a local file into the standard input of a command on the node (e.g.
// `cat >> FILE`) over one SSH exec channel. Unlike libssh 0.10's sftp_write, which waits for the
// answer to every write before sending the next, the channel keeps the server's whole window
// (2 MiB with OpenSSH) in flight, so a copy runs at the link's or the cipher's speed.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "controller/ssh/sha256.h"
#include "controller/ssh/ssh_session.h"

namespace clusterctl::ssh {

// Sends local[from, from + count) to `command`'s stdin, then EOF, and waits for it to exit.
// `sent(n)` is called with the bytes handed to SSH so far (at most a window ahead of the node).
// Throws SshError(sftp) when the command fails (its exit status and stderr in the message),
// when the node stops taking data for `stall_timeout`, or clusterctl::Error when `local` cannot be read.
// `hash`, when given, is fed every byte sent, in order. Returns what the command printed on its
// standard output (the first 4 KiB). When `stop` turns non-zero (a signal noted) the channel is
// closed within about a second and SshError(interrupted) thrown: the command on the node reads
// the end of its input and exits, keeping what it wrote.
std::string stream_file_to_command(SshSession& session, const std::string& command, const std::string& local,
                                   uint64_t from, uint64_t count, const std::function<void(uint64_t sent)>& sent,
                                   Sha256* hash = nullptr,
                                   std::chrono::seconds stall_timeout = std::chrono::seconds(60),
                                   const std::atomic<int>* stop = nullptr);

}  // namespace clusterctl::ssh
