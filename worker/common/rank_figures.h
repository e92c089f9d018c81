#pragma once
// One rank's running totals of the forward steps it ran, for the cluster's dashboard, /metrics and
// `clusterctl status`. Every rank keeps its own (parallel::StepLeader, parallel::follow_steps:
// two clock reads a step besides the collectives' own timers); rank 0 gathers them about once a
// second on a step that already runs (StepHeader::kReportFigures), so no step waits for it.
// Plain data of one fixed layout: it travels between ranks as bytes.
#include <cstdint>

namespace clusterctl {

struct RankFigures {
  uint64_t steps = 0;         // forward steps run (prompt and decode)
  uint64_t decode_steps = 0;  // of them, steps of generated tokens only: one token per running sequence
  uint64_t allreduces = 0;
  uint64_t bytes_sent = 0;      // by this rank, all steps
  uint64_t resident_bytes = 0;  // this process's resident memory at the last report
  double step_seconds = 0;      // wall time inside steps (from the step's header on; not idle waits)
  double comm_seconds = 0;      // of it, inside collective calls (sending, and waiting for the other ranks)
  // comm_seconds split (collectives::Communicator::settle_call_log; up to the last report): the
  // collectives' own cost on the critical path (the link, the transport, the sums: each call's
  // shortest time over the ranks) and this rank's waiting in them for slower ranks (or for a core).
  double comm_link_seconds = 0;
  double comm_wait_seconds = 0;
  double decode_step_seconds = 0;  // the same four, decode steps only
  double decode_comm_seconds = 0;
  double decode_comm_link_seconds = 0;
  double decode_comm_wait_seconds = 0;
  uint64_t decode_bytes_sent = 0;
};

// This process's resident memory in bytes (0 where it cannot be read).
uint64_t resident_bytes();

}  // namespace clusterctl
