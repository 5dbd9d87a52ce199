// Helpers shared by the video_io tests: scratch folders, file listing, PSNR, MP4 box walk.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace t2v::test {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/t2v-video-io-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const char* made = ::mkdtemp(buf.data());
    if (!made) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

  // Names of everything in the folder, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// PSNR in dB over all channels of two same-sized 8-bit images (inf when identical).
inline double psnr(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  double se = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    double d = double(a[i]) - double(b[i]);
    se += d * d;
  }
  double mse = se / double(a.size());
  return mse == 0 ? INFINITY : 10.0 * std::log10(255.0 * 255.0 / mse);
}

struct Box {
  std::string type;
  uint64_t offset, size;
};

// Top-level ISO-BMFF boxes (32-bit size, 64-bit largesize when size == 1, size 0 = to
// the end). `tiles` is false when the boxes do not cover the file exactly.
inline std::vector<Box> top_level_boxes(const std::vector<uint8_t>& f, bool& tiles) {
  std::vector<Box> boxes;
  uint64_t pos = 0;
  tiles = true;
  while (pos < f.size()) {
    if (f.size() - pos < 8) {
      tiles = false;
      break;
    }
    uint64_t size = (uint64_t(f[pos]) << 24) | (uint64_t(f[pos + 1]) << 16) | (uint64_t(f[pos + 2]) << 8) | f[pos + 3];
    std::string type(reinterpret_cast<const char*>(&f[pos + 4]), 4);
    if (size == 1) {
      if (f.size() - pos < 16) {
        tiles = false;
        break;
      }
      size = 0;
      for (int i = 0; i < 8; ++i) size = (size << 8) | f[pos + 8 + i];
    } else if (size == 0) {
      size = f.size() - pos;
    }
    if (size < 8 || size > f.size() - pos) {
      tiles = false;
      break;
    }
    boxes.push_back({type, pos, size});
    pos += size;
  }
  return boxes;
}

// Runs a shell command; returns its stdout and sets `rc` to its exit status.
inline std::string run_command(const std::string& cmd, int& rc) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

inline bool have_program(const std::string& name) {
  int rc = 0;
  run_command("command -v " + name + " >/dev/null 2>&1", rc);
  return rc == 0;
}

}  // namespace t2v::test
