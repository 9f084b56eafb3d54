// Every gulm operator schema, in one place. Implementations live in kmer_cpu.cpp,
// lstm_cpu.cpp and cuda/*.cpp (TORCH_LIBRARY_IMPL per device); Python registers the fake
// (meta) kernels and autograd formulas in gulm/ops/.
#include <torch/library.h>

TORCH_LIBRARY(gulm, m) {
  // ---- k-mer tokenizer -------------------------------------------------------------------
  // seq: uint8 [L] (ASCII). Returns ids [floor((L-k)/stride)+1] (empty if L < k) of `dtype`
  // (int64 or int32): 0 pad, 1 unk, 2 + base-4 index of the k-mer (A<C<G<T, lowercase folded,
  // U read as T). Any window touching another byte is unk.
  m.def("kmer_encode(Tensor seq, int k, int stride, ScalarType dtype) -> Tensor");
  // seqs: uint8 [N] (all sequences concatenated), offsets: int64 [B+1] (sequence b is
  // seqs[offsets[b]:offsets[b+1]]). Returns (ids [B, W], lengths int64 [B]) where W =
  // max_tokens if max_tokens > 0 (longer sequences keep their first max_tokens tokens) and
  // the longest row otherwise; rows are padded with 0 on the right, or on the left if
  // pad_left.
  m.def(
      "kmer_encode_batch(Tensor seqs, Tensor offsets, int k, int stride, ScalarType dtype, "
      "bool pad_left, int max_tokens) -> (Tensor, Tensor)");
  // ids: integer [n] -> uint8 [(n-1)*stride + k] (empty if n == 0). Each known token writes
  // its k bases; positions covered by no known token (unk, pad, or gaps when stride > k) are
  // 'N'.
  m.def("kmer_decode(Tensor ids, int k, int stride) -> Tensor");
  // seq: uint8 [L] -> reverse complement (IUPAC aware, case preserved, U -> A).
  m.def("revcomp(Tensor seq) -> Tensor");
  // ids: integer [..., W]. Reverse-complements each k-mer id and reverses the order of the
  // valid tokens along the last dim; pad (0) and unk (1) are kept. If lengths ([...] int64)
  // is given only the first lengths[b] entries of a row (the last ones if pad_left) are
  // valid and the padding stays where it was.
  m.def("kmer_revcomp(Tensor ids, int k, Tensor? lengths, bool pad_left) -> Tensor");

  // ---- weight-dropped LSTM ---------------------------------------------------------------
  // x [T,B,I], w_ih [4H,I], w_hh [4H,H], b_ih/b_hh [4H], h0/c0 [B,H]; gate order i,f,g,o.
  // mask: None (no DropConnect) or [4H,H] already scaled by 1/(1-p); the recurrence uses
  // w_hh * mask. Returns y [T,B,H], hT [B,H], cT [B,H] and, when save_workspace, what the
  // backward needs: gates [T,B,4H] (activated i,f,g,o, dtype of x) and cell [T,B,H] (c_t,
  // float32; float64 when x is float64, so that gradcheck sees double precision); otherwise
  // those two are empty. c0 has the dtype of x or float32, and cT the dtype of c0.
  m.def(
      "wd_lstm(Tensor x, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, Tensor h0, "
      "Tensor c0, Tensor? mask, bool save_workspace) -> (Tensor, Tensor, Tensor, Tensor, Tensor)");
  // Gradients of wd_lstm w.r.t. x, w_ih, the raw w_hh (already multiplied by mask), the bias
  // (d b_ih == d b_hh), h0 and c0.
  m.def(
      "wd_lstm_backward(Tensor grad_y, Tensor? grad_hT, Tensor? grad_cT, Tensor x, Tensor w_ih, "
      "Tensor w_hh, Tensor? mask, Tensor h0, Tensor c0, Tensor y, Tensor gates, Tensor cell) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  // Inference-only first layer over token ids (CPU): table [V,4H] holds the input projection
  // of every vocabulary entry (emb @ w_ih^T, without b_ih), ids [T,B] int64 in [0, V). Equals
  // wd_lstm(table[ids], ...) with an identity input projection; no mask, nothing saved.
  // Returns y [T,B,H], hT, cT.
  m.def(
      "wd_lstm_table(Tensor ids, Tensor table, Tensor w_hh, Tensor b_ih, Tensor b_hh, "
      "Tensor h0, Tensor c0) -> (Tensor, Tensor, Tensor)");
}
