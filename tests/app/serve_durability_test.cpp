// `t2v serve` across crashes and shutdowns: kill -9 mid-render, SIGTERM mid-render and idle,
// and two servers sharing one jobs dir. Every accepted job must end completed exactly once.
#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "serve_test_util.h"
#include "video_io/atomic_file.h"
#include "video_io/mp4_reader.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Server defaults for renders long enough to be caught in progress (about 2 s each on 2 cores).
const std::vector<std::string> kSlow = {"--size", "64x64", "--frames", "17", "--steps", "20"};

// Waits until `id` renders with at least `progress` percent done; false after 60 s.
bool wait_rendering(const ServeProcess& s, const std::string& id, int progress) {
  const auto t0 = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - t0).count() < 60) {
    json v = http_get(s, "/v1/videos/" + id).json();
    if (v.value("status", "") == "in_progress" && v.value("progress", 0) >= progress) return true;
    if (v.value("status", "") == "completed") return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

void expect_each_done_once(const std::string& jobs, const std::vector<std::string>& ids) {
  auto counts = journal_counts(jobs);
  for (const std::string& id : ids) {
    EXPECT_EQ((counts[{id, "done"}]), 1) << id;
    EXPECT_EQ(mp4_structure_problem(jobs + "/" + id + "/video.mp4"), "") << id;
  }
  // No temp file is left behind in any job folder.
  for (const std::string& id : ids)
    for (const auto& e : fs::directory_iterator(jobs + "/" + id))
      EXPECT_FALSE(is_temp_file_name(e.path().filename().string())) << e.path();
}

TEST(ServeDurability, KillDashNineMidRenderThenRestartCompletesEveryJobOnce) {
  TempDir dir;
  const std::string jobs = dir.file("jobs");
  std::vector<std::string> ids;
  {
    ServeProcess s(jobs, kSlow);
    for (int i = 0; i < 2; ++i) ids.push_back(submit(s, {{"prompt", "a red ball " + std::to_string(i)}})["id"]);
    ASSERT_TRUE(wait_rendering(s, ids[0], 30)) << s.child().err();
    EXPECT_EQ(s.stop(SIGKILL), 128 + SIGKILL);
  }
  // What a crash leaves: the job in_progress on disk, no finished video.
  EXPECT_NE(read_text(jobs + "/" + ids[0] + "/state.json").find("in_progress"), std::string::npos);
  EXPECT_FALSE(fs::exists(jobs + "/" + ids[0] + "/video.mp4"));
  {
    ServeProcess s(jobs, kSlow);
    // Accepted before the crash: all there, the interrupted one queued again.
    json list = http_get(s, "/v1/videos").json();
    ASSERT_EQ(list["data"].size(), 2u) << list.dump();
    for (const std::string& id : ids) poll_video(s, id, "completed", 120);
    json first = http_get(s, "/v1/videos/" + ids[0]).json();
    EXPECT_EQ(first["attempts"], 2);
    EXPECT_EQ(s.stop(SIGTERM), 0) << s.child().err();
  }
  expect_each_done_once(jobs, ids);
  auto counts = journal_counts(jobs);
  EXPECT_EQ((counts[{ids[0], "started"}]), 2);
  EXPECT_EQ((counts[{ids[1], "started"}]), 1);
}

TEST(ServeDurability, SigtermStopsAtAStepRequeuesAndExits75) {
  TempDir dir;
  const std::string jobs = dir.file("jobs");
  std::string id;
  {
    ServeProcess s(jobs, kSlow);
    id = submit(s, {{"prompt", "a blue square moving up"}})["id"];
    ASSERT_TRUE(wait_rendering(s, id, 10));
    const auto t0 = Clock::now();
    EXPECT_EQ(s.stop(SIGTERM), 75) << s.child().err();  // work remains
    // It stopped at a step, not at the end of the video (2 s).
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.5);
  }
  EXPECT_NE(read_text(jobs + "/" + id + "/state.json").find("\"queued\""), std::string::npos);
  EXPECT_FALSE(fs::exists(jobs + "/" + id + "/video.mp4"));
  {
    ServeProcess s(jobs, kSlow);
    poll_video(s, id, "completed", 60);
    EXPECT_EQ(s.stop(SIGINT), 0) << s.child().err();  // nothing waits: 0
  }
  expect_each_done_once(jobs, {id});
  auto counts = journal_counts(jobs);
  EXPECT_EQ((counts[{id, "requeued"}]), 1);
}

TEST(ServeDurability, TwoServersOnOneJobsDirRenderEachJobOnce) {
  TempDir dir;
  const std::string jobs = dir.file("jobs");
  const std::vector<std::string> medium = {"--size", "32x32", "--frames", "9", "--steps", "10"};
  ServeProcess a(jobs, medium);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(submit(a, {{"prompt", "a green cone " + std::to_string(i)}})["id"]);
  ServeProcess b(jobs, medium);  // finds the same queue on disk
  for (const std::string& id : ids) poll_video(a, id, "completed", 120);
  // B at once, before it has looked at the jobs A finished last: it must not count them as
  // waiting (exit 75) from what it remembers.
  EXPECT_EQ(b.stop(SIGTERM), 0) << b.child().err();
  EXPECT_EQ(a.stop(SIGTERM), 0) << a.child().err();
  expect_each_done_once(jobs, ids);
  auto counts = journal_counts(jobs);
  for (const std::string& id : ids) EXPECT_EQ((counts[{id, "started"}]), 1) << id;
}

}  // namespace
}  // namespace t2v::test
