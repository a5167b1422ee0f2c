#pragma once
// Everything that decides how a dataset becomes tokenized examples.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/columns.hpp"
#include "data/truncation.hpp"
#include "layout/example.hpp"

namespace duet::data {

struct PrepareOptions {
  ColumnNames columns;
  std::string chat_template = "auto";  // "auto", "none" or a built-in name
  Truncation truncation;
  // > 0: an example whose unit in `pack_layout` is longer is a problem.
  int64_t pack_tokens = 0;
  layout::Layout pack_layout = layout::Layout::paired;
  unsigned threads = 0;  // 0 = all cores
  // false: without a tokenizer, text examples are only parsed (duet data check);
  // true: they are an error (what needs token counts).
  bool require_tokens = true;
  size_t block_lines = 8192;  // lines read, then processed in parallel, at a time
};

}  // namespace duet::data
