// AtomicFile, the output-folder check and stale temp cleanup (docs/bad_inputs.md #42-46).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/error.h"
#include "video_io/atomic_file.h"
#include "video_test_util.h"

namespace t2v {
namespace {

using test::ScratchDir;

TEST(AtomicFile, WritesAndRenamesIntoPlace) {
  ScratchDir dir;
  const std::string path = dir.file("notes.txt");
  write_file_atomic(path, "hello", 5, false);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"notes.txt"});
  EXPECT_EQ(test::read_bytes(path), std::vector<uint8_t>({'h', 'e', 'l', 'l', 'o'}));
  // Permissions follow the umask, not mkstemps' 0600.
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);

  try {
    write_file_atomic(path, "again", 5, false);
    ADD_FAILURE() << "replaced an existing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitCantCreate);
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos) << e.what();
  }
  write_file_atomic(path, "again", 5, true);
  EXPECT_EQ(test::read_bytes(path), std::vector<uint8_t>({'a', 'g', 'a', 'i', 'n'}));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"notes.txt"});
}

TEST(AtomicFile, TempNamesFollowThePattern) {
  ScratchDir dir;
  AtomicFile f;
  f.create(dir.file("clip.mp4"), false);
  const std::string name = f.temp_path().substr(dir.path().size() + 1);
  EXPECT_EQ(name.rfind(".clip.mp4.tmp-", 0), 0u) << name;
  EXPECT_TRUE(is_temp_file_name(name)) << name;
  f.discard();
  EXPECT_TRUE(dir.list().empty());

  // Names near NAME_MAX still get a temp file (the name part is shortened).
  const std::string long_name = std::string(240, 'x') + ".mp4";
  write_file_atomic(dir.file(long_name), "x", 1, false);
  EXPECT_EQ(dir.list(), std::vector<std::string>{long_name});
}

TEST(AtomicFile, TempNamePattern) {
  EXPECT_TRUE(is_temp_file_name(".a.mp4.tmp-AbC123.mp4"));
  EXPECT_TRUE(is_temp_file_name(".sheet.png.tmp-zzzzzz.png"));
  EXPECT_TRUE(is_temp_file_name(".x.tmp-000000.tmp"));
  EXPECT_FALSE(is_temp_file_name("a.mp4"));
  EXPECT_FALSE(is_temp_file_name(".a.mp4"));
  EXPECT_FALSE(is_temp_file_name("a.mp4.tmp-AbC123.mp4"));   // no leading dot
  EXPECT_FALSE(is_temp_file_name(".a.mp4.tmp-AbC12.mp4"));   // five random characters
  EXPECT_FALSE(is_temp_file_name(".a.mp4.tmp-AbC1234.mp4"));  // seven
  EXPECT_FALSE(is_temp_file_name(".a.mp4.tmp-AbC_23.mp4"));
  EXPECT_FALSE(is_temp_file_name(".a.mp4.tmp-AbC123"));      // no extension
  EXPECT_FALSE(is_temp_file_name(".a.mp4.tmp-AbC123.mp4~"));
  EXPECT_FALSE(is_temp_file_name(".tmp-AbC123.mp4"));        // no name part
}

TEST(AtomicFile, StaleCleanupRemovesOnlyOurDeadTempFiles) {
  ScratchDir dir;
  const char* ours[] = {".a.mp4.tmp-AbC123.mp4", ".b.png.tmp-xyz789.png", ".c.gif.tmp-QQQQQQ.gif"};
  const char* theirs[] = {"a.mp4", ".a.mp4", "a.mp4.tmp-AbC123.mp4", ".a.mp4.tmp-short.mp4", "notes.txt",
                          ".hidden"};
  for (const char* n : ours) test::write_text(dir.file(n), "partial");
  for (const char* n : theirs) test::write_text(dir.file(n), "keep");
  ASSERT_EQ(::mkdir(dir.file(".d.mp4.tmp-DIRDIR.mp4").c_str(), 0700), 0);  // a folder is never deleted
  ASSERT_EQ(::symlink("notes.txt", dir.file(".e.mp4.tmp-LINKED.mp4").c_str()), 0);  // nor a link
  AtomicFile live;  // a writer still at work (another shard): its temp file is locked
  live.create(dir.file("live.mp4"), false);

  EXPECT_EQ(clean_stale_temp_files(dir.path()), 3);
  std::vector<std::string> want(std::begin(theirs), std::end(theirs));
  want.push_back(".d.mp4.tmp-DIRDIR.mp4");
  want.push_back(".e.mp4.tmp-LINKED.mp4");
  want.push_back(live.temp_path().substr(dir.path().size() + 1));
  std::sort(want.begin(), want.end());
  EXPECT_EQ(dir.list(), want);
  live.commit();
  EXPECT_EQ(clean_stale_temp_files(dir.path()), 0);
  EXPECT_EQ(clean_stale_temp_files(dir.file("no-such-folder")), 0);
}

TEST(AtomicFile, FreeSpacePreflight) {
  ScratchDir dir;
  EXPECT_NO_THROW(check_free_space(dir.path(), 4096));
  try {
    check_free_space(dir.path(), uint64_t{1} << 62);  // 4 EiB
    ADD_FAILURE() << "no error for 4 EiB";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), kExitIoErr);
    EXPECT_NE(std::string(e.what()).find("MB free"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_free_space(dir.file("missing"), 1), Error);
}

}  // namespace
}  // namespace t2v
