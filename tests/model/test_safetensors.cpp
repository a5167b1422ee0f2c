// safetensors reading and writing: random round trips in each dtype, the
// header layout, and every corruption giving a duet::Error (never a crash).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "reference_convert.hpp"
#include "model/safetensors.hpp"
#include "util/error.hpp"

namespace duet::model {
namespace {

using nlohmann::json;
using test::TempDir;

struct RandomTensor {
  std::string name;
  Shape shape;
  std::vector<float> values;
};

std::vector<RandomTensor> random_tensors(std::mt19937_64& rng) {
  std::vector<RandomTensor> out;
  const int count = 1 + static_cast<int>(rng() % 8);
  for (int i = 0; i < count; ++i) {
    RandomTensor t;
    t.name = "layer" + std::to_string(rng() % 1000) + ".t" + std::to_string(i) + ".weight";
    const int rank = static_cast<int>(rng() % 5);  // 0 = a scalar
    for (int r = 0; r < rank; ++r) t.shape.push_back(static_cast<int64_t>(rng() % 8) + (rng() % 6 == 0 ? 0 : 1));
    t.values.resize(static_cast<size_t>(shape_numel(t.shape)));
    for (auto& v : t.values) v = test::random_float(rng);
    out.push_back(std::move(t));
  }
  // At least one tensor with data, so every truncation is detectable.
  out[0].shape = {3, 5};
  out[0].values.resize(15);
  for (auto& v : out[0].values) v = test::random_float(rng);
  return out;
}

std::vector<TensorData> views(const std::vector<RandomTensor>& tensors) {
  std::vector<TensorData> out;
  for (const auto& t : tensors) out.push_back({t.name, t.shape, t.values});
  return out;
}

// What reading back must give, from the plain reference conversions.
float stored(DType dtype, float v) {
  if (dtype == DType::BF16) return test::ref_stored_bf16(v);
  if (dtype == DType::F16) return test::ref_stored_fp16(v);
  return v;
}

void expect_error(const std::filesystem::path& path, std::initializer_list<std::string> fragments) {
  try {
    SafetensorsFile file(path);
    ADD_FAILURE() << "opened a corrupt file";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_TRUE(message.starts_with(path.string())) << message;
    for (const auto& f : fragments) EXPECT_NE(message.find(f), std::string::npos) << message;
  }
}

TEST(Safetensors, RandomRoundTripInEachDtype) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  for (int trial = 0; trial < 20; ++trial) {
    const auto tensors = random_tensors(rng);
    for (DType dtype : {DType::BF16, DType::F16, DType::F32}) {
      const auto path = dir / "model.safetensors";
      write_safetensors(path, views(tensors), dtype, {{"note", "trial " + std::to_string(trial)}});
      SafetensorsFile file(path);
      EXPECT_EQ(file.metadata().at("format"), "pt");
      EXPECT_EQ(file.metadata().at("note"), "trial " + std::to_string(trial));
      ASSERT_EQ(file.tensors().size(), tensors.size());
      for (const auto& t : tensors) {
        const TensorInfo* info = file.find(t.name);
        ASSERT_NE(info, nullptr) << t.name;
        EXPECT_EQ(info->dtype, dtype);
        EXPECT_EQ(info->shape, t.shape);
        EXPECT_EQ(file.bytes(*info).size(), t.values.size() * dtype_bits(dtype) / 8);
        std::vector<float> back(t.values.size());
        file.load_f32(*info, back);
        for (size_t i = 0; i < back.size(); ++i) {
          const float want = stored(dtype, t.values[i]);
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(back[i])) << t.name << "[" << i << "]";
          } else {
            EXPECT_EQ(back[i], want) << t.name << "[" << i << "]";
          }
        }
      }
      EXPECT_EQ(file.find("absent"), nullptr);
      if (HasFailure()) return;
    }
  }
}

