// --report-to tensorboard: the event files are read back by a decoder written
// here from the formats' definitions (TFRecord framing with masked CRC32C,
// tensorflow.Event protobuf fields), independent of the writer: a bitwise CRC
// instead of the writer's table, a generic protobuf field walker. Every record's
// CRCs are checked, and the scalars match metrics.jsonl, record by record.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "common/seeds.hpp"
#include "engine/parameters.hpp"
#include "model/config.hpp"
#include "trainer/tensorboard.hpp"
#include "trainer/trainer.hpp"

namespace duet::trainer {
namespace {

namespace fs = std::filesystem;

uint32_t bitwise_crc32c(const std::string& s) {
  uint32_t c = ~0u;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
  }
  return ~c;
}
uint32_t masked(const std::string& s) {
  const uint32_t c = bitwise_crc32c(s);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// A protobuf message as field number -> values (varints and fixed numbers as
// their raw 64 bits, length-delimited fields as bytes).
struct Field {
  int wire_type;
  uint64_t number;
  std::string bytes;
};
std::multimap<int, Field> decode(const std::string& m) {
  std::multimap<int, Field> fields;
  size_t i = 0;
  auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (i >= m.size() || shift > 63) throw std::runtime_error("bad varint");
      const auto b = static_cast<unsigned char>(m[i++]);
      v |= uint64_t{b & 0x7Fu} << shift;
      if (!(b & 0x80)) return v;
    }
  };
  auto fixed = [&](size_t n) {
    if (i + n > m.size()) throw std::runtime_error("truncated fixed field");
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= uint64_t{static_cast<unsigned char>(m[i + k])} << (8 * k);
    i += n;
    return v;
  };
  while (i < m.size()) {
    const uint64_t key = varint();
    Field f{static_cast<int>(key & 7), 0, {}};
    if (f.wire_type == 0) f.number = varint();
    else if (f.wire_type == 1) f.number = fixed(8);
    else if (f.wire_type == 5) f.number = fixed(4);
    else if (f.wire_type == 2) {
      const uint64_t n = varint();
      if (i + n > m.size()) throw std::runtime_error("truncated bytes field");
      f.bytes = m.substr(i, n);
      i += n;
    } else throw std::runtime_error("unexpected wire type " + std::to_string(f.wire_type));
    fields.emplace(static_cast<int>(key >> 3), f);
  }
  return fields;
}

struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> scalars;
  int session_status = 0;
};

// Reads every record of an event file; the test fails on a bad CRC or framing.
std::vector<Event> read_events(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Event> events;
  size_t i = 0;
  auto u32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, all.data() + at, 4);
    return v;
  };
  while (i < all.size()) {
    if (i + 12 > all.size()) throw std::runtime_error("truncated record header");
    const std::string len_bytes = all.substr(i, 8);
    uint64_t len;
    std::memcpy(&len, len_bytes.data(), 8);
    if (u32(i + 8) != masked(len_bytes)) throw std::runtime_error("length CRC mismatch");
    if (i + 12 + len + 4 > all.size()) throw std::runtime_error("truncated record");
    const std::string data = all.substr(i + 12, len);
    if (u32(i + 12 + len) != masked(data)) throw std::runtime_error("data CRC mismatch");
    i += 12 + len + 4;
    Event e;
    for (const auto& [field, f] : decode(data)) {
      if (field == 1) e.wall_time = std::bit_cast<double>(f.number);
      else if (field == 2) e.step = static_cast<int64_t>(f.number);
      else if (field == 3) e.file_version = f.bytes;
      else if (field == 5) {
        for (const auto& [vf, value] : decode(f.bytes)) {
          if (vf != 1) continue;
          std::string tag;
          float simple = NAN;
          for (const auto& [k, x] : decode(value.bytes)) {
            if (k == 1) tag = x.bytes;
            if (k == 2 && x.wire_type == 5) simple = std::bit_cast<float>(static_cast<uint32_t>(x.number));
          }
          e.scalars.emplace_back(tag, simple);
        }
      } else if (field == 6) {
        for (const auto& [k, x] : decode(f.bytes))
          if (k == 1) e.session_status = static_cast<int>(x.number);
      }
    }
    events.push_back(e);
  }
  return events;
}

std::vector<fs::path> event_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().starts_with("events.out.tfevents.")) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(TensorBoard, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c(""), 0u);
  DUET_SEEDED_RNG(rng);
  std::string s(static_cast<size_t>(rng() % 1000), '\0');
  for (char& c : s) c = static_cast<char>(rng());
  EXPECT_EQ(crc32c(s), bitwise_crc32c(s));
  EXPECT_EQ(masked_crc32c(s), masked(s));
}

