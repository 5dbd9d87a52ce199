// MP4 writer and reader: a synthetic moving-square video written, read back and checked
// against its source and against ffprobe; faststart, colour tags, metadata, rational
// frame rates, determinism, size validation and every failure path of the output file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "video_io/mp4_reader.h"
#include "video_io/mp4_writer.h"
#include "video_io/test_pattern.h"
#include "video_test_util.h"

namespace t2v {
namespace {

using test::ScratchDir;

constexpr int kW = 128, kH = 96, kFrames = 17;

// The generation record the app stores under the "t2v" key.
std::string sample_t2v_json() {
  nlohmann::json j = {{"prompt", "a red square slides over a gradient, \"quoted\" & ünïcödé 🎬"},
                      {"negative_prompt", "blurry; low quality\nsecond line"},
                      {"seed", 18446744073709551615ull},
                      {"steps", 30},
                      {"cfg", 5.0},
                      {"shift", 3.0},
                      {"sampler", "unipc"},
                      {"model", "Wan2.1-T2V-1.3B"},
                      {"version", "0.1.0"}};
  return j.dump();
}

Mp4Options sample_options() {
  Mp4Options o;
  o.metadata["t2v"] = sample_t2v_json();
  o.metadata["comment"] = "synthetic moving square";
  o.metadata["title"] = "test pattern";
  return o;
}

std::vector<std::vector<uint8_t>> pattern_frames(int w, int h, int n) {
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < n; ++i) frames.push_back(test_pattern_frame(w, h, i, n));
  return frames;
}

void write_video(const std::string& path, const std::vector<std::vector<uint8_t>>& frames, int w, int h, Rational fps,
                 const Mp4Options& options) {
  Mp4Writer writer;
  writer.open(path, w, h, fps, options);
  for (const auto& f : frames) writer.write_frame(f.data(), int64_t{w} * 3);
  writer.finish();
}

// Runs `fn`, expects t2v::Error with `code` whose message contains `needle`.
template <class Fn>
void expect_error(Fn fn, int code, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected Error(" << code << ") containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Mp4, MovingSquareRoundTrip) {
  ScratchDir dir;
  const std::string path = dir.file("square.mp4");
  const auto frames = pattern_frames(kW, kH, kFrames);
  const Mp4Options options = sample_options();
  write_video(path, frames, kW, kH, Rational{16, 1}, options);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"square.mp4"});  // no temp file left
  EXPECT_LE(test::read_bytes(path).size(), estimate_output_bytes(kW, kH, kFrames));

  Mp4Reader reader;
  reader.open(path);
  const VideoInfo& info = reader.info();
  EXPECT_NE(info.format_name.find("mp4"), std::string::npos) << info.format_name;
  EXPECT_EQ(info.codec_name, "h264");
  EXPECT_EQ(info.profile, "High");
  EXPECT_EQ(info.pix_fmt, "yuv420p");
  EXPECT_EQ(info.width, kW);
  EXPECT_EQ(info.height, kH);
  EXPECT_EQ(info.fps, (Rational{16, 1}));
  EXPECT_EQ(info.frame_count, kFrames);
  EXPECT_NEAR(info.duration_s, kFrames / 16.0, 1e-6);
  EXPECT_EQ(info.color_primaries, "bt709");
  EXPECT_EQ(info.color_trc, "bt709");
  EXPECT_EQ(info.color_space, "bt709");
  EXPECT_EQ(info.color_range, "tv");
  ASSERT_TRUE(info.metadata.count("t2v"));
  EXPECT_EQ(info.metadata.at("t2v"), options.metadata.at("t2v"));
  EXPECT_EQ(nlohmann::json::parse(info.metadata.at("t2v"))["seed"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ(info.metadata.at("comment"), "synthetic moving square");
  EXPECT_EQ(info.metadata.at("title"), "test pattern");

  const auto decoded = reader.read_all_frames();
  ASSERT_EQ(decoded.size(), size_t(kFrames));
  double worst = INFINITY, sum = 0;
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_EQ(decoded[i].size(), frames[i].size());
    const double p = test::psnr(frames[i], decoded[i]);
    worst = std::min(worst, p);
    sum += p;
    EXPECT_GE(p, 35.0) << "frame " << i;
    // Frames come back in order: the counter bars survive the codec.
    EXPECT_EQ(read_test_pattern_index(decoded[i].data(), kW, kH, kW * 3), i);
  }
  std::printf("[ psnr ] %dx%d, %d frames, crf %d: mean %.2f dB, worst %.2f dB\n", kW, kH, kFrames, options.crf,
              sum / kFrames, worst);
}

