// Unit tests of the torch-free k-mer kernels (gulm/kmer.h): every encoder path against a
// naive per-window reference, chunk-boundary equality, batch, decode and the revcomp ops.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "gulm/kmer.h"

using gulm::KmerIdType;
using gulm::CpuIsa;

namespace {

// Recomputes every window from its k bytes, no rolling state.
std::vector<int64_t> naive_encode(const std::string& seq, int k, int s) {
  std::vector<int64_t> out;
  const int64_t n = gulm::kmer_num_tokens(static_cast<int64_t>(seq.size()), k, s);
  for (int64_t t = 0; t < n; ++t) {
    int64_t code = 0;
    bool ok = true;
    for (int i = 0; i < k; ++i) {
      const char c = seq[t * s + i];
      int d;
      switch (c) {
        case 'A': case 'a': d = 0; break;
        case 'C': case 'c': d = 1; break;
        case 'G': case 'g': d = 2; break;
        case 'T': case 't': case 'U': case 'u': d = 3; break;
        default: d = -1;
      }
      if (d < 0) ok = false;
      code = code * 4 + (d < 0 ? 0 : d);
    }
    out.push_back(ok ? code + 2 : 1);
  }
  return out;
}

// Encodes into a 64-byte aligned buffer (as torch allocates; the streaming stores need it),
// splitting the token range at `cuts`.
template <typename T>
std::vector<int64_t> encode(const std::string& seq, int k, int s, CpuIsa isa,
                            const std::vector<int64_t>& cuts = {}, bool streaming = false) {
  const int64_t n = gulm::kmer_num_tokens(static_cast<int64_t>(seq.size()), k, s);
  std::vector<T> storage(static_cast<size_t>(n) + 1 + 64 / sizeof(T), T(-7));  // guard after
  T* out = storage.data();
  while (reinterpret_cast<uintptr_t>(out) % 64) ++out;
  const gulm::KmerEncodeParams p = gulm::kmer_encode_params(
      reinterpret_cast<const uint8_t*>(seq.data()), static_cast<int64_t>(seq.size()), k, s, out,
      sizeof(T) == 8 ? KmerIdType::I64 : KmerIdType::I32, isa, streaming);
  int64_t begin = 0;
  for (int64_t c : cuts) {
    if (c > n) c = n;
    gulm::kmer_encode_cpu(p, begin, c);
    begin = c;
  }
  gulm::kmer_encode_cpu(p, begin, n);
  GULM_CHECK_EQ(static_cast<int64_t>(out[n]), -7);  // guard untouched
  return std::vector<int64_t>(out, out + n);
}

std::string random_seq(std::mt19937_64& rng, size_t len, double bad_rate, bool lower) {
  static const char kBases[] = "ACGT";
  static const char kOther[] = "NRYKMSWBDHVN-. \r\n\x80\xff\x01Xx";
  std::uniform_real_distribution<double> u(0, 1);
  std::string s(len, 'A');
  for (auto& c : s) {
    if (u(rng) < bad_rate) {
      c = kOther[rng() % (sizeof(kOther) - 1)];
    } else {
      c = kBases[rng() % 4];
      if (lower && (rng() & 1)) c = static_cast<char>(c + 32);
      if (c == 'T' && (rng() % 8 == 0)) c = 'U';
    }
  }
  return s;
}

bool same(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) {
      std::fprintf(stderr, "  first difference at %zu: %lld vs %lld\n", i, (long long)a[i],
                   (long long)b[i]);
      return false;
    }
  }
  return true;
}

const CpuIsa kPaths[] = {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512, CpuIsa::Auto};

