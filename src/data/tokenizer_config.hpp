#pragma once
// The parts of a Hugging Face tokenizer_config.json (and chat_template.jinja,
// where newer transformers versions save the template) that data preparation
// needs: special-token texts and the chat template source.
#include <filesystem>
#include <optional>
#include <string>

namespace duet::data {

struct TokenizerConfig {
  std::filesystem::path file;  // the tokenizer_config.json read; empty when there is none
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> chat_template;  // Jinja source
  std::string chat_template_origin;          // the file it came from
};

// `tokenizer_path` is a tokenizer.json or a folder; the config files are
// looked for next to it. Missing files give empty fields; unreadable or
// malformed ones duet::fail naming the file.
TokenizerConfig read_tokenizer_config(const std::filesystem::path& tokenizer_path);

}  // namespace duet::data