TEST(Mp4, FaststartPutsMoovBeforeMdat) {
  ScratchDir dir;
  const std::string path = dir.file("fast.mp4");
  write_video(path, pattern_frames(kW, kH, 5), kW, kH, Rational{16, 1}, {});
  bool tiles = false;
  const auto boxes = test::top_level_boxes(test::read_bytes(path), tiles);
  EXPECT_TRUE(tiles) << "top-level boxes do not cover the file exactly";
  ASSERT_GE(boxes.size(), 3u);
  EXPECT_EQ(boxes[0].type, "ftyp");
  int moov = -1, mdat = -1;
  for (size_t i = 0; i < boxes.size(); ++i) {
    if (boxes[i].type == "moov") moov = int(i);
    if (boxes[i].type == "mdat") mdat = int(i);
  }
  ASSERT_GE(moov, 0);
  ASSERT_GE(mdat, 0);
  EXPECT_LT(moov, mdat);
}

TEST(Mp4, StructureCheckFindsTruncation) {
  ScratchDir dir;
  const std::string path = dir.file("whole.mp4");
  write_video(path, pattern_frames(kW, kH, kFrames), kW, kH, Rational{16, 1}, {});
  EXPECT_EQ(mp4_structure_problem(path), "");
  const auto bytes = test::read_bytes(path);
  auto write_prefix = [&](const std::string& name, size_t n) {
    std::ofstream(dir.file(name), std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), long(n));
    return dir.file(name);
  };
  // Cut inside mdat (the last box of a faststart file): the header still probes fine.
  EXPECT_NE(mp4_structure_problem(write_prefix("cut.mp4", bytes.size() - 100)).find("truncated"), std::string::npos);
  EXPECT_NE(mp4_structure_problem(write_prefix("tiny.mp4", 20)).find("truncated"), std::string::npos);
  EXPECT_NE(mp4_structure_problem(write_prefix("empty.mp4", 0)), "");
  test::write_text(dir.file("text.mp4"), "definitely not an mp4 file");
  EXPECT_NE(mp4_structure_problem(dir.file("text.mp4")), "");
  EXPECT_NE(mp4_structure_problem(dir.file("missing.mp4")).find("cannot open"), std::string::npos);
}

TEST(Mp4, FfprobeAgrees) {
  if (!test::have_program("ffprobe")) GTEST_SKIP() << "ffprobe not installed";
  ScratchDir dir;
  const std::string path = dir.file("probe.mp4");
  const Mp4Options options = sample_options();
  write_video(path, pattern_frames(kW, kH, kFrames), kW, kH, Rational{16, 1}, options);
  int rc = 0;
  const std::string out =
      test::run_command("ffprobe -v error -count_frames -show_streams -show_format -of json '" + path + "'", rc);
  ASSERT_EQ(rc, 0) << out;
  const auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j["streams"].size(), 1u);
  const auto& s = j["streams"][0];
  EXPECT_EQ(s["codec_name"], "h264");
  EXPECT_EQ(s["profile"], "High");
  EXPECT_EQ(s["pix_fmt"], "yuv420p");
  EXPECT_EQ(s["width"], kW);
  EXPECT_EQ(s["height"], kH);
  EXPECT_EQ(s["r_frame_rate"], "16/1");
  EXPECT_EQ(s["avg_frame_rate"], "16/1");
  EXPECT_EQ(s["nb_frames"], std::to_string(kFrames));
  EXPECT_EQ(s["nb_read_frames"], std::to_string(kFrames));
  EXPECT_EQ(s["color_range"], "tv");
  EXPECT_EQ(s["color_space"], "bt709");
  EXPECT_EQ(s["color_transfer"], "bt709");
  EXPECT_EQ(s["color_primaries"], "bt709");
  EXPECT_NEAR(std::stod(s["duration"].get<std::string>()), kFrames / 16.0, 1e-3);
  const auto& f = j["format"];
  EXPECT_NE(f["format_name"].get<std::string>().find("mp4"), std::string::npos);
  EXPECT_EQ(f["tags"]["t2v"], options.metadata.at("t2v"));
  EXPECT_EQ(f["tags"]["comment"], "synthetic moving square");
  EXPECT_EQ(f["tags"]["title"], "test pattern");

  // Strict full decode: any damage makes ffmpeg exit non-zero with -xerror.
  if (test::have_program("ffmpeg")) {
    const std::string err =
        test::run_command("ffmpeg -nostdin -v error -xerror -i '" + path + "' -f null - 2>&1", rc);
    EXPECT_EQ(rc, 0) << err;
    EXPECT_EQ(err, "");
  }
}

