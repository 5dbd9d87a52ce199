// Tensor: a dtype, a shape (up to 5-D, PyTorch order, outermost first) and a
// contiguous row-major buffer on a device. Views share storage (reshape, narrow
// along dim 0); everything else copies. Ops live in kernels/ops.h.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace t2v {

// CPU: host memory, the fp32 reference ops. CUDA: an NVIDIA GPU (kernels/cuda).
// Test: the CPU kernels behind the device interface (kernels/test_device): its
// memory is not host-addressable, so tests catch a missing host transfer without
// a GPU.
enum class Device : uint8_t { CPU, CUDA, Test };
constexpr int kNumDevices = 3;
const char* device_name(Device d);  // "cpu", "cuda", "test"

constexpr int kMaxDims = 5;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);
  int ndim() const { return n_; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  int64_t numel() const;  // 1 for a 0-d shape
  std::vector<int64_t> vec() const { return {begin(), end()}; }
  std::string str() const;  // "[2, 3, 4]"
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }

 private:
  std::array<int64_t, kMaxDims> d_{};
  int n_ = 0;
};

// A block of bytes on a device. CPU storage is 64-byte aligned heap memory or a
// view of a memory-mapped file (kept alive by `owner`).
class Storage {
 public:
  Storage(Device dev, void* data, size_t nbytes, std::function<void(void*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return dev_; }

 private:
  Device dev_;
  void* data_;
  size_t nbytes_;
  std::function<void(void*)> deleter_;
};

// Device memory hooks: each non-CPU device registers these when it is opened
// (kernels/cuda/runtime.cpp, kernels/test_device). Without registered hooks, a
// tensor on that device raises Error(69).
struct DeviceBackend {
  void* (*alloc)(size_t nbytes) = nullptr;
  void (*free)(void* p) = nullptr;
  // kind: 0 host->device, 1 device->host, 2 device->device
  void (*copy)(void* dst, const void* src, size_t nbytes, int kind) = nullptr;
  void (*memset0)(void* dst, size_t nbytes) = nullptr;
  // Optional (copies ahead, Tensor::to_ahead): a host->device copy on a second stream,
  // started after the work queued so far (so `dst` may be memory that work just freed),
  // and the fence after which queued work sees every such copy done. nullptr: copied at once.
  void (*copy_ahead)(void* dst, const void* src, size_t nbytes) = nullptr;
  void (*wait_copies_ahead)() = nullptr;
};
void register_device_backend(Device dev, const DeviceBackend& backend);
const DeviceBackend* device_backend(Device dev);  // nullptr if not built/registered
// Work queued on `dev` from now on waits for the copies Tensor::to_ahead started.
void wait_copies_ahead(Device dev);

class Tensor {
 public:
  Tensor() = default;  // undefined tensor
  static Tensor empty(const Shape& shape, DType dt, Device dev = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dt, Device dev = Device::CPU);
  static Tensor full(const Shape& shape, float value, DType dt = DType::F32);  // CPU
  // Copies `values` (CPU, F32) into a new tensor of the given shape.
  static Tensor from_floats(const std::vector<float>& values, const Shape& shape);
  // Wraps existing memory without copying; `keep_alive` owns it.
  static Tensor wrap(std::shared_ptr<Storage> storage, size_t byte_offset, const Shape& shape, DType dt);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::CPU; }
  const Shape& shape() const { return shape_; }
  int dim() const { return shape_.ndim(); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  // The buffer's address on its device (device code passes it to kernels).
  void* raw() const;
  // Typed host pointer; checks that T matches the dtype (uint16_t for F16/BF16,
  // uint8_t for F8/U8) and that the tensor is on the CPU (Error 70 otherwise:
  // device memory needs an explicit to(Device::CPU) first).
  template <class T> T* data() const;

  Tensor reshape(const Shape& shape) const;  // view; numel must match
  Tensor narrow0(int64_t start, int64_t len) const;  // view of rows [start, start+len) of dim 0
  Tensor to(DType dt) const;      // copy with conversion (same device); returns *this if same dtype
  Tensor to(Device dev) const;
  // A host tensor copied to `dev` while the device works on what is queued (where its
  // backend has copy_ahead); call wait_copies_ahead(dev) before queueing work that reads it.
  // The host tensor must stay alive until then (the copy may still read it).
  Tensor to_ahead(Device dev) const;    // copy across devices; returns *this if same device
  Tensor clone() const;
  void copy_from(const Tensor& src);  // same shape and dtype, any devices

  // CPU F32 convenience: element at a flat index / values as a vector.
  float item(int64_t flat_index = 0) const;
  std::vector<float> to_vector() const;

  std::string str() const;  // "F32[2, 3, 4] cpu"
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  size_t byte_offset() const { return offset_; }

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::F32;
};

}  // namespace t2v