TEST(Safetensors, WritesAnAlignedHeaderTransformersAccepts) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  const auto tensors = random_tensors(rng);
  write_safetensors(dir / "m.safetensors", views(tensors), DType::BF16);
  const std::string bytes = test::read_bytes(dir / "m.safetensors");
  const uint64_t n = test::header_length(bytes);
  EXPECT_EQ(n % 8, 0u);
  size_t data = 0;
  for (const auto& t : tensors) data += 2 * t.values.size();
  EXPECT_EQ(bytes.size(), 8 + n + data);
  const json header = json::parse(bytes.substr(8, n));  // padding is JSON whitespace
  EXPECT_EQ(header["__metadata__"], json({{"format", "pt"}}));
  // Offsets follow the given order, back to back from 0.
  size_t offset = 0;
  for (const auto& t : tensors) {
    const auto& e = header.at(t.name);
    EXPECT_EQ(e["dtype"], "BF16");
    EXPECT_EQ(e["shape"].get<Shape>(), t.shape);
    EXPECT_EQ(e["data_offsets"][0].get<size_t>(), offset);
    offset += 2 * t.values.size();
    EXPECT_EQ(e["data_offsets"][1].get<size_t>(), offset);
  }
  // The data is the plain little-endian encoding.
  const auto& first = tensors[0];
  for (size_t i = 0; i < first.values.size(); ++i) {
    const auto lo = static_cast<unsigned char>(bytes[8 + n + 2 * i]);
    const auto hi = static_cast<unsigned char>(bytes[8 + n + 2 * i + 1]);
    const float v = first.values[i];
    if (std::isnan(v)) {
      EXPECT_EQ(hi & 0x7f, 0x7f) << i;  // exponent all ones (mantissa checked by the dtype tests)
    } else {
      EXPECT_EQ(lo | (hi << 8), test::ref_to_bf16(v)) << i;
    }
  }
}

TEST(Safetensors, WriterReplacesFilesAtomicallyAndCleansUp) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  const auto a = random_tensors(rng), b = random_tensors(rng);
  write_safetensors(dir / "m.safetensors", views(a), DType::F32);
  write_safetensors(dir / "m.safetensors", views(b), DType::F16);
  SafetensorsFile file(dir / "m.safetensors");
  EXPECT_EQ(file.tensors().size(), b.size());
  // Failed writes leave neither a temporary file nor a changed target.
  const std::vector<float> three(3);
  EXPECT_THROW(write_safetensors(dir / "m.safetensors", std::vector<TensorData>{{"x", {2, 2}, three}},
                                 DType::F32),
               Error);
  EXPECT_THROW(write_safetensors(dir / "m.safetensors",
                                 std::vector<TensorData>{{"x", {3}, three}, {"x", {3}, three}},
                                 DType::F32),
               Error);
  EXPECT_THROW(write_safetensors(dir / "m.safetensors", std::vector<TensorData>{{"", {3}, three}},
                                 DType::F32),
               Error);
  EXPECT_THROW(write_safetensors(dir / "m.safetensors", std::vector<TensorData>{{"x", {3}, three}},
                                 DType::I64),
               Error);
  EXPECT_THROW(write_safetensors(dir / "missing-folder" / "m.safetensors",
                                 std::vector<TensorData>{{"x", {3}, three}}, DType::F32),
               Error);
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename(), "m.safetensors");
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
  EXPECT_EQ(SafetensorsFile(dir / "m.safetensors").tensors().size(), b.size());
}

TEST(Safetensors, EmptyFileListIsValid) {
  TempDir dir;
  write_safetensors(dir / "e.safetensors", {}, DType::BF16);
  SafetensorsFile file(dir / "e.safetensors");
  EXPECT_TRUE(file.tensors().empty());
}

TEST(Safetensors, ReadsOtherDtypesButRefusesToConvertThem) {
  TempDir dir;
  const std::string header = R"({"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},)"
                             R"("w":{"dtype":"F32","shape":[1],"data_offsets":[16,20]}})";
  std::string data(20, '\0');
  data[0] = 7;
  test::write_bytes(dir / "x.safetensors", test::safetensors_bytes(header, data));
  SafetensorsFile file(dir / "x.safetensors");
  const TensorInfo* ids = file.find("ids");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->dtype, DType::I64);
  EXPECT_EQ(static_cast<int>(file.bytes(*ids)[0]), 7);
  std::vector<float> out(2);
  try {
    file.load_f32(*ids, out);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'ids' has dtype I64"), std::string::npos) << e.what();
  }
  std::vector<float> wrong(2);
  EXPECT_THROW(file.load_f32(*file.find("w"), wrong), Error);
}

