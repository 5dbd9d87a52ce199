// libFuzzer target for the safetensors reader. Each input is a whole file: it is
// parsed in memory with parse_safetensors_header and opened from a memfd with
// SafetensorsFile (mmap path), and every tensor it accepts is read and converted.
// Any t2v::Error with a user-data code is the expected outcome for bad input; an
// internal error (code 70), another exception or a sanitizer report is a bug.
//
// Build and run: tools/run_fuzz.sh (clang, -DT2V_FUZZ=ON).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/safetensors.h"

namespace {

void check_error(const t2v::Error& e) {
  if (e.code() == t2v::kExitSoftware) {
    std::fprintf(stderr, "internal error on fuzz input: %s\n", e.what());
    std::abort();
  }
}

// In-memory form of what SafetensorsFile does: length prefix, header, data size.
void parse_in_memory(const uint8_t* data, size_t size) {
  std::map<std::string, std::string> meta;
  try {
    if (size >= 8) {
      uint64_t n = 0;
      for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
      if (n <= size - 8 && n <= t2v::SafetensorsFile::kMaxHeaderBytes)
        t2v::parse_safetensors_header("fuzz", reinterpret_cast<const char*>(data) + 8, n, size - 8 - n, &meta);
    }
  } catch (const t2v::Error& e) {
    check_error(e);
  }
  // The raw bytes as a header on their own (JSON-level fuzzing).
  try {
    t2v::parse_safetensors_header("fuzz", reinterpret_cast<const char*>(data), size, size % 64, &meta);
  } catch (const t2v::Error& e) {
    check_error(e);
  }
}

void open_as_file(const uint8_t* data, size_t size) {
  static int fd = ::memfd_create("fuzz_safetensors", 0);
  static std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0) std::abort();
  if (::ftruncate(fd, 0) != 0) std::abort();
  size_t off = 0;
  while (off < size) {
    ssize_t w = ::pwrite(fd, data + off, size - off, static_cast<off_t>(off));
    if (w <= 0) std::abort();
    off += static_cast<size_t>(w);
  }
  try {
    t2v::SafetensorsFile f(path);
    double sum = 0;
    for (const t2v::TensorInfo& t : f.tensors()) {
      t2v::Tensor x = f.get(t.name);
      if (x.numel() <= (1 << 20)) {
        t2v::Tensor y = x.to(t2v::DType::F32);
        for (int64_t i = 0; i < y.numel(); ++i) sum += y.data<float>()[i];
      }
    }
    volatile double sink = sum;
    (void)sink;
  } catch (const t2v::Error& e) {
    check_error(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parse_in_memory(data, size);
  open_as_file(data, size);
  return 0;
}
