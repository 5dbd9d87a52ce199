// The t2v program end to end: exit codes and one-line errors for bad input,
// `inspect` on a file written by Python's safetensors, the test-pattern video.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "cli_test_util.h"
#include "video_io/mp4_reader.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(Cli, VersionAndHelp) {
  RunResult r = run_t2v({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("t2v "), std::string::npos);
  r = run_t2v({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Examples:"), std::string::npos);
  EXPECT_NE(r.out.find("generate"), std::string::npos);
}

TEST(Cli, UnknownSubcommandOrOptionIsUsageError) {
  EXPECT_EQ(run_t2v({"frobnicate"}).code, 64);
  EXPECT_EQ(run_t2v({"generate", "-p", "x", "--no-such-option"}).code, 64);
  EXPECT_EQ(run_t2v({}).code, 64);
}

struct BadCase {
  std::vector<std::string> args;
  int code;
  std::string needle;
};

TEST(Cli, BadParametersAreRefusedBeforeAnyModelLoad) {
  TempDir dir;
  std::string out = dir.file("v.mp4");
  // --model points at nothing: if validation did not come first these would fail with 66 instead.
  std::vector<std::string> base = {"generate", "--model", "/nonexistent/model", "-o", out};
  std::vector<BadCase> cases = {
      {{"-p", "a cat", "--frames", "80"}, 64, "4k+1"},
      {{"-p", "a cat", "--size", "833x480"}, 64, "832"},
      {{"-p", "a cat", "--size", "big"}, 64, "--size"},
      {{"-p", "a cat", "--steps", "0"}, 64, "--steps"},
      {{"-p", "a cat", "--cfg", "nan"}, 64, "--cfg"},
      {{"-p", "a cat", "--cfg", "-2"}, 64, "--cfg"},
      {{"-p", "a cat", "--shift", "0"}, 64, "--shift"},
      {{"-p", "a cat", "--fps", "0"}, 64, "fps"},
      {{"-p", "a cat", "--seed", "-5"}, 64, "--seed"},
      {{"-p", "a cat", "--seed", "18446744073709551616"}, 64, "--seed"},
      {{"-p", "a cat", "--sampler", "ddim"}, 64, "--sampler"},
      {{"-p", ""}, 65, "prompt is empty"},
      {{"-p", "   "}, 65, "prompt is empty"},
      {{"-p", "caf\xc3"}, 65, "UTF-8"},
  };
  for (const BadCase& c : cases) {
    std::vector<std::string> args = base;
    args.insert(args.end(), c.args.begin(), c.args.end());
    RunResult r = run_t2v(args);
    EXPECT_EQ(r.code, c.code) << c.args[1] << " " << (c.args.size() > 2 ? c.args[3] : "") << "\n" << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << "errors are one line: " << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

TEST(Cli, UnwritableOutputIsRefusedUpFront) {
  TempDir dir;
  // A regular file used as a folder fails even for root.
  std::ofstream(dir.file("notadir")) << "x";
  RunResult r = run_t2v({"generate", "-p", "a cat", "-o", dir.file("notadir/v.mp4")});
  EXPECT_EQ(r.code, 73) << r.err;
  r = run_t2v({"generate", "-p", "a cat", "-o", dir.file("missing/v.mp4")});
  EXPECT_EQ(r.code, 73) << r.err;
}

TEST(Cli, NoModelIsOneLineNamingTheFix) {
  TempDir dir;
  // T2V_DEFAULT_MODEL set and empty: no default model, as in an install without models/.
  RunResult r = run_program({T2V_EXE, "generate", "-p", "a red ball", "-o", dir.file("v.mp4")},
                            {{"T2V_DEFAULT_MODEL", ""}});
  EXPECT_EQ(r.code, 66) << r.err;
  EXPECT_NE(r.err.find("no model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--model"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("v.mp4")));
}

TEST(Cli, TestPatternVideo) {
  TempDir dir;
  std::string out = dir.file("pattern.mp4");
  RunResult r = run_t2v({"generate", "-p", "a red ball", "-o", out, "--size", "128x96", "--frames", "9", "--seed",
                         "3", "--test-pattern"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("TEST PATTERN"), std::string::npos) << "the user is told this is not a generation";
  Mp4Reader reader;
  reader.open(out);
  VideoInfo info = reader.info();
  EXPECT_EQ(info.codec_name, "h264");
  EXPECT_EQ(info.pix_fmt, "yuv420p");
  EXPECT_EQ(info.width, 128);
  EXPECT_EQ(info.height, 96);
  EXPECT_EQ(info.frame_count, 9);
  ASSERT_TRUE(info.metadata.count("t2v"));
  EXPECT_NE(info.metadata.at("t2v").find("\"seed\":3"), std::string::npos) << info.metadata.at("t2v");
  // An existing output is never overwritten without --overwrite.
  r = run_t2v({"generate", "-p", "a red ball", "-o", out, "--size", "128x96", "--frames", "9", "--test-pattern"});
  EXPECT_EQ(r.code, 73) << r.err;
  r = run_t2v({"generate", "-p", "a red ball", "-o", out, "--size", "128x96", "--frames", "9", "--overwrite",
               "--test-pattern"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(Cli, InspectPythonWrittenFile) {
  std::string fixture = std::string(T2V_TEST_DATA_DIR) + "/core/python_fixture.safetensors";
  if (!fs::exists(fixture)) GTEST_FAIL() << "missing fixture " << fixture;
  RunResult r = run_t2v({"inspect", fixture});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tensors"), std::string::npos);
  EXPECT_NE(r.out.find("parameters"), std::string::npos);
}

TEST(Cli, InspectRefusesPickleAndCorruptFiles) {
  TempDir dir;
  std::string pth = dir.file("model.pth");
  std::ofstream(pth, std::ios::binary) << std::string("PK\x03\x04", 4) << "rest of a zip";
  RunResult r = run_t2v({"inspect", pth});
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_NE(r.err.find("safetensors"), std::string::npos) << r.err;
  std::string tiny = dir.file("tiny.safetensors");
  std::ofstream(tiny, std::ios::binary) << "abc";
  r = run_t2v({"inspect", tiny});
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  r = run_t2v({"inspect", dir.file("absent.safetensors")});
  EXPECT_EQ(r.code, 66) << r.err;
}

}  // namespace
}  // namespace t2v::test

namespace t2v::test {
namespace {

// Every corrupt fixture (safetensors and GGUF) through the program: exit 65, one
// line on stderr that names the file, and the distinctive words the library test expects.
TEST(Cli, InspectCorruptFixturesExit65WithOneLine) {
  for (const char* folder : {"/core/corrupt", "/core/gguf_corrupt"}) {
    std::string dir = std::string(T2V_TEST_DATA_DIR) + folder;
    std::ifstream tsv(dir + "/EXPECTED.tsv");
    ASSERT_TRUE(tsv.good()) << "missing " << dir << "/EXPECTED.tsv";
    std::string line;
    int checked = 0;
    while (std::getline(tsv, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::string file = line.substr(0, line.find('\t'));
      std::string needle = line.find('\t') == std::string::npos ? "" : line.substr(line.find('\t') + 1);
      RunResult r = run_t2v({"inspect", dir + "/" + file});
      EXPECT_EQ(r.code, 65) << file << ": " << r.err;
      EXPECT_EQ(count_lines(r.err), 1) << file << ": " << r.err;
      EXPECT_NE(r.err.find(file), std::string::npos) << file << ": " << r.err;
      if (!needle.empty()) {
        EXPECT_NE(r.err.find(needle), std::string::npos) << file << " wants '" << needle << "': " << r.err;
      }
      ++checked;
    }
    EXPECT_GE(checked, 30) << dir;
  }
}

}  // namespace
}  // namespace t2v::test
