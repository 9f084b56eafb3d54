// Framework-free helpers shared by the kernel layer (no torch, no Python).
#pragma once

#if defined(__CUDACC__)
#define GULM_HOST_DEVICE __host__ __device__
#define GULM_DEVICE __device__
#define GULM_FORCEINLINE __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
#define GULM_HOST_DEVICE
#define GULM_DEVICE
#define GULM_FORCEINLINE inline __attribute__((always_inline))
#else
#define GULM_HOST_DEVICE
#define GULM_DEVICE
#define GULM_FORCEINLINE inline
#endif

#if defined(__GNUC__) || defined(__clang__)
#define GULM_LIKELY(x) __builtin_expect(!!(x), 1)
#define GULM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GULM_RESTRICT __restrict__
#else
#define GULM_LIKELY(x) (x)
#define GULM_UNLIKELY(x) (x)
#define GULM_RESTRICT
#endif
