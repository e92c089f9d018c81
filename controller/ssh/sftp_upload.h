#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "controller/ssh/ssh_session.h"

namespace clusterctl::ssh {

struct UploadResult {
  uint64_t size = 0;          // bytes of the file
  uint64_t resumed_from = 0;  // bytes already on the node from an earlier, interrupted copy
  uint64_t bytes_sent = 0;    // bytes that went over the wire this time
  bool already_there = false; // the node held an identical file: nothing was sent
  std::string sha256;         // of the local file, and (verified) of the remote one
};

// (bytes of the file now on the node, total bytes)
using UploadProgress = std::function<void(uint64_t done, uint64_t total)>;

// Copies `local` to `remote` on the node over SFTP. Resumable: a shorter remote file is taken as an
// interrupted copy and appended to from its size; afterwards the remote SHA-256 (sha256sum or
// shasum on the node) must equal the local one, else the copy is redone once from the start.
// A remote file of the same size and checksum is left alone. The remote folder is created.
// "~/" at the start of `remote` means the login user's home. Throws SshError(sftp).
UploadResult sftp_upload(SshSession& session, const std::string& local, const std::string& remote,
                         const UploadProgress& progress = {});

// The SHA-256 of a file on the node, or "" when it does not exist.
std::string remote_sha256(SshSession& session, const std::string& remote);

}  // namespace clusterctl::ssh
