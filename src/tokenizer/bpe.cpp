#include "tokenizer/bpe.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "tokenizer/json_fields.hpp"
#include "util/utf8.hpp"

namespace duet::tok {

Bpe::Bpe(std::unordered_map<std::string, TokenId> vocab,
         const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options)
    : options_(std::move(options)) {
  TokenId max_id = 0;
  for (const auto& [token, id] : vocab) max_id = std::max(max_id, id);
  id_to_token_.assign(vocab.empty() ? 0 : size_t{max_id} + 1, std::string());
  for (auto& [token, id] : vocab) {
    id_to_token_[id] = token;
    vocab_.emplace(token, id);
  }
  const size_t prefix_len = options_.continuing_subword_prefix.size();
  for (uint32_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = lookup(a), ib = lookup(b);
    if (!ia || !ib) fail("BPE merge #{} ('{}' '{}') uses a token missing from the vocabulary", rank, a, b);
    std::string merged = a;
    merged += (prefix_len && b.starts_with(options_.continuing_subword_prefix)) ? b.substr(prefix_len) : b;
    auto im = lookup(merged);
    if (!im) fail("BPE merge #{} produces '{}', which is missing from the vocabulary", rank, merged);
    // A repeated pair keeps its last rank, as HF's HashMap collection does.
    merges_.insert_or_assign(pair_key(*ia, *ib), Merge{rank, *im});
  }
  if (options_.unk_token) {
    unk_id_ = lookup(*options_.unk_token);
    if (!unk_id_) fail("BPE unk_token '{}' is not in the vocabulary", *options_.unk_token);
  }
  for (int b = 0; b < 256; ++b) {
    auto id = lookup(fmt::format("<0x{:02X}>", b));
    byte_tokens_[b] = id ? static_cast<int64_t>(*id) : -1;
  }
}

std::unique_ptr<Bpe> Bpe::from_json(const json& spec) {
  const std::string where = "model BPE";
  if (!field_or<json>(spec, "dropout", json(), where).is_null())
    fail("{}: dropout is not supported (training-time randomness would break exact reproduction)", where);
  BpeOptions o;
  if (auto unk = field_or<std::string>(spec, "unk_token", "", where); !unk.empty()) o.unk_token = unk;
  o.continuing_subword_prefix = field_or<std::string>(spec, "continuing_subword_prefix", "", where);
  o.end_of_word_suffix = field_or<std::string>(spec, "end_of_word_suffix", "", where);
  o.fuse_unk = field_or(spec, "fuse_unk", false, where);
  o.byte_fallback = field_or(spec, "byte_fallback", false, where);
  o.ignore_merges = field_or(spec, "ignore_merges", false, where);
  auto vocab = field<std::unordered_map<std::string, TokenId>>(spec, "vocab", where);
  std::vector<std::pair<std::string, std::string>> merges;
  const json& list = require(spec, "merges", where);
  if (!list.is_array()) fail("{}: 'merges' must be a list", where);
  merges.reserve(list.size());
  for (const json& m : list) {
    if (m.is_string()) {  // legacy "a b"
      const auto& s = m.get_ref<const std::string&>();
      auto space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        fail("{}: merge '{}' is not two tokens separated by one space", where, s);
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail("{}: a merge must be \"a b\" or [\"a\", \"b\"], found {}", where, m.dump());
    }
  }
  return std::make_unique<Bpe>(std::move(vocab), merges, std::move(o));
}

std::optional<TokenId> Bpe::lookup(std::string_view s) const {
  auto it = vocab_.find(s);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::optional<TokenId> Bpe::token_to_id(std::string_view token) const { return lookup(token); }

const std::string* Bpe::id_to_token(TokenId id) const {
  if (id >= id_to_token_.size() || id_to_token_[id].empty()) return nullptr;
  return &id_to_token_[id];
}

void Bpe::initial_symbols(std::string_view word, std::vector<TokenId>& symbols) const {
  thread_local std::string key;
  std::optional<TokenId> pending_unk;  // fused run of unknown characters
  for (size_t i = 0; i < word.size();) {
    size_t begin = i;
    utf8::next(word, i);
    std::string_view ch = word.substr(begin, i - begin);
    key.clear();
    if (begin > 0) key += options_.continuing_subword_prefix;
    key += ch;
    if (i == word.size()) key += options_.end_of_word_suffix;
    if (auto id = lookup(key)) {
      if (pending_unk) symbols.push_back(*pending_unk);
      pending_unk.reset();
      symbols.push_back(*id);
      continue;
    }
    if (options_.byte_fallback &&
        std::all_of(key.begin(), key.end(), [&](char b) { return byte_tokens_[static_cast<unsigned char>(b)] >= 0; })) {
      // HF pushes the byte tokens without flushing a pending unk first.
      for (unsigned char b : key) symbols.push_back(static_cast<TokenId>(byte_tokens_[b]));
      continue;
    }
    if (unk_id_) {
      if (pending_unk && !options_.fuse_unk) symbols.push_back(*pending_unk);
      pending_unk = unk_id_;
    }
    // Without an unk token HF drops the character.
  }
  if (pending_unk) symbols.push_back(*pending_unk);
}

void Bpe::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges)
    if (auto id = lookup(word)) {
      out.push_back(*id);
      return;
    }
  struct Symbol {
    TokenId id;
    int prev, next;
    bool alive;
  };
  struct Candidate {
    uint32_t rank;
    int pos;
    TokenId result;
    // std heaps keep the largest on top: invert so the lowest rank, then the
    // leftmost position, comes first.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<TokenId> ids;
  thread_local std::vector<Symbol> sym;
  thread_local std::vector<Candidate> heap_storage;
  ids.clear();
  initial_symbols(word, ids);
  const int n = static_cast<int>(ids.size());
  sym.clear();
  for (int k = 0; k < n; ++k) sym.push_back({ids[k], k - 1, k + 1 < n ? k + 1 : -1, true});

  auto& heap = heap_storage;  // a binary heap, lowest rank then leftmost on top
  heap.clear();
  auto consider = [&](int pos) {
    int next = sym[pos].next;
    if (next < 0) return;
    auto it = merges_.find(pair_key(sym[pos].id, sym[next].id));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, pos, it->second.result});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int k = 0; k + 1 < n; ++k) consider(k);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    // Skip stale entries: the pair at this position changed since it was queued.
    auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.result != top.result) continue;
    left.id = top.result;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (int k = 0; k < n; ++k)
    if (sym[k].alive) out.push_back(sym[k].id);
}

std::unique_ptr<Model> make_model(const json& spec) {
  if (spec.is_object() && !spec.contains("type") && spec.contains("merges")) return Bpe::from_json(spec);
  const std::string type = type_of(spec, "model");
  if (type == "BPE") return Bpe::from_json(spec);
  fail("unsupported model type '{}' (duet supports BPE, used by Llama 2/3, Qwen2 and Mistral)", type);
}

}  // namespace duet::tok
