#include "data/tokenizer_config.hpp"


#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/read_file.hpp"

namespace duet::data {

using nlohmann::json;

namespace {

std::string read_whole(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text) fail("{}: cannot open", path.string());
  return std::move(*text);
}

// A special token is written as a string or as an AddedToken object {"content": ...}.
std::optional<std::string> token_text(const json& config, const char* key, const std::filesystem::path& file) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  fail("{}: '{}' should be a string or {{\"content\": ...}}, got {}", file.string(), key, it->dump());
}

// chat_template is a string, or a list of {"name", "template"} of which
// "default" is the one apply_chat_template uses.
std::optional<std::string> template_text(const json& config, const std::filesystem::path& file) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const auto& entry : *it)
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string())
        return entry["template"].get<std::string>();
    fail("{}: 'chat_template' is a list without a \"default\" entry; pass --chat-template NAME", file.string());
  }
  fail("{}: 'chat_template' should be a string or a list of named templates", file.string());
}

}  // namespace

TokenizerConfig read_tokenizer_config(const std::filesystem::path& tokenizer_path) {
  std::error_code ec;
  const std::filesystem::path dir =
      std::filesystem::is_directory(tokenizer_path, ec) ? tokenizer_path : tokenizer_path.parent_path();
  TokenizerConfig out;
  const auto config_file = dir / "tokenizer_config.json";
  if (std::filesystem::exists(config_file, ec)) {
    out.file = config_file;
    json config = json::parse(read_whole(config_file), nullptr, false);
    if (config.is_discarded() || !config.is_object())
      fail("{}: not a JSON object; re-download the model's tokenizer files", config_file.string());
    out.bos_token = token_text(config, "bos_token", config_file);
    out.eos_token = token_text(config, "eos_token", config_file);
    out.chat_template = template_text(config, config_file);
    if (out.chat_template) out.chat_template_origin = config_file.string();
  }
  // transformers >= 4.43 saves the template in its own file, which then wins.
  const auto jinja_file = dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja_file, ec)) {
    out.chat_template = read_whole(jinja_file);
    out.chat_template_origin = jinja_file.string();
  }
  return out;
}

}  // namespace duet::data
