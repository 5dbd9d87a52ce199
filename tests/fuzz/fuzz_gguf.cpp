// libFuzzer target for the GGUF reader. Each input is a whole file: it is parsed
// in memory with parse_gguf, then opened from a memfd with GgufFile (pread +
// mmap path) and TensorStore; every metadata value is decoded and printed to a
// string, and every tensor it accepts is read and, when small, dequantized or
// converted to fp32. Any t2v::Error with a user-data code is the expected
// outcome for bad input; an internal error (code 70), another exception or a
// sanitizer report is a bug.
//
// Build and run: tools/run_fuzz.sh (clang, -DT2V_FUZZ=ON); per-input limits in gguf.options.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/gguf.h"
#include "core/quant.h"

namespace {

void check_error(const t2v::Error& e) {
  if (e.code() == t2v::kExitSoftware) {
    std::fprintf(stderr, "internal error on fuzz input: %s\n", e.what());
    std::abort();
  }
}

// Touches everything a header hands out.
size_t walk(const t2v::GgufHeader& h) {
  size_t n = h.architecture.size() + h.alignment + h.data_start;
  for (const t2v::GgufKV& kv : h.metadata) {
    n += kv.repr().size();
    if (auto v = kv.integers()) n += v->size();
    if (auto v = kv.strings(64)) n += v->size();
    if (auto v = kv.number()) n += *v > 0;
  }
  for (const t2v::TensorInfo& t : h.tensors) n += static_cast<size_t>(t.shape.ndim()) + t.name.size();
  return n;
}

void parse_in_memory(const uint8_t* data, size_t size) {
  try {
    volatile size_t sink = walk(t2v::parse_gguf("fuzz", data, size, size));
    (void)sink;
  } catch (const t2v::Error& e) {
    check_error(e);
  }
}

void open_as_file(const uint8_t* data, size_t size) {
  static int fd = ::memfd_create("fuzz_gguf", 0);
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
    t2v::GgufFile f(path);
    double sum = walk(f.header());
    for (const t2v::TensorInfo& t : f.tensors()) {
      const t2v::Tensor x = f.get(t.name);
      if (t.shape.numel() > (1 << 20)) continue;
      if (t.quant) {
        t2v::Tensor y = t2v::Tensor::empty(t.shape, t2v::DType::F32);
        t2v::dequantize(*t.quant, x.raw(), y.data<float>(), y.numel());
        for (int64_t i = 0; i < y.numel(); ++i) sum += y.data<float>()[i];
      } else {
        const t2v::Tensor y = x.to(t2v::DType::F32);
        for (int64_t i = 0; i < y.numel(); ++i) sum += y.data<float>()[i];
      }
    }
    const t2v::TensorStore s = t2v::TensorStore::open(path);
    sum += static_cast<double>(s.names().size()) + s.is_gguf();
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