TEST(Mp4, ConversionUsesTheTaggedBt709LimitedRangeMatrix) {
  // A flat colour whose BT.709 and BT.601 encodings differ clearly; ffmpeg hands back the
  // stored YUV samples untouched (rawvideo yuv420p out of a yuv420p stream).
  if (!test::have_program("ffmpeg")) GTEST_SKIP() << "ffmpeg not installed";
  ScratchDir dir;
  const std::string path = dir.file("flat.mp4");
  const int R = 200, G = 50, B = 100;
  std::vector<uint8_t> flat(size_t(kW) * kH * 3);
  for (size_t i = 0; i < flat.size(); i += 3) flat[i] = R, flat[i + 1] = G, flat[i + 2] = B;
  write_video(path, {flat, flat}, kW, kH, Rational{16, 1}, {});
  int rc = 0;
  const std::string raw = test::run_command(
      "ffmpeg -nostdin -v error -i '" + path + "' -frames:v 1 -f rawvideo -pix_fmt yuv420p -", rc);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(raw.size(), size_t(kW) * kH * 3 / 2);
  const double y709 = 0.2126 * R + 0.7152 * G + 0.0722 * B;  // ITU-R BT.709 luma weights
  const double y_limited = 16 + 219 * y709 / 255;             // 89.4 (BT.601 would give 102.4)
  const double cb = 128 + 224 * (B - y709) / (1.8556 * 255), cr = 128 + 224 * (R - y709) / (1.5748 * 255);
  const auto at = [&](size_t i) { return double(uint8_t(raw[i])); };
  const size_t luma = size_t(kW) * kH, chroma = luma / 4;
  EXPECT_NEAR(at(luma / 2 + kW / 2), y_limited, 1.5);
  EXPECT_NEAR(at(luma + chroma / 2), cb, 1.5);
  EXPECT_NEAR(at(luma + chroma + chroma / 2), cr, 1.5);
}

