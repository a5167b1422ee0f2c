#include "helpers.hpp"

namespace duet::test {

namespace {

struct Node {
  int64_t length = 0;
  std::vector<Node> children;
};

// A prompt with 2-3 responses; with depth left, a response may itself branch
// (a later turn shared by its continuations).
Node random_tree(std::mt19937_64& rng, const ForestShape& shape, int depth) {
  Node n;
  n.length = random_int(rng, 1, shape.max_segment);
  int64_t children = 0;
  if (depth == 0) children = random_int(rng, 2, 3);
  else if (depth < shape.max_depth) children = random_int(rng, 0, 1) ? random_int(rng, 2, 3) : 0;
  for (int64_t c = 0; c < children; ++c) n.children.push_back(random_tree(rng, shape, depth + 1));
  return n;
}

int64_t tree_size(const Node& n) {
  int64_t s = n.length;
  for (const Node& c : n.children) s += tree_size(c);
  return s;
}

// Depth-first: the segment, then each child subtree. The segment's tokens stay
// visible until the end of its subtree; positions continue from the parent.
void lay_out(const Node& n, int32_t depth, Forest& f) {
  const int64_t begin = f.size();
  for (int64_t k = 0; k < n.length; ++k) {
    f.position.push_back(depth + static_cast<int32_t>(k));
    f.visible_until.push_back(-1);
  }
  for (const Node& c : n.children) lay_out(c, depth + static_cast<int32_t>(n.length), f);
  for (int64_t i = begin; i < begin + n.length; ++i)
    f.visible_until[i] = static_cast<int32_t>(f.size());
}

}  // namespace

Forest random_forest(std::mt19937_64& rng, int64_t n_tokens, const ForestShape& shape) {
  Forest f;
  const int64_t budget = n_tokens - static_cast<int64_t>(shape.pad_fraction * n_tokens);
  for (int attempts = 0; attempts < 50;) {
    const Node tree = random_tree(rng, shape, 0);
    if (f.size() + tree_size(tree) > budget) {
      ++attempts;
      continue;
    }
    lay_out(tree, 0, f);
  }
  f.used = f.size();
  while (f.size() < n_tokens) {
    f.visible_until.push_back(static_cast<int32_t>(f.size() + 1));
    f.position.push_back(0);
  }
  return f;
}

}  // namespace duet::test
