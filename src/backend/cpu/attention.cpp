// Forest-masked attention: online-softmax forward and flash-attention-2 style
// backward over (query block, key tile) pairs, skipping masked tiles.
//
// Work split (OpenMP, dynamic schedule; every output element is written by one
// task, which sums in a fixed order, so results do not depend on threads):
//   forward            one task per (query head, query block)
//   backward, dk dv    one task per (kv head, key tile): loops over the query
//                      heads of its group and the query blocks
//   backward, dq       one task per (query head, query block): loops over tiles
// The backward thus computes scores twice (once per pass) instead of racing on
// dq with atomics: a reference kernel prefers determinism to speed.
#include "backend/attention.hpp"
#include "backend/cpu/threading.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace duet::backend::cpu {

namespace {

void check_mask(const char* op, const AttentionShape& s) {
  for (int64_t j = 0; j < s.n_tokens; ++j) {
    const int64_t v = s.visible_until[j];
    if (v <= j || v > s.n_tokens)
      fail("{}: visible_until[{}] = {} must be in ({}, {}] (every token sees itself, "
           "nothing past the row)", op, j, v, j, s.n_tokens);
  }
  if (s.window > 0)
    for (int64_t j = 0; j < s.n_tokens; ++j)
      if (s.positions[j] < 0) fail("{}: positions[{}] = {} is negative", op, j, s.positions[j]);
}

struct Tiling {
  std::vector<QueryBlock> blocks;
  std::vector<KeyTile> tiles;
};

// Per-block position ranges and per-tile visible_until/position ranges: O(T).
Tiling make_tiling(const AttentionShape& s) {
  Tiling t;
  const int64_t n = s.n_tokens;
  const int64_t tq = std::min(s.tile_q, n), tk = std::min(s.tile_k, n);
  auto pos = [&](int64_t i) { return s.positions ? s.positions[i] : 0; };
  for (int64_t b = 0; b < n; b += tq) {
    QueryBlock q{static_cast<int32_t>(b), static_cast<int32_t>(std::min(n, b + tq)), pos(b), pos(b)};
    for (int32_t i = q.begin; i < q.end; ++i) {
      q.min_position = std::min(q.min_position, pos(i));
      q.max_position = std::max(q.max_position, pos(i));
    }
    t.blocks.push_back(q);
  }
  for (int64_t b = 0; b < n; b += tk) {
    KeyTile k{static_cast<int32_t>(b), static_cast<int32_t>(std::min(n, b + tk)),
              s.visible_until[b], s.visible_until[b], pos(b), pos(b)};
    for (int32_t j = k.begin; j < k.end; ++j) {
      k.min_visible_until = std::min(k.min_visible_until, s.visible_until[j]);
      k.max_visible_until = std::max(k.max_visible_until, s.visible_until[j]);
      k.min_position = std::min(k.min_position, pos(j));
      k.max_position = std::max(k.max_position, pos(j));
    }
    t.tiles.push_back(k);
  }
  return t;
}

TileKind kind_of(const AttentionShape& s, const QueryBlock& q, const KeyTile& k) {
  return s.classify_tiles ? classify_tile(q, k, s.window) : TileKind::Partial;
}

// dst[d * nk + jj] = src row (k.begin + jj), head offset `off`: a tile of keys
// (or values) transposed so that score loops run over contiguous keys.
template <typename T>
void load_transposed(const T* src, int64_t stride, int64_t off, const KeyTile& k, int64_t dim,
                     T* dst) {
  const int64_t nk = k.end - k.begin;
  for (int64_t jj = 0; jj < nk; ++jj) {
    const T* row = src + (k.begin + jj) * stride + off;
    for (int64_t d = 0; d < dim; ++d) dst[d * nk + jj] = row[d];
  }
}

// out[ii * nk + jj] = scale * sum_d a_i[d] * bt[d * nk + jj] for the block's
// queries, a_i = a + (q.begin + ii) * stride + off. With `mask`, entries the
// forest hides become -inf.
template <typename T>
void block_products(const AttentionShape& s, const T* a, int64_t stride, int64_t off,
                    const QueryBlock& q, const KeyTile& k, const T* bt, T scale, bool mask,
                    T* out) {
  const int64_t nq = q.end - q.begin, nk = k.end - k.begin, dim = s.head_dim;
  for (int64_t ii = 0; ii < nq; ++ii) {
    const T* ai = a + (q.begin + ii) * stride + off;
    T* row = out + ii * nk;
    std::fill(row, row + nk, T(0));
    for (int64_t d = 0; d < dim; ++d) {
      const T ad = ai[d];
      const T* bd = bt + d * nk;
      for (int64_t jj = 0; jj < nk; ++jj) row[jj] += ad * bd[jj];
    }
    if (scale != T(1))
      for (int64_t jj = 0; jj < nk; ++jj) row[jj] *= scale;
    if (mask)
      for (int64_t jj = 0; jj < nk; ++jj)
        if (!attention_visible(q.begin + ii, k.begin + jj, s.visible_until, s.positions, s.window))
          row[jj] = -std::numeric_limits<T>::infinity();
  }
}

template <typename T>
T softmax_scale(const AttentionShape& s) {
  return static_cast<T>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
}

}  // namespace