TEST(Mp4, RationalFrameRateRoundTrips) {
  ScratchDir dir;
  const std::string path = dir.file("ntsc.mp4");
  write_video(path, pattern_frames(kW, kH, 6), kW, kH, parse_fps("29.97"), {});
  Mp4Reader reader;
  reader.open(path);
  EXPECT_EQ(reader.info().fps, (Rational{30000, 1001}));
  EXPECT_EQ(reader.info().frame_count, 6);
  EXPECT_NEAR(reader.info().duration_s, 6 * 1001.0 / 30000.0, 1e-6);
  if (test::have_program("ffprobe")) {
    int rc = 0;
    std::string out = test::run_command(
        "ffprobe -v error -show_entries stream=r_frame_rate,avg_frame_rate -of csv=p=0 '" + path + "'", rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(out, "30000/1001,30000/1001\n");
  }
}

TEST(Mp4, SameInputGivesIdenticalBytes) {
  ScratchDir dir;
  const auto frames = pattern_frames(kW, kH, kFrames);
  write_video(dir.file("a.mp4"), frames, kW, kH, Rational{16, 1}, sample_options());
  write_video(dir.file("b.mp4"), frames, kW, kH, Rational{16, 1}, sample_options());
  const auto a = test::read_bytes(dir.file("a.mp4")), b = test::read_bytes(dir.file("b.mp4"));
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "sizes " << a.size() << " vs " << b.size();
}

TEST(Mp4, StridedRowsAreRead) {
  // Rows with padding (e.g. a crop of a larger buffer) give the same file as packed rows.
  ScratchDir dir;
  const auto frames = pattern_frames(kW, kH, 3);
  write_video(dir.file("packed.mp4"), frames, kW, kH, Rational{16, 1}, {});
  const int64_t stride = kW * 3 + 40;
  Mp4Writer w;
  w.open(dir.file("padded.mp4"), kW, kH, Rational{16, 1});
  for (const auto& f : frames) {
    std::vector<uint8_t> padded(size_t(stride) * kH, 0xAB);
    for (int y = 0; y < kH; ++y) std::copy_n(&f[size_t(y) * kW * 3], kW * 3, &padded[size_t(y) * stride]);
    w.write_frame(padded.data(), stride);
  }
  w.finish();
  EXPECT_TRUE(test::read_bytes(dir.file("packed.mp4")) == test::read_bytes(dir.file("padded.mp4")));
}

TEST(Mp4, FrameSizesH264CannotTakeAreRefusedWithNeighbours) {
  expect_error([] { check_frame_size(833, 480); }, kExitUsage, "width 833 is odd: use 832 or 834");
  expect_error([] { check_frame_size(832, 481); }, kExitUsage, "height 481 is odd: use 480 or 482");
  expect_error([] { check_frame_size(833, 480, 16); }, kExitUsage, "width 833 is not a multiple of 16: use 832 or 848");
  expect_error([] { check_frame_size(8, 480, 16); }, kExitUsage, "width 8 is not a multiple of 16: use 16");
  expect_error([] { check_frame_size(0, 480); }, kExitUsage, "width 0 is too small: use 2 or more");
  expect_error([] { check_frame_size(832, -4); }, kExitUsage, "height -4 is too small");
  expect_error([] { check_frame_size(16386, 480); }, kExitUsage, "width 16386 is too large: use 16384 or less");
  expect_error([] { check_frame_size(16383, 480); }, kExitUsage, "width 16383 is odd: use 16382 or 16384");
  EXPECT_NO_THROW(check_frame_size(832, 480, 16));
  EXPECT_NO_THROW(check_frame_size(2, 2));

  ScratchDir dir;
  expect_error([&] { Mp4Writer().open(dir.file("odd.mp4"), 833, 480, Rational{16, 1}); }, kExitUsage,
               "width 833 is odd");
  EXPECT_TRUE(dir.list().empty());
}

TEST(Mp4, BadOptionsAndMetadataAreRefused) {
  ScratchDir dir;
  const std::string path = dir.file("x.mp4");
  Mp4Options o;
  o.crf = 52;
  expect_error([&] { Mp4Writer().open(path, kW, kH, Rational{16, 1}, o); }, kExitUsage, "crf 52");
  o = {};
  o.preset = "warp";
  expect_error([&] { Mp4Writer().open(path, kW, kH, Rational{16, 1}, o); }, kExitUsage, "preset 'warp'");
  o = {};
  o.metadata["t2v"] = std::string("{\"prompt\":\"a\0b\"}", 16);
  expect_error([&] { Mp4Writer().open(path, kW, kH, Rational{16, 1}, o); }, kExitDataErr, "NUL byte at offset 12");
  o = {};
  o.metadata["comment"] = "bad \xC3\x28 utf8";
  expect_error([&] { Mp4Writer().open(path, kW, kH, Rational{16, 1}, o); }, kExitDataErr, "not valid UTF-8 at byte 4");
  expect_error([&] { Mp4Writer().open(path, kW, kH, Rational{0, 1}); }, kExitUsage, "fps 0/1");
  EXPECT_TRUE(dir.list().empty());
  EXPECT_NO_THROW(check_h264_encoder());
}

TEST(Mp4, DestructionWithoutFinishLeavesNoFile) {
  ScratchDir dir;
  {
    Mp4Writer w;
    w.open(dir.file("never.mp4"), kW, kH, Rational{16, 1});
    const auto f = test_pattern_frame(kW, kH, 0, 3);
    w.write_frame(f.data(), kW * 3);
    w.write_frame(f.data(), kW * 3);
    ASSERT_EQ(dir.list().size(), 1u);  // the temp file, named after our pattern
    EXPECT_TRUE(is_temp_file_name(dir.list()[0])) << dir.list()[0];
  }
  EXPECT_TRUE(dir.list().empty());
  {
    Mp4Writer w;
    w.open(dir.file("aborted.mp4"), kW, kH, Rational{16, 1});
    w.abort();
    EXPECT_TRUE(dir.list().empty());
  }
  {
    Mp4Writer w;  // finish() without frames is refused and cleans up
    w.open(dir.file("empty.mp4"), kW, kH, Rational{16, 1});
    EXPECT_THROW(w.finish(), Error);
  }
  EXPECT_TRUE(dir.list().empty());
}

TEST(Mp4, ExistingDestinationIsKeptWithoutOverwrite) {
  ScratchDir dir;
  const std::string path = dir.file("out.mp4");
  test::write_text(path, "keep me");
  expect_error([&] { Mp4Writer().open(path, kW, kH, Rational{16, 1}); }, kExitCantCreate, "already exists");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out.mp4"});

  // A file that appears while we encode (another shard) is not clobbered either.
  const std::string racy = dir.file("racy.mp4");
  {
    Mp4Writer w;
    w.open(racy, kW, kH, Rational{16, 1});
    const auto f = test_pattern_frame(kW, kH, 0, 1);
    w.write_frame(f.data(), kW * 3);
    test::write_text(racy, "other shard");
    expect_error([&] { w.finish(); }, kExitCantCreate, "appeared while it was being written");
  }
  EXPECT_EQ(test::read_bytes(racy), std::vector<uint8_t>({'o', 't', 'h', 'e', 'r', ' ', 's', 'h', 'a', 'r', 'd'}));
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"out.mp4", "racy.mp4"}));

  Mp4Options o;
  o.overwrite = true;
  write_video(path, pattern_frames(kW, kH, 2), kW, kH, Rational{16, 1}, o);
  Mp4Reader r;
  r.open(path);
  EXPECT_EQ(r.info().frame_count, 2);
}

