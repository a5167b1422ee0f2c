#include "data/json_location.hpp"

#include <vector>

#include <fmt/format.h>

namespace duet::data {

namespace {

struct Frame {
  bool object = false;
  bool expecting_key = true;  // objects: before ':' of the current member
  std::string key;
  size_t index = 0;  // arrays
};

std::string path_of(const std::vector<Frame>& stack) {
  std::string path;
  for (const Frame& f : stack) {
    if (f.object) {
      if (f.expecting_key) break;  // between members: the object itself
      if (!path.empty()) path += '.';
      path += f.key;
    } else {
      path += fmt::format("[{}]", f.index);
    }
  }
  return path.empty() ? "(line)" : path;
}

// The field a key belongs to: its object's path.
std::string key_path(const std::vector<Frame>& stack) {
  const std::string path = path_of(stack);
  return path == "(line)" ? "(a key)" : path + " (a key)";
}

}  // namespace

std::string json_path_at(std::string_view text, size_t offset) {
  std::vector<Frame> stack;
  size_t i = 0;
  while (i < text.size() && i <= offset) {
    const char c = text[i];
    if (c == '"') {
      const bool is_key = !stack.empty() && stack.back().object && stack.back().expecting_key;
      std::string raw;
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (j >= offset) return is_key ? key_path(stack) : path_of(stack);
        if (text[j] == '\\') ++j;  // skip the escaped character (\" included)
        else if (is_key) raw += text[j];
      }
      if (j >= offset) return is_key ? key_path(stack) : path_of(stack);
      if (is_key) stack.back().key = std::move(raw);
      i = j + 1;
      continue;
    }
    if (c == '{' || c == '[') {
      stack.push_back(Frame{c == '{', true, {}, 0});
    } else if ((c == '}' || c == ']') && !stack.empty()) {
      stack.pop_back();
    } else if (c == ',' && !stack.empty()) {
      if (stack.back().object) stack.back().expecting_key = true;
      else ++stack.back().index;
    } else if (c == ':' && !stack.empty() && stack.back().object) {
      stack.back().expecting_key = false;
    }
    ++i;
  }
  return path_of(stack);
}

}  // namespace duet::data