TEST(TensorBoard, WriterFramesEveryEventAndStartsWithTheFileVersion) {
  const fs::path dir = fs::temp_directory_path() / ("duet_tb_" + std::to_string(::duet::test::fresh_seed()));
  {
    TensorBoardWriter w(dir);
    w.scalars(3, {{"train/loss", 0.6931}, {"train/learning_rate", 1e-6}});
    w.record({{"step", 1ll << 40}, {"eval_loss", -2.5}, {"epoch", 0.25}, {"note", "text"}});
    w.restart(7);
  }
  const auto files = event_files(dir);
  ASSERT_EQ(files.size(), 1u);
  const auto events = read_events(files[0]);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_GT(events[0].wall_time, 1.6e9);  // seconds since 1970, now
  EXPECT_EQ(events[1].step, 3);
  ASSERT_EQ(events[1].scalars.size(), 2u);
  EXPECT_EQ(events[1].scalars[0], (std::pair<std::string, float>{"train/loss", 0.6931f}));
  EXPECT_EQ(events[1].scalars[1], (std::pair<std::string, float>{"train/learning_rate", 1e-6f}));
  EXPECT_EQ(events[2].step, int64_t{1} << 40);
  ASSERT_EQ(events[2].scalars.size(), 2u);  // the text and `step` are not scalars
  EXPECT_EQ(events[2].scalars[0], (std::pair<std::string, float>{"train/epoch", 0.25f}));
  EXPECT_EQ(events[2].scalars[1], (std::pair<std::string, float>{"eval/loss", -2.5f}));
  EXPECT_EQ(events[3].step, 7);
  EXPECT_EQ(events[3].session_status, 1);  // START
  fs::remove_all(dir);
}

// A tiny run with --report-to tensorboard and an eval set: every metrics.jsonl
// record is an event with the same step and values (as float), tagged as
// transformers' TensorBoardCallback tags them.
TEST(TensorBoard, TrainingRunWritesWhatMetricsJsonlHolds) {
  const uint64_t seed = ::duet::test::fresh_seed();
  SCOPED_TRACE("DUET_TEST_SEED=" + std::to_string(seed));
  const fs::path tmp = fs::temp_directory_path() / ("duet_tb_run_" + std::to_string(seed));
  fs::create_directories(tmp / "model");
  model::ModelConfig c;
  c.vocab_size = 32, c.hidden_size = 16, c.intermediate_size = 32, c.num_hidden_layers = 1;
  c.num_attention_heads = 2, c.num_key_value_heads = 1, c.head_dim = 8, c.max_position_embeddings = 128;
  c.dtype = model::DType::F32;
  model::save_config(c, tmp / "model" / "config.json");
  engine::ParameterSet<float> p(c);
  engine::init_random(p, seed, 0.1);
  engine::save_weights(p, tmp / "model" / "model.safetensors", c.dtype);
  {
    std::mt19937_64 rng(seed);
    std::ofstream out(tmp / "data.jsonl");
    for (int i = 0; i < 24; ++i) {
      auto ids = [&](int n) {
        std::vector<int> v(static_cast<size_t>(1 + rng() % n));
        for (int& t : v) t = 1 + static_cast<int>(rng() % 31);
        return v;
      };
      const auto chosen = ids(4);
      auto rejected = ids(4);
      while (rejected == chosen) rejected = ids(4);  // the data layer refuses identical responses
      out << nlohmann::json{{"prompt_input_ids", ids(6)}, {"chosen_input_ids", chosen}, {"rejected_input_ids", rejected}}
                 .dump()
          << "\n";
    }
  }
  TrainOptions o;
  o.model = tmp / "model", o.data = tmp / "data.jsonl", o.out = tmp / "out";
  o.batch_size = 4, o.max_steps = 5, o.logging_steps = 2, o.eval_fraction = 0.25, o.eval_steps = 2;
  o.learning_rate = 1e-3, o.progress = false, o.seed = seed, o.report_to = "tensorboard";
  ASSERT_EQ(Trainer(o).run(), 0);

  std::vector<nlohmann::json> records;
  std::ifstream in(o.out / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  const auto files = event_files(o.out / "runs");
  ASSERT_EQ(files.size(), 1u);
  const auto events = read_events(files[0]);
  ASSERT_EQ(events.size(), records.size() + 1);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  size_t train_records = 0, eval_records = 0;
  for (size_t r = 0; r < records.size(); ++r) {
    SCOPED_TRACE("record " + records[r].dump());
    const Event& e = events[r + 1];
    EXPECT_EQ(e.step, records[r]["step"].get<int64_t>());
    std::map<std::string, float> got(e.scalars.begin(), e.scalars.end());
    size_t expected = 0;
    for (const auto& [key, value] : records[r].items()) {
      if (key == "step") continue;
      ++expected;
      const std::string t = key.starts_with("eval_") ? "eval/" + key.substr(5) : "train/" + key;
      ASSERT_TRUE(got.count(t)) << t;
      EXPECT_EQ(got[t], static_cast<float>(value.get<double>())) << t;
    }
    EXPECT_EQ(got.size(), expected);
    (records[r].contains("eval_loss") ? eval_records : train_records) += 1;
  }
  EXPECT_EQ(train_records, 3u);  // steps 2, 4, 5
  EXPECT_EQ(eval_records, 3u);
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace duet::trainer