template <typename T>
void attention_forward(const AttentionParams<T>& p) {
  p.validate();
  check_mask("attention", p);
  if (p.n_tokens == 0) return;
  const Tiling tiling = make_tiling(p);
  const int64_t dim = p.head_dim, hq = p.n_q_heads, rep = p.n_q_heads / p.n_kv_heads;
  const int64_t n_blocks = static_cast<int64_t>(tiling.blocks.size());
  const T scale = softmax_scale<T>(p);
  const T neg_inf = -std::numeric_limits<T>::infinity();

#pragma omp parallel if (parallel_worth(p.n_tokens * p.n_tokens * p.n_q_heads * p.head_dim / 8))
  {
    const int64_t tq = std::min(p.tile_q, p.n_tokens), tk = std::min(p.tile_k, p.n_tokens);
    std::vector<T> kt(dim * tk), s(tq * tk), acc(tq * dim), m(tq), l(tq);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < hq * n_blocks; ++task) {
      const int64_t h = task / n_blocks, g = h / rep;
      const QueryBlock& qb = tiling.blocks[task % n_blocks];
      const int64_t nq = qb.end - qb.begin;
      std::fill(m.begin(), m.end(), neg_inf);
      std::fill(l.begin(), l.end(), T(0));
      std::fill(acc.begin(), acc.end(), T(0));
      for (const KeyTile& kb : tiling.tiles) {
        const TileKind kind = kind_of(p, qb, kb);
        if (kind == TileKind::Skip) continue;
        const int64_t nk = kb.end - kb.begin;
        load_transposed(p.k, p.k_row_stride, g * dim, kb, dim, kt.data());
        block_products(p, p.q, p.q_row_stride, h * dim, qb, kb, kt.data(), scale,
                       kind == TileKind::Partial, s.data());
        for (int64_t ii = 0; ii < nq; ++ii) {
          T* srow = s.data() + ii * nk;
          T tile_max = neg_inf;
          for (int64_t jj = 0; jj < nk; ++jj) tile_max = std::max(tile_max, srow[jj]);
          if (tile_max == neg_inf) continue;  // this query sees nothing in the tile
          // Online softmax: rescale what was accumulated to the new maximum.
          const T m_new = std::max(m[ii], tile_max);
          const T alpha = std::exp(m[ii] - m_new);  // 0 on the first visible tile
          T* a = acc.data() + ii * dim;
          l[ii] *= alpha;
          for (int64_t d = 0; d < dim; ++d) a[d] *= alpha;
          for (int64_t jj = 0; jj < nk; ++jj) {
            const T pij = std::exp(srow[jj] - m_new);  // masked: exp(-inf) = 0
            if (pij == T(0)) continue;
            l[ii] += pij;
            const T* vj = p.v + (kb.begin + jj) * p.v_row_stride + g * dim;
            for (int64_t d = 0; d < dim; ++d) a[d] += pij * vj[d];
          }
          m[ii] = m_new;
        }
      }
      for (int64_t ii = 0; ii < nq; ++ii) {
        const int64_t i = qb.begin + ii;
        // Every query sees itself, so l > 0.
        T* o = p.o + i * p.o_row_stride + h * dim;
        for (int64_t d = 0; d < dim; ++d) o[d] = acc[ii * dim + d] / l[ii];
        p.lse[i * hq + h] = m[ii] + std::log(l[ii]);
      }
    }
  }
}