void test_hand_examples() {
  // k=2 "ACGT" s=1 -> AC, CG, GT = 2+1, 2+6, 2+11
  for (CpuIsa isa : kPaths) {
    GULM_CHECK(same(encode<int64_t>("ACGT", 2, 1, isa), {3, 8, 13}));
    GULM_CHECK(same(encode<int32_t>("acgu", 2, 1, isa), {3, 8, 13}));
    GULM_CHECK(same(encode<int64_t>("ACNGT", 2, 1, isa), {3, 1, 1, 13}));
    GULM_CHECK(same(encode<int64_t>("TTTTT", 5, 2, isa), {2 + 1023}));
    GULM_CHECK(same(encode<int64_t>("AAAA", 5, 2, isa), {}));
    GULM_CHECK(same(encode<int64_t>("", 1, 1, isa), {}));
    GULM_CHECK(same(encode<int64_t>("ACGTACG", 3, 4, isa), {2 + 6, 2 + 6}));  // ACG, ACG
  }
  GULM_CHECK_EQ(gulm::kmer_num_tokens(10, 5, 2), 3);
  GULM_CHECK_EQ(gulm::kmer_num_tokens(4, 5, 2), 0);
  GULM_CHECK_EQ(gulm::kmer_num_tokens(5, 5, 7), 1);
}

// Every path, every k and a range of strides, on random input with and without invalid
// bytes, against the naive reference; then split into random chunks.
void test_paths_vs_naive() {
  std::mt19937_64 rng(1234);
  const size_t lens[] = {0, 1, 2, 15, 16, 17, 63, 64, 65, 129, 151, 1000, 2047, 2048, 2049, 5003};
  const double bad_rates[] = {0.0, 0.001, 0.05, 0.5};
  int cases = 0;
  for (int k = 1; k <= gulm::kKmerMaxK; ++k) {
    for (int s : {1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 31, 48, 49, 64, 65, 100}) {
      for (double bad : bad_rates) {
        const size_t len = lens[rng() % (sizeof(lens) / sizeof(lens[0]))];
        const std::string seq = random_seq(rng, len + (rng() % 7), bad, rng() & 1);
        const auto want = naive_encode(seq, k, s);
        for (CpuIsa isa : kPaths) {
          const auto got64 = encode<int64_t>(seq, k, s, isa);
          const auto got32 = encode<int32_t>(seq, k, s, isa);
          if (!same(got64, want) || !same(got32, want)) {
            std::fprintf(stderr, "  k=%d s=%d len=%zu bad=%g isa=%s\n", k, s, seq.size(), bad,
                         gulm::cpu_isa_name(isa));
            GULM_CHECK(false);
          }
          // chunk boundaries anywhere give the same result
          const int64_t n = static_cast<int64_t>(want.size());
          std::vector<int64_t> cuts;
          for (int64_t c = 0; c < n; c += 1 + static_cast<int64_t>(rng() % 40)) cuts.push_back(c);
          if (!same(encode<int64_t>(seq, k, s, isa, cuts), want)) {
            std::fprintf(stderr, "  chunked: k=%d s=%d len=%zu isa=%s\n", k, s, seq.size(),
                         gulm::cpu_isa_name(isa));
            GULM_CHECK(false);
          }
          ++cases;
        }
      }
    }
  }
  std::printf("paths vs naive: %d cases (best isa here: %s)\n", cases,
              gulm::cpu_isa_name(gulm::kmer_cpu_resolve_isa(CpuIsa::Auto)));
}

// A long sequence with a few sprinkled invalid bytes and N runs: SIMD vs scalar.
void test_simd_vs_scalar_long() {
  std::mt19937_64 rng(99);
  std::string seq = random_seq(rng, 300000, 0.0, true);
  for (int i = 0; i < 200; ++i) seq[rng() % seq.size()] = "NnRY-\n"[rng() % 6];
  seq.replace(100000, 5000, std::string(5000, 'N'));
  for (int k : {3, 5, 8, 12, 15}) {
    for (int s : {1, 2, 3, 5, 11}) {
      const auto want = encode<int64_t>(seq, k, s, CpuIsa::Baseline);
      GULM_CHECK(same(encode<int64_t>(seq, k, s, CpuIsa::Avx2), want));
      GULM_CHECK(same(encode<int64_t>(seq, k, s, CpuIsa::Avx512), want));
      GULM_CHECK(same(encode<int32_t>(seq, k, s, CpuIsa::Auto, {1, 17, 4097, 70001}), want));
    }
  }
}

