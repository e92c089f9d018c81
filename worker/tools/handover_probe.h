#pragma once
// What a meeting of ranks costs where they outnumber the cores, beyond the turns their work takes
// on them (placement::core_share). Ranks that do not fit the cores wait in a collective without
// holding a core (collectives/wait_policy.h): an MPI wait tests and yields the core between tests
// (after 1 ms it sleeps), so the last rank's arrival is seen only at a waiter's next turn on a
// core that ranks still computing hold. `doctor` records the figure for plan, which adds it per
// synchronisation of a pass for each thread beyond the cores (controller/placement/throughput_model.h).
#include <string>
#include <vector>

namespace clusterctl::tools {

struct HandoverSample {
  int ranks = 0;
  double step_us = 0;      // one chunk of every rank and their meeting, the mean of the repetitions
  double turns_us = 0;     // the chunks alone in turns on the cores: ceil(ranks / cores) chunks' time
  double handover_us = 0;  // step - turns, at least 0: what one meeting costs beyond the turns
};

struct HandoverProbe {
  double chunk_us = 0;  // one chunk on a core while every core runs one (the compute alone; the fastest)
  std::vector<HandoverSample> samples;
  // One meeting's handover with 1 rank beyond the cores and with `cores` beyond them (2 x cores
  // ranks; on one core the same sample): what plan takes, in between and past them along the line.
  double handover_us[2] = {0, 0};
};

// `cores` + 1 and 2 x `cores` single-thread processes (forked; each a rank), each computing a
// chunk of ~`chunk_us` (arithmetic alone: no memory traffic, which the bandwidth figures carry)
// and then exchanging as a one-shot all-reduce's ranks do over MPI's shared memory (exchange() in
// handover_probe.cpp: each rank waits testing and pausing as MpiTransport's wait does where ranks
// do not fit the cores), `steps` times a repetition, `reps` repetitions. The chunk's own time is measured
// with `cores` processes computing chunks without meeting. `cores` <= 0: this machine's.
HandoverProbe measure_handover(int cores, int reps, int steps = 200, double chunk_us = 250);
std::string handover_method(const HandoverProbe& p, int reps, int steps);

}  // namespace clusterctl::tools
