// `t2v batch` and `t2v gallery` against someone who can write to the shared output folder or
// hands over a hostile list (docs/bad_inputs.md #15, #69, #73, #75, #76, #82, #84): control
// files planted as links, records naming paths outside the folder, lists that are not files
// or never end, ids that one file system takes for the same name, and damaged manifests.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "cli_test_util.h"

namespace t2v::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Exactly one line on stderr, an error naming `what`.
void expect_one_line_error(const RunResult& r, const std::string& what) {
  size_t lines = 0;
  for (char c : r.err) lines += c == '\n';
  EXPECT_EQ(lines, 1u) << r.err;
  EXPECT_EQ(r.err.rfind("t2v: error:", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
}

// A file older than any lock timeout the tests pass.
void make_old(const std::string& path) {
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(48);
  fs::last_write_time(path, old);
}

std::string done_record(const std::string& id, const std::string& file) {
  return json{{"status", "done"}, {"id", id}, {"file", file}, {"sha256", std::string(64, '0')}}.dump() + "\n";
}

TEST(BatchHostile, SymlinkedLockFileIsRefusedAndItsTargetKept) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), prompt_list(1));
  fs::create_directories(out + "/.locks");
  write_text(dir.file("victim.txt"), "precious data\n");
  make_old(dir.file("victim.txt"));
  fs::create_symlink(dir.file("victim.txt"), out + "/.locks/item0.lock");
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out, {"--lock-timeout", "1"}));
  EXPECT_EQ(r.code, 73) << r.err;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(dir.file("victim.txt")), "precious data\n");
  EXPECT_FALSE(fs::exists(out + "/item0.mp4"));
}

TEST(BatchHostile, HardLinkedLockFileIsRefusedAndItsTargetKept) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), prompt_list(1));
  fs::create_directories(out + "/.locks");
  write_text(dir.file("victim.txt"), "precious data\n");
  make_old(dir.file("victim.txt"));
  fs::create_hard_link(dir.file("victim.txt"), out + "/.locks/item0.lock");
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out, {"--lock-timeout", "1"}));
  EXPECT_EQ(r.code, 73) << r.err;
  EXPECT_NE(r.err.find("hard links"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(dir.file("victim.txt")), "precious data\n");
}

// A worker creating a lock links its finished temp file under the lock's name, then removes
// the temp name, holding the file's flock all the while: another worker that looks in
// between sees two links, and must leave the item to its live writer, not stop the batch.
TEST(BatchHostile, ALockBeingCreatedIsLeftToItsWriter) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), prompt_list(1));
  fs::create_directories(out + "/.locks");
  const std::string lock = out + "/.locks/item0.lock";
  const std::string content = json{{"host", "elsewhere"}, {"pid", 1}, {"time", 0}, {"id", "item0"}}.dump() + "\n";
  write_text(lock, content);
  fs::create_hard_link(lock, out + "/.locks/.item0.lock.1.abc");
  const int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  ::close(fd);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("item0 is being rendered by elsewhere pid 1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out + "/item0.mp4"));
  EXPECT_EQ(read_text(lock), content);
}

TEST(BatchHostile, SymlinkedManifestAndLockFolderAreRefused) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), prompt_list(1));
  fs::create_directories(out);
  write_text(dir.file("victim.txt"), "precious data\n");
  fs::create_symlink(dir.file("victim.txt"), out + "/manifest.jsonl");
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  EXPECT_EQ(r.code, 73) << r.err;
  expect_one_line_error(r, "manifest.jsonl is a symbolic link");
  EXPECT_EQ(read_text(dir.file("victim.txt")), "precious data\n");

  fs::remove(out + "/manifest.jsonl");
  fs::create_directories(dir.file("elsewhere"));
  fs::create_symlink(dir.file("elsewhere"), out + "/.locks");
  r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  EXPECT_EQ(r.code, 73) << r.err;
  EXPECT_NE(r.err.find(".locks is a symbolic link"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_empty(dir.file("elsewhere")));
  EXPECT_FALSE(fs::exists(out + "/item0.mp4"));
}

TEST(BatchHostile, PlantedLinkUnderAnItemsNameIsLeftAlone) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), prompt_list(1));
  fs::create_directories(out);
  write_text(dir.file("victim.txt"), "precious data\n");
  fs::create_symlink(dir.file("victim.txt"), out + "/item0.mp4");
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out, {"--force"}));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_symlink(out + "/item0.mp4"));
  EXPECT_EQ(read_text(dir.file("victim.txt")), "precious data\n");
}

