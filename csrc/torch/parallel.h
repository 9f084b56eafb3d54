// The one CPU parallel-for module of the bindings, with two entry points for two kinds of loop:
//
// - cpu_parallel(): the ParallelFor injected into the LSTM kernels, which run one parallel
//   region per time step, thousands per second. It is a small task pool rather than OpenMP
//   because an OpenMP region ends in a barrier that waits for every thread of the team: on a
//   busy machine, one descheduled thread stalls every step for a scheduler time slice. Here a
//   job is cut into a few chunks per thread; threads claim chunks from an atomic counter, the
//   calling thread claims too, and the job is done when its chunks are done, not when every
//   thread has shown up. A thread that wakes late finds nothing left and goes back to sleep;
//   nobody spins on a barrier (waits block on a condition variable after a spin of at most
//   50-100 microseconds).
// - parallel_chunks(): one bulk loop per call (the k-mer ops and buffer entry points, a few
//   milliseconds over megabytes of output). These run on torch's own at::parallel_for (OpenMP,
//   one contiguous range per thread): on a 2-vCPU Zen 5 VM, 8 alternating process pairs of
//   benchmarks/ab_kmer.py's cases ran 1.08-1.17x faster that way than on the task pool (new
//   faster in 6-8 of 8), and one region per call pays a late thread's delay once, not per step.
//   A forked child runs them on the task pool instead: GNU OpenMP's threads do not survive a
//   fork, and an OpenMP region in the child never ends (torch's own ops hang there too).
//
// Thread count: torch's intra-op setting (torch.set_num_threads, at::get_num_threads) read at
// each call, so gulm.threads.resolve_threads governs both. GULM_CPU_SERIAL=1 runs everything on
// the calling thread (A/B timing).
#pragma once
#include <ATen/Parallel.h>

#include <cstdint>

#include "gulm/parallel.h"

namespace gulm_torch {

// A ParallelFor over the task pool (serial under GULM_CPU_SERIAL=1 or with one thread).
gulm::ParallelFor cpu_parallel();

// True under GULM_CPU_SERIAL=1 (read once).
bool cpu_serial();

// True in a process forked from the one that loaded the extension.
bool in_forked_child();

// Runs fn(begin, end) on disjoint ranges covering [0, n), none smaller than `grain` (except
// the last), possibly concurrently; returns when all are done. Exceptions thrown by fn are
// rethrown here (the first one).
template <typename F>
void parallel_chunks(int64_t n, int64_t grain, const F& fn) {
  if (cpu_serial() || in_forked_child()) {
    cpu_parallel()(n, grain, fn);  // serial under GULM_CPU_SERIAL=1 (see cpu_parallel)
  } else {
    at::parallel_for(0, n, grain, fn);
  }
}

// Applies GULM_CPU_ISA (alias GULM_KMER_ISA): the bindings' one reading of the ISA selector
// (gulm/cpu.h). Runs once; later calls return at once.
void apply_cpu_isa_env();

}  // namespace gulm_torch
