// LineReader over plain, gzip and zstd files: the same lines and line numbers
// whatever the compression, buffer boundaries and line endings.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#ifdef DUET_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef DUET_HAVE_ZSTD
#include <zstd.h>
#endif

#include "data/line_reader.hpp"
#include "helpers.hpp"
#include "util/error.hpp"

namespace duet::data {
namespace {

using testing::fresh_seed;
using testing::seed_trace;
using testing::TempDir;
using testing::uniform;
using testing::write_file;

// Random lines of arbitrary bytes except '\n'; some end in '\r', one may be
// longer than the reader's 1 MiB chunk.
std::vector<std::string> random_lines(std::mt19937_64& rng) {
  std::vector<std::string> lines(static_cast<size_t>(uniform(rng, 0, 300)));
  for (auto& line : lines) {
    const int64_t n = uniform(rng, 0, 20) == 0 ? uniform(rng, (1 << 20) - 5, (1 << 20) + 5000) : uniform(rng, 0, 400);
    line.resize(static_cast<size_t>(n));
    for (auto& c : line) {
      c = static_cast<char>(uniform(rng, 0, 255));
      if (c == '\n') c = 'x';
    }
    if (uniform(rng, 0, 4) == 0) line += '\r';
  }
  return lines;
}

std::string join(const std::vector<std::string>& lines, bool final_newline) {
  std::string s;
  for (size_t i = 0; i < lines.size(); ++i) {
    s += lines[i];
    if (i + 1 < lines.size() || final_newline) s += '\n';
  }
  return s;
}

// What the reader should return: "\r" before "\n" dropped. A file ending
// without "\n" still yields its last line; an empty last segment is no line.
std::vector<std::string> expected_lines(std::vector<std::string> lines) {
  for (auto& l : lines)
    if (!l.empty() && l.back() == '\r') l.pop_back();
  return lines;
}

std::vector<std::string> read_all(const std::filesystem::path& path) {
  LineReader reader(path);
  std::vector<std::string> out;
  std::string line;
  while (reader.next(line)) {
    out.push_back(line);
    EXPECT_EQ(reader.line_number(), static_cast<int64_t>(out.size()));
  }
  return out;
}

TEST(LineReader, PlainFilesGiveTheirLines) {
  for (int round = 0; round < 5; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    auto lines = random_lines(rng);
    const bool final_newline = uniform(rng, 0, 1) == 1;
    if (!final_newline && !lines.empty() && lines.back().empty()) lines.back() = "last";
    TempDir dir;
    write_file(dir / "a.jsonl", join(lines, final_newline));
    EXPECT_EQ(read_all(dir / "a.jsonl"), expected_lines(lines));
  }
}

TEST(LineReader, DropsAByteOrderMarkOnlyAtTheStart) {
  TempDir dir;
  write_file(dir / "bom.jsonl", "\xEF\xBB\xBF{\"a\":1}\r\n\xEF\xBB\xBFx\n");
  EXPECT_EQ(read_all(dir / "bom.jsonl"), (std::vector<std::string>{"{\"a\":1}", "\xEF\xBB\xBFx"}));
}

TEST(LineReader, MissingFileAndFolderFailWithTheName) {
  TempDir dir;
  try {
    LineReader reader(dir / "nope.jsonl");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.jsonl"), std::string::npos) << e.what();
  }
  EXPECT_THROW(LineReader reader(dir.path()), Error);
}

#ifdef DUET_HAVE_ZLIB
void write_gzip(const std::filesystem::path& path, const std::vector<std::string>& members) {
  // Each member is its own gzip stream; concatenated streams are one valid file.
  std::string all;
  for (const auto& m : members) {
    const auto tmp = path.string() + ".part";
    gzFile f = gzopen(tmp.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    if (!m.empty()) {
      ASSERT_EQ(gzwrite(f, m.data(), static_cast<unsigned>(m.size())), static_cast<int>(m.size()));
    }
    gzclose(f);
    all += testing::read_file(tmp);
    std::filesystem::remove(tmp);
  }
  write_file(path, all);
}

TEST(LineReader, GzipGivesTheSameLinesAcrossMembers) {
  for (int round = 0; round < 3; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    const auto lines = random_lines(rng);
    const std::string text = join(lines, true);
    const size_t cut = static_cast<size_t>(uniform(rng, 0, static_cast<int64_t>(text.size())));
    TempDir dir;
    write_gzip(dir / "a.jsonl.gz", {text.substr(0, cut), text.substr(cut)});
    LineReader reader(dir / "a.jsonl.gz");
    EXPECT_EQ(reader.compression(), "gzip");
    EXPECT_EQ(read_all(dir / "a.jsonl.gz"), expected_lines(lines));
  }
}

TEST(LineReader, TruncatedGzipFailsWithTheFileName) {
  TempDir dir;
  std::string text(200000, 'a');
  for (size_t i = 0; i < text.size(); i += 97) text[i] = static_cast<char>('a' + i % 26);
  write_gzip(dir / "t.jsonl.gz", {text});
  std::string bytes = testing::read_file(dir / "t.jsonl.gz");
  write_file(dir / "t.jsonl.gz", bytes.substr(0, bytes.size() / 2));
  try {
    read_all(dir / "t.jsonl.gz");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.jsonl.gz"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("gzip"), std::string::npos) << e.what();
  }
}
#endif

#ifdef DUET_HAVE_ZSTD
std::string zstd_frame(const std::string& data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

TEST(LineReader, ZstdGivesTheSameLinesAcrossFrames) {
  for (int round = 0; round < 3; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    const auto lines = random_lines(rng);
    const std::string text = join(lines, true);
    const size_t cut = static_cast<size_t>(uniform(rng, 0, static_cast<int64_t>(text.size())));
    TempDir dir;
    write_file(dir / "a.jsonl.zst", zstd_frame(text.substr(0, cut)) + zstd_frame(text.substr(cut)));
    LineReader reader(dir / "a.jsonl.zst");
    EXPECT_EQ(reader.compression(), "zstd");
    EXPECT_EQ(read_all(dir / "a.jsonl.zst"), expected_lines(lines));
  }
}

TEST(LineReader, TruncatedZstdFailsWithTheFileName) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 100000; ++i) text += std::to_string(i * 7919 % 1000) + (i % 10 ? " " : "\n");
  const std::string frame = zstd_frame(text);
  write_file(dir / "t.jsonl.zst", frame.substr(0, frame.size() / 2));
  try {
    read_all(dir / "t.jsonl.zst");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.jsonl.zst"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("zstd"), std::string::npos) << e.what();
  }
}
#endif

}  // namespace
}  // namespace duet::data
