// A minimal test harness for the torch-free kernel tests (no external test framework).
#pragma once
#include <cstdio>
#include <cstdlib>

namespace gulm_test {
inline int& failures() {
  static int n = 0;
  return n;
}
}  // namespace gulm_test

#define GULM_CHECK(cond)                                                             \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++gulm_test::failures();                                                       \
    }                                                                                \
  } while (0)

#define GULM_CHECK_EQ(a, b)                                                                 \
  do {                                                                                      \
    auto va_ = (a);                                                                         \
    auto vb_ = (b);                                                                         \
    if (!(va_ == vb_)) {                                                                    \
      std::fprintf(stderr, "%s:%d: check failed: %s == %s (%lld vs %lld)\n", __FILE__,      \
                   __LINE__, #a, #b, (long long)va_, (long long)vb_);                       \
      ++gulm_test::failures();                                                              \
    }                                                                                       \
  } while (0)

#define GULM_TEST_MAIN_END()                                               \
  do {                                                                     \
    if (gulm_test::failures()) {                                           \
      std::fprintf(stderr, "%d check(s) failed\n", gulm_test::failures()); \
      return 1;                                                            \
    }                                                                      \
    std::printf("all checks passed\n");                                    \
    return 0;                                                              \
  } while (0)
