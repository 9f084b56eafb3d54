// The CPU LSTM binding's scratch memory (lstm_cpu.cpp): the kernels' workspaces kept between
// calls on each thread, so that a training step does not map and zero them anew.
#pragma once
#include <cstdint>

namespace gulm_torch {

// Bytes the calling thread keeps.
int64_t lstm_scratch_bytes();
// Frees what the calling thread keeps; returns the bytes freed. Later calls allocate again.
int64_t release_lstm_scratch();

}  // namespace gulm_torch
