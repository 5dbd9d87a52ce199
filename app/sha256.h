// SHA-256 (FIPS 180-4) for the batch manifest: it fingerprints each finished MP4 so a
// rerun can tell a complete, unchanged video from one that was cut short or replaced.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace t2v {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // finishes; the object is spent afterwards
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);

// Hex digest of a file's bytes. Throws Error(66) when it cannot be opened, Error(74) on a read error.
std::string sha256_file(const std::string& path);

}  // namespace t2v
