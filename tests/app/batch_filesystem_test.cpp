// `t2v batch` against a hostile filesystem (docs/bad_inputs.md #40, #42-44, #47): output folders that
// are files or cannot be written, a disk that fills mid-video, a manifest that cannot be
// written, a list that lost items since the last run, and a video that is not ours.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_test_util.h"
#include "video_io/atomic_file.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Exactly one "t2v: error:" line, naming `what`.
void expect_one_error_line(const std::string& err, const std::string& what) {
  size_t n = 0;
  for (size_t p = err.find("t2v: error:"); p != std::string::npos; p = err.find("t2v: error:", p + 1)) ++n;
  EXPECT_EQ(n, 1u) << err;
  EXPECT_NE(err.find(what), std::string::npos) << err;
}

TEST(BatchFilesystem, OutputFolderProblemsAre73BeforeAnyModelLoads) {
  TempDir dir;
  write_text(dir.file("list.jsonl"), prompt_list(1));
  write_text(dir.file("a-file"), "x");
  // A model that does not exist: were it loaded first, the error would be about the model.
  const std::vector<std::string> no_model = {"--model", dir.file("no-such-model")};
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), dir.file("a-file"), no_model));
  EXPECT_EQ(r.code, 73) << r.err;
  expect_one_error_line(r.err, "is not a folder");
  r = run_t2v(batch_args(dir.file("list.jsonl"), dir.file("a-file") + "/sub", no_model));
  EXPECT_EQ(r.code, 73) << r.err;
  expect_one_error_line(r.err, "cannot create --out-dir");
  // /proc is a folder nobody can create files in, root included.
  r = run_t2v(batch_args(dir.file("list.jsonl"), "/proc", no_model));
  EXPECT_EQ(r.code, 73) << r.err;
  expect_one_error_line(r.err, "/proc");
  // A missing folder is created.
  r = run_t2v(batch_args(dir.file("list.jsonl"), dir.file("new/deeper")));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir.file("new/deeper/item0.mp4")));
}

TEST(BatchFilesystem, DiskFullMidVideoRecordsARetryableFailureAndExits74) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), prompt_list(2));
  const std::vector<std::string> big = {"--size", "128x128", "--frames", "17"};
  // A 16 KiB file size limit makes write() fail part-way through the video, as a full disk
  // (ENOSPC) or a quota (EDQUOT) does; SIGXFSZ ignored, so the write returns EFBIG.
  std::vector<std::string> argv = {"/bin/bash", "-c", "trap '' XFSZ; ulimit -f 16; exec \"$@\"", "t2v", T2V_EXE};
  for (const std::string& a : batch_args(dir.file("list.jsonl"), out, big)) argv.push_back(a);
  RunResult r = run_program(argv);
  EXPECT_EQ(r.code, 74) << r.err;
  EXPECT_NE(r.err.find("item0"), std::string::npos) << r.err;
  std::vector<json> recs = manifest_lines(out);
  ASSERT_EQ(recs.size(), 1u) << r.err;  // the disk is the problem: the batch stops at the first failure
  EXPECT_EQ(recs[0]["status"], "failed");
  EXPECT_EQ(recs[0]["code"], 74);
  EXPECT_TRUE(recs[0]["retryable"].get<bool>());
  for (const auto& e : fs::directory_iterator(out)) {
    EXPECT_NE(e.path().extension(), ".mp4") << e.path();
    EXPECT_FALSE(is_temp_file_name(e.path().filename().string())) << e.path();
  }
  // With space again, the rerun renders both.
  r = run_t2v(batch_args(dir.file("list.jsonl"), out, big));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out + "/item0.mp4"));
  EXPECT_TRUE(fs::exists(out + "/item1.mp4"));
}

TEST(BatchFilesystem, AManifestThatCannotBeWrittenStopsTheBatchBeforeRendering) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), prompt_list(1));
  fs::create_directories(out + "/manifest.jsonl");  // a folder where the manifest should be
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  EXPECT_EQ(r.code, 73) << r.err;
  expect_one_error_line(r.err, "manifest.jsonl is not a regular file");
  EXPECT_FALSE(fs::exists(out + "/item0.mp4"));
}

TEST(BatchFilesystem, ItemsGoneFromTheListAreReportedAndTheirVideosKept) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), prompt_list(3));
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  ASSERT_EQ(r.code, 0) << r.err;
  write_text(dir.file("list.jsonl"), prompt_list(1));  // item1 and item2 removed
  r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("2 finished item(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no longer in"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(out + "/item1.mp4"));
  EXPECT_TRUE(fs::exists(out + "/item2.mp4"));
  EXPECT_EQ(manifest_lines(out).size(), 3u);
}

TEST(BatchFilesystem, AnotherCompleteVideoUnderTheNameIsKeptUnlessForce) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), "{\"id\": \"a\", \"prompt\": \"a red ball\"}\n");
  write_text(dir.file("other.jsonl"), "{\"id\": \"a\", \"prompt\": \"a blue cube\"}\n");
  // A complete MP4 that is not in this folder's manifest: someone else's video.
  RunResult r = run_t2v(batch_args(dir.file("other.jsonl"), dir.file("elsewhere")));
  ASSERT_EQ(r.code, 0) << r.err;
  fs::create_directories(out);
  fs::copy_file(dir.file("elsewhere/a.mp4"), out + "/a.mp4");
  const std::string theirs = read_text(out + "/a.mp4");
  r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("a.mp4 exists but is not a render of item a"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0 rendered, 0 skipped (done), 1 kept"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(out + "/a.mp4"), theirs);
  r = run_t2v(batch_args(dir.file("list.jsonl"), out, {"--force"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(read_text(out + "/a.mp4"), theirs);
}

}  // namespace
}  // namespace t2v::test