TEST(Mp4, UnusableOutputFolderIs73AndLeavesNothing) {
  ScratchDir dir;
  const std::string file = dir.file("plain-file");
  test::write_text(file, "x");
  // A regular file used as a folder fails for every user, root included.
  expect_error([&] { Mp4Writer().open(file + "/v.mp4", kW, kH, Rational{16, 1}); }, kExitCantCreate, "not a folder");
  expect_error([&] { check_output_writable(file); }, kExitCantCreate, "not a folder");
  expect_error([&] { check_output_writable(file + "/sub"); }, kExitCantCreate, "not a folder");
  expect_error([&] { Mp4Writer().open(dir.file("missing/v.mp4"), kW, kH, Rational{16, 1}); }, kExitCantCreate,
               "does not exist");
  expect_error([&] { check_output_writable(dir.file("missing")); }, kExitCantCreate, "mkdir -p");
  EXPECT_NO_THROW(check_output_writable(dir.path()));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"plain-file"});
}

// Error code and message of `fn` as seen by an unprivileged user: as root (CI runs tests
// as root, and root ignores folder permissions) the check runs in a child process that
// drops to nobody (65534). Returns "code|message", or "none" when nothing was thrown.
template <class Fn>
std::string error_as_unprivileged(Fn fn) {
  auto describe = [&]() -> std::string {
    try {
      fn();
      return "none";
    } catch (const Error& e) {
      return std::to_string(e.code()) + "|" + e.what();
    }
  };
  if (::geteuid() != 0) return describe();
  int pipefd[2];
  if (::pipe(pipefd) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    std::string result = (::setgid(65534) == 0 && ::setuid(65534) == 0) ? describe() : "setuid failed";
    ssize_t ignored = ::write(pipefd[1], result.data(), result.size());
    (void)ignored;
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string result;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) > 0;) result.append(buf, size_t(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return result;
}

TEST(Mp4, ReadOnlyFolderIs73) {
  ScratchDir dir;
  const std::string ro = dir.file("ro");
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(ro.c_str(), 0555), 0);
  std::string r = error_as_unprivileged([&] { check_output_writable(ro); });
  EXPECT_EQ(r.substr(0, 3), "73|") << r;
  EXPECT_NE(r.find("chmod u+w"), std::string::npos) << r;
  r = error_as_unprivileged([&] { Mp4Writer().open(ro + "/v.mp4", kW, kH, Rational{16, 1}); });
  EXPECT_EQ(r.substr(0, 3), "73|") << r;
  EXPECT_NE(r.find("cannot create files in output folder"), std::string::npos) << r;
  EXPECT_TRUE(std::filesystem::is_empty(ro));
}