// Outputs of 64 MiB and more take the streaming-store path: same ids, any chunking.
void test_streaming_outputs() {
  std::mt19937_64 rng(3);
  std::string seq = random_seq(rng, 17000000, 0.0, false);
  for (int i = 0; i < 1000; ++i) seq[rng() % seq.size()] = 'N';
  const auto want = encode<int64_t>(seq, 3, 1, CpuIsa::Baseline);
  GULM_CHECK(same(encode<int64_t>(seq, 3, 1, CpuIsa::Avx512, {}, true), want));
  GULM_CHECK(same(encode<int64_t>(seq, 3, 1, CpuIsa::Auto, {5, 1000003, 8000001}, true), want));
  GULM_CHECK(same(encode<int32_t>(seq, 3, 1, CpuIsa::Auto, {7, 9000000}, true), want));
}

void test_batch() {
  std::mt19937_64 rng(7);
  const std::vector<std::string> rows = {"ACGTACGTAC", "", "ACG", "NNACGTTT", "ACGTNACGTACGTAA",
                                         random_seq(rng, 3000, 0.01, true)};
  std::string flat;
  std::vector<int64_t> offsets = {0};
  for (const auto& r : rows) {
    flat += r;
    offsets.push_back(static_cast<int64_t>(flat.size()));
  }
  const int64_t B = static_cast<int64_t>(rows.size());
  for (int k : {1, 3, 5}) {
    for (int s : {1, 2, 6}) {
      for (int64_t max_tokens : {0, 1, 3, 10000}) {
        for (bool pad_left : {false, true}) {
          std::vector<int64_t> lengths(static_cast<size_t>(B));
          const int64_t W = gulm::kmer_batch_lengths_cpu(offsets.data(), B, k, s, max_tokens,
                                                         lengths.data());
          std::vector<int32_t> out(static_cast<size_t>(B * W), -5);
          const gulm::KmerBatchParams p = gulm::kmer_batch_params(
              reinterpret_cast<const uint8_t*>(flat.data()), nullptr, offsets.data(), B, k, s,
              max_tokens, W, pad_left, lengths.data(), out.data(), KmerIdType::I32);
          // odd chunks across rows
          for (int64_t e = 0; e < B * W; e += 7) {
            gulm::kmer_encode_batch_cpu(p, e, e + 7 < B * W ? e + 7 : B * W);
          }
          for (int64_t b = 0; b < B; ++b) {
            auto want = naive_encode(rows[static_cast<size_t>(b)], k, s);
            if (max_tokens > 0 && static_cast<int64_t>(want.size()) > max_tokens) {
              want.resize(static_cast<size_t>(max_tokens));
            }
            const int64_t n = static_cast<int64_t>(want.size());
            GULM_CHECK_EQ(lengths[static_cast<size_t>(b)], n);
            std::vector<int64_t> row(static_cast<size_t>(W), 0);
            for (int64_t j = 0; j < n; ++j) row[static_cast<size_t>(pad_left ? W - n + j : j)] = want[j];
            std::vector<int64_t> got(out.begin() + b * W, out.begin() + (b + 1) * W);
            GULM_CHECK(same(got, row));
          }
        }
      }
    }
  }
  // a decreasing offset is reported
  const int64_t bad_offsets[] = {0, 5, 3};
  int64_t lens[2];
  GULM_CHECK_EQ(gulm::kmer_batch_lengths_cpu(bad_offsets, 2, 1, 1, 0, lens), -2);
}