TEST(Safetensors, ReportsEachCorruption) {
  TempDir dir;
  const auto p = dir / "bad.safetensors";
  auto put = [&](const std::string& header, const std::string& data,
                 std::optional<uint64_t> length = std::nullopt) {
    test::write_bytes(p, test::safetensors_bytes(header, data, length));
  };
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string eight(8, '\0');

  expect_error(dir / "absent.safetensors", {"cannot open"});
  std::filesystem::create_directory(dir / "folder.safetensors");
  expect_error(dir / "folder.safetensors", {"not a regular file"});
  test::write_bytes(p, "");
  expect_error(p, {"too short"});
  test::write_bytes(p, "1234567");
  expect_error(p, {"too short"});
  put("{" + ok_entry + "}", eight, 1000);
  expect_error(p, {"header length 1000", "past the end"});
  put("{" + ok_entry + "}", eight, ~uint64_t{0});
  expect_error(p, {"past the end"});
  put("{" + ok_entry, eight);
  expect_error(p, {"not valid JSON"});
  put("[1, 2]", "");
  expect_error(p, {"not a JSON object"});
  put(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", eight);
  expect_error(p, {"'a'", "unknown dtype 'Q7'"});
  put(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", eight);
  expect_error(p, {"'a'", "dtype"});
  put(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight);
  expect_error(p, {"'a'", "shape"});
  put(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", eight);
  expect_error(p, {"'a'", "shape"});
  put(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", eight);
  expect_error(p, {"'a'", "shape"});
  put(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight);
  expect_error(p, {"'a'", "impossibly large"});
  put(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", eight);
  expect_error(p, {"'a'", "[0, 16]", "past the end"});
  put(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight);
  expect_error(p, {"'a'", "end before"});
  put(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", eight);
  expect_error(p, {"'a'", "data_offsets"});
  put(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", eight);
  expect_error(p, {"'a'", "data_offsets"});
  put(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight);
  expect_error(p, {"'a'", "hold 8 bytes", "F32 [3] needs 12 bytes"});
  put(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[2,10]}})",
      std::string(10, '\0'));
  expect_error(p, {"'a'", "'b'", "overlap"});
  put(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[6,10]}})",
      std::string(10, '\0'));
  expect_error(p, {"2 bytes before tensor 'b'"});
  put("{" + ok_entry + "}", eight + "xyz");
  expect_error(p, {"last 3 bytes"});
  put(R"({"__metadata__":{"format":1},)" + ok_entry + "}", eight);
  expect_error(p, {"metadata 'format'"});
  put(R"({"__metadata__":[],)" + ok_entry + "}", eight);
  expect_error(p, {"__metadata__"});
  put(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", eight);
  expect_error(p, {"empty name"});
  put(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", std::string(2, '\0'));
  expect_error(p, {"'a'", "12 bits"});
  // Invalid UTF-8 inside the header.
  put("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", eight);
  expect_error(p, {"not valid JSON"});
}

TEST(Safetensors, EveryTruncationIsAnError) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  const auto tensors = random_tensors(rng);
  write_safetensors(dir / "full.safetensors", views(tensors), DType::BF16);
  const std::string bytes = test::read_bytes(dir / "full.safetensors");
  const auto cut = dir / "cut.safetensors";
  std::vector<size_t> lengths = {0, 1, 7, 8, 9, bytes.size() - 1};
  for (int i = 0; i < 40; ++i) lengths.push_back(rng() % bytes.size());
  for (size_t length : lengths) {
    SCOPED_TRACE(::testing::Message() << "kept " << length << " of " << bytes.size() << " bytes");
    test::write_bytes(cut, bytes.substr(0, length));
    EXPECT_THROW(SafetensorsFile{cut}, Error);
  }
}

// Random damage to the header must be rejected with duet::Error or, where it
// still describes a consistent file (e.g. a renamed tensor), accepted; the
// accepted file must still only expose bytes inside the file.
TEST(Safetensors, RandomHeaderDamageNeverCrashes) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  const auto tensors = random_tensors(rng);
  write_safetensors(dir / "full.safetensors", views(tensors), DType::F16);
  const std::string bytes = test::read_bytes(dir / "full.safetensors");
  const size_t header_end = 8 + test::header_length(bytes);
  const auto bad = dir / "bad.safetensors";
  int rejected = 0;
  for (int i = 0; i < 500; ++i) {
    std::string damaged = bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      const size_t at = rng() % header_end;
      damaged[at] = static_cast<char>(rng() % 4 == 0 ? "0123456789,:[]{}\""[rng() % 17] : rng());
    }
    test::write_bytes(bad, damaged);
    try {
      SafetensorsFile file(bad);
      for (const auto& t : file.tensors()) {
        EXPECT_EQ(file.bytes(t).size(), t.end - t.begin);
        EXPECT_LE(8 + test::header_length(damaged) + t.end, damaged.size());
        if (is_float_dtype(t.dtype)) {
          std::vector<float> out(static_cast<size_t>(t.numel()));
          file.load_f32(t, out);
        }
      }
    } catch (const Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-duet exception: " << e.what();
    }
  }
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace duet::model