// Restores the file size limit and SIGXFSZ disposition on scope exit.
struct FileSizeLimit {
  rlimit old{};
  void (*old_handler)(int) = nullptr;
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old);
    old_handler = signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of killing us
    rlimit lim = old;
    lim.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
  }
};

TEST(Mp4, WriteErrorIs74AndDeletesTheTempFile) {
  // A file size limit makes write() fail part-way, like a full disk (ENOSPC) would.
  ScratchDir dir;
  const std::string path = dir.file("big.mp4");
  std::mt19937 rng(7);
  std::vector<uint8_t> noise(size_t(kW) * kH * 3);
  {
    FileSizeLimit limit(48 * 1024);
    Mp4Writer w;
    Mp4Options o;
    o.crf = 0;  // lossless noise: ~40 KB per frame
    w.open(path, kW, kH, Rational{16, 1}, o);
    expect_error(
        [&] {
          for (int i = 0; i < 30; ++i) {
            for (auto& v : noise) v = uint8_t(rng());
            w.write_frame(noise.data(), kW * 3);
          }
          w.finish();
        },
        kExitIoErr, "writing '" + path + "' failed: File too large");
  }
  EXPECT_TRUE(dir.list().empty());
}

TEST(Mp4, ReaderReportsMissingAndBrokenFiles) {
  ScratchDir dir;
  expect_error([&] { Mp4Reader().open(dir.file("nope.mp4")); }, kExitNoInput, "cannot open");
  test::write_text(dir.file("text.mp4"), "this is not a video");
  expect_error([&] { Mp4Reader().open(dir.file("text.mp4")); }, kExitDataErr, "text.mp4");
}

// Encode time and quality at Wan's default size (832x480, 81 frames). Not part of the
// suite's time budget; run with --gtest_also_run_disabled_tests to measure.
TEST(Mp4, DISABLED_Encode81FramesAt832x480) {
  ScratchDir dir;
  const int w = 832, h = 480, n = 81;
  const auto frames = pattern_frames(w, h, n);
  const auto t0 = std::chrono::steady_clock::now();
  write_video(dir.file("wan.mp4"), frames, w, h, Rational{16, 1}, sample_options());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Mp4Reader r;
  r.open(dir.file("wan.mp4"));
  const auto decoded = r.read_all_frames();
  ASSERT_EQ(decoded.size(), size_t(n));
  double worst = INFINITY;
  for (int i = 0; i < n; ++i) worst = std::min(worst, test::psnr(frames[i], decoded[i]));
  std::printf("[ encode ] %dx%d x %d frames: %.2f s (%.1f fps), %zu bytes, worst PSNR %.2f dB\n", w, h, n, secs,
              n / secs, test::read_bytes(dir.file("wan.mp4")).size(), worst);
  EXPECT_GE(worst, 35.0);
}

}  // namespace
}  // namespace t2v

namespace t2v {
namespace {

// Tags set after the frames (timings known only at the end) reach the file: the
// MP4 index that holds them is written by finish().
TEST(Mp4, MetadataSetAfterFramesIsStored) {
  ScratchDir dir;
  std::string path = dir.file("late.mp4");
  Mp4Writer w;
  w.open(path, 64, 48, Rational{16, 1}, Mp4Options{});
  for (const auto& f : pattern_frames(64, 48, 5)) w.write_frame(f.data(), 64 * 3);
  w.set_metadata("t2v", "{\"timings_s\":{\"decode\":1.5}}");
  w.set_metadata("comment", "late");
  EXPECT_THROW(w.set_metadata("bad", std::string("a\0b", 3)), Error);
  w.finish();
  Mp4Reader r;
  r.open(path);
  EXPECT_EQ(r.info().metadata.at("t2v"), "{\"timings_s\":{\"decode\":1.5}}");
  EXPECT_EQ(r.info().metadata.at("comment"), "late");
}

}  // namespace
}  // namespace t2v
