// The one CPU parallel-for of the bindings: every kernel range loop (k-mer ops, buffer entry
// points, the LSTM's per-step chunks and elementwise passes) runs through it.
//
// It is a small task pool rather than OpenMP (at::parallel_for) because the LSTM runs one
// parallel region per time step, thousands per second, and an OpenMP region ends in a
// barrier that waits for every thread of the team: on a busy machine, one descheduled thread
// stalls every step for a scheduler time slice. Here a job is cut into a few chunks per
// thread; threads claim chunks from an atomic counter, the calling thread claims too, and the
// job is done when its chunks are done, not when every thread has shown up. A thread that
// wakes late finds nothing left and goes back to sleep; nobody spins on a barrier (waits block
// on a condition variable after a spin of at most 50-100 microseconds).
//
// Thread count: torch's intra-op setting (torch.set_num_threads, at::get_num_threads) read at
// each call, so gulm.threads.resolve_threads governs it. GULM_CPU_SERIAL=1 runs everything on
// the calling thread (A/B timing).
#pragma once
#include <cstdint>

#include "gulm/parallel.h"

namespace gulm_torch {

// A ParallelFor over the task pool (serial under GULM_CPU_SERIAL=1 or with one thread).
gulm::ParallelFor cpu_parallel();

// Runs fn(begin, end) on disjoint ranges covering [0, n), none smaller than `grain` (except
// the last), possibly concurrently; returns when all are done. Exceptions thrown by fn are
// rethrown here (the first one).
template <typename F>
void parallel_chunks(int64_t n, int64_t grain, const F& fn) {
  cpu_parallel()(n, grain, fn);
}

// Applies GULM_CPU_ISA (alias GULM_KMER_ISA): the bindings' one reading of the ISA selector
// (gulm/cpu.h). Runs once; later calls return at once.
void apply_cpu_isa_env();

}  // namespace gulm_torch
