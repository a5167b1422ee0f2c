#include "tokenizer/post_processor.hpp"

#include <map>

#include "tokenizer/json_fields.hpp"

namespace duet::tok {

namespace {

// The single-sequence template as a list of pieces: either a run of special
// ids or the placeholder for the sequence itself.
class Template final : public PostProcessor {
 public:
  struct Item {
    bool is_sequence;
    std::vector<TokenId> ids;
  };
  explicit Template(std::vector<Item> items) : items_(std::move(items)) {}
  void add_special_tokens(std::vector<TokenId>& ids) const override {
    std::vector<TokenId> out;
    out.reserve(ids.size() + 4);
    for (const Item& item : items_) {
      const auto& src = item.is_sequence ? ids : item.ids;
      out.insert(out.end(), src.begin(), src.end());
    }
    ids.swap(out);
  }

 private:
  std::vector<Item> items_;
};

class NoOp final : public PostProcessor {
 public:
  void add_special_tokens(std::vector<TokenId>&) const override {}
};

class Sequence final : public PostProcessor {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void add_special_tokens(std::vector<TokenId>& ids) const override {
    for (const auto& s : steps_) s->add_special_tokens(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::unique_ptr<PostProcessor> template_processing(const json& spec, const std::string& where) {
  std::map<std::string, std::vector<TokenId>> specials;
  for (const auto& [name, s] : object_field(spec, "special_tokens", where).items())
    specials[name] = field<std::vector<TokenId>>(s, "ids", where + " special token " + name);
  std::vector<Template::Item> items;
  for (const json& piece : list_field(spec, "single", where)) {
    if (piece.contains("Sequence")) {
      std::string id = field<std::string>(piece["Sequence"], "id", where);
      if (id != "A") fail("{}: the single-sequence template refers to sequence '{}' (expected A)", where, id);
      items.push_back({true, {}});
    } else if (piece.contains("SpecialToken")) {
      std::string id = field<std::string>(piece["SpecialToken"], "id", where);
      auto it = specials.find(id);
      if (it == specials.end()) fail("{}: template uses special token '{}' missing from special_tokens", where, id);
      items.push_back({false, it->second});
    } else {
      fail("{}: template piece {} is neither Sequence nor SpecialToken", where, piece.dump());
    }
  }
  return std::make_unique<Template>(std::move(items));
}

// BertProcessing / RobertaProcessing: [cls] A [sep], each given as [token, id].
std::unique_ptr<PostProcessor> cls_sep(const json& spec, const std::string& where) {
  auto id_of = [&](const char* key) {
    const json& pair = require(spec, key, where);
    if (!pair.is_array() || pair.size() != 2 || !pair[1].is_number_unsigned())
      fail("{}: '{}' must be [token, id]", where, key);
    return detail::convert_id(pair[1], where, key);
  };
  return std::make_unique<Template>(
      std::vector<Template::Item>{{false, {id_of("cls")}}, {true, {}}, {false, {id_of("sep")}}});
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const json& spec) {
  if (spec.is_null()) return nullptr;
  const std::string type = type_of(spec, "post_processor");
  const std::string where = "post_processor " + type;
  if (type == "TemplateProcessing") return template_processing(spec, where);
  if (type == "ByteLevel") return std::make_unique<NoOp>();
  if (type == "BertProcessing" || type == "RobertaProcessing") return cls_sep(spec, where);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const json& s : list_field(spec, "processors", where))
      if (auto p = make_post_processor(s)) steps.push_back(std::move(p));
    return std::make_unique<Sequence>(std::move(steps));
  }
  fail("unsupported post_processor type '{}' (supported: TemplateProcessing, ByteLevel, BertProcessing, "
       "RobertaProcessing, Sequence)", type);
}

}  // namespace duet::tok
