#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

namespace t2v {

const char* device_name(Device d) {
  switch (d) {
    case Device::CPU: return "cpu";
    case Device::CUDA: return "cuda";
    case Device::Test: return "test";
  }
  return "unknown";
}

// ---- Shape ---------------------------------------------------------------------
Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  if (dims.size() > kMaxDims)
    fail(kExitSoftware, "tensor shape has {} dims; at most {} are supported", dims.size(), kMaxDims);
  n_ = static_cast<int>(dims.size());
  for (int i = 0; i < n_; ++i) {
    if (dims[i] < 0) fail(kExitSoftware, "negative dimension {} in tensor shape", dims[i]);
    d_[i] = dims[i];
  }
}

int64_t Shape::numel() const {
  // A zero dimension makes the count 0 whatever the others are; only then is the
  // product of the rest checked, so [2^40, 2^40, 0] is 0 elements, not an overflow.
  for (int i = 0; i < n_; ++i)
    if (d_[i] == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i < n_; ++i) {
    if (d_[i] != 0 && n > INT64_MAX / d_[i]) fail(kExitSoftware, "element count of shape {} overflows", str());
    n *= d_[i];
  }
  return n;
}

std::string Shape::str() const { return fmt::format("[{}]", fmt::join(begin(), end(), ", ")); }

