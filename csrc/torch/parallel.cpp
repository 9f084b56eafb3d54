// The task pool behind cpu_parallel() (see parallel.h for why it is not OpenMP), the serial
// switch, and the bindings' reading of the CPU ISA selector.
#include "parallel.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "gulm/cpu.h"

namespace gulm_torch {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Chunks per thread: enough that the chunks of a thread that is not running are taken by the
// others, few enough that claiming them costs nothing next to their work.
constexpr int64_t kChunksPerThread = 4;
// Bounded spins before blocking on a condition variable: the caller waiting for the last
// chunks, and an idle worker waiting for the next job (the next time step's job usually comes
// within tens of microseconds; sleeping and being woken costs about as much on a VM). Both
// are short enough that a busy machine loses little to them.
constexpr auto kCallerSpin = std::chrono::microseconds(50);
constexpr auto kWorkerSpin = std::chrono::microseconds(100);

// Spins (with pause) until done() or `limit` has passed; returns done().
template <class Done>
bool spin_until(Done&& done, std::chrono::microseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  for (int i = 1;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() >= end) return done();
  }
}

class TaskPool {
 public:
  using Body = gulm::ParallelFor::Body;

  void run(int64_t n, int64_t grain, int threads, Body body, void* ctx) {
    const int64_t by_grain = (n + std::max<int64_t>(grain, 1) - 1) / std::max<int64_t>(grain, 1);
    const int64_t chunks = std::min<int64_t>(by_grain, int64_t(threads) * kChunksPerThread);
    if (threads <= 1 || chunks <= 1) {
      body(ctx, 0, n);
      return;
    }
    // One job at a time: a nested call (from a chunk) or a concurrent one (another Python
    // thread) runs on its own thread instead of waiting.
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) {
      body(ctx, 0, n);
      return;
    }
    start_workers(threads - 1);
    Job job{body, ctx, n, chunks, threads};
    uint32_t gen;
    {
      std::lock_guard<std::mutex> lock(m_);
      gen = ++gen_;
      job_ = job;
      error_ = nullptr;
      done_.store(0, std::memory_order_relaxed);
      next_.store(uint64_t(gen) << 32, std::memory_order_release);
    }
    wake_.notify_all();
    claim(gen, job);
    spin_until([&] { return done_.load(std::memory_order_acquire) >= chunks; }, kCallerSpin);
    std::unique_lock<std::mutex> lock(m_);
    done_cv_.wait(lock, [&] { return done_.load(std::memory_order_acquire) >= chunks; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  struct Job {
    Body body = nullptr;
    void* ctx = nullptr;
    int64_t n = 0, chunks = 0;
    int threads = 0;
  };

  // Claims and runs chunks of job `gen` until none is left (or a newer job was published).
  void claim(uint32_t gen, const Job& job) {
    for (;;) {
      uint64_t s = next_.load(std::memory_order_acquire);
      if (uint32_t(s >> 32) != gen) return;
      const int64_t i = int64_t(uint32_t(s));
      if (i >= job.chunks) return;
      if (!next_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
      try {
        job.body(job.ctx, i * job.n / job.chunks, (i + 1) * job.n / job.chunks);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m_);
        if (!error_) error_ = std::current_exception();
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == job.chunks) {
        std::lock_guard<std::mutex> lock(m_);
        done_cv_.notify_all();
      }
    }
  }

  void worker(int index) {
#ifdef _OPENMP
    // A chunk's BLAS/oneDNN calls must stay on this thread (they are told single_thread).
    omp_set_num_threads(1);
#endif
    uint32_t seen = 0;
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      if (gen_ == seen) {
        lock.unlock();
        spin_until([&] { return uint32_t(next_.load(std::memory_order_acquire) >> 32) != seen; },
                   kWorkerSpin);
        lock.lock();
      }
      wake_.wait(lock, [&] { return gen_ != seen; });
      seen = gen_;
      const Job job = job_;
      lock.unlock();
      if (index < job.threads - 1) claim(seen, job);
      lock.lock();
    }
  }

  // Called with run_mutex_ held. Workers live for the whole process (detached, never joined).
  void start_workers(int count) {
    while (started_ < count) {
      const int index = started_++;
      std::thread([this, index] { worker(index); }).detach();
    }
  }

  std::mutex run_mutex_;
  std::mutex m_;
  std::condition_variable wake_, done_cv_;
  Job job_;                         // guarded by m_
  uint32_t gen_ = 0;                // guarded by m_
  std::exception_ptr error_;        // guarded by m_
  std::atomic<uint64_t> next_{0};   // (generation << 32) | next chunk to claim
  std::atomic<int64_t> done_{0};    // chunks finished in the current job
  int started_ = 0;                 // guarded by run_mutex_
};

std::atomic<TaskPool*> g_pool{nullptr};
std::atomic<bool> g_forked{false};

// In a forked child only the forking thread exists: give the child a fresh pool (the old one,
// its workers gone and its mutexes in any state, is leaked), and keep the child off OpenMP,
// whose thread team (GNU libgomp) does not survive a fork: a region there never ends.
void on_fork_child() {
  g_pool.store(nullptr);
  g_forked.store(true);
}
// Registered when the extension is loaded, before any OpenMP region of ours can run.
const int g_atfork_registered = pthread_atfork(nullptr, nullptr, &on_fork_child);

TaskPool& pool() {
  TaskPool* p = g_pool.load(std::memory_order_acquire);
  if (!p) {
    static std::mutex create;
    std::lock_guard<std::mutex> lock(create);
    p = g_pool.load(std::memory_order_acquire);
    if (!p) {
      p = new TaskPool();  // never deleted: detached workers may outlive static destructors
      g_pool.store(p, std::memory_order_release);
    }
  }
  return *p;
}

void pool_parallel_for(void* /*ctx*/, int64_t n, int64_t grain, gulm::ParallelFor::Body body,
                       void* body_ctx) {
  pool().run(n, grain, at::get_num_threads(), body, body_ctx);
}

}  // namespace

bool in_forked_child() { return g_forked.load(std::memory_order_relaxed); }

bool cpu_serial() {
  static const bool serial = [] {
    const char* s = std::getenv("GULM_CPU_SERIAL");
    return s && s[0] == '1';
  }();
  return serial;
}

gulm::ParallelFor cpu_parallel() {
  const int threads = cpu_serial() ? 1 : at::get_num_threads();
  if (threads <= 1) return gulm::ParallelFor{};
  return gulm::ParallelFor{&pool_parallel_for, nullptr, threads};
}

void apply_cpu_isa_env() {
  static const bool done = [] {
    for (const char* name : {"GULM_CPU_ISA", "GULM_KMER_ISA"}) {
      const char* s = std::getenv(name);
      if (!s || !*s) continue;
      gulm::CpuIsa isa;
      TORCH_CHECK(gulm::parse_cpu_isa(s, &isa), name, " must be one of auto, baseline (or scalar), ",
                  "avx2, avx512; got '", s, "'");
      gulm::set_cpu_isa(isa);
      break;
    }
    return true;
  }();
  (void)done;
}

}  // namespace gulm_torch
