#include "data/raw_example.hpp"

namespace duet::data {

std::string_view format_name(Format format) {
  switch (format) {
    case Format::standard: return "standard";
    case Format::conversational: return "conversational";
    case Format::pretokenized: return "pre-tokenized";
  }
  return "?";
}

size_t RawExample::num_responses() const {
  switch (format) {
    case Format::standard: return response_texts.size();
    case Format::conversational: return response_chats.size();
    case Format::pretokenized: return response_ids.size();
  }
  return 0;
}

}  // namespace duet::data