bool Shape::operator==(const Shape& o) const {
  if (n_ != o.n_) return false;
  for (int i = 0; i < n_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

// ---- Storage and device backends -------------------------------------------------
Storage::Storage(Device dev, void* data, size_t nbytes, std::function<void(void*)> deleter)
    : dev_(dev), data_(data), nbytes_(nbytes), deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (deleter_) deleter_(data_);
}

static DeviceBackend g_backends[kNumDevices];
static bool g_registered[kNumDevices] = {};

void register_device_backend(Device dev, const DeviceBackend& backend) {
  T2V_ASSERT(dev != Device::CPU, "the CPU needs no device backend");
  g_backends[static_cast<int>(dev)] = backend;
  g_registered[static_cast<int>(dev)] = true;
}

const DeviceBackend* device_backend(Device dev) {
  const int i = static_cast<int>(dev);
  return dev != Device::CPU && g_registered[i] ? &g_backends[i] : nullptr;
}

static const DeviceBackend& require_device(Device dev) {
  if (const DeviceBackend* b = device_backend(dev)) return *b;
  if (dev == Device::Test)
    throw Error(kExitUnavailable, "test-device tensor requested but the test device is not open",
                "call t2v::ops::open_test_device() first (kernels/test_device/test_device.h; the CLI does this for "
                "--device test)");
  throw Error(kExitUnavailable, "CUDA tensor requested but the CUDA backend is not available",
              "build with the CUDA toolkit installed (T2V_CUDA=ON) and run on a machine with an NVIDIA GPU, or use --device cpu");
}

static std::shared_ptr<Storage> allocate(size_t nbytes, Device dev) {
  if (dev == Device::CPU) {
    size_t padded = (nbytes + 63) / 64 * 64;
    if (padded == 0) padded = 64;
    void* p = std::aligned_alloc(64, padded);
    if (!p)
      fail(kExitSoftware, "out of host memory allocating {} bytes", nbytes);
    return std::make_shared<Storage>(Device::CPU, p, nbytes, [](void* q) { std::free(q); });
  }
  const DeviceBackend& b = require_device(dev);
  void* p = b.alloc(nbytes);
  auto freefn = b.free;
  return std::make_shared<Storage>(dev, p, nbytes, [freefn](void* q) { freefn(q); });
}

// ---- Tensor --------------------------------------------------------------------------
Tensor Tensor::empty(const Shape& shape, DType dt, Device dev) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dt;
  t.storage_ = allocate(static_cast<size_t>(shape.numel()) * dtype_size(dt), dev);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dt, Device dev) {
  Tensor t = empty(shape, dt, dev);
  if (dev == Device::CPU)
    std::memset(t.raw(), 0, t.nbytes());
  else
    require_device(dev).memset0(t.raw(), t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, DType dt) {
  Tensor f = empty(shape, DType::F32);
  float* p = f.data<float>();
  for (int64_t i = 0; i < f.numel(); ++i) p[i] = value;
  return f.to(dt);
}

Tensor Tensor::from_floats(const std::vector<float>& values, const Shape& shape) {
  if (static_cast<int64_t>(values.size()) != shape.numel())
    fail(kExitSoftware, "from_floats: {} values for shape {}", values.size(), shape.str());
  Tensor t = empty(shape, DType::F32);
  std::memcpy(t.raw(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::wrap(std::shared_ptr<Storage> storage, size_t byte_offset, const Shape& shape, DType dt) {
  size_t need = static_cast<size_t>(shape.numel()) * dtype_size(dt);
  T2V_ASSERT(storage && byte_offset <= storage->nbytes() && need <= storage->nbytes() - byte_offset,
             "wrap of {} bytes at offset {} exceeds storage", need, byte_offset);
  Tensor t;
  t.storage_ = std::move(storage);
  t.offset_ = byte_offset;
  t.shape_ = shape;
  t.dtype_ = dt;
  return t;
}

int64_t Tensor::size(int d) const {
  int n = shape_.ndim();
  int i = d < 0 ? d + n : d;
  T2V_ASSERT(i >= 0 && i < n, "dim {} out of range for {}", d, str());
  return shape_[i];
}

void* Tensor::raw() const {
  T2V_ASSERT(storage_ != nullptr, "use of an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_;
}

template <class T>
static bool dtype_matches(DType dt);
template <> bool dtype_matches<float>(DType dt) { return dt == DType::F32; }
template <> bool dtype_matches<uint16_t>(DType dt) { return dt == DType::F16 || dt == DType::BF16; }
template <> bool dtype_matches<uint8_t>(DType dt) { return dt == DType::U8 || dt == DType::F8_E4M3 || dt == DType::F8_E5M2; }
template <> bool dtype_matches<int64_t>(DType dt) { return dt == DType::I64; }
template <> bool dtype_matches<int32_t>(DType dt) { return dt == DType::I32; }
template <> bool dtype_matches<void>(DType) { return true; }

template <class T>
T* Tensor::data() const {
  T2V_ASSERT(dtype_matches<T>(dtype_), "typed access does not match dtype {} of {}", dtype_name(dtype_), str());
  T2V_ASSERT(device() == Device::CPU, "typed host access to {}: copy it to the host first (Tensor::to(Device::CPU))",
             str());
  return static_cast<T*>(raw());
}
template float* Tensor::data<float>() const;
template uint16_t* Tensor::data<uint16_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;
template int64_t* Tensor::data<int64_t>() const;
template int32_t* Tensor::data<int32_t>() const;
template void* Tensor::data<void>() const;

Tensor Tensor::reshape(const Shape& shape) const {
  T2V_ASSERT(shape.numel() == numel(), "reshape {} -> {} changes the element count", shape_.str(), shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::narrow0(int64_t start, int64_t len) const {
  T2V_ASSERT(dim() >= 1 && start >= 0 && len >= 0 && start + len <= shape_[0], "narrow0({}, {}) of {}", start, len,
             str());
  int64_t row = shape_[0] == 0 ? 0 : numel() / shape_[0];
  Tensor t = *this;
  t.offset_ += static_cast<size_t>(start * row) * dtype_size(dtype_);
  t.shape_[0] = len;
  return t;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype_) return *this;
  if (device() != Device::CPU)
    fail(kExitSoftware, "Tensor::to(dtype) on {} needs ops::cast (kernels/ops.h)", device_name(device()));
  Tensor t = empty(shape_, dt, Device::CPU);
  convert_dtype(t.raw(), dt, raw(), dtype_, static_cast<size_t>(numel()));
  return t;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor t = empty(shape_, dtype_, dev);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to_ahead(Device dev) const {
  if (dev == device()) return *this;
  const DeviceBackend* b = device_backend(dev);
  if (device() != Device::CPU || !b || !b->copy_ahead) return to(dev);
  Tensor t = empty(shape_, dtype_, dev);
  if (nbytes() > 0) b->copy_ahead(t.raw(), raw(), nbytes());
  return t;
}

void wait_copies_ahead(Device dev) {
  const DeviceBackend* b = device_backend(dev);
  if (b && b->wait_copies_ahead) b->wait_copies_ahead();
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(*this);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  T2V_ASSERT(src.shape_ == shape_ && src.dtype_ == dtype_, "copy_from {} into {}", src.str(), str());
  size_t n = nbytes();
  if (n == 0) return;
  Device sd = src.device(), dd = device();
  if (sd == Device::CPU && dd == Device::CPU) {
    std::memcpy(raw(), src.raw(), n);
    return;
  }
  if (sd != Device::CPU && dd != Device::CPU && sd != dd) {
    copy_from(src.to(Device::CPU));  // between two devices: staged through the host
    return;
  }
  const DeviceBackend& b = require_device(sd == Device::CPU ? dd : sd);
  int kind = (sd == Device::CPU) ? 0 : (dd == Device::CPU ? 1 : 2);
  b.copy(raw(), src.raw(), n, kind);
}

float Tensor::item(int64_t flat_index) const {
  T2V_ASSERT(device() == Device::CPU && flat_index >= 0 && flat_index < numel(), "item({}) of {}", flat_index, str());
  float v;
  convert_dtype(&v, DType::F32, static_cast<const char*>(raw()) + flat_index * dtype_size(dtype_), dtype_, 1);
  return v;
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = to(Device::CPU).to(DType::F32);
  const float* p = c.data<float>();
  return std::vector<float>(p, p + c.numel());
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return fmt::format("{}{} {}", dtype_name(dtype_), shape_.str(), device_name(device()));
}

}  // namespace t2v