TEST(BatchHostile, GalleryListsOnlyRegularFilesInsideTheFolder) {
  TempDir dir;
  const std::string out = dir.file("out");
  fs::create_directories(out);
  write_text(dir.file("secret.mp4"), "outside");
  write_text(out + "/inside.mp4", "inside");
  fs::create_symlink(dir.file("secret.mp4"), out + "/link.mp4");
  write_text(out + "/manifest.jsonl", done_record("a", "../secret.mp4") + done_record("b", dir.file("secret.mp4")) +
                                          done_record("c", "link.mp4") + done_record("d", "inside.mp4"));
  RunResult r = run_t2v({"gallery", out});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string html = read_text(out + "/index.html");
  EXPECT_EQ(html.find("secret"), std::string::npos) << html;
  EXPECT_EQ(html.find("link.mp4"), std::string::npos) << html;
  EXPECT_NE(html.find("inside.mp4"), std::string::npos) << html;

  // A manifest that is a link is not read.
  fs::rename(out + "/manifest.jsonl", dir.file("real.jsonl"));
  fs::create_symlink(dir.file("real.jsonl"), out + "/manifest.jsonl");
  r = run_t2v({"gallery", out});
  EXPECT_EQ(r.code, 65) << r.err;
  expect_one_line_error(r, "symbolic link");
}

TEST(BatchHostile, WrongTypesInListsAndManifestsAreDataErrorsNamingTheLine) {
  TempDir dir;
  const std::string out = dir.file("out");
  // A number beyond double range, and a key given twice (the last would silently win).
  write_text(dir.file("list.jsonl"), prompt_list(1) + "{\"prompt\": \"x\", \"cfg\": 1e999}\n" +
                                         "{\"prompt\": \"a\", \"prompt\": \"b\"}\n");
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_NE(r.err.find("list.jsonl:2: invalid JSON: number overflow"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("list.jsonl:3: duplicate key \"prompt\""), std::string::npos) << r.err;

  // A manifest record with a non-string sha256 in the middle of the file.
  fs::create_directories(out);
  write_text(dir.file("list.jsonl"), prompt_list(1));
  write_text(out + "/manifest.jsonl", "{\"status\": \"done\", \"id\": \"item0\", \"file\": \"item0.mp4\", \"sha256\": 5}\n" +
                                          done_record("other", "other.mp4"));
  r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  EXPECT_EQ(r.code, 65) << r.err;
  expect_one_line_error(r, "manifest.jsonl:1: damaged record");

  // gallery: a status that is not a string.
  write_text(out + "/manifest.jsonl", "{\"status\": 7, \"id\": \"x\"}\n" + done_record("other", "other.mp4"));
  r = run_t2v({"gallery", out});
  EXPECT_EQ(r.code, 65) << r.err;
  expect_one_line_error(r, "manifest.jsonl:1: damaged record");
}

TEST(BatchHostile, DamagedMiddleManifestLineIsAnErrorButATornAppendIsDropped) {
  TempDir dir;
  const std::string out = dir.file("out");
  fs::create_directories(out);
  write_text(dir.file("list.jsonl"), prompt_list(1));
  write_text(out + "/manifest.jsonl", done_record("a", "a.mp4") + "this line was edited by hand\n" +
                                          done_record("b", "b.mp4"));
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  EXPECT_EQ(r.code, 65) << r.err;
  expect_one_line_error(r, "manifest.jsonl:2: damaged record");
  EXPECT_FALSE(fs::exists(out + "/item0.mp4"));

  // A record cut short by a crash, after which another worker appended: dropped with a warning.
  write_text(out + "/manifest.jsonl", done_record("a", "a.mp4") + "{\"status\": \"done\", \"id\": \"cu\n" +
                                          done_record("b", "b.mp4"));
  r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("dropped 1 damaged line"), std::string::npos) << r.err;
  EXPECT_EQ(manifest_lines(out).size(), 3u);  // a, b and the new item0
}