template <typename T>
void attention_backward(const AttentionBackwardParams<T>& p) {
  p.validate();
  check_mask("attention backward", p);
  if (p.n_tokens == 0) return;
  const Tiling tiling = make_tiling(p);
  const int64_t dim = p.head_dim, hq = p.n_q_heads, hkv = p.n_kv_heads, rep = hq / hkv;
  const int64_t n_blocks = static_cast<int64_t>(tiling.blocks.size());
  const int64_t n_tiles = static_cast<int64_t>(tiling.tiles.size());
  const T scale = softmax_scale<T>(p);

  // D_i = rowsum(do_i * o_i) per (query, head): the softmax backward's
  // sum_j P_ij dP_ij, without touching the keys.
  std::vector<T> delta(p.n_tokens * hq);
#pragma omp parallel for schedule(static) if (parallel_worth(p.n_tokens * hq * p.head_dim))
  for (int64_t i = 0; i < p.n_tokens; ++i)
    for (int64_t h = 0; h < hq; ++h) {
      const T* o = p.o + i * p.o_row_stride + h * dim;
      const T* d_o = p.d_o + i * p.do_row_stride + h * dim;
      T sum = 0;
      for (int64_t d = 0; d < dim; ++d) sum += d_o[d] * o[d];
      delta[i * hq + h] = sum;
    }

  // Probabilities and dS of one (block, tile) pair, in place:
  // s (scaled scores) <- P = exp(s - lse), dp <- dS = P (dP - D); masked: P = 0.
  auto probabilities = [&](int64_t h, const QueryBlock& qb, const KeyTile& kb, T* s, T* dp) {
    const int64_t nq = qb.end - qb.begin, nk = kb.end - kb.begin;
    for (int64_t ii = 0; ii < nq; ++ii) {
      const int64_t i = qb.begin + ii;
      const T lse = p.lse[i * hq + h], di = delta[i * hq + h];
      for (int64_t jj = 0; jj < nk; ++jj) {
        const T pij = std::exp(s[ii * nk + jj] - lse);
        s[ii * nk + jj] = pij;
        dp[ii * nk + jj] = pij * (dp[ii * nk + jj] - di);
      }
    }
  };

#pragma omp parallel if (parallel_worth(p.n_tokens * p.n_tokens * p.n_q_heads * p.head_dim / 8))
  {
    const int64_t tq = std::min(p.tile_q, p.n_tokens), tk = std::min(p.tile_k, p.n_tokens);
    std::vector<T> kt(dim * tk), vt(dim * tk), s(tq * tk), dp(tq * tk);
    std::vector<T> dk_acc(tk * dim), dv_acc(tk * dim), dq_acc(tq * dim);

    // Pass 1: dk, dv per (kv head, key tile).
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < hkv * n_tiles; ++task) {
      const int64_t g = task / n_tiles;
      const KeyTile& kb = tiling.tiles[task % n_tiles];
      const int64_t nk = kb.end - kb.begin;
      std::fill(dk_acc.begin(), dk_acc.end(), T(0));
      std::fill(dv_acc.begin(), dv_acc.end(), T(0));
      load_transposed(p.k, p.k_row_stride, g * dim, kb, dim, kt.data());
      load_transposed(p.v, p.v_row_stride, g * dim, kb, dim, vt.data());
      for (int64_t h = g * rep; h < (g + 1) * rep; ++h)
        for (const QueryBlock& qb : tiling.blocks) {
          const TileKind kind = kind_of(p, qb, kb);
          if (kind == TileKind::Skip) continue;
          const int64_t nq = qb.end - qb.begin;
          block_products(p, p.q, p.q_row_stride, h * dim, qb, kb, kt.data(), scale,
                         kind == TileKind::Partial, s.data());
          block_products(p, p.d_o, p.do_row_stride, h * dim, qb, kb, vt.data(), T(1), false,
                       dp.data());
          probabilities(h, qb, kb, s.data(), dp.data());
          for (int64_t ii = 0; ii < nq; ++ii) {
            const int64_t i = qb.begin + ii;
            const T* qi = p.q + i * p.q_row_stride + h * dim;
            const T* doi = p.d_o + i * p.do_row_stride + h * dim;
            for (int64_t jj = 0; jj < nk; ++jj) {
              const T pij = s[ii * nk + jj], dsij = dp[ii * nk + jj];
              if (pij == T(0)) continue;  // masked (or underflowed): adds nothing
              T* dvj = dv_acc.data() + jj * dim;
              T* dkj = dk_acc.data() + jj * dim;
              for (int64_t d = 0; d < dim; ++d) {
                dvj[d] += pij * doi[d];
                dkj[d] += dsij * qi[d];
              }
            }
          }
        }
      for (int64_t jj = 0; jj < nk; ++jj) {
        T* dk = p.dk + (kb.begin + jj) * p.dk_row_stride + g * dim;
        T* dv = p.dv + (kb.begin + jj) * p.dv_row_stride + g * dim;
        for (int64_t d = 0; d < dim; ++d) {
          dk[d] = scale * dk_acc[jj * dim + d];
          dv[d] = dv_acc[jj * dim + d];
        }
      }
    }

    // Pass 2: dq per (query head, query block).
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < hq * n_blocks; ++task) {
      const int64_t h = task / n_blocks, g = h / rep;
      const QueryBlock& qb = tiling.blocks[task % n_blocks];
      const int64_t nq = qb.end - qb.begin;
      std::fill(dq_acc.begin(), dq_acc.end(), T(0));
      for (const KeyTile& kb : tiling.tiles) {
        const TileKind kind = kind_of(p, qb, kb);
        if (kind == TileKind::Skip) continue;
        const int64_t nk = kb.end - kb.begin;
        load_transposed(p.k, p.k_row_stride, g * dim, kb, dim, kt.data());
        load_transposed(p.v, p.v_row_stride, g * dim, kb, dim, vt.data());
        block_products(p, p.q, p.q_row_stride, h * dim, qb, kb, kt.data(), scale,
                       kind == TileKind::Partial, s.data());
        block_products(p, p.d_o, p.do_row_stride, h * dim, qb, kb, vt.data(), T(1), false,
                       dp.data());
        probabilities(h, qb, kb, s.data(), dp.data());
        for (int64_t ii = 0; ii < nq; ++ii) {
          T* dqi = dq_acc.data() + ii * dim;
          for (int64_t jj = 0; jj < nk; ++jj) {
            if (s[ii * nk + jj] == T(0)) continue;
            const T dsij = dp[ii * nk + jj];
            const T* kj = p.k + (kb.begin + jj) * p.k_row_stride + g * dim;
            for (int64_t d = 0; d < dim; ++d) dqi[d] += dsij * kj[d];
          }
        }
      }
      for (int64_t ii = 0; ii < nq; ++ii) {
        T* dq = p.dq + (qb.begin + ii) * p.dq_row_stride + h * dim;
        for (int64_t d = 0; d < dim; ++d) dq[d] = scale * dq_acc[ii * dim + d];
      }
    }
  }
}

template void attention_forward<float>(const AttentionParams<float>&);
template void attention_forward<double>(const AttentionParams<double>&);
template void attention_backward<float>(const AttentionBackwardParams<float>&);
template void attention_backward<double>(const AttentionBackwardParams<double>&);

}  // namespace duet::backend::cpu