void test_decode_and_revcomp() {
  // decode(encode(seq)) == seq for ACGT input when stride <= k
  std::mt19937_64 rng(5);
  for (int k : {1, 2, 5, 15}) {
    for (int s = 1; s <= k + 2; ++s) {
      std::string seq = random_seq(rng, 200, 0.0, false);
      for (auto& c : seq) if (c == 'U') c = 'T';
      const auto ids = encode<int64_t>(seq, k, s, CpuIsa::Auto);
      const int64_t n = static_cast<int64_t>(ids.size());
      std::string dec(static_cast<size_t>(gulm::kmer_decoded_length(n, k, s)), '?');
      gulm::KmerDecodeParams d;
      d.ids = ids.data();
      d.n = n;
      d.k = k;
      d.stride = s;
      d.out = reinterpret_cast<uint8_t*>(&dec[0]);
      gulm::kmer_decode_cpu(d, 0, static_cast<int64_t>(dec.size()) / 2);
      gulm::kmer_decode_cpu(d, static_cast<int64_t>(dec.size()) / 2, static_cast<int64_t>(dec.size()));
      for (size_t i = 0; i < dec.size(); ++i) {
        const bool covered = static_cast<int64_t>(i % s) < k;
        GULM_CHECK(dec[i] == (covered ? seq[i] : 'N'));
      }
      GULM_CHECK_EQ(gulm::kmer_find_bad_id_cpu(ids.data(), KmerIdType::I64, 0, n, k), -1);
    }
  }
  const int64_t bad[] = {0, 1, 2, 1025 + 2, 5};
  GULM_CHECK_EQ(gulm::kmer_find_bad_id_cpu(bad, KmerIdType::I64, 0, 5, 5), 3);
  const int32_t neg[] = {3, -1};
  GULM_CHECK_EQ(gulm::kmer_find_bad_id_cpu(neg, KmerIdType::I32, 0, 2, 5), 1);

  // byte revcomp
  const std::string in = "ACGTUNacgtunRYKMBDHVSW-x";
  std::string out(in.size(), '?');
  gulm::revcomp_cpu(reinterpret_cast<const uint8_t*>(in.data()), static_cast<int64_t>(in.size()),
                    reinterpret_cast<uint8_t*>(&out[0]), 0, static_cast<int64_t>(in.size()));
  GULM_CHECK(out == "x-WSBDHVKMRYnaacgtNAACGT");

  // id revcomp == encode(revcomp(seq)) when (L-k) % s == 0; with lengths and pad_left
  for (int k : {1, 3, 5, 7, 15}) {
    for (int s : {1, 2, 3}) {
      const int64_t L = k + s * 40;
      std::string seq = random_seq(rng, static_cast<size_t>(L), 0.03, true);
      std::string rc(seq.size(), '?');
      gulm::revcomp_cpu(reinterpret_cast<const uint8_t*>(seq.data()), L,
                        reinterpret_cast<uint8_t*>(&rc[0]), 0, L);
      const auto ids = encode<int64_t>(seq, k, s, CpuIsa::Auto);
      const auto want = encode<int64_t>(rc, k, s, CpuIsa::Auto);
      const int64_t n = static_cast<int64_t>(ids.size());
      for (bool pad_left : {false, true}) {
        const int64_t W = n + 3;
        std::vector<int64_t> row(static_cast<size_t>(W), 0), got(static_cast<size_t>(W), -1);
        const int64_t first = pad_left ? 3 : 0;
        for (int64_t j = 0; j < n; ++j) row[static_cast<size_t>(first + j)] = ids[j];
        const int64_t lengths[] = {n};
        gulm::KmerRevcompParams r;
        r.ids = row.data();
        r.out = got.data();
        r.rows = 1;
        r.width = W;
        r.lengths = lengths;
        r.pad_left = pad_left;
        r.k = k;
        gulm::kmer_revcomp_cpu(r, 0, 5);
        gulm::kmer_revcomp_cpu(r, 5, W);
        for (int64_t j = 0; j < W; ++j) {
          const bool valid = j >= first && j < first + n;
          GULM_CHECK_EQ(got[static_cast<size_t>(j)], valid ? want[static_cast<size_t>(j - first)] : 0);
        }
      }
    }
  }
  GULM_CHECK_EQ(gulm::kmer_code_revcomp(0, 1), 3u);             // A -> T
  GULM_CHECK_EQ(gulm::kmer_code_revcomp(0b000110, 3), 0b011011u);  // ACG -> CGT
}

}  // namespace

int main() {
  test_hand_examples();
  test_paths_vs_naive();
  test_simd_vs_scalar_long();
  test_streaming_outputs();
  test_batch();
  test_decode_and_revcomp();
  GULM_TEST_MAIN_END();
}