TEST(BatchHostile, ListsThatAreNotFilesOrTooLongAreRefusedAtOnce) {
  TempDir dir;
  const std::string out = dir.file("out");
  fs::create_directories(dir.file("a-folder"));
  RunResult r = run_t2v(batch_args(dir.file("a-folder"), out));
  EXPECT_EQ(r.code, 66) << r.err;
  expect_one_line_error(r, "is a folder");

  const auto t0 = Clock::now();
  r = run_t2v(batch_args("/dev/zero", out));
  EXPECT_EQ(r.code, 66) << r.err;
  expect_one_line_error(r, "character device");
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  r = run_t2v(batch_args(dir.file("fifo"), out));
  EXPECT_EQ(r.code, 66) << r.err;
  expect_one_line_error(r, "FIFO");
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 10.0);

  // A 2 MB line: reported by line, the others still checked.
  write_text(dir.file("long.jsonl"), "{\"prompt\": \"" + std::string(2 << 20, 'a') + "\"}\n{\"prompt\": 5}\n");
  r = run_t2v(batch_args(dir.file("long.jsonl"), out));
  EXPECT_EQ(r.code, 65) << r.err;
  EXPECT_NE(r.err.find("long.jsonl:1: the line is 2097166 bytes"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("long.jsonl:2:"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST(BatchHostile, IdsThatOneFileSystemTakesForTheSameNameCollide) {
  TempDir dir;
  const std::string out = dir.file("out");
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"Stra\u00dfe", "STRASSE"},           // full case folding
      {"caf\u00e9", "cafe\u0301"},          // NFC vs NFD
      {"\u212bngstr\u00f6m", "\u00e5ngstr\u00f6m"},  // the Angstrom sign is A with a ring (NFC) and folds
      {"\ufb01le", "FILE"},                 // a compatibility ligature (NFKC) and case
      {"\u03a3\u03bf\u03c6\u03af\u03b1", "\u03c3\u03bf\u03c6\u03b9\u0301\u03b1"},  // Greek final/medial sigma, tonos
      {"\u041f\u0440\u0438\u0432\u0435\u0442", "\u043f\u0420\u0418\u0412\u0415\u0422"},  // Cyrillic case
      {"ab", "a\u200bb"},                   // a zero-width space some file systems ignore
  };
  for (const auto& [a, b] : pairs) {
    write_text(dir.file("list.jsonl"), json{{"id", a}, {"prompt", "x"}}.dump() + "\n" +
                                           json{{"id", b}, {"prompt", "y"}}.dump() + "\n");
    RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out));
    EXPECT_EQ(r.code, 65) << a << " / " << b << ": " << r.err;
    EXPECT_NE(r.err.find("list.jsonl:2: duplicate id"), std::string::npos) << r.err;
  }
  // Different names stay different.
  write_text(dir.file("list.jsonl"), json{{"id", "caf\u00e9"}, {"prompt", "x"}}.dump() + "\n" +
                                         json{{"id", "cafe"}, {"prompt", "y"}}.dump() + "\n");
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(BatchHostile, LockTimeoutMustBeAPositiveNumber) {
  TempDir dir;
  write_text(dir.file("list.jsonl"), prompt_list(1));
  for (const char* bad : {"nan", "-5", "0", "inf", "x"}) {
    RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), dir.file("out"), {"--lock-timeout", bad}));
    EXPECT_EQ(r.code, 64) << bad << ": " << r.err;
    expect_one_line_error(r, "--lock-timeout");
    EXPECT_FALSE(fs::exists(dir.file("out")));
  }
}

// A video whose file changed since it was recorded (a complete MP4, another SHA-256) is kept
// with a warning and rendered again only with --force; docs/batch.md says the same.
TEST(BatchHostile, ChangedVideosAreKeptAsTheDocsSay) {
  const std::string doc = read_text(std::string(T2V_SOURCE_DIR) + "/docs/batch.md");
  ASSERT_FALSE(doc.empty());
  EXPECT_EQ(doc.find("anything missing, truncated or changed is rendered again"), std::string::npos);
  EXPECT_NE(doc.find("SHA-256 no longer matches the record (edited or replaced since) is kept"), std::string::npos);

  TempDir dir;
  const std::string out = dir.file("out");
  write_text(dir.file("list.jsonl"), "{\"id\": \"a\", \"prompt\": \"a red ball\"}\n");
  write_text(dir.file("other.jsonl"), "{\"id\": \"a\", \"prompt\": \"a blue cube\"}\n");
  RunResult r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  ASSERT_EQ(r.code, 0) << r.err;
  r = run_t2v(batch_args(dir.file("other.jsonl"), dir.file("elsewhere")));
  ASSERT_EQ(r.code, 0) << r.err;
  fs::copy_file(dir.file("elsewhere/a.mp4"), out + "/a.mp4", fs::copy_options::overwrite_existing);
  const std::string replaced = read_text(out + "/a.mp4");
  r = run_t2v(batch_args(dir.file("list.jsonl"), out));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("a.mp4 changed since it was rendered"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(out + "/a.mp4"), replaced);
  r = run_t2v(batch_args(dir.file("list.jsonl"), out, {"--force"}));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(read_text(out + "/a.mp4"), replaced);
}

}  // namespace
}  // namespace t2v::test
